# Reference header parser: the oracle of hdl/parser/parser.py.
# Ref: IEEE 802.3 §3.2 (MAC frame), IEEE 802.1Q §9.6 (VLAN tag), RFC 791 §3.1
#      (IPv4 header), RFC 1071 (header checksum), RFC 826 (ARP), RFC 793 §3.1
#      (TCP header), RFC 768 (UDP), RFC 792 (ICMP).
"""Pure-Python header parser: ``parse_frame(frame) -> ParsedFrameModel``.

``frame`` is a frame as it travels on the packet stream: destination MAC
first, no preamble, no FCS.  Every multi-byte field holds the numeric value
read in network order (IPv4 10.0.0.1 is ``0x0A000001``).

Rules the gateware follows bit for bit:

* ``frame_length`` is ``len(frame)`` saturated at 0xFFFF.
* A frame shorter than its L2 header (14 bytes, 18 with an 802.1Q tag) is
  ``MALFORMED``/``TRUNCATED_L2`` and carries nothing but ``frame_length``.
* Any other ``MALFORMED`` record carries only its L2 fields (``eth_*``,
  ``ethertype``, ``vlan``, ``vlan_id``, ``l3_offset``), ``frame_length``,
  the reason and ``ip_checksum_ok``: a malformed header is never parsed into
  a flow signature (src/dst ip, ports, protocol, tos stay 0).
* IPv4 checks, first failing one wins: fewer than 20 bytes after L2
  (TRUNCATED_L3), version != 4 (BAD_VERSION), IHL < 5 (IHL_TOO_SMALL), fewer
  than IHL*4 bytes (TRUNCATED_L3), total length < IHL*4
  (TOTAL_LENGTH_TOO_SMALL), total length beyond the frame
  (TOTAL_LENGTH_BEYOND_FRAME; Ethernet padding may make the frame longer, not
  shorter), header checksum (BAD_IP_CHECKSUM), then the L4 header inside the
  total length: TCP 20, UDP 8, ICMP 8 bytes (TRUNCATED_L4) -- not checked on a
  LATER fragment, which has no L4 header.
* ``ip_checksum_ok``: the frame is IPv4 (ethertype 0x0800), version 4,
  IHL >= 5, the whole IHL*4-byte header is in the frame and its one's
  complement sum is 0xFFFF.  Set even when the record is MALFORMED for
  another reason (e.g. total length beyond the frame).
* Ports: TCP/UDP ports; ICMP puts ``type`` in ``src_port`` and ``code`` in
  ``dst_port``; 0 for IPV4_OTHER and LATER fragments (``fragment`` says why).
* ARP (Ethernet/IPv4 only: htype 1, ptype 0x0800, hlen 6, plen 4, 28 bytes):
  ``arp_oper``, ``arp_sha``; sender/target protocol addresses reuse ``src_ip``
  / ``dst_ip``.  Fewer than 28 bytes: MALFORMED/TRUNCATED_L3; another
  htype/ptype/hlen/plen: OTHER.
* IPv6 is classed only (40-byte fixed header present, else TRUNCATED_L3).
  Room for it later: ``src_ip``/``dst_ip`` would widen to 128 bits (or a
  second pair of 128-bit fields), ``tos`` takes the traffic class and
  ``protocol`` the final next-header after the extension-header walk.
* ``l4_offset`` is ``l3_offset + IHL*4`` for non-malformed IPv4, else 0.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from amaranth.lib import enum

__all__ = [
    "FragmentKind",
    "FrameClass",
    "MalformedReason",
    "ParsedFrameModel",
    "parse_frame",
]


class FrameClass(enum.IntEnum, shape=3):
    """What a frame is; one value per frame (flags are separate fields)."""

    OTHER = 0
    ARP = 1
    IPV4_TCP = 2
    IPV4_UDP = 3
    IPV4_ICMP = 4
    IPV4_OTHER = 5
    IPV6 = 6
    MALFORMED = 7


class FragmentKind(enum.IntEnum, shape=2):
    NONE = 0
    FIRST = 1  # MF set, offset 0: carries the L4 header
    LATER = 2  # offset != 0: no L4 header, so no ports


class MalformedReason(enum.IntEnum, shape=4):
    NONE = 0
    TRUNCATED_L2 = 1
    TRUNCATED_L3 = 2
    BAD_VERSION = 3
    IHL_TOO_SMALL = 4
    TOTAL_LENGTH_TOO_SMALL = 5
    TOTAL_LENGTH_BEYOND_FRAME = 6
    BAD_IP_CHECKSUM = 7
    TRUNCATED_L4 = 8


ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_IPV6 = 0x86DD
L4_HEADER_BYTES = {6: 20, 17: 8, 1: 8}
L4_CLASS = {6: FrameClass.IPV4_TCP, 17: FrameClass.IPV4_UDP, 1: FrameClass.IPV4_ICMP}


@dataclass
class ParsedFrameModel:
    klass: FrameClass = FrameClass.OTHER
    malformed_reason: MalformedReason = MalformedReason.NONE
    vlan: int = 0
    """802.1Q tag present (one tag; the tag's ethertype is skipped)."""
    vlan_id: int = 0
    ip_options: int = 0
    """IHL > 5."""
    fragment: FragmentKind = FragmentKind.NONE
    ip_checksum_ok: int = 0
    eth_dst: int = 0
    eth_src: int = 0
    ethertype: int = 0
    """The inner ethertype, after a VLAN tag."""
    src_ip: int = 0
    """IPv4 source; ARP sender protocol address."""
    dst_ip: int = 0
    """IPv4 destination; ARP target protocol address."""
    src_port: int = 0
    """TCP/UDP source port; ICMP type."""
    dst_port: int = 0
    """TCP/UDP destination port; ICMP code."""
    protocol: int = 0
    tos: int = 0
    tcp_flags: int = 0
    l3_offset: int = 0
    l4_offset: int = 0
    ip_total_length: int = 0
    frame_length: int = 0
    arp_oper: int = 0
    arp_sha: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}


