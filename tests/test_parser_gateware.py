"""HeaderParser (hdl/parser) against the reference parser, in Amaranth's simulator.

Frames are driven with random idle gaps (and back to back), ``meta`` is read
with random back-pressure; every record is compared field by field with
``twinplane.model.frames.parse_frame``.
"""

import random

import pytest
from amaranth.sim import Simulator

from twinplane.hdl.parser import HeaderParser, unpack_parsed_frame
from twinplane.model.frames import FrameClass, parse_frame
from twinplane.sim.parser.matrix import header_matrix, random_frames, truncations


def run_parser(frames, *, seed=0, gap_p=0.0, ready_p=1.0):
    """Drive ``frames``, return (records, latencies, stall checks)."""
    dut = HeaderParser()
    rng = random.Random(seed)
    records, last_cycles, valid_cycles = [], [], []
    cycle = [0]
    done = [False]

    async def producer(ctx):
        for frame in frames:
            for i, b in enumerate(frame):
                while rng.random() < gap_p:
                    ctx.set(dut.sink.valid, 0)
                    await ctx.tick()
                ctx.set(dut.sink.valid, 1)
                ctx.set(dut.sink.payload, {"data": b, "first": i == 0, "last": i == len(frame) - 1})
                await ctx.tick().until(dut.sink.ready)
                if i == len(frame) - 1:
                    last_cycles.append(cycle[0])
        ctx.set(dut.sink.valid, 0)
        done[0] = True

    async def consumer(ctx):
        was_valid = False
        while len(records) < len(frames):
            ready = rng.random() < ready_p
            ctx.set(dut.meta.ready, ready)
            valid = ctx.get(dut.meta.valid)
            payload = ctx.get(dut.meta.payload.as_value())
            if not ctx.get(dut.sink.ready):
                assert valid and not ready, "sink stalled without a record waiting on meta"
            if valid and not was_valid:
                valid_cycles.append(cycle[0])
            await ctx.tick()
            cycle[0] += 1
            was_valid = valid and not ready
            if valid and ready:
                records.append(unpack_parsed_frame(payload))
            assert cycle[0] < 200 * sum(len(f) + 4 for f in frames) + 1000, "parser hung"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return records, last_cycles, valid_cycles


def check(frames, records):
    assert len(records) == len(frames)
    for frame, got in zip(frames, records, strict=True):
        want = parse_frame(frame).as_dict()
        assert got == want, f"frame {frame.hex()}: " + ", ".join(
            f"{k}: got {got[k]:#x} want {want[k]:#x}" for k in want if got[k] != want[k])


def test_constructor_checks_width():
    with pytest.raises(ValueError, match="data_width 8 only, not 16"):
        HeaderParser(16)


def test_matrix_back_to_back_latency():
    frames = header_matrix()
    records, lasts, valids = run_parser(frames)
    check(frames, records)
    # meta valid a fixed 3 cycles after each last byte, with no idle cycle between frames
    assert [v - t for v, t in zip(valids, lasts, strict=True)] == [3] * len(frames)
    assert {FrameClass(r["klass"]) for r in records} == set(FrameClass)


def test_matrix_gaps_and_backpressure():
    frames = header_matrix()
    records, _, _ = run_parser(frames, seed=1, gap_p=0.3, ready_p=0.3)
    check(frames, records)


def test_one_byte_frames_back_to_back_with_backpressure():
    frames = [bytes([i]) for i in range(20)] + [bytes(14)] * 5
    records, _, _ = run_parser(frames, seed=2, ready_p=0.5)
    check(frames, records)


def test_truncations():
    frames = truncations(header_matrix()[::8])
    records, _, _ = run_parser(frames, seed=3, ready_p=0.8)
    check(frames, records)


def test_random_traffic():
    frames = random_frames(random.Random(4), 150)
    records, _, _ = run_parser(frames, seed=4, gap_p=0.1, ready_p=0.7)
    check(frames, records)
