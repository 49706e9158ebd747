"""HeaderParser (hdl/parser) against the reference parser, in Amaranth's simulator.

Frames are driven with random idle gaps (and back to back), ``meta`` is read
with random back-pressure; every record is compared field by field with
``twinplane.model.frames.parse_frame``.
"""

import random

import pytest
from amaranth.sim import Simulator

from twinplane.hdl.parser import HeaderParser, unpack_parsed_frame
from twinplane.hdl.parser.layout import FLOW_FIELDS
from twinplane.model.frames import FragmentKind, FrameClass, parse_frame
from twinplane.sim.parser.matrix import header_matrix, random_frames, truncations


def run_parser(frames, *, seed=0, gap_p=0.0, ready_p=1.0, **parser_args):
    """Drive ``frames``, return (records, latencies, stall checks)."""
    dut = HeaderParser(**parser_args)
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
            # sink.ready must not follow meta.ready in the same clock (the DFS's
            # ready chain ran through it into the fork and the ingress arbiter).
            ctx.set(dut.meta.ready, not ready)
            other = ctx.get(dut.sink.ready)
            ctx.set(dut.meta.ready, ready)
            assert ctx.get(dut.sink.ready) == other, "sink.ready follows meta.ready"
            valid = ctx.get(dut.meta.valid)
            payload = ctx.get(dut.meta.payload.as_value())
            if not ctx.get(dut.sink.ready):
                # A record on meta (taken this clock or not): the sink's ready is of the parser's flops.
                assert valid, "sink stalled without a record on meta"
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


def test_zero_unused_off_keeps_what_the_forwarder_reads():
    """``zero_unused=False`` (the DFS's parser): every record agrees with the
    model on the class and on each field the forwarder reads for that class
    (hdl/dfs/forwarder.py: ARP's requester and target, a TCP/UDP flow's
    frame info, ``tcp_flags`` 0 for UDP: a UDP flow's flags go into its QUERY)."""
    frames = header_matrix() + truncations(header_matrix()[::8]) + random_frames(random.Random(5), 150)
    records, _, _ = run_parser(frames, seed=5, gap_p=0.1, ready_p=0.7, zero_unused=False)
    always = ("klass", "malformed_reason", "fragment", "vlan", "vlan_id", "l3_offset")
    arp = ("eth_src", "arp_oper", "src_ip", "dst_ip")
    flow = ("eth_src", "ip_total_length", *FLOW_FIELDS)
    kinds = set()
    for frame, got in zip(frames, records, strict=True):
        want = parse_frame(frame).as_dict()
        fields = always
        if want["klass"] == FrameClass.ARP:
            fields += arp
        elif want["klass"] in (FrameClass.IPV4_TCP, FrameClass.IPV4_UDP) and want["fragment"] != FragmentKind.LATER:
            fields += flow
        kinds.add(FrameClass(want["klass"]))
        assert {k: got[k] for k in fields} == {k: want[k] for k in fields}, frame.hex()
    assert {FrameClass.ARP, FrameClass.IPV4_TCP, FrameClass.IPV4_UDP} <= kinds
