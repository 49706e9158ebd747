# Virtual-server CAM: which virtual server a frame is for, one lookup a clock.
# Ref: the patent's virtual servers (match the destination address and port of
#      packets from the external network; WILDCARD_ADDR / WILDCARD_PORT /
#      NOARP_MODE); reference model: twinplane.model.vscam.VirtualServerTable.
"""The virtual-server table in a small memory, searched one entry a clock.

Precedence (best first; the lowest entry index wins a tie within a class):
exact address and port, WILDCARD_PORT (address equal), WILDCARD_ADDR (port
equal, address not *known*), both wildcards (address not known).  A known
address is the ``virt_addr`` of any valid entry without WILDCARD_ADDR, or
``local_addr`` (the DFS's own, 0 = none).  Protocol must be equal; an entry's
``vlan_id`` 0 matches any VLAN, else only that VLAN (the query's vlan_id is 0
for an untagged frame).  ARP: answer for an address that is the
``virt_addr`` of a valid entry without WILDCARD_ADDR or NOARP_MODE.

Writes come in the message port's ``vs_write_layout`` (IPv4 ``virt_addr`` in
the low 32 bits; an ``index`` beyond the table is ignored).

Why a scan: a lookup is needed only for a frame of no known flow (a new
flow, ARP), at most one per frame, and a minimum frame takes 84 clocks at
one byte per clock, so one comparator walking the entries (``entries`` + 6
clocks a question) does the work of ``entries`` comparators and registers
(16 entries: ~2.4k LUT4 and 1.75k FF as a parallel CAM).

One question at a time: ``lookup`` (first) or ``arp`` is taken when the
CAM is idle and no write is offered; a write waits while a question is
searched.  So a question sees every write accepted before it, and none
accepted after it.  ``result`` / ``arp_result`` carry ``valid`` for one
clock.  Entry ``valid`` bits are registers (reset with the design); the rest
of an entry is in the memory.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from twinplane.protocol.codes import Flag

from ..lut4 import builds_lut4s, lut4, lut_eq, lut_eq_const
from ..msgport.session import vs_write_layout
from ..onehot import OneHotFSM

__all__ = ["VirtualServerCAM", "vs_lookup_layout", "vs_result_layout"]

_MAX_ENTRIES = 256  # the write index is 8 bits


def vs_lookup_layout() -> data.StructLayout:
    return data.StructLayout({"dst_ip": 32, "dst_port": 16, "protocol": 8, "vlan_id": 12})


def vs_result_layout() -> data.StructLayout:
    return data.StructLayout({"valid": 1, "hit": 1, "vs_id": 16, "index": 8, "flags": 32})


class VirtualServerCAM(wiring.Component):
    """``entries`` virtual servers (>= 16).

    Members: ``write`` (in stream, vs_write_layout); ``local_addr`` (in, 32);
    ``lookup`` (in stream, vs_lookup_layout) -> ``result`` (out,
    vs_result_layout with a ``valid`` bit); ``arp`` (in stream, ``addr``) ->
    ``arp_result`` (out, ``valid``, ``answer_arp``).  A question takes
    :meth:`latency` clocks from its transfer to its result."""

    def __init__(self, entries: int = 16):
        if not isinstance(entries, int) or isinstance(entries, bool):
            raise TypeError(f"entries must be an integer, not {entries!r}")
        if not 16 <= entries <= _MAX_ENTRIES:
            raise ValueError(f"entries must be from 16 to {_MAX_ENTRIES}, not {entries!r}")
        self.entries = entries
        super().__init__(
            {
                "write": In(stream.Signature(vs_write_layout())),
                "local_addr": In(32),
                "lookup": In(stream.Signature(vs_lookup_layout())),
                "result": Out(vs_result_layout()),
                "arp": In(stream.Signature(data.StructLayout({"addr": 32}))),
                "arp_result": Out(data.StructLayout({"valid": 1, "answer_arp": 1})),
            }
        )

    def latency(self) -> int:
        """Clocks from a question's transfer to its result."""
        return self.entries + 6

    def elaborate(self, platform):
        m = Module()
        n = self.entries
        ib = max(1, (n - 1).bit_length())
        entry_layout = data.StructLayout(
            {"protocol": 8, "addr": 32, "port": 16, "vlan_id": 12,
             "wild_addr": 1, "wild_port": 1, "noarp": 1, "vs_id": 16}
        )
        m.submodules.table = table = memory.Memory(shape=entry_layout, depth=n, init=[])
        wr = table.write_port()
        rd = table.read_port()
        valid = Signal(n)  # entry valid bits (registers: cleared by reset)

        idle = Signal()
        m.d.comb += [
            self.write.ready.eq(idle),
            self.lookup.ready.eq(idle & ~self.write.valid),
            self.arp.ready.eq(idle & ~self.write.valid & ~self.lookup.valid),
        ]

        # ---- writes ----------------------------------------------------------------------
        w = self.write.payload
        flags = w.flags
        # The write lands a clock after its handshake, from registers: the
        # entry, its address and a flag per valid bit.  From the writer's
        # payload and valid directly, the LUT RAM's address/data and the
        # valid bits' enables were nets from the message port across the die
        # (45 late endpoints in f522c50, 7.3-8.2 ns).  A question accepted
        # the clock after a write reads its first entry two clocks later.
        w_en = Signal()
        w_sel = Signal(n)  # the valid bit written (one-hot)
        w_valid = Signal()
        w_take = self.write.valid & self.write.ready & (w.index < n)
        m.d.sync += [
            w_en.eq(w_take),
            w_sel.eq(Mux(w_take, (Const(1, n) << w.index[:ib])[:n], 0)),
            w_valid.eq(w.valid),
            wr.addr.eq(w.index[:ib]),
            wr.data.protocol.eq(w.vs.protocol),
            wr.data.addr.eq(w.vs.virt_addr[:32]),
            wr.data.port.eq(w.vs.virt_port),
            wr.data.vlan_id.eq(w.vs.vlan_id[:12]),
            wr.data.wild_addr.eq((flags & Flag.WILDCARD_ADDR) != 0),
            wr.data.wild_port.eq((flags & Flag.WILDCARD_PORT) != 0),
            wr.data.noarp.eq((flags & Flag.NOARP_MODE) != 0),
            wr.data.vs_id.eq(w.vs.vs_id),
        ]
        m.d.comb += wr.en.eq(w_en)
        for i in range(n):
            with m.If(w_sel[i]):
                m.d.sync += valid[i].eq(w_valid)

        # ---- the question ------------------------------------------------------------------
        q = Signal(vs_lookup_layout())
        is_arp = Signal()
        addr = Signal(ib + 1)  # the entry read this clock (its data comes the next)
        # addr + 1, a register stepped with it: the scan's adder was shared
        # with the winner's load into addr (a carry chain behind the
        # classes' priority, 5 levels).
        addr_inc = Signal(ib + 1)
        e_index = Signal(ib)  # the entry whose data is on rd.data
        e_valid = Signal()  # rd.data is an entry of the scan
        m.d.comb += rd.addr.eq(addr[:ib])

        # ---- one comparator over the entry on rd.data --------------------------------------
        # The compares land in registers field by field, the classes are
        # formed from them and the class bookkeeping runs a clock later: an
        # entry's 70-bit compare and the found/known updates do not fit one
        # clock together.  (The classes themselves registered, behind the
        # field compares and their AND, were 7 levels from ``q``.)
        e = rd.data
        c_live, c_port_eq, c_addr_eq, c_kind_ok = (
            Signal(name=n) for n in ("c_live", "c_port_eq", "c_addr_eq", "c_kind_ok"))
        c_wild_addr, c_wild_port = Signal(), Signal()
        c_noarp = Signal()
        c_index = Signal(ib)
        c_valid = Signal()
        # The compares as trees of LUT4s on ECP5 (hdl/lut4.py): ABC chained
        # the port's 16-bit compare to 6 levels, the address's to 6.  The
        # protocol and the VLAN share a flop (``c_kind_ok``): both are ANDed
        # into every class.
        ecp5 = builds_lut4s(platform)
        vlan_any = lut_eq_const(m, "c_vlan_zero", e.vlan_id, 0, instance=ecp5)
        vlan_same = lut_eq(m, "c_vlan_eq", e.vlan_id, q.vlan_id, instance=ecp5)
        proto_same = lut_eq(m, "c_proto_eq", e.protocol, q.protocol, instance=ecp5)
        kind_ok = lut4(m, "c_kind_ok", [proto_same, vlan_any, vlan_same],
                       lambda p, z, v: p & (z | v), instance=ecp5)
        m.d.sync += [c_live.eq(e_valid & valid.bit_select(e_index, 1)),
                     c_addr_eq.eq(lut_eq(m, "c_addr_eq", e.addr, q.dst_ip, instance=ecp5)),
                     c_port_eq.eq(lut_eq(m, "c_port_eq", e.port, q.dst_port, instance=ecp5)),
                     c_kind_ok.eq(kind_ok),
                     c_wild_addr.eq(e.wild_addr), c_wild_port.eq(e.wild_port), c_noarp.eq(e.noarp),
                     c_index.eq(e_index), c_valid.eq(e_valid)]
        base = c_live & c_kind_ok
        c_classes = Cat(
            base & ~c_wild_addr & ~c_wild_port & c_addr_eq & c_port_eq,
            base & ~c_wild_addr & c_wild_port & c_addr_eq,
            base & c_wild_addr & ~c_wild_port & c_port_eq,
            base & c_wild_addr & c_wild_port,
        )
        c_known_bit = c_live & ~c_wild_addr & c_addr_eq  # the ARP question: addr_eq & ~noarp
        found = [Signal(name=f"found{c}") for c in range(4)]
        # The better entry of each pair of classes (exact address: classes 0
        # and 1; wildcard address: 2 and 3), kept as the scan goes (an entry
        # of the pair's first class replaces one of its second, not the
        # reverse): the winner is then a 2:1 choice, not the four classes'
        # priority (5 levels from found2 into addr).
        exact_at, wild_at = Signal(ib), Signal(ib)
        arp_answer = Signal()
        # "No address is known" (the wildcard-address classes may win), one
        # flop cleared as the scan meets a known address or ``local_known``:
        # a ``known`` flop and local_known ran through the winner's priority
        # into ``addr``, 6 levels.
        wild_ok = Signal()

        # The DFS's own address is known too: compared on the registered
        # question, every clock (the winner is read entries + 2 clocks later).
        # ``local_addr`` (configuration) registered first: the compare behind
        # the port's own path was 6 levels.
        # A byte a flag, as the entries' (the 32-bit compare was 6 levels).
        local_bytes = Signal(4)
        local_addr, local_set = Signal(32), Signal()
        m.d.sync += [local_addr.eq(self.local_addr), local_set.eq(self.local_addr != 0),
                     local_bytes.eq(Cat(local_addr.word_select(k, 8) == q.dst_ip.word_select(k, 8)
                                        for k in range(4)))]
        local_known = Signal()  # their AND, a clock later (the winner is chosen much later)
        m.d.sync += local_known.eq(local_set & local_bytes.all())

        # ---- the winner: chosen in a clock of its own ("Choosing the winner",
        # into ``hit_r``/``win_r``): the classes' priority ran on into the
        # memory's read address and its data register, 6 levels.
        hit = Signal()
        win = Signal(ib)
        hit_r, win_r = Signal(), Signal(ib)
        exact_found, wild_found = found[0] | found[1], (found[2] | found[3]) & wild_ok
        m.d.comb += [hit.eq(exact_found | wild_found), win.eq(Mux(exact_found, exact_at, Mux(wild_found, wild_at, 0)))]

        # The scan's bookkeeping under ``c_valid`` alone, not the FSM's state
        # too (c_valid is set only while Searching; Idle clears it later in
        # this process): the state's decode was a level in series with the
        # classes into found's enables, 5 levels.  ``local_known`` is the
        # question's from the first entry's compare on (two clocks behind q).
        with m.If(c_valid):
            for c in range(4):
                with m.If(c_classes[c]):
                    m.d.sync += found[c].eq(1)
            # Ascending: the first entry of a class is its lowest index.
            with m.If((c_classes[0] & ~found[0]) | (c_classes[1] & ~found[0] & ~found[1])):
                m.d.sync += exact_at.eq(c_index)
            with m.If((c_classes[2] & ~found[2]) | (c_classes[3] & ~found[2] & ~found[3])):
                m.d.sync += wild_at.eq(c_index)
            m.d.sync += [arp_answer.eq(arp_answer | (c_known_bit & ~c_noarp)),
                         wild_ok.eq(wild_ok & ~c_known_bit & ~local_known)]

        m.d.sync += [self.result.valid.eq(0), self.arp_result.valid.eq(0)]
        # One flop a state: the binary state's decode was a level in front of
        # ``addr`` (the winner's load and the scan's step, 5 levels).
        with OneHotFSM(m, "Idle", name="cam") as fsm:
            with fsm.state("Idle"):
                m.d.comb += idle.eq(1)
                m.d.sync += [addr.eq(0), addr_inc.eq(1), e_valid.eq(0), c_valid.eq(0), arp_answer.eq(0),
                             wild_ok.eq(1)]
                m.d.sync += [f.eq(0) for f in found]
                # The question loads every idle clock, chosen by the lookup's
                # valid alone (the accepting handshakes' AND was a net of
                # fanout 70 from the lookup arbiter into q's enable, 26 late
                # in f522c50); the clock that leaves Idle holds the accepted one.
                arp_q = Signal.like(q)
                m.d.comb += arp_q.dst_ip.eq(self.arp.payload.addr)
                m.d.sync += [q.eq(Mux(self.lookup.valid, self.lookup.payload, arp_q)),
                             is_arp.eq(~self.lookup.valid)]
                with m.If(self.lookup.valid & self.lookup.ready):
                    fsm.goto("Searching")
                with m.Elif(self.arp.valid & self.arp.ready):
                    fsm.goto("Searching")
            with fsm.state("Searching"):
                m.d.sync += [addr.eq(addr_inc), addr_inc.eq(addr_inc + 1), e_index.eq(addr[:ib]),
                             e_valid.eq(addr < n)]
                with m.If(c_valid & (c_index == n - 1)):
                    fsm.goto("Choosing the winner")
            with fsm.state("Choosing the winner"):
                # The winner's address goes into ``addr`` (the scan is over),
                # so the memory's read address is a register in every state:
                # a mux on the FSM's state in front of it ran on through the
                # LUT RAM into its data register (17-20 late endpoints on the
                # 25F at 797679b).
                m.d.sync += [hit_r.eq(hit), win_r.eq(win), addr.eq(win)]
                fsm.goto("Reading the winner")
            with fsm.state("Reading the winner"):
                fsm.goto("Answering")
            with fsm.state("Answering"):
                r = self.result
                with m.If(is_arp):
                    m.d.sync += [self.arp_result.valid.eq(1), self.arp_result.answer_arp.eq(arp_answer)]
                with m.Else():
                    m.d.sync += [r.valid.eq(1), r.hit.eq(hit_r), r.index.eq(Mux(hit_r, win_r, 0)),
                                 r.vs_id.eq(Mux(hit_r, e.vs_id, 0)),
                                 # WILDCARD_ADDR is bit 7, then 8, 9
                                 r.flags.eq(Mux(hit_r, Cat(Const(0, 7), e.wild_addr, e.wild_port, e.noarp), 0))]
                fsm.goto("Idle")
        return m
