"""Synthetic end hosts for demos and system tests: TCP clients that open a
connection, send a request, read the answer and close (or reset), and TCP
servers that answer.  Sans-I/O: they take and return raw Ethernet frames.

These are traffic generators, not TCP stacks: no retransmission, no windows;
they check what they receive (addresses, ports, sequence numbers, checksums)
so a demo fails loudly when the DFS rewrites something wrong.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from dataclasses import dataclass, field

from .checksum import internet_checksum as checksum

__all__ = ["TcpClient", "TcpServer", "build_tcp_frame", "parse_tcp_frame"]

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def build_tcp_frame(
    eth_src: str, eth_dst: str, ip_src: str, ip_dst: str, sport: int, dport: int,
    seq: int, ack: int, flags: int, payload: bytes = b"", ttl: int = 64, ident: int = 0,
) -> bytes:
    """An Ethernet/IPv4/TCP frame with correct checksums (no FCS)."""
    src, dst = ipaddress.IPv4Address(ip_src).packed, ipaddress.IPv4Address(ip_dst).packed
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp + payload)) + tcp[18:]
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident, 0x4000, ttl, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    frame = _mac(eth_dst) + _mac(eth_src) + b"\x08\x00" + ip + tcp + payload
    return frame + bytes(max(0, 60 - len(frame)))


@dataclass
class TcpSegment:
    eth_src: bytes
    eth_dst: bytes
    ip_src: str
    ip_dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    payload: bytes
    checksums_ok: bool


def parse_tcp_frame(frame: bytes) -> TcpSegment | None:
    """The TCP segment in an untagged Ethernet/IPv4 frame, or None."""
    if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[14] >> 4 != 4 or frame[23] != 6:
        return None
    ihl = (frame[14] & 0x0F) * 4
    total = struct.unpack("!H", frame[16:18])[0]
    ip = frame[14 : 14 + ihl]
    l4 = frame[14 + ihl : 14 + total]
    if len(l4) < 20:
        return None
    src, dst = ip[12:16], ip[16:20]
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(l4))
    ok = checksum(ip) == 0 and checksum(pseudo + l4) == 0
    sport, dport, seq, ack, off, flags = struct.unpack("!HHIIBB", l4[:14])
    return TcpSegment(
        frame[6:12], frame[0:6], str(ipaddress.IPv4Address(src)), str(ipaddress.IPv4Address(dst)),
        sport, dport, seq, ack, flags, l4[(off >> 4) * 4 :], ok,
    )


class ClientState(enum.Enum):
    IDLE = "idle"
    SYN_SENT = "syn sent"
    WAITING_FOR_ANSWER = "waiting for the answer"
    CLOSING = "closing"
    DONE = "done"
    RESET = "reset"
    FAILED = "failed"


@dataclass
class TcpClient:
    """Opens one connection to ``vip:vport``, sends ``request``, reads the
    answer, then closes with FIN (or RST when ``abort``)."""

    mac: str
    ip: str
    port: int
    gateway_mac: str  #: the DFS's MAC on the client side
    vip: str
    vport: int
    request: bytes = b"GET / HTTP/1.0\r\n\r\n"
    abort: bool = False
    isn: int = 1000
    state: ClientState = ClientState.IDLE
    answer: bytes = b""
    problems: list[str] = field(default_factory=list)
    _next_seq: int = 0
    _peer_seq: int = 0

    def _frame(self, flags: int, payload: bytes = b"") -> bytes:
        frame = build_tcp_frame(self.mac, self.gateway_mac, self.ip, self.vip, self.port, self.vport,
                                self._next_seq, self._peer_seq, flags, payload)
        self._next_seq += len(payload) + (1 if flags & (SYN | FIN) else 0)
        return frame

    def start(self) -> list[bytes]:
        self._next_seq = self.isn
        self.state = ClientState.SYN_SENT
        return [self._frame(SYN)]

    def receive(self, frame: bytes) -> list[bytes]:
        seg = parse_tcp_frame(frame)
        if seg is None or seg.ip_dst != self.ip or seg.dport != self.port:
            return []
        if not seg.checksums_ok:
            self._fail("bad checksum in a segment from the virtual server")
        if (seg.ip_src, seg.sport) != (self.vip, self.vport):
            self._fail(f"answer from {seg.ip_src}:{seg.sport}, not from the virtual server {self.vip}:{self.vport}")
        if seg.flags & RST:
            self.state = ClientState.RESET
            return []
        if self.state is ClientState.SYN_SENT and seg.flags & SYN and seg.flags & ACK:
            if seg.ack != self._next_seq:
                self._fail(f"SYN-ACK acknowledges {seg.ack}, expected {self._next_seq}")
            self._peer_seq = seg.seq + 1
            if self.abort:
                self.state = ClientState.RESET
                return [self._frame(RST | ACK)]
            self.state = ClientState.WAITING_FOR_ANSWER
            return [self._frame(ACK), self._frame(PSH | ACK, self.request)]
        out: list[bytes] = []
        if seg.payload:
            self.answer += seg.payload
            self._peer_seq = seg.seq + len(seg.payload)
        if seg.flags & FIN:
            self._peer_seq += 1
            if self.state is ClientState.WAITING_FOR_ANSWER:
                out.append(self._frame(FIN | ACK))
                self.state = ClientState.CLOSING
            return out
        if self.state is ClientState.CLOSING and seg.flags & ACK:
            self.state = ClientState.DONE
        elif seg.payload:
            out.append(self._frame(ACK))
        return out

    def _fail(self, problem: str) -> None:
        self.problems.append(problem)
        self.state = ClientState.FAILED


@dataclass
class TcpServer:
    """Answers every connection: SYN-ACK, then an answer naming the server to
    the first data segment, then FIN; ACKs the client's FIN."""

    mac: str
    ip: str
    port: int
    name: str
    gateway_mac: str  #: the DFS's MAC on the server side
    connections: dict[tuple[str, int], list[int]] = field(default_factory=dict)  #: (client) -> [seq, ack]
    accepted: int = 0
    problems: list[str] = field(default_factory=list)

    def receive(self, frame: bytes) -> list[bytes]:
        seg = parse_tcp_frame(frame)
        if seg is None or seg.ip_dst != self.ip or seg.dport != self.port:
            return []
        if not seg.checksums_ok:
            self.problems.append(f"bad checksum in a segment from {seg.ip_src}:{seg.sport}")
            return []
        peer = (seg.ip_src, seg.sport)

        def reply(flags: int, payload: bytes = b"") -> bytes:
            seq, ack = self.connections[peer]
            out = build_tcp_frame(self.mac, self.gateway_mac, self.ip, seg.ip_src, self.port, seg.sport,
                                  seq, ack, flags, payload)
            self.connections[peer][0] = seq + len(payload) + (1 if flags & (SYN | FIN) else 0)
            return out

        if seg.flags & RST:
            self.connections.pop(peer, None)
            return []
        if seg.flags & SYN:
            self.connections[peer] = [50_000 + 1000 * self.accepted, seg.seq + 1]
            self.accepted += 1
            return [reply(SYN | ACK)]
        if peer not in self.connections:
            return []
        if seg.payload:
            self.connections[peer][1] = seg.seq + len(seg.payload)
            answer = f"HTTP/1.0 200 OK\r\n\r\nserved by {self.name}\n".encode()
            return [reply(PSH | ACK, answer), reply(FIN | ACK)]
        if seg.flags & FIN:
            self.connections[peer][1] = seg.seq + 1
            out = [reply(ACK)]
            del self.connections[peer]
            return out
        return []
