# The reference DFS's frame path: ARP, virtual server match, new flow
# hold-and-query, known-flow rewrite, TCP close tracking.
# Ref: the patent's figures 17 (flow management), 20-22 (new flow, TCP
#      open/close); RFC 1624 §3 (incremental checksum update); RFC 826 (ARP);
#      RFC 793 §3.5 (closing a connection).
"""Frame half of :class:`twinplane.model.dfs.ReferenceDFS` (a mixin: it uses
the DFS's table, flows, pending flows, counters and message outbox).  The
decisions it implements are listed in :mod:`twinplane.model.dfs`."""

from __future__ import annotations

import copy
import enum
import ipaddress
from collections import deque
from dataclasses import dataclass, field

from twinplane.protocol.codes import AddressFamily, Bus, Flag
from twinplane.protocol.messages import FlowSignature, SsmbQuery, Translation

from .flowkey import pack_action, pack_key, unpack_action
from .frames import ETHERTYPE_VLAN, FragmentKind, FrameClass, ParsedFrameModel, parse_frame
from .rewrite import command_from_decision, rewrite_frame
from .vscam import VirtualServerTable, VsCamEntry

__all__ = ["Flow", "FramePath", "PortRole", "TcpState", "action_word"]

_TCP_FIN, _TCP_SYN, _TCP_RST, _TCP_ACK = 0x01, 0x02, 0x04, 0x10
_M32 = 0xFFFF_FFFF


class PortRole(enum.Enum):
    EXTERNAL = "external"  #: clients: new flows to virtual servers arrive here
    INTERNAL = "internal"  #: nodes and the CS; the DFS's own address lives here


class TcpState(enum.IntFlag):
    """FlowStats.tcp_state bits."""

    NONE = 0
    FIN_CLIENT = 1
    FIN_NODE = 2
    RST = 4


@dataclass
class Flow:
    """Both directions of one installed flow (two flow table entries)."""

    serial: int
    sig: FlowSignature
    xlate: Translation
    flags: Flag
    in_key: int
    out_key: int
    vs_addr: int
    vs_port: int
    created: float
    last_seen: float
    in_handle: int = -1
    out_handle: int = -1
    tcp_state: TcpState = TcpState.NONE

    @property
    def closed(self) -> bool:
        """FIN seen both ways, or an RST: deleted once idle for the close linger."""
        return bool(self.tcp_state & TcpState.RST) or self.tcp_state & (
            TcpState.FIN_CLIENT | TcpState.FIN_NODE) == TcpState.FIN_CLIENT | TcpState.FIN_NODE


@dataclass
class _Pending:
    serial: int
    created: float
    held: deque = field(default_factory=deque)
    #: the QUERY sent and the CS it went to (re-sent if that CS leaves the active set)
    query: object = None
    cs: object = None


def _put(data: bytearray, offset: int, size: int, value: int) -> None:
    data[offset:offset + size] = value.to_bytes(size, "big")


def _ipv4(value: int) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(value)


def action_word(flow: Flow, *, inbound: bool) -> int:
    """The flow table action (``flowkey.ACTION_FIELDS``) of one direction:
    what the gateware's entry holds.  The model itself rewrites from the
    Translation only for TCP close tracking (offsets).  ``vlan_rewrite``:
    a tagged frame gets ``vlan_id`` (node_vlan / client_vlan when non-zero)."""
    x, flags = flow.xlate, flow.flags
    offsets = bool(flags & Flag.ADD_TCP_OFFSETS)
    seq_off, ack_off = (x.seq_offset, x.ack_offset) if offsets else (0, 0)
    if inbound:
        return pack_action(
            egress_port=x.egress_port, rewrite_source=0, translate_addr=int(bool(flags & Flag.TRANSLATE_ADDR)),
            translate_port=int(bool(flags & Flag.TRANSLATE_PORT)),
            new_ip=int(x.node_addr) if flags & Flag.TRANSLATE_ADDR else 0,
            new_port=x.node_port if flags & Flag.TRANSLATE_PORT else 0, eth_dst=int.from_bytes(x.node_mac, "big"),
            vlan_rewrite=int(x.node_vlan != 0), vlan_id=x.node_vlan & 0xFFF, add_offsets=int(offsets),
            seq_delta=seq_off, ack_delta=ack_off)
    return pack_action(
        egress_port=x.client_port, rewrite_source=1, translate_addr=1, translate_port=1, new_ip=flow.vs_addr,
        new_port=flow.vs_port, eth_dst=int.from_bytes(x.client_mac, "big"), vlan_rewrite=int(x.client_vlan != 0),
        vlan_id=x.client_vlan & 0xFFF, add_offsets=int(offsets), seq_delta=-ack_off & _M32,
        ack_delta=-seq_off & _M32)


