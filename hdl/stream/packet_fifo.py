"""Store-and-forward packet FIFO: a frame becomes visible to the reader only
once the writer commits it, and a frame the writer drops (or that did not fit)
vanishes whole.

Write side (domain ``w_domain``): ``sink`` is a packet stream whose ``ready``
is always 1 -- the writer is never stalled, because a MAC cannot pause the
wire.  On the transfer that carries ``last`` the writer says ``commit`` (keep
the frame) or leaves it low (drop it).  A ``drop`` strobe without a transfer
discards whatever part of a frame was written so far (e.g. a receive aborted
before its last byte).  If the memory fills up mid-frame, the rest of that
frame is ignored and, at its end, the frame is discarded and ``overflow``
pulses for one write clock (only if the writer wanted to commit it, so a bad
frame is never also counted as an overflow).  ``committed`` pulses for each
frame kept.

Read side (domain ``r_domain``): ``source`` carries committed frames only,
with ``first`` regenerated (it is not stored: one memory bit saved per entry).
A read takes two clocks, the memory's read then an output register, in lock
step: both advance when ``source`` is empty or transfers.  On ECP5 (the
platform's ``family`` is "ecp5") the memory (``BlockRAM``, hdl/ram) is DP16KD instantiated
with ``REGMODE_B="OUTREG"``, so that register is the block RAM's own output
register (Yosys' memory mapping never uses it): the fabric sees a flop's
clock-to-out instead of the array's 5.8 ns.  Elsewhere (simulation, other
FPGAs) it is a ``lib.memory.Memory`` read port and a register.  The entry in
the first read stage still counts as used, so the capacity is what it was
with a one-stage read (see below).

Clock domains: when ``w_domain == r_domain`` the pointers are compared
directly.  Otherwise the committed-write pointer (which jumps by a whole frame
at a commit, so Gray code cannot carry it) crosses with a hold register and a
toggle handshake: the reader sees commits a few clocks late, never a torn
pointer; the read pointer, which steps by one, crosses in Gray code as in any
asynchronous FIFO.  Both directions are conservative: late news only makes the
FIFO look fuller (writer) or emptier (reader).

Timing: ``full`` is a register that looks one clock ahead ("the next
write pointer leaves at most one free entry", ``wp' - rp >= depth - 1``),
and in the two-clock case the read pointer's Gray decode is registered too.
The write side then decides from flops only (no pointer subtract or 13-bit
compare in front of ``wp``'s enable), at the price of one entry: the FIFO
reports full one entry early and holds at most ``depth - 1`` entries (plus
the one in the read side's output register).  Like any late news of the read pointer,
this only makes the FIFO look fuller: no entry is ever overwritten.
"""

from amaranth import Cat, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..lut4 import builds_lut4s
from ..packet import packet_layout, packet_signature
from ..ram.block_ram import BlockRAM
from .ahead import equal_ahead

__all__ = ["PacketFIFO"]

def _gray(v):
    return v ^ (v >> 1)


def _ungray(g, width):
    bits = [None] * width
    bits[width - 1] = g[width - 1]
    for i in reversed(range(width - 1)):
        bits[i] = bits[i + 1] ^ g[i]
    return Cat(*bits)


