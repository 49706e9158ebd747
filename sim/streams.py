"""Packet-stream helpers for testbenches in Amaranth's simulator: drive a
frame into a ``packet_signature`` stream, collect frames leaving one.

# Ref: amaranth.lib.stream (valid/ready rules); hdl/packet.py (data/first/last)

One copy of what many tests wrote for themselves (as Glasgow shares
``stream_put``/``stream_get`` between its applet tests).  The driver obeys
the stream rules: valid, once raised, holds with a stable payload until the
transfer; the collector checks that ``first`` marks exactly the byte after a
``last`` (or the very first byte).
"""

__all__ = ["FrameAssembler", "frame_collector", "put_frame"]


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
