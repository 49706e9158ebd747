"""The NAT rewriter against scapy: the same rewrite done with scapy and its
checksums recomputed from scratch must give the same bytes, for TCP and UDP,
tagged and untagged frames, IPv4 options, inbound and return flows, seq/ack
offsets with wrap-around, UDP checksum 0, and random traffic."""

from __future__ import annotations

import ipaddress
import random

from amaranth.sim import Simulator
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Dot1Q, Ether

from twinplane.hdl.rewrite.rewriter import Rewriter
from twinplane.model.flowkey import pack_action, unpack_action

OWN_MAC = "02:00:00:00:d0:f5"


def ip_int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def expected(frame: bytes, action: dict) -> bytes:
    """The rewrite done with scapy, checksums recomputed from scratch."""
    p = Ether(frame)
    p.dst = ":".join(f"{b:02x}" for b in action["eth_dst"].to_bytes(6, "big"))
    p.src = OWN_MAC
    if Dot1Q in p and action["vlan_rewrite"]:
        p[Dot1Q].vlan = action["vlan_id"]
    ip = p[IP]
    l4 = p[TCP] if TCP in p else p[UDP]
    new_ip = str(ipaddress.IPv4Address(action["new_ip"]))
    if action["rewrite_source"]:
        if action["translate_addr"]:
            ip.src = new_ip
        if action["translate_port"]:
            l4.sport = action["new_port"]
    else:
        if action["translate_addr"]:
            ip.dst = new_ip
        if action["translate_port"]:
            l4.dport = action["new_port"]
    if TCP in p and action["add_offsets"]:
        l4.seq = (l4.seq + action["seq_delta"]) % 2**32
        l4.ack = (l4.ack + action["ack_delta"]) % 2**32
    del ip.chksum
    udp_none = UDP in p and p[UDP].chksum == 0
    del l4.chksum
    out = Ether(bytes(p))
    if udp_none:
        out[UDP].chksum = 0
    return bytes(out)


def decision_of(frame: bytes, action: int) -> dict:
    p = Ether(frame)
    ip = p[IP]
    l4 = p[TCP] if TCP in p else p[UDP]
    l3 = 18 if Dot1Q in p else 14
    return {"src_ip": ip_int(ip.src), "dst_ip": ip_int(ip.dst), "src_port": l4.sport, "dst_port": l4.dport,
            "protocol": ip.proto, "vlan_valid": int(Dot1Q in p), "l3_offset": l3, "l4_offset": l3 + 4 * ip.ihl,
            "action": action}


def run(cases, *, ready_chance=1.0, seed=0):
    dut = Rewriter()
    rng = random.Random(seed)
    out: list[bytes] = []

    async def decisions(ctx):
        for frame, action in cases:
            d = decision_of(frame, action)
            act = d.pop("action")
            ctx.set(dut.decision.valid, 1)
            ctx.set(dut.decision.payload, d)
            ctx.set(dut.decision.payload.action.as_value(), act)
            await ctx.tick().until(dut.decision.ready)
            ctx.set(dut.decision.valid, 0)

    async def frames(ctx):
        ctx.set(dut.own_mac, int(OWN_MAC.replace(":", ""), 16))
        for frame, _ in cases:
            for i, byte in enumerate(frame):
                ctx.set(dut.sink.valid, 1)
                ctx.set(dut.sink.payload, {"data": byte, "first": i == 0, "last": i == len(frame) - 1})
                await ctx.tick().until(dut.sink.ready)
            ctx.set(dut.sink.valid, 0)
        await ctx.tick().repeat(40)

    async def consumer(ctx):
        while len(out) < len(cases):
            ctx.set(dut.source.ready, rng.random() < ready_chance)
            await ctx.tick()

    async def monitor(ctx):
        frame = bytearray()
        async for _, _, valid, ready, payload in ctx.tick().sample(dut.source.valid, dut.source.ready, dut.source.payload):
            if valid and ready:
                assert bool(payload.first) == (not frame)
                frame.append(payload.data)
                if payload.last:
                    out.append(bytes(frame))
                    frame = bytearray()

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(decisions)
    sim.add_testbench(frames)
    sim.add_testbench(consumer)
    sim.add_process(monitor)
    sim.run()
    return out


