"""The rewrite reference model (twinplane.model.rewrite) against scapy: the
same changes applied with scapy and every checksum recomputed from scratch
must give the same bytes -- TCP/UDP/ICMP, tagged/untagged, IPv4 options, UDP
checksum 0, fragments, inbound and return NAT, seq/ack wrap-around, checksums
landing on 0x0000/0xFFFF, and random frames with random commands."""

from __future__ import annotations

import dataclasses
import random

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.l2 import Dot1Q, Ether

from twinplane.model.rewrite import RewriteCommandModel, rewrite_frame

_IP = "{}.{}.{}.{}"


def ip_str(value: int) -> str:
    return _IP.format(*value.to_bytes(4, "big"))


def ip_int(text: str) -> int:
    return int.from_bytes(bytes(int(x) for x in text.split(".")), "big")


def mac_str(value: int) -> str:
    return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big"))


def command_for(frame: bytes, **changes) -> RewriteCommandModel:
    """A command with the old values read from ``frame`` as the parser would."""
    p = Ether(frame)
    ip = p[IP]
    l3 = 18 if Dot1Q in p else 14
    later = ip.frag != 0
    l4 = None if later else (p[TCP] if TCP in p else p[UDP] if UDP in p else None)
    base = dict(
        eth_dst=0x020000000001, eth_src=0x020000000002, l3_offset=l3, l4_offset=l3 + 4 * ip.ihl,
        protocol=ip.proto, old_src_ip=ip_int(ip.src), old_dst_ip=ip_int(ip.dst),
        old_src_port=l4.sport if l4 is not None else 0, old_dst_port=l4.dport if l4 is not None else 0,
        l4_valid=not later, tagged=Dot1Q in p,
    )
    base.update(changes)
    return RewriteCommandModel(**base)


def scapy_rewrite(pkt, c: RewriteCommandModel):
    """The command applied with scapy, checksums deleted (to be recomputed)."""
    p = pkt.copy()
    p.dst, p.src = mac_str(c.eth_dst), mac_str(c.eth_src)
    if Dot1Q in p and c.vlan_rewrite:
        p[Dot1Q].vlan = c.vlan_id
    ip = p[IP]
    if c.set_src_ip:
        ip.src = ip_str(c.new_src_ip)
    if c.set_dst_ip:
        ip.dst = ip_str(c.new_dst_ip)
    del ip.chksum
    if c.l4_valid and (TCP in p or UDP in p):
        l4 = p[TCP] if TCP in p else p[UDP]
        if c.set_src_port:
            l4.sport = c.new_src_port
        if c.set_dst_port:
            l4.dport = c.new_dst_port
        if TCP in p and c.add_offsets:
            l4.seq = (l4.seq + c.seq_delta) % 2**32
            l4.ack = (l4.ack + c.ack_delta) % 2**32
        if not (UDP in p and l4.chksum == 0):  # UDP without checksum stays without
            del l4.chksum
    return p


def expected(frame: bytes, c: RewriteCommandModel) -> bytes:
    return bytes(scapy_rewrite(Ether(frame), c))


def tcp_frame(vlan=False, options=False, **tcp):
    eth = Ether(src="02:00:00:00:00:0c", dst="02:00:00:00:d0:f5")
    if vlan:
        eth = eth / Dot1Q(vlan=5, prio=3)
    ip = IP(src="192.0.2.7", dst="198.51.100.10", id=77, options=[b"\x01\x01\x01\x01"] if options else [])
    return bytes(eth / ip / TCP(sport=40001, dport=80, **tcp) / b"hello")


def udp_frame(vlan=False, zero=False, payload=b"query"):
    eth = Ether(src="02:00:00:00:00:0c", dst="02:00:00:00:d0:f5")
    if vlan:
        eth = eth / Dot1Q(vlan=9)
    p = Ether(bytes(eth / IP(src="192.0.2.7", dst="198.51.100.10") / UDP(sport=5353, dport=53) / payload))
    if zero:
        p[UDP].chksum = 0
    return bytes(p)


