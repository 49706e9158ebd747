"""The ECPIX-5's one port carries the external and the internal network as
802.1Q VLANs (boards/dfs_core.py in VLAN mode, hdl/vlan/): the whole DFS
board core in Amaranth's simulator answers ARP for its own address on the
internal VLAN, tagged with it, and drops frames of other VLANs."""

import ipaddress

import pytest
from amaranth.sim import Simulator
from scapy.layers.l2 import ARP, Dot1Q, Ether

from twinplane.boards.dfs_core import DFSBoardCore
from twinplane.boards.registry import get_board
from twinplane.boards.top import BoardTop
from twinplane.host.build import dfs_factory
from twinplane.sim.streams import FrameAssembler, put_frame

OWN_IP, OWN_MAC = "10.1.0.254", "02:00:00:00:fe:01"
CLIENT_MAC = "02:00:00:00:00:07"


def arp_request(vid):
    l2 = Ether(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff")
    arp = ARP(op=1, hwsrc=CLIENT_MAC, psrc="10.1.0.1", pdst=OWN_IP)
    return bytes(l2 / Dot1Q(vlan=vid) / arp if vid is not None else l2 / arp)


def test_vlan_checks():
    with pytest.raises(ValueError, match="one-port board"):
        DFSBoardCore(2, 64, vlans=(10, 20))
    with pytest.raises(ValueError, match=r"\(external, internal\)"):
        DFSBoardCore(1, 64, vlans=(10, 20, 30))
    with pytest.raises(ValueError, match="distinct"):
        DFSBoardCore(1, 64, vlans=(10, 10))


def test_ecpix5_dfs_answers_arp_on_the_internal_vlan_only():
    spec = get_board("ecpix5")
    assert spec.vlans == (10, 20) and len(spec.roles) == 1
    dut = dfs_factory(1, 64, spec.vlans)
    assert dut.vlans == (10, 20)
    sent = [arp_request(30), arp_request(None), arp_request(20)]
    got = []

    async def bench(ctx):
        ctx.set(dut.config.own_ip, int(ipaddress.IPv4Address(OWN_IP)))
        ctx.set(dut.config.own_mac, int(OWN_MAC.replace(":", ""), 16))
        ctx.set(dut.tx0.ready, 1)
        for _ in range(20):
            await ctx.tick()
        for frame in sent:
            await put_frame(ctx, dut.rx0, frame)
        asm = FrameAssembler(got)
        for _ in range(3000):
            await ctx.tick()
            if ctx.get(dut.tx0.valid):
                asm.feed(ctx.get(dut.tx0.payload))
            if got:
                break
        assert ctx.get(dut.vlan_dropped) == 2

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(bench)
    sim.run()
    assert len(got) == 1
    reply = Ether(got[0])
    assert reply[Dot1Q].vlan == 20 and reply[ARP].op == 2
    assert (reply[ARP].psrc, reply[ARP].hwsrc, reply[ARP].pdst) == (OWN_IP, OWN_MAC, "10.1.0.1")
    assert reply.dst == CLIENT_MAC


def test_ecpix5_board_top_with_the_vlan_dfs_elaborates():
    spec = get_board("ecpix5")
    plan = spec.platform().prepare(BoardTop(spec, dfs_factory(1, 64, spec.vlans)), name="top")
    rtlil = plan.files["top.il"]
    assert "vlan_split" in rtlil and "vlan_merge" in rtlil and "EHXPLLL" in rtlil
