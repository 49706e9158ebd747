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

from functools import reduce

from amaranth import Cat, Const, Module, Mux, Signal, Value
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
from ..lut4 import builds_lut4s, lut_select_bits
from ..msgport.layout import core_read_signature, received_message_layout
from ..msgport.message_bits import MessageBits, pieces_value, wire_word_bits
from ..msgport.session import core_message_layout
from ..onehot import Loads, OneHotFSM, onehot_mux
from ..ram import BlockRAM
from .layouts import FlowAction, FlowKey

__all__ = ["FlowController", "query_layout", "tcp_event_layout"]



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


# The kinds of message "Dispatching" tells apart, a one-hot bit each.
_MSG_KINDS = ((SsmbType.REPLY, SsmbType.NEWFLOW), (SsmbType.DELETE,), (SsmbType.REAP,), (SsmbType.TIMEOUT,),
              (SsmbType.RESET,), (SsmbType.DUMP,))


def _const_mul_clocks(c: int) -> int:
    """Clocks of ``ms()``: levels of a pairwise add tree over c's set bits."""
    n, levels = bin(c).count("1"), 1
    while n > 2:
        n, levels = (n + 1) // 2, levels + 1
    return levels


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
                "core_read": In(core_read_signature()),  # core_msg's bytes, by index, while offered
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

        # The records in block RAM read through its output register
        # (hdl/ram: DP16KD with REGMODE OUTREG on ECP5): the record is in
        # ``rec`` two clocks after the address, so a state that reads a record
        # sets the address (a register, ``rd_addr``), waits two clocks
        # (``reading_states``), then finds it in ``rec`` (the RAM's 5.8 ns
        # clock-to-out is no longer in front of a flop).
        m.submodules.conns = conns = BlockRAM(_conn_layout(g), g.entries)
        conn_rd, conn_wr = conns.read, conns.write
        m.d.comb += [conn_rd.en.eq(1), conn_rd.out_en.eq(1)]
        rec = conn_rd.data
        # The serial of each pending slot's QUERY, for when it is asked again.
        m.submodules.query_serials = query_serials = memory.Memory(shape=32, depth=self._pending_slots, init=[])
        serial_rd = query_serials.read_port(domain="comb")
        serial_wr = query_serials.write_port()
        m.d.comb += serial_rd.addr.eq(self.query.payload.slot)  # stable while the request waits

        fsm = OneHotFSM(m, "Idle")  # a flop per state (hdl/onehot.py); closed at the end
        IDLE_AFTER_RECORD = "Idle, after a record"
        state, goto = fsm.state, fsm.goto
        loads: list[Loads] = []

        def loads_of(reg, *, comb=False, and_or=False, replicas=0, name=None, zero_reset=True):
            loads.append(Loads(m, reg, comb=comb, and_or=and_or, replicas=replicas, name=name,
                               zero_reset=zero_reset))
            return loads[-1]

        def spread(reg, name=None, and_or=False, zero_reset=True):
            """A wide register's enable and selects as flops set a clock
            ahead, a copy per ~26 bits (Loads' replicas): routed, key_f's
            enable (fanout 105) and the counters' (89) crossed the die into
            their CEs, 8.3-8.4 ns (Colorlight build of 1d82fb4)."""
            return loads_of(reg, and_or=and_or, replicas=max(1, round(len(Value.cast(reg)) / 26)), name=name,
                            zero_reset=zero_reset)

        def count(name):
            counter = getattr(self, name)
            m.d.sync += counter.eq(counter + 1)

        # The message being dispatched is read on ``msg`` itself (accepted at the
        # end of "Dispatching", a REPLY/NEWFLOW once resolved), not copied: a
        # 1.5 kbit register and its muxes.
        cur = self.msg.payload

        def body(cls):
            return data.View(message_layout(cls), cur.raw[: message_layout(cls).size])

        # -- the message sent: chosen by the states (its kind, type, error, and
        # where to go once it is sent), then offered on core_msg from
        # "Composing" on; its bytes are never a register of their own.  The
        # message port reads them by index (core_read) while it is offered,
        # a word at a time, selected from constants and the registers that
        # hold the flow (which stay put until it is sent).
        # Kinds: a QUERY; a DELETE or STATS (one layout); a RESET or DUMP
        # (one layout).
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
        # clocks behind their inputs, and the decisions on them from a
        # register more: a state that uses them waits ``FIGURES`` clocks after
        # its inputs were written (``settled``, the last flop of a shift
        # register that ``restart_figures`` clears).
        FIGURES = 4 + _const_mul_clocks(self._ms_per_tick)
        # The restart clears the shift register a clock later, its clock
        # masked meanwhile (the OR of the restarting states' conditions ran on
        # into ``settle`` and ``settled``, 7 levels): ``restart_r`` is "a
        # state restarted them the clock before", from flops alone: the
        # message's composing began ("Composing" is its first clock: every
        # composing state goes there, see ``compose``), or a flop of the
        # states that took a flow's return entry.  As one flop of the OR of
        # ten states it was 5 levels (routed 7.30 ns, build 9b18dc6).
        settle = Signal(FIGURES)
        settled = Signal()
        restart_figures = Signal()  # the flow's entries were taken (the composing states' restart is below)
        restart_taken = Signal()
        composing = Signal()
        m.d.comb += composing.eq(fsm.ongoing("Composing") | fsm.ongoing("Composing, settling"))
        restart_r = Signal()
        m.d.sync += restart_taken.eq(restart_figures)
        m.d.comb += restart_r.eq(restart_taken | fsm.ongoing("Composing"))
        # settle[-1] & ~restart_taken, a flop set a clock ahead: only the
        # deciding states read it (never composing), and there its compare
        # ran with their flop and the decisions into "Idle" and reason (5-6
        # levels).
        m.d.sync += settled.eq(settle[-2] & ~restart_r & ~restart_figures)
        m.d.sync += settle.eq(Mux(restart_r, 1, Cat(Const(1, 1), settle[:-1])))
        # One clock, once the figures settled: the ones that move with `now`
        # (idle_ms, age_ms) and the QUERY's fields are latched for the read.
        load_out = Signal()
        m.d.sync += load_out.eq(composing & settle[-2] & ~settle[-1] & ~restart_r)

        # The message's length a register loaded with its kind (decoded from
        # out_kind it ran on into the message port's stamp and IP length, 5
        # levels across the blocks).
        out_len = Signal(range(max(cls.wire_size() - TAG_SIZE for cls in (SsmbQuery, SsmbDelete, SsmbDump)) + 1))
        # (up in the composing state, (kind, type, error, end, then, length))
        composers: list[tuple[Signal, tuple]] = []

        def compose(kind, msg_type, *, error=ErrorCode.NONE, end=0, then=THEN_IDLE):
            """The message chosen, in a state that always composes (a clock
            more where the choice was a condition: "Reporting it alive",
            "Table forgotten", "Dump done"): the transition into "Composing"
            is the OR of those states' flops alone.  With the conditions
            (settled, delete_asked, sweep_last, first_seen, scan_zero) in it,
            it ran 5 levels into fsm_in_composing, restart_r and out_*'s
            enables (ABC chains a wide OR: routed 7.16-7.30 ns, build 9b18dc6).
            The message's registers load in "Composing" (below)."""
            flag = Signal(name=f"composer{len(composers)}")
            m.d.comb += flag.eq(1)
            composers.append((flag, (kind, msg_type, error, end, then, kinds[kind].wire_size() - TAG_SIZE)))
            goto("Composing")

        def close_composers():
            # Loaded in "Composing", from a copy of the composing states'
            # flops a clock late: from the states' own flops, ABC shared the
            # AND-OR's partial ORs with the transition into "Composing" and
            # chained it 4 LUTs deep.
            was = [Signal(name=f"composed_{k}") for k in range(len(composers))]
            m.d.sync += [r.eq(flag) for r, (flag, _) in zip(was, composers, strict=True)]
            with m.If(fsm.ongoing("Composing")):
                for k, reg in enumerate((out_kind, out_type, out_error, out_end, send_then, out_len)):
                    m.d.sync += reg.eq(onehot_mux(was, [Const(values[k], reg.shape()) for _, values in composers]))

        kinds = {K_QUERY: SsmbQuery, K_FLOW: SsmbDelete, K_SHORT: SsmbDump}
        # The three kinds' bytes as one message (left-aligned, as the port
        # reads them): a byte past a kind's length is never read, so a kind
        # overrides only the bytes where it differs from the longest (DELETE):
        # the header and the flow are the same bytes in all three, a QUERY's
        # tail takes the place of the counters' first bytes, a DUMP's count
        # that of the flow's (zero) first bytes.  The word select then runs
        # over one message, not three.
        out_size = max(message_layout(cls).size for cls in kinds.values())

        def top_offset(cls, name):
            """Bits from the message's first byte to the end of field ``name``."""
            return message_layout(cls).size - message_layout(cls)[name].offset

        for name in ("flow", "serial", "flags", "msg_type", "error"):
            assert top_offset(SsmbQuery, name) == top_offset(SsmbDelete, name)
        for name in ("serial", "flags", "msg_type", "error"):
            assert top_offset(SsmbDump, name) == top_offset(SsmbDelete, name)
        # The count within the flow's first 10 bytes: ::ffff:a.b.c.d's zeros.
        flow_start = top_offset(SsmbDelete, "flow") - message_layout(SsmbDelete)["flow"].width
        count_start = top_offset(SsmbDump, "count") - message_layout(SsmbDump)["count"].width
        assert flow_start <= count_start and top_offset(SsmbDump, "count") <= flow_start + 80

        # -- the QUERY being sent: the miss path hears where it went, and the
        # request is taken (on ``query`` until then)
        query_in_flight = Signal()
        m.d.comb += [
            self.asked.payload.slot.eq(self.query.payload.slot),
            self.asked.payload.cs.eq(self.core_sent_to),
            self.asked.payload.sent.eq(self.core_delivered),
        ]
        with m.If(query_in_flight & self.core_msg.valid & self.core_msg.ready):
            m.d.comb += [self.asked.valid.eq(1), self.query.ready.eq(1)]
            m.d.sync += query_in_flight.eq(0)

        # -- flow table command helper: the command from registers
        cmd = self.cmd.payload
        cmd_valid, cmd_set = Signal(name="cmd_valid"), Signal(name="cmd_set")
        m.d.sync += cmd_valid.eq(cmd_set | (cmd_valid & ~self.cmd.ready))
        cmd_op, cmd_keep, cmd_return = Signal.like(cmd.op, name="cmd_op"), Signal(name="cmd_keep"), Signal(name="cmd_return")
        cmd_handle = Signal(g.handle_bits)
        # AND-OR (hdl/onehot.py): a dozen states issue commands, and their
        # chain of muxes ran from a state flop into cmd_op, 6 levels.  Loaded
        # every clock, 0 outside the issuing states (read only while offered):
        # no enable, whose OR of the twelve states ABC shared with cmd_valid's
        # and chained (5 levels).
        def issued(reg):
            value = Signal.like(reg, name=f"{reg.name}_next")
            m.d.sync += reg.eq(value)
            return loads_of(value, comb=True)

        to_cmd_op, to_cmd_keep = issued(cmd_op), issued(cmd_keep)
        to_cmd_return, to_cmd_handle = issued(cmd_return), issued(cmd_handle)
        # The answer is read where the table holds it (``rsp`` is not taken
        # until the next command is offered, below), not copied.
        rsp = self.rsp.payload

        # -- flow being worked on
        key_f = Signal(FlowKey)  # inbound (client -> virtual server)
        key_r = Signal(FlowKey)
        action_f = Signal(FlowAction)
        action_r = Signal(FlowAction)
        handle_f = Signal(g.handle_bits)
        handle_r = Signal(g.handle_bits)
        conn_f = Signal(_conn_layout(g))
        serial = Signal(32)
        vs_id, node_id = Signal(16, name="vs_id"), Signal(16, name="node_id")
        counters_in = Signal(data.StructLayout({"packets": g.packets_width, "bytes": g.bytes_width, "last_seen": ts}))
        counters_out = Signal.like(counters_in)
        created = Signal(ts)
        reason = Signal(8)
        tcp_state = Signal(8)
        idle_limit_ms = Signal(32)  # REAP/TIMEOUT: idleness that makes the flow deletable
        reply_ok = Signal()  # the REPLY/NEWFLOW is accepted (error NONE) and installed
        query_serial = Signal(32, init=1)  # QUERY serials 1, 2, ... skipping 0 (the serial of no request)
        # The QUERY's serial, chosen every clock: "Idle" sees the request a
        # clock before "Building a QUERY" loads ``serial`` from it, and the
        # request (and query_serial) stay put till then.  The choice by
        # ``again`` (fanout 107) was in front of serial's AND-OR (4 levels,
        # 13 late at 8.15 ns); the read is a LUT RAM's, registered here.
        query_pick = Signal(32)
        m.d.sync += query_pick.eq(Mux(self.query.payload.again, serial_rd.data, query_serial))
        dump_count = Signal(range(g.entries + 1))  # a DUMP counts each flow once: at most entries
        scan = Signal(g.handle_bits)
        # "The DUMP's scan came round": first_seen and scan == 0 in one
        # flop, a clock late: "Dumping" comes back at least three clocks
        # after it counted, and on its first visit (the clock after
        # "Dispatching") the flop is 0 as first_seen is.
        dump_wrapped = Signal()
        first_seen = Signal()
        m.d.sync += dump_wrapped.eq(first_seen & (scan == 0) & ~fsm.ongoing("Dispatching"))
        flush_sweep = Signal(g.handle_bits + 1)
        # ``flush_sweep`` is at its last entry: a flop set a clock ahead (the
        # compare ran on into ``restart_figures`` and ``settle``, 7 levels).
        sweep_last = Signal()
        after_eviction = Signal(2)  # 0: insert return entry, 1: finish install
        # The new flow being installed (its records and the release are
        # made from these, so an eviction report may take key_f, serial,
        # vs_id and node_id for the victim and leave them so).
        new_key = Signal(FlowKey)
        new_serial = Signal(32)
        new_vs_id, new_node_id = Signal(16, name="new_vs_id"), Signal(16, name="new_node_id")

        # Registers written by several states, and the record port's address
        # and write, through AND-OR muxes (hdl/onehot.py's Loads).
        # serial AND-OR: its mux chain behind "Building a QUERY" (fanout 241)
        # was 6 levels.
        # key_f and the counters are written in states alone (or on a
        # register that stays put as the state is entered): each write's
        # flag a clock ahead is the state's flop's next value (``here``).
        here = fsm.ahead
        # key_f's five values (three places of the flow in a CS message, the
        # table's answer, the QUERY's key) each under its own select flop,
        # ORed: two LUT levels.  As a mux of the message's three behind the
        # kind, then a chain, it was four (key_f 8.12 ns on the 25F, syn_j).
        spread_key_f = spread(key_f, and_or=True)

        def to_key_f(value, when=None):
            spread_key_f(value, ahead=here() if when is None else here() & when)

        to_serial = loads_of(serial, and_or=True)
        def counter_loads(reg):
            # the counts and last_seen apart: "Not found" zeroes the counts
            # and sets last_seen to now.  The zero is a value of the counts'
            # mux (a LUT with the answer's bit), not their flops' reset: that
            # was the domain's reset ORed with the zero's flop, a LUT and a
            # net into the LSRs (counters_out 7.59 ns on the 25F, seed 5).
            counts = spread(reg.as_value()[:g.packets_width + g.bytes_width], name=f"{reg.as_value().name}_counts",
                            zero_reset=False)
            seen = spread(reg.last_seen, name=f"{reg.as_value().name}_seen")

            def load(value, when=None):
                ahead = here() if when is None else here() & when
                if value is None:
                    counts(Const(0, g.packets_width + g.bytes_width), ahead=ahead)
                    seen(self.now, ahead=ahead)
                else:
                    value = Value.cast(value)
                    counts(value[:g.packets_width + g.bytes_width], ahead=ahead)
                    seen(value[g.packets_width + g.bytes_width:], ahead=ahead)
            return load

        to_counters_in, to_counters_out = counter_loads(counters_in), counter_loads(counters_out)
        # tcp_state and reason AND-OR (a mux chain of their writers, 6
        # levels from "Building a QUERY"'s flop, fanout 241).
        to_handle_f, to_conn_f = loads_of(handle_f), loads_of(conn_f)
        to_tcp_state = loads_of(tcp_state, and_or=True)
        to_vs_id, to_node_id = loads_of(vs_id), loads_of(node_id)
        # ``created``'s enable a flop (its five writing states' OR was 3
        # levels into its CE: 7.43 ns on the 25F, syn_c seed 4); each write
        # is its state's alone.
        spread_created = spread(created)

        def to_created(value):
            spread_created(value, ahead=here())
        to_reason = loads_of(reason, and_or=True)
        # The record read address is a register (its nine writers' mux was in
        # front of the block RAM's address pins): a record is in ``rec``
        # three clocks after the state that sets the address.  AND-OR: its
        # chain of muxes was 4 levels deep (and "Tracking TCP close" sets it
        # apart, at the end).
        rd_addr = Signal(g.handle_bits)
        to_rd_addr = loads_of(rd_addr, and_or=True)
        m.d.comb += conn_rd.addr.eq(rd_addr)
        # The record write (en, addr, data): an AND-OR of its seven writers,
        # registered in front of the block RAM's pins (the AND-OR and the
        # route to the four EBRs were ~40 late endpoints on the 25F).  A
        # write lands a clock after its state; no record is read back sooner
        # (a read's address is set in a later state, and its data comes
        # three clocks after that).
        conn_write = Signal(1 + g.handle_bits + _conn_layout(g).size)
        to_conn_write = loads_of(conn_write, comb=True)
        conn_write_r = Signal.like(conn_write)
        m.d.sync += conn_write_r.eq(conn_write)
        m.d.comb += Cat(conn_wr.en, conn_wr.addr, conn_wr.data).eq(conn_write_r)

        def write_record(handle, record):
            to_conn_write(Cat(Const(1, 1), handle, record))

        def ms(ticks, name):
            """ticks x ms_per_tick as shifted copies summed, a register after
            each level of adds (a DSP multiply was the critical path)."""
            c = self._ms_per_tick
            terms = [(ticks << i)[:32] for i in range(c.bit_length()) if c >> i & 1]
            level = 0
            while True:
                sums = []
                for k in range(0, len(terms), 2):
                    r = Signal(32, name=f"{name}_{level}_{k // 2}")
                    m.d.sync += r.eq(sum(terms[k:k + 2])[:32])
                    sums.append(r)
                terms, level = sums, level + 1
                if len(terms) == 1:
                    assert level == _const_mul_clocks(c)
                    return terms[0]

        def signature_fields():
            # The flow signature the CS knows: from the inbound key, its
            # addresses as ::ffff:a.b.c.d (pieces, lowest first: the
            # constants stay known to the message's bits).
            def mapped(ip):
                return (ip, (0xFFFF, 16), (0, 80))
            return [
                (("flow", "src_addr"), mapped(key_f.src_ip)),
                (("flow", "dst_addr"), mapped(key_f.dst_ip)),
                (("flow", "src_port"), key_f.src_port),
                (("flow", "dst_port"), key_f.dst_port),
                (("flow", "protocol"), key_f.protocol),
                (("flow", "family"), AddressFamily.IPV4),
            ]

        def signature_stmts(view):
            return [reduce(getattr, path, view).eq(pieces_value(value)) for path, value in signature_fields()]

        # The flow's figures, a register stage each (subtract, smaller,
        # multiply, compare): idleness (both directions: the smaller age) and
        # age, in ticks and in ms.
        idle_in, idle_out, age = Signal(ts, name="idle_in"), Signal(ts, name="idle_out"), Signal(ts, name="age")
        idle, age_t = Signal(ts, name="idle"), Signal(ts, name="age_t")
        idle_ms, age_ms = Signal(32, name="idle_ms"), Signal(32, name="age_ms")
        m.d.comb += [idle_ms.eq(ms(idle, "idle_ms")), age_ms.eq(ms(age_t, "age_ms"))]
        idle_ms_q, age_ms_q = Signal(32, name="idle_ms_q"), Signal(32, name="age_ms_q")  # as the message says them (load_out)
        with m.If(load_out):
            m.d.sync += [idle_ms_q.eq(idle_ms), age_ms_q.eq(age_ms)]
        idle_over_limit = Signal()  # REAP/TIMEOUT: idle_ms >= idle_limit_ms
        lingered = Signal()  # idle >= close_linger
        idle_timed_out = Signal()  # the idle scanner's timeout
        # The deciding states' choices, registered from the figures (a clock
        # after them, within FIGURES): the compares were in front of the
        # message registers' enables.
        delete_asked = Signal()  # "Deciding": CS DELETE, or idle past the REAP/TIMEOUT limit
        close_lingered = Signal()  # "Scanner deciding": closed and idle for close_linger
        # "Scanner deciding"'s deletion (closed and lingered, or timed out)
        # and its reason, from the same flops as close_lingered: its two
        # conditions ran on into reason's AND-OR, 5 levels.
        scan_delete = Signal()
        scan_reason = Signal(8)
        closed = (conn_f.fin_in & conn_f.fin_out) | conn_f.rst
        m.d.sync += [
            delete_asked.eq((reason == DeleteReason.CS_DELETE) | idle_over_limit),
            close_lingered.eq(closed & lingered),
            scan_delete.eq((closed & lingered) | idle_timed_out),
            scan_reason.eq(Mux(closed & lingered, Mux(conn_f.rst, DeleteReason.RST, DeleteReason.FIN),
                               DeleteReason.IDLE)),
            idle_in.eq(self.now - counters_in.last_seen),
            idle_out.eq(self.now - counters_out.last_seen),
            age.eq(self.now - created),
            idle.eq(Mux(idle_in < idle_out, idle_in, idle_out)),
            age_t.eq(age),
            idle_over_limit.eq(idle_ms >= idle_limit_ms),
            lingered.eq(idle >= self._close_linger),
            idle_timed_out.eq((self.idle_timeout != 0) & (idle >= self.idle_timeout)),
        ]

        stats_fields = [
            (("stats", "packets_in"), counters_in.packets),
            (("stats", "bytes_in"), counters_in.bytes),
            (("stats", "packets_out"), counters_out.packets),
            (("stats", "bytes_out"), counters_out.bytes),
            (("stats", "age_ms"), age_ms_q),
            (("stats", "idle_ms"), idle_ms_q),
            (("stats", "reason"), reason),
            (("stats", "tcp_state"), tcp_state),
            (("stats", "vs_id"), vs_id),
            (("stats", "node_id"), node_id),
        ]

        # The QUERY's fields but its key (key_f has it), read on the request
        # itself, held by the stream register in front until the QUERY is
        # sent (a 95-bit copy was).
        q_held = self.query.payload.query
        is_query, is_short = Signal(name="is_query"), Signal(name="is_short")
        m.d.comb += [is_query.eq(out_kind == K_QUERY), is_short.eq(out_kind == K_SHORT)]
        # The message's bits, with its constants known (hdl/msgport/message_bits.py).
        out = MessageBits(out_size)

        def put(kind, fields, when=None):
            layout = message_layout(kinds[kind])
            for path, value in fields:
                out.put(layout, path, value, at=out_size - layout.size, when=when)

        end_at = Flag.END.bit_length() - 1  # the flags: END alone
        put(K_FLOW, [  # DELETE and STATS share the layout
            (("vers_major",), 1),
            (("msg_type",), out_type),
            (("error",), out_error),
            (("flags",), ((0, end_at), out_end, (0, 31 - end_at))),
            (("serial",), Mux(is_short, 0, serial)),
            *signature_fields(),
            (("flow", "tos"), Mux(is_query, q_held.tos, 0)),
            (("flow", "vlan_valid"), Mux(is_query, q_held.vlan_valid, 0)),
            (("flow", "vlan_id"), Mux(is_query, q_held.vlan_id, 0)),
            (("flow", "ingress_port"), Mux(is_query, q_held.ingress_port, 0)),
            *stats_fields,
        ])
        put(K_QUERY, [
            (("client_mac",), q_held.client_mac),
            (("vs_id",), q_held.vs_id),
            (("tcp_flags",), q_held.tcp_flags),
            (("reserved",), 0),
        ], when=is_query)
        put(K_SHORT, [(("count",), Mux(out_end, dump_count, 0))], when=is_short)  # RESET and DUMP share the layout

        # The word asked for, registered every clock from the index alone
        # (the reader picks the byte a clock later); 0 while the reader
        # reads a message of its own: a synchronous reset, no LUT.
        out_word = Signal(64, reset_less=True)
        # The word by the reader's one-hot word_at, bit by bit an OR of
        # (word_at AND bit) over the words where the bit is not a constant 0:
        # LUT4s on ECP5, three levels for the 15 words (ABC chained the
        # AND-OR of the message's bits to 5, 7.41-7.59 ns on the 25F, seed 5).
        selected = lut_select_bits(m, "out_word", self.core_read.word_at, wire_word_bits(out.bits, out_size // 8),
                                   instance=builds_lut4s(platform))
        m.d.sync += out_word.eq(Mux(self.core_read.en, selected, 0))
        m.d.comb += self.core_read.word.eq(out_word)

        # Payloads with a default in every state (a value set only in some
        # states would also be ANDed with them, a LUT per bit).
        m.d.comb += [
            self.core_msg.payload.length.eq(out_len),
            self.core_msg.payload.msg_type.eq(out_type),
            self.core_msg.payload.error.eq(out_error),
            *signature_stmts(self.core_msg.payload),  # a QUERY's flow (its owner by the CRC split)
            cmd.now.eq(self.now),
            cmd.key.eq(Mux(cmd_return, key_r, key_f)),
            cmd.action.eq(Mux(cmd_return, action_r, action_f)),
            cmd.handle.eq(cmd_handle),
            cmd.op.eq(cmd_op),
            cmd.keep.eq(cmd_keep),
            self.cmd.valid.eq(cmd_valid),
            self.resolve.payload.key.eq(new_key),
            self.resolve.payload.accept.eq(reply_ok),
        ]

        def issue(op, *, inbound=True, handle=None, keep=False, then):
            """Send one command to the flow table; the answer lands in `rsp`.
            ``inbound``: key_f and action_f, else key_r and action_r;
            ``keep``: an INSERT that must not evict ``handle``.  The command
            is loaded into its registers in every clock of the state (the
            same values: no issuing state writes the handles) and offered
            from them (valid and payload from flops): loaded in the first
            clock alone, ~cmd_valid in each load's flag ran with the twelve
            issuing states into cmd_op and cmd_handle, 5 levels."""
            to_cmd_op(Const(op, cmd_op.shape()))
            to_cmd_keep(Const(keep, 1))
            to_cmd_return(Const(not inbound, 1))
            to_cmd_handle(handle_f if handle is None else handle)
            with m.If(~cmd_valid):
                m.d.comb += cmd_set.eq(1)
            with m.Elif(self.cmd.ready):
                goto(then)

        # The answer stays on ``rsp`` (the table's register holds it) until
        # the next command is offered: ``ready`` is ``cmd_valid``, a flop.
        # The states that read it come after the awaiting one and before the
        # next command (a 206-bit copy of it was the answer register); every
        # command is awaited in the state after it is taken, so an awaiting
        # state sees only its own answer.
        m.d.comb += self.rsp.ready.eq(cmd_valid)

        def await_rsp(then=None):
            if then is not None:
                with m.If(self.rsp.valid):
                    goto(then)

        def counters_from(answer):
            return Cat(answer.packets, answer.bytes, answer.last_seen)

        def reading_states(name, then):
            """``name`` and a second clock: the record whose address the state
            before set is in ``rec`` in ``then``."""
            with state(name):
                goto(f"{name}, second clock")
            with state(f"{name}, second clock"):
                goto(then)

        def read_record_states(prefix, otherwise):
            """The record at the read address (set by the state before): an
            installed flow's inbound entry goes on to be read, else ``otherwise``."""
            reading_states(f"{prefix}: reading the record", f"{prefix}: the record")
            with state(f"{prefix}: the record"):
                to_conn_f(rec)
                with m.If(rec.valid & rec.forward):
                    goto(f"{prefix}: reading the inbound entry")
                with m.Else():
                    goto(otherwise)

        def read_inbound_states(prefix, then):
            """READ the inbound entry (handle_f): its counters and key."""
            with state(f"{prefix}: reading the inbound entry"):
                issue(FlowOp.READ, handle=handle_f, then=f"{prefix}: inbound entry read")
            with state(f"{prefix}: inbound entry read"):
                await_rsp(f"{prefix}: taking the inbound entry")
            with state(f"{prefix}: taking the inbound entry"):
                # from the held answer: the loads are enabled by the state alone
                to_counters_in(counters_from(rsp))
                to_key_f(rsp.key)
                goto(then)

        def read_return_states(prefix, then, extra=()):
            """READ the return entry (conn_f.partner) and take the flow's record."""
            with state(f"{prefix}: reading the return entry"):
                issue(FlowOp.READ, handle=conn_f.partner, then=f"{prefix}: return entry read")
            with state(f"{prefix}: return entry read"):
                await_rsp(f"{prefix}: taking the return entry")
            with state(f"{prefix}: taking the return entry"):
                if prefix == "Dump":
                    to_reason(DeleteReason.NONE)
                to_counters_out(counters_from(rsp))
                to_vs_id(conn_f.vs_id)
                to_node_id(conn_f.node_id)
                to_created(conn_f.created)
                to_serial(conn_f.serial)
                to_tcp_state(Cat(conn_f.fin_in, conn_f.fin_out, conn_f.rst))
                m.d.comb += restart_figures.eq(1)
                m.d.sync += [handle_r.eq(conn_f.partner), *extra]
                goto(then)

        # "Idle" twice, alike: the states that go idle on a record's bits
        # (just out of the block RAM's output register) go to the second, a
        # flop of their two conditions alone (among the nine ways into
        # "Idle" they were 5 levels).
        for name in ("Idle", IDLE_AFTER_RECORD):
            with state(name):
                # Whatever comes: no record is read across "Idle" (its load's
                # flag the state's flop alone).
                to_rd_addr(self.tcp_event.payload.handle)
                with m.If(self.msg.valid):
                    goto("Dispatching")
                with m.Elif(self.query.valid):
                    goto("Building a QUERY")
                with m.Elif(self.tcp_event.valid):
                    to_handle_f(self.tcp_event.payload.handle)
                    to_tcp_state(Cat(self.tcp_event.payload.fin, self.tcp_event.payload.rst))
                    m.d.comb += self.tcp_event.ready.eq(1)
                    goto("Tracking: reading the record")
                with m.Else():
                    goto("Scanning")

        # ---- QUERY for a new flow -------------------------------------------------
        with state("Building a QUERY"):
            m.d.sync += query_in_flight.eq(1)
            q = self.query.payload.query
            again = self.query.payload.again
            to_serial(query_pick)
            with m.If(again):
                count("queries_rerouted")
            with m.Else():
                m.d.comb += [serial_wr.en.eq(1), serial_wr.addr.eq(self.query.payload.slot),
                             serial_wr.data.eq(query_serial)]
                # past 0xFFFF_FFFF the sum's carry makes the 0 a 1 (no compare)
                next_serial = query_serial + 1
                m.d.sync += query_serial.eq(next_serial[:32] | next_serial[32])
                count("queries_sent")
            to_key_f(q.key)
            compose(K_QUERY, SsmbType.QUERY)

        # ---- messages from the CS ---------------------------------------------------
        # The message's kind (one-hot) and whether its error is NONE, decoded
        # into registers every clock: the message is on the stream from the
        # clock "Idle" sees it, so they are ready in "Dispatching".
        # A bit a kind of _MSG_KINDS, and a last one for the others.
        msg_kind = Signal(len(_MSG_KINDS) + 1)
        msg_error_none = Signal()
        kind_bits = Cat(Cat(cur.msg_type == t for t in types).any() for types in _MSG_KINDS)
        # "none of them" from the type's two nibbles (as the NOR of the six
        # compares it was 5 levels)
        known_low = Cat(cur.msg_type[:4] == t for types in _MSG_KINDS for t in types).any()
        assert all(t < 16 for types in _MSG_KINDS for t in types)
        # The reason a DELETE, REAP or TIMEOUT gives, decoded with the kind:
        # "Dispatching" loads it whatever the kind (every path that sends a
        # reason writes its own after), its flag the state's flop alone (the
        # kind bits in the flags ran into reason, 5-6 levels).
        # The low nibble tells the three apart (a LUT a bit).
        assert len({t & 15 for t in (SsmbType.DELETE, SsmbType.TIMEOUT, SsmbType.REAP)}) == 3
        msg_reason = Signal(8)
        m.d.sync += msg_reason.eq(Mux(cur.msg_type[:4] == SsmbType.DELETE & 15, DeleteReason.CS_DELETE,
                                      Mux(cur.msg_type[:4] == SsmbType.TIMEOUT & 15, DeleteReason.TIMEOUT,
                                          DeleteReason.REAP)))
        m.d.sync += [msg_kind.eq(Cat(kind_bits, ~(known_low & (cur.msg_type[4:] == 0)))),
                     msg_error_none.eq(cur.header.error == ErrorCode.NONE)]
        # The message's kind as it stands on ``msg`` in the clock before
        # "Dispatching" (it stays there): key_f's selects are loaded from it,
        # a clock ahead.
        kind_now = [Cat(cur.msg_type == t for t in types).any() for types in _MSG_KINDS[:2]]

        # A REPLY/NEWFLOW stays on ``msg`` (held by the stream register in
        # front) until the flow is resolved: its actions, return key, serial,
        # virtual server and node are read from it where the states use them
        # (they were ~630 flops loaded in "Dispatching").  The other kinds
        # are taken in "Dispatching".
        reply = body(SsmbReply)  # REPLY and NEWFLOW share the layout
        flow = reply.flow
        xlate = reply.xlate
        flags = cur.header.flags
        translate_addr = (flags & Flag.TRANSLATE_ADDR) != 0
        translate_port = (flags & Flag.TRANSLATE_PORT) != 0
        offsets = (flags & Flag.ADD_TCP_OFFSETS) != 0
        node_ip = Mux(translate_addr, xlate.node_addr[:32], flow.dst_addr[:32])
        node_port = Mux(translate_port, xlate.node_port, flow.dst_port)

        def action_stmts(action, *, rewrite_source, egress_port, new_ip, new_port,
                         eth_dst, vlan, vlan_rewrite, seq_delta, ack_delta):
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
                action.vlan_rewrite.eq(vlan_rewrite),
                action.vlan_id.eq(vlan),
                action.add_offsets.eq(offsets),
                action.seq_delta.eq(seq_delta),
                action.ack_delta.eq(ack_delta),
            ]

        # The return deltas are sums (a carry chain): registered in
        # "Dispatching", not in front of the flow table's command register.
        return_seq_delta, return_ack_delta = Signal(32, name="return_seq_delta"), Signal(32, name="return_ack_delta")
        # So are the VLAN compares (vlan != 0, 12 bits: with the command's
        # direction mux, 5 levels into the flow table's command register).
        node_vlan_rewrite, client_vlan_rewrite = Signal(name="node_vlan_rewrite"), Signal(name="client_vlan_rewrite")
        m.d.comb += [
            *action_stmts(action_f, rewrite_source=0, egress_port=xlate.egress_port,
                          new_ip=xlate.node_addr[:32], new_port=xlate.node_port,
                          eth_dst=xlate.node_mac, vlan=xlate.node_vlan, vlan_rewrite=node_vlan_rewrite,
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
                          eth_dst=xlate.client_mac, vlan=xlate.client_vlan, vlan_rewrite=client_vlan_rewrite,
                          seq_delta=return_seq_delta, ack_delta=return_ack_delta),
            new_serial.eq(cur.header.serial),
            new_vs_id.eq(xlate.vs_id),
            new_node_id.eq(xlate.node_id),
            new_key.eq(Cat(flow.src_addr[:32], flow.dst_addr[:32], flow.src_port,
                           flow.dst_port, flow.protocol, Const(1, 1))),
        ]

        with state("Dispatching"):
            m.d.comb += self.msg.ready.eq(~msg_kind[0])
            m.d.sync += [return_seq_delta.eq(-xlate.ack_offset), return_ack_delta.eq(-xlate.seq_offset),
                         node_vlan_rewrite.eq(xlate.node_vlan != 0), client_vlan_rewrite.eq(xlate.client_vlan != 0)]
            def inbound(cls):
                # Each type has its own layout: the flow sits at a different place.
                flow = body(cls).flow
                return Cat(flow.src_addr[:32], flow.dst_addr[:32], flow.src_port, flow.dst_port,
                           flow.protocol, Const(1, 1))

            # Loaded whatever the kind (unused by RESET, DUMP and the session
            # engine's messages), so their enables are the state's flop alone;
            # the flow's place picked by the message's kind (below).
            to_serial(cur.header.serial)
            # the kind that picks it, a clock ahead (kind_now, above); the
            # state lasts a clock (every kind goes on, the last bit too), so
            # its flag ahead is the way in alone (with the state's own
            # leaving conditions, msg_kind's, it was 4 levels)
            entering = fsm.ahead(transient=True)
            for part, kind in ((SsmbReply, kind_now[0]), (SsmbDelete, kind_now[1]),
                               (SsmbReap, ~kind_now[0] & ~kind_now[1])):
                spread_key_f(inbound(part), ahead=entering & kind)

            m.d.sync += reply_ok.eq(msg_error_none)
            to_reason(msg_reason)
            # REAP/TIMEOUT's limit, loaded whatever the kind (used only on
            # their paths): its enable is the state's flop alone.
            m.d.sync += idle_limit_ms.eq(body(SsmbReap).idle_ms)
            with m.If(msg_kind[1]):  # DELETE: 0 (the flops' synchronous reset, not an AND a bit)
                m.d.sync += idle_limit_ms.eq(0)

            # One If a kind (msg_kind is one-hot, its last bit "none of
            # them"): a Switch is a priority chain, and the case of the last
            # kinds ran from "Dispatching"'s flop through the earlier bits
            # into reason, scan's enable and the states (5-6 levels).
            with m.If(msg_kind[0]):  # REPLY, NEWFLOW
                with m.If(msg_error_none):
                    goto("Inserting the inbound entry")
                with m.Else():
                    count("flows_refused")
                    goto("Telling the port")
            assert message_layout(SsmbReap) == message_layout(SsmbTimeout)  # REAP, TIMEOUT: one layout
            with m.If(msg_kind[1] | msg_kind[2] | msg_kind[3]):  # DELETE, REAP, TIMEOUT
                goto("Finding the flow")
            with m.If(msg_kind[4]):  # RESET
                count("resets")
                goto("Flushing the table")
            with m.If(msg_kind[5]):  # DUMP
                m.d.sync += [scan.eq(0), dump_count.eq(0), first_seen.eq(0)]
                goto("Dumping")
            with m.If(msg_kind[6]):
                goto("Idle")  # HELLO and AUTH are the session engine's

        # ---- install: inbound entry, return entry, release ----------------------------
        with state("Inserting the inbound entry"):
            issue(FlowOp.INSERT, then="Inbound inserted")
        with state("Inbound inserted"):
            await_rsp("Inbound insert answered")
        with state("Inbound insert answered"):
            # Decided a clock after the answer came (its valid and status
            # in the awaiting state were in front of wide enables).
            to_rd_addr(rsp.handle)  # the victim's record, for "Evicting"
            to_handle_f(rsp.handle)
            with m.If(rsp.status == InsertStatus.EVICTED):
                m.d.sync += after_eviction.eq(0)
                goto("Evicting: reading the victim's record")
            with m.Else():
                goto("Inserting the return entry")
        with state("Inserting the return entry"):
            # Never evicting the inbound entry just written: the return entry
            # alone would be a flow that cannot be reached.
            issue(FlowOp.INSERT, inbound=False, handle=handle_f, keep=True,
                  then="Return inserted")
        with state("Return inserted"):
            await_rsp("Return insert answered")
        with state("Return insert answered"):
            to_rd_addr(rsp.handle)
            m.d.sync += handle_r.eq(rsp.handle)
            with m.If(rsp.status == InsertStatus.EVICTED):
                m.d.sync += after_eviction.eq(1)
                goto("Evicting: reading the victim's record")
            with m.Else():
                goto("Linking the entries")
        def link(handle, forward, partner):
            """A new flow's record for one of its two entries."""
            write_record(handle, Cat(Const(1, 1), Const(forward, 1), partner, new_serial, new_vs_id, new_node_id,
                                     self.now, Const(0, 3)))

        with state("Linking the entries"):
            link(handle_f, 1, handle_r)
            goto("Linking the return entry")
        with state("Linking the return entry"):
            link(handle_r, 0, handle_f)
            count("flows_installed")
            m.d.sync += reply_ok.eq(1)
            goto("Telling the port")
        with state("Telling the port"):
            # The verdict on the REPLY/NEWFLOW: the port replicates an installed one.
            if self._install_verdicts:
                m.d.comb += [self.installed.valid.eq(1), self.installed.payload.eq(reply_ok)]
                with m.If(self.installed.ready):
                    goto("Resolving")
            else:
                goto("Resolving")
        with state("Resolving"):
            m.d.comb += self.resolve.valid.eq(1)
            with m.If(self.resolve.ready):
                m.d.comb += self.msg.ready.eq(1)  # done with the REPLY/NEWFLOW
                goto("Idle")

        # ---- overflow: the victim (in rsp) and its partner go, the CS hears of it -----
        reading_states("Evicting: reading the victim's record", "Evicting")
        with state("Evicting"):
            # conn[victim] still describes the victim: we have not linked yet
            # (read with the insert's answer).
            victim = rec
            to_conn_f(victim)
            to_reason(DeleteReason.OVERFLOW)
            to_tcp_state(Cat(victim.fin_in, victim.fin_out, victim.rst))
            count("evictions")
            # The victim's own counters and key came with the insert's answer
            # (held until the next command): taken as both directions' here,
            # where no command was offered since; the partner's answer then
            # replaces the other direction's (and the key, if the partner is
            # the inbound entry).
            to_counters_in(counters_from(rsp))
            to_counters_out(counters_from(rsp))
            to_key_f(rsp.key)
            with m.If(victim.valid):
                goto("Deleting the victim's partner")
            with m.Else():
                goto("After eviction")
        with state("Deleting the victim's partner"):
            # The partner's record is read meanwhile (in ``rec`` from the
            # third clock on, "Reporting the victim" at the earliest): when the
            # victim is a return entry, the flow's close flags are on its partner's.
            to_rd_addr(conn_f.partner)
            # The victim's serial from its record (the value read_return_states
            # loads: one source fewer for ``serial``).
            to_serial(conn_f.serial)
            issue(FlowOp.DELETE, handle=conn_f.partner, then="Victim's partner deleted")
        with state("Victim's partner deleted"):
            await_rsp("Victim's partner's answer")
        with state("Victim's partner's answer"):
            # from the held answer: the partner's counters (and key)
            # (conn_f, the victim's record, stays put from "Evicting" on:
            # the conditions a clock ahead are the same)
            with m.If(conn_f.forward):
                to_counters_out(counters_from(rsp), when=conn_f.forward)
            with m.Else():
                to_counters_in(counters_from(rsp), when=~conn_f.forward)
                to_key_f(rsp.key, when=~conn_f.forward)
            write_record(conn_f.partner, 0)
            goto("Reporting the victim")
        with state("Reporting the victim"):
            to_vs_id(conn_f.vs_id)
            to_node_id(conn_f.node_id)
            to_created(conn_f.created)
            # The partner's record, read in the states before (rec).
            with m.If(~conn_f.forward):
                to_tcp_state(Cat(rec.fin_in, rec.fin_out, rec.rst))
            count("deletes_sent")
            compose(K_FLOW, SsmbType.DELETE, then=THEN_AFTER_EVICTION)
        with state("After eviction"):
            # Back to installing the new flow (from key_r and the new_* copies).
            with m.If(after_eviction == 0):
                goto("Inserting the return entry")
            with m.Else():
                goto("Linking the entries")

        # ---- REAP / TIMEOUT / DELETE: find, then answer ---------------------------------
        with state("Finding the flow"):
            issue(FlowOp.FIND, then="Flow found")
        with state("Flow found"):
            await_rsp("Find answered")
        with state("Find answered"):
            to_rd_addr(rsp.handle)
            to_handle_f(rsp.handle)
            with m.If(rsp.found):
                goto("Found: reading its record")
            with m.Else():
                goto("Not found")
        with state("Not found"):
            # Unknown here: tell the CS it is gone (zero counters).
            to_counters_in(None)  # zero counts, last seen now
            to_counters_out(None)
            to_created(self.now)
            to_vs_id(0)
            to_node_id(0)
            to_tcp_state(0)
            goto("Reporting the deletion")
        with state("Found: reading its record"):
            to_counters_in(counters_from(rsp))
            goto("Found: reading its record, second clock")
        with state("Found: reading its record, second clock"):
            goto("Found: its record")
        with state("Found: its record"):
            to_conn_f(rec)
            goto("Found: reading the return entry")
        read_return_states("Found", then="Deciding")
        with state("Deciding"):
            # Compared in milliseconds: a constant multiply, no divider.
            with m.If(~settled):
                pass  # the figures are still being computed
            with m.Elif(delete_asked):
                goto("Deleting the inbound entry")
            with m.Else():
                goto("Reporting it alive")
        with state("Reporting it alive"):
            to_reason(DeleteReason.NONE)
            count("stats_sent")
            compose(K_FLOW, SsmbType.STATS, error=ErrorCode.CONNALIVE)
        with state("Deleting the inbound entry"):
            issue(FlowOp.DELETE, handle=handle_f, then="Inbound deleted")
        with state("Inbound deleted"):
            await_rsp("Deleting the return entry")
        with state("Deleting the return entry"):
            issue(FlowOp.DELETE, handle=handle_r, then="Return deleted")
        with state("Return deleted"):
            await_rsp()
            with m.If(self.rsp.valid):
                write_record(handle_f, 0)
                goto("Forgetting the return entry")
        with state("Forgetting the return entry"):
            write_record(handle_r, 0)
            goto("Reporting the deletion")
        with state("Reporting the deletion"):
            count("deletes_sent")
            compose(K_FLOW, SsmbType.DELETE)

        # ---- TCP close tracking ---------------------------------------------------------
        reading_states("Tracking: reading the record", "Tracking TCP close")
        with state("Tracking TCP close"):
            # Flags live on the inbound entry's record.
            record = rec
            to_conn_f(record)
            # The partner's address and handle loaded whatever the record
            # says (handle_f kept for an inbound record, which "Marking
            # close" writes): the record's bits were in front of their
            # registers' enables, 6 levels from the block RAM's output.  The
            # address is loaded after the other writes (below, the last mux
            # in front of its flops).
            to_handle_f(Mux(record.forward, handle_f, record.partner))
            with m.If(~record.valid):
                goto(IDLE_AFTER_RECORD)
            with m.Elif(record.forward):
                goto("Marking close")
            with m.Else():
                goto("Reading the inbound record")
        reading_states("Reading the inbound record", "Inbound record read")
        with state("Inbound record read"):
            to_conn_f(rec)
            goto("Marking close from the node")
        def marking_close(name, fin):
            """The state that records the packet's FIN (on the record's ``fin``
            side) and RST: tcp_state bit 0 FIN, bit 1 RST of the packet seen."""
            with state(name):
                marked = Signal.like(conn_f, name=f"marked_{fin}")
                m.d.comb += [marked.eq(conn_f), getattr(marked, fin).eq(getattr(conn_f, fin) | tcp_state[0]),
                             marked.rst.eq(conn_f.rst | tcp_state[1])]
                write_record(handle_f, marked)
                goto("Idle")

        marking_close("Marking close from the node", "fin_out")
        marking_close("Marking close", "fin_in")

        # ---- idle scanner: one inbound entry per visit -----------------------------------
        with state("Scanning"):
            to_rd_addr(scan)
            to_handle_f(scan)
            m.d.sync += scan.eq(scan + 1)
            goto("Scanner: reading the record")
        read_record_states("Scanner", otherwise=IDLE_AFTER_RECORD)
        read_inbound_states("Scanner", then="Scanner: reading the return entry")
        read_return_states("Scanner", then="Scanner deciding")
        with state("Scanner deciding"):
            with m.If(~settled):
                pass  # the figures are still being computed
            with m.Elif(scan_delete):
                to_reason(scan_reason)
                with m.If(close_lingered):
                    count("close_deletes")
                with m.Else():
                    count("idle_deletes")
                goto("Deleting the inbound entry")
            with m.Else():
                goto("Idle")

        # ---- RESET ---------------------------------------------------------------------
        with state("Flushing the table"):
            m.d.comb += self.flush_pending.eq(1)
            issue(FlowOp.FLUSH, then="Table flushed")
        with state("Table flushed"):
            await_rsp()
            with m.If(self.rsp.valid):
                m.d.sync += [flush_sweep.eq(0), sweep_last.eq(g.entries == 1)]
                goto("Forgetting every flow")
        with state("Forgetting every flow"):
            write_record(flush_sweep[:g.handle_bits], 0)
            m.d.sync += [flush_sweep.eq(flush_sweep + 1), sweep_last.eq(flush_sweep == g.entries - 2)]
            with m.If(sweep_last):
                goto("Table forgotten")
        with state("Table forgotten"):
            compose(K_SHORT, SsmbType.RESET)

        # ---- DUMP ------------------------------------------------------------------------
        with state("Dumping"):
            to_rd_addr(scan)
            to_handle_f(scan)
            m.d.sync += scan.eq(scan + 1)
            with m.If(dump_wrapped):
                goto("Dump done")
            with m.Else():
                goto("Dump: reading the record")
            m.d.sync += first_seen.eq(1)
        read_record_states("Dump", otherwise="Dumping")
        read_inbound_states("Dump", then="Dump: reading the return entry")
        read_return_states("Dump", then="Dump entry",
                           extra=(dump_count.eq(dump_count + 1),))
        with state("Dump done"):
            compose(K_SHORT, SsmbType.DUMP, end=1)
        with state("Dump entry"):
            count("stats_sent")
            compose(K_FLOW, SsmbType.STATS, then=THEN_DUMPING)

        close_composers()
        # "Composing" a clock, then settling: the state entered from the seven
        # composing states has their OR alone in front of its flop (with
        # its stay-until-load_out, 4 LUTs chained into fsm_in_composing).
        with state("Composing"):
            goto("Composing, settling")
        with state("Composing, settling"):
            with m.If(load_out):
                goto("Sending")
        with state("Sending"):
            m.d.comb += self.core_msg.valid.eq(1)
            with m.If(self.core_msg.ready):
                with m.Switch(send_then):
                    with m.Case(THEN_AFTER_EVICTION):
                        goto("After eviction")
                    with m.Case(THEN_DUMPING):
                        goto("Dumping")
                    with m.Default():
                        goto("Idle")
        fsm.close()
        for load in loads:
            load.close()
        # After the loads: the record (a level already, the block RAM's
        # output register) a mux from rd_addr's flops, not an input of its
        # AND-OR (5 levels).
        with m.If(fsm.ongoing("Tracking TCP close")):
            m.d.sync += rd_addr.eq(rec.partner)
        return m
