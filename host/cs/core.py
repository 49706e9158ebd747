"""The sans-I/O Control Segment: CSMB sessions with several DFSs, SSMB
decisions and the flow lifecycle.  Time is passed in as ``now`` (seconds);
nothing here touches a socket or a clock, as in aioquic.

# Ref: /tmp/handshake.txt (the CS/DFS association contract); patent figures
#      17-22 (QUERY/REPLY, DELETE, REAP/STATS, RESET).

Interface for the adapter::

    cs.receive_datagram(bus, data, addr, now)
    cs.datagrams_to_send(now) -> [(bus, addr, data)]   # bus picks the socket
    cs.get_timer() -> float | None
    cs.handle_timer(now)

CSMB reliability: every request (ADD_VS, DEL_VS, VS_LIST, CONFIG) waits in
``pending`` under its serial_global until the DFS's ACK names that serial; an
unacked request is resent (same content and serials, new seq) after
csmb_retransmit_s, doubling up to csmb_retransmit_max_s, for as long as the
association lives.  The requests are idempotent, so a duplicate is harmless.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from heapq import heappush

from siphashc import siphash

from twinplane.protocol.codec import MAX_DATAGRAM, Codec, ReplayWindow, auth_response, session_id
from twinplane.protocol.codes import (
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    AddressFamily,
    Bus,
    CsmbType,
    DeleteReason,
    ErrorCode,
    Flag,
    Role,
    SsmbType,
)
from twinplane.protocol.messages import (
    AddVs,
    CsmbAuthChallenge,
    CsmbHello,
    CsmbMessage,
    DelVs,
    FlowSignature,
    SsmbDelete,
    SsmbDump,
    SsmbMessage,
    SsmbNewflow,
    SsmbQuery,
    SsmbReap,
    SsmbReset,
    SsmbStats,
    Translation,
    VirtualServer,
    VsList,
)
from twinplane.protocol.wire import DecodeError, decode_addr, encode_addr

from .balance import Node, Pool
from .config import CsConfig, DfsConfig, VsConfig
from .fastpath import (
    EMPTY_XLATE,
    FLOW,
    HEADER,
    QUERY_FIELDS,
    QUERY_SIZE,
    QUERY_TYPE,
    REPLY_HEAD,
    REPLY_PREFIXED,
    REPLY_PREFIXED_HEADED,
    REPLY_SIZE,
    REPLY_TYPE,
    TAG_SIZE,
    XLATE_CLIENT_MAC,
    pack_xlate,
)
from .flows import Flow, FlowTable

__all__ = ["LATENCY_BUCKETS", "ControlSegment", "DfsPeer"]

log = logging.getLogger("twinplane.cs")

#: Upper bounds (seconds) of the decision latency histogram.
LATENCY_BUCKETS = (1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2, float("inf"))
_REQUESTS = (CsmbType.ADD_VS, CsmbType.DEL_VS, CsmbType.VS_LIST, CsmbType.CONFIG)
_MISSED_HELLOS = 3
_SSMB = int(Bus.SSMB)
_SSMB_PREFIX = bytes([_SSMB])  # the codec's tag covers the bus number first
_MAJORS = frozenset(major for major, _ in SUPPORTED_VERSIONS)
_MAJOR, _MINOR = PROTOCOL_VERSION
_XLATE_FLAGS = int(Flag.TRANSLATE_ADDR | Flag.TRANSLATE_PORT)
_REPLY_COUNTER = {e: f"replies_{e.name.lower()}" for e in ErrorCode}
_WINDOW = ReplayWindow.SIZE
_WINDOW_MASK = (1 << _WINDOW) - 1
_FLOW_AT, _FLOW_END = HEADER.size, HEADER.size + FLOW.size  #: the raw signature inside a QUERY
_REPLIES_PER_DATAGRAM = MAX_DATAGRAM // REPLY_SIZE
_RESET_NO_FLOWS = 1  #: SsmbReset.reason of a DFS that holds no flow (twinplane.model.dfs_csmb)


class DfsPeer:
    """One DFS association, as the CS sees it."""

    def __init__(self, cfg: DfsConfig, versions: tuple[tuple[int, int], ...]):
        self.cfg = cfg
        self.name = cfg.name
        self.codec = Codec(cfg.key)
        self.csmb_addr = (cfg.address, cfg.csmb_port)
        self.ssmb_addr = (cfg.address, cfg.ssmb_port)
        self.versions = versions
        self.state = "idle"  # idle, hello, auth, up, gave_up
        self.version = versions[0]
        self.session = 0
        self.nonce = b""
        self.dfs_nonce = b""
        self.challenge = b""
        # One counter for both buses, as the DFS keeps one replay window per
        # session (docs/protocol.md): per-bus counters look like replays to it.
        self.tx_seq = 0
        self.windows: dict[int, ReplayWindow] = {}
        self.serial_global = 0
        self.serial_bytype: Counter = Counter()
        self.pending: dict[int, list] = {}  # serial -> [msg, deadline, interval]
        self.out_csmb: list[CsmbMessage] = []
        self.out_ssmb: list[SsmbMessage] = []
        #: REPLYs encoded when decided (seq, session and tag included), as
        #: alternating body and tag parts; they leave first at the next flush
        #: (see datagrams_to_send: the seq order on the wire stays increasing)
        self.out_replies: list[bytes] = []
        self.next_hello = 0.0
        self.missed = 0
        self.handshake_deadline: float | None = None
        self.listed: set[int] = set()
        self.associations = 0
        self.counters: Counter = Counter()
        # Redundancy (docs/redundancy.md): what the DFS's last HELLO answer said.
        self.dfs_epoch = 0
        self.active_cs_seen: float | None = None  #: last time the DFS reported an ACTIVE CS
        self.up_since = 0.0
        self.last_nonce = b""  #: the DFS nonce of the previous association (changed: the DFS restarted)
        self.repopulate = False
        self.dump_at: float | None = None  #: a DUMP is being answered (sent at this time)
        self.dumped: set = set()
        self.dump_known: set = set()

    def window(self, session: int) -> ReplayWindow:
        """The replay window of the DFS's messages in ``session`` (both buses)."""
        w = self.windows.get(session)
        if w is None:
            w = self.windows[session] = ReplayWindow()
        return w


