"""Codes of the SSMB and CSMB wire protocols: message types, flags, error codes.

# Ref: the patent's figures 4 and 10 (message types), 7 and 15 (boolean flags),
#      8 and 16 (error codes).  The figures are missing from our copy; names
#      follow the text, numbers are ours and are part of the wire format.

Every number here is on the wire: never renumber, only append.
"""

from __future__ import annotations

import enum

__all__ = [
    "CSMB_UDP_PORT",
    "PROTOCOL_VERSION",
    "SSMB_UDP_PORT",
    "SUPPORTED_VERSIONS",
    "AddressFamily",
    "Bus",
    "ConfigItem",
    "CsmbType",
    "DeleteReason",
    "ErrorCode",
    "Flag",
    "Role",
    "SsmbType",
]

#: UDP ports the DFS listens on for each bus (the CS sends from any port; the
#: DFS answers to the source address and port of the CS's HELLO).
SSMB_UDP_PORT = 6340
CSMB_UDP_PORT = 6341

#: (vers_major, vers_minor) spoken by this implementation, and the range it
#: accepts in HELLO negotiation (the patent: "negotiate the highest numbered
#: version that is supported by both").
PROTOCOL_VERSION = (1, 0)
SUPPORTED_VERSIONS = ((1, 0),)


class Bus(enum.IntEnum):
    """Which message bus a message belongs to (selected by UDP port)."""

    SSMB = 0  #: state sharing message bus: real-time, per-flow
    CSMB = 1  #: configuration sharing message bus: sessions, virtual servers


class SsmbType(enum.IntEnum):
    """SSMB message types (patent figure 4)."""

    HELLO = 1  #: keepalive on the real-time bus, either direction
    QUERY = 2  #: DFS -> CS: a new flow to a virtual server, how to handle it?
    APP_QUERY = 3  #: DFS -> CS: as QUERY, with application data (proxy classes)
    REPLY = 4  #: CS -> DFS: the translation for a flow (answers QUERY/APP_QUERY)
    NEWFLOW = 5  #: CS -> DFS: a flow the CS originates (CS-assisted hand-over)
    DELETE = 6  #: DFS -> CS: a flow ended (close, timeout, overflow), with its statistics
    STATS = 7  #: DFS -> CS: a flow's statistics (error CONNALIVE answers REAP/TIMEOUT)
    REAP = 8  #: CS -> DFS: the CS thinks the flow is idle; delete unless active
    TIMEOUT = 9  #: CS -> DFS: the flow's timer expired; delete if idle for idle_timeout
    RESET = 10  #: either way: forget every flow and resynchronise
    AUTH_CHALLENGE = 11  #: CS -> DFS: prove possession of the key
    AUTH_RESPONSE = 12  #: DFS -> CS: the proof
    DUMP = 13  #: CS -> DFS: report every flow as STATS, then DUMP with END


class CsmbType(enum.IntEnum):
    """CSMB message types (patent figure 10)."""

    HELLO = 1  #: first message both ways; version negotiation; periodic keepalive
    AUTH_CHALLENGE = 2  #: CS -> DFS
    AUTH_RESPONSE = 3  #: DFS -> CS
    ADD_VS = 4  #: CS -> DFS: add (or idempotently re-add) a virtual server
    DEL_VS = 5  #: CS -> DFS: delete a virtual server
    VS_LIST = 6  #: CS -> DFS with list_count 0: list them; DFS -> CS: one per virtual server
    CONFIG = 7  #: CS -> DFS: one configuration item (addresses, ports, timers)
    ACK = 8  #: DFS -> CS: a CSMB request was applied (or refused, with an error)


class ErrorCode(enum.IntEnum):
    """The error_code header field (patent figures 8 and 16, then ours)."""

    NONE = 0
    UNKNOWN = 1  #: the CS does not know how to handle the flow
    NOTAVAIL = 2  #: the virtual server is not available (port denied, maintenance, all nodes down)
    CONNLIMIT = 3  #: the connection would exceed the connection limit
    CONNALIVE = 4  #: answer to REAP/TIMEOUT: the flow is still active
    VERS_NEW = 5  #: this segment does not yet support the version in the HELLO
    VERS_OBSOLETE = 6  #: this segment no longer supports the version in the HELLO
    STALE_EPOCH = 7  #: ours: the message came from a fenced (older epoch) CS
    BADCONFIG = 8  #: ours: a CSMB request named something invalid (field in the ACK)
    NOTAUTH = 9  #: ours: the request arrived before authentication completed


