"""The flow key and the per-entry action of the DFS flow table, declared once
for the gateware (``hdl/dfs``) and the reference model.

Both are packed least significant field first, the way Amaranth lays out a
``data.StructLayout``, so ``pack_key(...)`` is bit for bit the gateware's
key and the flow table model hashes (and evicts) exactly as the RTL.

Why the key is a 5-tuple plus direction, not the patent's sextuple: the
type-of-service byte carries ECN bits that routers rewrite within one TCP
connection (RFC 3168) and DSCP that networks remark, so a key with TOS would
split one connection into several flows.  TOS stays in the flow signature the
CS sees (QUERY), it only does not select the entry.
"""

from __future__ import annotations

__all__ = [
    "ACTION_FIELDS",
    "ACTION_WIDTH",
    "KEY_FIELDS",
    "KEY_WIDTH",
    "pack_action",
    "pack_key",
    "unpack_action",
    "unpack_key",
]

#: (name, bits), least significant first.
KEY_FIELDS: tuple[tuple[str, int], ...] = (
    ("src_ip", 32),
    ("dst_ip", 32),
    ("src_port", 16),  # ICMP echo: identifier
    ("dst_port", 16),  # ICMP echo: 0
    ("protocol", 8),
    ("inbound", 1),  # 1: arrived on an external port (client -> virtual server)
)
KEY_WIDTH = sum(bits for _, bits in KEY_FIELDS)

ACTION_FIELDS: tuple[tuple[str, int], ...] = (
    ("egress_port", 2),  # DFS network port the frame leaves on
    ("rewrite_source", 1),  # 0: destination is rewritten (inbound); 1: source (return flow, SNAT)
    ("translate_addr", 1),
    ("translate_port", 1),
    ("new_ip", 32),
    ("new_port", 16),
    ("eth_dst", 48),  # next-hop MAC; the source MAC becomes the DFS's own
    ("vlan_rewrite", 1),  # a tagged frame gets vlan_id
    ("vlan_id", 12),
    ("add_offsets", 1),  # ADD_TCP_OFFSETS
    ("seq_delta", 32),  # added to the TCP sequence number (mod 2**32)
    ("ack_delta", 32),  # added to the TCP acknowledgement number
)
ACTION_WIDTH = sum(bits for _, bits in ACTION_FIELDS)


def _pack(fields: tuple[tuple[str, int], ...], values: dict[str, int], what: str) -> int:
    word, shift = 0, 0
    unknown = set(values) - {name for name, _ in fields}
    if unknown:
        raise ValueError(f"{what}: unknown fields {sorted(unknown)!r}")
    for name, bits in fields:
        value = int(values.get(name, 0))
        if value < 0 or value >> bits:
            raise ValueError(f"{what}.{name}: {value!r} does not fit in {bits} bits")
        word |= value << shift
        shift += bits
    return word


def _unpack(fields: tuple[tuple[str, int], ...], word: int) -> dict[str, int]:
    out, shift = {}, 0
    for name, bits in fields:
        out[name] = word >> shift & ((1 << bits) - 1)
        shift += bits
    return out


def pack_key(**values: int) -> int:
    return _pack(KEY_FIELDS, values, "key")


def unpack_key(word: int) -> dict[str, int]:
    return _unpack(KEY_FIELDS, word)


def pack_action(**values: int) -> int:
    return _pack(ACTION_FIELDS, values, "action")


def unpack_action(word: int) -> dict[str, int]:
    return _unpack(ACTION_FIELDS, word)