class ControlSegment:
    """The CS core.  ``config`` is a checked :class:`CsConfig`."""

    def __init__(self, config: CsConfig, *, versions: tuple[tuple[int, int], ...] | None = None,
                 random_bytes: Callable[[int], bytes] = os.urandom):
        self.random_bytes = random_bytes
        self.versions = tuple(sorted(versions or SUPPORTED_VERSIONS, reverse=True))
        self.flows = FlowTable()
        self.counters: Counter = Counter()
        self.latency = [0] * len(LATENCY_BUCKETS)
        self.latency_sum = 0.0
        self.pools: dict[str, Pool] = {}
        self.nodes: dict[int, Node] = {}
        self.vss: dict[int, VsConfig] = {}
        self.vs_stats: dict[int, Counter] = {}
        self.peers: dict[str, DfsPeer] = {}
        self._peer_by_ssmb: dict[tuple[str, int], DfsPeer] = {}
        self._peer_by_csmb: dict[tuple[str, int], DfsPeer] = {}
        self._node_ids = 0
        #: (node, vs_id, ingress port) -> a Translation's bytes before and
        #: after client_mac (the only field a QUERY adds); emptied by reconfigure
        self._xlate_parts: dict[tuple[Node, int, int], tuple[bytes, bytes]] = {}
        self._next_sweep = 0.0
        self.config = config
        #: the role and fencing epoch this CS runs with now (docs/redundancy.md)
        self.role = Role.ACTIVE if config.redundancy.role == "active" else Role.STANDBY
        self.epoch = config.cs.epoch
        self.takeover_at: float | None = None
        self.reconfigure(config, now=None)

    # -- configuration ---------------------------------------------------------------------------
    def _new_node_id(self) -> int:
        self._node_ids += 1
        return self._node_ids

    def reconfigure(self, config: CsConfig, now: float | None = 0.0) -> None:
        """Apply a (re)loaded configuration without dropping flows: nodes are
        matched by pool and address:port, removed nodes drain, changed virtual
        servers are re-pushed and removed ones deleted on every DFS."""
        self.config = config
        self._xlate_parts = {}
        for name, pcfg in config.pools.items():
            pool = self.pools.get(name)
            if pool is None:
                self.pools[name] = Pool(pcfg, self._new_node_id)
            else:
                pool.apply(pcfg)
        for name in list(self.pools):
            if name not in config.pools:
                pool = self.pools[name]
                pool.apply(_empty_pool(name))  # its nodes drain
                if not pool.nodes:
                    del self.pools[name]
        self._index_nodes()
        old_vss = self.vss
        self.vss = dict(config.vss)
        for vs_id in self.vss:
            self.vs_stats.setdefault(vs_id, Counter())
        # DFS peers: keep those whose address and key did not change.
        wanted = {d.name: d for d in config.dfss}
        for name in list(self.peers):
            peer = self.peers[name]
            if name not in wanted or wanted[name] != peer.cfg:
                self._drop_peer_flows(peer)
                del self.peers[name]
        for name, dcfg in wanted.items():
            if name not in self.peers:
                self.peers[name] = DfsPeer(dcfg, self.versions)
        self._peer_by_ssmb = {p.ssmb_addr: p for p in self.peers.values()}
        self._peer_by_csmb = {p.csmb_addr: p for p in self.peers.values()}
        if now is None or self.role is not Role.ACTIVE:
            return
        for peer in self.peers.values():
            if peer.state != "up":
                continue
            for vs_id, vs in self.vss.items():
                if old_vss.get(vs_id) != vs:
                    self._request(peer, AddVs(vs=self._vs_block(vs), flags=self._vs_flags(vs)), now)
            for vs_id, vs in old_vss.items():
                if vs_id not in self.vss:
                    self._request(peer, DelVs(vs=self._vs_block(vs)), now)

    def _index_nodes(self) -> None:
        self.nodes = {n.node_id: n for pool in self.pools.values() for n in pool.nodes}

    @staticmethod
    def _vs_block(vs: VsConfig) -> VirtualServer:
        return VirtualServer(vs_id=vs.vs_id, protocol=vs.protocol, virt_addr=ipaddress.ip_address(vs.address),
                             virt_port=vs.port)

    @staticmethod
    def _vs_flags(vs: VsConfig) -> Flag:
        return Flag.NONE if vs.enabled else Flag.DISABLED

    # -- sending -----------------------------------------------------------------------------------
    def _csmb(self, peer: DfsPeer, msg: CsmbMessage) -> CsmbMessage:
        peer.serial_global = (peer.serial_global + 1) & 0xFFFF
        peer.serial_bytype[msg.TYPE] = (peer.serial_bytype[msg.TYPE] + 1) & 0xFFFF
        msg.serial_global = peer.serial_global
        msg.serial_bytype = peer.serial_bytype[msg.TYPE]
        msg.epoch = self.epoch
        peer.out_csmb.append(msg)
        return msg

    def _request(self, peer: DfsPeer, msg: CsmbMessage, now: float) -> None:
        self._csmb(peer, msg)
        interval = self.config.timeouts.csmb_retransmit_s
        peer.pending[msg.serial_global] = [msg, now + interval, interval]

    def _ssmb(self, peer: DfsPeer, msg: SsmbMessage) -> None:
        msg.epoch = self.epoch
        peer.out_ssmb.append(msg)

    def datagrams_to_send(self, now: float) -> list[tuple[Bus, tuple[str, int], bytes]]:
        """Everything ready, batched: messages of one DFS and bus are packed
        back to back into datagrams of at most MAX_DATAGRAM bytes (what
        Codec.encode_batch does).  The REPLYs, encoded (and numbered) when
        decided, leave first, then what is numbered now: CSMB, other SSMB."""
        out = []
        for peer in self.peers.values():
            replies = peer.out_replies
            if not (replies or peer.out_csmb or peer.out_ssmb):
                continue
            if replies:
                addr = peer.ssmb_addr
                step = 2 * _REPLIES_PER_DATAGRAM
                for i in range(0, len(replies), step):
                    out.append((Bus.SSMB, addr, b"".join(replies[i:i + step])))
                if len(replies) > 2 or peer.out_ssmb:
                    self.counters["batches"] += 1
                replies.clear()
            for bus, queue, addr in ((Bus.CSMB, peer.out_csmb, peer.csmb_addr),
                                     (Bus.SSMB, peer.out_ssmb, peer.ssmb_addr)):
                if not queue:
                    continue
                codec = peer.codec
                datagrams = []
                current = b""
                for msg in queue:
                    peer.tx_seq += 1
                    msg.seq = peer.tx_seq
                    # AUTH_CHALLENGE goes with session 0 (the contract); a
                    # HELLO carries the session once there is one.
                    if bus is Bus.SSMB or msg.msg_type != CsmbType.AUTH_CHALLENGE:
                        msg.session = peer.session
                    data = codec.encode(msg)
                    if current and len(current) + len(data) > MAX_DATAGRAM:
                        datagrams.append(current)
                        current = b""
                    current += data
                datagrams.append(current)
                if len(queue) > 1:
                    self.counters["batches"] += 1
                out.extend((bus, addr, d) for d in datagrams)
                queue.clear()
        return out

    # -- association -------------------------------------------------------------------------------
    def _start(self, peer: DfsPeer, now: float, version: tuple[int, int] | None = None) -> None:
        """A fresh association: HELLO with a fresh nonce, session 0, seq from 1."""
        peer.state = "hello"
        peer.version = version or peer.versions[0]
        peer.session = 0
        peer.nonce = self.random_bytes(8)
        # seq keeps counting across associations of this CS: a DFS that still
        # holds our old association's session-0 window must not take a new
        # HELLO for a replay (a fresh window accepts any seq).
        peer.windows.clear()
        peer.pending.clear()
        peer.out_csmb.clear()
        peer.out_ssmb.clear()
        peer.out_replies.clear()
        peer.missed = 0
        peer.handshake_deadline = now + self.config.timeouts.hello_interval_ms / 1000
        self._send_hello(peer, now)

    def _send_hello(self, peer: DfsPeer, now: float) -> None:
        cs = self.config.cs
        major, minor = peer.version
        msg = CsmbHello(vers_major=major, vers_minor=minor, csmb_vers_major=major, csmb_vers_minor=minor,
                        ssmb_vers_major=major, ssmb_vers_minor=minor, cs_id=cs.cs_id, role=self.role,
                        hello_interval_ms=self.config.timeouts.hello_interval_ms, nonce=peer.nonce,
                        ssmb_addr=ipaddress.ip_address(cs.ssmb_addr), ssmb_port=cs.ssmb_port)
        if self.config.redundancy.peers:
            msg.flags = Flag.REDUNDANT
            msg.ssmb_standby_addr = ipaddress.ip_address(self.config.redundancy.peers[0].rpartition(":")[0])
        self._csmb(peer, msg)
        peer.next_hello = now + self.config.timeouts.hello_interval_ms / 1000

    def _challenge(self, peer: DfsPeer, now: float) -> None:
        peer.state = "auth"
        peer.challenge = self.random_bytes(8)
        peer.handshake_deadline = now + self.config.timeouts.hello_interval_ms / 1000
        self._csmb(peer, CsmbAuthChallenge(challenge=peer.challenge))

    def _associated(self, peer: DfsPeer, now: float) -> None:
        peer.state = "up"
        peer.associations += 1
        peer.handshake_deadline = None
        peer.up_since = now
        # A DFS that answers with another nonce than last time restarted: the
        # active CS re-installs (NEWFLOW) the flows it no longer reports.
        peer.repopulate = bool(peer.last_nonce) and peer.dfs_nonce != peer.last_nonce
        peer.last_nonce = peer.dfs_nonce
        log.info("DFS %s: associated as %s, epoch %d (session %08x, version %d.%d)", peer.name, self.role.name,
                 self.epoch, peer.session, *peer.version)
        self.counters["associations"] += 1
        if self.role is Role.ACTIVE:
            # Re-push the virtual servers, then list the DFS's to delete strays.
            for vs in self.vss.values():
                self._request(peer, AddVs(vs=self._vs_block(vs), flags=self._vs_flags(vs)), now)
            peer.listed = set()
            self._request(peer, VsList(list_count=0), now)
        # Ask for its flows so the two tables agree (reconciled at DUMP END).
        peer.dump_at = now
        peer.dumped = set()
        peer.dump_known = {f.key for f in self.flows.of_dfs(peer.name)}  # only these are reconciled
        self._ssmb(peer, SsmbDump())

    def _lost(self, peer: DfsPeer, now: float, why: str) -> None:
        """Flows are kept: the DUMP after the next association reconciles them."""
        log.warning("DFS %s: %s; re-associating", peer.name, why)
        self.counters["dfs_lost"] += 1
        self._start(peer, now)

    # -- redundancy (docs/redundancy.md) -----------------------------------------------------------
    def _redundancy(self, peer: DfsPeer, msg: CsmbHello, now: float) -> None:
        """What a DFS's HELLO answer (epoch, ACTIVE_CS) means for our role."""
        peer.dfs_epoch = msg.epoch
        active_there = bool(msg.flags & Flag.ACTIVE_CS)
        if active_there:
            peer.active_cs_seen = now
        if self.role is Role.ACTIVE:
            if msg.epoch > self.epoch:
                if active_there:
                    self._demote(msg.epoch, f"DFS {peer.name} has an active CS at epoch {msg.epoch}", now)
                else:
                    self._take_over(now, f"DFS {peer.name} is at epoch {msg.epoch} without an active CS")
            return
        self.epoch = max(self.epoch, msg.epoch)
        if active_there or peer.state != "up":
            return
        grace = self.config.redundancy.takeover_grace_hellos * self.config.timeouts.hello_interval_ms / 1000
        if peer.active_cs_seen is not None or now - peer.up_since >= grace:
            self._take_over(now, f"DFS {peer.name} reports no active CS")

    def _take_over(self, now: float, why: str) -> None:
        """Become ACTIVE at an epoch above every DFS's and re-authenticate with each."""
        self.epoch = min(max([self.epoch, *(p.dfs_epoch for p in self.peers.values())]) + 1, 0xFFFF)
        self.role = Role.ACTIVE
        self.takeover_at = now
        self.counters["takeovers"] += 1
        log.warning("taking over as ACTIVE at epoch %d: %s", self.epoch, why)
        for peer in self.peers.values():
            if peer.state != "gave_up":
                self._start(peer, now)

    def _demote(self, epoch: int, why: str, now: float) -> None:
        """Fenced: become STANDBY at the newer epoch; HELLO tells every DFS now."""
        self.role = Role.STANDBY
        self.epoch = max(self.epoch, epoch)
        self.counters["demotions"] += 1
        log.warning("fenced: now STANDBY at epoch %d (%s)", self.epoch, why)
        for peer in self.peers.values():
            peer.pending.clear()  # our requests would be refused
            if peer.state == "up":
                peer.active_cs_seen = None
                self._send_hello(peer, now)

    def _on_replica(self, peer: DfsPeer, msg, now: float) -> None:
        """A REPLY/NEWFLOW another CS sent, copied to us by the DFS: mirror the flow."""
        if msg.error != ErrorCode.NONE:
            return
        key = _key(msg.flow)
        if self.flows.get(peer.name, key) is not None:
            self.counters["replicas_known"] += 1
            return
        node = self.nodes.get(msg.xlate.node_id)
        if node is None or msg.xlate.vs_id not in self.vss:
            self.counters["replicas_unknown_node"] += 1
            return
        idle = msg.xlate.idle_timeout_s or self.vss[msg.xlate.vs_id].idle_timeout_s or \
            self.config.timeouts.flow_idle_s
        self.flows.add(Flow(peer.name, key, msg.flow.pack(), msg.xlate.vs_id, node, msg.serial, now, idle,
                            msg.xlate.pack()))
        node.connections += 1
        node.total_flows += 1
        self.vs_stats.setdefault(msg.xlate.vs_id, Counter())["flows"] += 1
        self.counters["replicas"] += 1

    def _reconcile(self, peer: DfsPeer, now: float) -> None:
        """DUMP END: flows we hold that the DFS did not report are re-installed
        (the active CS, after a DFS restart) or forgotten."""
        started, peer.dump_at = peer.dump_at, None
        if started is None:
            return
        for flow in self.flows.of_dfs(peer.name):
            if flow.key in peer.dumped or flow.key not in peer.dump_known:
                continue
            if self.role is Role.ACTIVE and peer.repopulate and flow.flow is not None and flow.translation:
                self.counters["flows_repopulated"] += 1
                self._ssmb(peer, SsmbNewflow(serial=flow.serial, flags=Flag(_XLATE_FLAGS),
                                             flow=FlowSignature.unpack(flow.flow),
                                             xlate=Translation.unpack(flow.translation)))
            else:
                self.counters["flows_forgotten"] += 1
                self.flows.remove(flow.dfs, flow.key)
                self._end(flow)
        peer.repopulate = False
        peer.dumped = set()
        peer.dump_known = set()

    # -- receiving ---------------------------------------------------------------------------------
    def receive_datagram(self, bus: Bus, data: bytes, addr: tuple[str, int], now: float) -> None:
        peer = (self._peer_by_csmb if bus is Bus.CSMB else self._peer_by_ssmb).get(tuple(addr[:2]))
        if peer is None:
            self.counters["ignored_unknown_peer"] += 1
            return
        if bus is Bus.SSMB and peer.state == "up":
            self._receive_ssmb(peer, data, now)
            return
        for item in peer.codec.iter_decode(bus, data):
            if isinstance(item, DecodeError):
                self._ignored(peer, item.field)
                continue
            if bus is Bus.CSMB:
                self._on_csmb(peer, item, now)
            else:
                self._on_ssmb(peer, item, now)

    def _ignored(self, peer: DfsPeer, field: str) -> None:
        self.counters[f"ignored_{field.split('.')[0]}"] += 1
        peer.counters["ignored"] += 1

    def _receive_ssmb(self, peer: DfsPeer, data: bytes, now: float) -> None:
        """SSMB of an associated DFS: runs of QUERYs take the fast path
        (:meth:`_queries`), anything else goes through the codec one message
        at a time."""
        codec = peer.codec
        size = len(data)
        offset = 0
        while offset < size:
            if (size - offset >= QUERY_SIZE and data[offset + 2] == QUERY_TYPE
                    and data[offset + 4] == 0 and data[offset + 5] == QUERY_SIZE):
                offset = self._queries(peer, data, offset, now)
                continue
            try:
                msg, end = codec.decode_one(Bus.SSMB, data, offset)
            except DecodeError as error:
                self._ignored(peer, error.field)
                if error.field in ("header", "msg_length"):
                    return
                offset += int.from_bytes(data[offset + 4:offset + 6], "big")
                continue
            offset = end
            self._on_ssmb(peer, msg, now)

    # The hot path of the CS: one loop over a run of QUERYs in a datagram.
    # It does what the codec and _query do (length, type, version, tag,
    # session and replay checks, then the decision and the flow record)
    # with everything in locals: the replay window's state, the flow table's
    # dict and heap (FlowTable.add inlined), round robin without persistence
    # inlined (the other methods call Pool.select), and the counters and the
    # latency histogram updated once per run rather than per QUERY (the
    # decisions of a run share its average time).  Per-call and per-counter
    # overheads were most of the time per setup (docs/cs.md, Benchmark).
    def _queries(self, peer: DfsPeer, data: bytes, offset: int, now: float) -> int:
        """Decide the QUERYs from ``offset`` on; return the offset after them."""
        key = peer.codec.key
        name = peer.name
        session = peer.session
        window = peer.window(session)
        highest, bitmap = window.highest, window.bitmap
        table = self.flows.flows
        lookup = table.get
        heap = self.flows.heap
        tie = self.flows.tie
        vss = self.vss
        pools = self.pools
        flow_idle = self.config.timeouts.flow_idle_s
        out = peer.out_replies
        tx_seq = peer.tx_seq
        epoch = self.epoch
        unpack = QUERY_FIELDS.unpack_from
        xlate_parts = self._xlate_parts
        reply_pack = REPLY_PREFIXED.pack
        granted_pack = REPLY_PREFIXED_HEADED.pack  # REPLYs with a translation (error NONE)
        granted = REPLY_HEAD.pack(_SSMB, _MAJOR, _MINOR, REPLY_TYPE, 0, REPLY_SIZE, epoch, _XLATE_FLAGS)
        size = len(data)
        accepted = replied = decided = 0  # QUERYs, REPLYs with error NONE, decisions
        created: list[int] = []  # the vs_id of each new flow
        run_vs_id = vs = pool = rotate = idle = None
        new_flow = object.__new__
        start = time.perf_counter()
        while (size - offset >= QUERY_SIZE and data[offset + 2] == QUERY_TYPE
               and data[offset + 4] == 0 and data[offset + 5] == QUERY_SIZE):
            end = offset + QUERY_SIZE
            if siphash(key, _SSMB_PREFIX + data[offset:end - TAG_SIZE]) != int.from_bytes(data[end - TAG_SIZE:end],
                                                                                          "little"):
                self._ignored(peer, "tag")
                offset = end
                continue
            if data[offset] not in _MAJORS:
                self._ignored(peer, "vers_major")
                offset = end
                continue
            (serial, their_session, seq, src, dst, sport, dport, proto, vlan, ingress, client_mac,
             vs_id) = unpack(data, offset)
            if their_session != session:
                self._ignored(peer, "session")
                offset = end
                continue
            # ReplayWindow.check, inlined (the state is written back below).
            if seq > highest:
                shift = seq - highest
                bitmap = ((bitmap << shift) | 1) & _WINDOW_MASK if shift < _WINDOW else 1
                highest = seq
            elif seq == 0 or highest - seq >= _WINDOW or bitmap >> (highest - seq) & 1:
                self._ignored(peer, "replay")
                offset = end
                continue
            else:
                bitmap |= 1 << (highest - seq)
            raw_flow = data[offset + _FLOW_AT:offset + _FLOW_END]
            offset = end
            accepted += 1
            fkey = (src, dst, sport, dport, proto, vlan)
            k = (name, fkey)
            existing = lookup(k)
            if existing is not None:  # the DFS asked again (our REPLY was lost): same answer
                replied += 1
                xlate = existing.translation
                tx_seq += 1
                prefixed = reply_pack(_SSMB, _MAJOR, _MINOR, REPLY_TYPE, 0, REPLY_SIZE, epoch,
                                      0 if xlate is None else _XLATE_FLAGS, serial, session, tx_seq, raw_flow,
                                      xlate or EMPTY_XLATE)
                out += (prefixed[1:], siphash(key, prefixed).to_bytes(TAG_SIZE, "little"))
                continue
            decided += 1
            if vs_id != run_vs_id:  # what the VS decides, looked up once per run of the same VS
                vs = vss.get(vs_id)
                if vs is None:
                    vs = self._find_vs(vs_id, dst, dport, proto)
                    run_vs_id = None
                else:
                    run_vs_id = vs_id
                if vs is not None:
                    pool = pools[vs.pool]
                    rotate = pool.method == "round_robin" and pool.persistence_s <= 0
                    idle = vs.idle_timeout_s or flow_idle
            node = None
            if vs is None:
                error = ErrorCode.UNKNOWN
            elif not vs.enabled:
                error = ErrorCode.NOTAVAIL
            else:
                if rotate:
                    # Pool.select + Pool._round_robin: the next candidate
                    # after the last choice in the pool's order.
                    nodes = pool.nodes
                    count = len(nodes)
                    i = pool.rr
                    for _ in nodes:
                        i = (i + 1) % count
                        n = nodes[i]
                        if n.up and n.weight > 0 and not (n.maintenance or n.disabled or n.removed
                                                          or 0 < n.connection_limit <= n.connections):
                            pool.rr = i
                            node = n
                            break
                if node is None:  # other methods, or no candidate (NOTAVAIL / CONNLIMIT)
                    error, node = pool.select(src, sport, dst, dport, proto, now)
            if node is None:
                self.counters[_REPLY_COUNTER[error]] += 1
                tx_seq += 1
                prefixed = reply_pack(_SSMB, _MAJOR, _MINOR, REPLY_TYPE, error, REPLY_SIZE, epoch, 0, serial,
                                      session, tx_seq, raw_flow, EMPTY_XLATE)
                out += (prefixed[1:], siphash(key, prefixed).to_bytes(TAG_SIZE, "little"))
                continue
            parts = xlate_parts.get((node, vs.vs_id, ingress))
            if parts is None:
                parts = self._translation_parts(node, vs, ingress)
            xlate = parts[0] + client_mac + parts[1]
            # Flow(name, fkey, raw_flow, vs.vs_id, node, serial, now, idle, xlate), without the call
            flow = new_flow(Flow)
            flow.dfs = name
            flow.key = fkey
            flow.flow = raw_flow
            flow.vs_id = vs.vs_id
            flow.node = node
            flow.serial = serial
            flow.created = now
            flow.idle_s = idle
            flow.deadline = deadline = now + idle
            flow.reaping = 0
            flow.translation = xlate
            table[k] = flow
            heappush(heap, (deadline, next(tie), k))
            node.connections += 1
            node.total_flows += 1
            created.append(vs.vs_id)
            replied += 1
            tx_seq += 1
            prefixed = granted_pack(granted, serial, session, tx_seq, raw_flow, xlate)
            out += (prefixed[1:], siphash(key, prefixed).to_bytes(TAG_SIZE, "little"))
        elapsed = time.perf_counter() - start
        peer.tx_seq = tx_seq
        window.highest, window.bitmap = highest, bitmap
        counters = self.counters
        if accepted:
            counters["queries"] += accepted
        if replied:
            counters["replies_none"] += replied
        if decided:
            self.latency_sum += elapsed
            self.latency[bisect_left(LATENCY_BUCKETS, elapsed / decided)] += decided
        if created:
            first = created[0]
            if created.count(first) == len(created):  # one VS (the usual case): no Counter
                self.vs_stats[first]["flows"] += len(created)
            else:
                for vs_id, n in Counter(created).items():
                    self.vs_stats[vs_id]["flows"] += n
        return offset

    def _accept(self, peer: DfsPeer, bus: Bus, msg, session_ok: bool) -> bool:
        if not session_ok:
            self.counters["ignored_session"] += 1
            peer.counters["ignored"] += 1
            return False
        try:
            peer.window(msg.session).check(msg.seq)
        except DecodeError:
            self.counters["ignored_replay"] += 1
            peer.counters["ignored"] += 1
            return False
        return True

    def _on_csmb(self, peer: DfsPeer, msg: CsmbMessage, now: float) -> None:
        t = msg.msg_type
        if t == CsmbType.HELLO:
            if msg.session == 0 and msg.nonce != peer.dfs_nonce:
                peer.windows.pop(0, None)  # a new DFS association counts from 1
            # While the CS is starting an association it takes the answer
            # whatever session the DFS still believes in (its tag is good).
            if not self._accept(peer, Bus.CSMB, msg, msg.session in (0, peer.session) or peer.state == "hello"):
                return
            self._on_hello(peer, msg, now)
            return
        if t == CsmbType.AUTH_RESPONSE:
            if not self._accept(peer, Bus.CSMB, msg, True):
                return
            if peer.state != "auth" or msg.challenge != peer.challenge:
                self.counters["ignored_stale_auth"] += 1
                return
            expected = auth_response(peer.cfg.key, peer.challenge, peer.dfs_nonce)
            sid = session_id(peer.cfg.key, peer.challenge, peer.dfs_nonce)
            if msg.response != expected or msg.session != sid:
                self.counters["auth_failed"] += 1
                log.warning("DFS %s: authentication response does not verify", peer.name)
                return
            peer.session = sid
            self._associated(peer, now)
            return
        if t == CsmbType.ACK and msg.error == ErrorCode.NOTAUTH and msg.session == 0:
            # A restarted DFS counts from 1 again, so the session-0 replay
            # window cannot judge it; it must name a request we are waiting for.
            self.counters["acks_notauth"] += 1
            if peer.state == "up" and msg.acked_serial in peer.pending:
                self._lost(peer, now, "request answered NOTAUTH (the DFS restarted)")
            return
        if not self._accept(peer, Bus.CSMB, msg, peer.state == "up" and msg.session == peer.session):
            return
        if t == CsmbType.ACK:
            entry = peer.pending.pop(msg.acked_serial, None)
            if entry is None:
                self.counters["acks_duplicate"] += 1
                return
            if msg.error == ErrorCode.STALE_EPOCH and self.role is Role.ACTIVE:
                self.counters["acks_stale_epoch"] += 1
                self._demote(msg.epoch, f"DFS {peer.name} refused a request as STALE_EPOCH", now)
                return
            if msg.error != ErrorCode.NONE:
                self.counters[f"acks_{ErrorCode(msg.error).name.lower()}"] += 1
                log.error("DFS %s refused %s (serial %d): %s", peer.name, CsmbType(msg.acked_type).name,
                          msg.acked_serial, ErrorCode(msg.error).name)
                return
            if msg.acked_type == CsmbType.VS_LIST:
                for vs_id in peer.listed - set(self.vss):
                    self._request(peer, DelVs(vs=VirtualServer(vs_id=vs_id)), now)
        elif t == CsmbType.VS_LIST:
            peer.listed.add(msg.vs.vs_id)
        else:
            self.counters["ignored_type"] += 1

    def _on_hello(self, peer: DfsPeer, msg: CsmbHello, now: float) -> None:
        peer.missed = 0
        if msg.error in (ErrorCode.VERS_NEW, ErrorCode.VERS_OBSOLETE):
            theirs = (msg.csmb_vers_major, msg.csmb_vers_minor)
            if msg.error == ErrorCode.VERS_NEW:
                choice = [v for v in peer.versions if v <= theirs]
            else:
                choice = [v for v in peer.versions if v >= theirs]
            choice = [v for v in choice if v != peer.version]
            self.counters[f"hello_{ErrorCode(msg.error).name.lower()}"] += 1
            if peer.state in ("hello", "auth") and choice:
                log.info("DFS %s: %s %d.%d; retrying with %d.%d", peer.name, ErrorCode(msg.error).name,
                         *theirs, *choice[0])
                self._start(peer, now, choice[0])
            else:
                log.error("DFS %s: no common protocol version (%s %d.%d); giving up", peer.name,
                          ErrorCode(msg.error).name, *theirs)
                peer.state = "gave_up"
                peer.handshake_deadline = None
            return
        if msg.error != ErrorCode.NONE:
            self.counters["ignored_hello_error"] += 1
            return
        if peer.state == "hello":
            peer.dfs_nonce = msg.nonce
            self._challenge(peer, now)
        elif peer.state == "up" and msg.nonce != peer.dfs_nonce:
            self._lost(peer, now, "HELLO carries a new nonce (the DFS restarted)")
            return
        self._redundancy(peer, msg, now)

    def _on_ssmb(self, peer: DfsPeer, msg: SsmbMessage, now: float) -> None:
        if not self._accept(peer, Bus.SSMB, msg, peer.state == "up" and msg.session == peer.session):
            return
        t = msg.msg_type
        if t == SsmbType.QUERY:
            self._on_query(peer, msg, now)
        elif t == SsmbType.DELETE:
            self._on_delete(peer, msg)
        elif t == SsmbType.STATS:
            self._on_stats(peer, msg, now)
        elif t == SsmbType.RESET:
            if msg.reason == _RESET_NO_FLOWS:
                # The DFS (re)started empty: the DUMP reconciliation decides.
                self.counters["resets_no_flows"] += 1
                return
            log.info("DFS %s: RESET: its flows are gone", peer.name)
            self.counters["resets_received"] += 1
            self._drop_peer_flows(peer)
        elif t in (SsmbType.REPLY, SsmbType.NEWFLOW):
            self._on_replica(peer, msg, now)
        elif t == SsmbType.DUMP:
            self.counters["ssmb_dump"] += 1
            self._reconcile(peer, now)
        elif t == SsmbType.HELLO:
            self.counters[f"ssmb_{SsmbType(t).name.lower()}"] += 1
        else:
            self.counters["ignored_type"] += 1

    # -- decisions ---------------------------------------------------------------------------------
    def _find_vs(self, vs_id: int, dst: bytes, dst_port: int, protocol: int) -> VsConfig | None:
        vs = self.vss.get(vs_id)
        if vs is not None:
            return vs
        for vs in self.vss.values():
            if vs.port == dst_port and vs.protocol == protocol and encode_addr(vs.address) == dst:
                return vs
        return None

    def _on_query(self, peer: DfsPeer, msg: SsmbQuery, now: float) -> None:
        """A QUERY that came through the codec (the fast path bypasses it)."""
        self._query(peer, msg.serial, msg.flow.pack(), msg.client_mac, msg.vs_id, now)

    def _query(self, peer: DfsPeer, serial: int, raw_flow: bytes, client_mac: bytes, vs_id: int,
               now: float) -> None:
        self.counters["queries"] += 1
        start = time.perf_counter()
        src, dst, sport, dport, proto, _, _, _, vlan, ingress, _ = FLOW.unpack(raw_flow)
        key = (src, dst, sport, dport, proto, vlan)
        existing = self.flows.get(peer.name, key)
        if existing is not None:  # the DFS asked again (our REPLY was lost): same answer
            self._reply(peer, serial, raw_flow, ErrorCode.NONE, existing.translation)
            return
        vs = self._find_vs(vs_id, dst, dport, proto)
        if vs is None:
            error, node = ErrorCode.UNKNOWN, None
        elif not vs.enabled:
            error, node = ErrorCode.NOTAVAIL, None
        else:
            error, node = self.pools[vs.pool].select(src, sport, dst, dport, proto, now)
        xlate = None
        if node is not None:
            idle = vs.idle_timeout_s or self.config.timeouts.flow_idle_s
            xlate = pack_xlate(node.packed, node.port, node.egress_port, ingress, node.mac, client_mac,
                               min(int(idle), 0xFFFF), vs.vs_id, node.node_id)
            self.flows.add(Flow(peer.name, key, raw_flow, vs.vs_id, node, serial, now, idle, xlate))
            node.connections += 1
            node.total_flows += 1
            self.vs_stats[vs.vs_id]["flows"] += 1
        elapsed = time.perf_counter() - start
        self.latency_sum += elapsed
        self.latency[bisect_left(LATENCY_BUCKETS, elapsed)] += 1
        self._reply(peer, serial, raw_flow, error, xlate)

    def _translation_parts(self, node: Node, vs: VsConfig, ingress: int) -> tuple[bytes, bytes]:
        idle = vs.idle_timeout_s or self.config.timeouts.flow_idle_s
        xlate = pack_xlate(node.packed, node.port, node.egress_port, ingress, node.mac, bytes(6),
                           min(int(idle), 0xFFFF), vs.vs_id, node.node_id)
        parts = self._xlate_parts[node, vs.vs_id, ingress] = (xlate[:XLATE_CLIENT_MAC], xlate[XLATE_CLIENT_MAC + 6:])
        return parts

    def _reply(self, peer: DfsPeer, serial: int, raw_flow: bytes, error: ErrorCode, xlate: bytes | None) -> None:
        """Encode a REPLY now (what _queries does inline)."""
        self.counters[_REPLY_COUNTER[error]] += 1
        peer.tx_seq += 1
        prefixed = REPLY_PREFIXED.pack(_SSMB, _MAJOR, _MINOR, REPLY_TYPE, error, REPLY_SIZE, self.epoch,
                                       0 if xlate is None else _XLATE_FLAGS, serial, peer.session, peer.tx_seq,
                                       raw_flow, xlate or EMPTY_XLATE)
        peer.out_replies += (prefixed[1:], siphash(peer.codec.key, prefixed).to_bytes(TAG_SIZE, "little"))

    # -- flow lifecycle ----------------------------------------------------------------------------
    def _account(self, flow: Flow, stats) -> None:
        node = flow.node
        node.packets_in += stats.packets_in
        node.bytes_in += stats.bytes_in
        node.packets_out += stats.packets_out
        node.bytes_out += stats.bytes_out
        vs = self.vs_stats.setdefault(flow.vs_id, Counter())
        vs["packets_in"] += stats.packets_in
        vs["bytes_in"] += stats.bytes_in
        vs["packets_out"] += stats.packets_out
        vs["bytes_out"] += stats.bytes_out

    def _end(self, flow: Flow) -> None:
        flow.node.connections -= 1
        if flow.node.removed and flow.node.connections <= 0:
            for pool in self.pools.values():
                pool.forget_removed()
            self._index_nodes()

    def _on_delete(self, peer: DfsPeer, msg: SsmbDelete) -> None:
        flow = self.flows.remove(peer.name, _key(msg.flow))
        if flow is None:
            self.counters["deletes_unknown"] += 1
            return
        self.counters[f"deletes_{DeleteReason(msg.stats.reason).name.lower()}"] += 1
        self._account(flow, msg.stats)
        self._end(flow)

    def _on_stats(self, peer: DfsPeer, msg: SsmbStats, now: float) -> None:
        key = _key(msg.flow)
        if peer.dump_at is not None and msg.error == ErrorCode.NONE:
            peer.dumped.add(key)
        flow = self.flows.get(peer.name, key)
        if flow is None:
            # DUMP answer for a flow we do not know (the CS restarted): adopt it
            # if its node is still ours, so limits and reaping cover it.
            node = self.nodes.get(msg.stats.node_id)
            if msg.error == ErrorCode.NONE and node is not None and msg.stats.vs_id in self.vss:
                idle = self.vss[msg.stats.vs_id].idle_timeout_s or self.config.timeouts.flow_idle_s
                xlate = pack_xlate(node.packed, node.port, node.egress_port, msg.flow.ingress_port, node.mac,
                                   bytes(6), min(int(idle), 0xFFFF), msg.stats.vs_id, node.node_id)
                self.flows.add(Flow(peer.name, key, msg.flow.pack(), msg.stats.vs_id, node, msg.serial, now, idle,
                                    xlate))
                node.connections += 1
                self.counters["flows_adopted"] += 1
            else:
                self.counters["stats_unknown"] += 1
            return
        if msg.error == ErrorCode.CONNALIVE:
            self.counters["reaps_alive"] += 1
            flow.reaping = 0
            remaining = max(flow.idle_s - msg.stats.idle_ms / 1000, 0.0)
            self.flows.set_deadline(flow, now + max(remaining, flow.idle_s / 2))

    def _timer_flows(self, now: float) -> None:
        retry = self.config.timeouts.reap_retry_s
        for flow in list(self.flows.expired(now)):
            peer = self.peers.get(flow.dfs)
            if peer is not None and peer.state == "up" and self.role is Role.ACTIVE:
                flow.reaping += 1
                self.counters["reaps_sent"] += 1
                self._ssmb(peer, SsmbReap(serial=flow.serial, flow=_signature(flow),
                                          idle_ms=int(flow.idle_s * 1000)))
            self.flows.set_deadline(flow, now + retry)

    def _drop_peer_flows(self, peer: DfsPeer) -> None:
        for flow in self.flows.of_dfs(peer.name):
            self.flows.remove(flow.dfs, flow.key)
            self._end(flow)

    def reset_dfs(self, name: str, now: float) -> None:
        """Tell a DFS to forget every flow, and forget them here."""
        peer = self.peers[name]
        self._drop_peer_flows(peer)
        if peer.state == "up" and self.role is Role.ACTIVE:
            self._ssmb(peer, SsmbReset())

    # -- timers ------------------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        # Called after every batch of decisions: no generator, no list.
        best = self.flows.next_deadline()
        for peer in self.peers.values():
            state = peer.state
            if state == "idle":
                return 0.0
            if state == "gave_up":
                continue
            t = peer.next_hello
            if peer.handshake_deadline is not None and peer.handshake_deadline < t:
                t = peer.handshake_deadline
            for entry in peer.pending.values():
                if entry[1] < t:
                    t = entry[1]
            if best is None or t < best:
                best = t
        for pool in self.pools.values():
            if pool.persistence_s > 0:
                if best is None or self._next_sweep < best:
                    best = self._next_sweep
                break
        return best

    def handle_timer(self, now: float) -> None:
        hello_s = self.config.timeouts.hello_interval_ms / 1000
        for peer in self.peers.values():
            if peer.state == "idle":
                self._start(peer, now)
                continue
            if peer.state == "gave_up":
                continue
            if peer.handshake_deadline is not None and now >= peer.handshake_deadline:
                self.counters["handshake_timeouts"] += 1
                self._start(peer, now)
                continue
            if now >= peer.next_hello:
                if peer.state == "up":
                    peer.missed += 1
                    if peer.missed > _MISSED_HELLOS:
                        self._lost(peer, now, f"{_MISSED_HELLOS} HELLO answers missed")
                        continue
                self._send_hello(peer, now)
            max_s = self.config.timeouts.csmb_retransmit_max_s
            for entry in peer.pending.values():
                if now >= entry[1]:
                    entry[2] = min(entry[2] * 2, max_s)
                    entry[1] = now + entry[2]
                    self.counters["csmb_retransmits"] += 1
                    peer.out_csmb.append(entry[0])  # same content and serials, new seq
        self._timer_flows(now)
        if now >= self._next_sweep:
            for pool in self.pools.values():
                pool.expire_persistence(now)
            self._next_sweep = now + max(hello_s, 1.0)

    # -- operator actions and views (ctl, metrics) -------------------------------------------------
    def find_node(self, spec: str) -> Node:
        """A node by id or by address:port (optionally pool/address:port)."""
        pool_name, _, rest = spec.rpartition("/")
        for node in self.nodes.values():
            if pool_name and node.pool != pool_name:
                continue
            if rest == str(node.node_id) or rest == node.name:
                return node
        raise KeyError(f"no node {spec!r}")

    def set_node(self, spec: str, action: str) -> Node:
        node = self.find_node(spec)
        if action == "drain":
            node.weight = 0
        elif action == "enable":
            node.disabled = False
            node.maintenance = False
            if node.weight == 0:
                cfg = next((n for n in self.config.pools[node.pool].nodes
                            if (ipaddress.ip_address(n.address), n.port) == (node.address, node.port)), None)
                node.weight = cfg.weight if cfg is not None and cfg.weight else 1
        elif action == "disable":
            node.disabled = True
        else:
            raise ValueError(f"unknown action {action!r}")
        log.info("node %s/%s: %s", node.pool, node.name, action)
        return node

    def set_health(self, node: Node, up: bool, response_time: float | None = None) -> None:
        if response_time is not None:
            node.response_time = response_time if node.response_time is None else (
                0.7 * node.response_time + 0.3 * response_time)
        if node.up != up:
            node.up = up
            node.health_changes += 1
            self.counters["health_changes"] += 1
            log.warning("node %s/%s is %s", node.pool, node.name, "up" if up else "down")

    def preload_flows(self, dfs: str, count: int, now: float) -> None:
        """Benchmark helper: ``count`` synthetic flows of DFS ``dfs`` spread
        over the nodes of the first virtual server's pool (signatures are
        rebuilt from the key when needed, to keep a million flows small)."""
        vs = next(iter(self.vss.values()))
        nodes = self.pools[vs.pool].nodes
        dst = encode_addr(vs.address)
        base = int(ipaddress.ip_address("100.64.0.0"))
        idle = vs.idle_timeout_s or self.config.timeouts.flow_idle_s
        v4 = ipaddress.IPv4Address
        for i in range(count):
            node = nodes[i % len(nodes)]
            key = (encode_addr(v4(base + (i >> 14))), dst, 1024 + (i & 0x3FFF), vs.port, vs.protocol, 0)
            self.flows.add(Flow(dfs, key, None, vs.vs_id, node, i + 1, now, idle))
            node.connections += 1

    def view_vss(self) -> list[dict]:
        return [{"id": vs.vs_id, "address": vs.address, "port": vs.port, "protocol": vs.protocol,
                 "pool": vs.pool, "enabled": vs.enabled, **dict(self.vs_stats.get(vs.vs_id, {}))}
                for vs in self.vss.values()]

    def view_nodes(self) -> list[dict]:
        return [{"id": n.node_id, "pool": n.pool, "address": str(n.address), "port": n.port,
                 "state": n.state, "weight": n.weight, "connections": n.connections,
                 "limit": n.connection_limit, "flows": n.total_flows, "response_time": n.response_time,
                 "bytes_in": n.bytes_in, "bytes_out": n.bytes_out}
                for pool in self.pools.values() for n in pool.nodes]

    def view_flows(self, limit: int = 100) -> list[dict]:
        out = []
        for flow in self.flows.flows.values():
            if len(out) >= limit:
                break
            f = _signature(flow)
            out.append({"dfs": flow.dfs, "client": f"{f.src_addr}:{f.src_port}", "vs": flow.vs_id,
                        "node": flow.node.name, "protocol": f.protocol, "reaping": flow.reaping})
        return out

    def view_dfss(self) -> list[dict]:
        return [{"name": p.name, "state": p.state, "role": self.role.name.lower(), "epoch": self.epoch,
                 "dfs_epoch": p.dfs_epoch, "session": f"{p.session:08x}", "version": f"{p.version[0]}.{p.version[1]}",
                 "associations": p.associations, "pending": len(p.pending), "ignored": p.counters["ignored"]}
                for p in self.peers.values()]


def _key(flow: FlowSignature) -> tuple:
    """The table key of a codec-decoded signature (addresses as wire bytes)."""
    return (encode_addr(flow.src_addr), encode_addr(flow.dst_addr), flow.src_port, flow.dst_port, flow.protocol,
            flow.vlan_id)


def _signature(flow: Flow) -> FlowSignature:
    if flow.flow is not None:
        return FlowSignature.unpack(flow.flow)
    src, dst, sport, dport, proto, vlan = flow.key
    return FlowSignature(src_addr=decode_addr(src), dst_addr=decode_addr(dst), src_port=sport, dst_port=dport,
                         protocol=proto, family=AddressFamily.IPV4 if src[:12] == dst[:12] else AddressFamily.IPV6,
                         vlan_valid=1 if vlan else 0, vlan_id=vlan)


def _empty_pool(name: str):
    from .config import PoolConfig

    return PoolConfig(name=name)