def _be(frame: bytes, start: int, size: int) -> int:
    return int.from_bytes(frame[start:start + size], "big")


def _header_sum(header: bytes) -> int:
    total = sum(_be(header, i, 2) for i in range(0, len(header), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _malformed(rec: ParsedFrameModel, reason: MalformedReason) -> ParsedFrameModel:
    rec.klass = FrameClass.MALFORMED
    rec.malformed_reason = reason
    return rec


def parse_frame(frame: bytes) -> ParsedFrameModel:
    n = len(frame)
    rec = ParsedFrameModel(frame_length=min(n, 0xFFFF))
    if n < 14:
        return _malformed(rec, MalformedReason.TRUNCATED_L2)
    ethertype = _be(frame, 12, 2)
    l3 = 14
    if ethertype == ETHERTYPE_VLAN:
        if n < 18:
            return _malformed(rec, MalformedReason.TRUNCATED_L2)
        rec.vlan = 1
        rec.vlan_id = _be(frame, 14, 2) & 0xFFF
        ethertype = _be(frame, 16, 2)
        l3 = 18
    rec.eth_dst = _be(frame, 0, 6)
    rec.eth_src = _be(frame, 6, 6)
    rec.ethertype = ethertype
    rec.l3_offset = l3
    avail = n - l3

    if ethertype == ETHERTYPE_ARP:
        if avail < 28:
            return _malformed(rec, MalformedReason.TRUNCATED_L3)
        if (_be(frame, l3, 2), _be(frame, l3 + 2, 2), frame[l3 + 4], frame[l3 + 5]) != (1, 0x0800, 6, 4):
            return rec
        rec.klass = FrameClass.ARP
        rec.arp_oper = _be(frame, l3 + 6, 2)
        rec.arp_sha = _be(frame, l3 + 8, 6)
        rec.src_ip = _be(frame, l3 + 14, 4)
        rec.dst_ip = _be(frame, l3 + 24, 4)
        return rec

    if ethertype == ETHERTYPE_IPV6:
        if avail < 40:
            return _malformed(rec, MalformedReason.TRUNCATED_L3)
        rec.klass = FrameClass.IPV6
        return rec

    if ethertype != ETHERTYPE_IPV4:
        return rec

    if avail < 20:
        return _malformed(rec, MalformedReason.TRUNCATED_L3)
    version, ihl = frame[l3] >> 4, frame[l3] & 0xF
    hlen = ihl * 4
    if version == 4 and ihl >= 5 and avail >= hlen:
        rec.ip_checksum_ok = int(_header_sum(frame[l3:l3 + hlen]) == 0xFFFF)
    total_length = _be(frame, l3 + 2, 2)
    if version != 4:
        return _malformed(rec, MalformedReason.BAD_VERSION)
    if ihl < 5:
        return _malformed(rec, MalformedReason.IHL_TOO_SMALL)
    if avail < hlen:
        return _malformed(rec, MalformedReason.TRUNCATED_L3)
    if total_length < hlen:
        return _malformed(rec, MalformedReason.TOTAL_LENGTH_TOO_SMALL)
    if total_length > avail:
        return _malformed(rec, MalformedReason.TOTAL_LENGTH_BEYOND_FRAME)
    if not rec.ip_checksum_ok:
        return _malformed(rec, MalformedReason.BAD_IP_CHECKSUM)
    flags_frag = _be(frame, l3 + 6, 2)
    offset, more = flags_frag & 0x1FFF, (flags_frag >> 13) & 1
    fragment = FragmentKind.LATER if offset else FragmentKind.FIRST if more else FragmentKind.NONE
    protocol = frame[l3 + 9]
    l4 = l3 + hlen
    need = L4_HEADER_BYTES.get(protocol, 0)
    if fragment != FragmentKind.LATER and total_length - hlen < need:
        return _malformed(rec, MalformedReason.TRUNCATED_L4)

    rec.klass = L4_CLASS.get(protocol, FrameClass.IPV4_OTHER)
    rec.ip_options = int(ihl > 5)
    rec.fragment = fragment
    rec.tos = frame[l3 + 1]
    rec.ip_total_length = total_length
    rec.protocol = protocol
    rec.src_ip = _be(frame, l3 + 12, 4)
    rec.dst_ip = _be(frame, l3 + 16, 4)
    rec.l4_offset = l4
    if fragment == FragmentKind.LATER:
        return rec
    if protocol in (6, 17):
        rec.src_port = _be(frame, l4, 2)
        rec.dst_port = _be(frame, l4 + 2, 2)
    if protocol == 6:
        rec.tcp_flags = frame[l4 + 13]
    if protocol == 1:
        rec.src_port = frame[l4]
        rec.dst_port = frame[l4 + 1]
    return rec
