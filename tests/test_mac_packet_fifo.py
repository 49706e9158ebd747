"""PacketFIFO under Amaranth's simulator: commit, drop, full, never stalls the
writer; frames out equal a Python model of what was committed."""

import random

import pytest
from amaranth.sim import Simulator

from twinplane.hdl.stream.packet_fifo import PacketFIFO


def run(depth, ops, *, read_ready=1.0, seed=0, domains=("sync", "sync"), gap=0):
    """ops: list of (frame bytes, action) with action "commit", "drop" (on the
    last byte) or "abort" (a drop strobe after a partial frame); ``gap`` idle
    write clocks after each frame."""
    dut = PacketFIFO(8, depth, w_domain=domains[0], r_domain=domains[1])
    sim = Simulator(dut)
    for d in set(domains):
        sim.add_clock(1e-8 if d == "sync" else 0.93e-8, domain=d)
    got, stats = [], {"committed": 0, "overflow": 0, "stalled": 0}
    done = []

    async def writer(ctx):
        for frame, action in ops:
            for i, b in enumerate(frame):
                last = i == len(frame) - 1 and action != "abort"
                ctx.set(dut.sink.valid, 1)
                ctx.set(dut.sink.payload, {"data": b, "first": i == 0, "last": last})
                ctx.set(dut.commit, last and action == "commit")
                if not ctx.get(dut.sink.ready):
                    stats["stalled"] += 1
                _, _, committed, overflow = await ctx.tick(domains[0]).sample(dut.committed, dut.overflow)
                stats["committed"] += committed
                stats["overflow"] += overflow
            ctx.set(dut.sink.valid, 0)
            ctx.set(dut.commit, 0)
            if action == "abort":
                ctx.set(dut.drop, 1)
                await ctx.tick(domains[0])
                ctx.set(dut.drop, 0)
            for _ in range(gap):
                _, _, committed, overflow = await ctx.tick(domains[0]).sample(dut.committed, dut.overflow)
                stats["committed"] += committed
                stats["overflow"] += overflow
        for _ in range(3):
            _, _, committed, overflow = await ctx.tick(domains[0]).sample(dut.committed, dut.overflow)
            stats["committed"] += committed
            stats["overflow"] += overflow
        done.append(1)

    async def reader(ctx):
        rng = random.Random(seed)
        cur = None
        idle = 0
        while idle < 4 * depth + 50:
            ready = rng.random() < read_ready
            ctx.set(dut.source.ready, ready)
            _, _, valid, p = await ctx.tick(domains[1]).sample(dut.source.valid, dut.source.payload)
            if valid and ready:
                idle = 0
                if p.first:
                    assert cur is None
                    cur = bytearray()
                assert cur is not None, "byte outside a frame"
                cur.append(p.data)
                if p.last:
                    got.append(bytes(cur))
                    cur = None
            elif done:
                idle += 1

    sim.add_testbench(writer)
    sim.add_testbench(reader)
    sim.run()
    return got, stats


def frames(rng, n, maxlen):
    return [bytes(rng.randrange(256) for _ in range(rng.randrange(1, maxlen))) for _ in range(n)]


@pytest.mark.parametrize("depth", [256, 4096])  # 4096: memory split in bit lanes
@pytest.mark.parametrize("domains", [("sync", "sync"), ("sync", "rd")])
def test_commit_and_drop(domains, depth):
    rng = random.Random(1)
    ops = [(f, rng.choice(["commit", "commit", "drop", "abort"])) for f in frames(rng, 60, 40)]
    got, stats = run(depth, ops, read_ready=0.7, domains=domains)
    want = [f for f, a in ops if a == "commit"]
    assert got == want
    assert stats["committed"] == len(want)
    assert stats["overflow"] == 0
    assert stats["stalled"] == 0


def test_full_drops_whole_frames_and_counts():
    """The reader never reads: frames that do not fit are dropped whole and
    counted, the writer is never stalled, earlier frames survive."""
    rng = random.Random(2)
    ops = [(f, "commit") for f in frames(rng, 30, 20)]
    depth = 64
    got, stats = run(depth, ops, read_ready=0.0)
    # Model: a frame is kept if it fits in what is left of depth - 1 entries
    # (full is reported one entry early); the reader's one-entry prefetch
    # register holds one more byte than the memory.
    used, kept, lost = 0, [], 0
    for f, _ in ops:
        if used + len(f) <= depth - 1 + (1 if kept else 0):
            used += len(f)
            kept.append(f)
        else:
            lost += 1
    assert stats["stalled"] == 0
    assert stats["overflow"] == lost
    assert stats["committed"] == len(kept)
    assert got == []  # never read


@pytest.mark.parametrize("domains", [("sync", "sync"), ("sync", "rd")])
def test_capacity_is_depth_minus_one(domains):
    """Full is reported one entry early (a registered look-ahead, for timing):
    depth - 1 bytes fit an empty FIFO, depth bytes never do; once the reader's
    prefetch has taken a byte, exactly one more byte fits."""
    depth = 32
    got, stats = run(depth, [(bytes(range(depth - 1)), "commit")], read_ready=0.0, domains=domains)
    assert (stats["committed"], stats["overflow"]) == (1, 0)
    got, stats = run(depth, [(bytes(range(depth)), "commit"), (b"z", "commit")], domains=domains)
    assert (stats["committed"], stats["overflow"]) == (1, 1)
    assert got == [b"z"]
    # gap: let the prefetch and the read pointer's crossing settle between frames.
    ops = [(bytes(range(depth - 1)), "commit"), (b"a", "commit"), (b"b", "commit")]
    got, stats = run(depth, ops, read_ready=0.0, domains=domains, gap=24)
    assert (stats["committed"], stats["overflow"]) == (2, 1)


def test_oversize_frame_never_fits():
    big = bytes(range(40)) * 2
    ops = [(b"abc", "commit"), (big, "commit"), (b"xyz", "commit")]
    got, stats = run(64, ops)
    assert got == [b"abc", b"xyz"]
    assert stats["overflow"] == 1


@pytest.mark.parametrize("depth", [15, 100, 0, "64"])
def test_depth_checked(depth):
    with pytest.raises(ValueError, match=f"depth must be a power of two >= 16, not {depth!r}"):
        PacketFIFO(8, depth)


@pytest.mark.parametrize("domains", [("sync", "sync"), ("sync", "rd")])
def test_full_with_slow_reader_wraps_without_corruption(domains):
    """A small FIFO, a slow reader, pointers wrapping many times: every frame
    is either delivered intact, in order, or counted as an overflow."""
    rng = random.Random(3)
    ops = [(f, "commit") for f in frames(rng, 150, 14)]
    got, stats = run(16, ops, read_ready=0.3, seed=4, domains=domains)
    assert stats["stalled"] == 0
    assert stats["committed"] == len(got)
    assert stats["committed"] + stats["overflow"] == len(ops)
    assert stats["overflow"] > 0  # the case must actually fill the FIFO
    it = iter(f for f, _ in ops)
    assert all(any(g == f for f in it) for g in got), "delivered frames are not an ordered subset"
    assert sum(map(len, got)) > 2 * 2 * 16  # and wrap the pointers
