"""The stream registers (hdl/stream/): every beat through in order, none
lost or doubled, under random valid and ready; valid never follows the
consumer's ready in the same clock.  SkidBuffer and PipelineRegister: a
beat a clock.  StreamRegister: a beat every two clocks, and its ready does
not follow the consumer's either (nor SkidBuffer's)."""

import random

import pytest
from amaranth.sim import Simulator

from twinplane.hdl.packet import packet_signature
from twinplane.hdl.stream.register import PipelineRegister, StreamRegister
from twinplane.hdl.stream.skid import SkidBuffer


def run(seed, p_valid, p_ready, n=300, kind=StreamRegister):
    dut = kind(packet_signature(8))
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
            valid_before = ctx.get(dut.source.valid)
            sink_ready_before = ctx.get(dut.sink.ready)
            await ctx.delay(1e-9)
            # valid is registered; StreamRegister's sink.ready is too.
            assert ctx.get(dut.source.valid) == valid_before
            if kind is not PipelineRegister:
                assert ctx.get(dut.sink.ready) == sink_ready_before
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
@pytest.mark.parametrize("kind", [SkidBuffer, PipelineRegister, StreamRegister])
def test_in_order_under_random_handshakes(seed, p_valid, p_ready, kind):
    run(seed, p_valid, p_ready, kind=kind)


def test_half_rate():
    # Both sides always willing: a beat every two clocks.
    cycles = run(5, 1.0, 1.0, n=200)
    assert 2 * 200 - 2 <= cycles <= 2 * 200 + 2


@pytest.mark.parametrize("kind", [SkidBuffer, PipelineRegister])
def test_full_rate(kind):
    # Both sides always willing: a beat a clock, one clock of latency.
    assert run(6, 1.0, 1.0, n=200, kind=kind) <= 200 + 2


@pytest.mark.parametrize("kind", [SkidBuffer, PipelineRegister, StreamRegister])
def test_rejects_a_shape(kind):
    with pytest.raises(TypeError, match="signature must be a stream.Signature"):
        kind(8)
