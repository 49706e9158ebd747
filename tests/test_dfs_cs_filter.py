"""Messages are taken only from the configured CS addresses (issue: "messages
accepted only from configured CS addresses and never from the external
port"): ``DFSCore``'s ``cs_net``/``cs_prefix`` (a board's console ``cs_ip``
and ``cs_prefix``), the reference model's ``DfsConfig.cs_network``.  A CS
outside the network is neither answered nor given a slot; it is counted
(``msg_rx_not_cs``).  Prefix 0 takes any authenticated CS."""

from __future__ import annotations

import ipaddress

import pytest

from twinplane.hdl.dfs.top import DFSCore
from twinplane.model.dfs import DfsConfig, ReferenceDFS
from twinplane.protocol.codec import Codec
from twinplane.protocol.codes import Bus, Role
from twinplane.protocol.messages import CsmbHello
from twinplane.sim.dfs.world import GEOMETRY, KEY, ScriptedCs, bring_up_cs, run_world

CS_NETWORK = ipaddress.IPv4Network("10.100.0.0/24")  # ScriptedCs n is at 10.100.0.(10 + n)
ROGUE_IP = "10.99.0.5"


def small_dfs() -> DFSCore:
    return DFSCore(geometry=GEOMETRY, tick_cycles=64, frame_buffer_bytes=2048)


def rogue(w) -> ScriptedCs:
    cs = ScriptedCs(w, 5)
    del w.css[cs.ip]
    cs.ip = ROGUE_IP
    w.css[cs.ip] = cs
    return cs


def test_gateware_takes_messages_only_from_the_cs_network():
    dut = small_dfs()

    async def script(w):
        ctx = w.ctx
        ctx.set(dut.cs_net, int(CS_NETWORK.network_address))
        ctx.set(dut.cs_prefix, CS_NETWORK.prefixlen)
        await ctx.tick().repeat(2)
        bad = rogue(w)
        await bad.send(bad.hello(Role.ACTIVE))
        await w.quiet(1, 800)  # not answered
        assert ctx.get(dut.msg_rx_not_cs) == 1
        good = ScriptedCs(w, 1)
        await bring_up_cs(good)  # HELLO, authentication, ADD_VS: all answered
        assert ctx.get(dut.msg_rx_not_cs) == 1
        # Prefix 0: any source (the default); the rogue is answered now.
        ctx.set(dut.cs_prefix, 0)
        await ctx.tick().repeat(2)
        await bad.send(bad.hello(Role.STANDBY))
        ((cs, answer),) = await w.cs_messages(1)
        assert cs is bad and isinstance(answer, CsmbHello)
        assert ctx.get(dut.msg_rx_not_cs) == 1

    run_world(dut, script)


def test_model_takes_messages_only_from_the_cs_network():
    dfs = ReferenceDFS(DfsConfig(key=KEY, cs_network=CS_NETWORK))
    codec = Codec(KEY)
    hello = CsmbHello(nonce=b"cs-nonce", role=Role.ACTIVE, csmb_vers_major=1, ssmb_vers_major=1,
                      hello_interval_ms=60_000, ssmb_addr=ipaddress.IPv4Address(ROGUE_IP), ssmb_port=41000,
                      seq=1)
    dfs.receive_message(Bus.CSMB, codec.encode(hello), (ROGUE_IP, 41000), now=0.0)
    assert dfs.messages_to_send() == [] and dfs.counters["msg_rx_not_cs"] == 1 and not dfs.peers
    dfs.receive_message(Bus.CSMB, codec.encode(hello), ("10.100.0.11", 41000), now=0.0)
    ((bus, dst, _),) = dfs.messages_to_send()
    assert (bus, dst) == (Bus.CSMB, ("10.100.0.11", 41000))
    # Any source by default.
    dfs = ReferenceDFS(DfsConfig(key=KEY))
    dfs.receive_message(Bus.CSMB, codec.encode(hello), (ROGUE_IP, 41000), now=0.0)
    assert len(dfs.messages_to_send()) == 1


def test_bad_cs_network_is_rejected():
    with pytest.raises(ValueError, match="cs_network must be an IPv4 network, not '10.0.0.1/33'"):
        DfsConfig(key=KEY, cs_network="10.0.0.1/33")
