"""Synthetic hosts on the ports of the compiled DFS, and a probe that times
what the demo reports: flow setup (SYN in -> SYN out towards a node) and the
QUERY -> REPLY round trip, both in clock cycles.

Ref: sim/engine/system.py (the endpoint contract); twinplane/model/hosts.py
(the sans-I/O TCP clients and servers); docs/protocol.md (SSMB QUERY/REPLY,
matched by serial).

:class:`ClientSide` and :class:`ServerSide` are endpoints of a
:class:`SimSystem`: their ``poll`` hands the frames the hosts want to send,
their ``deliver`` passes a frame that left the DFS to the host it is
addressed to.  ``ClientSide`` also starts the clients, at most
``concurrency`` open at once and at most ``syn_in_flight`` waiting for their
SYN-ACK (the DFS holds a new flow's first packet in one of a few miss slots
while the CS decides, and these clients never retransmit).  Everything runs
on the thread that steps the system.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import Counter

from twinplane.model.hosts import ClientState, TcpClient, TcpServer, parse_tcp_frame
from twinplane.protocol.codec import Codec, DecodeError
from twinplane.protocol.codes import SSMB_UDP_PORT, Bus
from twinplane.protocol.messages import SsmbQuery, SsmbReply

from .system import SimSystem

__all__ = ["ClientSide", "ServerSide", "SetupProbe", "OPEN_STATES", "SIM_CS_TIMEOUTS"]

#: ``[timeouts]`` of a CS that talks to this engine: the CS's timers run in wall time and
#: one message takes ~1 s of it here (docs/simulation.md "Time in a simulation build").
SIM_CS_TIMEOUTS = {"hello_interval_ms": 20_000, "flow_idle_s": 600, "csmb_retransmit_s": 10,
                   "csmb_retransmit_max_s": 30}

OPEN_STATES = (ClientState.SYN_SENT, ClientState.WAITING_FOR_ANSWER, ClientState.CLOSING)
_SYN, _ACK = 0x02, 0x10


def _ipv4_dst(frame: bytes) -> str | None:
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    return str(ipaddress.IPv4Address(frame[30:34]))


class ServerSide:
    """Endpoint: the servers (nodes) on the DFS's internal port."""

    def __init__(self, servers: list[TcpServer]):
        self.servers = {s.ip: s for s in servers}
        self.outbox: list[bytes] = []

    def poll(self) -> list[bytes]:
        out, self.outbox = self.outbox, []
        return out

    def deliver(self, frame: bytes) -> bool:
        server = self.servers.get(_ipv4_dst(frame))
        if server is None:
            return False
        self.outbox += server.receive(frame)
        return True


class ClientSide:
    """Endpoint: the clients on the DFS's external port, started as room allows."""

    def __init__(self, system: SimSystem, clients: list[TcpClient], *, concurrency: int, syn_in_flight: int):
        if concurrency < 1 or syn_in_flight < 1:
            raise ValueError(f"concurrency and syn_in_flight must be positive, not {concurrency!r} "
                             f"and {syn_in_flight!r}")
        self.system = system
        self.clients = clients
        self.pending = list(reversed(clients))
        self.running: list[TcpClient] = []
        self.by_ip: dict[str, TcpClient] = {}
        self.concurrency = concurrency
        self.syn_in_flight = syn_in_flight
        self.outbox: list[bytes] = []
        self.syn_cycle: dict[tuple[str, int], int] = {}  # (client ip, port) -> cycle its SYN was queued

    @property
    def finished(self) -> bool:
        return not self.pending and not self.running

    def poll(self) -> list[bytes]:
        self.running = [c for c in self.running if c.state in OPEN_STATES]
        starting = sum(c.state is ClientState.SYN_SENT for c in self.running)
        while self.pending and len(self.running) < self.concurrency and starting < self.syn_in_flight:
            client = self.pending.pop()
            self.by_ip[client.ip] = client
            self.running.append(client)
            self.syn_cycle[(client.ip, client.port)] = self.system.dfs.cycle
            self.outbox += client.start()
            starting += 1
        out, self.outbox = self.outbox, []
        return out

    def deliver(self, frame: bytes) -> bool:
        client = self.by_ip.get(_ipv4_dst(frame))
        if client is None:
            return False
        self.outbox += client.receive(frame)
        return True


class _ReplyTap:
    """Wraps the message-port gateway: notes the cycle each REPLY from the CS enters the DFS."""

    def __init__(self, gateway, probe: SetupProbe):
        self.gateway, self.probe = gateway, probe

    def poll(self) -> list[bytes]:
        frames = self.gateway.poll()
        for frame in frames:
            for msg in self.probe.messages(frame, dport=SSMB_UDP_PORT):
                if isinstance(msg, SsmbReply):
                    self.probe.reply_cycle.setdefault(msg.serial, self.probe.system.dfs.cycle)
        return frames

    def deliver(self, frame: bytes) -> bool:
        return self.gateway.deliver(frame)


class SetupProbe:
    """Times flow setups and QUERY -> REPLY round trips from the frames that
    cross the internal port.  ``attach_gateway`` puts the gateway on the
    internal port behind the REPLY tap; ``observe`` takes what ``step``
    returned."""

    def __init__(self, system: SimSystem, key: bytes, clients: ClientSide):
        self.system = system
        self.codec = Codec(key)
        self.clients = clients
        self.query_cycle: dict[int, int] = {}  # serial -> cycle the QUERY's last byte left
        self.reply_cycle: dict[int, int] = {}  # serial -> cycle the REPLY was queued into the DFS
        self.setup_cycles: list[int] = []
        self.messages_out: Counter = Counter()  # DFS -> CS, by message type
        self.forwarded: Counter = Counter()  # TCP frames out of each port

    def attach_gateway(self, port: int, gateway) -> None:
        self.system.attach(port, _ReplyTap(gateway, self))

    def messages(self, frame: bytes, *, dport: int | None = None, sport: int | None = None) -> list:
        """The SSMB messages in a UDP frame to ``dport`` / from ``sport``, or none."""
        if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            return []
        ihl = (frame[14] & 0x0F) * 4
        udp = frame[14 + ihl:]
        src, dst, length = struct.unpack("!HHH", udp[:6])
        if (dport is not None and dst != dport) or (sport is not None and src != sport):
            return []
        try:
            return self.codec.decode(Bus.SSMB, udp[8:length])
        except DecodeError:
            return []

    def observe(self, out) -> None:
        for tx in out:
            seg = parse_tcp_frame(tx.frame)
            if seg is not None:
                self.forwarded[tx.port] += 1
                if tx.port == 1 and seg.flags & (_SYN | _ACK) == _SYN:
                    start = self.clients.syn_cycle.pop((seg.ip_src, seg.sport), None)
                    if start is not None:
                        self.setup_cycles.append(tx.cycle - start)
                continue
            for msg in self.messages(tx.frame, sport=SSMB_UDP_PORT):
                self.messages_out[type(msg).__name__] += 1
                if isinstance(msg, SsmbQuery):
                    self.query_cycle.setdefault(msg.serial, tx.end_cycle)

    @property
    def round_trips(self) -> list[int]:
        """QUERY -> REPLY in cycles: from the QUERY's last byte out to the
        REPLY's first byte queued in (so at most one ``chunk`` coarser than
        the truth, since the endpoints are polled between chunks)."""
        return [self.reply_cycle[s] - c for s, c in self.query_cycle.items() if s in self.reply_cycle]
