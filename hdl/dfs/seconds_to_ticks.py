# Ref: docs/dfs.md (timers: the DFS counts time in ticks of ms_per_tick ms).
"""Seconds (a configuration value) to timebase ticks, without a multiplier.

``ticks = seconds * 1000 / ms_per_tick`` (rounded down, kept to
``ticks_width`` bits) as a multiply by the constant ``round(2**16 * 1000 /
ms_per_tick)`` and a shift, done one bit of ``seconds`` a clock: a new value
shows ``width + 2`` clocks after it appears, and the old one holds until
then.  Configuration changes once in a while; a DSP multiply in front of the
idle scanner's compare would have cost it a whole clock (docs/boards.md).
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SecondsToTicks"]


class SecondsToTicks(wiring.Component):
    """``seconds`` in, ``ticks`` out (a register)."""

    def __init__(self, *, width: int = 16, ms_per_tick: int, ticks_width: int):
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, not {width!r}")
        if not isinstance(ms_per_tick, int) or ms_per_tick < 1:
            raise ValueError(f"ms_per_tick must be a positive integer, not {ms_per_tick!r}")
        if not isinstance(ticks_width, int) or ticks_width < 1:
            raise ValueError(f"ticks_width must be a positive integer, not {ticks_width!r}")
        self._width = width
        self.scale = round((1000 << 16) / ms_per_tick)
        super().__init__({"seconds": In(width), "ticks": Out(ticks_width)})

    def elaborate(self, platform):
        m = Module()
        width = self._width
        # Shift and add, lowest bit of ``seconds`` first, with the sum shifted
        # right a bit a step (the product's low half falls off: ``acc`` ends
        # as the product >> ``width``, never wider than what is added), not
        # a doubling addend into a full-width product.
        add = self.scale << max(0, width - 16)
        taken = Signal(width)       # the value converted, or being converted
        rest = Signal(width)        # its bits not yet added, lowest first
        acc = Signal(add.bit_length())
        steps = Signal(range(width + 1))
        # The new value is noticed a clock late (``differs``, a flop): the
        # compare ran on into ``ticks``' enables, in the flow controller, 5
        # levels from the configuration register.  While a conversion runs
        # ``differs`` is not looked at, and it is a conversion old when it ends.
        differs = Signal()
        m.d.sync += differs.eq(taken != self.seconds)
        # ``steps != 0`` as flops set a clock ahead, one for ``acc`` and one
        # for the rest (kept apart: Yosys merges identical flops): the compare
        # was the select of ~60 flops, 8.5 ns routed (Colorlight build of
        # 1d82fb4).
        run_acc = Signal(name="run_acc", attrs={"keep": 1})
        run_rest = Signal(name="run_rest", attrs={"keep": 1})
        with m.If(run_acc):
            m.d.sync += acc.eq((acc + Mux(rest[0], add, 0)) >> 1)
        with m.Elif(differs):
            m.d.sync += acc.eq(0)
        with m.If(run_rest):
            m.d.sync += [rest.eq(rest >> 1), steps.eq(steps - 1)]
            m.d.sync += [run_acc.eq(steps != 1), run_rest.eq(steps != 1)]
        with m.Elif(differs):
            m.d.sync += [taken.eq(self.seconds), rest.eq(self.seconds), steps.eq(width)]
            m.d.sync += [run_acc.eq(1), run_rest.eq(1)]
        with m.Else():
            m.d.sync += self.ticks.eq(acc >> max(0, 16 - width))
        return m
