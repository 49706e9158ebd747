"""Hashed exact-match flow table: control, lookup and counter ports.

Ref: patent figure 21 (on overflow, make room by deleting the oldest flow);
organisation, hash functions and every insert decision are those of
:mod:`twinplane.model.flowtable` (read its docstring first), bit for bit.

Memories (one write port and one read port each, ECP5 EBR in
pseudo-dual-port mode; all :class:`~twinplane.hdl.ram.BlockRAM`):

* ``keymem``: the sub-tables stacked, one word per bucket (address = table
  above bucket), the ``ways`` slots (valid, key less its low ``index_bits``
  bits, handle) side by side.  Written per slot (one enable bit per way).
* ``actmem``, ``cntmem`` (packets, bytes, last_seen), ``locmem`` (where a
  handle's slot is): indexed by handle.  ``fifomem``: deleted handles.

On ECP5 a ``BlockRAM``'s data comes from the DP16KD's own output register,
a clock after the array's read, instead of a fabric flop after the array's
5.8 ns clock-to-out (the table's worst paths were actmem -> result flops,
then cntmem -> ``cd``).  Its read of a word written in the same clock is
undefined: ``keymem`` is never written in a clock with a search read,
touches forward the counter writes their read cannot see.

Why one sub-table a clock: an EBR gives at most 36 bits a clock, so reading
all ``tables x ways`` candidate slots at once took 7 EBR per sub-table
whatever the depth (28 at 1024 entries), and 8 comparators.  Stacked, a
lookup reads its ``tables`` buckets in consecutive clocks through ``ways``
comparators: 7 EBR at 1024 entries, 13 at 2048.  The table so takes a new
lookup every ``tables`` clocks (``lookup.ready``); the forwarders ask at most
once per frame (84 clocks at minimum size), so that is far above need.

Pipeline (for 125 MHz + 10 % on a speed-6 ECP5): every block-RAM read lands
in a register before any logic (an EBR's clock-to-out is most of a clock),
and each logic cone has a clock of its own.  A search (a lookup, or the
control FSM's own): p0 taken, its key into ``q_key``, p0' hash (all
sub-tables) in two halves into ``h_part``, p0'' their XOR into ``p1_idx``
and the buckets in read order into ``k_bucket``/``k_next``, p1 ``keymem``
address of sub-table t (t = 0 .. tables-1 in consecutive clocks), p2
``keymem`` array read, p3 its output register, p3r the key compared 8 bits
at a time, p4 the chunks ANDed, OR into the running hit/handle, after the
last sub-table ``actmem`` address, p5 ``actmem`` array read, p6 its output
register, p7 result, zeroed on a miss
(:attr:`FlowTable.latency` = tables + 9 clocks from the lookup's
transfer).  ``keymem`` writes go through registers and land the clock
after their grant.

Sharing.  Lookups own the hash units (p0), the search sequencer and the
``actmem`` read port in p4 whenever a lookup is there; the control FSM uses
them in the other clocks, so it only waits, it never stalls a lookup
already taken.  Its searches go down the lookup stages (so the comparators
check its key too) and leave each bucket's valid bits and handles in
registers as they pass p4; its single-slot reads use the ``keymem`` port in
clocks without a search.  The control FSM owns every write port except
``cntmem``'s, where the counter pipeline has priority.

Consistency with lookups in flight: ``keymem`` is never written from the
first to the last read of one search, so a search sees the sub-tables of one
instant.  A slot is made valid only after its action and counters are
written, and an evicted slot is invalidated four clocks before its action
changes (a search reads ``actmem`` four clocks after its last ``keymem``
read, which is before the invalidation's clock), so a
lookup sees either the old entry whole or the new one whole.  A moved key
is written to its new slot before its old slot is reused; in between the
key is in both slots with the same handle.

EBR (ECP5 DP16KD, 18 kbit; 512x36 / 1024x18 / 2048x9) at the DFS's
geometry, 4 tables x 128 buckets x 2 ways = 1024 entries, 105-bit keys,
179-bit actions: ``keymem`` 512 x 2 x 109 = 7, ``actmem`` 10, ``cntmem``
1024 x (32+40+16) = 5, ``locmem`` 1, ``fifomem`` 1: 24 (was 45).  2048
entries: 13 + 20 + 10 + 2 + 2 = 47.

Counter pipeline: ``touch`` reads ``cntmem`` (t0: address, t1: the array,
t2: its output register), registers the data and adds (t3) into a write
register, written in t4.  The four writes a read cannot see (its own
clock's and the next three: the touches just ahead, or the FSM's) are
forwarded from registers, so back-to-back touches of one handle lose
nothing.
"""

import operator
from functools import reduce
from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from twinplane.hdl.lut4 import builds_lut4s, lut4, lut_and, lut_and_or, lut_eq, lut_or
from twinplane.hdl.onehot import OneHotFSM, flop_copy, onehot_mux
from twinplane.hdl.ram import BlockRAM
from twinplane.model.flowtable import FlowGeometry, FlowOp, InsertStatus, h3_masks

from .h3 import h3_parts

__all__ = ["FlowTable", "command_layout", "response_layout"]


def _bits(n: int) -> int:
    return max(1, (n - 1).bit_length())


def _or_words(words):
    """Balanced OR of equally wide values."""
    while len(words) > 1:
        words = [words[i] | words[i + 1] if i + 1 < len(words) else words[i]
                 for i in range(0, len(words), 2)]
    return words[0]


def command_layout(geometry: FlowGeometry) -> data.StructLayout:
    """The ``cmd`` payload.  ``handle`` names the entry of DELETE, READ and
    CLEAR; for INSERT with ``keep`` set, the entry never to evict."""
    return data.StructLayout({"op": 3, "key": geometry.key_width, "action": geometry.action_width,
                              "handle": geometry.handle_bits, "keep": 1, "now": geometry.ts_width})


def response_layout(geometry: FlowGeometry) -> data.StructLayout:
    """The ``rsp`` payload: one per command (see :class:`FlowTable`)."""
    g = geometry
    return data.StructLayout({
        "op": 3, "status": 2, "found": 1, "handle": g.handle_bits, "key": g.key_width,
        "action": g.action_width, "packets": g.packets_width, "bytes": g.bytes_width,
        "last_seen": g.ts_width})


