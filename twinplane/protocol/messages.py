"""Every SSMB and CSMB message, declared once.

A datagram on either bus is one or more messages back to back (batching).
Each message is::

    header (24 bytes) | body (fixed per type; APP_QUERY ends in a variable field) | tag (8 bytes)

``msg_length`` in the header counts all three, so a receiver walks a batch
without knowing the types.  The tag is SipHash-2-4 under the shared key over
header and body (see :mod:`twinplane.protocol.codec`).  Integers are
big-endian; addresses are 16 bytes (IPv4 as ::ffff:a.b.c.d).

The SSMB and CSMB headers differ only in bytes 12..15: SSMB carries the
per-flow ``serial`` chosen by the flow's originator (patent: "remains constant
for all messages pertaining to the flow"), CSMB carries ``serial_global`` and
``serial_bytype`` (patent: "a serial number that is global for all messages,
and a serial number that is specific to messages of the specific type",
unsigned 16-bit).
"""

from __future__ import annotations

from typing import ClassVar

from .codes import (
    PROTOCOL_VERSION,
    AddressFamily,
    Bus,
    ConfigItem,
    CsmbType,
    DeleteReason,
    ErrorCode,
    Flag,
    Role,
    SsmbType,
)
from .wire import Block, WireField, addr, block, mac, octets, uint

__all__ = [
    "ALL_MESSAGES",
    "CSMB_HEADER",
    "HEADER_SIZE",
    "MESSAGES_BY_TYPE",
    "SSMB_HEADER",
    "TAG_SIZE",
    "AddVs",
    "CsmbAck",
    "CsmbAuthChallenge",
    "CsmbAuthResponse",
    "CsmbHello",
    "CsmbMessage",
    "Config",
    "DelVs",
    "FlowSignature",
    "FlowStats",
    "Message",
    "SsmbAppQuery",
    "SsmbAuthChallenge",
    "SsmbAuthResponse",
    "SsmbDelete",
    "SsmbDump",
    "SsmbHello",
    "SsmbMessage",
    "SsmbNewflow",
    "SsmbQuery",
    "SsmbReap",
    "SsmbReply",
    "SsmbReset",
    "SsmbStats",
    "SsmbTimeout",
    "Translation",
    "VirtualServer",
    "VsList",
]

TAG_SIZE = 8


def _common_head() -> tuple[WireField, ...]:
    return (
        uint("vers_major", 1, "protocol major version of the sender (HELLO negotiates it)",
             default=PROTOCOL_VERSION[0]),
        uint("vers_minor", 1, "protocol minor version of the sender", default=PROTOCOL_VERSION[1]),
        uint("msg_type", 1, "message type (SsmbType or CsmbType by bus)"),
        uint("error", 1, "error code", ErrorCode),
        uint("msg_length", 2, "bytes in this message: header, body and tag"),
        uint("epoch", 2, "fencing epoch of the sending CS (DFS: echoes its current epoch)"),
        uint("flags", 4, "boolean flags", Flag),
    )


def _common_tail() -> tuple[WireField, ...]:
    return (
        uint("session", 4, "authenticated session (from the auth exchange); 0 before it"),
        uint("seq", 4, "per-sender message counter in the session, for replay protection"),
    )


SSMB_HEADER: tuple[WireField, ...] = (
    *_common_head(),
    uint("serial", 4, "per-flow serial number chosen by the flow's originator"),
    *_common_tail(),
)
CSMB_HEADER: tuple[WireField, ...] = (
    *_common_head(),
    uint("serial_global", 2, "serial number over all CSMB messages of the sender"),
    uint("serial_bytype", 2, "serial number over CSMB messages of this type of the sender"),
    *_common_tail(),
)
HEADER_SIZE = sum(f.size for f in SSMB_HEADER)
assert HEADER_SIZE == sum(f.size for f in CSMB_HEADER) == 24

_HEADER_NAMES = frozenset(f.name for f in SSMB_HEADER + CSMB_HEADER)


# -- blocks ---------------------------------------------------------------------------------------


class FlowSignature(Block):
    """The patent's flow signature: a sextuple of source and destination
    address and port, protocol and type of service, as seen on the wire by the
    DFS in the flow's direction of origin."""

    WIRE = (
        addr("src_addr", "source address"),
        addr("dst_addr", "destination address"),
        uint("src_port", 2, "source port (ICMP: identifier)"),
        uint("dst_port", 2, "destination port (ICMP: 0)"),
        uint("protocol", 1, "IP protocol number (6 TCP, 17 UDP, 1 ICMP)"),
        uint("tos", 1, "IPv4 type of service / IPv6 traffic class"),
        uint("family", 1, "address family", AddressFamily),
        uint("vlan_valid", 1, "1 if the flow arrived with an 802.1Q tag"),
        uint("vlan_id", 2, "802.1Q VLAN id (0 without a tag)"),
        uint("ingress_port", 1, "DFS network port the flow arrived on"),
        uint("reserved", 1, "zero"),
    )