def random_case(rng: random.Random):
    vlan = rng.random() < 0.3
    options = rng.random() < 0.3
    udp = rng.random() < 0.4
    eth = Ether(src="02:00:00:00:00:0c", dst=OWN_MAC)
    if vlan:
        eth = eth / Dot1Q(vlan=rng.randrange(1, 4095), prio=rng.randrange(8))
    ip = IP(src=str(ipaddress.IPv4Address(rng.getrandbits(32))), dst=str(ipaddress.IPv4Address(rng.getrandbits(32))),
            tos=rng.randrange(256), ttl=rng.randrange(1, 256), id=rng.getrandbits(16),
            options=[b"\x01" * 4 * rng.randrange(1, 5)] if options else [])
    payload = rng.randbytes(rng.choice([0, 1, 7, 60]))
    if udp:
        l4 = UDP(sport=rng.getrandbits(16), dport=rng.getrandbits(16))
    else:
        l4 = TCP(sport=rng.getrandbits(16), dport=rng.getrandbits(16), seq=rng.getrandbits(32),
                 ack=rng.getrandbits(32), flags=rng.choice(["S", "A", "PA", "FA", "R"]))
    frame = bytes(eth / ip / l4 / payload)
    if udp and rng.random() < 0.3:  # no checksum
        p = Ether(frame)
        p[UDP].chksum = 0
        frame = bytes(p)
    action = {"egress_port": 1, "rewrite_source": rng.getrandbits(1), "translate_addr": rng.getrandbits(1),
              "translate_port": rng.getrandbits(1), "new_ip": rng.getrandbits(32), "new_port": rng.getrandbits(16),
              "eth_dst": rng.getrandbits(48) & ~(1 << 40), "vlan_rewrite": rng.getrandbits(1),
              "vlan_id": rng.randrange(1, 4095), "add_offsets": rng.getrandbits(1),
              "seq_delta": rng.choice([0, 1, 2**32 - 1, rng.getrandbits(32)]),
              "ack_delta": rng.choice([0, 2**31, rng.getrandbits(32)])}
    return frame, action


def test_random_rewrites_match_scapy():
    rng = random.Random(1624)
    cases = [random_case(rng) for _ in range(40)]
    got = run([(f, pack_action(**a)) for f, a in cases], ready_chance=0.85, seed=3)
    for (frame, action), result in zip(cases, got, strict=True):
        assert result == expected(frame, action), (Ether(frame).summary(), action)


def test_nat_both_directions_and_checksum_corners():
    inbound = pack_action(egress_port=1, new_ip=ip_int("10.1.0.1"), new_port=8080, translate_addr=1,
                          translate_port=1, eth_dst=0x0200000001AA)
    back = pack_action(egress_port=0, rewrite_source=1, new_ip=ip_int("10.0.0.100"), new_port=80,
                       translate_addr=1, translate_port=1, eth_dst=0x02000000000C)
    syn = bytes(Ether() / IP(src="10.2.0.1", dst="10.0.0.100") / TCP(sport=40001, dport=80, flags="S"))
    synack = bytes(Ether() / IP(src="10.1.0.1", dst="10.2.0.1") / TCP(sport=8080, dport=40001, flags="SA"))
    cases = [(syn, inbound), (synack, back)]
    # Rewrites whose new checksum lands on the corner: with the port as the free
    # word, new port = the checksum computed with port 0 makes the sum 0xFFFF,
    # i.e. TCP checksum 0x0000 and a UDP checksum that computes to 0 (sent 0xFFFF).
    for udp in (False, True):
        l4 = UDP(sport=5, dport=0) if udp else TCP(sport=5, dport=0)
        probe = Ether(bytes(Ether() / IP(src="10.2.0.1", dst="10.0.0.100") / l4 / b"xy"))
        port = probe[UDP].chksum if udp else probe[TCP].chksum
        l4 = UDP(sport=5, dport=53) if udp else TCP(sport=5, dport=80)
        frame = bytes(Ether() / IP(src="10.2.0.1", dst="10.0.0.100") / l4 / b"xy")
        cases.append((frame, pack_action(new_port=port, translate_port=1, eth_dst=2)))
    got = run(cases)
    for (frame, action), result in zip(cases, got, strict=True):
        assert result == expected(frame, unpack_action(action))
    assert Ether(got[0])[IP].dst == "10.1.0.1" and Ether(got[0])[TCP].dport == 8080
    assert Ether(got[1])[IP].src == "10.0.0.100" and Ether(got[1])[TCP].sport == 80
    assert Ether(got[2])[TCP].chksum == 0x0000
    assert Ether(got[3])[UDP].chksum == 0xFFFF  # a UDP checksum that computes to 0 is sent as 0xFFFF