class FlowTable(wiring.Component):
    """The flow table.  Ports (all payloads are ``data.StructLayout``):

    * ``lookup`` (in; ``ready`` at most every ``tables`` clocks, and never
      depends on ``valid``): ``key``.  ``result`` (out, :attr:`latency`
      clocks after the lookup's transfer, in order; ``ready`` is ignored:
      the consumer takes a result when it comes): ``key``, ``hit``,
      ``handle``, ``action`` (zero on a miss).
    * ``touch`` (in, ``ready`` is always 1): ``handle``, ``nbytes``, ``now``:
      packets += 1, bytes += nbytes, last_seen = now.
    * ``cmd`` (in) / ``rsp`` (out): one response per command, fields
      ``op`` (:class:`FlowOp`), ``key``, ``action``, ``handle``, ``keep``, ``now`` in;
      ``op``, ``status`` (:class:`InsertStatus` for INSERT), ``found``,
      ``handle``, ``key``, ``action``, ``packets``, ``bytes``, ``last_seen``
      out.  INSERT answers the handle and, when it evicted, the victim entry
      (never ``handle`` when ``keep`` is set);
      DELETE and READ (by handle) and FIND (by key) answer the entry as it
      was; CLEAR zeroes a handle's counters (last_seen = now); FLUSH
      invalidates every slot in ``tables * buckets`` clocks (and a clock to
      restart the free list).
    """

    def __init__(self, geometry: FlowGeometry | None = None, **sizes):
        """``FlowTable(geometry)`` or ``FlowTable(key_width=..., buckets=..., ...)``
        (the fields of :class:`FlowGeometry`)."""
        if geometry is None:
            geometry = FlowGeometry(**sizes)
        elif sizes:
            raise TypeError(f"give a geometry or sizes, not both: {sizes!r}")
        if not isinstance(geometry, FlowGeometry):
            raise TypeError(f"geometry must be a FlowGeometry, not {geometry!r}")
        self.geometry = g = geometry
        hb, ts = g.handle_bits, g.ts_width
        #: Clocks from a lookup's transfer to its result.
        self.latency = g.tables + 9
        self.slot_layout = data.StructLayout({"valid": 1, "key": g.rest_width, "handle": hb})
        self.bucket_layout = data.ArrayLayout(self.slot_layout, g.ways)
        self.loc_layout = data.StructLayout({
            "table": _bits(g.tables), "bucket": g.index_bits, "way": _bits(g.ways)})
        self.cnt_layout = data.StructLayout({
            "packets": g.packets_width, "bytes": g.bytes_width, "last_seen": ts})
        super().__init__({
            "lookup": In(stream.Signature(
                data.StructLayout({"key": g.key_width}))),
            "result": Out(stream.Signature(data.StructLayout({
                "key": g.key_width, "hit": 1, "handle": hb, "action": g.action_width}))),
            "touch": In(stream.Signature(data.StructLayout({
                "handle": hb, "nbytes": g.nbytes_width, "now": ts}))),
            "cmd": In(stream.Signature(command_layout(g))),
            "rsp": Out(stream.Signature(response_layout(g))),
        })

    def elaborate(self, platform):
        g = self.geometry
        T, W, N = g.tables, g.ways, g.entries
        ib, tb, wb, hb = g.index_bits, _bits(T), _bits(W), g.handle_bits
        masks = h3_masks(g)
        m = Module()
        ecp5 = builds_lut4s(platform)

        # keymem in the EBR's 36-bit mode with a write enable per slot (7 EBR
        # at 512 rows x 2 x 109 bits, as Yosys's mapping), read through its
        # output register: data two clocks after the address.
        m.submodules.keymem = keymem = BlockRAM(self.bucket_layout, T * g.buckets,
                                                granularity=self.slot_layout.size)
        # Read through the block RAM's own output register (BlockRAM): data
        # two clocks after the address, always reading.
        m.submodules.actmem = actmem = BlockRAM(g.action_width, N)
        m.submodules.cntmem = cntmem = BlockRAM(self.cnt_layout, N)
        m.submodules.locmem = locmem = BlockRAM(self.loc_layout, N)
        m.submodules.fifomem = fifomem = BlockRAM(hb, N)
        krd, kwr = keymem.read, keymem.write
        ard, awr = actmem.read, actmem.write
        cwr, crd = cntmem.write, cntmem.read
        lrd, lwr = locmem.read, locmem.write
        frd, fwr = fifomem.read, fifomem.write
        m.d.comb += [ard.en.eq(1), ard.out_en.eq(1), frd.en.eq(1), frd.out_en.eq(1),
                     krd.en.eq(1), krd.out_en.eq(1)]

        def row(t, bucket):
            """A bucket's keymem address: the sub-tables stacked."""
            return Cat(bucket[:ib], Const(t, tb) if isinstance(t, int) else t[:tb])

        cmd = Signal.like(self.cmd.payload)  # the command being executed
        # Requests the control FSM drives (combinationally, default idle).
        s_req = Signal()  # search ``hkey``
        # Registers, not state-decoded muxes, in front of the EBR ports:
        # ``rd_row``/``rd_way`` the keymem row and way the FSM reads or
        # writes (also the flush sweep), ``c_raddr`` its cntmem read address;
        # its actmem reads are at ``cmd.handle``.
        rd_row, rd_way = Signal(ib + tb, name="rd_row"), Signal(wb, name="rd_way")
        c_raddr = Signal(hb)
        # The FSM's counter write (a new entry's, or CLEAR's: zero counters,
        # last_seen = now): ``c_we`` a flop set by the state before WRITE NEW
        # or CLEAR COUNTERS, cleared by the grant, the address picked by the
        # command (state decodes here fed ``new_hit``'s compare, 8.7 ns).
        c_we = Signal()
        op_clear = Signal()  # ``cmd.op == CLEAR``, decoded as the command is taken
        # ``cmd.op`` FIND and DELETE decoded as the command is taken too: the
        # decode was a level in front of ``r.handle``, ``r.found`` and the
        # move to RESPOND (``cmd.op`` -> ``rsp.payload``, 5 levels).
        op_find, op_delete = Signal(name="op_find"), Signal(name="op_delete")
        # actmem's write enable, a flop set by the state before the write's
        # (decoded from the state it was 8.1 ns to the EBR).
        aw_en = Signal()
        m.d.sync += aw_en.eq(0)
        c_waddr = Signal(hb)
        new_handle = Signal(hb)  # the FSM's actmem (and a new entry's counter) address
        c_wdata = Signal(self.cnt_layout)
        kw_en, kw_all, kw_valid = Signal(name="kw_en"), Signal(name="kw_all"), Signal(name="kw_valid")
        wr_move = Signal()  # a keymem write writes the moved slot (else the new key)

        # ---- search sequencer and lookup pipeline (see "Pipeline").  A
        # search taken in p0 has its key in ``q_key`` (p0'), hashed into
        # ``p1_idx``, and reads sub-table ``s_t`` in each of the next T
        # clocks; ``hold`` (more reads of it to come) keeps p1 and the keymem
        # writes still, so a search sees the sub-tables of one instant.  The
        # hash trees start from a register (``q_key``): with the lookup/FSM
        # key mux in front of them they were the table's worst path
        # (``hkey`` -> mux -> XOR trees -> ``p1_idx``, 8.6 ns).  They take two
        # clocks (H3 is linear): each index bit's parity over either half of
        # its mask's key bits into ``h_part`` (3 levels behind ``q_key``'s
        # net), their XOR a clock later (in one clock: a 2.7 ns net from
        # ``q_key`` and 5 levels, 8.1 ns, the DFS's worst path).
        lkey = self.lookup.payload.key
        hkey = Signal(g.key_width)  # the control FSM's key (or a key to restore)
        q_key = Signal(g.key_width)  # hashed this clock
        h_part = [[Signal(ib, name=f"h_part{t}_{p}") for p in range(2)] for t in range(T)]
        for t in range(T):
            m.d.sync += [r.eq(v) for r, v in zip(h_part[t], h3_parts(q_key, masks[t], 2, m=m, name=f"h3t{t}", platform=platform), strict=True)]
        hidx = [Signal(ib, name=f"hidx{t}") for t in range(T)]
        m.d.comb += [hidx[t].eq(h_part[t][0] ^ h_part[t][1]) for t in range(T)]
        s_valid, s_t, s_last, s_fsm = (
            Signal(name="s_valid"), Signal(tb, name="s_t"), Signal(name="s_last"), Signal(name="s_fsm"))
        hold = Signal()
        m.d.comb += hold.eq(s_valid & ~s_last)
        # A take every T clocks at most (``busy`` counts down to the next),
        # so p1 is free the clock after each take.  ``free`` (busy == 0) is a
        # flop of its own: it is ``lookup.ready``, and in the DFS the lookup
        # sharer's and the forwarders' handshakes hung behind its decode.
        busy = Signal(range(T))
        free = Signal(init=1)
        # The hash units serve the control FSM in clocks without a lookup
        # and free: ``hkey`` goes into ``q_key``, its registered index is in
        # ``p1_idx`` three clocks after.
        h_grant = ~self.lookup.valid & free
        s_take = (self.lookup.valid | s_req) & free
        q_valid, q_fsm = Signal(name="q_valid"), Signal(name="q_fsm")
        q2_valid, q2_fsm = Signal(name="q2_valid"), Signal(name="q2_fsm")  # ``h_part`` holds it
        m.d.sync += [q_valid.eq(s_take), q_fsm.eq(~self.lookup.valid),
                     q2_valid.eq(q_valid), q2_fsm.eq(q_fsm)]
        # ``q_key`` loads only while ``free``: a lookup's key stays there
        # for the ``tables`` clocks until the next take, long enough for the
        # compare stage to take it (below) without a register per stage.
        with m.If(free):
            m.d.sync += q_key.eq(Mux(self.lookup.valid, lkey, hkey))
        with m.If(s_take):
            m.d.sync += [busy.eq(T - 1), free.eq(T == 1)]
        with m.Elif(~free):
            m.d.sync += [busy.eq(busy - 1), free.eq(busy == 1)]
        with m.If(q2_valid):
            m.d.sync += [s_valid.eq(1), s_t.eq(0), s_last.eq(0), s_fsm.eq(q2_fsm)]
        with m.Elif(s_valid):
            m.d.sync += [s_t.eq(s_t + 1), s_last.eq(s_t == T - 2), s_valid.eq(~s_last)]
        p1_idx = [Signal(ib, name=f"p1_idx{t}") for t in range(T)]
        with m.If(~hold):
            m.d.sync += [p1_idx[t].eq(hidx[t]) for t in range(T)]
        # The key a search compares: ``q_key`` holds it for ``tables``
        # clocks after the take, which reaches the clock its first row is in
        # p2 when tables >= 4; with fewer ``p1_key`` (held with p1) bridges
        # the gap.
        if T >= 4:
            key_src = q_key
        else:
            key_src = Signal(g.key_width, name="p1_key")
            with m.If(~hold):
                m.d.sync += key_src.eq(q_key)
        # The control FSM reads single rows in the clocks without a search read.
        k_grant = ~s_valid
        # A search's buckets in the order it reads them, from registers: the
        # next read's in ``k_bucket``, the later ones' in ``k_next`` (shifted
        # on every clock), so the EBR address is a flop and one LUT (the
        # sub-table mux of ``p1_idx`` behind ``s_t`` was 3 levels and a net to
        # the 7 EBR, 7.8 ns).
        k_bucket = Signal(ib, name="k_bucket")
        k_next = [Signal(ib, name=f"k_next{t}") for t in range(1, T)]
        with m.If(q2_valid):
            m.d.sync += [k_bucket.eq(hidx[0])] + [k_next[t - 1].eq(hidx[t]) for t in range(1, T)]
        with m.Else():
            m.d.sync += [dst.eq(src) for dst, src in zip([k_bucket] + k_next, k_next, strict=False)]
        m.d.comb += krd.addr.eq(Mux(s_valid, row(s_t, k_bucket), rd_row))

        # What travels with a search's row down the stages: which search
        # (a lookup or the FSM's), which sub-table, first and last of it.
        def tags(n):
            return SimpleNamespace(**{name: Signal(shape, name=f"p{n}_{name}") for name, shape in
                                      (("valid", 1), ("t", tb), ("first", 1), ("last", 1),
                                       ("fsm", 1))})

        def copy(dst, src):
            m.d.sync += [v.eq(getattr(src, k)) for k, v in vars(dst).items()]

        p1 = SimpleNamespace(valid=s_valid, t=s_t, first=s_t == 0, last=s_last, fsm=s_fsm)
        p2, p3, p4 = tags(2), tags(3), tags(4)
        p3_key, p4_key = (Signal(g.key_width, name=f"p{n}_key") for n in (3, 4))
        copy(p2, p1)
        # p3: the row in the block RAM's output register (``kd``; p2 is the
        # array's read; the FSM takes its single rows from there); p3r: the
        # compare's first half, each 8-bit chunk of each slot's key equal
        # (two LUT levels) into ``eq_r``, valid bits and handles beside it;
        # p4 ANDs the chunks.  (The whole compare in one clock behind the
        # output register: 2-3 ns of route from the EBR, then 5 LUT levels,
        # 107-116 MHz; behind a fabric copy of the row, 218 flops more,
        # 118-121 MHz.)
        kd = krd.data
        copy(p3, p2)
        # ``p3_key`` is the search's key for all its rows in p3 (taken as
        # its first row enters p3; the next search's first row is there
        # ``tables`` clocks later at the earliest), not a copy per stage.
        with m.If(p2.valid & p2.first):
            m.d.sync += p3_key.eq(key_src)
        p3r, p3r_key = tags("3r"), Signal(g.key_width, name="p3r_key")
        rest = p3_key[ib:]
        chunks = range(0, len(rest), 8)
        eq_r = [Signal(len(chunks), name=f"eq_r{w}") for w in range(W)]
        kd_r = Signal(data.ArrayLayout(data.StructLayout({"valid": 1, "handle": hb}), W))
        copy(p3r, p3)
        m.d.sync += p3r_key.eq(p3_key)
        # (Each chunk's compare in LUT4s, two levels: ABC chained them to
        # four behind the EBR's output register.)
        for w in range(W):
            m.d.sync += [eq_r[w].eq(Cat(*(lut_eq(m, f"eq{w}_{c // 8}", kd[w].key[c:c + 8], rest[c:c + 8], instance=ecp5)
                                          for c in chunks))),
                         kd_r[w].valid.eq(kd[w].valid), kd_r[w].handle.eq(kd[w].handle)]
        # p4: ``ways`` comparators; a key's slots all carry the same handle,
        # even mid-move, so an OR is the priority-free answer.
        p4_match = Signal(W)
        p4_slotvalid = Signal(W)
        p4_handles = Signal(data.ArrayLayout(hb, W))
        copy(p4, p3r)
        # Each way's match (its valid bit and chunks ANDed, two levels of
        # LUT4s), and the same AND with each handle bit for ``p4_row``
        # (below): the groups of four are shared, and the last group takes
        # the handle bit where it has room.
        def way_match(w):
            items = [kd_r[w].valid, *eq_r[w]]
            groups = [items[i:i + 4] for i in range(0, len(items), 4)]
            last = groups.pop() if len(groups[-1]) < 4 else []  # room for the handle bit
            shared = [lut_and(m, f"handle{w}_g{i}", g, instance=ecp5) for i, g in enumerate(groups)]
            match = lut_and(m, f"match{w}", shared + ([lut_and(m, f"match{w}_last", last, instance=ecp5)]
                                                       if last else []), instance=ecp5)
            handles = [lut_and(m, f"handle{w}_{b}",
                               shared + [lut_and(m, f"handle{w}_{b}_last", [*last, kd_r[w].handle[b]],
                                                 instance=ecp5)],
                               instance=ecp5)
                       for b in range(hb)]
            return match, handles

        p3r_match, way_handles = zip(*(way_match(w) for w in range(W)), strict=True)
        m.d.sync += [
            p4_key.eq(p3r_key),
            p4_match.eq(Cat(*p3r_match)),
            p4_slotvalid.eq(Cat(*(kd_r[w].valid for w in range(W)))),
            p4_handles.eq(Cat(*(kd_r[w].handle for w in range(W)))),
        ]
        acc_hit = Signal(name="acc_hit")
        p4_hit, p4_handle = Signal(name="p4_hit"), Signal(hb, name="p4_handle")
        m.d.comb += p4_hit.eq(p4_match.any() | (acc_hit & ~p4.first))
        m.d.sync += acc_hit.eq(p4_hit)
        # ``p4_handle``, the OR of the matching ways' handles over the
        # search's rows so far: this row's (``p4_row``, a register made from
        # p3r's) ORed with the rows' before it (``p4_acc``, a register made
        # from p4's flops).  It is actmem's read address, behind one LUT
        # with the address mux (an AND-OR and that mux were 3 levels in
        # front of a net to the ten EBRs, actmem ADB 8.8 ns, 6a07163).
        # ``p4_row``'s bits are each way's match ANDed with its handle bit
        # in one tree (its first level shared with the match), and the ways'
        # OR: 3 levels behind ``eq_r`` (the match, then an AND-OR with the
        # accumulated handle, were 4: p4_handle 8.29 ns on the 25F, syn_c
        # seed 3; ABC's chain of the same was 5, 7.43 ns at aa681c4).
        p4_row, p4_acc = Signal(hb, name="p4_row"), Signal(hb, name="p4_acc")
        m.d.sync += [p4_row.eq(Cat(*(lut_or(m, f"p4_row_{b}", [h[b] for h in way_handles], instance=ecp5)
                                     for b in range(hb)))),
                     p4_acc.eq(Mux(p3r.first, 0, p4_handle))]
        m.d.comb += p4_handle.eq(p4_row | p4_acc)
        p4_done = p4.valid & p4.last
        a_grant = ~p4_done
        m.d.comb += ard.addr.eq(Mux(p4_done, p4_handle, cmd.handle))
        p5_valid, p5_key, p5_hit = (
            Signal(name="p5_valid"), Signal(g.key_width, name="p5_key"), Signal(name="p5_hit"))
        p5_handle = Signal(hb)
        m.d.sync += [p5_valid.eq(p4_done & ~p4.fsm), p5_key.eq(p4_key), p5_hit.eq(p4_hit),
                     p5_handle.eq(p4_handle)]
        # p6: the action in the block RAM's output register (``ard.data``).
        # p7: into flops, zeroed on a search's miss.
        p6_valid, p6_key, p6_hit = (
            Signal(name="p6_valid"), Signal(g.key_width, name="p6_key"), Signal(name="p6_hit"))
        p7_valid, p7_key, p7_hit = (
            Signal(name="p7_valid"), Signal(g.key_width, name="p7_key"), Signal(name="p7_hit"))
        # The zeroing is the result flops' synchronous reset where Yosys
        # finds it (``reset_less``: the domain's reset would take it), else a
        # LUT; either way behind the EBR's output register now, not its
        # 5.8 ns array clock-to-out.  The FSM takes its own actmem reads from
        # ``ard.data`` (never zeroed: they are never in p4 with a search).
        p6_handle, p7_handle = Signal(hb, name="p6_handle"), Signal(hb, name="p7_handle")
        p7_action = Signal(g.action_width, reset_less=True)
        p5_miss, p6_miss = Signal(name="p5_miss"), Signal(name="p6_miss")
        m.d.sync += [p5_miss.eq(p4_done & ~p4_hit), p6_miss.eq(p5_miss),
                     p6_valid.eq(p5_valid), p6_key.eq(p5_key), p6_hit.eq(p5_hit),
                     p6_handle.eq(p5_handle),
                     p7_valid.eq(p6_valid), p7_key.eq(p6_key), p7_hit.eq(p6_hit),
                     p7_handle.eq(p6_handle), p7_action.eq(Mux(p6_miss, 0, ard.data))]
        m.d.comb += [
            self.lookup.ready.eq(free),
            self.touch.ready.eq(1),
            self.result.valid.eq(p7_valid),
            self.result.payload.key.eq(p7_key),
            self.result.payload.hit.eq(p7_hit),
            self.result.payload.handle.eq(p7_handle),
            self.result.payload.action.eq(p7_action),
        ]

        # What the control FSM's searches leave behind, bucket by bucket as
        # they pass p4: the candidates' valid bits and handles (or, for the
        # search of a key it may move, ``av_ok``/``av_fw``), and the hit.
        cap_alt = Signal()
        # The buckets of the key searched (``cidx``) and of a key to move
        # (``midx``), from ``p1_idx``.
        cidx = [Signal(ib, name=f"cidx{t}") for t in range(T)]
        midx = [Signal(ib, name=f"midx{t}") for t in range(T)]
        mt = Signal(tb, name="mt")
        # For the search of a key the FSM may move (from candidate table
        # ``mt``, fixed while it runs): whether sub-table t's bucket has a
        # free slot and t is not ``mt`` (``av_ok``), and its first free way
        # (``av_fw``), so MOVE PICK is a priority pick of flops (from the
        # buckets' valid bits and ``mt`` it was 5 levels into ``pk_*``).
        av_ok = Signal(T, name="av_ok")
        av_fw = [Signal(wb, name=f"av_fw{t}") for t in range(T)]
        chandle = [Signal(data.ArrayLayout(hb, W), name=f"chandle{t}") for t in range(T)]
        c_hit, c_hhandle = Signal(name="c_hit"), Signal(hb, name="c_hhandle")
        # The candidate analysis as the buckets pass (from ``p4_slotvalid``,
        # flops): the sub-table with the fewest used slots, the first such,
        # and its first free way, kept in ``best_*`` while the tables go by
        # in order (the analysis of all T buckets at once, popcounts and a
        # compare chain, was 7 levels in front of ``tgt_t``/``tgt_w``).
        run_used, run_t, run_w = (Signal(range(W + 1), name="run_used"), Signal(tb, name="run_t"),
                                  Signal(wb, name="run_w"))
        p4_used = sum(p4_slotvalid[w] for w in range(W))
        p4_fw = Const(0, wb)
        for w in reversed(range(W)):
            p4_fw = Mux(~p4_slotvalid[w], w, p4_fw)
        # ``run_bucket``: the bucket of ``run_t`` (``cidx`` is loaded before
        # the search's first row is in p4), taken with it: the mux of
        # ``cidx`` by ``run_t`` was in front of ``tgt_bucket``, 5 levels.
        run_bucket = Signal(ib, name="run_bucket")
        with m.If(p4.valid & p4.fsm & ~cap_alt & (p4.first | (p4_used < run_used))):
            m.d.sync += [run_used.eq(p4_used), run_t.eq(p4.t), run_w.eq(p4_fw),
                         run_bucket.eq(Array(cidx)[p4.t])]
        with m.If(p4.valid & p4.fsm):
            with m.Switch(p4.t):
                for t in range(T):
                    with m.Case(t):
                        with m.If(cap_alt):
                            m.d.sync += [av_ok[t].eq(~p4_slotvalid.all() & (mt != t)),
                                         av_fw[t].eq(p4_fw)]
                        with m.Else():
                            m.d.sync += chandle[t].eq(p4_handles)
            m.d.sync += [c_hit.eq(p4_hit), c_hhandle.eq(p4_handle)]
        search_done = p4_done & p4.fsm

        # ---- counter pipeline: t0 read address, t1 the array's read, t2 the
        # block RAM's output register (``crd.data``), t3 the data in ``cd``,
        # add into the write register ``w``, t4 ``w`` written.  Every write
        # (a touch's or the FSM's) goes through ``w``, so the adders end in
        # flops and the EBR's data comes from flops.  The four writes a
        # read cannot see (in its own clock, where the EBR's answer is
        # undefined, and the three after) are forwarded from registers: the
        # newest (``w``, the touch just ahead) on its own, the three older
        # merged with the array's answer into ``cd``, each hit known a clock
        # before it is used, so only a 2:1 mux sits in front of the adders.
        # (Adding straight from the output register made the read-add-write
        # one path from EBR to EBR across the die, 104.7 MHz routed; taking
        # the data without the output register left the EBR's 5.8 ns
        # clock-to-out in front of ``cd``, 114.5 MHz; writing from the
        # adders, ``cd`` -> 40-bit add -> EBR data, 115.1 MHz.)  The FSM
        # reads only with no touch in t0 .. t3 and no write in ``w``.
        m.d.comb += [crd.en.eq(1), crd.out_en.eq(1),
                     crd.addr.eq(Mux(self.touch.valid, self.touch.payload.handle, c_raddr))]
        tv = [Signal(name=f"t{n}_valid") for n in range(1, 4)]
        tp = [Signal.like(self.touch.payload, name=f"t{n}") for n in range(1, 4)]
        m.d.sync += [tv[0].eq(self.touch.valid), tp[0].eq(self.touch.payload)]
        m.d.sync += [tv[n].eq(tv[n - 1]) for n in range(1, 3)]
        m.d.sync += [tp[n].eq(tp[n - 1]) for n in range(1, 3)]
        t1, t2, t3_valid, t3 = tp[0], tp[1], tv[2], tp[2]
        cd = Signal(self.cnt_layout, reset_less=True)
        # ``nxt``: what ``w`` takes (the touch in t3, else the FSM's write);
        # ``lw1``/``lw2``: ``w`` one and two clocks ago.
        nxt_en, nxt_addr, nxt_data = (
            Signal(name="nxt_en"), Signal(hb, name="nxt_addr"), Signal(self.cnt_layout, name="nxt_data"))
        w_en, w_addr, w_data = (
            Signal(name="w_en"), Signal(hb, name="w_addr"), Signal(self.cnt_layout, name="w_data"))
        lw1_en, lw1_addr, lw1_data = (
            Signal(name="lw1_en"), Signal(hb, name="lw1_addr"), Signal(self.cnt_layout, name="lw1_data"))
        lw2_data = Signal(self.cnt_layout)
        m.d.sync += [w_en.eq(nxt_en), w_addr.eq(nxt_addr), w_data.eq(nxt_data),
                     lw1_en.eq(w_en), lw1_addr.eq(w_addr), lw1_data.eq(w_data),
                     lw2_data.eq(lw1_data)]
        m.d.comb += [cwr.en.eq(w_en), cwr.addr.eq(w_addr), cwr.data.eq(w_data)]
        c_grant_r = ~self.touch.valid & ~Cat(*tv).any() & ~w_en
        # For the touch in t1: did the write of the next clock (``nxt``), of
        # this one (``w``) or of the last (``lw1``) hit its handle?
        # The hits on ``nxt`` per source (the touch in t3, or the FSM's
        # write at one of its two addresses), each compare from registers:
        # after ``nxt``'s address mux it was 7 levels from ``t3_valid``.
        # The compares in LUT4s (see ``_lut_eq``), each bit of the FSM's
        # write address compared behind its mux in one LUT; ABC chained
        # them to 5 levels into ``h_a``, ``h_b``, ``h_c``.
        h_a, h_b, h_c = Signal(name="h_a"), Signal(name="h_b"), Signal(name="h_c")
        c_eq_t1 = [lut4(m, f"c_eq_t1_{i}", [op_clear, cmd.handle[i], new_handle[i], t1.handle[i]],
                         lambda s, x, y, t: ((s & x) | ((s ^ 1) & y)) ^ t ^ 1, instance=ecp5) for i in range(hb)]
        t3_hit_t1 = lut_eq(m, "t3_eq_t1", t3.handle, t1.handle, instance=ecp5, also=[t3_valid])
        c_hit_t1 = lut_and(m, "c_hit_t1", [*c_eq_t1, c_we], instance=ecp5)
        # Each only for a touch in t1 (``t1_valid``): ``cd`` takes the
        # block RAM's answer when none hits, and an FSM's read must see the
        # array whatever stale handle t1 holds (its grant, no touch or write
        # around it, implies as much today; this keeps ``cd`` right alone).
        t1_valid = tv[0]
        m.d.sync += [h_a.eq(lut4(m, "h_a_or", [t3_hit_t1, c_hit_t1, t3_valid, t1_valid],
                                  lambda x, y, v, t: (x | (y & (v ^ 1))) & t, instance=ecp5)),
                     h_b.eq(lut_eq(m, "w_eq_t1", w_addr, t1.handle, instance=ecp5, also=[w_en, t1_valid])),
                     h_c.eq(lut_eq(m, "lw1_eq_t1", lw1_addr, t1.handle, instance=ecp5, also=[lw1_en, t1_valid]))]
        # For the touch in t2: the older three merged with the block RAM's
        # answer into ``cd`` (a clock before the add, so a single LUT, the
        # newest write's, sits in front of the adders: the older ones'
        # select was a flop of fanout 72 and two LUTs, 7.74 ns on the 25F),
        # the newest (``w`` in its t3) on its own.
        # ``new_hit`` is ``h_a``'s test for t2's handle, from compares made
        # a clock ahead against t1's handle (t2's now): t3 is t2 a clock late, and
        # the FSM's write address is put a clock before ``c_we`` rises and
        # held while it is up ("ALLOCATED"), so one LUT is in front of the
        # flop (the compares and the address mux were 5 levels, 8.48 ns).
        t3_is_t2, c_is_t2 = Signal(), Signal()
        m.d.sync += [t3_is_t2.eq(t2.handle == t1.handle),
                     c_is_t2.eq(lut_and(m, "c_eq_t1", c_eq_t1, instance=ecp5))]
        m.d.sync += cd.eq(Mux(h_a, w_data, Mux(h_b, lw1_data, Mux(h_c, lw2_data, crd.data))))
        # ``new_hit`` in three flops, one per group of the adders' LUTs
        # (the packets, the bytes' two halves), each near its own.
        new_hit_next = (t3_valid & t3_is_t2) | (~t3_valid & c_we & c_is_t2)
        new_hit_packets, new_hit_bytes_lo, new_hit_bytes_hi = (
            flop_copy(m, new_hit_next, name=f"new_hit_{what}") for what in ("packets", "bytes_lo", "bytes_hi"))
        half = len(cd.bytes) // 2
        base = Signal(self.cnt_layout)
        m.d.comb += [base.packets.eq(Mux(new_hit_packets, w_data.packets, cd.packets)),
                     base.bytes[:half].eq(Mux(new_hit_bytes_lo, w_data.bytes[:half], cd.bytes[:half])),
                     base.bytes[half:].eq(Mux(new_hit_bytes_hi, w_data.bytes[half:], cd.bytes[half:]))]
        c_grant_w = ~t3_valid
        with m.If(c_grant_w):
            m.d.sync += c_we.eq(0)
        with m.If(t3_valid):
            m.d.comb += [
                nxt_addr.eq(t3.handle), nxt_en.eq(1),
                nxt_data.packets.eq(base.packets + 1),
                nxt_data.bytes.eq(base.bytes + t3.nbytes),
                nxt_data.last_seen.eq(t3.now),
            ]
        with m.Elif(c_we):
            m.d.comb += [nxt_addr.eq(c_waddr), nxt_en.eq(1), nxt_data.eq(c_wdata)]

        # ---- keymem writes (control only, never in a clock with a search
        # read: the EBR's answer to a read of the row written in the same
        # clock is undefined): one slot or a whole row (flush), at ``rd_row``.
        # An invalidated slot keeps whatever key and handle bits: only its
        # valid bit is ever read.  (The FSM's own row reads may collide with
        # its writes: it takes no row read in a clock it writes.)
        # The write goes through registers (``kw_r_*``) and lands the clock
        # after its grant: a search reads the next clock if one reads now
        # and more are to come (``hold``) or one was taken two clocks before
        # (``q2_valid``).  (Decoded straight from the FSM state into the EBR's
        # byte enables it was the table's worst path, 9.1 ns.)  ``kw_grant``
        # (``~hold & ~q2_valid``) is a flop, its value worked out a clock
        # ahead from the sequencer's next state: the FSM's writes and the
        # answer's valid behind them hung on ``s_valid`` (6 levels, fanout
        # 127, in the DFS).
        kw_grant = Signal(init=1, name="kw_grant")
        hold_next = Mux(q2_valid, 1, s_valid & ~s_last & (s_t != T - 2))
        m.d.sync += kw_grant.eq(~hold_next & ~q_valid)
        # Only the valid bit of the written slot is registered: its key and
        # handle are a mux of flops (``hkey``, ``mslot``, the command's key,
        # ``new_handle``, picked by ``wr_move``) that keep their values in
        # the clock the write lands, which a 109-bit register only copied.
        kw_slot = Signal(self.slot_layout)
        kw_r_en, kw_r_addr = Signal(W, name="kw_r_en"), Signal(ib + tb, name="kw_r_addr")
        kw_r_valid = Signal(name="kw_r_valid")
        kw_r_slot = Signal(self.slot_layout)
        m.d.comb += [kw_r_slot.eq(kw_slot), kw_r_slot.valid.eq(kw_r_valid)]
        m.d.sync += [kw_r_addr.eq(rd_row), kw_r_valid.eq(kw_valid), kw_r_en.eq(0)]
        with m.If(kw_all & kw_grant):
            m.d.sync += kw_r_en.eq((1 << W) - 1)
        with m.Elif(kw_en & kw_grant):
            m.d.sync += kw_r_en.eq(1 << rd_way)
        m.d.comb += [kwr.addr.eq(kw_r_addr), kwr.data.eq(Cat(*([kw_r_slot.as_value()] * W))),
                     kwr.en.eq(kw_r_en)]

        # ---- control FSM state.
        mslot = Signal(self.slot_layout)  # the one slot the FSM holds
        mw = Signal(wb, name="mw")
        # ``cidx[mt]`` in a register kept with ``mt`` (loaded where ``mt``
        # is): the mux by ``mt`` was in front of ``rd_row``'s AND-OR and of
        # ``tgt_bucket``.
        mt_bucket = Signal(ib, name="mt_bucket")
        # (mt, mw) one-hot too (bit mt * W + mw), kept with it: the candidate's
        # handle for the cntmem's address is an AND-OR of flops (a mux by
        # the binary pair was 6 levels into ``c_raddr``).
        mtw_1h = Signal(T * W, name="mtw_1h", init=1)
        tgt_t, tgt_w = Signal(tb, name="tgt_t"), Signal(wb, name="tgt_w")
        # The target's bucket, taken with tgt_t (the bucket mux by tgt_t was
        # in front of ``rd_row``'s AND-OR, rl_alloc -> rd_row 6 levels).
        tgt_bucket = Signal(ib, name="tgt_bucket")
        best_t, best_w = Signal(tb, name="best_t"), Signal(wb, name="best_w")
        pk_ok, fr_ok = Signal(name="pk_ok"), Signal(name="fr_ok")
        pk_t, pk_w = Signal(tb, name="pk_t"), Signal(wb, name="pk_w")
        pk_bucket = Signal(ib, name="pk_bucket")
        e_age, e_cnt, e_kept = (
            Signal(g.ts_width, name="e_age"), Signal(self.cnt_layout, name="e_cnt"), Signal(name="e_kept"))
        e_t, e_w = Signal(tb, name="e_t"), Signal(wb, name="e_w")
        fresh = Signal(range(N + 1))
        fhead, ftail = Signal(hb, name="fhead"), Signal(hb, name="ftail")
        best_age = Signal(g.ts_width)
        chosen = Signal()  # a victim candidate was found (the kept handle is skipped)
        # The candidate in ``e_*`` is the oldest so far: a flop, not the age
        # compare, in front of the ~100 enables of ``best_*`` and ``r``'s
        # counters (the compare's carry chain -> ``r`` loads was the table's
        # worst path, 8.4 ns).
        ld_best = Signal()
        ld_key, ld_key_rs = Signal(name="ld_key"), Signal(name="ld_key_rs")
        # ``best_bucket``: the victim's bucket, taken with it (cidx holds the
        # key's buckets meanwhile): the bucket mux by ``best_t`` was in front
        # of ``rd_row``, 6 levels.
        best_bucket = Signal(ib)
        with m.If(ld_best):
            m.d.sync += [chosen.eq(1), best_age.eq(e_age), best_t.eq(e_t), best_w.eq(e_w),
                         best_bucket.eq(Array(cidx)[e_t])]
        # ``lrd.addr`` is ``cmd.handle``: ``loc`` holds its slot two clocks
        # after the command is taken, in the EBR's output register.
        loc = lrd.data
        m.d.comb += [lrd.en.eq(1), lrd.out_en.eq(1)]
        # Zeroed while idle by the flops' synchronous reset (free without
        # the domain's reset), not a LUT per bit.
        r = Signal.like(self.rsp.payload, reset_less=True)
        # ``idle`` is a flop of its own, not the FSM's state decode: it
        # enables the ~600 flops of ``cmd``, ``hkey`` and ``r`` (a decoded
        # state there was the table's worst path, 96 % routing).
        idle = Signal(init=1)

        def wrap(ptr):
            return Mux(ptr == N - 1, 0, ptr + 1)

        # actmem is written at ``new_handle`` with the command's action, the
        # enable ``aw_en`` a flop (a state-gated data or address was a LUT
        # per bit in front of the EBR's write port, 101.6 MHz).
        m.d.comb += [awr.addr.eq(new_handle), awr.data.eq(cmd.action), awr.en.eq(aw_en)]
        m.d.comb += [c_waddr.eq(Mux(op_clear, cmd.handle, new_handle)),
                     c_wdata.last_seen.eq(cmd.now)]
        m.d.comb += [frd.addr.eq(fhead), fwr.addr.eq(ftail), fwr.data.eq(cmd.handle),
                     lrd.addr.eq(cmd.handle),
                     kw_slot.valid.eq(kw_valid),
                     # a new entry's key from ``r.key``, the command's until
                     # the write (an eviction's answer takes the victim's
                     # after it): no copy of it in ``cmd``
                     kw_slot.key.eq(Mux(wr_move, hkey[ib:], r.key[ib:])),
                     kw_slot.handle.eq(Mux(wr_move, mslot.handle, new_handle)),
                     lwr.addr.eq(kw_slot.handle), lwr.data.table.eq(rd_row[ib:]),
                     lwr.data.bucket.eq(rd_row[:ib]), lwr.data.way.eq(rd_way)]
        # The FIFO's head, registered straight from the EBR (its head moves
        # at most once a command, many clocks before the next ALLOCATE).
        fifo_out = frd.data

        # Candidate analysis: kept as the key's candidate buckets passed (above).
        best_ft, best_fw = run_t, run_w
        has_free = run_used < W
        # Move analysis (from ``av_ok``/``av_fw``, the moving key's buckets):
        # the first sub-table with room, its bucket too.
        mv_ok, mv_t, mv_w = av_ok.any(), Const(0, tb), Const(0, wb)
        mv_bucket = Const(0, ib)
        for u in reversed(range(T)):
            mv_t = Mux(av_ok[u], u, mv_t)
            mv_w = Mux(av_ok[u], av_fw[u], mv_w)
            mv_bucket = Mux(av_ok[u], midx[u], mv_bucket)
        # The handle of candidate (mt, mw), for the ages: an AND-OR by the
        # one-hot copy (indexing by a Value would build a shifter).
        ehandle = Signal(hb)
        m.d.comb += ehandle.eq(onehot_mux(mtw_1h, [chandle[t][w] for t in range(T) for w in range(W)]))
        # The cntmem read address a clock ahead: the eviction's candidate
        # handle (after the moves) or the command's.
        m.d.sync += c_raddr.eq(Mux(cap_alt, ehandle, cmd.handle))
        # One row read: the slot of way ``rd_way`` goes into ``mslot``.
        kd_way = Signal(self.slot_layout)
        with m.Switch(rd_way):
            for w in range(W):
                with m.Case(w):
                    m.d.comb += kd_way.eq(kd[w])
        # Key restore (see h3_restore) on the shared hash units: a state sets
        # the table and the bucket (``rs_t_r``, ``rs_b_r``) and ``rs_load``,
        # and the clock after ``hkey`` takes the stored rest with zero low
        # bits; in a later clock with ``h_grant`` the hash units give the
        # parity of the rest under each mask, so the low bits are the
        # bucket's XOR that, ``hkey`` taking them where ``rs_hkey`` (a flop
        # too) says.  (A restore unit of its own is T * index_bits more parity
        # trees.  ``hkey``'s ~100 enables decoded from the state were the
        # table's worst path, 6.9 ns.)
        rs_load, rs_hkey = Signal(name="rs_load"), Signal(name="rs_hkey")
        rs_t_r, rs_b_r = Signal(tb, name="rs_t_r"), Signal(ib, name="rs_b_r")
        m.d.sync += [rs_load.eq(0), rs_hkey.eq(0)]
        rs_key = Cat(rs_b_r ^ Array(p1_idx)[rs_t_r], hkey[ib:])
        # (``rs_load`` is up in a fetch's TAKE: the rest comes from the row
        # read, not from ``mslot``, which so keeps no key; a moved slot's key
        # is written back from ``hkey``.)
        with m.If(rs_load):
            m.d.sync += hkey.eq(Cat(Const(0, ib), kd_way.key))
        with m.If(rs_hkey):
            m.d.sync += hkey.eq(rs_key)

        def restore(t, b):
            """Statements of the state before the restore's ``hkey`` load."""
            return [rs_load.eq(1), rs_t_r.eq(t), rs_b_r.eq(b)]
        age = Signal(g.ts_width)
        kept = Signal()  # the candidate in AGE DATA holds the handle INSERT keeps
        m.d.comb += age.eq(cmd.now - cd.last_seen)
        # The kept-handle check a clock ahead, from registers, in every
        # clock (AGE DATA takes it): in front of the age compare it was the
        # table's critical path, and the state's hold was a fifth level
        # behind the compare.  ``c_raddr`` is (mt, mw)'s handle from AGE READ
        # to AGE DATA (the cntmem read's address): the candidate mux is not in
        # front of the compare (it was the table's worst path, 7.3 ns).
        m.d.sync += kept.eq(lut_eq(m, "kept_eq", c_raddr, cmd.handle, instance=ecp5, also=[cmd.keep]))
        # The handle check of a slot read by handle (READ, DELETE, CLEAR), in
        # every clock: ``mslot`` is taken the clock before SLOT CHECK and
        # ``r.found`` loads it while the key is hashed (a state-gated
        # 10-bit compare was 5 levels into ``r.found``).
        slot_hit = Signal()
        m.d.sync += slot_hit.eq(lut_eq(m, "slot_eq", mslot.handle, cmd.handle, instance=ecp5, also=[mslot.valid]))

        # The control FSM, a flop per state (``OneHotFSM``): a state's test
        # is its own flop, not a decode of a 7-bit state register in front of
        # every load and transition (FSM state -> FSM state was 7 levels in
        # the DFS).
        fsm = OneHotFSM(m, "IDLE")
        # ``ld_best`` in AGE COMPARE: one LUT4 behind the age compare, the
        # sign of a subtraction (its carry chain's last sum output): Yosys's
        # ``>`` put two LUTs in front of its chain and ABC merged the state
        # and the tests into two behind it, 5 levels from ``e_age``.
        age_gt = Signal(name="age_gt")
        m.d.comb += age_gt.eq((best_age - e_age)[-1])
        m.d.sync += ld_best.eq(lut4(m, "ld_best_next", [fsm.ongoing("AGE COMPARE"), e_kept, chosen, age_gt],
                                     lambda s, k, c, gt: s & (k ^ 1) & ((c ^ 1) | gt), instance=ecp5))
        # The flush sweep's "last row" a flop: the 11-bit compare on rd_row
        # ran on into the free list's pointers, 5 levels (the worst path,
        # 8.72 ns, of a 25F build).  Compared a clock ahead with the row
        # rd_row will hold (stepped or kept; only the sweep steps it in that
        # state); in the sweep's first clock rd_row was just zeroed by
        # ``idle``: not the end.  (The two compares, the step and ``idle`` in
        # flops and the mux behind them were a level more in front of the
        # move to RESPOND, 5 levels.)
        last_row = T * g.buckets - 1
        sweep_step = Signal(name="sweep_step")  # the flush sweep steps ``rd_row``
        sweep_at_end = Signal(name="sweep_at_end")
        m.d.sync += sweep_at_end.eq(Mux(sweep_step, rd_row == last_row - 1, rd_row == last_row) & ~idle)

        # A row read takes two states: one sets the address register (no
        # state decode in front of the EBR's address), one waits for the port.
        # ``rd_row``/``rd_way`` take one of five rows (a move's candidate, the
        # victim's, a handle's, a move's free slot, the slot to allocate)
        # where a flop set by the state before says: one-hot flops and an
        # AND-OR in front of the register, not the state decode and a mux
        # (FSM state -> ``rd_row`` was 7 levels in the DFS).
        # Each row's bucket is a register (``mt_bucket``, ``pk_bucket``: the
        # muxes of ``cidx``/``midx`` were in front of the AND-OR), ``rl_any``,
        # set with any flag, enables the load, and the row's AND-OR, with
        # the flush sweep's step (``rd_row + 1``) as a sixth term and
        # ``idle``'s zero as no term, is two levels of LUT4s (the OR of the
        # flags, the AND-OR and the sweep's and idle's muxes, chained by ABC,
        # were 6 levels, rl_alloc -> rd_row).
        rl_move, rl_victim, rl_handle, rl_pick, rl_alloc = rl = [
            Signal(name=f"rl_{n}") for n in ("move", "victim", "handle", "pick", "alloc")]
        rl_any = Signal(name="rl_any")
        m.d.sync += [f.eq(0) for f in rl + [rl_any]]
        rows = [(rl_move, row(mt, mt_bucket), mw),
                (rl_victim, row(best_t, best_bucket), best_w),
                (rl_handle, row(loc.table, loc.bucket), loc.way),
                (rl_pick, row(pk_t, pk_bucket), pk_w),
                (rl_alloc, row(tgt_t, tgt_bucket), tgt_w)]
        rd_row_inc = Signal.like(rd_row, name="rd_row_inc")
        m.d.comb += rd_row_inc.eq(rd_row + 1)
        rd_row_next = lut_and_or(m, "rd_row_ao", [(f, a) for f, a, _ in rows] + [(sweep_step, rd_row_inc)],
                                 instance=ecp5)
        with m.If(rl_any | sweep_step | idle):
            m.d.sync += rd_row.eq(rd_row_next)
        with m.If(rl_any):
            m.d.sync += rd_way.eq(_or_words([w & f.replicate(wb) for f, _, w in rows]))

        def goto_row(state, flag):
            """To ``state``, whose ``rd_row`` load ``flag`` enables."""
            m.d.sync += [flag.eq(1), rl_any.eq(1)]
            fsm.goto(state)

        def read_row(nxt):
            with m.If(k_grant):
                fsm.goto(nxt)

        def next_candidate():
            """(mt, mw) to the next candidate slot, in (table, way) order."""
            with m.If(mw == W - 1):
                m.d.sync += [mw.eq(0), mt.eq(mt + 1),
                             mt_bucket.eq(Array(cidx)[(mt + 1)[:tb]])]
            with m.Else():
                m.d.sync += mw.eq(mw + 1)
            m.d.sync += mtw_1h.eq(mtw_1h.rotate_left(1))

        def search_key(name, idx, nxt):
            """The states ``name`` SEARCH, HASHING, HASHING 2, HASHED, WAIT: search
            ``hkey`` (its bucket indexes into ``idx``, its buckets' slots into
            ``run_*``/``av_*``, see above), then ``nxt``."""
            with fsm.state(f"{name} SEARCH"):
                search(f"{name} HASHING")
            with fsm.state(f"{name} HASHING"):
                fsm.goto(f"{name} HASHING 2")  # ``hkey`` in ``q_key``
            with fsm.state(f"{name} HASHING 2"):
                fsm.goto(f"{name} HASHED")  # its parities in ``h_part``
            with fsm.state(f"{name} HASHED"):
                m.d.sync += [idx[t].eq(p1_idx[t]) for t in range(T)]
                fsm.goto(f"{name} WAIT")
            with fsm.state(f"{name} WAIT"):
                with m.If(search_done):
                    fsm.goto(nxt)

        def fetch_slot(name, nxt, *, on_load=(), on_take=(), restore_at=None):
            """The states ``name`` LOAD, READ, WAIT, TAKE: a slot into
            ``mslot`` (LOAD, entered with ``goto``, loads its row and way into
            ``rd_row``/``rd_way``; the row's data is in ``kd`` two clocks
            after the read), then ``nxt``.  ``restore_at`` (table, bucket):
            its key's rest into ``hkey`` in TAKE too, to be restored."""
            with fsm.state(f"{name} LOAD"):
                m.d.sync += list(on_load)
                fsm.goto(f"{name} READ")
            with fsm.state(f"{name} READ"):
                read_row(f"{name} WAIT")
            with fsm.state(f"{name} WAIT"):
                if restore_at is not None:
                    m.d.sync += restore(*restore_at)
                fsm.goto(f"{name} TAKE")
            with fsm.state(f"{name} TAKE"):
                m.d.sync += [mslot.eq(kd_way), *on_take]
                fsm.goto(nxt)

        def hash_key(name, nxt, *, on_hashing=()):
            """The states ``name`` (``hkey`` into the hash units when they are
            free), ``name`` HASHING and HASHING 2, then ``nxt``, where
            ``p1_idx`` holds ``hkey``'s bucket indexes."""
            with fsm.state(name):
                with m.If(h_grant):
                    fsm.goto(f"{name} HASHING")
            with fsm.state(f"{name} HASHING"):
                fsm.goto(f"{name} HASHING 2")
            with fsm.state(f"{name} HASHING 2"):
                m.d.sync += list(on_hashing)
                fsm.goto(nxt)

        rsp_valid = Signal()
        # The tests of CHECK CANDIDATES' and COUNTERS READ's moves to RESPOND,
        # each a flop from registers that are settled the clock before (the
        # search's hit in ANALYSE CANDIDATES, ``r.found`` long before): the
        # decodes were a level in front of the OR of the moves to RESPOND
        # into ``rsp.valid``, 5 levels.
        cc_respond, del_slot = Signal(name="cc_respond"), Signal(name="del_slot")
        m.d.sync += [cc_respond.eq(op_find ^ c_hit), del_slot.eq(op_delete & r.found)]

        responds = []

        def respond():
            # ``rsp.valid`` is a flop set with the move to RESPOND (by the OR
            # of LUTs after the FSM, a term per call): the flow controller
            # loads its 364-bit answer register on it (decoded from the state
            # it was 5 levels, fanout 233, in the DFS).
            fsm.goto("RESPOND")
            responds.append(1)

        def search(nxt):
            m.d.comb += s_req.eq(1)
            with m.If(h_grant):
                fsm.goto(nxt)

        # Outside the FSM: a payload set in RESPOND only would be ANDed with
        # the state, a LUT per bit.
        m.d.comb += [self.rsp.payload.eq(r), self.rsp.valid.eq(rsp_valid), self.cmd.ready.eq(idle)]
        with m.If(rsp_valid & self.rsp.ready):
            m.d.sync += idle.eq(1)
        with m.If(idle):
            m.d.sync += [cmd.eq(self.cmd.payload), hkey.eq(self.cmd.payload.key),
                         op_clear.eq(self.cmd.payload.op == FlowOp.CLEAR),
                         op_find.eq(self.cmd.payload.op == FlowOp.FIND),
                         op_delete.eq(self.cmd.payload.op == FlowOp.DELETE),
                         r.eq(0), r.op.eq(self.cmd.payload.op),
                         r.handle.eq(self.cmd.payload.handle)]

        with m.If(ld_best):
            m.d.sync += [r.packets.eq(e_cnt.packets), r.bytes.eq(e_cnt.bytes),
                         r.last_seen.eq(e_cnt.last_seen)]
        # ``r.key`` loads where ``ld_key`` is set (by the state before):
        # flops, not the state decode, in front of its 105 enables (they were
        # the table's worst path through the flops' reset input, 8.1 ns).
        # The high bits are ``hkey``'s either way.
        m.d.sync += ld_key.eq(0)
        with m.If(ld_key):
            m.d.sync += r.key.eq(Mux(ld_key_rs, rs_key, hkey))

        with fsm:
            with fsm.state("IDLE"):
                with m.If(self.cmd.valid):
                    m.d.sync += [idle.eq(0), cap_alt.eq(0)]
                    with m.Switch(self.cmd.payload.op):
                        with m.Case(FlowOp.INSERT, FlowOp.FIND):
                            fsm.goto("KEY SEARCH")
                        with m.Case(FlowOp.FLUSH):
                            fsm.goto("FLUSH SWEEP")
                        with m.Default():
                            fsm.goto("READ LOCATION")

            # -- by key: search the candidate buckets
            search_key("KEY", cidx, "ANALYSE CANDIDATES")
            with fsm.state("ANALYSE CANDIDATES"):
                # ``new_handle``: the actmem write address of an update (an
                # allocation sets it again).
                m.d.sync += [fr_ok.eq(has_free), tgt_t.eq(best_ft), tgt_w.eq(best_fw),
                             tgt_bucket.eq(run_bucket),
                             new_handle.eq(c_hhandle), ld_key.eq(1), ld_key_rs.eq(0),
                             aw_en.eq(c_hit & ~op_find)]
                fsm.goto("CHECK CANDIDATES")
            with fsm.state("CHECK CANDIDATES"):
                # ``r.key`` takes ``hkey``, the command's key here (``ld_key``).
                m.d.sync += [mt.eq(0), mt_bucket.eq(cidx[0]), mw.eq(0), mtw_1h.eq(1), chosen.eq(0)]
                # ``r.found`` and ``r.handle`` whatever the op: an INSERT
                # without a hit found nothing (``r.found`` was 0) and answers
                # the handle WRITE KEY sets (not the op's decode in front of
                # them).
                m.d.sync += [r.found.eq(c_hit), r.handle.eq(c_hhandle)]
                with m.If(op_find):
                    m.d.sync += cmd.handle.eq(c_hhandle)
                with m.If(cc_respond):  # a FIND's miss, or an INSERT's hit
                    with m.If(~op_find):
                        # actmem written at new_handle = c_hhandle (``aw_en``)
                        m.d.sync += r.status.eq(InsertStatus.UPDATED)
                    respond()
                with m.Elif(op_find):  # and a hit
                    fsm.goto("READ ACTION")
                with m.Elif(fr_ok):
                    goto_row("ALLOCATE", rl_alloc)
                with m.Else():
                    m.d.sync += cap_alt.eq(1)
                    goto_row("MOVE SLOT LOAD", rl_move)

            # -- one cuckoo move: try each candidate slot in (table, way) order
            fetch_slot("MOVE SLOT", "MOVE RESTORE HASH", restore_at=(mt, mt_bucket))
            hash_key("MOVE RESTORE HASH", "MOVE RESTORED", on_hashing=[rs_hkey.eq(1)])
            with fsm.state("MOVE RESTORED"):
                fsm.goto("MOVE SEARCH")  # ``hkey`` takes the restored key (``rs_hkey``)
            search_key("MOVE", midx, "MOVE PICK")
            with fsm.state("MOVE PICK"):
                # The free slot picked into registers, the row a clock later:
                # the pick and the bucket mux were in front of the keymem
                # write address (then the pick alone, 7.8 ns).
                m.d.sync += [pk_ok.eq(mv_ok), pk_t.eq(mv_t), pk_w.eq(mv_w), pk_bucket.eq(mv_bucket)]
                goto_row("MOVE PICKED", rl_pick)
            with fsm.state("MOVE PICKED"):
                m.d.sync += wr_move.eq(1)  # ``rd_row`` takes the free slot's row (``rl_pick``)
                fsm.goto("MOVE CHECK")
            with fsm.state("MOVE CHECK"):
                with m.If(pk_ok):
                    m.d.comb += [kw_en.eq(1), kw_valid.eq(1), lwr.en.eq(1)]
                    with m.If(kw_grant):
                        m.d.sync += [tgt_t.eq(mt), tgt_w.eq(mw), tgt_bucket.eq(mt_bucket)]
                        goto_row("ALLOCATE", rl_alloc)
                with m.Elif((mt == T - 1) & (mw == W - 1)):
                    m.d.sync += [mt.eq(0), mt_bucket.eq(cidx[0]), mw.eq(0), mtw_1h.eq(1)]
                    fsm.goto("AGE START")
                with m.Else():
                    next_candidate()
                    goto_row("MOVE SLOT LOAD", rl_move)

            # -- a free slot: take a handle, write action and counters, then the key
            with fsm.state("ALLOCATE"):
                m.d.sync += wr_move.eq(0)  # ``rd_row`` takes the slot's row (``rl_alloc``)
                with m.If(fresh < N):
                    m.d.sync += [new_handle.eq(fresh), fresh.eq(fresh + 1)]
                with m.Else():
                    m.d.sync += [new_handle.eq(fifo_out), fhead.eq(wrap(fhead))]
                m.d.sync += aw_en.eq(1)
                fsm.goto("ALLOCATED")
            with fsm.state("ALLOCATED"):
                # ``new_handle`` a clock before ``c_we``: ``new_hit``'s
                # compare with it is made a clock ahead.
                m.d.sync += c_we.eq(1)
                fsm.goto("WRITE NEW")
            with fsm.state("WRITE NEW"):
                # actmem written in the first clock (``aw_en``), counters
                # when granted (``c_we``)
                with m.If(c_grant_w):
                    fsm.goto("WRITE KEY")
            with fsm.state("WRITE KEY"):
                m.d.comb += [kw_en.eq(1), kw_valid.eq(1), lwr.en.eq(1)]
                with m.If(kw_grant):
                    m.d.sync += [r.status.eq(Mux(r.status == InsertStatus.EVICTED,
                                                 InsertStatus.EVICTED, InsertStatus.INSERTED)),
                                 r.handle.eq(new_handle),
                                 r.found.eq(r.status == InsertStatus.EVICTED)]
                    # After an eviction ``r.key`` takes the victim's key
                    # (restored into ``hkey``) in the clock the write, from
                    # ``r.key``, lands.
                    m.d.sync += [ld_key.eq(r.status == InsertStatus.EVICTED), ld_key_rs.eq(0)]
                    fsm.goto("KEY WRITTEN")
            with fsm.state("KEY WRITTEN"):
                respond()

            # -- full: evict the candidate idle the longest
            with fsm.state("AGE START"):
                fsm.goto("AGE READ")  # ``c_raddr`` follows (mt, mw) a clock late
            with fsm.state("AGE READ"):
                with m.If(c_grant_r):
                    fsm.goto("AGE WAIT")
            with fsm.state("AGE WAIT"):
                fsm.goto("AGE PICKUP")  # ``kept`` compares ``c_raddr``
            with fsm.state("AGE PICKUP"):
                fsm.goto("AGE DATA")  # the read in the output register, ``cd`` takes it
            with fsm.state("AGE DATA"):
                # Age and counters into registers; the compare a clock later
                # (a subtract and a compare in front of ~100 enables).
                m.d.sync += [e_age.eq(age), e_cnt.eq(cd), e_kept.eq(kept), e_t.eq(mt), e_w.eq(mw)]
                next_candidate()
                fsm.goto("AGE COMPARE")
            with fsm.state("AGE COMPARE"):
                # The compare into one flop (``ld_best``, above); the loads
                # it enables happen the clock after, outside the FSM.
                with m.If((e_t == T - 1) & (e_w == W - 1)):
                    fsm.goto("AGE CHOSEN")
                with m.Else():
                    fsm.goto("AGE READ")
            with fsm.state("AGE CHOSEN"):
                goto_row("VICTIM SLOT LOAD", rl_victim)  # the last candidate's ``ld_best`` loads
            # The kept handle is no longer needed: ``cmd.handle`` is the
            # victim's once its slot is read (the actmem read address).
            fetch_slot("VICTIM SLOT", "VICTIM ACTION",
                       on_load=[wr_move.eq(0)], on_take=[cmd.handle.eq(kd_way.handle)],
                       restore_at=(best_t, best_bucket))
            with fsm.state("VICTIM ACTION"):
                with m.If(a_grant):
                    fsm.goto("VICTIM WAIT")
            with fsm.state("VICTIM WAIT"):
                fsm.goto("VICTIM DATA")
            with fsm.state("VICTIM DATA"):
                m.d.sync += [r.action.eq(ard.data),
                             r.status.eq(InsertStatus.EVICTED), new_handle.eq(mslot.handle),
                             tgt_t.eq(best_t), tgt_w.eq(best_w), tgt_bucket.eq(best_bucket)]
                fsm.goto("VICTIM INVALIDATE")
            with fsm.state("VICTIM INVALIDATE"):
                m.d.comb += kw_en.eq(1)
                with m.If(kw_grant):
                    fsm.goto("VICTIM KEY")
            hash_key("VICTIM KEY", "VICTIM KEYED", on_hashing=[rs_hkey.eq(1)])
            with fsm.state("VICTIM KEYED"):
                # ``hkey`` takes the restored key (``rs_hkey``); ``r.key``
                # keeps the new one until its slot is written
                fsm.goto("VICTIM SETTLE")
            with fsm.state("VICTIM SETTLE"):
                # A search's last keymem read is at the latest in the clock
                # before the invalidation lands (no write in a clock with a
                # search read), and it reads actmem (p4) four clocks after
                # that: keep the old action until then.
                m.d.sync += [c_we.eq(1), aw_en.eq(1)]
                fsm.goto("WRITE NEW")

            # -- by handle: find the slot, check it still holds the handle
            with fsm.state("READ LOCATION"):
                fsm.goto("LOCATION READ")
            with fsm.state("LOCATION READ"):
                goto_row("HANDLE SLOT LOAD", rl_handle)  # ``loc`` holds the read
            fetch_slot("HANDLE SLOT", "SLOT CHECK", restore_at=(loc.table, loc.bucket))
            with fsm.state("SLOT CHECK"):
                fsm.goto("SLOT KEY")  # ``slot_hit`` compares ``mslot``
            hash_key("SLOT KEY", "SLOT KEYED",
                     on_hashing=[ld_key.eq(1), ld_key_rs.eq(1), r.found.eq(slot_hit)])
            with fsm.state("SLOT KEYED"):
                # ``r.key`` takes the restored key (``ld_key``)
                with m.If(op_clear):
                    m.d.sync += c_we.eq(1)
                    fsm.goto("CLEAR COUNTERS")
                with m.Else():
                    fsm.goto("READ ACTION")
            with fsm.state("CLEAR COUNTERS"):
                with m.If(c_grant_w):  # ``c_we`` set
                    respond()
            with fsm.state("READ ACTION"):
                with m.If(a_grant):
                    fsm.goto("ACTION WAIT")
            with fsm.state("ACTION WAIT"):
                fsm.goto("ACTION READ")
            with fsm.state("ACTION READ"):
                m.d.sync += r.action.eq(ard.data)
                fsm.goto("READ COUNTERS")
            with fsm.state("READ COUNTERS"):
                with m.If(c_grant_r):
                    fsm.goto("COUNTERS WAIT")
            with fsm.state("COUNTERS WAIT"):
                fsm.goto("COUNTERS PICKUP")
            with fsm.state("COUNTERS PICKUP"):
                fsm.goto("COUNTERS READ")  # the read in the output register, ``cd`` takes it
            with fsm.state("COUNTERS READ"):
                m.d.sync += [r.packets.eq(cd.packets), r.bytes.eq(cd.bytes),
                             r.last_seen.eq(cd.last_seen)]
                with m.If(del_slot):
                    fsm.goto("DELETE SLOT")
                with m.Else():
                    respond()
            with fsm.state("DELETE SLOT"):
                m.d.comb += [kw_en.eq(1), fwr.en.eq(1)]
                with m.If(kw_grant):
                    m.d.sync += ftail.eq(wrap(ftail))
                    respond()

            with fsm.state("FLUSH SWEEP"):
                m.d.comb += kw_all.eq(1)
                with m.If(kw_grant):
                    m.d.comb += sweep_step.eq(1)  # ``rd_row`` steps (above)
                    with m.If(sweep_at_end):
                        fsm.goto("FLUSH DONE")

            with fsm.state("FLUSH DONE"):
                # The free list starts again a clock after the sweep's last
                # row, from this state's flop alone: the sweep's end (state,
                # grant, last row) fanned out to these 33 bits and the move to
                # RESPOND, across the die (7.84 ns on the 45F-6 at 2a040e3).
                m.d.sync += [fresh.eq(0), fhead.eq(0), ftail.eq(0)]
                respond()

            with fsm.state("RESPOND"):
                with m.If(self.rsp.ready):  # ``rsp_valid`` is set here
                    fsm.goto("IDLE")

        # ``rsp_valid``'s next value: set where the states above call
        # ``respond()`` (under the same tests), held until ``rsp.ready``, in
        # two levels of LUT4s (the OR of the moves to RESPOND, chained by
        # ABC, was 5 levels from ``kw_grant``).
        if len(responds) != 6:
            raise AssertionError(f"respond() called {len(responds)} times: rsp_valid's OR has 6 terms")
        st = fsm.ongoing
        m.d.sync += rsp_valid.eq(lut4(m, "rsp_valid_or", [
            lut4(m, "rsp_valid_t0", [st("FLUSH DONE"), st("KEY WRITTEN")], lambda fd, kw: fd | kw, instance=ecp5),
            lut4(m, "rsp_valid_t1", [st("CHECK CANDIDATES"), cc_respond, st("COUNTERS READ"), del_slot],
                  lambda cc, c, cr, d: (cc & c) | (cr & (d ^ 1)), instance=ecp5),
            lut4(m, "rsp_valid_t2", [st("CLEAR COUNTERS"), t3_valid, st("DELETE SLOT"), kw_grant],
                  lambda cl, t, ds, g: (cl & (t ^ 1)) | (ds & g), instance=ecp5),
            lut4(m, "rsp_valid_hold", [rsp_valid, self.rsp.ready], lambda v, rdy: v & (rdy ^ 1), instance=ecp5),
        ], lambda *v: reduce(operator.or_, v), instance=ecp5))
        return m
