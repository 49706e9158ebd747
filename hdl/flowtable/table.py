"""Hashed exact-match flow table: one lookup per clock, control and counter ports.

Ref: patent figure 21 (on overflow, make room by deleting the oldest flow);
organisation, hash functions and every insert decision are those of
:mod:`twinplane.model.flowtable` (read its docstring first), bit for bit.

Memories (all ``amaranth.lib.memory.Memory``, one read and one write port
each, so every one maps onto ECP5 EBR in pseudo-dual-port mode):

* ``keymem[t]``: per sub-table, one word per bucket, the ``ways`` slots
  (valid, key less its low ``index_bits`` bits, handle) side by side, so a
  lookup reads every candidate slot of a key in one clock.  Written per slot (one enable bit per way).
* ``actmem``, ``cntmem`` (packets, bytes, last_seen), ``locmem`` (where a
  handle's slot is): indexed by handle.  ``fifomem``: deleted handles.

Pipeline (for 125 MHz + 10 % on a speed-6 ECP5): every block-RAM read lands
in a register before any logic (an EBR's clock-to-out is most of a clock),
and each logic cone has a clock of its own.  Lookups: p0 hash, p1 ``keymem``
address, p2 ``keymem`` data, p3 compare, p4 handle OR and ``actmem``
address, p5 ``actmem`` data, p6 result (:attr:`FlowTable.latency` = 6).

Sharing.  Lookups own the hash units (p0), the read ports of ``keymem`` (p1)
and ``actmem`` (p4) whenever a lookup is in that stage; the control FSM uses
them in the other clocks, so it only waits, it never stalls a lookup.  Its
keymem reads go down the lookup stages, so the p3 comparators check its key
too.  The control FSM owns every write port except ``cntmem``'s, where the
counter pipeline has priority.

Consistency with lookups in flight: a slot is made valid only after its
action and counters are written, and an evicted slot is invalidated four
clocks before its action changes (a lookup reads ``actmem`` three clocks
after ``keymem``), so a lookup sees either the old entry whole or the
new one whole.  A moved key is written to its new slot before its old slot is
reused; in between the key is in both slots with the same handle.

EBR (ECP5 DP16KD, 18 kbit; 512x36 / 1024x18 / 2048x9) at the default
geometry, 4 tables x 128 buckets x 2 ways = 1024 entries, 104-bit keys,
64-bit actions: a lookup reads 8 slots of 1 + 97 + 10 = 108 bits per clock,
and an EBR delivers at most 36 bits per clock, so ``keymem`` needs
4 x 216/36 = 24 EBR whatever the depth (up to 512 buckets); ``actmem``
1024x64 = 4, ``cntmem`` 1024x(32+40+16) = 5, ``locmem`` 1, ``fifomem`` 1:
35 of the LFE5U-25F's 56 EBR (62 %, Yosys ``synth_ecp5`` agrees).  2048
entries would take 46 (82 %); 512 entries still 32, so 1024 is the default.

Counter pipeline: ``touch`` reads ``cntmem`` (t0), registers the data (t1),
adds and writes (t2).  The read port is transparent to the write port, and
the one write a read cannot see yet (the touch just ahead, of the same
handle) is forwarded from a register, so back-to-back touches lose nothing.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from twinplane.model.flowtable import FlowGeometry, FlowOp, InsertStatus, h3_masks

from .h3 import h3_index

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

    * ``lookup`` (in, ``ready`` is always 1): ``key``.  ``result`` (out,
      :attr:`latency` = 6 clocks after the lookup, in order; ``ready`` is ignored: the consumer
      takes a result every clock): ``key``, ``hit``, ``handle``,
      ``action`` (zero on a miss).
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
      invalidates every slot in ``buckets`` clocks.
    """

    #: Clocks from a lookup transfer to its result.
    latency = 6

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
        masks = h3_masks(g)
        m = Module()

        keymem = [Memory(shape=self.bucket_layout, depth=g.buckets, init=[]) for _ in range(T)]
        actmem = Memory(shape=g.action_width, depth=N, init=[])
        cntmem = Memory(shape=self.cnt_layout, depth=N, init=[])
        locmem = Memory(shape=self.loc_layout, depth=N, init=[])
        fifomem = Memory(shape=g.handle_bits, depth=N, init=[])
        for t, mem in enumerate(keymem):
            m.submodules[f"keymem{t}"] = mem
        m.submodules.actmem = actmem
        m.submodules.cntmem = cntmem
        m.submodules.locmem = locmem
        m.submodules.fifomem = fifomem
        krd = [mem.read_port() for mem in keymem]
        kwr = [mem.write_port(granularity=1) for mem in keymem]
        ard, awr = actmem.read_port(), actmem.write_port()
        cwr = cntmem.write_port()
        crd = cntmem.read_port(transparent_for=(cwr,))
        lrd, lwr = locmem.read_port(), locmem.write_port()
        frd, fwr = fifomem.read_port(), fifomem.write_port()

        # Requests the control FSM drives (combinationally, default idle).
        k_addr = [Signal(g.index_bits, name=f"k_addr{t}") for t in range(T)]
        a_addr = Signal(g.handle_bits)
        c_raddr = Signal(g.handle_bits)
        c_we = Signal()
        c_waddr = Signal(g.handle_bits)
        c_wdata = Signal(self.cnt_layout)
        kw_en, kw_all = Signal(), Signal()
        kw_t = Signal(_bits(T))
        kw_addr = Signal(g.index_bits)
        kw_way = Signal(_bits(W))
        kw_slot = Signal(self.slot_layout)

        # ---- lookup pipeline, one register between every memory and every
        # logic cone (docs/dfs.md, "Widths and clocks"): p0 hash, p1 keymem
        # address, p2 keymem data (into a register only: the EBR's
        # clock-to-out leaves no room for logic), p3 compare, p4 handle OR +
        # actmem address, p5 actmem data (register only), p6 result.
        lkey = self.lookup.payload.key
        cmd = Signal.like(self.cmd.payload)  # the command being executed
        # One set of hash units: the control FSM hashes ``hkey`` in the clocks
        # without a lookup (``h_grant``) and takes the registered index
        # (``p1_idx``) the clock after.
        hkey = Signal(g.key_width)
        hin = Signal(g.key_width)
        m.d.comb += hin.eq(Mux(self.lookup.valid, lkey, hkey))
        hidx = [h3_index(hin, masks[t]) for t in range(T)]
        h_grant = ~self.lookup.valid
        p1_valid, p1_key = Signal(), Signal(g.key_width)
        p1_idx = [Signal(g.index_bits, name=f"p1_idx{t}") for t in range(T)]
        m.d.sync += [p1_valid.eq(self.lookup.valid), p1_key.eq(hin)]
        m.d.sync += [p1_idx[t].eq(hidx[t]) for t in range(T)]
        # The control FSM reads keymem in the clocks without a lookup in p1.
        k_grant = ~p1_valid
        for t in range(T):
            m.d.comb += krd[t].addr.eq(Mux(p1_valid, p1_idx[t], k_addr[t]))
        p2_valid, p2_key = Signal(), Signal(g.key_width)
        m.d.sync += [p2_valid.eq(p1_valid), p2_key.eq(p1_key)]
        kd = Signal(data.ArrayLayout(self.bucket_layout, T))
        p3_valid, p3_key = Signal(), Signal(g.key_width)
        m.d.sync += [kd.eq(Cat(*(krd[t].data.as_value() for t in range(T)))),
                     p3_valid.eq(p2_valid), p3_key.eq(p2_key)]
        # p3 compares (a key's slots all carry the same handle, even mid-move,
        # so an OR is the priority-free answer).  The comparators serve the
        # control FSM too: its keymem reads pass down the same stages, and
        # the key then is ``hkey``, hashed the clock before the read.
        matches = []
        for t in range(T):
            for w in range(W):
                slot = kd[t][w]
                matches.append(slot.valid & (slot.key == p3_key[g.index_bits:]))
        p4_valid, p4_key = Signal(), Signal(g.key_width)
        p4_match = Signal(T * W)
        p4_handles = Signal(data.ArrayLayout(g.handle_bits, T * W))
        m.d.sync += [p4_valid.eq(p3_valid), p4_key.eq(p3_key), p4_match.eq(Cat(*matches)),
                     p4_handles.eq(Cat(*(kd[i // W][i % W].handle for i in range(T * W))))]
        p4_hit, p4_handle = Signal(), Signal(g.handle_bits)
        m.d.comb += [p4_hit.eq(p4_match.any()),
                     p4_handle.eq(_or_words([p4_handles[i] & p4_match[i].replicate(g.handle_bits)
                                             for i in range(T * W)]))]
        a_grant = ~p4_valid
        m.d.comb += ard.addr.eq(Mux(p4_valid, p4_handle, a_addr))
        p5_valid, p5_key, p5_hit = Signal(), Signal(g.key_width), Signal()
        p5_handle = Signal(g.handle_bits)
        m.d.sync += [p5_valid.eq(p4_valid), p5_key.eq(p4_key), p5_hit.eq(p4_hit),
                     p5_handle.eq(p4_handle)]
        p6_valid, p6_key, p6_hit = Signal(), Signal(g.key_width), Signal()
        p6_handle, p6_action = Signal(g.handle_bits), Signal(g.action_width)
        m.d.sync += [p6_valid.eq(p5_valid), p6_key.eq(p5_key), p6_hit.eq(p5_hit),
                     p6_handle.eq(p5_handle), p6_action.eq(ard.data)]
        m.d.comb += [
            self.lookup.ready.eq(1),
            self.touch.ready.eq(1),
            self.result.valid.eq(p6_valid),
            self.result.payload.key.eq(p6_key),
            self.result.payload.hit.eq(p6_hit),
            self.result.payload.handle.eq(p6_handle),
            self.result.payload.action.eq(Mux(p6_hit, p6_action, 0)),
        ]

        # ---- counter pipeline: t0 read, t1 data into a register, t2 add and
        # write.  The read port is transparent to the write port, so a read
        # sees the write of its own clock; the one write it cannot see (the
        # clock after, from the touch just ahead) is forwarded (``lw_*``).
        # The FSM reads only with no touch in t0 or t1 (no write in flight).
        m.d.comb += crd.addr.eq(Mux(self.touch.valid, self.touch.payload.handle, c_raddr))
        t1_valid, t1 = Signal(), Signal.like(self.touch.payload)
        m.d.sync += [t1_valid.eq(self.touch.valid), t1.eq(self.touch.payload)]
        c_grant_r = ~self.touch.valid & ~t1_valid
        cd = Signal(self.cnt_layout)
        t2_valid, t2 = Signal(), Signal.like(self.touch.payload)
        m.d.sync += [cd.eq(crd.data), t2_valid.eq(t1_valid), t2.eq(t1)]
        lw_en, lw_addr, lw_data = Signal(), Signal(g.handle_bits), Signal(self.cnt_layout)
        m.d.sync += [lw_en.eq(cwr.en), lw_addr.eq(cwr.addr), lw_data.eq(cwr.data)]
        base = Signal(self.cnt_layout)
        m.d.comb += base.eq(Mux(lw_en & (lw_addr == t2.handle), lw_data, cd))
        c_grant_w = ~t2_valid
        with m.If(t2_valid):
            m.d.comb += [
                cwr.addr.eq(t2.handle), cwr.en.eq(1),
                cwr.data.packets.eq(base.packets + 1),
                cwr.data.bytes.eq(base.bytes + t2.nbytes),
                cwr.data.last_seen.eq(t2.now),
            ]
        with m.Elif(c_we):
            m.d.comb += [cwr.addr.eq(c_waddr), cwr.en.eq(1), cwr.data.eq(c_wdata)]

        # ---- keymem writes (control only), one slot or a whole flush row.
        for t in range(T):
            m.d.comb += [
                kwr[t].addr.eq(kw_addr),
                # kw_slot is zero unless a state drives it, so a flush writes zeros.
                kwr[t].data.eq(Cat(*([kw_slot.as_value()] * W))),
            ]
            with m.If(kw_all):
                m.d.comb += kwr[t].en.eq((1 << W) - 1)
            with m.Elif(kw_en & (kw_t == t)):
                m.d.comb += kwr[t].en.eq(1 << kw_way)

        # ---- control FSM state.
        cidx = [Signal(g.index_bits, name=f"cidx{t}") for t in range(T)]
        midx = [Signal(g.index_bits, name=f"midx{t}") for t in range(T)]
        cand = Signal(data.ArrayLayout(self.slot_layout, T * W))
        alt = [Signal(self.bucket_layout, name=f"alt{t}") for t in range(T)]
        mt, mw = Signal(_bits(T)), Signal(_bits(W))
        tgt_t, tgt_w = Signal(_bits(T)), Signal(_bits(W))
        new_handle = Signal(g.handle_bits)
        fresh = Signal(range(N + 1))
        fhead, ftail = Signal(g.handle_bits), Signal(g.handle_bits)
        ei = Signal(range(T * W + 1))
        best_age = Signal(g.ts_width)
        best_i = Signal(range(T * W))
        chosen = Signal()  # a victim candidate was found (the kept handle is skipped)
        loc = Signal(self.loc_layout)
        sweep = Signal(g.index_bits + 1)
        r = Signal.like(self.rsp.payload)

        def wrap(ptr):
            return Mux(ptr == N - 1, 0, ptr + 1)

        m.d.comb += [frd.addr.eq(fhead), fwr.addr.eq(ftail), fwr.data.eq(cmd.handle)]

        # Candidate analysis (from ``cand``, the key's candidate buckets).
        c_hit, c_hhandle = Signal(), Signal(g.handle_bits)
        best_used, best_t, best_w = Const(W, range(W + 1)), Const(0, _bits(T)), Const(0, _bits(W))
        for t in range(T):
            valid = [cand[t * W + w].valid for w in range(W)]
            used = sum(valid)
            fw = Const(0, _bits(W))
            for w in reversed(range(W)):
                fw = Mux(~valid[w], w, fw)
            take = used < best_used
            best_used = Mux(take, used, best_used)
            best_t = Mux(take, t, best_t)
            best_w = Mux(take, fw, best_w)
        has_free = best_used < W
        # Move analysis (from ``alt``, the moving key's buckets).
        mv_ok, mv_t, mv_w = Const(0), Const(0, _bits(T)), Const(0, _bits(W))
        for u in reversed(range(T)):
            fw, free = Const(0, _bits(W)), Const(0)
            for w in reversed(range(W)):
                fw = Mux(~alt[u][w].valid, w, fw)
                free = free | ~alt[u][w].valid
            ok = free & (mt != u)
            mv_ok = Mux(ok, 1, mv_ok)
            mv_t = Mux(ok, u, mv_t)
            mv_w = Mux(ok, fw, mv_w)
        # One slot selector and one key-restore unit, shared by the states
        # (each would otherwise cost a T*W-way mux or T*index_bits XOR trees).
        sel = Signal(range(T * W))
        m.d.comb += sel.eq(mt * W + mw)
        # A case mux: indexing the ArrayLayout by a Value would build a
        # barrel shifter over all T*W slots (thousands of LUTs).
        mslot = victim = Signal(self.slot_layout)
        with m.Switch(sel):
            for i in range(T * W):
                with m.Case(i):
                    m.d.comb += mslot.eq(cand[i])
        # Key restore (see h3_restore) on the shared hash units: a state loads
        # (``rs_load``) the table, the bucket and ``hkey`` = the stored rest
        # with zero low bits; in a later clock without a lookup (``h_grant``)
        # the hash units give the parity of the rest under each mask, so the
        # low bits are the bucket's XOR that.  (A restore unit of its own is
        # T * index_bits more parity trees.)
        rs_load = Signal()
        rs_t, rs_b = Signal(_bits(T)), Signal(g.index_bits)
        rs_rest = Signal(g.rest_width)
        rs_t_r, rs_b_r = Signal(_bits(T)), Signal(g.index_bits)
        with m.If(rs_load):
            m.d.sync += [rs_t_r.eq(rs_t), rs_b_r.eq(rs_b), hkey.eq(Cat(Const(0, g.index_bits), rs_rest))]
        rs_key = Cat(rs_b_r ^ Array(p1_idx)[rs_t_r], hkey[g.index_bits:])
        age = Signal(g.ts_width)
        kept = Signal()  # the candidate in AGE DATA holds the handle INSERT keeps
        m.d.comb += age.eq(cmd.now - cd.last_seen)

        def read_keys(addrs, nxt):
            for t in range(T):
                m.d.comb += k_addr[t].eq(addrs[t])
            with m.If(k_grant):
                m.next = nxt

        # Outside the FSM: a payload set in RESPOND only would be ANDed with
        # the state, a LUT per bit.
        m.d.comb += self.rsp.payload.eq(r)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [cmd.eq(self.cmd.payload), hkey.eq(self.cmd.payload.key),
                                 r.eq(0), r.op.eq(self.cmd.payload.op),
                                 r.handle.eq(self.cmd.payload.handle), sweep.eq(0)]
                    with m.Switch(self.cmd.payload.op):
                        with m.Case(FlowOp.INSERT, FlowOp.FIND):
                            m.next = "HASH KEY"
                        with m.Case(FlowOp.FLUSH):
                            m.next = "FLUSH SWEEP"
                        with m.Default():
                            m.next = "READ LOCATION"

            # -- by key: read the candidate buckets
            with m.State("HASH KEY"):
                with m.If(h_grant):
                    m.next = "KEY HASHED"
            with m.State("KEY HASHED"):
                m.d.sync += [cidx[t].eq(p1_idx[t]) for t in range(T)]
                m.next = "READ CANDIDATES"
            with m.State("READ CANDIDATES"):
                read_keys(cidx, "CANDIDATES WAIT")
            with m.State("CANDIDATES WAIT"):
                m.next = "CANDIDATES READ"
            with m.State("CANDIDATES READ"):
                # This read went down the lookup stages (it had no lookup in
                # p1), so p3 compares the command's key with its buckets now.
                m.d.sync += cand.eq(kd)
                m.next = "CANDIDATES COMPARED"
            with m.State("CANDIDATES COMPARED"):
                m.d.sync += [c_hit.eq(p4_hit), c_hhandle.eq(p4_handle)]
                m.next = "CHECK CANDIDATES"
            with m.State("CHECK CANDIDATES"):
                m.d.sync += [mt.eq(0), mw.eq(0), ei.eq(0), chosen.eq(0), r.key.eq(cmd.key)]
                with m.If(cmd.op == FlowOp.FIND):
                    m.d.sync += [r.found.eq(c_hit), r.handle.eq(c_hhandle),
                                 cmd.handle.eq(c_hhandle)]
                    m.next = "READ ACTION"
                    with m.If(~c_hit):
                        m.next = "RESPOND"
                with m.Elif(c_hit):
                    m.d.comb += [awr.addr.eq(c_hhandle), awr.data.eq(cmd.action), awr.en.eq(1)]
                    m.d.sync += [r.status.eq(InsertStatus.UPDATED), r.found.eq(1),
                                 r.handle.eq(c_hhandle)]
                    m.next = "RESPOND"
                with m.Elif(has_free):
                    m.d.sync += [tgt_t.eq(best_t), tgt_w.eq(best_w)]
                    m.next = "ALLOCATE"
                with m.Else():
                    m.next = "MOVE LOAD"

            # -- one cuckoo move: try each candidate slot in (table, way) order
            with m.State("MOVE LOAD"):
                m.d.comb += [rs_load.eq(1), rs_t.eq(mt), rs_b.eq(Cat(*cidx).word_select(mt, g.index_bits)),
                             rs_rest.eq(mslot.key)]
                m.next = "MOVE RESTORE"
            with m.State("MOVE RESTORE"):
                with m.If(h_grant):
                    m.next = "MOVE RESTORED"
            with m.State("MOVE RESTORED"):
                m.d.sync += hkey.eq(rs_key)
                m.next = "MOVE HASH"
            with m.State("MOVE HASH"):
                with m.If(h_grant):
                    m.next = "MOVE HASHED"
            with m.State("MOVE HASHED"):
                m.d.sync += [midx[t].eq(p1_idx[t]) for t in range(T)]
                m.next = "MOVE READ"
            with m.State("MOVE READ"):
                read_keys(midx, "MOVE WAIT")
            with m.State("MOVE WAIT"):
                m.next = "MOVE DATA"
            with m.State("MOVE DATA"):
                m.d.sync += [alt[t].eq(kd[t]) for t in range(T)]
                m.next = "MOVE CHECK"
            with m.State("MOVE CHECK"):
                with m.If(mv_ok):
                    m.d.comb += [kw_en.eq(1), kw_t.eq(mv_t), kw_way.eq(mv_w),
                                 kw_addr.eq(Cat(*midx).word_select(mv_t, g.index_bits)),
                                 kw_slot.eq(mslot),
                                 lwr.addr.eq(mslot.handle), lwr.en.eq(1),
                                 lwr.data.table.eq(mv_t), lwr.data.way.eq(mv_w),
                                 lwr.data.bucket.eq(
                                     Cat(*midx).word_select(mv_t, g.index_bits))]
                    m.d.sync += [tgt_t.eq(mt), tgt_w.eq(mw)]
                    m.next = "ALLOCATE"
                with m.Elif((mt == T - 1) & (mw == W - 1)):
                    m.next = "AGE READ"
                with m.Else():
                    with m.If(mw == W - 1):
                        m.d.sync += [mw.eq(0), mt.eq(mt + 1)]
                    with m.Else():
                        m.d.sync += mw.eq(mw + 1)
                    m.next = "MOVE LOAD"

            # -- a free slot: take a handle, write action and counters, then the key
            with m.State("ALLOCATE"):
                with m.If(fresh < N):
                    m.d.sync += [new_handle.eq(fresh), fresh.eq(fresh + 1)]
                with m.Else():
                    m.d.sync += [new_handle.eq(frd.data), fhead.eq(wrap(fhead))]
                m.next = "WRITE NEW"
            with m.State("WRITE NEW"):
                m.d.comb += [awr.addr.eq(new_handle), awr.data.eq(cmd.action),
                             awr.en.eq(1), c_we.eq(1), c_waddr.eq(new_handle),
                             c_wdata.last_seen.eq(cmd.now)]
                with m.If(c_grant_w):
                    m.next = "WRITE KEY"
            with m.State("WRITE KEY"):
                baddr = Cat(*cidx).word_select(tgt_t, g.index_bits)
                m.d.comb += [kw_en.eq(1), kw_t.eq(tgt_t), kw_way.eq(tgt_w),
                             kw_addr.eq(baddr), kw_slot.valid.eq(1),
                             kw_slot.key.eq(cmd.key[g.index_bits:]),
                             kw_slot.handle.eq(new_handle),
                             lwr.addr.eq(new_handle), lwr.en.eq(1),
                             lwr.data.table.eq(tgt_t), lwr.data.way.eq(tgt_w),
                             lwr.data.bucket.eq(baddr)]
                m.d.sync += [r.status.eq(Mux(r.status == InsertStatus.EVICTED,
                                             InsertStatus.EVICTED, InsertStatus.INSERTED)),
                             r.handle.eq(new_handle),
                             r.found.eq(r.status == InsertStatus.EVICTED)]
                m.next = "RESPOND"

            # -- full: evict the candidate idle the longest
            with m.State("AGE READ"):
                m.d.comb += [sel.eq(ei), c_raddr.eq(mslot.handle)]
                with m.If(c_grant_r):
                    m.next = "AGE WAIT"
            with m.State("AGE WAIT"):
                # The kept-handle check a clock ahead, from a register: the
                # slot mux and a handle compare in front of the age compare
                # were the table's critical path (10.4 ns placed alone).
                m.d.comb += sel.eq(ei)
                m.d.sync += kept.eq(cmd.keep & (mslot.handle == cmd.handle))
                m.next = "AGE DATA"
            with m.State("AGE DATA"):
                with m.If(~kept & (~chosen | (age > best_age))):
                    m.d.sync += [chosen.eq(1), best_age.eq(age), best_i.eq(ei),
                                 r.packets.eq(cd.packets), r.bytes.eq(cd.bytes),
                                 r.last_seen.eq(cd.last_seen)]
                m.d.sync += ei.eq(ei + 1)
                with m.If(ei == T * W - 1):
                    m.next = "VICTIM ACTION"
                with m.Else():
                    m.next = "AGE READ"
            with m.State("VICTIM ACTION"):
                m.d.comb += [sel.eq(best_i), a_addr.eq(victim.handle)]
                with m.If(a_grant):
                    m.next = "VICTIM WAIT"
            with m.State("VICTIM WAIT"):
                m.d.comb += sel.eq(best_i)
                m.next = "VICTIM DATA"
            with m.State("VICTIM DATA"):
                vt = best_i // W
                m.d.comb += [sel.eq(best_i), rs_load.eq(1), rs_t.eq(vt), rs_rest.eq(victim.key),
                             rs_b.eq(Cat(*cidx).word_select(vt, g.index_bits))]
                m.d.sync += [r.action.eq(p6_action),
                             r.status.eq(InsertStatus.EVICTED), new_handle.eq(victim.handle),
                             tgt_t.eq(best_i // W), tgt_w.eq(best_i % W)]
                m.next = "VICTIM INVALIDATE"
            with m.State("VICTIM INVALIDATE"):
                m.d.comb += [kw_en.eq(1), kw_t.eq(tgt_t), kw_way.eq(tgt_w),
                             kw_addr.eq(Cat(*cidx).word_select(tgt_t, g.index_bits)),
                             kw_slot.valid.eq(0)]
                m.next = "VICTIM KEY"
            with m.State("VICTIM KEY"):
                with m.If(h_grant):
                    m.next = "VICTIM KEYED"
            with m.State("VICTIM KEYED"):
                m.d.sync += r.key.eq(rs_key)
                m.next = "VICTIM SETTLE"
            with m.State("VICTIM SETTLE"):
                # A lookup that read the victim's slot (p1) in the clock of
                # the invalidation reads actmem (p4) three clocks later, in
                # this one at the latest: keep the old action until then.
                m.next = "WRITE NEW"

            # -- by handle: find the slot, check it still holds the handle
            with m.State("READ LOCATION"):
                m.d.comb += lrd.addr.eq(cmd.handle)
                m.next = "LOCATION READ"
            with m.State("LOCATION READ"):
                m.d.sync += loc.eq(lrd.data)
                m.next = "READ SLOT"
            with m.State("READ SLOT"):
                read_keys([loc.bucket] * T, "SLOT WAIT")
            with m.State("SLOT WAIT"):
                m.next = "SLOT READ"
            with m.State("SLOT READ"):
                # The slots of the location's bucket, picked by the shared selector.
                m.d.sync += cand.eq(kd)
                m.next = "SLOT CHECK"
            with m.State("SLOT CHECK"):
                slot = mslot
                m.d.comb += sel.eq(loc.table * W + loc.way)
                m.d.sync += r.found.eq(slot.valid & (slot.handle == cmd.handle))
                m.d.comb += [rs_load.eq(1), rs_t.eq(loc.table), rs_b.eq(loc.bucket), rs_rest.eq(slot.key)]
                m.next = "SLOT KEY"
            with m.State("SLOT KEY"):
                with m.If(h_grant):
                    m.next = "SLOT KEYED"
            with m.State("SLOT KEYED"):
                m.d.sync += r.key.eq(rs_key)
                with m.If(cmd.op == FlowOp.CLEAR):
                    m.next = "CLEAR COUNTERS"
                with m.Else():
                    m.next = "READ ACTION"
            with m.State("CLEAR COUNTERS"):
                m.d.comb += [c_we.eq(1), c_waddr.eq(cmd.handle),
                             c_wdata.last_seen.eq(cmd.now)]
                with m.If(c_grant_w):
                    m.next = "RESPOND"
            with m.State("READ ACTION"):
                m.d.comb += a_addr.eq(cmd.handle)
                with m.If(a_grant):
                    m.next = "ACTION WAIT"
            with m.State("ACTION WAIT"):
                m.next = "ACTION READ"
            with m.State("ACTION READ"):
                m.d.sync += r.action.eq(p6_action)
                m.next = "READ COUNTERS"
            with m.State("READ COUNTERS"):
                m.d.comb += c_raddr.eq(cmd.handle)
                with m.If(c_grant_r):
                    m.next = "COUNTERS WAIT"
            with m.State("COUNTERS WAIT"):
                m.next = "COUNTERS READ"
            with m.State("COUNTERS READ"):
                m.d.sync += [r.packets.eq(cd.packets), r.bytes.eq(cd.bytes),
                             r.last_seen.eq(cd.last_seen)]
                with m.If((cmd.op == FlowOp.DELETE) & r.found):
                    m.next = "DELETE SLOT"
                with m.Else():
                    m.next = "RESPOND"
            with m.State("DELETE SLOT"):
                m.d.comb += [kw_en.eq(1), kw_t.eq(loc.table), kw_way.eq(loc.way),
                             kw_addr.eq(loc.bucket), kw_slot.valid.eq(0), fwr.en.eq(1)]
                m.d.sync += ftail.eq(wrap(ftail))
                m.next = "RESPOND"

            with m.State("FLUSH SWEEP"):
                m.d.comb += [kw_all.eq(1), kw_addr.eq(sweep)]
                m.d.sync += sweep.eq(sweep + 1)
                with m.If(sweep == g.buckets - 1):
                    m.d.sync += [fresh.eq(0), fhead.eq(0), ftail.eq(0)]
                    m.next = "RESPOND"

            with m.State("RESPOND"):
                m.d.comb += self.rsp.valid.eq(1)
                with m.If(self.rsp.ready):
                    m.next = "IDLE"
        return m
