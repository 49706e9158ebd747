"""rewrite_frame (the DFS's NAT rewrite with RFC 1624 incremental checksums)
against scapy over random frames: TCP/UDP, IP options, VLAN in and out, UDP
checksum 0, odd payload lengths, Ethernet padding."""

import random

import pytest
from scapy.layers.inet import IP, TCP, UDP, IPOption_NOP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Padding, Raw

from twinplane.model.dfs_path import rewrite_frame
from twinplane.model.frames import FrameClass, parse_frame


def _ip(rng):
    return ".".join(str(rng.randrange(256)) for _ in range(4))


def _mac(rng):
    return ":".join(f"{b:02x}" for b in rng.randbytes(6))


def _case(rng):
    proto = rng.choice((6, 17))
    options = [IPOption_NOP()] * rng.choice((0, 4, 8))
    ip = IP(src=_ip(rng), dst=_ip(rng), tos=rng.randrange(256), ttl=rng.randrange(1, 256), id=rng.randrange(65536),
            options=options)
    l4 = (TCP(sport=rng.randrange(65536), dport=rng.randrange(65536), seq=rng.getrandbits(32),
              ack=rng.getrandbits(32), flags=rng.choice(("S", "SA", "A", "PA", "FA", "R")))
          if proto == 6 else UDP(sport=rng.randrange(65536), dport=rng.randrange(65536)))
    pkt = ip / l4 / Raw(rng.randbytes(rng.randint(0, 99)))
    if proto == 17 and rng.random() < 0.3:
        pkt[UDP].chksum = 0
    in_vlan = rng.choice((0, 0, rng.randrange(1, 4095)))
    prio = rng.randrange(8) if in_vlan else 0
    eth = Ether(src=_mac(rng), dst=_mac(rng))
    frame = eth / Dot1Q(vlan=in_vlan, prio=prio) / pkt if in_vlan else eth / pkt
    if rng.random() < 0.2:
        frame = frame / Padding(bytes(rng.randint(1, 10)))
    return Ether(bytes(frame)), prio


@pytest.mark.parametrize("seed", range(4))
def test_rewrite_matches_scapy(seed):
    rng = random.Random(seed)
    for _ in range(150):
        frame, prio = _case(rng)
        p = parse_frame(bytes(frame))
        assert p.klass in (FrameClass.IPV4_TCP, FrameClass.IPV4_UDP)
        source = rng.random() < 0.5
        new_ip = rng.choice((None, rng.getrandbits(32)))
        new_port = rng.choice((None, rng.randrange(65536)))
        seq_delta, ack_delta = rng.choice((0, rng.getrandbits(32))), rng.choice((0, -rng.getrandbits(32)))
        src_mac, dst_mac = rng.randbytes(6), rng.randbytes(6)
        vlan = rng.choice((0, rng.randrange(1, 4095)))
        out = rewrite_frame(bytes(frame), p, rewrite_source=source, new_ip=new_ip, new_port=new_port,
                            seq_delta=seq_delta, ack_delta=ack_delta, eth_src=src_mac, eth_dst=dst_mac, vlan=vlan)
        # What scapy builds from the expected fields, checksums computed from scratch.
        ip = frame[IP].copy()
        if new_ip is not None:
            setattr(ip, "src" if source else "dst", ".".join(str(b) for b in new_ip.to_bytes(4, "big")))
        l4 = ip[TCP] if TCP in ip else ip[UDP]
        if new_port is not None:
            setattr(l4, "sport" if source else "dport", new_port)
        if TCP in ip:
            l4.seq = (l4.seq + seq_delta) & 0xFFFFFFFF
            if l4.flags & 0x10:
                l4.ack = (l4.ack + ack_delta) & 0xFFFFFFFF
        del ip.chksum
        if not (UDP in ip and ip[UDP].chksum == 0):
            del l4.chksum
        eth = Ether(src=src_mac, dst=dst_mac)
        expected = bytes(eth / Dot1Q(vlan=vlan, prio=prio) / ip if vlan else eth / ip)
        assert out == expected, frame.summary()
        assert Ether(out)[IP].ttl == frame[IP].ttl