class Translation(Block):
    """What the DFS does to both directions of a flow.  Self-contained (the
    patent: replies are never matched against queries), so it repeats what the
    DFS saw in the QUERY: the client's MAC and port."""

    WIRE = (
        addr("node_addr", "inbound: destination address rewritten to this (TRANSLATE_ADDR)"),
        uint("node_port", 2, "inbound: destination port rewritten to this (TRANSLATE_PORT)"),
        uint("egress_port", 1, "DFS network port towards the node"),
        uint("client_port", 1, "DFS network port towards the client (return flow)"),
        mac("node_mac", "next-hop MAC towards the node"),
        mac("client_mac", "next-hop MAC towards the client (return flow)"),
        uint("node_vlan", 2, "802.1Q VLAN towards the node (0: untagged)"),
        uint("client_vlan", 2, "802.1Q VLAN towards the client (0: untagged)"),
        addr("next_hop_addr", "next hop when not ROUTE_BY_DST_IP (informational: the MAC is given)"),
        addr("snat_addr", "OUTBOUND flows: source address rewritten to this"),
        uint("snat_port", 2, "OUTBOUND flows: source port rewritten to this"),
        uint("idle_timeout_s", 2, "DFS idle timeout for this flow in seconds (0: the DFS default)"),
        uint("seq_offset", 4, "ADD_TCP_OFFSETS: added to the client's sequence numbers (mod 2**32)"),
        uint("ack_offset", 4, "ADD_TCP_OFFSETS: added to the client's acknowledgement numbers"),
        uint("vs_id", 2, "virtual server the flow belongs to"),
        uint("node_id", 2, "the CS's node identifier (reported back in DELETE/STATS)"),
    )


class FlowStats(Block):
    """Per-flow statistics kept by the DFS (both directions of the flow)."""

    WIRE = (
        uint("packets_in", 8, "packets client -> node"),
        uint("bytes_in", 8, "bytes client -> node (IP total length)"),
        uint("packets_out", 8, "packets node -> client"),
        uint("bytes_out", 8, "bytes node -> client"),
        uint("age_ms", 4, "milliseconds since the flow was installed"),
        uint("idle_ms", 4, "milliseconds since the last packet of either direction"),
        uint("reason", 1, "why the flow was deleted (DELETE) or NONE", DeleteReason),
        uint("tcp_state", 1, "TCP close tracking state (bit 0 FIN from client, 1 FIN from node, 2 RST)"),
        uint("vs_id", 2, "virtual server of the flow"),
        uint("node_id", 2, "node of the flow (from the REPLY)"),
        uint("reserved", 2, "zero"),
    )


class VirtualServer(Block):
    """A virtual server as the DFS matches it (patent: an address and TCP/UDP
    port; WILDCARD_ADDR / WILDCARD_PORT / NOARP_MODE in the header flags)."""

    WIRE = (
        uint("vs_id", 2, "identifier chosen by the CS; ADD_VS with a known id replaces it (idempotent)"),
        uint("protocol", 1, "IP protocol (6 TCP, 17 UDP)"),
        uint("reserved", 1, "zero"),
        addr("virt_addr", "virtual address (ignored with WILDCARD_ADDR)"),
        uint("virt_port", 2, "virtual port (ignored with WILDCARD_PORT)"),
        uint("vlan_id", 2, "802.1Q VLAN the virtual server listens on (0: untagged / any)"),
    )


# -- messages -------------------------------------------------------------------------------------


class Message(Block):
    """Base of every message; subclasses set BUS, TYPE and BODY."""

    BUS: ClassVar[Bus]
    TYPE: ClassVar[int]
    BODY: ClassVar[tuple[WireField, ...]] = ()
    HEADER: ClassVar[tuple[WireField, ...]] = ()
    #: message names of the patent this class implements
    DIRECTION: ClassVar[str] = ""

    @classmethod
    def all_fields(cls) -> tuple[WireField, ...]:
        for f in cls.BODY:
            if f.name in _HEADER_NAMES:
                raise TypeError(f"{cls.__name__}: body field {f.name!r} shadows a header field")
        return (*cls.HEADER, *cls.BODY)

    def __post_init__(self) -> None:
        if getattr(type(self), "TYPE", None) is not None:
            self.msg_type = type(self).TYPE  # type: ignore[attr-defined]

    @classmethod
    def body_size(cls) -> int:
        return sum(f.size for f in cls.BODY)

    @classmethod
    def wire_size(cls) -> int:
        """Largest size on the wire, tag included."""
        return HEADER_SIZE + cls.body_size() + TAG_SIZE


