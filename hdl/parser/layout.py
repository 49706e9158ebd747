# The header parser's per-frame record.
# Ref: RFC 791 §3.1, IEEE 802.1Q §9.6, RFC 826 (fields); semantics in twinplane/model/frames.py.
"""``ParsedFrame``: one record per frame on the parser's ``meta`` stream.

Field names and meanings are those of
:class:`twinplane.model.frames.ParsedFrameModel` (the reference parser);
every multi-byte field holds the value read in network order (IPv4 10.0.0.1
is 0x0A000001).  ARP reuses ``src_ip``/``dst_ip`` for the sender/target
protocol addresses; ICMP puts type/code in ``src_port``/``dst_port``.

IPv6 later: add ``src_ip6``/``dst_ip6`` (128 bits) or widen ``src_ip``/
``dst_ip`` to 128 with IPv4 in the low 32 bits; ``tos`` takes the traffic
class and ``protocol`` the final next header.
"""

from amaranth.lib import data

from twinplane.model.frames import FragmentKind, FrameClass, MalformedReason

__all__ = ["FLOW_FIELDS", "ParsedFrame", "unpack_parsed_frame"]

#: The flow signature (the patent's sextuple) with the TCP flags and the
#: header offsets: what the parser finds and the DFS's frame info carries on,
#: under the same names and widths.
FLOW_FIELDS = {
    "src_ip": 32,
    "dst_ip": 32,
    "src_port": 16,
    "dst_port": 16,
    "protocol": 8,
    "tos": 8,
    "tcp_flags": 8,
    "l3_offset": 8,
    "l4_offset": 8,
}

ParsedFrame = data.StructLayout({
    "klass": FrameClass,
    "malformed_reason": MalformedReason,
    "vlan": 1,
    "vlan_id": 12,
    "ip_options": 1,
    "fragment": FragmentKind,
    "ip_checksum_ok": 1,
    "eth_dst": 48,
    "eth_src": 48,
    "ethertype": 16,
    **FLOW_FIELDS,
    "ip_total_length": 16,
    "frame_length": 16,
    "arp_oper": 16,
    "arp_sha": 48,
})


def unpack_parsed_frame(value: int) -> dict[str, int]:
    """Split a flat ``ParsedFrame`` value (as a simulator sees it) into fields."""
    out = {}
    for name, field in ParsedFrame:
        out[name] = (value >> field.offset) & ((1 << field.width) - 1)
    return out
