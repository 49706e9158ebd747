# NAT rewrite of one Ethernet frame: the reference model of the DFS rewriter.
# Ref: RFC 1624 §3 eqn. 3 (incremental checksum), RFC 791 (IPv4 header),
#      RFC 793 (TCP header, pseudo-header), RFC 768 (UDP checksum 0 = none);
#      the patent's TRANSLATE_ADDR / TRANSLATE_PORT / ADD_TCP_OFFSETS / OUTBOUND.
"""What the rewriter does to a frame, byte for byte.

The command carries the old header values as the parser read them (the
gateware needs them because the IPv4 checksum passes before the addresses)
and the new ones with an enable each.  Changes:

* Ethernet: destination and source MAC always replaced.
* 802.1Q: when the frame is ``tagged`` and ``vlan_rewrite`` is set, the
  12-bit VLAN id is replaced (PCP/DEI kept).  Length-preserving only: a tag
  is never inserted or removed.
* IPv4: source and/or destination address; the header checksum updated.
* TCP/UDP (only when ``l4_valid``: a later fragment has no L4 header, so
  only L3 fields change): ports; with ``add_offsets`` on TCP, seq += seq_delta
  and ack += ack_delta mod 2**32; the checksum updated for the pseudo-header
  addresses, ports and seq/ack.  UDP checksum 0 (none) stays 0; a UDP
  checksum that computes to 0 is sent as 0xFFFF.  Other protocols (ICMP...)
  only get the L3 changes: their checksums do not cover the addresses.
* ``drop``: the frame is consumed and nothing leaves (returns ``b""``).

Every checksum follows RFC 1624 eqn. 3, which equals a full recomputation
(see :mod:`twinplane.model.checksum`) as long as the incoming one was right.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checksum import checksum_update, split32, udp_checksum_update

__all__ = ["RewriteCommandModel", "command_from_decision", "rewrite_frame"]

_TCP, _UDP = 6, 17
_M32 = 0xFFFF_FFFF


@dataclass(frozen=True)
class RewriteCommandModel:
    """One frame's rewrite: the same fields as the gateware's ``RewriteCommand``."""

    eth_dst: int
    """new destination MAC (48-bit, first byte on the wire most significant)"""
    eth_src: int
    """new source MAC"""
    l3_offset: int
    """offset of the IPv4 header (14 untagged, 18 tagged)"""
    l4_offset: int
    """offset of the TCP/UDP header (l3_offset + 4 * IHL)"""
    protocol: int
    """IPv4 protocol (6 TCP, 17 UDP; others get L3 changes only)"""
    old_src_ip: int
    old_dst_ip: int
    old_src_port: int = 0
    old_dst_port: int = 0
    new_src_ip: int = 0
    new_dst_ip: int = 0
    new_src_port: int = 0
    new_dst_port: int = 0
    set_src_ip: bool = False
    """return flow / OUTBOUND (SNAT): the source address becomes ``new_src_ip``"""
    set_dst_ip: bool = False
    """inbound flow: the destination address becomes ``new_dst_ip`` (the node)"""
    set_src_port: bool = False
    set_dst_port: bool = False
    l4_valid: bool = True
    """the frame carries its L4 header (false for a later fragment)"""
    tagged: bool = False
    """the frame has an 802.1Q tag (from the parser)"""
    vlan_rewrite: bool = False
    vlan_id: int = 0
    add_offsets: bool = False
    """ADD_TCP_OFFSETS: TCP only"""
    seq_delta: int = 0
    ack_delta: int = 0
    drop: bool = False


def _put(buf: bytearray, at: int, width: int, value: int) -> None:
    buf[at : at + width] = value.to_bytes(width, "big")


def rewrite_frame(frame: bytes, command: RewriteCommandModel) -> bytes:
    """The frame as the rewriter sends it (``b""`` when ``command.drop``)."""
    c = command
    if c.drop:
        return b""
    out = bytearray(frame)
    _put(out, 0, 6, c.eth_dst)
    _put(out, 6, 6, c.eth_src)
    if c.tagged and c.vlan_rewrite:
        tci = int.from_bytes(out[14:16], "big")
        _put(out, 14, 2, (tci & 0xF000) | (c.vlan_id & 0xFFF))

    l3, l4 = c.l3_offset, c.l4_offset
    src_ip = c.new_src_ip if c.set_src_ip else c.old_src_ip
    dst_ip = c.new_dst_ip if c.set_dst_ip else c.old_dst_ip
    # Words that changed in the pseudo-header / IPv4 header (addresses).
    old_ip_words = [*split32(c.old_src_ip), *split32(c.old_dst_ip)]
    new_ip_words = [*split32(src_ip), *split32(dst_ip)]
    ip_ck = int.from_bytes(out[l3 + 10 : l3 + 12], "big")
    _put(out, l3 + 10, 2, checksum_update(ip_ck, old_ip_words, new_ip_words))
    _put(out, l3 + 12, 4, src_ip)
    _put(out, l3 + 16, 4, dst_ip)

    if not c.l4_valid or c.protocol not in (_TCP, _UDP):
        return bytes(out)
    src_port = c.new_src_port if c.set_src_port else c.old_src_port
    dst_port = c.new_dst_port if c.set_dst_port else c.old_dst_port
    old_words = [*old_ip_words, c.old_src_port, c.old_dst_port]
    new_words = [*new_ip_words, src_port, dst_port]
    _put(out, l4, 2, src_port)
    _put(out, l4 + 2, 2, dst_port)
    if c.protocol == _TCP:
        if c.add_offsets:
            seq = int.from_bytes(out[l4 + 4 : l4 + 8], "big")
            ack = int.from_bytes(out[l4 + 8 : l4 + 12], "big")
            new_seq = (seq + c.seq_delta) & _M32
            new_ack = (ack + c.ack_delta) & _M32
            old_words += [*split32(seq), *split32(ack)]
            new_words += [*split32(new_seq), *split32(new_ack)]
            _put(out, l4 + 4, 4, new_seq)
            _put(out, l4 + 8, 4, new_ack)
        ck = int.from_bytes(out[l4 + 16 : l4 + 18], "big")
        _put(out, l4 + 16, 2, checksum_update(ck, old_words, new_words))
    else:
        ck = int.from_bytes(out[l4 + 6 : l4 + 8], "big")
        _put(out, l4 + 6, 2, udp_checksum_update(ck, old_words, new_words))
    return bytes(out)


def command_from_decision(decision: dict, own_mac: int, *, l4_valid: bool = True) -> RewriteCommandModel:
    """The command the DFS's rewriter (hdl/rewrite/command_rewriter.py, fed by
    hdl/dfs/adapters.py's DecisionToCommand) carries out for
    a forwarder ``decision`` (the fields of ``decision_layout``, ``action`` as
    :func:`twinplane.model.flowkey.unpack_action` gives it): one side
    translated (``rewrite_source``: source, else destination), source MAC =
    ``own_mac``."""
    a = decision["action"]
    src = bool(a["rewrite_source"])
    addr, port = bool(a["translate_addr"]), bool(a["translate_port"])
    return RewriteCommandModel(
        eth_dst=a["eth_dst"], eth_src=own_mac, l3_offset=decision["l3_offset"], l4_offset=decision["l4_offset"],
        protocol=decision["protocol"], old_src_ip=decision["src_ip"], old_dst_ip=decision["dst_ip"],
        old_src_port=decision["src_port"], old_dst_port=decision["dst_port"],
        new_src_ip=a["new_ip"], new_dst_ip=a["new_ip"], new_src_port=a["new_port"], new_dst_port=a["new_port"],
        set_src_ip=src and addr, set_dst_ip=not src and addr, set_src_port=src and port,
        set_dst_port=not src and port, l4_valid=l4_valid, tagged=bool(decision["vlan_valid"]),
        vlan_rewrite=bool(a["vlan_rewrite"]), vlan_id=a["vlan_id"], add_offsets=bool(a["add_offsets"]),
        seq_delta=a["seq_delta"], ack_delta=a["ack_delta"],
    )
