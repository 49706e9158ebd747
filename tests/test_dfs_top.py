"""The whole DFS gateware, end to end in Amaranth's simulator: a CS (scripted
with the host codec) authenticates and adds a virtual server through frames
on the internal port; a client's SYN to the virtual server makes a QUERY; the
REPLY installs the flow and releases the SYN, rewritten towards the node; the
node's SYN-ACK comes back rewritten to the virtual server's address; data
flows both ways; FIN both ways closes the flow and the CS gets DELETE with
the counters.  scapy checks every frame (checksums included)."""

from __future__ import annotations

import ipaddress

from amaranth.sim import Simulator
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

from twinplane.hdl.dfs.top import DFSCore
from twinplane.model.flowkey import ACTION_WIDTH, KEY_WIDTH
from twinplane.model.flowtable import FlowGeometry
from twinplane.protocol.codec import Codec, auth_response, session_id
from twinplane.protocol.codes import CSMB_UDP_PORT, SSMB_UDP_PORT, Bus, ErrorCode, Flag, Role
from twinplane.protocol.messages import (
    AddVs,
    CsmbAuthChallenge,
    CsmbAuthResponse,
    CsmbHello,
    FlowSignature,
    SsmbDelete,
    SsmbQuery,
    SsmbReply,
    Translation,
    VirtualServer,
)

KEY = bytes(range(16))
DFS_MAC, DFS_IP = "02:00:00:00:d0:f5", "10.100.0.1"
CS_MAC, CS_IP, CS_PORT = "02:00:00:00:c5:01", "10.100.0.2", 41000
CLIENT_MAC, CLIENT_IP = "02:00:00:00:00:0c", "10.2.0.1"
NODE_MAC, NODE_IP = "02:00:00:00:01:aa", "10.1.0.1"
VIP = "10.0.0.100"
GEOMETRY = FlowGeometry(key_width=KEY_WIDTH, action_width=ACTION_WIDTH, buckets=8, ways=2, tables=2)


def checksums_ok(packet) -> bool:
    rebuilt = packet.copy()
    for layer in (IP, TCP, UDP):
        if layer in rebuilt:
            del rebuilt[layer].chksum
    rebuilt = Ether(bytes(rebuilt))
    return all(
        layer not in packet or packet[layer].chksum == rebuilt[layer].chksum or (layer is UDP and packet[UDP].chksum == 0)
        for layer in (IP, TCP, UDP)
    )


class World:
    """Frames in and out of the simulated DFS's two ports."""

    def __init__(self, ctx, dut):
        self.ctx, self.dut = ctx, dut
        self.out = {0: [], 1: []}
        self.codec = Codec(KEY)
        self.seq = 0
        self.session = 0
        self.serial = 0

    async def send(self, port: int, frame: bytes):
        ctx, rx = self.ctx, self.dut.rx[port]
        for i, byte in enumerate(frame):
            ctx.set(rx.valid, 1)
            ctx.set(rx.payload, {"data": byte, "first": i == 0, "last": i == len(frame) - 1})
            await ctx.tick().until(rx.ready)
        ctx.set(rx.valid, 0)

    async def wait(self, port: int, count: int = 1, limit: int = 20_000) -> list:
        for _ in range(limit):
            if len(self.out[port]) >= count:
                break
            await self.ctx.tick()
        got, self.out[port] = self.out[port][:count], self.out[port][count:]
        assert len(got) == count, f"port {port}: {len(got)} of {count} frames after {limit} clocks"
        return [Ether(f) for f in got]

    def stamp(self, msg):
        self.seq += 1
        msg.seq, msg.session = self.seq, self.session
        if msg.BUS is Bus.CSMB:
            self.serial += 1
            msg.serial_global = self.serial
        return msg

    async def cs_send(self, *msgs):
        bus = msgs[0].BUS
        payload = b"".join(self.codec.encode(self.stamp(m)) for m in msgs)
        frame = (Ether(src=CS_MAC, dst=DFS_MAC) / IP(src=CS_IP, dst=DFS_IP)
                 / UDP(sport=CS_PORT, dport=CSMB_UDP_PORT if bus is Bus.CSMB else SSMB_UDP_PORT) / payload)
        await self.send(1, bytes(frame))

    def cs_decode(self, packet) -> list:
        assert packet.dst == CS_MAC and packet[IP].dst == CS_IP and checksums_ok(packet)
        bus = Bus.CSMB if packet[UDP].sport == CSMB_UDP_PORT else Bus.SSMB
        return self.codec.decode(bus, bytes(packet[UDP].payload))