NODE = ip_int("10.1.0.5")
VIP = ip_int("198.51.100.10")
INBOUND = dict(set_dst_ip=True, new_dst_ip=NODE, set_dst_port=True, new_dst_port=8080)
RETURN = dict(set_src_ip=True, new_src_ip=VIP, set_src_port=True, new_src_port=80)


@pytest.mark.parametrize("vlan", [False, True])
@pytest.mark.parametrize("options", [False, True])
@pytest.mark.parametrize("direction", ["inbound", "return", "snat", "none"])
@pytest.mark.parametrize("offsets", [None, (1, 2**32 - 1), (2**31, 2**31 + 5)])
def test_tcp_matrix(vlan, options, direction, offsets):
    frame = tcp_frame(vlan, options, seq=2**32 - 1, ack=2**32 - 3, flags="PA")
    changes = {"inbound": INBOUND, "return": RETURN, "none": {},
               "snat": dict(set_src_ip=True, new_src_ip=ip_int("203.0.113.1"), set_src_port=True,
                            new_src_port=61000)}[direction]
    if offsets:
        changes = {**changes, "add_offsets": True, "seq_delta": offsets[0], "ack_delta": offsets[1]}
    c = command_for(frame, vlan_rewrite=vlan, vlan_id=0xABC, **changes)
    got = rewrite_frame(frame, c)
    assert got == expected(frame, c)
    assert len(got) == len(frame)


@pytest.mark.parametrize("vlan", [False, True])
@pytest.mark.parametrize("zero", [False, True])
@pytest.mark.parametrize("direction", [INBOUND, RETURN])
def test_udp_matrix(vlan, zero, direction):
    frame = udp_frame(vlan, zero)
    c = command_for(frame, **direction)
    got = rewrite_frame(frame, c)
    assert got == expected(frame, c)
    if zero:
        assert Ether(got)[UDP].chksum == 0


def test_icmp_and_unknown_protocol_get_l3_only():
    for pkt in (Ether() / IP(src="192.0.2.7", dst="198.51.100.10") / ICMP(id=3, seq=4) / b"ping",
                Ether() / IP(src="192.0.2.7", dst="198.51.100.10", proto=47) / (b"\x00" * 20)):
        frame = bytes(pkt)
        c = command_for(frame, set_dst_ip=True, new_dst_ip=NODE, set_dst_port=True, new_dst_port=1)
        got = rewrite_frame(frame, c)
        assert got == expected(frame, c)
        assert got[34:] == frame[34:]  # the L4 bytes are untouched


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_fragments_first_and_later(proto):
    l4 = TCP(sport=40001, dport=80, seq=5) if proto == "tcp" else UDP(sport=5353, dport=53)
    whole = IP(src="192.0.2.7", dst="198.51.100.10", id=999) / l4 / bytes(range(200))
    whole = IP(bytes(whole))  # checksums fixed over the whole datagram
    frags = [Ether(bytes(Ether(src="02:00:00:00:00:0c") / f)) for f in fragment(whole, fragsize=64)]
    assert len(frags) >= 3
    changes = dict(INBOUND, add_offsets=True, seq_delta=7)
    # scapy rewrites the whole datagram (L4 checksum over all of it), then fragments it.
    c_whole = command_for(bytes(Ether() / whole), **changes)
    new_whole = IP(bytes(scapy_rewrite(Ether(src="02:00:00:00:00:0c") / whole, c_whole)[IP]))
    want = [bytes(Ether(dst=mac_str(c_whole.eth_dst), src=mac_str(c_whole.eth_src)) / f)
            for f in fragment(new_whole, fragsize=64)]
    for frag, w in zip(frags, want, strict=True):
        c = command_for(bytes(frag), **changes)
        assert c.l4_valid == (frag[IP].frag == 0)
        assert rewrite_frame(bytes(frag), c) == w


