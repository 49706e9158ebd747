"""Fast packing of the CS's hot messages (QUERY in, REPLY out).

The generic codec (twinplane.protocol) builds a dataclass per message and
converts every address to an ipaddress object; at tens of thousands of flow
setups a second that dominates.  These precompiled structs read a QUERY and
write a REPLY with the same bytes as the codec (tests/test_cs_fastpath.py
pins the equivalence), keeping addresses as their 16 wire bytes.
"""

from __future__ import annotations

import ipaddress
import struct

from twinplane.protocol.codes import SsmbType
from twinplane.protocol.messages import (
    HEADER_SIZE,
    TAG_SIZE,
    FlowSignature,
    SsmbQuery,
    SsmbReply,
    Translation,
)
from twinplane.protocol.wire import encode_addr

__all__ = [
    "EMPTY_XLATE",
    "FLOW",
    "HEADER",
    "QUERY",
    "QUERY_FIELDS",
    "QUERY_SIZE",
    "QUERY_TYPE",
    "REPLY_HEAD",
    "REPLY_PREFIXED",
    "REPLY_PREFIXED_HEADED",
    "REPLY_SIZE",
    "REPLY_TYPE",
    "TAG_SIZE",
    "XLATE",
    "XLATE_CLIENT_MAC",
    "ZERO_ADDR",
    "pack_xlate",
    "signature_from_raw",
]

HEADER = struct.Struct("!BBBBHHIIII")  # SSMB header, wire order
FLOW = struct.Struct("!16s16sHHBBBBHBB")  # FlowSignature
QUERY = struct.Struct("!BBBBHHIIII44s6sHB3s")  # header, flow (raw), client_mac, vs_id, tcp_flags
XLATE = struct.Struct("!16sHBB6s6sHH16s16sHHIIHH")  # Translation
XLATE_CLIENT_MAC = struct.calcsize("!16sHBB6s")  #: offset of client_mac in a Translation
#: What a decision reads from a QUERY, in one call: serial, session, seq, then
#: the key fields of the signature (src, dst, sport, dport, protocol, vlan_id),
#: ingress_port, client_mac and vs_id; the version, type and length bytes are
#: checked before, the raw signature (bytes 24..68) is sliced when needed.
QUERY_FIELDS = struct.Struct("!12xIII16s16sHHB3xHBx6sH4x")
#: A REPLY without its tag, behind the bus number the tag covers first: one
#: pack gives exactly the bytes SipHash runs over (codec.tag).
REPLY_PREFIXED = struct.Struct("!BBBBBHHIIII44s84s")
#: The same with its first 13 bytes (bus number .. flags: the same for every
#: REPLY of a batch with the same error) packed once beforehand by REPLY_HEAD:
#: half the arguments per REPLY.
REPLY_HEAD = struct.Struct("!BBBBBHHI")
REPLY_PREFIXED_HEADED = struct.Struct(f"!{REPLY_HEAD.size}sIII44s84s")
QUERY_SIZE = SsmbQuery.wire_size()
REPLY_SIZE = SsmbReply.wire_size()
QUERY_TYPE = int(SsmbType.QUERY)
REPLY_TYPE = int(SsmbType.REPLY)
ZERO_ADDR = encode_addr(ipaddress.IPv4Address(0))  # what the codec writes for an unset address
EMPTY_XLATE = Translation().pack()

assert HEADER.size == HEADER_SIZE and FLOW.size == FlowSignature.SIZE and XLATE.size == Translation.SIZE
assert QUERY_FIELDS.size + TAG_SIZE == QUERY_SIZE and REPLY_PREFIXED.size == 1 + REPLY_SIZE - TAG_SIZE
assert REPLY_PREFIXED_HEADED.size == REPLY_PREFIXED.size
assert QUERY.size + TAG_SIZE == QUERY_SIZE and HEADER.size + FLOW.size + XLATE.size + TAG_SIZE == REPLY_SIZE


def pack_xlate(node_addr: bytes, node_port: int, egress_port: int, client_port: int, node_mac: bytes,
               client_mac: bytes, idle_timeout_s: int, vs_id: int, node_id: int) -> bytes:
    return XLATE.pack(node_addr, node_port, egress_port, client_port, node_mac, client_mac, 0, 0, ZERO_ADDR,
                      ZERO_ADDR, 0, idle_timeout_s, 0, 0, vs_id, node_id)


def signature_from_raw(raw: bytes) -> FlowSignature:
    return FlowSignature.unpack(raw)
