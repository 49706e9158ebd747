# Ref: the patent's figure 17 (a new flow: QUERY, buffer its packets until the
#      REPLY) and "TCP Connection Open, Non-Application Proxy DFS-Assisted
#      Virtual Servers"; docs/dfs.md (miss path).
"""Miss path: pending flows and their held frames.

The first frame of a new flow to a virtual server takes a *slot*: the slot
remembers the flow key, a QUERY request leaves on ``query``, and the frame is
stored in the slot's own queue.  Later frames of the same flow (same key)
join that queue.  ``resolve`` (from the REPLY) either *releases* the queue --
frames leave on ``release`` in arrival order, for the DFS to send through the
normal lookup path, where the now-installed flow rewrites them -- or *drops*
it (NOTAVAIL, CONNLIMIT, UNKNOWN, or no REPLY within ``timeout_cycles``).

Ordering: while a slot releases, the decision stage asks ``probe`` for every
frame's key and sends frames of a releasing flow here too, even when the flow
table already hits, so no frame overtakes the held ones; released frames
carry ``release_slot`` and are forwarded normally.  The slot is freed when
its queue is empty.

Bounded, and never in the way of established flows: every slot owns
``slot_bytes`` of one memory (9-bit words: a byte and its ``last`` flag, the
ECP5 block RAM's native 2048x9 shape) and at most ``frames_per_slot``
frames.  When no slot is free the new flow's frame is dropped
(``dropped_no_slot``); when a slot's queue is full the frame is dropped
(``dropped_queue_full``); a SYN flood therefore costs slots and queue space,
nothing on the fast path.
"""

from amaranth import Array, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..packet import packet_signature

__all__ = ["MissPath", "SlotState"]


class SlotState:
    FREE = 0
    WAITING = 1  #: QUERY sent, holding frames
    RELEASING = 2  #: REPLY accepted: frames leave in order
    DROPPING = 3  #: refused or timed out: frames are discarded


_COUNTERS = (
    "queries",
    "frames_held",
    "frames_released",
    "frames_dropped_refused",
    "dropped_no_slot",
    "dropped_queue_full",
    "timeouts",
    "resolve_unmatched",
    "dropped_no_cs",
    "asked_again",
)


