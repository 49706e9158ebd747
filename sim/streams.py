"""Packet-stream helpers for testbenches in Amaranth's simulator: drive a
frame into a ``packet_signature`` stream, collect frames leaving one.

# Ref: amaranth.lib.stream (valid/ready rules); hdl/packet.py (data/first/last)

One copy of what many tests wrote for themselves (as Glasgow shares
``stream_put``/``stream_get`` between its applet tests).  The driver obeys
the stream rules: valid, once raised, holds with a stable payload until the
transfer; the collector checks that ``first`` marks exactly the byte after a
``last`` (or the very first byte).
"""

__all__ = ["FrameAssembler", "frame_collector", "put_frame", "random_handshakes"]


async def put_frame(ctx, stream, frame: bytes) -> None:
    """Send ``frame`` on ``stream`` (a testbench: ``sim.add_testbench``), one
    byte per transfer, waiting for ``ready``; valid is low when it returns."""
    for i, byte in enumerate(frame):
        ctx.set(stream.valid, 1)
        ctx.set(stream.payload, {"data": byte, "first": i == 0, "last": i == len(frame) - 1})
        await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


class FrameAssembler:
    """Frames from transfers: ``feed(payload)`` once per transfer; complete
    frames (bytes) collect in ``frames``."""

    def __init__(self, frames: list | None = None):
        self.frames = [] if frames is None else frames
        self._current = bytearray()

    def feed(self, payload) -> None:
        assert bool(payload.first) == (not self._current), "first flag does not start the frame"
        self._current.append(payload.data)
        if payload.last:
            self.frames.append(bytes(self._current))
            self._current = bytearray()


def frame_collector(stream, frames: list):
    """A process (for ``sim.add_process``) that appends every frame leaving
    ``stream`` to ``frames``, forever; a byte counts when valid and ready are
    both high at a clock edge."""

    async def collect(ctx):
        assembler = FrameAssembler(frames)
        async for _, _, valid, ready, payload in ctx.tick().sample(stream.valid, stream.ready, stream.payload):
            if valid and ready:
                assembler.feed(payload)

    return collect


def random_handshakes(dut, seed: int, p_valid: float, p_ready: float, n: int, *,
                      ready_registered: bool = True) -> int:
    """Run ``dut`` (a component with a ``sink`` and a ``source`` of
    ``packet_layout(8)``) in Amaranth's simulator with ``n`` random beats
    offered with probability ``p_valid`` a clock and taken with ``p_ready``;
    check every beat comes out in order, none lost or doubled, that
    ``source.valid`` (and ``sink.ready`` with ``ready_registered``) does not
    follow the consumer's ready in the same clock, and that it never stalls.
    Returns the clocks it took."""
    import random

    from amaranth.sim import Simulator

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
            assert ctx.get(dut.source.valid) == valid_before
            if ready_registered:
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