class FramePath:
    """Mixin: ``receive_frame`` and its helpers (see the module docstring)."""

    def receive_frame(self, port: int, frame: bytes, now: float) -> list[tuple[int, bytes]]:
        """Process one frame received on network ``port``; return the frames to transmit."""
        roles = self.config.port_roles
        if not isinstance(port, int) or not 0 <= port < len(roles):
            raise ValueError(f"port must be in range({len(roles)}), not {port!r}")
        self._count("rx_frames")
        return self._frame(port, frame, now)

    def _frame(self, port: int, frame: bytes, now: float) -> list[tuple[int, bytes]]:
        roles = self.config.port_roles
        p = parse_frame(bytes(frame))
        if p.klass is FrameClass.MALFORMED:
            self._count(f"drop_malformed_{p.malformed_reason.name.lower()}")
            return []
        external = roles[port] is PortRole.EXTERNAL
        if p.klass is FrameClass.ARP:
            return self._arp(port, p, external)
        if p.klass not in (FrameClass.IPV4_TCP, FrameClass.IPV4_UDP):
            self._count("drop_unsupported")
            return []
        if p.fragment is not FragmentKind.NONE:
            self._count("drop_fragment")
            return []
        key = pack_key(src_ip=p.src_ip, dst_ip=p.dst_ip, src_port=p.src_port, dst_port=p.dst_port,
                       protocol=p.protocol, inbound=int(external))
        handle = self.table.lookup(key)
        flow = None if handle is None else self.flows.get(handle)
        if flow is not None:
            return self._forward(flow, handle, frame, p, now)
        if not external:
            self._count("drop_to_dfs" if p.dst_ip == int(self.config.dfs_addr) else "drop_no_flow_internal")
            return []
        self._new_flow(port, frame, p, key, now)
        return []

    # -- ARP ---------------------------------------------------------------------------------------
    def _arp(self, port: int, p: ParsedFrameModel, external: bool) -> list[tuple[int, bytes]]:
        if p.arp_oper != 1:
            self._count("drop_arp_other")
            return []
        target = p.dst_ip
        ours = not external and target == int(self.config.dfs_addr)
        if external and not ours:
            ours = self._vs_table().answer_arp(target)
        if not ours:
            self._count("drop_arp_not_ours")
            return []
        sha = p.arp_sha.to_bytes(6, "big")
        mac = bytes(self.config.dfs_mac)
        tag = (ETHERTYPE_VLAN.to_bytes(2, "big") + p.vlan_id.to_bytes(2, "big")) if p.vlan else b""
        arp = (bytes.fromhex("0001080006040002") + mac + target.to_bytes(4, "big") + sha
               + p.src_ip.to_bytes(4, "big"))
        self._count("tx_arp_reply")
        # Padded to the 60-byte minimum (without FCS), as the gateware's ARP responder sends it.
        return [(port, (sha + mac + tag + b"\x08\x06" + arp).ljust(60, b"\0"))]

    # -- new flows (figure 20) ---------------------------------------------------------------------
    def _vs_table(self) -> VirtualServerTable:
        """The VSs as the gateware's CAM holds them (twinplane.model.vscam):
        in CAM slot order (a tie goes to the lowest slot), DISABLED ones left out.  Rebuilt
        when the VS set changes (``self.vss`` is replaced or edited)."""
        def order(e):
            return (e.slot, e.vs.vs_id)

        snapshot = tuple((e.slot, e.vs.vs_id, e.vs.pack(), int(e.flags)) for e in sorted(self.vss.values(), key=order))
        if getattr(self, "_vs_cache", (None,))[0] != snapshot:
            live = [e for e in sorted(self.vss.values(), key=order) if not e.flags & Flag.DISABLED
                    and (e.flags & Flag.WILDCARD_ADDR or e.vs.virt_addr.version == 4)]
            table = VirtualServerTable(max(1, len(live)))
            for index, e in enumerate(live):
                addr = 0 if e.flags & Flag.WILDCARD_ADDR else int(e.vs.virt_addr)
                table.write(index, VsCamEntry(True, e.vs.vs_id, e.vs.protocol, addr, e.vs.virt_port, e.flags,
                                              e.vs.vlan_id))
            self._vs_cache = (snapshot, table, {e.vs.vs_id: e for e in live})
        return self._vs_cache[1]

    def _match_vs(self, p: ParsedFrameModel):
        """Precedence and the "known address" rule of WILDCARD_ADDR: see vscam."""
        match = self._vs_table().lookup(p.dst_ip, p.dst_port, p.protocol, p.vlan_id if p.vlan else 0,
                                        local_addr=int(self.config.dfs_addr))
        return None if match is None else self._vs_cache[2][match.vs_id]

    def _hold(self, pending: _Pending, port: int, frame: bytes) -> bool:
        held_bytes = sum(len(f) for _, f in pending.held)
        if (len(pending.held) >= self.config.max_held_per_flow
                or held_bytes + len(frame) > self.config.max_held_bytes_per_flow):
            self._count("drop_held_flow_full")
            return False
        if self._held_total >= self.config.max_held_total:
            self._count("drop_held_total_full")
            return False
        pending.held.append((port, bytes(frame)))
        self._held_total += 1
        self._count("held")
        return True

    def _new_flow(self, port: int, frame: bytes, p: ParsedFrameModel, key: int, now: float) -> None:
        pending = self.pending.get(key)
        if pending is not None:
            self._hold(pending, port, frame)
            return
        entry = self._match_vs(p)
        if entry is None:
            self._count("drop_no_flow_external")
            return
        if p.protocol == 6 and (p.tcp_flags & (_TCP_SYN | _TCP_ACK | _TCP_RST)) != _TCP_SYN:
            self._count("drop_tcp_not_syn")
            return
        cs = self.cs_for_key(key)
        if cs is None and not any(peer.authenticated or peer.taking_over for peer in self.peers.values()):
            self._count("drop_no_cs")
            return
        if len(self.pending) >= self.config.max_pending:
            self._count("drop_pending_full")
            return
        self._serial = self._serial % 0xFFFF_FFFF + 1
        pending = _Pending(self._serial, now)
        if len(frame) > self.config.max_held_bytes_per_flow:
            # Too big to hold (the gateware learns a frame's size only as it
            # stores it): the frame goes, the flow is asked for all the same.
            self._count("drop_held_flow_full")
        elif not self._hold(pending, port, frame):
            return
        self.pending[key] = pending
        sig = FlowSignature(src_addr=_ipv4(p.src_ip), dst_addr=_ipv4(p.dst_ip), src_port=p.src_port,
                            dst_port=p.dst_port, protocol=p.protocol, tos=p.tos, family=AddressFamily.IPV4,
                            vlan_valid=p.vlan, vlan_id=p.vlan_id, ingress_port=port)
        self._count("queries")
        pending.query = SsmbQuery(serial=pending.serial, flow=sig, client_mac=p.eth_src.to_bytes(6, "big"),
                                  vs_id=entry.vs.vs_id, tcp_flags=p.tcp_flags)
        pending.cs = cs
        if cs is None:  # a CS is associated but none is active: a takeover is under way
            self._count("query_waiting_for_active_cs")
            return
        self._send(cs, Bus.SSMB, copy.copy(pending.query))

    # -- known flows (figure 17) and TCP close (figure 22) ------------------------------------------
    def _forward(self, flow: Flow, handle: int, frame: bytes, p: ParsedFrameModel,
                 now: float) -> list[tuple[int, bytes]]:
        inbound = handle == flow.in_handle
        # The rewrite is driven by the entry's action word exactly as the
        # gateware's forwarder hands it to the rewriter (twinplane.model.rewrite).
        action = unpack_action(self.table.action[handle])
        decision = dict(action=action, l3_offset=p.l3_offset, l4_offset=p.l4_offset, protocol=p.protocol,
                        src_ip=p.src_ip, dst_ip=p.dst_ip, src_port=p.src_port, dst_port=p.dst_port,
                        vlan_valid=p.vlan)
        command = command_from_decision(decision, int.from_bytes(self.config.dfs_mac, "big"))
        out = rewrite_frame(bytes(frame), command)
        out_port = action["egress_port"]
        self.table.touch(handle, p.ip_total_length, self._tick(now))
        flow.last_seen = now
        self._count("tx_forward" if inbound else "tx_return")
        result = [(out_port, out)]
        if p.protocol == 6:
            self._track_tcp(flow, inbound, p)
        return result

    def _track_tcp(self, flow: Flow, inbound: bool, p: ParsedFrameModel) -> None:
        """Record FIN (per side) and RST; :meth:`poll` deletes the flow once it
        is closed and has been idle for ``close_linger_ticks`` (as the
        gateware's flow controller does: the final ACK and any retransmitted
        FIN still pass, so the close never breaks mid-transition)."""
        if p.tcp_flags & _TCP_RST:
            flow.tcp_state |= TcpState.RST
        if p.tcp_flags & _TCP_FIN:
            flow.tcp_state |= TcpState.FIN_CLIENT if inbound else TcpState.FIN_NODE
