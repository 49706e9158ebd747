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
nothing on the fast path.  A slot holds the first packets of a flow (a SYN
is 60-78 bytes): the defaults, 8 frames and 256 bytes a slot (8 slots: one
block RAM), are the reference model's ``HELD_PER_FLOW`` and
``HELD_BYTES_PER_FLOW``.  A first frame too big for its slot is dropped,
the flow is asked for all the same (so is the model's).

Timing (docs/boards.md, "The DFS on the boards"): the slots' keys are in
LUT RAM, read one slot a clock round robin and compared with two keys,
registered before, in the middle and after: the probe's, so
``probe_hit``/``probe_slot``/``probe_state`` (flops) answer :attr:`probe_latency`
(``slots + 3``) clocks after ``probe_key`` (the forwarder holds its key
longer: it looks at the answer after the flow table's), and a resolve's or
the writer's ``hold`` record's, a round each: a resolve acts
:attr:`resolve_latency` (``slots + 3``) clocks after it is taken
(``resolve.ready`` is low meanwhile), and a held frame waits as long for its
slot.  Released bytes are read from the block RAM (through its own output
register, hdl/ram) into a small FIFO, at a byte a clock, and leave from it:
nothing but flops drives the RAM.  Pending slots age on a shared
prescaler (timeout_cycles / 8): a slot times out between ``timeout_cycles``
and a quarter more.  A slot's frame count follows its queue a clock late,
the ``timeouts`` counter two clocks.
"""

from amaranth import Array, Cat, Const, Module, Mux, ResetInserter, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from twinplane.model.dfs import HELD_BYTES_PER_FLOW, HELD_PER_FLOW

from ..lut4 import builds_lut4s, lut4, lut_and, lut_and_or
from ..onehot import OneHotFSM, flop_copy, onehot_mux
from ..packet import packet_signature
from ..ram.block_ram import BlockRAM
from ..stream.ahead import equal_ahead

__all__ = ["MissPath", "SlotState"]

# The slots' keys are LUT RAM banks of at most this many bits, each with its
# own copy of the read address.
_KEY_BANK_BITS = 32

# The released bytes' FIFO: it has a place for every read from its issue
# until a clock after the consumer takes it (a byte a clock needs 7).
_RELEASE_FIFO_DEPTH = 8


class SlotState:
    FREE = 0
    WAITING = 1  #: QUERY sent, holding frames
    RELEASING = 2  #: REPLY accepted: frames leave in order
    DROPPING = 3  #: refused or timed out: frames are discarded


#: The QUERY memory's depth: the DP16KD's 36-bit mode (hdl/ram), so that
#: BlockRAM builds it from EBR on ECP5 rather than leaving it to LUT RAM.
_QUERY_RAM_DEPTH = 512

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


def _lut4(m, name, table, *inputs):
    """``table`` of four 0/1 ints as an ECP5 LUT4 instance (:func:`~twinplane.hdl.lut4.lut4`);
    an int input is a constant."""
    return lut4(m, name, [Const(x, 1) if isinstance(x, int) else x for x in inputs], table, instance=True)


def _and_level(m, bits, name):
    """One level of an AND tree of LUT4 instances: ``bits`` by fours (one alone passes)."""
    return [bits[g] if g + 1 == len(bits) else
            _lut4(m, f"{name}_{g // 4}", lambda a, b, c, d: a and b and c and d,
                  *(bits[g:g + 4] + [1] * (4 - len(bits[g:g + 4]))))
            for g in range(0, len(bits), 4)]


def _room(m, w, r, reading, name, *, lut4):
    """Whether a queue has room for a byte: its write pointer ``w``, its read
    pointer ``r`` if ``reading`` else 0 (full: the two differ in their top
    bit alone).  With ``lut4``, LUT4 instances in 3 levels: pairs of bits
    compared, their AND but for its last level, the pointer's own compare
    with a full queue's (``reading`` low), and a LUT choosing between them."""
    top = len(w) - 1
    if not lut4:
        return (w ^ Mux(reading, r, 0)) != (1 << top)

    def target(i):
        return int(i == top)

    pairs = [_lut4(m, f"{name}_pair{i}",
                   lambda a, b, c, d, i=i: (a ^ b) == target(i) and (i + 1 > top or (c ^ d) == target(i + 1)),
                   w[i], r[i], *((w[i + 1], r[i + 1]) if i < top else (0, 0)))
             for i in range(0, top + 1, 2)]
    level = 0
    while len(pairs) > 2:
        pairs, level = _and_level(m, pairs, f"{name}_and{level}"), level + 1
    x, y = (pairs + [1])[:2]

    def own(i):
        return (lambda a, b, c, d: all(v == target(i + k) for k, v in enumerate((a, b, c, d)) if i + k <= top))

    alone = lut_and(m, f"{name}_own_and", [_lut4(m, f"{name}_own{i}", own(i), *([w[j] for j in range(i, min(i + 4, top + 1))]
                                                          + [0] * (i + 4 - min(i + 4, top + 1))))
                     for i in range(0, top + 1, 4)], instance=True)
    return _lut4(m, f"{name}_room", lambda a, b, c, d: not ((b and c) if a else d), reading, x, y, alone)


def _byte_compare(m, x, y, name, *, lut4):
    """Per byte of ``x`` and ``y``, whether they are equal; with ``lut4``,
    a LUT4 instance a pair of bits (two of each), then their AND (a tree)."""
    pieces = range(0, len(x), 8)
    if not lut4:
        return Cat(x[j:j + 8] == y[j:j + 8] for j in pieces)

    def pair(i, end):
        return (x[i], y[i], *((x[i + 1], y[i + 1]) if i + 1 < end else (0, 0)))

    return Cat(lut_and(m, f"{name}_and{j}", [_lut4(m, f"{name}_eq{i}", lambda a, b, c, d: a == b and c == d, *pair(i, min(j + 8, len(x))))
                        for i in range(j, min(j + 8, len(x)), 2)], instance=True)
               for j in pieces)


class MissPath(wiring.Component):
    def __init__(
        self,
        *,
        key_width: int,
        query_shape,
        slots: int = 8,
        slot_bytes: int = HELD_BYTES_PER_FLOW,
        frames_per_slot: int = HELD_PER_FLOW,
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
        #: Clocks from a ``probe_key`` to its answer (see "Timing").
        self.probe_latency = slots + 3
        #: Clocks from a resolve's transfer to its action.
        self.resolve_latency = slots + 3
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
                # takeover): the message port's active set and the slots of
                # CSs present (authenticated, or re-authenticating to take
                # over).  No CS at all: a new flow is dropped (dropped_no_cs);
                # CSs but none active: it waits unasked; a member leaving the
                # active set: the QUERYs that went out while it was in are asked again.
                # asked: the CS a slot's QUERY went to (sent = 0: to nobody)
                **({"active_set": In(cs_slots), "cs_present": In(cs_slots),
                    "asked": In(stream.Signature(data.StructLayout({"slot": slot_shape, "cs": range(max(cs_slots, 2)),
                                                                    "sent": 1})))} if cs_slots else {}),
                **{name: Out(32) for name in _COUNTERS},
            }
        )

    def elaborate(self, platform):
        m = Module()
        n, depth = self._slots, self._slot_bytes
        ptr_shape = unsigned((depth - 1).bit_length() + 1)  # one extra bit tells full from empty
        low = ptr_shape.width - 1

        # The slots' keys in LUT RAM (async read), read one slot a clock
        # (below), not n key registers compared in parallel.  In banks of
        # up to ``_KEY_BANK_BITS``, each read at its own copy of the slot
        # counter (below): one counter's net to every bank's cells ran
        # across the die (``sc`` 4.7 ns into the keys, 8.29 ns to
        # ``p_piece`` on the 25F, syn_c seed 3).
        key_banks = [(lo, min(lo + _KEY_BANK_BITS, self._key_width))
                     for lo in range(0, self._key_width, _KEY_BANK_BITS)]
        key_wr, key_rd = [], []
        for b, (lo, hi) in enumerate(key_banks):
            m.submodules[f"keys{b}"] = keys = Memory(shape=unsigned(hi - lo), depth=n, init=[])
            key_wr.append(keys.write_port())
            key_rd.append(keys.read_port(domain="comb"))
        wr_ptr = Array(Signal(ptr_shape, name=f"wr_ptr{i}") for i in range(n))
        # a slot's frame count never passes frames_per_slot (the writer drops at it)
        frames_shape = range(self._frames_per_slot + 1)
        frames = Array(Signal(frames_shape, name=f"frames{i}") for i in range(n))

        # The queues: a block RAM whose read goes through its own output
        # register (hdl/ram/block_ram.py), which is the reader's ``out``.
        m.submodules.store = store = BlockRAM(9, n * depth)
        wr = store.write
        rd = store.read
        # Each slot's QUERY, kept while the slot is pending: the QUERYs of
        # several new flows wait here (in arrival order, ``asks``) while the
        # flow controller is still sending an earlier one, so a new flow is
        # never refused for want of a QUERY register.  Block RAM (the
        # DP16KD's 36-bit mode, 512 words of which ``n`` are used): ~200
        # bits are six of the board's spare EBR instead of ~50 LUT-RAM cells
        # (~300 LUT4) and their read flops; read through its output register.
        m.submodules.queries = queries = BlockRAM(self._query_shape, max(n, _QUERY_RAM_DEPTH))
        q_wr = queries.write
        q_rd = queries.read
        # Two places more than slots: its room is judged a clock ahead
        # (``can_alloc``, ``reask_room``, below) and its writes land a clock late.
        m.submodules.asks = asks = fifo.SyncFIFOBuffered(width=max(1, (n - 1).bit_length()), depth=n + 2)
        ask = Signal(n)  # the slot's QUERY is still to be handed to the flow controller
        # Room for a write, registered (the level's compare ran on into the
        # writer's pointers, 6 levels): a write decided a clock at most, from
        # the level two clocks before it lands, so n + 2 places.
        asks_room = asks.w_level < n

        # RESET taken into a flop of its own (a clock later): the flow
        # controller's state flop ran on into the ask queue's level and the
        # slots' logic, 7 levels, fanout 39 across the two blocks.
        flush = Signal()
        m.d.sync += flush.eq(self.flush)

        def count(name, amount=1):
            counter = getattr(self, name)
            m.d.sync += counter.eq(counter + amount)

        # A slot's state is one-hot, a flop per state (set in "every slot's
        # state" below): each per-slot test is a flop, not a decode of a
        # 2-bit state (the decode ran on into the ask queue, the writer's
        # pointers and the reader's pick, 7 levels).
        is_free, waiting, releasing, dropping = (Signal(n, name=nm, init=init) for nm, init in
                                                 (("is_free", (1 << n) - 1), ("waiting", 0),
                                                  ("releasing", 0), ("dropping", 0)))
        state = Array(Signal(2, name=f"state{i}") for i in range(n))  # SlotState, for probe_state
        for i in range(n):
            m.d.comb += state[i].eq(Cat(waiting[i] | dropping[i], releasing[i] | dropping[i]))
        live = Signal(n)  # pending: a DROPPING slot's frames go, a new frame of its flow starts over
        m.d.comb += live.eq(waiting | releasing)

        # -- the key compare: the slots' keys are read one a clock, round
        # robin (``sc``), from LUT RAM and compared with two registered keys
        # (in two registered halves: byte pieces, then their AND), so
        # every slot meets each key once in ``n`` clocks.  The probe's key
        # (the forwarder keeps it for many clocks) is compared all the time:
        # its answer, per slot the last compare, holds ``probe_latency``
        # clocks after the key.  A resolve or the writer's hold record (the
        # resolve first) takes the other comparator for one round (``n``
        # clocks, ``resolve.ready`` low meanwhile) and is answered in
        # ``match`` ``n + 3`` clocks after it was taken.  A slot allocated
        # while a compare is under way is not matched by it (its key
        # changes).  (n keys in flip-flops and n comparators were ~1000
        # flops; a question now waits a round, rarer than a frame.)
        # A new flow's slot is chosen in one clock (``alloc``) and taken the
        # next (``alloc_fx_1h``: key, state, QUERY), from registers, so the
        # choice does not drive the ~800 key flops' enables.  The slot taken
        # is a flop of its own, zero in other clocks (``alloc_r`` ANDed
        # with the chosen slot was a level in front of the ask bits, 5).
        alloc = Signal()  # the writer chooses slot free_slot for a new flow
        alloc_r = Signal()
        alloc_slot = Signal(range(n))
        alloc_fx_1h = Signal(n)  # the slot taken this clock
        m.d.sync += alloc_r.eq(alloc)
        writer_asks = Signal()  # the writer wants its hold record's key compared
        CMP_NONE, CMP_HOLD, CMP_RESOLVE = 0, 1, 2
        sc = Signal(range(n))  # the slot read this clock
        sc_b = Signal(range(n))  # the slot whose pieces are in ``p_piece``/``e_piece``
        sc_next = Mux(sc == n - 1, 0, sc + 1)
        m.d.sync += [sc.eq(sc_next), sc_b.eq(sc)]
        for b, bank_rd in enumerate(key_rd):
            m.d.comb += bank_rd.addr.eq(flop_copy(m, sc_next, name=f"sc_keys{b}"))
        slot_key = Cat(bank_rd.data for bank_rd in key_rd)
        # Bytes: a 16-bit piece's compare behind the LUT RAM's read was 6
        # levels.  On ECP5 the byte compares and the pieces' ANDs are LUT4
        # instances, trees of 2 levels (``_lut4``: left to itself, ABC made
        # chains of 4 of them, 5 levels from the LUT RAM's address).
        pieces = range(0, self._key_width, 8)
        ecp5 = builds_lut4s(platform)

        def piece_compare(key, name):
            return _byte_compare(m, slot_key, key, name, lut4=ecp5)

        def pieces_all(piece, name):
            return lut_and(m, name, list(piece), instance=ecp5)

        # The slot's key did not change this clock nor the last (it was
        # not taken then): a compare read now is its key's.  A flop loaded
        # from ``alloc_fx_1h`` and its next value (the two ran on into the
        # probe's answers, 5 levels).
        key_kept = Signal(n, init=(1 << n) - 1)
        # one-hot ``sc_b``, a flop of its own (its decode was a level in front
        # of the probe's and the rounds' per-slot answers, 5 levels)
        at_b = Signal(n)
        m.d.sync += at_b.eq(Cat(sc == i for i in range(n)))
        # The probe: its key registered, each slot's answer kept per slot.
        p_key = Signal(self._key_width)
        p_piece = Signal(len(pieces))
        m.d.sync += [p_key.eq(self.probe_key), p_piece.eq(piece_compare(p_key, "p_cmp"))]
        # No reset: a slot's answer counts while it is pending, and its
        # allocation clears it (the reset was a level more).
        probe_match = Signal(n, reset_less=True)
        p_all = pieces_all(p_piece, "p_all")
        for i in range(n):
            m.d.sync += probe_match[i].eq(key_kept[i] & Mux(at_b[i], p_all, probe_match[i]))
        # The round of a resolve or a hold record: ``e_step`` counts its
        # clocks (reads in 0 .. n-1, their pieces' ANDs into ``e_match`` in
        # 1 .. n), its answer goes into ``match`` in n + 1.
        e_busy = Signal()
        e_step = Signal(range(n + 2))
        e_key = Signal(self._key_width)
        e_tag = Signal(2)
        e_accept = Signal()
        e_piece = Signal(len(pieces))
        e_match = Signal(n)
        e_dirty = Signal(n)  # allocated during the round
        e_end = Signal()  # the round's last clock (e_step == n + 1), a flop
        m.d.sync += e_end.eq(e_busy & (e_step == n))
        m.d.comb += self.resolve.ready.eq(~e_busy)
        # ``e_key`` follows the resolve's key (else the hold record's) on
        # every clock of no round, so its enable is ~e_busy, a flop: it was
        # the resolve's and the forwarder's valid through 2 levels (fanout
        # 108, 3 late at 7.34 ns).  The round starts with the right one.
        with m.If(~e_busy):
            m.d.sync += [e_step.eq(0), e_dirty.eq(0),
                         e_key.eq(Mux(self.resolve.valid, self.resolve.payload.key, self.hold.payload.key))]
            with m.If(self.resolve.valid):
                m.d.sync += [e_busy.eq(1), e_tag.eq(CMP_RESOLVE),
                             e_accept.eq(self.resolve.payload.accept)]
            with m.Elif(writer_asks):
                m.d.sync += [e_busy.eq(1), e_tag.eq(CMP_HOLD)]
        with m.Else():
            m.d.sync += [e_step.eq(e_step + 1), e_dirty.eq(e_dirty | alloc_fx_1h)]
            with m.If(e_end):
                m.d.sync += e_busy.eq(0)
        m.d.sync += e_piece.eq(piece_compare(e_key, "e_cmp"))
        # ``e_busy & (e_step != 0)``, a flop (its 4-bit test was a level in
        # front of ``e_match``): the round goes on to a step after 0.
        e_reading = Signal()
        m.d.sync += e_reading.eq(e_busy & ~e_end)
        e_all = pieces_all(e_piece, "e_all")
        for i in range(n):
            with m.If(e_reading & at_b[i]):
                m.d.sync += e_match[i].eq(e_all)
        # ``match`` holds until the next round's end: the writer chooses
        # its slot from it the clock after its round (a state of its own,
        # not a test of ``match_tag`` in front of its decision).
        match = Signal(n)  # the round's answer: slot keys equal to its key
        match_tag = Signal(2)  # CMP_NONE but in the clock after a round
        match_accept = Signal()
        with m.If(e_end):
            m.d.sync += match.eq(e_match & ~e_dirty & ~alloc_fx_1h)
        m.d.sync += [match_tag.eq(Mux(e_end, e_tag, CMP_NONE)), match_accept.eq(e_accept)]
        match_resolve = Signal()  # match_tag == CMP_RESOLVE, a flop (in front of the slots' states)
        m.d.sync += match_resolve.eq(e_end & (e_tag == CMP_RESOLVE))

        # -- probe: the decision stage's question about a key.  Its answer
        # leaves from flops (a clock more): the slots' states and the pick
        # ran on into the forwarder's Deciding state and its CAM question,
        # 7 levels across the two blocks.  A slot freed in that clock still
        # looks pending to the forwarder, as one freed between its Deciding
        # state and the writer's compare already did: the writer then finds
        # no live slot and opens a new one.
        # A key is in one live slot at most (a frame of a live slot's flow
        # joins it), so the answer is ORs, not a pick among the slots: the
        # slot's number, and WAITING or RELEASING.
        probe_1h = Signal(n)
        m.d.comb += probe_1h.eq(probe_match & live)
        probe_waits, probe_releases = Signal(), Signal()
        m.d.comb += [probe_waits.eq((probe_match & waiting) != 0), probe_releases.eq((probe_match & releasing) != 0)]
        m.d.sync += [self.probe_hit.eq(probe_waits | probe_releases),
                     self.probe_slot.eq(onehot_mux(probe_1h, [Const(i, range(n)) for i in range(n)])),
                     self.probe_state.eq(Mux(probe_waits, SlotState.WAITING,
                                             Mux(probe_releases, SlotState.RELEASING, SlotState.FREE)))]

        # -- ageing: a WAITING slot without a REPLY for timeout_cycles drops its
        # frames.  One shared prescaler ticks every timeout/8 clocks; a slot
        # times out at its 9th or 10th tick (late by at most a quarter of the
        # timeout), instead of a 27-bit counter per slot.
        period = -(-self._timeout // 8)
        ticks_out = -(-self._timeout // period) + 1
        # The prescaler's wrap is a flop set a clock ahead (`at_end`: the
        # prescaler is at period - 1), and neither takes the domain reset: the
        # compare and the reset were the counter's LSR (13 endpoints at 7.37
        # ns).  A free-running phase is fine: ticks_out counts one tick more
        # than the timeout needs, for the partial first one.
        prescaler = Signal(range(period), reset_less=True)
        at_end = Signal(reset_less=True)
        age_tick = Signal()
        if period > 1:
            m.d.sync += at_end.eq(prescaler == period - 2)
        else:
            m.d.comb += at_end.eq(1)
        m.d.sync += age_tick.eq(at_end)
        m.d.sync += prescaler.eq(Mux(at_end, 0, prescaler + 1))
        age = [Signal(range(ticks_out + 1), name=f"age{i}") for i in range(n)]
        # A slot expires the clock after its last tick (``expiring``, a flop:
        # the age compare ran on into the slots' states, 6 levels), if it
        # still waits then.
        expiring = Signal(n)
        expired = Signal(n)
        for i in range(n):
            m.d.sync += expiring[i].eq(age_tick & waiting[i] & (age[i] == ticks_out - 1))
            m.d.comb += expired[i].eq(expiring[i] & waiting[i])
            with m.If(alloc_fx_1h[i]):
                m.d.sync += age[i].eq(0)
            with m.Elif(age_tick & waiting[i]):
                m.d.sync += age[i].eq(age[i] + 1)
        # counted three clocks later: the expiries registered, their number
        # per group of four, then the sum (a popcount of 8 in one clock was 5
        # levels, the 45F-6's worst path at c3ed804).
        expired_r = Signal(n)
        groups = [Signal(range(min(4, n - i) + 1), name=f"expired_in{i // 4}") for i in range(0, n, 4)]
        expired_count = Signal(range(n + 1))
        m.d.sync += expired_r.eq(expired)
        m.d.sync += [g.eq(sum(expired_r[4 * k:4 * k + 4])) for k, g in enumerate(groups)]
        m.d.sync += expired_count.eq(sum(groups))
        count("timeouts", expired_count)

        # -- writer: frames into their slot's queue
        hold = self.hold.payload
        cs_present = Signal(init=1)  # some CS is present
        active = Signal(init=1)  # the active set is not empty
        if self._cs_slots:
            m.d.sync += [cs_present.eq(self.cs_present != 0), active.eq(self.active_set != 0)]
        # The first free slot, registered: only an allocation takes a free
        # slot, and two allocations are at least four clocks apart.
        free_1h = Signal(n)
        free_slot = Signal(range(n))
        free_first = Signal(n)
        m.d.comb += free_first.eq(is_free & -is_free)  # lowest set bit
        m.d.sync += free_1h.eq(free_first)
        # A new flow can take a slot: one is free, the ask queue has room and
        # some CS is present, one flop (the three ran on into the
        # writer's state flops, 5 levels).
        can_alloc = Signal(init=1)
        m.d.sync += can_alloc.eq((is_free != 0) & asks_room & ((self.cs_present != 0) if self._cs_slots else 1))
        alloc_fx_next = Signal(n)
        m.d.comb += alloc_fx_next.eq(Mux(alloc, free_1h, 0))
        m.d.sync += [alloc_fx_1h.eq(alloc_fx_next), key_kept.eq(~alloc_fx_1h & ~alloc_fx_next)]
        for i in range(n):
            with m.If(free_1h[i]):
                m.d.comb += free_slot.eq(i)
        full_1h = Signal(n)  # the slot holds frames_per_slot frames
        for i in range(n):
            m.d.sync += full_1h[i].eq(frames[i] >= self._frames_per_slot)
        # The live slot of the hold record's key, registered (the writer
        # chooses from it the clock after its round's answer; the states'
        # test ran on into the writer's pointers, 6 levels).  A slot that
        # times out in that clock still takes the frame, as one that times
        # out while the writer stores: it is dropped once the frame is in.
        # What the writer's choice needs of it is registered with it (its
        # ORs, the slot's number and write pointer, whether its queue is
        # full: they ran on into the writer's pointer, 7 levels).  A candidate
        # slot's write pointer does not move in between (only the writer
        # stores, the reader's ``done`` waits for ``deciding``, a dropping
        # slot is no candidate); its ``full`` is a clock older (a frame that
        # left in that clock is still counted).
        hold_next = Signal(n)
        m.d.comb += hold_next.eq(match & ~is_free & ~dropping & Mux(flush, 0, (1 << n) - 1))
        hold_1h, hold_any, hold_full = Signal(n), Signal(), Signal()
        hold_slot = Signal(range(n))
        hold_ptr = Signal(ptr_shape)
        m.d.sync += [hold_1h.eq(hold_next), hold_any.eq(hold_next != 0), hold_full.eq((hold_next & full_1h) != 0),
                     hold_slot.eq(onehot_mux(hold_next, [Const(i, range(n)) for i in range(n)])),
                     hold_ptr.eq(onehot_mux(hold_next, wr_ptr))]
        r_slot = Signal(range(n))  # the reader's (below)
        r_1h = Signal(n)  # the same, one-hot
        r_busy = Signal()
        r_ptr = Signal(ptr_shape)
        w_slot = Signal(range(n))
        w_ptr = Signal(ptr_shape)
        # Is w_slot's queue full?  Decided a clock ahead, from registers (the
        # 9-bit compare ran on into the pointers' enables, 7 levels): with
        # the read pointer of w_slot's queue as it is now (the reader's
        # if ``reading_w``, or 0 for a queue nobody reads), ``keep_same`` holds the
        # compare for w_ptr kept, ``keep_next`` for w_ptr + 1, and
        # ``stepped`` which of them is so.  (The read pointer a clock late,
        # never later than true, as before.)  Without a subtraction: a queue
        # is full when its pointers differ in their top bit alone (the
        # subtraction's carry chain in front of the compare was 6 levels),
        # and ``w_ptr1`` is w_ptr + 1, a register of its own (loaded in
        # "Opening", stepped with w_ptr).
        w_ptr1 = Signal(ptr_shape)
        keep_same, keep_next = Signal(name="keep_same"), Signal(name="keep_next")
        stepped = Signal()
        # The slot being written, one-hot, as a register (set as the writer
        # chooses the slot, cleared in the clock after it stops keeping the
        # frame, in any state but "Opening" and "Storing": the store's
        # decision ran on into it, 5 levels; the drop and the reader's
        # ``done`` wait a clock more): the per-slot tests (drop, done, the
        # write pointers) start from a flop, not the writer's state decode.
        storing_1h = Signal(n)
        deciding = Signal()  # the writer has a frame whose slot is being decided
        frame_stored = Signal()  # a frame's last byte went in this cycle (slot w_slot)
        frame_taken = Signal()  # a frame's last byte left this cycle (slot r_slot)
        # Whether the reader reads w_slot, a flop (its slot compare ran on
        # into ``full``, 7 levels): loaded with w_slot as the writer chooses
        # (a new slot is nobody's), else a clock late, which changes nothing:
        # the reader's pick of w_slot starts at 0, as its read pointer was, and its
        # ``done`` waits for the writer.
        reading_w = Signal()
        m.d.sync += reading_w.eq(r_busy & (r_slot == w_slot))
        # (On ECP5 as LUT4 instances, 3 levels: ABC made the compare a chain, 5.)
        m.d.sync += [keep_same.eq(_room(m, w_ptr, r_ptr, reading_w, "room_same", lut4=ecp5)),
                     keep_next.eq(_room(m, w_ptr1, r_ptr, reading_w, "room_next", lut4=ecp5)),
                     stepped.eq(wr.en)]
        keep = Signal()  # w_slot's queue has room for a byte
        m.d.comb += keep.eq(Mux(stepped, keep_next, keep_same))
        # The writer's drops are counted a clock later (the counters' enables
        # from a flop, not from the writer's decisions).
        queue_full, no_slot, no_cs = Signal(), Signal(), Signal()
        m.d.sync += [queue_full.eq(0), no_slot.eq(0), no_cs.eq(0)]
        with m.If(queue_full):
            count("dropped_queue_full")
        with m.If(no_slot):
            count("dropped_no_slot")
        with m.If(no_cs):
            count("dropped_no_cs")

        # The hold record is taken the clock after its slot is chosen (the
        # new slot takes its key and QUERY from it then).
        take_hold = Signal()
        m.d.sync += take_hold.eq(0)
        m.d.comb += self.hold.ready.eq(take_hold)
        # One-hot (hdl/onehot.py): the states' tests are flops.  A chosen
        # slot is opened for a clock ("Opening": w_ptr is loaded, its
        # ``keep`` is decided) before its bytes go in.
        writer = OneHotFSM(m, "Waiting for a frame", name="writer")
        with m.If(~writer.ongoing("Opening") & ~writer.ongoing("Storing")):
            m.d.sync += storing_1h.eq(0)  # unless chosen (below)
        with writer:
            with writer.state("Waiting for a frame"):
                with m.If(self.hold.valid & self.sink.valid & ~flush & ~self.resolve.valid & ~e_busy):
                    m.d.comb += writer_asks.eq(1)
                    writer.goto("Comparing the key")
            with writer.state("Comparing the key"):
                m.d.comb += deciding.eq(1)
                with m.If(match_tag == CMP_HOLD):  # the round's answer in ``match``
                    writer.goto("Choosing the slot")
            with writer.state("Choosing the slot"):
                m.d.comb += deciding.eq(1)
                # w_ptr loaded whatever the choice: it matters only from
                # "Opening" on, which always follows this state.  Under the
                # branches below its enable was 5 levels (7.4-7.8 ns routed).
                m.d.sync += w_ptr.eq(Mux(hold_any, hold_ptr, 0))
                # reading_w likewise (a new slot is nobody's; on the other
                # branches nothing is written, and the default load above
                # follows w_slot from the next clock): under them it was 6
                # levels, from asks_room.
                m.d.sync += reading_w.eq(hold_any & r_busy & (r_slot == hold_slot))
                with m.If(flush):
                    writer.goto("Waiting for a frame")
                with m.Else():
                    m.d.sync += take_hold.eq(1)
                    with m.If(hold_full):
                        m.d.sync += queue_full.eq(1)
                        writer.goto("Discarding")
                    with m.Elif(hold_any):
                        m.d.sync += [storing_1h.eq(hold_1h), w_slot.eq(hold_slot)]
                        writer.goto("Opening")
                    with m.Elif(can_alloc):
                        m.d.comb += alloc.eq(1)
                        m.d.sync += storing_1h.eq(free_1h)
                        m.d.sync += [w_slot.eq(free_slot), alloc_slot.eq(free_slot)]
                        writer.goto("Opening")
                    with m.Elif(~cs_present):
                        m.d.sync += no_cs.eq(1)
                        writer.goto("Discarding")
                    with m.Else():
                        m.d.sync += no_slot.eq(1)
                        writer.goto("Discarding")

            # A flush discards the rest of the frame ("Discarding"; it was
            # a ``writing`` flop in front of the store's decision, 5 levels
            # into ``stored_1h`` and ``storing_1h``).
            with writer.state("Opening"):
                m.d.sync += w_ptr1.eq(w_ptr + 1)
                with m.If(flush):
                    writer.goto("Discarding")
                with m.Else():
                    writer.goto("Storing")

            with writer.state("Storing"):
                # Bytes go in at w_ptr; the frame counts only when its last byte fits.
                m.d.comb += self.sink.ready.eq(1)
                with m.If(self.sink.valid & ~keep):
                    m.d.sync += queue_full.eq(1)
                    with m.If(~self.sink.payload.last):
                        writer.goto("Discarding")
                    with m.Else():
                        writer.goto("Waiting for a frame")
                with m.Elif(self.sink.valid):
                    m.d.comb += wr.en.eq(1)
                    m.d.sync += [w_ptr.eq(w_ptr1), w_ptr1.eq(w_ptr1 + 1)]
                    with m.If(self.sink.payload.last):
                        m.d.comb += frame_stored.eq(1)
                        count("frames_held")
                        writer.goto("Waiting for a frame")
                    with m.Elif(flush):
                        writer.goto("Discarding")
                with m.Elif(flush):
                    writer.goto("Discarding")

            with writer.state("Discarding"):
                m.d.comb += self.sink.ready.eq(1)
                with m.If(self.sink.valid & self.sink.payload.last):
                    writer.goto("Waiting for a frame")
        # address and data in every state: only wr.en depends on the FSM
        m.d.comb += [wr.addr.eq(Cat(w_ptr[:low], w_slot)),
                     wr.data.eq(Cat(self.sink.payload.data, self.sink.payload.last))]

        # A queue starts at 0: its write pointer goes back when the slot is freed.
        # A stored frame moves its slot's write pointer a clock later, from
        # flops (``stored_1h``, ``stored_ptr``): the store's decision (the
        # sink's valid and last, ``keep``) ran on into the eight pointers'
        # enables, 5 levels, 29 late endpoints on the 25F at c3ed804.  Its
        # readers allow for that: the writer's next frame into the slot takes
        # the pointer two clocks after at the earliest, and the reader's
        # ``done`` waits three clocks after a store (``stored_*``).
        slot_freed = Signal(n)
        # ``stored_1h`` without the domain's reset: its flops' reset is the
        # decision alone, not a LUT ORing the two (3 levels into the LSRs,
        # 7.37-7.52 ns on the 25F, seed 5); the reset holds for two clocks
        # or more (a ResetSynchronizer), and from its second the writer is
        # not storing, so the decision zeroes it.
        stored_1h = Signal(n, name="stored_1h", reset_less=True)
        stored_ptr = Signal(ptr_shape, name="stored_ptr")
        # (not for a slot freed as the frame goes in: a flush, the only
        # way the slot being written is freed)
        # The store's decision again, as two LUT4s for stored_1h's reset: ABC
        # chained the sink's valid, keep's mux and the writer's tests into 4
        # levels (7.91 ns on the 45F-6 at cf56e38).
        stores_keep = lut4(m, "stores_keep", [self.sink.valid, stepped, keep_next, keep_same],
                           lambda v, s, kn, ks: v & ((s & kn) | ((s ^ 1) & ks)), instance=ecp5)
        # (Its inverse: the flops' reset, no inverter in front of it.)
        stores_none = lut4(m, "stores_none", [stores_keep, self.sink.payload.last, writer.ongoing("Storing"), flush],
                           lambda vk, last, st, f: (vk & last & st & (f ^ 1)) ^ 1, instance=ecp5)
        m.d.sync += [stored_1h.eq(Mux(stores_none, 0, storing_1h)), stored_ptr.eq(w_ptr1)]
        for bank_wr, (lo, hi) in zip(key_wr, key_banks, strict=True):
            m.d.comb += [bank_wr.addr.eq(alloc_slot), bank_wr.data.eq(hold.key[lo:hi]), bank_wr.en.eq(alloc_r)]
        for i in range(n):
            with m.If(slot_freed[i]):
                m.d.sync += wr_ptr[i].eq(0)
            with m.Elif(stored_1h[i]):
                m.d.sync += wr_ptr[i].eq(stored_ptr)

        # -- QUERYs: a new flow's is stored with its slot and the slot queued
        # in ``asks``; the head of the queue is read out (two clocks: the
        # array, ``q_fetch``, then the output register) and offered on
        # ``query`` (held, stable, until taken).  A slot resolved before its
        # QUERY left is skipped (its ``ask`` bit is clear: fetched, not offered).
        # A slot is queued when it is allocated (if a CS is active) or, one
        # a clock, when it must be asked (again): see the redundancy watch below.
        reask_hit, reask = Signal(), Signal(range(n))  # reask_hit: never with alloc_r
        reask_1h = Signal(n)
        m.d.comb += [
            q_wr.en.eq(alloc_r),
            q_wr.addr.eq(alloc_slot),
            q_wr.data.eq(hold.query),
        ]
        # The queue's write a clock late, from flops (the allocation and the
        # redundancy watch's choice ran on into its level, 6 levels; the
        # slot's ask bit is set meanwhile, which is all the queue's head reads
        # of it).
        m.d.sync += [
            asks.w_en.eq((alloc_r & active) | reask_hit),
            asks.w_data.eq(Mux(alloc_r, alloc_slot, reask)),
        ]
        q_valid = Signal()
        q_fetch = Signal()  # the array read the head's QUERY last clock: its output register loads now
        q_taken = Signal()
        head = asks.r_data
        m.d.comb += [
            q_taken.eq(q_valid & self.query.ready),
            self.query.valid.eq(q_valid),
            self.query.payload.query.eq(q_rd.data),
            q_rd.addr.eq(head),
            # The array reads the head every clock; the output register takes
            # the read of the clock the head was popped (``q_fetch``).  An
            # enable from the pop ran 5 levels from ``ask`` and the message
            # port's ready into the block RAM's CEB, 3 ns away (8.61 ns, the
            # worst path of the f522c50 build).
            q_rd.en.eq(1),
            q_rd.out_en.eq(q_fetch),
        ]
        asked_before = Signal(n)  # a QUERY (serial) went out for the slot's flow
        # The QUERY counted a clock after it is taken: the two counters'
        # enables were most of q_valid's fanout (213), 4 levels into asked_in.
        took_query, took_again = Signal(), Signal()
        m.d.sync += [took_query.eq(q_taken & ~self.query.payload.again),
                     took_again.eq(q_taken & self.query.payload.again)]
        with m.If(took_query):
            count("queries")
        with m.If(took_again):
            count("asked_again")
        # Popped only while no QUERY is fetched or offered (not as one is
        # taken): the flow controller's ready ran through the pop into the
        # queue's level, 6 levels; a clock more per QUERY, against the many
        # the flow controller spends on each.  ``pop_ok`` (nothing fetched
        # or offered, or a flush: the queue then empties, a slot a clock)
        # is registered a clock ahead, from their next values (they and the
        # flush ran on into the queue's level, 5 levels; a QUERY fetched
        # is taken for offered, a skipped one costs a clock more).  The
        # head's ask bit and ``again``, read as it is popped, are used as
        # its QUERY is fetched: a slot's QUERY is fetched all the same,
        # offered only if it was still to ask.  Read in two clocks: four
        # slots by the head's low bits into flops (``ask_part``,
        # ``again_part``), then one of those by ``fetch_group`` (the head's
        # group of four, one-hot): the binary head's mux of eight ran on
        # into ``q_fetch`` and the payload, 5 levels.  ``fetch_1h``: the
        # slot fetched or offered, one-hot (its ask bit is cleared as its
        # QUERY is fetched, the redundancy watch's tests of it are ANDs).
        pop_ok = Signal(init=1)
        pop = Signal()
        fetch_1h = Signal(n)
        groups = range(0, n, 4)
        fetch_group = Signal(len(groups))
        ask_part, again_part = Signal(len(groups)), Signal(len(groups))
        m.d.comb += [asks.r_en.eq(asks.r_rdy & pop_ok), pop.eq(asks.r_rdy & pop_ok & ~flush)]
        m.d.sync += [q_fetch.eq(pop), pop_ok.eq(self.flush | flush | ~(pop | q_fetch | (q_valid & ~q_taken))),
                     ask_part.eq(Cat(ask[g:g + 4].bit_select(head[:2], 1) for g in groups)),
                     again_part.eq(Cat(asked_before[g:g + 4].bit_select(head[:2], 1) for g in groups))]
        # ``q_valid``'s next value and its inverse (``offer_1h``'s reset), on
        # ECP5 as LUT4s, each in two levels up to 8 groups (32 slots): ABC
        # made the one 4 levels and the other a LUT behind it (8.33 ns on
        # the 25F).
        fetch_ask = lut_and_or(m, "fetch_ask", [(ask_part[g], fetch_group[g:g + 1]) for g in range(len(groups))],
                               instance=ecp5)
        if ecp5:
            def valid_next(q, a, f, k):
                return (q & a & (f ^ 1)) | k
            kept = lut4(m, "q_kept", [q_valid, self.query.ready, flush], lambda v, r, f: v & (r ^ 1) & (f ^ 1),
                        instance=True)
            next_inputs = [q_fetch, fetch_ask, flush, kept]
            q_valid_next = lut4(m, "q_valid_next", next_inputs, valid_next, instance=True)
            q_valid_none = lut4(m, "q_valid_none", next_inputs, lambda *v: valid_next(*v) ^ 1, instance=True)
        else:
            q_valid_next = ~flush & ((q_fetch & fetch_ask) | (q_valid & ~q_taken))
            q_valid_none = ~q_valid_next
        m.d.sync += q_valid.eq(q_valid_next)
        with m.If(pop):
            m.d.sync += [self.query.payload.slot.eq(head), fetch_1h.eq((Const(1, n) << head)[:n]),
                         fetch_group.eq((Const(1, len(groups)) << (head >> 2))[:len(groups)])]
        with m.If(q_fetch):
            m.d.sync += self.query.payload.again.eq((again_part & fetch_group) != 0)
        ask_set = Signal(n)
        m.d.comb += ask_set.eq(Mux(active, alloc_fx_1h, 0) | Mux(reask_hit, reask_1h, 0))
        # (cleared only as a QUERY still to ask is fetched: a skipped slot's
        # bit may have been set again, by its new allocation, as it was popped)
        m.d.sync += ask.eq((ask & ~Mux(q_fetch & fetch_ask, fetch_1h, 0) & waiting) | ask_set)

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
            # No reset (nor for ``asked_any``): a slot's allocation clears
            # them, and they count only while it waits (a level less).
            asked_in = Array(Signal(k, name=f"asked_in{i}", reset_less=True) for i in range(n))
            stale = Signal(n)
            previous_set = Signal(k)
            m.d.sync += previous_set.eq(self.active_set)
            m.d.comb += self.asked.ready.eq(1)
            left = Signal(k)
            m.d.comb += left.eq(previous_set & ~self.active_set)
            # asked_in[i] != 0, a flop of its own (the OR was a level in
            # front of ``again``'s mux)
            asked_any = Signal(n, name="asked_any", reset_less=True)
            m.d.comb += asked_before.eq(asked_any)
            presenting = Signal(n)  # being read out or offered: not to be queued again
            m.d.comb += presenting.eq(Mux(q_valid | q_fetch, fetch_1h, 0))
            # Which slots need asking, registered (a clock late; the ask bit
            # and the state are checked again now: a slot queued or resolved
            # meanwhile is left alone).
            needs = Signal(n)
            for i in range(n):
                m.d.sync += needs[i].eq(waiting[i] & ~ask[i] & ~presenting[i] & (stale[i] | ~asked_any[i])
                                        & ~(reask_hit & reask_1h[i]))
            # The slot to queue is chosen a clock ahead (``reask_1h``, flops),
            # one slot looked at a clock, round robin (``rr``): the lowest of
            # the candidates, their OR and its number ran on into the choice
            # and the queue's write, 7 levels.  A takeover's slots are so
            # queued within ``n`` clocks of each other, not in consecutive
            # ones.  From ``needs`` alone (which leaves out the slot queued
            # as it was taken: its ask bit is set only a clock later), and
            # none is queued in the clock after one is (``reask_held``: that
            # clock's choice was made before).  The ask
            # bit and the state are not looked at again: a slot resolved in
            # the two clocks before is queued all the same, its ask bit is
            # clear, so it is skipped at the queue's head.  ``rr`` one-hot
            # too, flops of their own (its decode was a level in front of
            # ``reask_any``, 5 levels).
            rr = Signal(range(n), name="reask_rr")
            rr_1h = Signal(n, name="reask_rr_1h", init=1)
            m.d.sync += [rr.eq(Mux(rr == n - 1, 0, rr + 1)), rr_1h.eq(rr_1h.rotate_left(1))]
            candidate = Signal(n)
            m.d.comb += candidate.eq(needs & rr_1h)
            reask_any = Signal()
            m.d.sync += [reask_1h.eq(candidate), reask.eq(rr), reask_any.eq(candidate != 0)]
            # Not while the writer decides or takes a slot (``deciding``,
            # ``alloc_r``: a new slot's QUERY goes into ``asks`` the clock
            # after, on the room seen while choosing), nor in the clock after
            # one is queued, nor without room, an active CS, or in a flush.
            # Both registered a clock ahead, from those flops' next values
            # (they and ``alloc_r`` ran on into the ask bits, 5 levels): the
            # writer decides next clock if it starts a compare now or is
            # comparing (which goes on to choosing).
            reask_held, reask_room = Signal(name="reask_held"), Signal(name="reask_room")
            m.d.sync += [reask_held.eq(writer_asks | writer.ongoing("Comparing the key") | alloc | reask_hit),
                         reask_room.eq(asks_room & (self.active_set != 0) & ~self.flush)]
            m.d.comb += reask_hit.eq(reask_any & reask_room & ~reask_held)
            # The message port's word, a clock later, decoded into flops
            # (``asked_1h``: the slot, ``sent_to``: the CS; the slot's
            # compare and the CS's decode ran on into ``asked_in``, 5 levels).
            asked_1h, sent_to = Signal(n, name="asked_1h"), Signal(k, name="sent_to")
            sent_any = Signal(name="sent_any")
            sent_to_next = Mux(self.asked.payload.sent, (Const(1, k) << self.asked.payload.cs)[:k], 0)
            m.d.sync += [asked_1h.eq(Mux(self.asked.valid, (Const(1, n) << self.asked.payload.slot)[:n], 0)),
                         sent_to.eq(sent_to_next), sent_any.eq(sent_to_next != 0)]
            # The slot whose QUERY is offered, one-hot, a flop (from
            # ``q_valid``'s next value; ``q_valid`` and ``fetch_1h`` were
            # two levels of the take's test in front of ``asked_in``).  No
            # reset: ``q_valid_none`` is its flops' reset alone, where ORed
            # with the domain's it was a LUT more (8.0 ns on the 25F, syn_a
            # seed 5).  A reset of two clocks clears it as well (in the
            # second, q_valid_none is up); after a shorter one a stale bit
            # can mark a free slot as asked, which its allocation clears.
            offer_1h = Signal(n, name="offer_1h", reset_less=True)
            m.d.sync += offer_1h.eq(Mux(q_valid_none, 0, fetch_1h))
            stale_next = Signal(n)
            for i in range(n):
                with m.If(alloc_fx_1h[i]):
                    m.d.sync += [asked_in[i].eq(0), asked_any[i].eq(0)]
                with m.Elif(offer_1h[i] & self.query.ready):
                    m.d.sync += [asked_in[i].eq(self.active_set), asked_any[i].eq(self.active_set != 0)]
                with m.Elif(asked_1h[i]):
                    m.d.sync += [asked_in[i].eq(sent_to), asked_any[i].eq(sent_any)]
                m.d.comb += stale_next[i].eq(
                    Mux(alloc_fx_1h[i] | (reask_hit & reask_1h[i]), 0,
                        stale[i] | ((asked_in[i] & left) != 0)))
            m.d.sync += stale.eq(stale_next)

        # -- resolve: REPLY accepted or refused (its compare answered now)
        resolve_1h = Signal(n)
        m.d.comb += resolve_1h.eq(Mux(match_resolve, match & waiting, 0))
        with m.If(match_resolve & (resolve_1h == 0)):
            count("resolve_unmatched")

        # -- reader: one releasing slot at a time, frame by frame.  The block
        # RAM's read has two stages, the array's (``ram_valid``) and its
        # output register's (``out_valid``, the DP16KD's own on ECP5: the
        # fabric sees a flop's clock-to-out, not the array's 5.8 ns).
        r_armed = Signal()  # r_end is r_slot's and compared (two clocks after the slot is picked)
        r_started = Signal()  # a clock after the slot is picked
        r_end = Signal(ptr_shape)  # wr_ptr[r_slot], a clock late
        # A frame went into a queue in the last three clocks (its write
        # pointer moves a clock after the store; r_end and its compares may
        # be that far behind).
        stored_last, stored_before, stored_third = Signal(), Signal(), Signal()
        m.d.sync += [r_end.eq(wr_ptr[r_slot]), stored_last.eq(frame_stored), stored_before.eq(stored_last),
                     stored_third.eq(stored_before)]
        # The reader's next slot, picked a clock ahead into flops from the
        # releasing bits alone (their OR and priority ran on into the
        # reader's start, r_busy and the pointers' synchronous reset: 5
        # levels, routed 7.32 ns into r_ptr's LSR in build 9b18dc6).  A slot
        # that starts releasing is picked a clock later; the clock after
        # ``done`` picks nothing (``done_r``: the pick may be the slot just
        # freed), nor the clock after a flush.  ``pick`` is 0 when nothing
        # is picked and takes no reset (it counts only with ``pick_hit``):
        # its own value and the reset were two more inputs, 5 levels.
        pick_hit = Signal()
        pick = Signal(range(n), reset_less=True)
        pick_1h = Signal(n)
        done_r = Signal()
        m.d.sync += [pick_hit.eq(0), pick_1h.eq(0), pick.eq(0)]
        for i in reversed(range(n)):
            with m.If(releasing[i]):
                m.d.sync += [pick_hit.eq(1), pick.eq(i), pick_1h.eq(1 << i)]
        with m.If(flush):
            m.d.sync += pick_hit.eq(0)
        # The store's read is a pipeline that never stalls, ending in a small
        # FIFO: the read's address is a flop (``addr_q``) and the block RAM
        # reads it and loads its output register every clock, so nothing
        # but flops drives the RAM.  The issue ran to the RAM's enable and
        # r_ptr (placed by the RAM) straight from the reader's logic, which
        # sits by the slots: one 4.95 ns net across the die, 7.64 ns into
        # r_ptr's CE on the 25F (syn_f seed 4).  A read is issued only when
        # the FIFO has a place for it whatever the consumer does (``room``,
        # below).
        issued = Signal()  # addr_q is being read
        ram_valid = Signal()  # the array's word is a read's
        out_valid = Signal()  # the output register's word is a read's
        addr_q = Signal(len(rd.addr), reset_less=True)
        m.submodules.release_fifo = release_fifo = ResetInserter(flush)(
            fifo.SyncFIFOBuffered(width=9, depth=_RELEASE_FIFO_DEPTH))
        out_first = Signal(init=1)
        m.d.comb += [
            self.release.valid.eq(release_fifo.r_rdy),
            self.release.payload.data.eq(release_fifo.r_data[:8]),
            self.release.payload.last.eq(release_fifo.r_data[8]),
            self.release.payload.first.eq(out_first),
            self.release_slot.eq(r_slot),
            release_fifo.r_en.eq(self.release.ready),
        ]
        consumed = Signal()
        m.d.comb += consumed.eq(release_fifo.r_rdy & self.release.ready)
        # Is a byte left to read?  "r_ptr != r_end" from flops
        # (hdl/stream/ahead.py; the 9-bit compare ran on into the read's
        # enables, 7 levels).  r_end a clock older only holds a read back a
        # clock (it only grows while read).
        r_ptr1 = Signal(ptr_shape)  # r_ptr + 1
        advance = Signal()
        available = Signal()
        m.d.comb += available.eq(r_armed & ~equal_ahead(m, "sync", "at_end", r_ptr, r_ptr1, r_end, advance,
                                                        instance=ecp5))
        # The FIFO's room, counted a clock after the issue and a clock after
        # the take (``held``: the reads issued before the last clock and not
        # taken out of the FIFO before it; ``issued`` and ``consumed_q`` are
        # the last clock's), so that neither the count nor its flags are
        # behind ``advance`` or the consumer's ready (5 levels from either,
        # syn_b and syn_c).  ``room`` assumes the clock issues: at a byte a
        # clock it does, and after a pause the next read waits a clock more
        # at most.
        held = Signal(range(_RELEASE_FIFO_DEPTH + 1))
        held_next = Signal.like(held)
        room, held_none = Signal(init=1), Signal(init=1)  # the next read fits; held == 0
        consumed_q = Signal()
        m.d.sync += consumed_q.eq(consumed)
        m.d.comb += [advance.eq(available & room), held_next.eq(held + issued - consumed_q)]
        m.d.sync += [held.eq(held_next), room.eq(held_next + 1 < _RELEASE_FIFO_DEPTH), held_none.eq(held_next == 0)]
        m.d.sync += [issued.eq(advance), ram_valid.eq(issued), out_valid.eq(ram_valid),
                     addr_q.eq(Cat(r_ptr[:low], r_slot))]
        m.d.comb += [rd.en.eq(1), rd.out_en.eq(1), rd.addr.eq(addr_q),
                     release_fifo.w_en.eq(out_valid), release_fifo.w_data.eq(rd.data)]
        with m.If(advance):
            m.d.sync += [r_ptr.eq(r_ptr1), r_ptr1.eq(r_ptr1 + 1)]
        with m.If(consumed):
            m.d.sync += out_first.eq(self.release.payload.last)
            with m.If(self.release.payload.last):
                m.d.comb += frame_taken.eq(1)
                count("frames_released")
        with m.If(~r_busy & ~done_r & pick_hit):
            m.d.sync += [r_busy.eq(1), r_slot.eq(pick), r_1h.eq(pick_1h), r_ptr.eq(0), r_ptr1.eq(1)]
        # The slot is done when its queue is empty and no frame is on its way
        # into it; decided a clock ahead (``done``: nothing can reach the
        # queue in between, the writer's own decision blocks it).
        done = Signal()
        done_next = Signal()
        m.d.comb += done_next.eq(r_armed & ~done & ~available & ~issued & held_none & ~stored_last & ~stored_before
                                 & ~stored_third & ~deciding & ((storing_1h & r_1h) == 0) & ~flush)
        m.d.sync += done.eq(done_next)
        m.d.sync += done_r.eq(done)
        with m.If(done):
            m.d.sync += r_busy.eq(0)
        m.d.sync += [r_started.eq(r_busy & ~done), r_armed.eq(r_busy & r_started & ~done)]

        # A dropping slot empties within n clocks (its stored frames are forgotten),
        # so a flood of refused flows frees its slots quickly.  One per clock,
        # and not while the writer is inside a frame of that slot.  Chosen a
        # clock ahead (``drop_1h``; the writer only starts a frame in a live
        # slot, so nothing changes in between).
        drop_1h = Signal(n)  # the slot emptied this clock
        may_drop = Signal(n)
        for i in range(n):
            m.d.comb += may_drop[i].eq(dropping[i] & ~drop_1h[i] & ~storing_1h[i])
        # One slot looked at a clock, round robin (``drop_rr``): the lowest
        # candidate's priority was 6 levels.  A slot so empties within n clocks.
        drop_rr = Signal(range(n))
        m.d.sync += drop_rr.eq(Mux(drop_rr == n - 1, 0, drop_rr + 1))
        drop_next = Signal(n)
        for i in range(n):
            m.d.comb += drop_next[i].eq(~flush & may_drop[i] & (drop_rr == i))
        m.d.sync += drop_1h.eq(drop_next)
        # The slot freed this clock, by a drop or the reader's ``done``, as a
        # flop of its own, and the flush from a copy of its flop a slot: the
        # OR of the three (with the domain's reset, the queue's pointer's
        # synchronous reset) behind the flush's net to every slot was
        # routed 7.53 ns into wr_ptr0's LSR on the 25F (syn_f seed 4).
        # r_1h holds while the reader is busy, so ``done`` frees the slot
        # r_1h names now.
        freeing_1h = Signal(n)
        m.d.sync += freeing_1h.eq(drop_next | Mux(done_next, r_1h, 0))
        dropped_frames = Signal(frames_shape)  # counted a clock later
        m.d.sync += dropped_frames.eq(onehot_mux(drop_1h, frames))
        count("frames_dropped_refused", dropped_frames)

        # -- every slot's state and frame count, in one flat place
        # Frames per slot: one writer and one reader may finish a frame of the
        # same slot in the same clock.  Counted a clock after the frame ends
        # (``inc_1h``/``dec_1h``, from the writer's and reader's handshakes):
        # a slot is never freed in that clock (its writer or reader was busy
        # in it the clock before), and the writer looks at the count (through
        # ``full_1h``) three clocks after its last frame.  One adder a slot,
        # adding 1 or -1.
        inc_1h, dec_1h = Signal(n), Signal(n)
        for i in range(n):
            m.d.sync += [inc_1h[i].eq(frame_stored & storing_1h[i] & ~flush),
                         dec_1h[i].eq(frame_taken & r_1h[i] & ~flush)]
            inc, dec = inc_1h[i], dec_1h[i]
            m.d.comb += slot_freed[i].eq(flop_copy(m, self.flush, name=f"flush{i}") | freeing_1h[i])
            with m.If(slot_freed[i]):
                m.d.sync += frames[i].eq(0)
            with m.Elif(inc ^ dec):
                m.d.sync += frames[i].eq(frames[i] + Cat(Const(1, 1), dec.replicate(len(frames[i]) - 1)))

            def goes(free=0, wait=0, release=0, drop=0, i=i):
                m.d.sync += [is_free[i].eq(free), waiting[i].eq(wait), releasing[i].eq(release),
                             dropping[i].eq(drop)]

            with m.If(flush):
                goes(free=1)
            with m.Elif(alloc_fx_1h[i]):
                goes(wait=1)
            with m.Elif(resolve_1h[i]):
                goes(release=match_accept, drop=~match_accept)
            with m.Elif(expired[i]):
                goes(drop=1)
            with m.Elif(freeing_1h[i]):
                goes(free=1)

        # -- RESET: every pending flow goes (its frames with it)
        with m.If(flush):
            m.d.sync += [r_busy.eq(0), r_armed.eq(0), r_started.eq(0), done.eq(0), q_fetch.eq(0), ask.eq(0),
                         out_first.eq(1), storing_1h.eq(0),
                         # the reads in flight and the count of the release FIFO's places
                         issued.eq(0), ram_valid.eq(0), out_valid.eq(0), consumed_q.eq(0),
                         held.eq(0), room.eq(1), held_none.eq(1)]
        return m
