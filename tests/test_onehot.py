"""hdl/onehot.py: one-hot AND-OR selection, every select pattern of three."""

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from twinplane.hdl.onehot import onehot_mux


def test_every_select_pattern():
    values = [0x12, 0x34, 0xC0]
    sel = Signal(3)
    out = Signal(8)
    m = Module()
    m.d.comb += out.eq(onehot_mux(sel, values))

    async def bench(ctx):
        for pattern in range(8):
            ctx.set(sel, pattern)
            want = 0
            for i, v in enumerate(values):
                if pattern >> i & 1:
                    want |= v
            assert ctx.get(out) == want, pattern  # one-hot: the value; none: 0

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_counts_must_match():
    with pytest.raises(ValueError, match="2 selects for 3 values"):
        onehot_mux([Signal(), Signal()], [1, 2, 3])