class Flag(enum.IntFlag):
    """The 32-bit flags header field (patent figures 7 and 15, then ours)."""

    NONE = 0
    OUTBOUND = 1 << 0  #: the flow is outbound (internal -> external); else inbound
    ADD_TCP_OFFSETS = 1 << 1  #: add seq_offset/ack_offset to the TCP header
    TRANSLATE_ADDR = 1 << 2  #: translate the address (destination inbound, source outbound)
    TRANSLATE_PORT = 1 << 3  #: translate the port
    ROUTE_BY_DST_IP = 1 << 4  #: the DFS routes by destination address, not by next_hop_addr
    REDUNDANT = 1 << 5  #: HELLO: several CSs share state; ssmb_standby_addr is used
    APP_PROXY = 1 << 6  #: HELLO: the sender supports application proxies
    WILDCARD_ADDR = 1 << 7  #: virtual server: match any destination address
    WILDCARD_PORT = 1 << 8  #: virtual server: match any destination port
    NOARP_MODE = 1 << 9  #: virtual server: accept for the address but do not answer ARP
    SSL_PROXY = 1 << 10  #: virtual server: balance on the SSL session id
    COOKIE_PROXY = 1 << 11  #: virtual server: balance on an HTTP cookie
    HTTP_PROXY = 1 << 12  #: virtual server: balance on the HTTP request
    RAW_PROXY = 1 << 13  #: virtual server: bridge client data to the CS
    END = 1 << 16  #: ours: last message of a DUMP or VS_LIST sequence
    DISABLED = 1 << 17  #: ours: virtual server is configured but takes no new flows
    ACTIVE_CS = 1 << 18  #: ours: a DFS's CSMB HELLO answer: an ACTIVE CS is associated at the DFS's epoch


#: Flags that name a proxy class of virtual server (patent figure 13).
PROXY_FLAGS = Flag.SSL_PROXY | Flag.COOKIE_PROXY | Flag.HTTP_PROXY | Flag.RAW_PROXY
__all__ += ["PROXY_FLAGS"]


class DeleteReason(enum.IntEnum):
    """Why a DFS deleted a flow (carried in DELETE, patent figure 18)."""

    NONE = 0
    FIN = 1  #: TCP close completed (FIN both ways, last ACK)
    RST = 2  #: TCP reset
    OVERFLOW = 3  #: evicted to make room for a new flow (figure 21)
    IDLE = 4  #: the DFS's own idle timer
    REAP = 5  #: the CS reaped it and it was idle
    TIMEOUT = 6  #: the CS's TIMEOUT and it was idle
    RESET = 7  #: RESET flushed every flow
    CS_DELETE = 8  #: the CS asked for it


class Role(enum.IntEnum):
    """A CS's role in HELLO (redundant topologies, patent figure 2)."""

    ACTIVE = 0
    STANDBY = 1


class AddressFamily(enum.IntEnum):
    """Address family of a flow signature.  Addresses are always 16 bytes on
    the wire; IPv4 uses the IPv4-mapped form ::ffff:a.b.c.d (RFC 4291
    §2.5.5.2), so IPv6 needs no new layout."""

    IPV4 = 4
    IPV6 = 6


class ConfigItem(enum.IntEnum):
    """What a CSMB CONFIG message sets (patent: 'default gateway address and
    other administrative IP addresses', SSMB addresses and ports)."""

    DFS_ADDR = 1  #: the DFS's own address on the internal side (message port)
    CS_ADDR = 2  #: an address CS messages are accepted from (value: address)
    DEFAULT_GATEWAY = 3  #: next hop for ROUTE_BY_DST_IP flows
    SSMB_STANDBY_ADDR = 4  #: where state messages are replicated (redundant CS)
    IDLE_TIMEOUT_S = 5  #: DFS idle timeout for flows (value: seconds, uint)
    HELLO_INTERVAL_MS = 6  #: the CS's HELLO interval (value: milliseconds, uint)
    DFS_MAC = 7  #: the DFS's own MAC address (value: MAC in the low 6 bytes)
