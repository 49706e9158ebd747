"""equal_ahead (hdl/stream/ahead.py): a read pointer's "caught up with the
end" from flops is ``ptr == end`` with the end a clock late, whatever the
pointer's steps (which may depend on the answer) and the end's moves."""

import random

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from twinplane.hdl.stream.ahead import equal_ahead


@pytest.mark.parametrize("seed", range(3))
def test_equals_the_pointer_against_the_end_a_clock_late(seed):
    m = Module()
    ptr, ptr1, end = Signal(5), Signal(5, init=1), Signal(5)
    want_step, step = Signal(), Signal()
    caught_up = Signal()
    m.d.comb += caught_up.eq(equal_ahead(m, "sync", "caught", ptr, ptr1, end, step, instance=False))
    # A reader: it steps when it wants to and has not caught up (pointers wrap, as a FIFO's).
    m.d.comb += step.eq(want_step & ~caught_up)
    with m.If(step):
        m.d.sync += [ptr.eq(ptr1), ptr1.eq(ptr1 + 1)]
    rng = random.Random(seed)
    checked = []

    async def bench(ctx):
        for _ in range(600):
            end_before = ctx.get(end)  # as the last clock had it (set below for this one)
            assert ctx.get(caught_up) == (ctx.get(ptr) == end_before)
            checked.append(ctx.get(caught_up))
            ahead = (end_before - ctx.get(ptr)) % 32
            # The writer moves the end forward (never past the reader by a lap).
            if ahead < 20 and rng.random() < 0.4:
                ctx.set(end, (end_before + rng.randrange(1, 4)) % 32)
            ctx.set(want_step, rng.random() < 0.7)
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert 0 < sum(checked) < len(checked)  # both answers were seen
