"""SecondsToTicks against the formula it replaces, over edge and random values."""

import random

import pytest
from amaranth.sim import Simulator

from twinplane.hdl.dfs.seconds_to_ticks import SecondsToTicks


def expected(seconds, ms_per_tick, ticks_width):
    scale = round((1000 << 16) / ms_per_tick)
    return ((seconds * scale) >> 16) & ((1 << ticks_width) - 1)


@pytest.mark.parametrize("ms_per_tick", [1, 134, 1000])
def test_conversion(ms_per_tick):
    dut = SecondsToTicks(width=16, ms_per_tick=ms_per_tick, ticks_width=16)
    rng = random.Random(ms_per_tick)
    values = [0, 1, 3, 300, 0xFFFF, 0x8000] + [rng.randrange(1 << 16) for _ in range(12)]

    async def bench(ctx):
        previous = 0
        for seconds in values:
            ctx.set(dut.seconds, seconds)
            await ctx.tick()
            # The old value holds until the new one is done.
            for _ in range(16):
                assert ctx.get(dut.ticks) == expected(previous, ms_per_tick, 16)
                await ctx.tick()
            await ctx.tick().repeat(2)
            assert ctx.get(dut.ticks) == expected(seconds, ms_per_tick, 16), seconds
            previous = seconds

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="ms_per_tick"):
        SecondsToTicks(ms_per_tick=0, ticks_width=16)
    with pytest.raises(ValueError, match="width"):
        SecondsToTicks(width=0, ms_per_tick=1, ticks_width=16)