class PacketFIFO(wiring.Component):
    """``PacketFIFO(data_width=8, depth=4096, w_domain="sync", r_domain="sync")``.

    ``depth`` (entries, a power of two >= 16) must exceed the largest frame
    the writer will commit: the FIFO stores at most ``depth - 1`` entries (see
    the timing note above); a larger frame always overflows.
    """

    def __init__(self, data_width: int = 8, depth: int = 4096, *, w_domain: str = "sync", r_domain: str = "sync"):
        packet_layout(data_width)  # checks data_width
        if not isinstance(depth, int) or depth < 16 or depth & (depth - 1):
            raise ValueError(f"depth must be a power of two >= 16, not {depth!r}")
        for name, dom in (("w_domain", w_domain), ("r_domain", r_domain)):
            if not isinstance(dom, str):
                raise TypeError(f"{name} must be a domain name, not {dom!r}")
        self._data_width = data_width
        self._depth = depth
        self._w_domain = w_domain
        self._r_domain = r_domain
        super().__init__(
            {
                "sink": In(packet_signature(data_width)),
                "commit": In(1),
                "drop": In(1),
                "committed": Out(1),
                "overflow": Out(1),
                "source": Out(packet_signature(data_width)),
            }
        )

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):
        m = Module()
        wd = m.d[self._w_domain]
        rd = m.d[self._r_domain]
        same = self._w_domain == self._r_domain
        abits = (self._depth - 1).bit_length()
        layout = packet_layout(self._data_width)
        stored = data.StructLayout({k: v.shape for k, v in layout if k != "first"})

        # The memory: BlockRAM's two-clock read (on ECP5 the DP16KD's own
        # output register, hdl/ram/block_ram.py).
        width = stored.size
        w_word = Signal(width)
        r_word = Signal(width)  # the read side's output register
        w_en = Signal()
        r_en = Signal()  # first read stage: the memory reads r_addr
        r_out = Signal()  # second read stage: the output register loads
        w_addr = Signal(abits)
        r_addr = Signal(abits)
        m.submodules.ram = ram = BlockRAM(width, self._depth, w_domain=self._w_domain,
                                          r_domain=self._r_domain)
        m.d.comb += [ram.write.addr.eq(w_addr), ram.write.en.eq(w_en), ram.write.data.eq(w_word),
                     ram.read.addr.eq(r_addr), ram.read.en.eq(r_en), ram.read.out_en.eq(r_out),
                     r_word.eq(ram.read.data)]
        wp_mem = data.View(stored, w_word)
        rp_mem = data.View(stored, r_word)

        # Pointers carry one extra bit so full and empty differ.
        wp = Signal(abits + 1)  # next entry to write
        cp = Signal(abits + 1)  # end of the committed frames (write domain)
        rp = Signal(abits + 1)  # next entry to read (read domain)
        rp_free = Signal(abits + 1)  # entries before it have left the memory's read stage
        rp_w = Signal(abits + 1)  # rp_free as seen by the writer
        cp_r = Signal(abits + 1)  # committed pointer as seen by the reader

        if same:
            m.d.comb += [rp_w.eq(rp_free), cp_r.eq(cp)]
        else:
            # Read pointer -> write domain, Gray coded (it steps by one).
            rp_gray = Signal(abits + 1)
            rd += rp_gray.eq(_gray(rp_free))
            rp_gray_w = Signal(abits + 1)
            m.submodules.rp_sync = FFSynchronizer(rp_gray, rp_gray_w, o_domain=self._w_domain)
            # Decoded into a register: the XOR chain is not in front of the full compare.
            wd += rp_w.eq(_ungray(rp_gray_w, abits + 1))
            # Committed pointer -> read domain, hold register + toggle handshake.
            hold = Signal(abits + 1)
            req = Signal()
            ack_w = Signal()
            req_r = Signal()
            ack = Signal()
            m.submodules.req_sync = FFSynchronizer(req, req_r, o_domain=self._r_domain)
            m.submodules.ack_sync = FFSynchronizer(ack, ack_w, o_domain=self._w_domain)
            with m.If((req == ack_w) & (hold != cp)):
                wd += [hold.eq(cp), req.eq(~req)]
            with m.If(req_r != ack):
                rd += [cp_r.eq(hold), ack.eq(req_r)]

        # Write side.
        overflowing = Signal()  # the frame being written did not fit
        m.d.comb += self.sink.ready.eq(1)
        # "full" is a register: it says whether the pointer wp takes at this
        # clock leaves at most one free entry (modular differences: the
        # pointers wrap).  Its three candidates are compared from flops in
        # parallel and the same branches that pick wp pick one of them, so
        # no subtract or compare sits in front of wp's enable.
        full = Signal()
        # "used >= depth - k" as the sign of one subtract: ``wp - rp_w`` is
        # 0..depth, so ``wp - (rp_w + depth - k)`` is -(depth - k)..k, which
        # the pointers' abits + 1 bits hold, and it is negative exactly when
        # fewer than depth - k entries are used.  The limits are registers
        # (``lim1``, ``lim2``: rp_w + depth - 1 and - 2), so the sign bit is
        # the carry chain's end: the AND trees on the difference behind it
        # were two LUT levels more (the bridge's ``fifo0.full`` 7.34 ns on
        # the 25F).  Within a domain they step with ``rp_free``; across
        # domains they follow ``rp_w`` a clock late (the writer sees the
        # reader a clock later still: the FIFO only looks fuller).
        lim1 = Signal(abits + 1, init=self._depth - 1)
        lim2 = Signal(abits + 1, init=self._depth - 2)
        stays_full = ~(wp - lim1)[abits]  # wp unchanged: used >= depth - 1
        fills_up = ~(wp - lim2)[abits]  # wp + 1: used >= depth - 2
        back_full = ~(cp - lim1)[abits]  # wp back to cp
        wd += [self.committed.eq(0), self.overflow.eq(0), full.eq(stays_full)]
        fits = ~full & ~overflowing
        with m.If(self.sink.valid):
            with m.If(fits):
                m.d.comb += [
                    w_addr.eq(wp[:abits]),
                    w_en.eq(1),
                ]
                for name, _ in stored:
                    m.d.comb += wp_mem[name].eq(self.sink.payload[name])
            with m.If(self.sink.payload.last):
                wd += overflowing.eq(0)
                with m.If(self.commit & fits):
                    wd += [cp.eq(wp + 1), wp.eq(wp + 1), self.committed.eq(1), full.eq(fills_up)]
                with m.Else():
                    wd += [wp.eq(cp), full.eq(back_full)]
                    with m.If(self.commit):
                        wd += self.overflow.eq(1)
            with m.Elif(fits):
                wd += [wp.eq(wp + 1), full.eq(fills_up)]
            with m.Else():
                wd += overflowing.eq(1)
        with m.Elif(self.drop):
            wd += [wp.eq(cp), overflowing.eq(0), full.eq(back_full)]

        # Read side: a two-stage prefetch (memory read, output register) that
        # advances in lock step whenever the output is free or transfers;
        # both stages hold while it does not.  rp_free trails rp by the entry
        # in the read stage, which is still counted as used.
        r_first = Signal(init=1)
        read_valid = Signal()  # the memory's read stage holds an entry
        advance = ~self.source.valid | self.source.ready
        # "rp != cp_r" from flops (hdl/stream/ahead.py: the reader sees a
        # commit a clock later), so the pointer compare is not in front of
        # the block RAM's clock enable.  rp + 1 is a register of its own
        # stepped with rp (the increment ran on into the compare:
        # mac0.mac.fifo's ne_next 7.32 ns routed).
        rp_inc = Signal(abits + 1, init=1)  # rp + 1
        do_read = Signal()
        nonempty = ~equal_ahead(m, self._r_domain, "empty", rp, rp_inc, cp_r, do_read,
                                instance=builds_lut4s(platform))
        m.d.comb += do_read.eq(advance & nonempty)
        m.d.comb += [
            r_addr.eq(rp[:abits]),
            r_en.eq(do_read),
            r_out.eq(advance),
            self.source.payload.first.eq(r_first),
        ]
        for name, _ in stored:
            m.d.comb += self.source.payload[name].eq(rp_mem[name])
        with m.If(advance):
            rd += [self.source.valid.eq(read_valid), read_valid.eq(nonempty), rp_free.eq(rp)]
            if same:
                rd += [lim1.eq(rp + self._depth - 1), lim2.eq(rp + self._depth - 2)]
        if not same:
            wd += [lim1.eq(rp_w + self._depth - 1), lim2.eq(rp_w + self._depth - 2)]
        with m.If(do_read):
            rd += [rp.eq(rp_inc), rp_inc.eq(rp_inc + 1)]
        with m.If(self.source.valid & self.source.ready):
            rd += r_first.eq(self.source.payload.last)
        return m
