"""SkidBuffer: every beat through in order, none lost or doubled, under random
valid and ready; full rate when the consumer is always ready; ready from a flop."""

import random

import pytest
from amaranth.sim import Simulator

from twinplane.hdl.packet import packet_signature
from twinplane.hdl.stream.skid import SkidBuffer


def run(seed, p_valid, p_ready, n=300):
    dut = SkidBuffer(packet_signature(8))
    rng = random.Random(seed)
    sent = [(rng.randrange(256), rng.random() < 0.1, rng.random() < 0.1) for _ in range(n)]
    got, cycles = [], [0]

    async def producer(ctx):
        for data, first, last in sent:
            ctx.set(dut.sink.payload.data, data)
            ctx.set(dut.sink.payload.first, first)
            ctx.set(dut.sink.payload.last, last)
            while rng.random() >= p_valid:
                ctx.set(dut.sink.valid, 0)
                await ctx.tick()
            ctx.set(dut.sink.valid, 1)
            await ctx.tick().until(dut.sink.ready)
        ctx.set(dut.sink.valid, 0)

    async def consumer(ctx):
        while len(got) < n:
            ready = rng.random() < p_ready
            ctx.set(dut.source.ready, ready)
            await ctx.delay(1e-9)
            if ready and ctx.get(dut.source.valid):
                p = dut.source.payload
                got.append((ctx.get(p.data), bool(ctx.get(p.first)), bool(ctx.get(p.last))))
            await ctx.tick()
            cycles[0] += 1
            assert cycles[0] < 20 * n, "stalled"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    assert got == sent
    return cycles[0]


@pytest.mark.parametrize("seed,p_valid,p_ready", [(1, 0.5, 0.5), (2, 1.0, 0.3), (3, 0.3, 1.0), (4, 0.9, 0.9)])
def test_in_order_under_random_handshakes(seed, p_valid, p_ready):
    run(seed, p_valid, p_ready)


def test_full_rate():
    # Producer always valid, consumer always ready: one beat a clock (+1 of latency).
    assert run(5, 1.0, 1.0, n=200) <= 200 + 2


def test_signature_is_checked():
    with pytest.raises(TypeError, match="signature"):
        SkidBuffer(8)
