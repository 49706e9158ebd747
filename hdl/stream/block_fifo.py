"""A synchronous stream FIFO in block RAM whose read comes out of the RAM's
own output register: ``sink`` -> memory -> ``source``, a beat a clock.

Why: ``lib.fifo.SyncFIFOBuffered`` reads its memory without the output
register (5.8 ns clock-to-out from a speed-6 ECP5 DP16KD, most of a
137.5 MHz clock) and computes its ready and level from a 12-bit level
counter and a compare (6 levels).  Here the read goes through
``BlockRAM`` (hdl/ram: the DP16KD's ``OUTREG``), so ``source.payload`` is a
flop to the fabric, and both ``sink.ready`` and the read's "not empty" are
registers compared a clock ahead, as in
:class:`~twinplane.hdl.stream.packet_fifo.PacketFIFO`.

The price: a beat written to an empty FIFO reaches ``source`` four clocks
later (the write, the registered "not empty", the array read, the output
register), and the FIFO reports full early: it holds ``depth - 2`` entries in the
memory (``depth - 1`` if written in the clock it reached ``depth - 2``), plus
the one in the output register.
"""

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..lut4 import builds_lut4s
from ..ram.block_ram import BlockRAM
from .ahead import equal_ahead

__all__ = ["BlockFIFO"]


class BlockFIFO(wiring.Component):
    """``BlockFIFO(shape, depth)`` (``depth`` a power of two >= 16): ``sink``
    and ``source`` are ``stream.Signature(shape)``; ``sink.ready`` and
    ``source.valid`` are registers."""

    def __init__(self, shape, depth: int):
        if not isinstance(depth, int) or depth < 16 or depth & (depth - 1):
            raise ValueError(f"depth must be a power of two >= 16, not {depth!r}")
        self._shape = shape
        self._depth = depth
        super().__init__({"sink": In(stream.Signature(shape)), "source": Out(stream.Signature(shape))})

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):
        m = Module()
        abits = (self._depth - 1).bit_length()
        m.submodules.ram = ram = BlockRAM(self._shape, self._depth)

        wp = Signal(abits + 1)  # next entry to write
        rp = Signal(abits + 1)  # next entry to read

        # Write side: "full" is a register, "at most two free entries" from
        # flops: right if this clock writes, one entry early if not.  The
        # write's "valid" is not in it: the choice between the two (as
        # PacketFIFO's) ran the producer's valid into the subtract (7
        # levels).  "used >= depth - 2" is the sign of one subtract against
        # a registered limit, ``lim = rp_free + depth - 2``, where rp_free
        # (not kept) is the first entry not yet out of the array's read
        # stage: ``wp - rp_free`` is 0..depth, so ``wp - lim`` is
        # -(depth - 2)..2 and fits the pointers' bits.  An AND tree behind
        # the difference was two LUT levels more (the DFS's ``buffer0.full``
        # 7.72 ns on the 25F, the one late endpoint at seed 4).
        full = Signal()
        do_write = self.sink.valid & ~full
        lim = Signal(abits + 1, init=self._depth - 2)
        m.d.comb += [
            self.sink.ready.eq(~full),
            ram.write.addr.eq(wp[:abits]),
            ram.write.data.eq(self.sink.payload),
            ram.write.en.eq(do_write),
        ]
        m.d.sync += full.eq(~(wp - lim)[abits])  # used >= depth - 2
        with m.If(do_write):
            m.d.sync += wp.eq(wp + 1)

        # Read side: the array's read and the output register advance in
        # lock step when the output is free or transfers.  "rp != wp" from
        # flops (hdl/stream/ahead.py; a write is seen a clock late): rp + 1
        # is a register of its own (``rp1``), whose adder's carry chain ran
        # on into the compare, 5 levels into ``ne_next`` (routed 7.14 ns,
        # build 9b18dc6); ABC chained the compares to 5 levels (buffer0 wp
        # -> ne_next, syn_d).
        read_valid = Signal()  # the array's read stage holds an entry
        advance = ~self.source.valid | self.source.ready
        rp1 = Signal(abits + 1, init=1)  # rp + 1
        do_read = Signal()
        nonempty = ~equal_ahead(m, "sync", "empty", rp, rp1, wp, do_read, instance=builds_lut4s(platform))
        m.d.comb += do_read.eq(advance & nonempty)
        m.d.comb += [
            ram.read.addr.eq(rp[:abits]),
            ram.read.en.eq(do_read),
            ram.read.out_en.eq(advance),
            self.source.payload.eq(ram.read.data),
        ]
        with m.If(advance):
            m.d.sync += [
                self.source.valid.eq(read_valid),
                read_valid.eq(nonempty),
                lim.eq(rp + self._depth - 2),
            ]
        with m.If(do_read):
            m.d.sync += [rp.eq(rp1), rp1.eq(rp1 + 1)]
        return m