class SsmbMessage(Message):
    BUS = Bus.SSMB
    HEADER = SSMB_HEADER


class CsmbMessage(Message):
    BUS = Bus.CSMB
    HEADER = CSMB_HEADER


_FLOW = block("flow", FlowSignature, "the flow signature")
_HELLO_BODY = (
    uint("csmb_vers_major", 1, "highest CSMB major version offered / the one accepted"),
    uint("csmb_vers_minor", 1, "CSMB minor version"),
    uint("ssmb_vers_major", 1, "highest SSMB major version offered / the one accepted"),
    uint("ssmb_vers_minor", 1, "SSMB minor version"),
    uint("role", 1, "the sending CS's role (a DFS sends ACTIVE)", Role),
    uint("cs_id", 1, "the sending CS's identifier (0 from a DFS)"),
    uint("hello_interval_ms", 2, "the CS's HELLO period; the DFS declares it dead after 3 missed"),
    octets("nonce", 8, "sender's random nonce for this association (authentication input)"),
    addr("ssmb_addr", "address SSMB messages go to (DFS: its own; CS: the CS's)"),
    addr("ssmb_standby_addr", "REDUNDANT: the standby CS state messages are replicated to"),
    uint("ssmb_port", 2, "UDP port for SSMB at ssmb_addr"),
    uint("reserved", 2, "zero"),
)
_AUTH_CHALLENGE_BODY = (octets("challenge", 8, "the challenger's fresh random nonce"),)
_AUTH_RESPONSE_BODY = (
    octets("challenge", 8, "the challenge answered"),
    octets("response", 8, "SipHash-2-4(key, 'twinplane-auth' | challenge | responder's HELLO nonce)"),
)


class SsmbHello(SsmbMessage):
    """Keepalive on the real-time bus (either direction)."""

    TYPE = SsmbType.HELLO
    BODY = _HELLO_BODY


class SsmbQuery(SsmbMessage):
    """DFS -> CS: first packet of an unknown flow to a virtual server."""

    TYPE = SsmbType.QUERY
    BODY = (
        _FLOW,
        mac("client_mac", "source MAC of the flow's first packet"),
        uint("vs_id", 2, "virtual server the DFS matched"),
        uint("tcp_flags", 1, "TCP flags of the first packet (0 for UDP)"),
        uint("reserved", 3, "zero"),
    )


class SsmbAppQuery(SsmbMessage):
    """DFS -> CS: as QUERY, with application data (proxy classes; not
    generated by this DFS yet)."""

    TYPE = SsmbType.APP_QUERY
    BODY = (
        _FLOW,
        mac("client_mac", "source MAC of the flow's first packet"),
        uint("vs_id", 2, "virtual server the DFS matched"),
        uint("app_kind", 1, "which proxy flag produced the data (bit index in flags)"),
        uint("reserved", 3, "zero"),
        octets("app_data", 1024, "extracted application data (SSL session id, cookie, request)", variable=True),
    )


class SsmbReply(SsmbMessage):
    """CS -> DFS: the translation for a flow (error UNKNOWN / NOTAVAIL /
    CONNLIMIT: drop the flow's packets)."""

    TYPE = SsmbType.REPLY
    BODY = (_FLOW, block("xlate", Translation, "what to do with the flow"))


class SsmbNewflow(SsmbMessage):
    """CS -> DFS: install a flow the CS originated (CS-assisted hand-over;
    ADD_TCP_OFFSETS carries the splice offsets)."""

    TYPE = SsmbType.NEWFLOW
    BODY = (_FLOW, block("xlate", Translation, "what to do with the flow"))


class SsmbDelete(SsmbMessage):
    """DFS -> CS: the flow is gone, with its final statistics; CS -> DFS:
    delete it now."""

    TYPE = SsmbType.DELETE
    BODY = (_FLOW, block("stats", FlowStats, "the flow's statistics"))


class SsmbStats(SsmbMessage):
    """DFS -> CS: statistics of a live flow; error CONNALIVE answers a REAP or
    TIMEOUT of an active flow."""

    TYPE = SsmbType.STATS
    BODY = (_FLOW, block("stats", FlowStats, "the flow's statistics"))


