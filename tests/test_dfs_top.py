"""The whole DFS gateware, end to end in Amaranth's simulator: a CS (scripted
with the host codec) authenticates and adds a virtual server through frames
on the internal port; a client's SYN to the virtual server makes a QUERY; the
REPLY installs the flow and releases the SYN, rewritten towards the node; the
node's SYN-ACK comes back rewritten to the virtual server's address; data
flows both ways; FIN both ways closes the flow and the CS gets DELETE with
the counters.  scapy checks every frame (checksums included)."""

from __future__ import annotations

from amaranth.sim import Simulator
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import ARP, Ether

from twinplane.hdl.dfs.top import DFSCore
from twinplane.protocol.messages import SsmbDelete
from twinplane.sim.dfs.world import (
    CLIENT_IP,
    CLIENT_MAC,
    CS_IP,
    CS_MAC,
    DFS_IP,
    DFS_MAC,
    GEOMETRY,
    NODE_IP,
    NODE_MAC,
    VIP,
    bring_up,
    checksums_ok,
    client_frame,
    node_frame,
    open_flow,
    run_world,
)


def test_a_flow_through_the_whole_dfs():
    dut = DFSCore(geometry=GEOMETRY, tick_cycles=1000, frame_buffer_bytes=2048)

    async def script(w):
        # ARP for the DFS's own address on the internal side
        await w.send(1, bytes(Ether(src=CS_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc=CS_IP, pdst=DFS_IP,
                                                                               hwsrc=CS_MAC)))
        (arp,) = await w.wait(1)
        assert arp[ARP].op == 2 and arp[ARP].hwsrc == DFS_MAC and arp[ARP].psrc == DFS_IP

        # the CS: HELLO, challenge, ADD_VS
        await bring_up(w)

        # ARP for the virtual address on the external side
        await w.send(0, bytes(Ether(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff")
                              / ARP(op=1, psrc=CLIENT_IP, pdst=VIP, hwsrc=CLIENT_MAC)))
        (arp,) = await w.wait(0)
        assert arp[ARP].psrc == VIP and arp[ARP].hwsrc == DFS_MAC

        # the client's SYN: QUERY to the CS; REPLY: the SYN leaves towards the node, rewritten
        query, to_node = await open_flow(w, CLIENT_IP, 40001)
        assert query.flow.src_addr.compressed == CLIENT_IP and query.flow.dst_port == 80
        assert to_node.dst == NODE_MAC and to_node.src == DFS_MAC
        assert (to_node[IP].src, to_node[IP].dst, to_node[TCP].dport) == (CLIENT_IP, NODE_IP, 8080)
        assert to_node[TCP].flags == "S" and to_node[TCP].seq == 1000 and checksums_ok(to_node)

        # the node answers: back to the client from the virtual server
        await w.send(1, node_frame(CLIENT_IP, 40001, "SA"))
        (to_client,) = await w.wait(0)
        assert to_client.dst == CLIENT_MAC and to_client.src == DFS_MAC
        assert (to_client[IP].src, to_client[TCP].sport, to_client[IP].dst) == (VIP, 80, CLIENT_IP)
        assert checksums_ok(to_client)

        # data both ways, then FIN both ways: DELETE with the counters
        for flags, payload in (("A", b""), ("PA", b"GET / HTTP/1.0\r\n\r\n"), ("FA", b"")):
            await w.send(0, client_frame(CLIENT_IP, 40001, flags, payload))
            (packet,) = await w.wait(1)
            assert packet[TCP].dport == 8080 and bytes(packet[TCP].payload) == payload and checksums_ok(packet)
        await w.send(1, node_frame(CLIENT_IP, 40001, "FA"))
        (fin,) = await w.wait(0)
        assert fin[TCP].sport == 80 and fin[TCP].flags == "FA"
        (delete,) = w.cs_decode((await w.wait(1, limit=40_000))[0])
        assert isinstance(delete, SsmbDelete) and delete.serial == query.serial
        assert (delete.stats.packets_in, delete.stats.packets_out) == (4, 2)

    run_world(dut, script)


def test_now_steps_once_every_tick_cycles():
    """``now`` (the flows' timestamps and the message port's clock) steps
    exactly once every ``tick_cycles`` clocks, from its first tick on."""
    for tick_cycles in (1, 2, 5):
        dut = DFSCore(geometry=GEOMETRY, tick_cycles=tick_cycles, frame_buffer_bytes=2048)
        seen = []

        async def bench(ctx, dut=dut, seen=seen):
            for _ in range(31):
                await ctx.tick()
                seen.append(ctx.get(dut.now))

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()
        assert seen == [(c + 1) // tick_cycles for c in range(31)], f"tick_cycles {tick_cycles}: {seen}"
