"""The reference header parser (twinplane.model.frames) against scapy's dissection."""

import random

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether

from twinplane.model.frames import FragmentKind, FrameClass, MalformedReason, parse_frame
from twinplane.sim.parser.matrix import header_matrix, random_frames, truncations, valid_matrix


def _ip2int(a: str) -> int:
    return int.from_bytes(bytes(int(x) for x in a.split(".")), "big")


def _mac2int(a: str) -> int:
    return int(a.replace(":", ""), 16)


def _scapy_checksum_ok(ip) -> bool:
    hdr = bytes(ip)[: ip.ihl * 4]
    clean = IP(hdr[:10] + b"\x00\x00" + hdr[12:])
    del clean.chksum
    return IP(bytes(clean)).chksum == ip.chksum


def check_against_scapy(frame: bytes):
    rec = parse_frame(frame)
    assert rec.frame_length == len(frame)
    if rec.malformed_reason == MalformedReason.TRUNCATED_L2:
        assert len(frame) < 14 or (frame[12:14] == b"\x81\x00" and len(frame) < 18)
        return rec
    pkt = Ether(frame)
    if int.from_bytes(frame[12:14], "big") < 0x600:  # scapy dissects an 802.3 length frame
        assert (rec.klass, rec.ethertype) == (FrameClass.OTHER, int.from_bytes(frame[12:14], "big"))
        return rec
    assert rec.eth_dst == _mac2int(pkt.dst) and rec.eth_src == _mac2int(pkt.src)
    assert rec.vlan == (Dot1Q in pkt and pkt.type == 0x8100)
    if rec.vlan:
        assert rec.vlan_id == pkt[Dot1Q].vlan and rec.ethertype == pkt[Dot1Q].type
    else:
        assert rec.ethertype == pkt.type
    k = rec.klass
    if k in (FrameClass.IPV4_TCP, FrameClass.IPV4_UDP, FrameClass.IPV4_ICMP, FrameClass.IPV4_OTHER):
        ip = pkt[IP]
        assert (rec.src_ip, rec.dst_ip) == (_ip2int(ip.src), _ip2int(ip.dst))
        assert (rec.protocol, rec.tos, rec.ip_total_length) == (ip.proto, ip.tos, ip.len)
        assert rec.ip_options == (ip.ihl > 5) and rec.ip_checksum_ok and _scapy_checksum_ok(ip)
        assert rec.l4_offset == rec.l3_offset + ip.ihl * 4
        later = ip.frag != 0
        assert (rec.fragment == FragmentKind.LATER) == later
        assert (rec.fragment == FragmentKind.FIRST) == (not later and bool(ip.flags.MF))
        if later or k == FrameClass.IPV4_OTHER:
            assert (rec.src_port, rec.dst_port, rec.tcp_flags) == (0, 0, 0)
        elif k == FrameClass.IPV4_TCP:
            assert (rec.src_port, rec.dst_port, rec.tcp_flags) == (ip[TCP].sport, ip[TCP].dport, int(ip[TCP].flags))
        elif k == FrameClass.IPV4_UDP:
            assert (rec.src_port, rec.dst_port) == (ip[UDP].sport, ip[UDP].dport)
        else:
            assert (rec.src_port, rec.dst_port) == (ip[ICMP].type, ip[ICMP].code)
    elif k == FrameClass.ARP:
        arp = pkt[ARP]
        assert (arp.hwtype, arp.ptype, arp.hwlen, arp.plen) == (1, 0x0800, 6, 4)
        assert (rec.arp_oper, rec.arp_sha) == (arp.op, _mac2int(arp.hwsrc))
        assert (rec.src_ip, rec.dst_ip) == (_ip2int(arp.psrc), _ip2int(arp.pdst))
    elif k == FrameClass.IPV6:
        assert IPv6 in pkt
    elif k == FrameClass.MALFORMED:
        # never mis-parsed into a flow signature
        assert (rec.src_ip, rec.dst_ip, rec.src_port, rec.dst_port, rec.protocol, rec.tos) == (0,) * 6
        reason = rec.malformed_reason
        if reason == MalformedReason.BAD_IP_CHECKSUM:
            assert not _scapy_checksum_ok(pkt[IP]) and not rec.ip_checksum_ok
        elif reason == MalformedReason.IHL_TOO_SMALL:
            assert pkt[IP].ihl < 5
        elif reason == MalformedReason.TOTAL_LENGTH_BEYOND_FRAME:
            assert pkt[IP].len > len(frame) - rec.l3_offset
    return rec


def test_valid_frames_match_scapy_and_are_not_malformed():
    for frame in valid_matrix():
        rec = check_against_scapy(frame)
        assert rec.klass != FrameClass.MALFORMED, (frame.hex(), rec)


@pytest.mark.parametrize(
    "build, klass, reason",
    [
        (lambda: IP(chksum=0x1234) / TCP(), FrameClass.MALFORMED, MalformedReason.BAD_IP_CHECKSUM),
        (lambda: IP(ihl=4) / bytes(30), FrameClass.MALFORMED, MalformedReason.IHL_TOO_SMALL),
        (lambda: IP(version=5) / bytes(30), FrameClass.MALFORMED, MalformedReason.BAD_VERSION),
        (lambda: IP(len=300) / UDP(), FrameClass.MALFORMED, MalformedReason.TOTAL_LENGTH_BEYOND_FRAME),
        (lambda: IP(len=24) / TCP(), FrameClass.MALFORMED, MalformedReason.TRUNCATED_L4),
        (lambda: IP(frag=8, proto=6, len=24) / TCP(), FrameClass.IPV4_TCP, MalformedReason.NONE),
        (lambda: ARP(ptype=0x86DD), FrameClass.OTHER, MalformedReason.NONE),
    ],
)
def test_broken_headers(build, klass, reason):
    for l2 in (Ether(), Ether() / Dot1Q(vlan=3)):
        rec = check_against_scapy(bytes(l2 / build()))
        assert (rec.klass, rec.malformed_reason) == (klass, reason)


def test_matrix_truncations_and_random_match_scapy():
    frames = header_matrix()
    frames += truncations(frames) + random_frames(random.Random(7), 3000)
    seen = {parse_frame(f).klass for f in frames}
    assert seen == set(FrameClass)
    for frame in frames:
        check_against_scapy(frame)


def test_truncation_never_yields_signature_from_missing_bytes():
    for frame in valid_matrix():
        full = parse_frame(frame)
        for cut in range(len(frame)):
            rec = parse_frame(frame[:cut])
            if rec.klass in (FrameClass.IPV4_TCP, FrameClass.IPV4_UDP, FrameClass.IPV4_ICMP):
                assert rec.l4_offset + {2: 20, 3: 8, 4: 8}[rec.klass] <= cut
                assert (rec.src_ip, rec.src_port) == (full.src_ip, full.src_port)