class SsmbReap(SsmbMessage):
    """CS -> DFS: the CS's inactivity timer expired; delete unless active."""

    TYPE = SsmbType.REAP
    BODY = (_FLOW, uint("idle_ms", 4, "the flow counts as active if it saw a packet within this"))


class SsmbTimeout(SsmbMessage):
    """CS -> DFS: the flow's timer expired; delete it if it has been idle for
    idle_ms, else answer STATS with CONNALIVE."""

    TYPE = SsmbType.TIMEOUT
    BODY = (_FLOW, uint("idle_ms", 4, "idle time that makes the flow deletable"))


class SsmbReset(SsmbMessage):
    """Either way: delete every flow (DFS) / resynchronise (CS)."""

    TYPE = SsmbType.RESET
    BODY = (uint("reason", 4, "free-form reason code (0: administrative)"),)


class SsmbAuthChallenge(SsmbMessage):
    TYPE = SsmbType.AUTH_CHALLENGE
    BODY = _AUTH_CHALLENGE_BODY


class SsmbAuthResponse(SsmbMessage):
    TYPE = SsmbType.AUTH_RESPONSE
    BODY = _AUTH_RESPONSE_BODY


class SsmbDump(SsmbMessage):
    """CS -> DFS: report every flow as STATS; the DFS ends with DUMP + END."""

    TYPE = SsmbType.DUMP
    BODY = (uint("count", 4, "DFS -> CS with END: how many STATS were sent"),)


class CsmbHello(CsmbMessage):
    """First message both ways and periodic keepalive; version negotiation."""

    TYPE = CsmbType.HELLO
    BODY = _HELLO_BODY


class CsmbAuthChallenge(CsmbMessage):
    TYPE = CsmbType.AUTH_CHALLENGE
    BODY = _AUTH_CHALLENGE_BODY


class CsmbAuthResponse(CsmbMessage):
    TYPE = CsmbType.AUTH_RESPONSE
    BODY = _AUTH_RESPONSE_BODY


class AddVs(CsmbMessage):
    TYPE = CsmbType.ADD_VS
    BODY = (block("vs", VirtualServer, "the virtual server"),)


class DelVs(CsmbMessage):
    TYPE = CsmbType.DEL_VS
    BODY = (block("vs", VirtualServer, "the virtual server (vs_id decides)"),)


class VsList(CsmbMessage):
    TYPE = CsmbType.VS_LIST
    BODY = (
        block("vs", VirtualServer, "one virtual server (DFS -> CS)"),
        uint("list_index", 2, "position of this one in the list"),
        uint("list_count", 2, "how many there are; 0 in the CS's request"),
    )


class Config(CsmbMessage):
    TYPE = CsmbType.CONFIG
    BODY = (
        uint("item", 2, "what is set", ConfigItem),
        uint("reserved", 2, "zero"),
        octets("value", 16, "the value: an address (16 bytes) or an integer in the low bytes, big-endian"),
    )


class CsmbAck(CsmbMessage):
    """DFS -> CS: a CSMB request was applied (error NONE) or refused."""

    TYPE = CsmbType.ACK
    BODY = (
        uint("acked_type", 1, "msg_type of the request", CsmbType),
        uint("reserved", 1, "zero"),
        uint("acked_serial", 2, "serial_global of the request"),
    )


ALL_MESSAGES: tuple[type[Message], ...] = (
    SsmbHello,
    SsmbQuery,
    SsmbAppQuery,
    SsmbReply,
    SsmbNewflow,
    SsmbDelete,
    SsmbStats,
    SsmbReap,
    SsmbTimeout,
    SsmbReset,
    SsmbAuthChallenge,
    SsmbAuthResponse,
    SsmbDump,
    CsmbHello,
    CsmbAuthChallenge,
    CsmbAuthResponse,
    AddVs,
    DelVs,
    VsList,
    Config,
    CsmbAck,
)

MESSAGES_BY_TYPE: dict[tuple[Bus, int], type[Message]] = {(m.BUS, int(m.TYPE)): m for m in ALL_MESSAGES}
assert len(MESSAGES_BY_TYPE) == len(ALL_MESSAGES)
assert set(SsmbType) == {m.TYPE for m in ALL_MESSAGES if m.BUS is Bus.SSMB}
assert set(CsmbType) == {m.TYPE for m in ALL_MESSAGES if m.BUS is Bus.CSMB}
