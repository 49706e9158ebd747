"""Frame matrices for the header parser tests, built with scapy.

``header_matrix()`` covers VLAN/no VLAN, IPv4 options, first and later
fragments, TCP/UDP/ICMP/other protocols, ARP request/reply, IPv6, non-IP,
bad checksum, IHL < 5, bad version, total length beyond the frame.
``truncations(frames)`` cuts frames at every byte of their headers;
``random_frames(rng, n)`` gives random bytes and mutated valid frames.
"""

from __future__ import annotations

import random

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether

__all__ = ["header_matrix", "random_frames", "truncations", "valid_matrix"]

MAC_A = "02:00:00:00:00:01"
MAC_B = "02:11:22:33:44:55"


def _l2(vlan: bool):
    eth = Ether(dst=MAC_B, src=MAC_A)
    return eth / Dot1Q(vlan=0x5A5, prio=3) if vlan else eth


def _ip(**kw):
    return IP(src="10.0.0.1", dst="192.168.7.9", tos=0xB8, ttl=17, **kw)


def valid_matrix() -> list[bytes]:
    """Well-formed frames (scapy computes lengths and checksums)."""
    frames = []
    options = [[], [b"\x01\x01\x01\x00"], [b"\x07\x0b\x04" + bytes(8) + b"\x00"],
               [bytes([0x44, 40]) + bytes(38)]]
    for vlan in (False, True):
        l2 = _l2(vlan)
        for opt in options:
            ipkw = {"options": opt} if opt else {}
            frames.append(bytes(l2 / _ip(**ipkw) / TCP(sport=1234, dport=80, flags="SA") / b"payload"))
            frames.append(bytes(l2 / _ip(**ipkw) / UDP(sport=53, dport=40000) / b"xxx"))
            frames.append(bytes(l2 / _ip(**ipkw) / ICMP(type=8, code=0, id=7, seq=1)))
            frames.append(bytes(l2 / _ip(proto=47, **ipkw) / bytes(20)))
            # first fragment (MF, offset 0) and a later one (offset != 0)
            frames.append(bytes(l2 / _ip(flags="MF", **ipkw) / TCP(sport=5, dport=6, flags="S") / bytes(range(30))))
            frames.append(bytes(l2 / _ip(flags="MF", frag=3, proto=6, **ipkw) / bytes(24)))
            frames.append(bytes(l2 / _ip(frag=100, proto=17, **ipkw) / b"ccccc"))
        frames.append(bytes(l2 / ARP(op=1, hwsrc=MAC_A, psrc="10.0.0.1", pdst="10.0.0.2")))
        frames.append(bytes(l2 / ARP(op=2, hwsrc=MAC_B, psrc="10.0.0.2", hwdst=MAC_A, pdst="10.0.0.1")))
        frames.append(bytes(l2 / IPv6(src="fe80::1", dst="fe80::2") / UDP(sport=1, dport=2)))
        frames.append(bytes(l2) + b"\x88\xb5" + bytes(46))  # local experimental ethertype
        # small TCP/UDP frames padded to the Ethernet minimum (frame longer than 14+total_length)
        frames.append(bytes(l2 / _ip() / UDP(sport=7, dport=9)) + bytes(20))
        frames.append(bytes(l2 / _ip() / TCP(sport=7, dport=9, flags="R")) + bytes(6))
    return frames


def header_matrix() -> list[bytes]:
    """Valid frames plus deliberately broken headers."""
    frames = valid_matrix()
    for vlan in (False, True):
        l2 = _l2(vlan)
        good = _ip() / TCP(sport=1, dport=2)
        frames.append(bytes(l2 / _ip(chksum=0x1234) / TCP(sport=1, dport=2)))  # bad checksum
        for ihl in (0, 1, 4):
            frames.append(bytes(l2 / _ip(ihl=ihl) / bytes(30)))
        frames.append(bytes(l2 / _ip(version=6) / bytes(30)))
        frames.append(bytes(l2 / _ip(len=200) / TCP(sport=1, dport=2)))  # total length beyond frame
        frames.append(bytes(l2 / _ip(len=12) / bytes(30)))  # total length < IHL*4
        frames.append(bytes(l2 / _ip(len=30) / TCP(sport=1, dport=2)))  # TCP header cut by total length
        frames.append(bytes(l2 / _ip(len=27) / UDP(sport=1, dport=2)))
        frames.append(bytes(l2 / _ip(len=26) / ICMP()))
        frames.append(bytes(l2 / ARP(hwtype=6)))
        frames.append(bytes(l2 / ARP(plen=16)))
        frames.append(bytes(l2) + b"")
        frames.append(bytes(l2 / good)[:-1])
    return frames


def truncations(frames: list[bytes], upto: int = 82) -> list[bytes]:
    """Every non-empty prefix of each frame up to ``upto`` bytes (covers every header byte)."""
    return [f[:cut] for f in frames for cut in range(1, min(len(f), upto) + 1)]


def random_frames(rng: random.Random, n: int) -> list[bytes]:
    """Random bytes, random headers on known ethertypes, and mutated valid frames."""
    valid = valid_matrix()
    out = []
    for _ in range(n):
        kind = rng.randrange(4)
        if kind == 0:
            out.append(rng.randbytes(rng.randrange(1, 120)))
        elif kind == 1:
            et = rng.choice([b"\x08\x00", b"\x08\x06", b"\x86\xdd", b"\x81\x00"])
            out.append(rng.randbytes(12) + et + rng.randbytes(rng.randrange(0, 80)))
        else:
            f = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 4)):
                f[rng.randrange(min(len(f), 60))] ^= 1 << rng.randrange(8)
            if kind == 3:
                f = f[: rng.randrange(1, len(f) + 1)]
            out.append(bytes(f))
    return out
