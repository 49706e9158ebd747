# Ref: the patent's figures 18 (DFS flow activity: TCP close, overflow,
#      timeout), 20 (DFS message processing: REAP, TIMEOUT, new flow, RESET,
#      invalid) and 21 (new flow: make room when full); docs/protocol.md.
"""Flow controller: everything the DFS does about flows that is not per
packet.  It is the only user of the flow table's control port.

* QUERY: for each new flow the miss path reports, a QUERY to the CS.
* REPLY / NEWFLOW (error NONE): two entries -- inbound (client -> virtual
  server: destination NAT towards the node) and return (node -> client:
  source NAT back to the virtual server) -- then the miss path releases the
  held frames.  REPLY with an error: the miss path drops them.
* Overflow (figure 21): when an insert evicts the oldest candidate, its
  partner entry goes too and the CS gets DELETE (reason OVERFLOW) with the
  victim's counters.
* REAP / TIMEOUT: STATS with CONNALIVE if the flow saw a packet within
  ``idle_ms``, else the flow is deleted and the CS gets DELETE.  A flow the
  DFS does not know is answered DELETE with zero counters, so the CS stops
  waiting.
* DELETE from the CS deletes the flow and answers DELETE with its counters.
* RESET: every flow and pending flow goes; the DFS answers RESET.
* DUMP: STATS for every flow, then DUMP with END and the count.
* TCP close tracking (figure 18): FIN from both sides or an RST marks the
  flow closing; it is deleted (DELETE, reason FIN or RST) once it has been
  idle for ``close_linger`` ticks, so the last ACK and retransmissions still
  pass ("never delete mid-transition").
* The idle scanner visits one entry at a time when nothing else is to do and
  deletes flows idle for ``idle_timeout`` ticks (reason IDLE).

Time is ``now``, a tick counter of ``geometry.ts_width`` bits kept by the DFS
top (one tick every ``tick_cycles`` clocks); ``ms_per_tick`` converts it for
the CS.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from twinplane.model.flowkey import KEY_WIDTH
from twinplane.model.flowtable import FlowGeometry, FlowOp, InsertStatus
from twinplane.protocol.codes import AddressFamily, DeleteReason, ErrorCode, Flag, SsmbType
from twinplane.protocol.layouts import message_layout
from twinplane.protocol.messages import (
    TAG_SIZE,
    SsmbDelete,
    SsmbDump,
    SsmbQuery,
    SsmbReap,
    SsmbReply,
    SsmbReset,
    SsmbStats,
    SsmbTimeout,
)

from ..flowtable import command_layout, response_layout
from ..msgport.layout import MAX_SENT_BYTES, received_message_layout
from ..msgport.session import core_message_layout
from .layouts import FlowAction, FlowKey

__all__ = ["FlowController", "query_layout", "tcp_event_layout"]

_IPV4_MAPPED = 0xFFFF << 32


def query_layout() -> data.StructLayout:
    """What the forwarder tells about a new flow (the QUERY's contents)."""
    return data.StructLayout(
        {
            "key": FlowKey,
            "tos": 8,
            "vlan_valid": 1,
            "vlan_id": 12,
            "ingress_port": 2,
            "client_mac": 48,
            "vs_id": 16,
            "tcp_flags": 8,
        }
    )


def tcp_event_layout(geometry: FlowGeometry) -> data.StructLayout:
    return data.StructLayout({"handle": geometry.handle_bits, "fin": 1, "rst": 1})


def _conn_layout(geometry: FlowGeometry) -> data.StructLayout:
    """Per handle, beside the flow table: what ties the two entries of a flow
    together and what the CS needs back."""
    return data.StructLayout(
        {
            "valid": 1,
            "forward": 1,  # this handle is the inbound entry
            "partner": geometry.handle_bits,
            "serial": 32,
            "vs_id": 16,
            "node_id": 16,
            "created": geometry.ts_width,
            "fin_in": 1,  # FIN seen client -> node
            "fin_out": 1,  # FIN seen node -> client
            "rst": 1,
        }
    )


_COUNTERS = (
    "queries_sent",
    "flows_installed",
    "flows_refused",
    "deletes_sent",
    "stats_sent",
    "evictions",
    "idle_deletes",
    "close_deletes",
    "resets",
    "queries_rerouted",
)


class FlowController(wiring.Component):
    def __init__(self, geometry: FlowGeometry, *, ms_per_tick: int, close_linger: int = 16,
                 install_verdicts: bool = False, pending_slots: int = 8):
        if not isinstance(geometry, FlowGeometry):
            raise TypeError(f"geometry must be a FlowGeometry, not {geometry!r}")
        if geometry.key_width != KEY_WIDTH or geometry.action_width != FlowAction.size:
            raise ValueError(
                f"geometry must have key_width {KEY_WIDTH} and action_width {FlowAction.size}, not {geometry!r}"
            )
        if not isinstance(ms_per_tick, int) or ms_per_tick < 1:
            raise ValueError(f"ms_per_tick must be a positive integer, not {ms_per_tick!r}")
        if not isinstance(close_linger, int) or not 0 <= close_linger < 1 << geometry.ts_width:
            raise ValueError(f"close_linger must fit in ts_width ticks, not {close_linger!r}")
        self.geometry = g = geometry
        self._ms_per_tick = ms_per_tick
        self._close_linger = close_linger
        if not isinstance(install_verdicts, bool):
            raise TypeError(f"install_verdicts must be a bool, not {install_verdicts!r}")
        self._install_verdicts = install_verdicts
        if not isinstance(pending_slots, int) or not 1 <= pending_slots <= 64:
            raise ValueError(f"pending_slots must be an integer from 1 to 64, not {pending_slots!r}")
        self._pending_slots = pending_slots
        ts = g.ts_width
        cmd_layout, rsp_layout = command_layout(g), response_layout(g)
        super().__init__(
            {
                "now": In(ts),
                "idle_timeout": In(ts),  # ticks; 0 disables the idle scanner's deletions
                "msg": In(stream.Signature(received_message_layout())),
                # again: the miss path asks a pending flow once more (its QUERY
                # went to a CS that left the active set): the slot's serial
                "query": In(stream.Signature(data.StructLayout({"slot": 8, "again": 1, "query": query_layout()}))),
                "tcp_event": In(stream.Signature(tcp_event_layout(g))),
                "cmd": Out(stream.Signature(cmd_layout)),
                "rsp": In(stream.Signature(rsp_layout)),
                "resolve": Out(stream.Signature(data.StructLayout({"key": g.key_width, "accept": 1}))),
                "flush_pending": Out(1),
                # Which CS a QUERY went to (the message port says, as it takes
                # core_msg), for the miss path: it asks again if that CS leaves
                # the active set.  One clock per QUERY, never waits.
                "core_delivered": In(1),
                "core_sent_to": In(8),
                "asked": Out(stream.Signature(data.StructLayout({"slot": 8, "cs": 8, "sent": 1}))),
                "core_msg": Out(stream.Signature(core_message_layout())),
                # install_verdicts: per REPLY/NEWFLOW taken on msg, after the
                # install attempt, 1 if it was installed (the message port
                # then copies it to the other CSs: docs/redundancy.md)
                **({"installed": Out(stream.Signature(1))} if install_verdicts else {}),
                **{name: Out(32) for name in _COUNTERS},
            }
        )

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        ts = g.ts_width

        m.submodules.conns = conns = memory.Memory(shape=_conn_layout(g), depth=g.entries, init=[])
        # A synchronous read port (the data one clock after the address), so the
        # records sit in block RAM, not in 1.5k LUT RAM cells.
        conn_rd = conns.read_port()
        conn_wr = conns.write_port()
        # The record read goes into a register before any logic (a block RAM's
        # clock-to-out is most of a clock): a state that reads a record sets
        # the address, waits a clock, then finds the record in ``rec``.
        rec = Signal(_conn_layout(g), reset_less=True)  # (no reset mux between the RAM and it)
        m.d.sync += rec.eq(conn_rd.data)
        # The serial of each pending slot's QUERY, for when it is asked again.
        m.submodules.query_serials = query_serials = memory.Memory(shape=32, depth=self._pending_slots, init=[])
        serial_rd = query_serials.read_port()
        serial_wr = query_serials.write_port()
        m.d.comb += serial_rd.addr.eq(self.query.payload.slot)  # stable while the request waits

        def count(name):
            counter = getattr(self, name)
            m.d.sync += counter.eq(counter + 1)

        # The message being dispatched is read on ``msg`` itself (accepted at the
        # end of "Dispatching"), not copied: a 1.5 kbit register and its muxes.
        cur = self.msg.payload

        def body(cls):
            return data.View(message_layout(cls), cur.raw[: message_layout(cls).size])

        # -- outgoing message being built, left-aligned as the session engine wants
        out_raw = Signal(8 * MAX_SENT_BYTES)
        out_len = Signal(range(MAX_SENT_BYTES + 1))

        def out_view(cls):
            size = message_layout(cls).size
            return data.View(message_layout(cls), out_raw[-size:])

        # The message is chosen by the states (its kind, type, error, and where
        # to go once it is sent) and composed in one state, "Composing", from
        # registers only: out_raw's ~900 flops then load from one registered
        # enable (``load_out``) through a 3-way mux, not from every state's
        # own mux.  Kinds: a QUERY; a DELETE or STATS (one layout); a RESET
        # or DUMP (one layout).
        K_QUERY, K_FLOW, K_SHORT = 0, 1, 2
        for a, b in ((SsmbStats, SsmbDelete), (SsmbReset, SsmbDump)):  # a kind's types share one shape
            assert [(f.offset, f.width) for _, f in message_layout(a)] == \
                [(f.offset, f.width) for _, f in message_layout(b)], (a, b)
        THEN_IDLE, THEN_AFTER_EVICTION, THEN_DUMPING = 0, 1, 2
        out_kind = Signal(2)
        out_type = Signal(8)
        out_error = Signal(8)
        out_end = Signal()  # DUMP: the END flag and the count
        send_then = Signal(2)
        # The flow's figures (idle, age, in ms) come from registers a few
        # clocks behind their inputs: a state that uses them waits
        # ``FIGURES`` clocks after its inputs were written (``settled``).
        FIGURES = 4
        settle = Signal(range(FIGURES + 1))
        settled = Signal()
        m.d.comb += settled.eq(settle == FIGURES)
        m.d.sync += settle.eq(Mux(settled, settle, settle + 1))
        composing = Signal()
        load_out = Signal()
        m.d.sync += load_out.eq(composing & (settle == FIGURES - 1))

        def compose(kind, msg_type, *, error=ErrorCode.NONE, end=0, then=THEN_IDLE):
            m.d.sync += [out_kind.eq(kind), out_type.eq(msg_type), out_error.eq(error), out_end.eq(end),
                         send_then.eq(then), settle.eq(0)]
            m.next = "Composing"

        def header(cls, serial):
            view = out_view(cls)
            return [
                out_raw.eq(0),
                out_len.eq(cls.wire_size() - TAG_SIZE),
                view.vers_major.eq(1),
                view.msg_type.eq(out_type),
                view.error.eq(out_error),
                view.flags.eq(Mux(out_end, Flag.END, 0)),
                view.serial.eq(serial),
            ], view

        # -- the QUERY being sent: the miss path hears where it went
        query_in_flight = Signal()
        query_slot = Signal(8)
        m.d.comb += [
            self.asked.payload.slot.eq(query_slot),
            self.asked.payload.cs.eq(self.core_sent_to),
            self.asked.payload.sent.eq(self.core_delivered),
        ]
        with m.If(query_in_flight & self.core_msg.valid & self.core_msg.ready):
            m.d.comb += self.asked.valid.eq(1)
            m.d.sync += query_in_flight.eq(0)

        # -- flow table command helper
        cmd = self.cmd.payload
        rsp = Signal.like(self.rsp.payload)

        # -- flow being worked on
        key_f = Signal(FlowKey)  # inbound (client -> virtual server)
        key_r = Signal(FlowKey)
        action_f = Signal(FlowAction)
        action_r = Signal(FlowAction)
        handle_f = Signal(g.handle_bits)
        handle_r = Signal(g.handle_bits)
        conn_f = Signal(_conn_layout(g))
        serial = Signal(32)
        vs_id, node_id = Signal(16), Signal(16)
        counters_in = Signal(data.StructLayout({"packets": g.packets_width, "bytes": g.bytes_width, "last_seen": ts}))
        counters_out = Signal.like(counters_in)
        created = Signal(ts)
        reason = Signal(8)
        tcp_state = Signal(8)
        idle_limit_ms = Signal(32)  # REAP/TIMEOUT: idleness that makes the flow deletable
        reply_error = Signal(8)
        query_serial = Signal(32, init=1)  # QUERY serials 1, 2, ... skipping 0 (the serial of no request)
        dump_count = Signal(32)
        scan = Signal(g.handle_bits)
        flush_sweep = Signal(g.handle_bits + 1)
        after_eviction = Signal(2)  # 0: insert return entry, 1: finish install
        first_seen = Signal()
        # The new flow being installed, kept for after an eviction report.
        new_key = Signal(FlowKey)
        new_serial = Signal(32)
        new_vs_id, new_node_id = Signal(16), Signal(16)

        def ms(ticks):
            return (ticks * self._ms_per_tick)[:32]

        def signature_stmts(view):
            # The flow signature the CS knows: from the inbound key.
            return [
                view.flow.src_addr.eq(_IPV4_MAPPED | key_f.src_ip),
                view.flow.dst_addr.eq(_IPV4_MAPPED | key_f.dst_ip),
                view.flow.src_port.eq(key_f.src_port),
                view.flow.dst_port.eq(key_f.dst_port),
                view.flow.protocol.eq(key_f.protocol),
                view.flow.family.eq(AddressFamily.IPV4),
            ]

        # The flow's figures, a register stage each (subtract, smaller,
        # multiply, compare): idleness (both directions: the smaller age) and
        # age, in ticks and in ms.
        idle_in, idle_out, age = Signal(ts), Signal(ts), Signal(ts)
        idle, age_t = Signal(ts), Signal(ts)
        idle_ms, age_ms = Signal(32), Signal(32)
        idle_over_limit = Signal()  # REAP/TIMEOUT: idle_ms >= idle_limit_ms
        lingered = Signal()  # idle >= close_linger
        idle_timed_out = Signal()  # the idle scanner's timeout
        m.d.sync += [
            idle_in.eq(self.now - counters_in.last_seen),
            idle_out.eq(self.now - counters_out.last_seen),
            age.eq(self.now - created),
            idle.eq(Mux(idle_in < idle_out, idle_in, idle_out)),
            age_t.eq(age),
            idle_ms.eq(ms(idle)),
            age_ms.eq(ms(age_t)),
            idle_over_limit.eq(idle_ms >= idle_limit_ms),
            lingered.eq(idle >= self._close_linger),
            idle_timed_out.eq((self.idle_timeout != 0) & (idle >= self.idle_timeout)),
        ]

        def stats_stmts(view):
            return [
                view.stats.packets_in.eq(counters_in.packets),
                view.stats.bytes_in.eq(counters_in.bytes),
                view.stats.packets_out.eq(counters_out.packets),
                view.stats.bytes_out.eq(counters_out.bytes),
                view.stats.age_ms.eq(age_ms),
                view.stats.idle_ms.eq(idle_ms),
                view.stats.reason.eq(reason),
                view.stats.tcp_state.eq(tcp_state),
                view.stats.vs_id.eq(vs_id),
                view.stats.node_id.eq(node_id),
            ]

        # out_raw: composed from registers, loaded on one registered enable.
        with m.If(load_out):
            with m.Switch(out_kind):
                with m.Case(K_QUERY):
                    q = self.query.payload.query  # held on the stream until "Composing" takes it
                    stmts, view = header(SsmbQuery, serial)
                    m.d.sync += stmts + [
                        view.flow.src_addr.eq(_IPV4_MAPPED | q.key.src_ip),
                        view.flow.dst_addr.eq(_IPV4_MAPPED | q.key.dst_ip),
                        view.flow.src_port.eq(q.key.src_port),
                        view.flow.dst_port.eq(q.key.dst_port),
                        view.flow.protocol.eq(q.key.protocol),
                        view.flow.tos.eq(q.tos),
                        view.flow.family.eq(AddressFamily.IPV4),
                        view.flow.vlan_valid.eq(q.vlan_valid),
                        view.flow.vlan_id.eq(q.vlan_id),
                        view.flow.ingress_port.eq(q.ingress_port),
                        view.client_mac.eq(q.client_mac),
                        view.vs_id.eq(q.vs_id),
                        view.tcp_flags.eq(q.tcp_flags),
                    ]
                with m.Case(K_FLOW):  # DELETE and STATS share the layout
                    stmts, view = header(SsmbDelete, serial)
                    m.d.sync += stmts + signature_stmts(view) + stats_stmts(view)
                with m.Default():  # RESET and DUMP share the layout
                    stmts, view = header(SsmbDump, 0)
                    m.d.sync += stmts + [view.count.eq(Mux(out_end, dump_count, 0))]

        # Payloads with a default in every state (a value set only in some
        # states would also be ANDed with them, a LUT per bit).
        m.d.comb += [
            self.core_msg.payload.raw.eq(out_raw),
            self.core_msg.payload.length.eq(out_len),
            cmd.now.eq(self.now),
            cmd.key.eq(key_f),
            cmd.action.eq(action_f),
            cmd.handle.eq(handle_f),
            self.resolve.payload.key.eq(key_f),
            self.resolve.payload.accept.eq(reply_error == ErrorCode.NONE),
        ]

        def issue(op, *, key=None, action=None, handle=None, keep=False, then):
            """Send one command to the flow table; the answer lands in `rsp`.
            ``keep``: an INSERT that must not evict ``handle``."""
            stmts = [cmd.op.eq(op), cmd.keep.eq(keep)]
            if key is not None:
                stmts.append(cmd.key.eq(key))
            if action is not None:
                stmts.append(cmd.action.eq(action))
            if handle is not None:
                stmts.append(cmd.handle.eq(handle))
            m.d.comb += self.cmd.valid.eq(1)
            m.d.comb += stmts
            with m.If(self.cmd.ready):
                m.next = then

        def await_rsp(then=None):
            m.d.comb += self.rsp.ready.eq(1)
            with m.If(self.rsp.valid):
                m.d.sync += rsp.eq(self.rsp.payload)
                if then is not None:
                    m.next = then

        def counters_from_rsp():
            return counters_from(self.rsp.payload)

        def counters_from(answer):
            return Cat(answer.packets, answer.bytes, answer.last_seen)

        def read_inbound_states(prefix, then):
            """READ the inbound entry (handle_f): its counters and key."""
            with m.State(f"{prefix}: reading the inbound entry"):
                issue(FlowOp.READ, handle=handle_f, then=f"{prefix}: inbound entry read")
            with m.State(f"{prefix}: inbound entry read"):
                await_rsp(f"{prefix}: taking the inbound entry")
            with m.State(f"{prefix}: taking the inbound entry"):
                # from the answer's register: the loads are enabled by the state alone
                m.d.sync += [counters_in.eq(counters_from(rsp)), key_f.eq(rsp.key)]
                m.next = then

        def read_return_states(prefix, then, extra=()):
            """READ the return entry (conn_f.partner) and take the flow's record."""
            with m.State(f"{prefix}: reading the return entry"):
                issue(FlowOp.READ, handle=conn_f.partner, then=f"{prefix}: return entry read")
            with m.State(f"{prefix}: return entry read"):
                await_rsp(f"{prefix}: taking the return entry")
            with m.State(f"{prefix}: taking the return entry"):
                m.d.sync += [
                    counters_out.eq(counters_from(rsp)),
                    handle_r.eq(conn_f.partner),
                    vs_id.eq(conn_f.vs_id),
                    node_id.eq(conn_f.node_id),
                    created.eq(conn_f.created),
                    serial.eq(conn_f.serial),
                    tcp_state.eq(Cat(conn_f.fin_in, conn_f.fin_out, conn_f.rst)),
                    settle.eq(0),
                    *extra,
                ]
                m.next = then

        with m.FSM(name="flows"):
            with m.State("Idle"):
                with m.If(self.msg.valid):
                    m.next = "Dispatching"
                with m.Elif(self.query.valid):
                    m.next = "Building a QUERY"
                with m.Elif(self.tcp_event.valid):
                    m.d.comb += conn_rd.addr.eq(self.tcp_event.payload.handle)
                    m.d.sync += handle_f.eq(self.tcp_event.payload.handle)
                    m.d.sync += tcp_state.eq(Cat(self.tcp_event.payload.fin, self.tcp_event.payload.rst))
                    m.d.comb += self.tcp_event.ready.eq(1)
                    m.next = "Tracking: reading the record"
                with m.Else():
                    m.next = "Scanning"

            # ---- QUERY for a new flow -------------------------------------------------
            with m.State("Building a QUERY"):
                m.d.sync += [query_in_flight.eq(1), query_slot.eq(self.query.payload.slot)]
                q = self.query.payload.query
                again = self.query.payload.again
                m.d.sync += serial.eq(Mux(again, serial_rd.data, query_serial))
                with m.If(again):
                    count("queries_rerouted")
                with m.Else():
                    m.d.comb += [serial_wr.en.eq(1), serial_wr.addr.eq(self.query.payload.slot),
                                 serial_wr.data.eq(query_serial)]
                    m.d.sync += query_serial.eq(Mux(query_serial == 0xFFFF_FFFF, 1, query_serial + 1))
                    count("queries_sent")
                m.d.sync += key_f.eq(q.key)
                compose(K_QUERY, SsmbType.QUERY)

            # ---- messages from the CS ---------------------------------------------------
            with m.State("Dispatching"):
                m.d.comb += self.msg.ready.eq(1)
                reply = body(SsmbReply)  # REPLY and NEWFLOW share the layout
                flow = reply.flow
                xlate = reply.xlate
                flags = cur.header.flags
                def inbound(cls):
                    # Each type has its own layout: the flow sits at a different place.
                    flow = body(cls).flow
                    return [
                        key_f.src_ip.eq(flow.src_addr[:32]),
                        key_f.dst_ip.eq(flow.dst_addr[:32]),
                        key_f.src_port.eq(flow.src_port),
                        key_f.dst_port.eq(flow.dst_port),
                        key_f.protocol.eq(flow.protocol),
                        key_f.inbound.eq(1),
                        serial.eq(cur.header.serial),
                    ]

                with m.Switch(cur.msg_type):
                    with m.Case(SsmbType.REPLY, SsmbType.NEWFLOW):
                        translate_addr = (flags & Flag.TRANSLATE_ADDR) != 0
                        translate_port = (flags & Flag.TRANSLATE_PORT) != 0
                        offsets = (flags & Flag.ADD_TCP_OFFSETS) != 0
                        node_ip = Mux(translate_addr, xlate.node_addr[:32], flow.dst_addr[:32])
                        node_port = Mux(translate_port, xlate.node_port, flow.dst_port)
                        def action_stmts(action, *, rewrite_source, egress_port, new_ip, new_port,
                                         eth_dst, vlan, seq_delta, ack_delta):
                            """One direction's action; translation flags and offsets
                            are the flow's, shared by both directions."""
                            return [
                                action.eq(0),
                                action.egress_port.eq(egress_port),
                                action.rewrite_source.eq(rewrite_source),
                                action.translate_addr.eq(translate_addr),
                                action.translate_port.eq(translate_port),
                                action.new_ip.eq(new_ip),
                                action.new_port.eq(new_port),
                                action.eth_dst.eq(eth_dst),
                                action.vlan_rewrite.eq(vlan != 0),
                                action.vlan_id.eq(vlan),
                                action.add_offsets.eq(offsets),
                                action.seq_delta.eq(seq_delta),
                                action.ack_delta.eq(ack_delta),
                            ]

                        m.d.sync += inbound(SsmbReply)
                        m.d.sync += [
                            reply_error.eq(cur.header.error),
                            vs_id.eq(xlate.vs_id),
                            node_id.eq(xlate.node_id),
                            *action_stmts(action_f, rewrite_source=0, egress_port=xlate.egress_port,
                                          new_ip=xlate.node_addr[:32], new_port=xlate.node_port,
                                          eth_dst=xlate.node_mac, vlan=xlate.node_vlan,
                                          seq_delta=xlate.seq_offset, ack_delta=xlate.ack_offset),
                            # Return flow: node -> client, source back to the virtual server.
                            key_r.src_ip.eq(node_ip),
                            key_r.dst_ip.eq(flow.src_addr[:32]),
                            key_r.src_port.eq(node_port),
                            key_r.dst_port.eq(flow.src_port),
                            key_r.protocol.eq(flow.protocol),
                            key_r.inbound.eq(0),
                            # The node's seq space is the client's ack space shifted by
                            # ack_offset, and it acknowledges the shifted client seq.
                            *action_stmts(action_r, rewrite_source=1, egress_port=xlate.client_port,
                                          new_ip=flow.dst_addr[:32], new_port=flow.dst_port,
                                          eth_dst=xlate.client_mac, vlan=xlate.client_vlan,
                                          seq_delta=-xlate.ack_offset, ack_delta=-xlate.seq_offset),
                        ]
                        m.d.sync += [new_serial.eq(cur.header.serial), new_vs_id.eq(xlate.vs_id),
                                     new_node_id.eq(xlate.node_id)]
                        m.d.sync += new_key.eq(Cat(flow.src_addr[:32], flow.dst_addr[:32], flow.src_port,
                                                   flow.dst_port, flow.protocol, Const(1, 1)))
                        with m.If(cur.header.error == ErrorCode.NONE):
                            m.next = "Inserting the inbound entry"
                        with m.Else():
                            count("flows_refused")
                            m.next = "Telling the port"
                    with m.Case(SsmbType.DELETE):
                        m.d.sync += inbound(SsmbDelete) + [reason.eq(DeleteReason.CS_DELETE), idle_limit_ms.eq(0)]
                        m.next = "Finding the flow"
                    with m.Case(SsmbType.REAP):
                        reap = body(SsmbReap)
                        m.d.sync += inbound(SsmbReap) + [reason.eq(DeleteReason.REAP), idle_limit_ms.eq(reap.idle_ms)]
                        m.next = "Finding the flow"
                    with m.Case(SsmbType.TIMEOUT):
                        timeout = body(SsmbTimeout)
                        m.d.sync += inbound(SsmbTimeout) + [reason.eq(DeleteReason.TIMEOUT), idle_limit_ms.eq(timeout.idle_ms)]
                        m.next = "Finding the flow"
                    with m.Case(SsmbType.RESET):
                        count("resets")
                        m.next = "Flushing the table"
                    with m.Case(SsmbType.DUMP):
                        m.d.sync += [scan.eq(0), dump_count.eq(0), first_seen.eq(0)]
                        m.next = "Dumping"
                    with m.Default():
                        m.next = "Idle"  # HELLO and AUTH are the session engine's

            # ---- install: inbound entry, return entry, release ----------------------------
            with m.State("Inserting the inbound entry"):
                issue(FlowOp.INSERT, key=key_f, action=action_f, then="Inbound inserted")
            with m.State("Inbound inserted"):
                await_rsp()
                with m.If(self.rsp.valid):
                    m.d.comb += conn_rd.addr.eq(self.rsp.payload.handle)  # the victim's record, for "Evicting"
                    m.d.sync += handle_f.eq(self.rsp.payload.handle)
                    with m.If(self.rsp.payload.status == InsertStatus.EVICTED):
                        m.d.sync += after_eviction.eq(0)
                        m.next = "Evicting: reading the victim's record"
                    with m.Else():
                        m.next = "Inserting the return entry"
            with m.State("Inserting the return entry"):
                # Never evicting the inbound entry just written: the return entry
                # alone would be a flow that cannot be reached.
                issue(FlowOp.INSERT, key=key_r, action=action_r, handle=handle_f, keep=True,
                      then="Return inserted")
            with m.State("Return inserted"):
                await_rsp()
                with m.If(self.rsp.valid):
                    m.d.comb += conn_rd.addr.eq(self.rsp.payload.handle)
                    m.d.sync += handle_r.eq(self.rsp.payload.handle)
                    with m.If(self.rsp.payload.status == InsertStatus.EVICTED):
                        m.d.sync += after_eviction.eq(1)
                        m.next = "Evicting: reading the victim's record"
                    with m.Else():
                        m.next = "Linking the entries"
            def link(handle, forward, partner):
                """A new flow's record for one of its two entries."""
                return [
                    conn_wr.en.eq(1),
                    conn_wr.addr.eq(handle),
                    conn_wr.data.eq(Cat(Const(1, 1), Const(forward, 1), partner, serial, vs_id, node_id, self.now,
                                        Const(0, 3))),
                ]

            with m.State("Linking the entries"):
                m.d.comb += link(handle_f, 1, handle_r)
                m.next = "Linking the return entry"
            with m.State("Linking the return entry"):
                m.d.comb += link(handle_r, 0, handle_f)
                count("flows_installed")
                m.d.sync += reply_error.eq(ErrorCode.NONE)
                m.next = "Telling the port"
            with m.State("Telling the port"):
                # The verdict on the REPLY/NEWFLOW: the port replicates an installed one.
                if self._install_verdicts:
                    m.d.comb += [self.installed.valid.eq(1), self.installed.payload.eq(reply_error == ErrorCode.NONE)]
                    with m.If(self.installed.ready):
                        m.next = "Resolving"
                else:
                    m.next = "Resolving"
            with m.State("Resolving"):
                m.d.comb += self.resolve.valid.eq(1)
                with m.If(self.resolve.ready):
                    m.next = "Idle"

            # ---- overflow: the victim (in rsp) and its partner go, the CS hears of it -----
            with m.State("Evicting: reading the victim's record"):
                m.next = "Evicting"
            with m.State("Evicting"):
                # conn[victim] still describes the victim: we have not linked yet
                # (read with the insert's answer).
                victim = rec
                m.d.sync += [
                    conn_f.eq(victim),
                    reason.eq(DeleteReason.OVERFLOW),
                    tcp_state.eq(Cat(victim.fin_in, victim.fin_out, victim.rst)),
                    serial.eq(victim.serial),
                ]
                count("evictions")
                with m.If(victim.valid):
                    m.next = "Deleting the victim's partner"
                with m.Else():
                    m.next = "After eviction"
            with m.State("Deleting the victim's partner"):
                # The partner's record is read meanwhile: when the victim is a
                # return entry, the flow's close flags are on its partner's.
                m.d.comb += conn_rd.addr.eq(conn_f.partner)
                issue(FlowOp.DELETE, handle=conn_f.partner, then="Victim's partner deleted")
            with m.State("Victim's partner deleted"):
                # The victim's own counters came with the insert's answer (rsp).
                m.d.comb += [self.rsp.ready.eq(1), conn_rd.addr.eq(conn_f.partner)]
                with m.If(self.rsp.valid):
                    victim_counters = Cat(rsp.packets, rsp.bytes, rsp.last_seen)
                    partner_counters = counters_from_rsp()
                    # Which of the two is inbound decides which key names the flow.
                    with m.If(conn_f.forward):
                        m.d.sync += [counters_in.eq(victim_counters), counters_out.eq(partner_counters),
                                     key_f.eq(rsp.key)]
                    with m.Else():
                        m.d.sync += [counters_in.eq(partner_counters), counters_out.eq(victim_counters),
                                     key_f.eq(self.rsp.payload.key)]
                    m.d.comb += [conn_wr.en.eq(1), conn_wr.addr.eq(conn_f.partner), conn_wr.data.eq(0)]
                    m.next = "Reporting the victim"
            with m.State("Reporting the victim"):
                m.d.sync += [vs_id.eq(conn_f.vs_id), node_id.eq(conn_f.node_id), created.eq(conn_f.created)]
                # The partner's record, read in the states before (rec).
                with m.If(~conn_f.forward):
                    m.d.sync += tcp_state.eq(Cat(rec.fin_in, rec.fin_out, rec.rst))
                count("deletes_sent")
                compose(K_FLOW, SsmbType.DELETE, then=THEN_AFTER_EVICTION)
            with m.State("After eviction"):
                # Back to installing the new flow; its keys were kept aside.
                m.d.sync += [serial.eq(new_serial), vs_id.eq(new_vs_id), node_id.eq(new_node_id),
                             key_f.eq(new_key)]
                with m.If(after_eviction == 0):
                    m.next = "Inserting the return entry"
                with m.Else():
                    m.next = "Linking the entries"

            # ---- REAP / TIMEOUT / DELETE: find, then answer ---------------------------------
            with m.State("Finding the flow"):
                issue(FlowOp.FIND, key=key_f, then="Flow found")
            with m.State("Flow found"):
                await_rsp()
                with m.If(self.rsp.valid):
                    m.d.comb += conn_rd.addr.eq(self.rsp.payload.handle)
                    m.d.sync += handle_f.eq(self.rsp.payload.handle)
                    with m.If(self.rsp.payload.found):
                        m.next = "Found: reading its record"
                    with m.Else():
                        m.next = "Not found"
            with m.State("Not found"):
                # Unknown here: tell the CS it is gone (zero counters).
                m.d.sync += [counters_in.eq(0), counters_out.eq(0), created.eq(self.now),
                             counters_in.last_seen.eq(self.now), counters_out.last_seen.eq(self.now),
                             vs_id.eq(0), node_id.eq(0), tcp_state.eq(0)]
                m.next = "Reporting the deletion"
            with m.State("Found: reading its record"):
                m.d.sync += counters_in.eq(counters_from(rsp))
                m.next = "Found: its record"
            with m.State("Found: its record"):
                m.d.sync += conn_f.eq(rec)
                m.next = "Found: reading the return entry"
            read_return_states("Found", then="Deciding")
            with m.State("Deciding"):
                # Compared in milliseconds: a constant multiply, no divider.
                with m.If(~settled):
                    pass  # the figures are still being computed
                with m.Elif((reason == DeleteReason.CS_DELETE) | idle_over_limit):
                    m.next = "Deleting the inbound entry"
                with m.Else():
                    m.d.sync += reason.eq(DeleteReason.NONE)
                    count("stats_sent")
                    compose(K_FLOW, SsmbType.STATS, error=ErrorCode.CONNALIVE)
            with m.State("Deleting the inbound entry"):
                issue(FlowOp.DELETE, handle=handle_f, then="Inbound deleted")
            with m.State("Inbound deleted"):
                await_rsp("Deleting the return entry")
            with m.State("Deleting the return entry"):
                issue(FlowOp.DELETE, handle=handle_r, then="Return deleted")
            with m.State("Return deleted"):
                await_rsp()
                with m.If(self.rsp.valid):
                    m.d.comb += [conn_wr.en.eq(1), conn_wr.addr.eq(handle_f), conn_wr.data.eq(0)]
                    m.next = "Forgetting the return entry"
            with m.State("Forgetting the return entry"):
                m.d.comb += [conn_wr.en.eq(1), conn_wr.addr.eq(handle_r), conn_wr.data.eq(0)]
                m.next = "Reporting the deletion"
            with m.State("Reporting the deletion"):
                count("deletes_sent")
                compose(K_FLOW, SsmbType.DELETE)

            # ---- TCP close tracking ---------------------------------------------------------
            with m.State("Tracking: reading the record"):
                m.next = "Tracking TCP close"
            with m.State("Tracking TCP close"):
                # Flags live on the inbound entry's record.
                record = rec
                m.d.sync += conn_f.eq(record)
                with m.If(~record.valid):
                    m.next = "Idle"
                with m.Elif(record.forward):
                    m.next = "Marking close"
                with m.Else():
                    m.d.comb += conn_rd.addr.eq(record.partner)
                    m.d.sync += handle_f.eq(record.partner)
                    m.next = "Reading the inbound record"
            with m.State("Reading the inbound record"):
                m.next = "Inbound record read"
            with m.State("Inbound record read"):
                m.d.sync += conn_f.eq(rec)
                m.next = "Marking close from the node"
            with m.State("Marking close from the node"):
                # tcp_state: bit 0 FIN, bit 1 RST of the packet that was seen
                m.d.comb += [conn_wr.en.eq(1), conn_wr.addr.eq(handle_f), conn_wr.data.eq(conn_f)]
                m.d.comb += [conn_wr.data.fin_out.eq(conn_f.fin_out | tcp_state[0]),
                             conn_wr.data.rst.eq(conn_f.rst | tcp_state[1])]
                m.next = "Idle"
            with m.State("Marking close"):
                m.d.comb += [conn_wr.en.eq(1), conn_wr.addr.eq(handle_f), conn_wr.data.eq(conn_f)]
                m.d.comb += [conn_wr.data.fin_in.eq(conn_f.fin_in | tcp_state[0]),
                             conn_wr.data.rst.eq(conn_f.rst | tcp_state[1])]
                m.next = "Idle"

            # ---- idle scanner: one inbound entry per visit -----------------------------------
            with m.State("Scanning"):
                m.d.comb += conn_rd.addr.eq(scan)
                m.d.sync += [handle_f.eq(scan), scan.eq(scan + 1)]
                m.next = "Scanner: reading the record"
            with m.State("Scanner: reading the record"):
                m.next = "Scanner: the record"
            with m.State("Scanner: the record"):
                m.d.sync += conn_f.eq(rec)
                with m.If(rec.valid & rec.forward):
                    m.next = "Scanner: reading the inbound entry"
                with m.Else():
                    m.next = "Idle"
            read_inbound_states("Scanner", then="Scanner: reading the return entry")
            read_return_states("Scanner", then="Scanner deciding")
            with m.State("Scanner deciding"):
                closed = (conn_f.fin_in & conn_f.fin_out) | conn_f.rst
                with m.If(~settled):
                    pass  # the figures are still being computed
                with m.Elif(closed & lingered):
                    m.d.sync += reason.eq(Mux(conn_f.rst, DeleteReason.RST, DeleteReason.FIN))
                    count("close_deletes")
                    m.next = "Deleting the inbound entry"
                with m.Elif(idle_timed_out):
                    m.d.sync += reason.eq(DeleteReason.IDLE)
                    count("idle_deletes")
                    m.next = "Deleting the inbound entry"
                with m.Else():
                    m.next = "Idle"

            # ---- RESET ---------------------------------------------------------------------
            with m.State("Flushing the table"):
                m.d.comb += self.flush_pending.eq(1)
                issue(FlowOp.FLUSH, then="Table flushed")
            with m.State("Table flushed"):
                await_rsp()
                with m.If(self.rsp.valid):
                    m.d.sync += flush_sweep.eq(0)
                    m.next = "Forgetting every flow"
            with m.State("Forgetting every flow"):
                m.d.comb += [conn_wr.en.eq(1), conn_wr.addr.eq(flush_sweep), conn_wr.data.eq(0)]
                m.d.sync += flush_sweep.eq(flush_sweep + 1)
                with m.If(flush_sweep == g.entries - 1):
                    compose(K_SHORT, SsmbType.RESET)

            # ---- DUMP ------------------------------------------------------------------------
            with m.State("Dumping"):
                m.d.comb += conn_rd.addr.eq(scan)
                m.d.sync += [handle_f.eq(scan), scan.eq(scan + 1)]
                with m.If(first_seen & (scan == 0)):
                    compose(K_SHORT, SsmbType.DUMP, end=1)
                with m.Else():
                    m.next = "Dump: reading the record"
                m.d.sync += first_seen.eq(1)
            with m.State("Dump: reading the record"):
                m.next = "Dump: the record"
            with m.State("Dump: the record"):
                m.d.sync += conn_f.eq(rec)
                with m.If(rec.valid & rec.forward):
                    m.next = "Dump: reading the inbound entry"
                with m.Else():
                    m.next = "Dumping"
            read_inbound_states("Dump", then="Dump: reading the return entry")
            read_return_states("Dump", then="Dump entry",
                               extra=(reason.eq(DeleteReason.NONE), dump_count.eq(dump_count + 1)))
            with m.State("Dump entry"):
                count("stats_sent")
                compose(K_FLOW, SsmbType.STATS, then=THEN_DUMPING)

            with m.State("Composing"):
                m.d.comb += composing.eq(1)
                with m.If(load_out):
                    with m.If(out_kind == K_QUERY):
                        m.d.comb += self.query.ready.eq(1)
                    m.next = "Sending"
            with m.State("Sending"):
                m.d.comb += self.core_msg.valid.eq(1)
                with m.If(self.core_msg.ready):
                    with m.Switch(send_then):
                        with m.Case(THEN_AFTER_EVICTION):
                            m.next = "After eviction"
                        with m.Case(THEN_DUMPING):
                            m.next = "Dumping"
                        with m.Default():
                            m.next = "Idle"
        return m