class MissPath(wiring.Component):
    def __init__(
        self,
        *,
        key_width: int,
        query_shape,
        slots: int = 8,
        slot_bytes: int = 2048,
        frames_per_slot: int = 8,
        timeout_cycles: int = 125_000_000,
        cs_slots: int | None = None,
    ):
        if not isinstance(key_width, int) or key_width < 1:
            raise ValueError(f"key_width must be a positive integer, not {key_width!r}")
        if not isinstance(slots, int) or not 1 <= slots <= 64:
            raise ValueError(f"slots must be an integer from 1 to 64, not {slots!r}")
        if not isinstance(slot_bytes, int) or slot_bytes < 64 or slot_bytes & (slot_bytes - 1):
            raise ValueError(f"slot_bytes must be a power of two of at least 64, not {slot_bytes!r}")
        if not isinstance(frames_per_slot, int) or not 1 <= frames_per_slot <= 255:
            raise ValueError(f"frames_per_slot must be an integer from 1 to 255, not {frames_per_slot!r}")
        if not isinstance(timeout_cycles, int) or not 1 <= timeout_cycles < 1 << 40:
            raise ValueError(f"timeout_cycles must be a positive integer below 2**40, not {timeout_cycles!r}")
        if cs_slots is not None and (not isinstance(cs_slots, int) or not 1 <= cs_slots <= 8):
            raise ValueError(f"cs_slots must be None or an integer from 1 to 8, not {cs_slots!r}")
        self._cs_slots = cs_slots
        self._key_width = key_width
        self._slots = slots
        self._slot_bytes = slot_bytes
        self._frames_per_slot = frames_per_slot
        self._timeout = timeout_cycles
        self._query_shape = query_shape
        slot_shape = range(slots)
        super().__init__(
            {
                # decision stage: is this key pending, and how?
                "probe_key": In(key_width),
                "probe_hit": Out(1),
                "probe_slot": Out(slot_shape),
                "probe_state": Out(2),
                # frames to hold: one `hold` record per frame, taken with its first byte
                "hold": In(stream.Signature(data.StructLayout({"key": key_width, "query": query_shape}))),
                "sink": In(packet_signature(8)),
                # again: this slot was asked before (its QUERY keeps its serial)
                "query": Out(stream.Signature(data.StructLayout({"slot": slot_shape, "again": 1,
                                                                 "query": query_shape}))),
                # from the REPLY handler: release (accept) or drop the flow's frames
                "resolve": In(stream.Signature(data.StructLayout({"key": key_width, "accept": 1}))),
                "release": Out(packet_signature(8)),
                "release_slot": Out(slot_shape),
                "flush": In(1),  # RESET: drop every pending flow
                # With cs_slots (docs/redundancy.md, pending flows across a
                # takeover): the message port's active set and authenticated
                # slots.  No CS at all: a new flow is dropped (dropped_no_cs);
                # CSs but none active: it waits unasked; a member leaving the
                # active set: the QUERYs that went out while it was in are asked again.
                # asked: the CS a slot's QUERY went to (sent = 0: to nobody)
                **({"active_set": In(cs_slots), "authenticated": In(cs_slots),
                    "asked": In(stream.Signature(data.StructLayout({"slot": slot_shape, "cs": range(max(cs_slots, 2)),
                                                                    "sent": 1})))} if cs_slots else {}),
                **{name: Out(32) for name in _COUNTERS},
            }
        )

    def elaborate(self, platform):
        m = Module()
        n, depth = self._slots, self._slot_bytes
        ptr_shape = unsigned((depth - 1).bit_length() + 1)  # one extra bit tells full from empty

        state = Array(Signal(2, name=f"state{i}") for i in range(n))
        keys = Array(Signal(self._key_width, name=f"key{i}") for i in range(n))
        wr_ptr = Array(Signal(ptr_shape, name=f"wr_ptr{i}") for i in range(n))
        rd_ptr = Array(Signal(ptr_shape, name=f"rd_ptr{i}") for i in range(n))
        frames = Array(Signal(8, name=f"frames{i}") for i in range(n))
        age = Array(Signal(range(self._timeout + 1), name=f"age{i}") for i in range(n))

        m.submodules.store = store = memory.Memory(shape=9, depth=n * depth, init=[])
        wr = store.write_port()
        rd = store.read_port()
        # Each slot's QUERY, kept while the slot is pending: the QUERYs of
        # several new flows wait here (in arrival order, ``asks``) while the
        # flow controller is still sending an earlier one, so a new flow is
        # never refused for want of a QUERY register.
        m.submodules.queries = queries = memory.Memory(shape=self._query_shape, depth=n, init=[])
        q_wr = queries.write_port()
        q_rd = queries.read_port()
        m.submodules.asks = asks = fifo.SyncFIFOBuffered(width=max(1, (n - 1).bit_length()), depth=n)
        ask = Signal(n)  # the slot's QUERY is still to be handed to the flow controller

        def count(name, amount=1):
            counter = getattr(self, name)
            m.d.sync += counter.eq(counter + amount)

        # -- probe: the decision stage's question about a key (combinational).
        # A dropping slot's key is not pending any more: its frames go, and a
        # new frame of the flow starts over with a new QUERY.
        for i in reversed(range(n)):
            live = (state[i] == SlotState.WAITING) | (state[i] == SlotState.RELEASING)
            with m.If(live & (keys[i] == self.probe_key)):
                m.d.comb += [self.probe_hit.eq(1), self.probe_slot.eq(i), self.probe_state.eq(state[i])]

        # -- ageing: a WAITING slot without a REPLY for timeout_cycles drops its frames
        # (Each per-slot register is assigned in one flat place from 1-bit
        # conditions: assignments through an Array inside the FSM's branches
        # become a mux per branch level per slot.)
        alloc = Signal()  # the writer takes slot free_slot for a new flow
        match_hit, match_slot = Signal(), Signal(range(n))
        free_hit, free_slot = Signal(), Signal(range(n))
        for i in range(n):
            with m.If(alloc & (free_slot == i)):
                m.d.sync += age[i].eq(0)
            with m.Elif(state[i] == SlotState.WAITING):
                with m.If(age[i] == self._timeout):
                    m.d.sync += state[i].eq(SlotState.DROPPING)
                    count("timeouts")
                with m.Else():
                    m.d.sync += age[i].eq(age[i] + 1)

        # -- writer: frames into their slot's queue
        hold = self.hold.payload
        for i in reversed(range(n)):
            with m.If((state[i] != SlotState.FREE) & (state[i] != SlotState.DROPPING) & (keys[i] == hold.key)):
                m.d.comb += [match_hit.eq(1), match_slot.eq(i)]
            with m.If(state[i] == SlotState.FREE):
                m.d.comb += [free_hit.eq(1), free_slot.eq(i)]
        cs_present = Signal(init=1)  # some CS is authenticated
        active = Signal(init=1)  # the active set is not empty
        if self._cs_slots:
            m.d.comb += [cs_present.eq(self.authenticated != 0), active.eq(self.active_set != 0)]
        w_slot = Signal(range(n))
        slot_sel = Signal(range(n))  # the slot a held frame goes to
        m.d.comb += slot_sel.eq(Mux(match_hit, match_slot, free_slot))
        w_ptr = Signal(ptr_shape)
        writing = Signal()  # the frame on sink is being stored (else discarded)
        storing = Signal()  # the writer is inside a frame that it keeps
        frame_stored = Signal()  # a frame's last byte went in this cycle (slot w_slot)
        frame_taken = Signal()  # a frame's last byte left this cycle (slot r_slot)

        with m.FSM(name="writer"):
            with m.State("Waiting for a frame"):
                with m.If(self.hold.valid & self.sink.valid & ~self.flush):
                    m.d.comb += self.hold.ready.eq(1)
                    with m.If(match_hit & (frames[match_slot] >= self._frames_per_slot)):
                        count("dropped_queue_full")
                        m.d.sync += writing.eq(0)
                        m.next = "Discarding"
                    with m.Elif(match_hit):
                        m.d.sync += [w_slot.eq(slot_sel), w_ptr.eq(wr_ptr[slot_sel]), writing.eq(1)]
                        m.next = "Storing"
                    with m.Elif(~cs_present):
                        m.d.sync += writing.eq(0)
                        count("dropped_no_cs")
                        m.next = "Discarding"
                    with m.Elif(free_hit & asks.w_rdy):
                        m.d.comb += alloc.eq(1)
                        m.d.sync += [w_slot.eq(slot_sel), w_ptr.eq(wr_ptr[slot_sel]), writing.eq(1)]
                        m.next = "Storing"
                    with m.Else():
                        m.d.sync += writing.eq(0)
                        count("dropped_no_slot")
                        m.next = "Discarding"

            with m.State("Storing"):
                # Bytes go in at w_ptr; the frame counts only when its last byte fits.
                m.d.comb += [self.sink.ready.eq(1), storing.eq(writing)]
                with m.If(self.sink.valid):
                    full = (w_ptr - rd_ptr[w_slot])[: ptr_shape.width] == depth
                    with m.If(~writing | full):
                        with m.If(writing):
                            count("dropped_queue_full")
                        m.d.sync += writing.eq(0)
                        with m.If(~self.sink.payload.last):
                            m.next = "Discarding"
                        with m.Else():
                            m.next = "Waiting for a frame"
                    with m.Else():
                        m.d.comb += [
                            wr.en.eq(1),
                            wr.addr.eq(w_slot * depth + w_ptr[: ptr_shape.width - 1]),
                            wr.data.eq(self.sink.payload.data | self.sink.payload.last << 8),
                        ]
                        m.d.sync += w_ptr.eq(w_ptr + 1)
                        with m.If(self.sink.payload.last):
                            m.d.comb += frame_stored.eq(1)
                            count("frames_held")
                            m.next = "Waiting for a frame"

            with m.State("Discarding"):
                m.d.comb += self.sink.ready.eq(1)
                with m.If(self.sink.valid & self.sink.payload.last):
                    m.next = "Waiting for a frame"

        for i in range(n):
            with m.If(alloc & (free_slot == i)):
                m.d.sync += [state[i].eq(SlotState.WAITING), keys[i].eq(hold.key)]
            with m.If(frame_stored & (w_slot == i)):
                m.d.sync += wr_ptr[i].eq(w_ptr + 1)

        # -- QUERYs: a new flow's is stored with its slot and the slot queued
        # in ``asks``; the head of the queue is read out and offered on
        # ``query`` (held, stable, until taken).  A slot resolved before its
        # QUERY left is skipped (its ``ask`` bit is clear).
        # A slot is queued when it is allocated (if a CS is active) or, one
        # a clock, when it must be asked (again): see the redundancy watch below.
        reask_hit, reask = Signal(), Signal(range(n))
        m.d.comb += [
            q_wr.en.eq(alloc),
            q_wr.addr.eq(free_slot),
            q_wr.data.eq(hold.query),
            asks.w_en.eq((alloc & active) | (~alloc & reask_hit)),
            asks.w_data.eq(Mux(alloc, free_slot, reask)),
        ]
        q_valid = Signal()
        q_taken = Signal()
        m.d.comb += [
            q_taken.eq(q_valid & self.query.ready),
            self.query.valid.eq(q_valid),
            self.query.payload.query.eq(q_rd.data),
            q_rd.en.eq(0),
        ]
        asked_before = Signal(n)  # a QUERY (serial) went out for the slot's flow
        with m.If(q_taken):
            m.d.sync += q_valid.eq(0)
            with m.If(self.query.payload.again):
                count("asked_again")
            with m.Else():
                count("queries")
        head = asks.r_data
        with m.If(asks.r_rdy & (~q_valid | q_taken) & ~self.flush):
            m.d.comb += asks.r_en.eq(1)
            with m.If(ask.bit_select(head, 1)):
                m.d.comb += [q_rd.en.eq(1), q_rd.addr.eq(head)]
                m.d.sync += [q_valid.eq(1), self.query.payload.slot.eq(head),
                             self.query.payload.again.eq(asked_before.bit_select(head, 1))]
        ask_set = Signal(n)
        ask_clear = Signal(n)
        with m.If(alloc & active):
            m.d.comb += ask_set.eq((Const(1, n) << free_slot)[:n])
        with m.Elif(~alloc & reask_hit):
            m.d.comb += ask_set.eq((Const(1, n) << reask)[:n])
        with m.If(asks.r_en):
            m.d.comb += ask_clear.eq((Const(1, n) << head)[:n])
        pending_now = Signal(n)  # slots still waiting for a REPLY (others need no QUERY)
        for i in range(n):
            m.d.comb += pending_now[i].eq(state[i] == SlotState.WAITING)
        m.d.sync += ask.eq((ask & ~ask_clear & pending_now) | ask_set)

        # -- redundancy watch: per slot the CS its QUERY went to (``asked_in``,
        # one bit; 0: not asked yet).  Handed to the flow controller, a slot
        # first takes the whole active set; the message port then says which
        # member it sent the QUERY to (``asked``).  When that CS leaves the
        # set, the slot is marked ``stale``; a waiting slot that is stale or
        # was never asked is queued again (one a clock) as soon as the set is
        # not empty, and the message port's CRC split picks its new owner.
        m.d.comb += asked_before.eq(0)
        if self._cs_slots:
            k = self._cs_slots
            asked_in = Array(Signal(k, name=f"asked_in{i}") for i in range(n))
            stale = Signal(n)
            previous_set = Signal(k)
            m.d.sync += previous_set.eq(self.active_set)
            m.d.comb += self.asked.ready.eq(1)
            left = Signal(k)
            m.d.comb += left.eq(previous_set & ~self.active_set)
            for i in range(n):
                m.d.comb += asked_before[i].eq(asked_in[i] != 0)
            presenting = Signal(n)
            with m.If(q_valid):
                m.d.comb += presenting.eq((Const(1, n) << self.query.payload.slot)[:n])
            needs = Signal(n)
            for i in range(n):
                m.d.comb += needs[i].eq(pending_now[i] & ~ask[i] & ~presenting[i]
                                        & (stale[i] | (asked_in[i] == 0)))
            for i in reversed(range(n)):
                with m.If(needs[i]):
                    m.d.comb += [reask_hit.eq(active & asks.w_rdy & ~self.flush), reask.eq(i)]
            stale_next = Signal(n)
            for i in range(n):
                with m.If(alloc & (free_slot == i)):
                    m.d.sync += asked_in[i].eq(0)
                with m.Elif(q_taken & (self.query.payload.slot == i)):
                    m.d.sync += asked_in[i].eq(self.active_set)
                with m.Elif(self.asked.valid & (self.asked.payload.slot == i)):
                    m.d.sync += asked_in[i].eq(Mux(self.asked.payload.sent,
                                                   (Const(1, k) << self.asked.payload.cs)[:k], 0))
                m.d.comb += stale_next[i].eq(
                    Mux((alloc & (free_slot == i)) | (~alloc & reask_hit & (reask == i)), 0,
                        stale[i] | ((asked_in[i] & left) != 0)))
            m.d.sync += stale.eq(stale_next)

        # -- resolve: REPLY accepted or refused
        m.d.comb += self.resolve.ready.eq(1)
        with m.If(self.resolve.valid):
            resolved = Signal()
            for i in range(n):
                with m.If((state[i] == SlotState.WAITING) & (keys[i] == self.resolve.payload.key)):
                    m.d.comb += resolved.eq(1)
                    m.d.sync += state[i].eq(Mux(self.resolve.payload.accept, SlotState.RELEASING, SlotState.DROPPING))
            with m.If(~resolved):
                count("resolve_unmatched")

        # -- reader: one releasing slot at a time, frame by frame
        r_slot = Signal(range(n))
        r_busy = Signal()
        out_valid = Signal()
        out_first = Signal(init=1)
        pick_hit, pick = Signal(), Signal(range(n))
        for i in reversed(range(n)):
            with m.If(state[i] == SlotState.RELEASING):
                m.d.comb += [pick_hit.eq(1), pick.eq(i)]
        with m.If(~r_busy & pick_hit):
            m.d.sync += [r_busy.eq(1), r_slot.eq(pick)]

        # A dropping slot empties at once (its stored frames are forgotten),
        # so a flood of refused flows frees its slots quickly.  One per clock,
        # and not while the writer is inside a frame of that slot.
        drop_hit, drop = Signal(), Signal(range(n))
        for i in reversed(range(n)):
            with m.If((state[i] == SlotState.DROPPING) & ~(storing & (w_slot == i))):
                m.d.comb += [drop_hit.eq(1), drop.eq(i)]

        available = Signal()
        r_ptr = Signal(ptr_shape)
        m.d.comb += [r_ptr.eq(rd_ptr[r_slot]), available.eq(r_busy & (r_ptr != wr_ptr[r_slot]))]
        word = rd.data
        m.d.comb += [
            self.release.valid.eq(out_valid),
            self.release.payload.data.eq(word[:8]),
            self.release.payload.last.eq(word[8]),
            self.release.payload.first.eq(out_first),
            self.release_slot.eq(r_slot),
        ]
        consumed = Signal()
        m.d.comb += consumed.eq(out_valid & self.release.ready)
        advance = Signal()
        m.d.comb += advance.eq(available & (~out_valid | consumed))
        with m.If(consumed):
            m.d.sync += out_first.eq(word[8])
            with m.If(word[8]):
                m.d.comb += frame_taken.eq(1)
                count("frames_released")
        with m.If(advance):
            m.d.comb += [rd.en.eq(1), rd.addr.eq(r_slot * depth + r_ptr[: ptr_shape.width - 1])]
            m.d.sync += out_valid.eq(1)
        with m.Elif(consumed):
            m.d.sync += out_valid.eq(0)

        # Frames per slot: one writer and one reader may finish a frame of the
        # same slot in the same clock.
        for i in range(n):
            inc = frame_stored & (w_slot == i)
            dec = frame_taken & (r_slot == i)
            with m.If(advance & (r_slot == i)):
                m.d.sync += rd_ptr[i].eq(r_ptr + 1)
            with m.If(drop_hit & (drop == i)):
                m.d.sync += [frames[i].eq(0), rd_ptr[i].eq(wr_ptr[i]), state[i].eq(SlotState.FREE)]
            with m.Elif(inc & ~dec):
                m.d.sync += frames[i].eq(frames[i] + 1)
            with m.Elif(dec & ~inc):
                m.d.sync += frames[i].eq(frames[i] - 1)

        with m.If(drop_hit):
            count("frames_dropped_refused", frames[drop])

        # The slot is done when its queue is empty and no frame is being stored in it.
        with m.If(r_busy & ~available & ~out_valid & ~(storing & (w_slot == r_slot))):
            m.d.sync += [r_busy.eq(0), state[r_slot].eq(SlotState.FREE)]

        # -- RESET: every pending flow goes (its frames with it)
        with m.If(self.flush):
            for i in range(n):
                m.d.sync += [state[i].eq(SlotState.FREE), rd_ptr[i].eq(wr_ptr[i]), frames[i].eq(0)]
            m.d.sync += [r_busy.eq(0), out_valid.eq(0), q_valid.eq(0), ask.eq(0), out_first.eq(1), writing.eq(0)]
            m.d.comb += asks.r_en.eq(asks.r_rdy)  # the queue empties, a slot a clock (their ask bits are clear)
        return m