def test_a_flow_through_the_whole_dfs():
    dut = DFSCore(geometry=GEOMETRY, tick_cycles=1000, miss_slot_bytes=512, frame_buffer_bytes=2048)

    async def bench(ctx):
        ctx.set(dut.key, int.from_bytes(KEY, "little"))
        ctx.set(dut.own_mac, int(DFS_MAC.replace(":", ""), 16))
        ctx.set(dut.own_ip, int(ipaddress.IPv4Address(DFS_IP)))
        for p in (0, 1):
            ctx.set(dut.tx[p].ready, 1)
        w = World(ctx, dut)
        world["w"] = w

        # ARP for the DFS's own address on the internal side
        await w.send(1, bytes(Ether(src=CS_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc=CS_IP, pdst=DFS_IP,
                                                                               hwsrc=CS_MAC)))
        (arp,) = await w.wait(1)
        assert arp[ARP].op == 2 and arp[ARP].hwsrc == DFS_MAC and arp[ARP].psrc == DFS_IP

        # the CS: HELLO, challenge, ADD_VS
        await w.cs_send(CsmbHello(nonce=b"cs-nonce", role=Role.ACTIVE, csmb_vers_major=1, ssmb_vers_major=1,
                                  ssmb_addr=ipaddress.IPv4Address(CS_IP), ssmb_port=CS_PORT))
        (hello,) = w.cs_decode((await w.wait(1))[0])
        assert isinstance(hello, CsmbHello) and hello.error == ErrorCode.NONE
        await w.cs_send(CsmbAuthChallenge(challenge=b"12345678"))
        (response,) = w.cs_decode((await w.wait(1))[0])
        assert isinstance(response, CsmbAuthResponse)
        assert response.response == auth_response(KEY, b"12345678", hello.nonce)
        w.session = session_id(KEY, b"12345678", hello.nonce)
        vs = VirtualServer(vs_id=1, protocol=6, virt_addr=ipaddress.IPv4Address(VIP), virt_port=80)
        await w.cs_send(AddVs(vs=vs))
        (ack,) = w.cs_decode((await w.wait(1))[0])
        assert ack.error == ErrorCode.NONE

        # ARP for the virtual address on the external side
        await w.send(0, bytes(Ether(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff")
                              / ARP(op=1, psrc=CLIENT_IP, pdst=VIP, hwsrc=CLIENT_MAC)))
        (arp,) = await w.wait(0)
        assert arp[ARP].psrc == VIP and arp[ARP].hwsrc == DFS_MAC

        # the client's SYN: QUERY to the CS
        syn = (Ether(src=CLIENT_MAC, dst=DFS_MAC) / IP(src=CLIENT_IP, dst=VIP)
               / TCP(sport=40001, dport=80, flags="S", seq=1000))
        await w.send(0, bytes(syn))
        (query,) = w.cs_decode((await w.wait(1))[0])
        assert isinstance(query, SsmbQuery) and query.vs_id == 1
        assert query.flow.src_addr == ipaddress.IPv4Address(CLIENT_IP) and query.flow.dst_port == 80

        # REPLY: the SYN leaves towards the node, rewritten
        xlate = Translation(node_addr=ipaddress.IPv4Address(NODE_IP), node_port=8080, egress_port=1,
                            client_port=0, node_mac=bytes.fromhex(NODE_MAC.replace(":", "")),
                            client_mac=query.client_mac, vs_id=1, node_id=2)
        flow = FlowSignature(src_addr=query.flow.src_addr, dst_addr=query.flow.dst_addr,
                             src_port=query.flow.src_port, dst_port=80, protocol=6)
        await w.cs_send(SsmbReply(serial=query.serial, flags=Flag.TRANSLATE_ADDR | Flag.TRANSLATE_PORT,
                                  flow=flow, xlate=xlate))
        (to_node,) = await w.wait(1)
        assert to_node.dst == NODE_MAC and to_node.src == DFS_MAC
        assert (to_node[IP].src, to_node[IP].dst, to_node[TCP].dport) == (CLIENT_IP, NODE_IP, 8080)
        assert to_node[TCP].flags == "S" and to_node[TCP].seq == 1000 and checksums_ok(to_node)

        # the node answers: back to the client from the virtual server
        synack = (Ether(src=NODE_MAC, dst=DFS_MAC) / IP(src=NODE_IP, dst=CLIENT_IP)
                  / TCP(sport=8080, dport=40001, flags="SA", seq=5000, ack=1001))
        await w.send(1, bytes(synack))
        (to_client,) = await w.wait(0)
        assert to_client.dst == CLIENT_MAC and to_client.src == DFS_MAC
        assert (to_client[IP].src, to_client[TCP].sport, to_client[IP].dst) == (VIP, 80, CLIENT_IP)
        assert checksums_ok(to_client)

        # data both ways, then FIN both ways: DELETE with the counters
        for flags, payload in (("A", b""), ("PA", b"GET / HTTP/1.0\r\n\r\n"), ("FA", b"")):
            await w.send(0, bytes(Ether(src=CLIENT_MAC, dst=DFS_MAC) / IP(src=CLIENT_IP, dst=VIP)
                                  / TCP(sport=40001, dport=80, flags=flags) / payload))
            (packet,) = await w.wait(1)
            assert packet[TCP].dport == 8080 and bytes(packet[TCP].payload) == payload and checksums_ok(packet)
        await w.send(1, bytes(Ether(src=NODE_MAC, dst=DFS_MAC) / IP(src=NODE_IP, dst=CLIENT_IP)
                              / TCP(sport=8080, dport=40001, flags="FA")))
        (fin,) = await w.wait(0)
        assert fin[TCP].sport == 80 and fin[TCP].flags == "FA"
        (delete,) = w.cs_decode((await w.wait(1, limit=40_000))[0])
        assert isinstance(delete, SsmbDelete) and delete.serial == query.serial
        assert (delete.stats.packets_in, delete.stats.packets_out) == (4, 2)

    async def monitor(ctx):
        frames = {0: bytearray(), 1: bytearray()}
        async for sampled in ctx.tick().sample(*(x for p in (0, 1) for x in (dut.tx[p].valid, dut.tx[p].ready,
                                                                              dut.tx[p].payload))):
            values = sampled[2:]
            for p in (0, 1):
                valid, ready, payload = values[3 * p : 3 * p + 3]
                if valid and ready:
                    frames[p].append(payload.data)
                    if payload.last:
                        world["w"].out[p].append(bytes(frames[p]))
                        frames[p] = bytearray()

    world = {}
    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(bench)
    sim.add_process(monitor)
    sim.run()