def _free_word_for_zero_checksum(frame: bytes, c: RewriteCommandModel, field: str) -> RewriteCommandModel:
    """Pick a free 16-bit word (the low word of ``field``) so the recomputed
    checksum is 0x0000: with the word 0 the checksum is ~S, and the word ~S
    makes the sum 0xFFFF."""
    p = Ether(expected(frame, dataclasses.replace(c, **{field: 0})))
    ck = p[IP].chksum if field == "new_dst_ip" else p[TCP].chksum if TCP in p else p[UDP].chksum
    return dataclasses.replace(c, **{field: ck})


@pytest.mark.parametrize("kind", ["ip", "tcp", "udp"])
def test_checksum_corners(kind):
    frame = udp_frame() if kind == "udp" else tcp_frame(seq=1, ack=2)
    c = command_for(frame, set_dst_ip=True, new_dst_ip=0, set_dst_port=True, new_dst_port=0)
    field = "new_dst_ip" if kind == "ip" else "new_dst_port"
    c = _free_word_for_zero_checksum(frame, c, field)
    got = rewrite_frame(frame, c)
    assert got == expected(frame, c)
    p = Ether(got)
    if kind == "ip":
        assert p[IP].chksum == 0x0000
    elif kind == "tcp":
        assert p[TCP].chksum == 0x0000
    else:
        assert p[UDP].chksum == 0xFFFF  # computes to 0, sent as 0xFFFF


def test_drop_returns_nothing():
    frame = tcp_frame()
    assert rewrite_frame(frame, command_for(frame, drop=True)) == b""


def random_frame(rng: random.Random) -> bytes:
    eth = Ether(src="02:00:00:00:00:0c", dst="02:00:00:00:d0:f5")
    if rng.random() < 0.3:
        eth = eth / Dot1Q(vlan=rng.randrange(1, 4095), prio=rng.randrange(8))
    ip = IP(src=ip_str(rng.getrandbits(32)), dst=ip_str(rng.getrandbits(32)), tos=rng.randrange(256),
            ttl=rng.randrange(1, 256), id=rng.getrandbits(16),
            options=[b"\x01" * 4 * rng.randrange(1, 6)] if rng.random() < 0.3 else [])
    payload = rng.randbytes(rng.choice([0, 1, 7, 100]))
    kind = rng.choice(["tcp", "tcp", "udp", "udp0", "icmp"])
    if kind == "tcp":
        l4 = TCP(sport=rng.getrandbits(16), dport=rng.getrandbits(16), seq=rng.getrandbits(32),
                 ack=rng.getrandbits(32), flags=rng.choice(["S", "A", "PA", "FA", "R"]))
    elif kind.startswith("udp"):
        l4 = UDP(sport=rng.getrandbits(16), dport=rng.getrandbits(16))
    else:
        l4 = ICMP()
    p = Ether(bytes(eth / ip / l4 / payload))
    if kind == "udp0":
        p[UDP].chksum = 0
    return bytes(p)


def random_changes(rng: random.Random) -> dict:
    return dict(
        eth_dst=rng.getrandbits(48), eth_src=rng.getrandbits(48),
        set_src_ip=rng.random() < 0.5, new_src_ip=rng.getrandbits(32),
        set_dst_ip=rng.random() < 0.5, new_dst_ip=rng.getrandbits(32),
        set_src_port=rng.random() < 0.5, new_src_port=rng.getrandbits(16),
        set_dst_port=rng.random() < 0.5, new_dst_port=rng.getrandbits(16),
        vlan_rewrite=rng.random() < 0.5, vlan_id=rng.getrandbits(12),
        add_offsets=rng.random() < 0.5, seq_delta=rng.choice([0, 1, 2**32 - 1, rng.getrandbits(32)]),
        ack_delta=rng.getrandbits(32),
    )


def test_random_frames_and_commands():
    rng = random.Random(1624)
    for _ in range(400):
        frame = random_frame(rng)
        c = command_for(frame, **random_changes(rng))
        assert rewrite_frame(frame, c) == expected(frame, c), Ether(frame).summary()
