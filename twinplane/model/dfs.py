# Reference DFS (data flow segment): the oracle of the gateware and the
# software data plane of the demo.
# Ref: the patent's figures 17-22 (flow management, DFS message processing,
#      new flow management, TCP open/close); /tmp/handshake.txt (CS<->DFS
#      contract); RFC 1624 (incremental checksums); RFC 826 (ARP).
"""Sans-I/O model of a whole DFS: frames in, frames out; SSMB/CSMB in and out.

Time is passed in as ``now`` (float seconds); nothing here sleeps or opens a
socket (:mod:`twinplane.model.softdfs` is the asyncio adapter).

Decisions (documented here once; tests pin them):

* Ports: ``DfsConfig.port_roles[i]`` says whether network port ``i`` is
  EXTERNAL (clients) or INTERNAL (nodes, the DFS's own address).
* Unknown traffic: from an external port only new flows to a virtual server
  are accepted (TCP: a SYN without ACK; UDP: any datagram); everything else
  not in the flow table is dropped and counted (``drop_no_flow_external``,
  ``drop_tcp_not_syn``).  From an internal port, frames not in the flow table
  are dropped and counted (``drop_no_flow_internal``); the DFS routes
  nothing it was not told about.  IP fragments (``drop_fragment``), ICMP,
  IPv6 and other protocols (``drop_unsupported``) are dropped and counted.
* Virtual server match: :class:`twinplane.model.vscam.VirtualServerTable`
  (the CAM's model) filled in vs_id order: exact address and port beats
  WILDCARD_PORT beats WILDCARD_ADDR beats both wildcards; on a tie the
  lowest CAM slot wins, as in the gateware: ADD_VS of a new vs_id takes the
  lowest free slot of ``vs_entries`` (none free: BADCONFIG), of a known vs_id
  its own slot; a WILDCARD_ADDR VS takes only addresses no other VS (nor the DFS)
  owns.  A VS with ``vlan_id`` != 0 matches only that VLAN.  DISABLED VSs
  take no new flows.
* ARP: requests for the DFS's address on an internal port, or the address
  of a (non-wildcard, non-NOARP_MODE) VS on an external port, are answered
  on the port they came on (with the request's VLAN tag); other ARP
  frames are dropped and counted (the DFS learns no MACs: the CS gives them).
* New flow (figure 20/21): the first packet of a flow to a VS sends QUERY to
  the active CS and is held.  Bounds: ``max_pending`` pending flows
  (beyond: the packet is dropped, ``drop_pending_full``), ``max_held_per_flow``
  packets and ``max_held_bytes_per_flow`` bytes per pending flow
  (``drop_held_flow_full``; a first packet too big to hold is dropped, but the
  flow is still asked for) and ``max_held_total``
  overall (``drop_held_total_full``).  A pending flow without REPLY for
  ``pending_timeout_s`` expires (``pending_timeouts``) and its held packets
  are dropped (``drop_pending_timeout``); its next packet queries again.
* REPLY error NONE (or NEWFLOW) installs two flow table entries: the inbound
  one keyed (client, VS, inbound=1) and the return one keyed (node, client,
  inbound=0); held packets are then forwarded in arrival order.  REPLY with
  UNKNOWN/NOTAVAIL/CONNLIMIT drops the held packets (``drop_reply_<error>``).
  A REPLY with no pending flow still installs (replies are self-contained).
* Forward rewrite (by the entry's action word, through
  :mod:`twinplane.model.rewrite`, the rewriter's model): destination
  address/port to node_addr/node_port (TRANSLATE_ADDR/TRANSLATE_PORT),
  source MAC = DFS MAC, destination MAC = node_mac, out of egress_port.
  Return rewrite: source address/port back to the VS's, MACs (DFS,
  client_mac), out of client_port.  VLAN, length-preserving as in the
  gateware: a tagged frame gets node_vlan / client_vlan when that is
  non-zero (PCP kept); no tag is ever inserted or removed.
* ADD_TCP_OFFSETS (all mod 2**32): client->node: seq += seq_offset, ack +=
  ack_offset; node->client: seq -= ack_offset, ack -= seq_offset (the ack
  field is rewritten even without the ACK flag, as the gateware does; it is
  meaningless then).  So the node's sequence space is the client's plus the
  offsets.  SACK blocks and timestamps are not rewritten.
* Checksums are updated incrementally (RFC 1624), never recomputed: IPv4
  header checksum for the address, TCP checksum for pseudo-header address,
  port and seq/ack, UDP the same except that checksum 0 stays 0.
* TTL is not decremented: the DFS is a NAT in front of the nodes on the same
  segment, not a router hop (like LVS-NAT's forwarding is invisible).
* TCP close tracking (as the gateware's flow controller): FIN from each
  side and RST are recorded (``tcp_state``); a flow with FINs both ways or
  an RST is *closed*, and ``poll`` deletes it (DELETE reason RST if an RST
  was seen, else FIN) once both its entries have been idle for
  ``close_linger_ticks`` flow-table ticks.  So the last ACK and a
  retransmitted FIN (its ACK lost) still pass: the patent's "should not
  delete a TCP flow when the flow is in the middle of state transition".
  One FIN alone (half-close) never deletes.
* Overflow (figure 21): when the flow table must evict, it evicts the oldest
  candidate entry (FlowTableModel); the whole flow it belongs to (both
  entries) goes and the active CS gets DELETE(reason OVERFLOW, stats).  An
  active flow whose other direction is silent may be the victim: age is per
  entry, as in the gateware.
* Idle: ``poll`` deletes flows without a packet for their idle timeout
  (Translation.idle_timeout_s, else the configured default): DELETE(IDLE).
* REAP / TIMEOUT: a flow that saw a packet within idle_ms is answered STATS
  error CONNALIVE; otherwise it is deleted and answered DELETE(REAP/TIMEOUT).
  An unknown flow is answered DELETE(reason of the request) with zero stats
  so the CS forgets it too (``reap_unknown``).  CS DELETE deletes and
  answers DELETE(CS_DELETE).  RESET deletes every flow and pending flow
  without per-flow DELETEs and answers RESET.  DUMP: STATS per flow then
  DUMP(END, count).
* Several CSs (docs/redundancy.md): each authenticated association is a
  peer.  The DFS's epoch is the highest epoch an authenticated ACTIVE-role CS
  has used (a standby's never raises it).  The *active set* is the
  authenticated ACTIVE-role CSs at exactly that epoch, ordered by cs_id; only
  they change state (REPLY, NEWFLOW, REAP, TIMEOUT, DELETE, RESET; ADD_VS,
  DEL_VS, CONFIG): others are fenced (SSMB: ``invalid_stale_epoch``; CSMB:
  ACK STALE_EPOCH).  HELLO, DUMP and VS_LIST only read and are answered to
  any authenticated CS.  A QUERY goes to ``active[crc32(inbound key) % n]``
  (active/active split; one active: all of them).  No CS associated at all:
  new flows are dropped (``drop_no_cs``); CSs associated but none active (a
  takeover under way, including the round trip in which the standby
  re-authenticates and no CS at all is authenticated): the new flow waits as
  a pending flow, unasked.  A peer that misses 3 HELLO intervals is
  forgotten.  Answers (STATS, DUMP) go to the CS that asked.  When the
  active set changes, pending flows whose QUERY went to a CS that left it
  are asked again of their new owner (``queries_rerouted``), so a SYN held
  across a takeover is answered once the new active authenticates.
* State replication (the patent's artificial packet replication): an
  installed REPLY/NEWFLOW is copied to every other authenticated CS
  (re-stamped with that CS's session); every DELETE and RESET the DFS sends
  goes to every authenticated CS.  The CSMB HELLO answer carries
  ``Flag.ACTIVE_CS`` while the active set is not empty.
* A CS that authenticates while the DFS holds no flow (typically: the DFS
  restarted) gets one SsmbReset(reason 1) on the SSMB after the auth
  response, so it forgets the flows it had through this DFS.
* A return key already used by another flow (two VSs mapped to one node,
  same client address and port) deletes the older flow: DELETE(OVERFLOW).
* Sequence numbers: the DFS counts its messages per association, one counter
  over both buses; it keeps a ReplayWindow per peer, bus and session.
* Per-flow counters live in the flow table entries: the inbound entry counts
  client->node (packets_in/bytes_in), the return entry node->client; bytes
  are IP total lengths.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from twinplane.protocol.codec import Codec, DecodeError
from twinplane.protocol.codes import (
    CSMB_UDP_PORT,
    SSMB_UDP_PORT,
    Bus,
    ConfigItem,
    DeleteReason,
    ErrorCode,
    Flag,
    Role,
)
from twinplane.protocol.messages import (
    CsmbAuthResponse,
    CsmbHello,
    CsmbMessage,
    FlowSignature,
    FlowStats,
    Message,
    SsmbDelete,
    SsmbDump,
    SsmbHello,
    SsmbNewflow,
    SsmbReap,
    SsmbReply,
    SsmbReset,
    SsmbStats,
    SsmbTimeout,
)

from .dfs_csmb import Address, CsmbSide, VsEntry, _Peer
from .dfs_path import Flow, FramePath, PortRole, TcpState, _Pending, action_word
from .flowkey import ACTION_WIDTH, KEY_WIDTH, pack_key
from .flowtable import FlowGeometry, FlowTableModel, InsertStatus

__all__ = [
    "HELD_BYTES_PER_FLOW",
    "HELD_PER_FLOW",
    "DfsConfig",
    "Flow",
    "PortRole",
    "ReferenceDFS",
    "TcpState",
    "VsEntry",
]



#: What a pending flow may hold until its REPLY: frames and bytes (the
#: gateware's miss-path slot, ``MissPath(frames_per_slot=, slot_bytes=)``,
#: takes its defaults from here).  The first packets of a new flow: a TCP SYN
#: is 60-78 bytes, so 256 bytes hold three; 8 slots x 256 bytes are one EBR.
HELD_PER_FLOW = 8
HELD_BYTES_PER_FLOW = 256


def _default_geometry() -> FlowGeometry:
    return FlowGeometry(key_width=KEY_WIDTH, action_width=ACTION_WIDTH)


@dataclass
class DfsConfig:
    key: bytes
    dfs_addr: ipaddress.IPv4Address = ipaddress.IPv4Address("10.1.0.254")
    dfs_mac: bytes = bytes.fromhex("02000000fe01")
    port_roles: tuple[PortRole, ...] = (PortRole.EXTERNAL, PortRole.INTERNAL)
    geometry: FlowGeometry = field(default_factory=_default_geometry)
    #: flow table timestamp tick (its last_seen is ``int(now / tick_s)``)
    tick_s: float = 0.1
    idle_timeout_s: float = 300.0
    max_pending: int = 64
    max_held_per_flow: int = HELD_PER_FLOW
    #: bytes held per pending flow (a frame that does not fit is dropped, drop_held_flow_full)
    max_held_bytes_per_flow: int = HELD_BYTES_PER_FLOW
    max_held_total: int = 256
    pending_timeout_s: float = 1.0
    #: virtual-server CAM slots (ADD_VS beyond them: BADCONFIG)
    vs_entries: int = 16
    #: a closed TCP flow (FIN both ways, or RST) is deleted once idle this many ticks
    close_linger_ticks: int = 16
    ssmb_port: int = SSMB_UDP_PORT
    csmb_port: int = CSMB_UDP_PORT
    #: messages are taken only from sources in this network (a board's
    #: console cs_ip and its build's --cs-prefix); 0.0.0.0/0 takes any source
    cs_network: ipaddress.IPv4Network = ipaddress.IPv4Network("0.0.0.0/0")
    #: source of the 8-byte nonces (tests pass a seeded one)
    randbytes: Callable[[int], bytes] = os.urandom

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes | bytearray) or len(self.key) != 16:
            raise ValueError(f"key must be 16 bytes, not {self.key!r}")
        self.dfs_addr = ipaddress.IPv4Address(self.dfs_addr)
        try:
            self.cs_network = ipaddress.IPv4Network(self.cs_network)
        except ValueError as e:
            raise ValueError(f"cs_network must be an IPv4 network, not {self.cs_network!r}: {e}") from None
        if not isinstance(self.dfs_mac, bytes | bytearray) or len(self.dfs_mac) != 6:
            raise ValueError(f"dfs_mac must be 6 bytes, not {self.dfs_mac!r}")
        if not self.port_roles or not all(isinstance(r, PortRole) for r in self.port_roles):
            raise ValueError(f"port_roles must be a non-empty tuple of PortRole, not {self.port_roles!r}")
        if len(self.port_roles) > 4:
            raise ValueError(f"at most 4 ports (the flow action's egress_port has 2 bits), not {self.port_roles!r}")
        if self.geometry.key_width < KEY_WIDTH or self.geometry.action_width < ACTION_WIDTH:
            raise ValueError(f"geometry {self.geometry!r} is too narrow for the flow key/action")
        for name in ("max_pending", "max_held_per_flow", "max_held_bytes_per_flow", "max_held_total", "vs_entries"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if not isinstance(self.close_linger_ticks, int) or self.close_linger_ticks < 0:
            raise ValueError(f"close_linger_ticks must be a non-negative integer, not {self.close_linger_ticks!r}")
        for name in ("tick_s", "idle_timeout_s", "pending_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)!r}")


class ReferenceDFS(CsmbSide, FramePath):
    def __init__(self, config: DfsConfig):
        if not isinstance(config, DfsConfig):
            raise TypeError(f"config must be a DfsConfig, not {config!r}")
        self.config = config
        self.codec = Codec(config.key)
        self.counters: Counter[str] = Counter()
        self.table = FlowTableModel(config.geometry)
        self.flows: dict[int, Flow] = {}  # by handle (both handles of a flow)
        self.pending: dict[int, _Pending] = {}  # by inbound key
        self.vss: dict[int, VsEntry] = {}
        self.peers: dict[Address, _Peer] = {}
        self.epoch = 0
        self.idle_timeout_s = config.idle_timeout_s
        self.extra_config: dict[ConfigItem, bytes] = {}
        self._serial = 0
        self._csmb_serial = 0
        self._csmb_serial_bytype: Counter[int] = Counter()
        self._held_total = 0
        self._outbox: list[tuple[Bus, Address, _Peer, Message]] = []
        self._frames: list[tuple[int, bytes]] = []

    # == helpers =================================================================================
    def _tick(self, now: float) -> int:
        return int(now / self.config.tick_s)

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def active_set(self) -> list[_Peer]:
        """The CSs that may change state: authenticated, ACTIVE, at the DFS's epoch (by cs_id)."""
        return sorted((p for p in self.peers.values()
                       if p.authenticated and p.role is Role.ACTIVE and p.epoch == self.epoch),
                      key=lambda p: (p.cs_id, p.csmb_addr))

    def active_cs(self) -> _Peer | None:
        live = self.active_set()
        return live[0] if live else None

    def cs_for_key(self, key: int) -> _Peer | None:
        """The active CS that owns a flow (active/active: split by CRC-32 of the inbound key)."""
        live = self.active_set()
        if not live:
            return None
        return live[zlib.crc32(key.to_bytes((KEY_WIDTH + 7) // 8, "big")) % len(live)]

    def is_active(self, peer: _Peer) -> bool:
        return peer.authenticated and peer.role is Role.ACTIVE and peer.epoch >= self.epoch

    def _replicate(self, origin: _Peer | None, msg: Message) -> None:
        """A copy of a state message for every authenticated CS but ``origin``."""
        for peer in self.peers.values():
            if peer is not origin and peer.authenticated:
                self._send(peer, Bus.SSMB, copy.copy(msg))
                self._count("replicated")

    def _send(self, peer: _Peer, bus: Bus, msg: Message) -> None:
        dst = peer.csmb_addr if bus is Bus.CSMB else peer.ssmb_addr
        if bus is Bus.SSMB and dst[0] in ("0.0.0.0", "::"):
            dst = (peer.csmb_addr[0], dst[1] or peer.csmb_addr[1])
        self._outbox.append((bus, dst, peer, msg))
        self._count(f"tx_{type(msg).__name__}")

    def messages_to_send(self) -> list[tuple[Bus, Address, bytes]]:
        """Encode the queued messages, batched per (bus, destination) in order."""
        groups: dict[tuple[Bus, Address], list[Message]] = {}
        for bus, dst, peer, msg in self._outbox:
            peer.seq += 1
            msg.seq = peer.seq
            msg.epoch = self.epoch
            if peer.authenticated and not isinstance(msg, CsmbHello | CsmbAuthResponse):
                msg.session = peer.session
            if isinstance(msg, CsmbMessage):
                # One sequence over everything the DFS sends on the CSMB, from 1
                # (the gateware's session engine has one pair of counters).
                self._csmb_serial = (self._csmb_serial + 1) & 0xFFFF
                self._csmb_serial_bytype[msg.msg_type] = (self._csmb_serial_bytype[msg.msg_type] + 1) & 0xFFFF
                msg.serial_global = self._csmb_serial
                msg.serial_bytype = self._csmb_serial_bytype[msg.msg_type]
            groups.setdefault((bus, dst), []).append(msg)
        self._outbox.clear()
        return [(bus, dst, data) for (bus, dst), msgs in groups.items() for data in self.codec.encode_batch(msgs)]

    def frames_to_send(self) -> list[tuple[int, bytes]]:
        """Frames released by messages (held packets after a REPLY)."""
        out, self._frames = self._frames, []
        return out

    # == message input ===========================================================================
    def receive_message(self, bus: Bus, data: bytes, src: Address, now: float) -> None:
        bus = Bus(bus)
        if not self._from_cs(src):
            self._count("msg_rx_not_cs")
            return
        self._count(f"rx_datagrams_{bus.name}")
        before = [id(p) for p in self.active_set()] if self.pending else None
        for item in self.codec.iter_decode(bus, data):
            if isinstance(item, DecodeError):
                self._count(f"invalid_{item.field.split('.')[0]}")
                continue
            if bus is Bus.CSMB:
                self._csmb(item, src, now)
            else:
                self._ssmb(item, src, now)
        if before is not None and before != [id(p) for p in self.active_set()]:
            self._reroute_pending()

    def _from_cs(self, src: Address) -> bool:
        if self.config.cs_network.prefixlen == 0:  # any source, an IPv6 one included
            return True
        try:
            return ipaddress.IPv4Address(src[0]) in self.config.cs_network
        except ValueError:  # not an IPv4 source
            return False

    def _reroute_pending(self) -> None:
        """Pending flows whose QUERY went to a CS no longer in the active set ask its successor."""
        live = {id(p) for p in self.active_set()}
        for key, pending in self.pending.items():
            if pending.query is not None and (pending.cs is None or id(pending.cs) not in live):
                cs = self.cs_for_key(key)
                if cs is not None:
                    pending.cs = cs
                    self._send(cs, Bus.SSMB, copy.copy(pending.query))
                    self._count("queries_rerouted")

    # -- SSMB ------------------------------------------------------------------------------------
    def _ssmb(self, msg: Message, src: Address, now: float) -> None:
        peer = next((p for p in self.peers.values() if p.authenticated and p.session == msg.session), None)
        if peer is None or msg.session == 0:
            self._count("invalid_session")
            return
        try:
            peer.window(msg.session).check(msg.seq)
        except DecodeError:
            self._count("invalid_replay")
            return
        if isinstance(msg, SsmbHello):
            self._send(peer, Bus.SSMB, SsmbHello(nonce=peer.nonce, ssmb_addr=self.config.dfs_addr,
                                                 ssmb_port=self.config.ssmb_port))
            return
        if isinstance(msg, SsmbDump):  # reads only: any authenticated CS
            self._dump(peer, now)
            return
        self._adopt_epoch(peer, msg.epoch)
        if not self.is_active(peer) or msg.epoch < self.epoch:
            self._count("invalid_stale_epoch")
            return
        if isinstance(msg, SsmbReply | SsmbNewflow):
            self._count(f"rx_{type(msg).__name__}")
            if self._install(msg, now):
                self._replicate(peer, msg)
        elif isinstance(msg, SsmbReap | SsmbTimeout):
            self._reap(peer, msg, now)
        elif isinstance(msg, SsmbDelete):
            flow = self._find(msg.flow)
            if flow is None:
                self._count("cs_delete_unknown")
                return
            self._delete(flow, DeleteReason.CS_DELETE, now, notify=peer)
        elif isinstance(msg, SsmbReset):
            self._reset(peer)
        else:
            self._count("invalid_unexpected_type")

    def _sig_key(self, sig: FlowSignature) -> int:
        if sig.src_addr.version != 4 or sig.dst_addr.version != 4:
            raise ValueError("IPv4 only")
        return pack_key(src_ip=int(sig.src_addr), dst_ip=int(sig.dst_addr), src_port=sig.src_port,
                        dst_port=sig.dst_port, protocol=sig.protocol, inbound=1)

    def _find(self, sig: FlowSignature) -> Flow | None:
        try:
            handle = self.table.lookup(self._sig_key(sig))
        except ValueError:
            return None
        return None if handle is None else self.flows.get(handle)

    def _install(self, msg: SsmbReply | SsmbNewflow, now: float) -> bool:
        """Install a flow; True if it is now in the table."""
        sig, x = msg.flow, msg.xlate
        try:
            in_key = self._sig_key(sig)
        except ValueError:
            self._count("invalid_reply_family")
            return False
        pending = self.pending.pop(in_key, None)
        if pending is not None:
            self._held_total -= len(pending.held)
        if msg.error is not ErrorCode.NONE:
            dropped = len(pending.held) if pending else 0
            self._count(f"drop_reply_{msg.error.name.lower()}", dropped)
            self._count(f"reply_{msg.error.name.lower()}")
            return False
        flags = Flag(msg.flags)
        if (flags & Flag.TRANSLATE_ADDR and x.node_addr.version != 4) or not (
            x.egress_port < len(self.config.port_roles) and x.client_port < len(self.config.port_roles)
            and x.node_vlan < 4096 and x.client_vlan < 4096
        ):
            self._count("invalid_reply_translation")
            if pending:
                self._count("drop_reply_invalid", len(pending.held))
            return False
        node_ip = int(x.node_addr) if flags & Flag.TRANSLATE_ADDR else int(sig.dst_addr)
        node_port = x.node_port if flags & Flag.TRANSLATE_PORT else sig.dst_port
        out_key = pack_key(src_ip=node_ip, dst_ip=int(sig.src_addr), src_port=node_port,
                           dst_port=sig.src_port, protocol=sig.protocol, inbound=0)
        old = self._find(sig)
        if old is not None:  # a REPLY for an installed flow replaces it
            self._drop_flow(old)
        flow = Flow(serial=msg.serial, sig=sig, xlate=x, flags=flags, in_key=in_key, out_key=out_key,
                    vs_addr=int(sig.dst_addr), vs_port=sig.dst_port, created=now, last_seen=now)
        tick = self._tick(now)
        for attr, key in (("in_handle", in_key), ("out_handle", out_key)):
            action = action_word(flow, inbound=attr == "in_handle")
            # The return entry never evicts the inbound one just written.
            keep = flow.in_handle if attr == "out_handle" else None
            result = self.table.insert(key, action, tick, keep=keep)
            if result.status is InsertStatus.EVICTED:
                victim = self.flows.get(result.handle)
                if victim is not None:
                    self._evicted(victim, result.handle, result.victim, now)
            elif result.status is InsertStatus.UPDATED:
                other = self.flows.get(result.handle)
                if other is not None and other is not flow:
                    # Same node and client address/port pair as an older flow (two VSs
                    # mapped to one node): the return direction is ambiguous, the old flow goes.
                    self._count("return_key_collision")
                    self._delete(other, DeleteReason.OVERFLOW, now)
                    result = self.table.insert(key, action, tick, keep=keep)
            setattr(flow, attr, result.handle)
            self.flows[result.handle] = flow
        self._count("flows_installed")
        if pending is not None:
            for port, frame in pending.held:
                self._frames.extend(self._frame(port, frame, now))
        return True

    def _evicted(self, victim: Flow, reused: int, entry, now: float) -> None:
        """``reused`` (one of the victim's handles) now belongs to a new key."""
        stats = self._stats(victim, DeleteReason.OVERFLOW, now, evicted=(reused, entry))
        for handle in (victim.in_handle, victim.out_handle):
            if self.flows.get(handle) is victim:
                del self.flows[handle]
            if handle != reused and handle >= 0:
                self.table.delete(handle)
        self._count("flows_deleted_overflow")
        self._notify_delete(victim, stats, None)

    def _drop_flow(self, flow: Flow) -> None:
        """Remove a flow from the table without telling anyone."""
        for handle in (flow.in_handle, flow.out_handle):
            if handle >= 0 and self.flows.get(handle) is flow:
                del self.flows[handle]
                self.table.delete(handle)

    def _stats(self, flow: Flow, reason: DeleteReason, now: float, evicted=None) -> FlowStats:
        counts = {}
        for name, handle in (("in", flow.in_handle), ("out", flow.out_handle)):
            if evicted is not None and handle == evicted[0]:
                entry = evicted[1]
                counts[name] = (entry.packets, entry.bytes)
            elif handle >= 0:
                counts[name] = (self.table.packets[handle], self.table.bytes[handle])
            else:
                counts[name] = (0, 0)
        return FlowStats(packets_in=counts["in"][0], bytes_in=counts["in"][1], packets_out=counts["out"][0],
                         bytes_out=counts["out"][1], age_ms=min(int((now - flow.created) * 1000), 2**32 - 1),
                         idle_ms=min(int((now - flow.last_seen) * 1000), 2**32 - 1), reason=reason,
                         tcp_state=int(flow.tcp_state), vs_id=flow.xlate.vs_id, node_id=flow.xlate.node_id)

    def _notify_delete(self, flow: Flow, stats: FlowStats, peer: _Peer | None) -> None:
        """DELETE to the CS that asked (else the flow's owner), copies to every other CS."""
        peer = peer or self.cs_for_key(flow.in_key)
        msg = SsmbDelete(serial=flow.serial, flow=flow.sig, stats=stats)
        if peer is None:
            self._count("delete_unsent_no_cs")
        else:
            self._send(peer, Bus.SSMB, msg)
        self._replicate(peer, msg)

    def _delete(self, flow: Flow, reason: DeleteReason, now: float, notify: _Peer | None = None) -> None:
        stats = self._stats(flow, reason, now)
        self._drop_flow(flow)
        self._count(f"flows_deleted_{reason.name.lower()}")
        self._notify_delete(flow, stats, notify)

    def _reap(self, peer: _Peer, msg: SsmbReap | SsmbTimeout, now: float) -> None:
        reason = DeleteReason.REAP if isinstance(msg, SsmbReap) else DeleteReason.TIMEOUT
        self._count(f"rx_{type(msg).__name__}")
        flow = self._find(msg.flow)
        if flow is None:
            self._count("reap_unknown")
            self._send(peer, Bus.SSMB, SsmbDelete(serial=msg.serial, flow=msg.flow, stats=FlowStats(reason=reason)))
            return
        if (now - flow.last_seen) * 1000 < msg.idle_ms:
            self._count("reap_alive")
            self._send(peer, Bus.SSMB, SsmbStats(serial=flow.serial, flow=flow.sig, error=ErrorCode.CONNALIVE,
                                                 stats=self._stats(flow, DeleteReason.NONE, now)))
            return
        self._delete(flow, reason, now, notify=peer)

    def _unique_flows(self) -> list[Flow]:
        seen: dict[int, Flow] = {}
        for flow in self.flows.values():
            seen.setdefault(id(flow), flow)
        return list(seen.values())

    def _reset(self, peer: _Peer) -> None:
        flows = self._unique_flows()
        self._count("flows_deleted_reset", len(flows))
        self._count("drop_reset_pending", self._held_total)
        self.table.flush()
        self.flows.clear()
        self.pending.clear()
        self._held_total = 0
        self._send(peer, Bus.SSMB, SsmbReset())
        self._replicate(peer, SsmbReset())

    def _dump(self, peer: _Peer, now: float) -> None:
        flows = sorted(self._unique_flows(), key=lambda f: f.serial)
        for flow in flows:
            self._send(peer, Bus.SSMB, SsmbStats(serial=flow.serial, flow=flow.sig,
                                                 stats=self._stats(flow, DeleteReason.NONE, now)))
        self._send(peer, Bus.SSMB, SsmbDump(flags=Flag.END, count=len(flows)))

    # == timers ==================================================================================
    def _idle_ticks(self, flow: Flow, now: float) -> int:
        """Ticks since the newer of the flow's two entries saw a packet (mod the timestamp width)."""
        mask = (1 << self.config.geometry.ts_width) - 1
        tick = self._tick(now)
        return min((tick - self.table.last_seen[h]) & mask for h in (flow.in_handle, flow.out_handle) if h >= 0)

    def poll(self, now: float) -> None:
        for flow in self._unique_flows():
            if flow.closed and self._idle_ticks(flow, now) >= self.config.close_linger_ticks:
                reason = DeleteReason.RST if flow.tcp_state & TcpState.RST else DeleteReason.FIN
                self._delete(flow, reason, now)
                continue
            timeout = flow.xlate.idle_timeout_s or self.idle_timeout_s
            if now - flow.last_seen >= timeout:
                self._delete(flow, DeleteReason.IDLE, now)
        for key, pending in list(self.pending.items()):
            if now - pending.created >= self.config.pending_timeout_s:
                del self.pending[key]
                self._held_total -= len(pending.held)
                self._count("drop_pending_timeout", len(pending.held))
                self._count("pending_timeouts")
        for src, peer in list(self.peers.items()):
            if now - peer.last_hello > 3 * peer.hello_interval_s:
                del self.peers[src]
                self._count("cs_expired")
                if self.pending:
                    self._reroute_pending()  # active/active: the survivor answers

    def next_timer(self) -> float | None:
        """Earliest time :meth:`poll` has work (None: nothing scheduled)."""
        times = [f.last_seen + (f.xlate.idle_timeout_s or self.idle_timeout_s) for f in self._unique_flows()]
        linger_s = (self.config.close_linger_ticks + 1) * self.config.tick_s
        times += [f.last_seen + linger_s for f in self._unique_flows() if f.closed]
        times += [p.created + self.config.pending_timeout_s for p in self.pending.values()]
        times += [p.last_hello + 3 * p.hello_interval_s for p in self.peers.values()]
        return min(times, default=None)

