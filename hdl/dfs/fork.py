"""Stream helpers of the DFS top: a fork that gives every transfer to two
consumers at once, and a frame demultiplexer steered per frame."""

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..packet import packet_signature

__all__ = ["FrameDemux", "StreamFork"]


class StreamFork(wiring.Component):
    """``sink`` to ``a`` and ``b``: a transfer happens when both can take it
    (both see the same payload in the same clock)."""

    def __init__(self, shape):
        super().__init__({"sink": In(stream.Signature(shape)), "a": Out(stream.Signature(shape)),
                          "b": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [
            self.a.payload.eq(self.sink.payload),
            self.b.payload.eq(self.sink.payload),
            self.a.valid.eq(self.sink.valid & self.b.ready),
            self.b.valid.eq(self.sink.valid & self.a.ready),
            self.sink.ready.eq(self.a.ready & self.b.ready),
        ]
        return m


class FrameDemux(wiring.Component):
    """Each frame of ``sink`` goes to ``sources[select]``; ``select`` is a
    stream with one value per frame, taken with the frame's last byte."""

    def __init__(self, outputs: int):
        if not isinstance(outputs, int) or outputs < 1:
            raise ValueError(f"outputs must be a positive integer, not {outputs!r}")
        self._outputs = outputs
        super().__init__(
            {
                "sink": In(packet_signature(8)),
                "select": In(stream.Signature(range(max(outputs, 2)))),
                "sources": Out(packet_signature(8)).array(outputs),
            }
        )

    def elaborate(self, platform):
        m = Module()
        ready = Signal()
        for i in range(self._outputs):
            with m.If(self.select.payload == i):
                m.d.comb += [
                    self.sources[i].valid.eq(self.sink.valid & self.select.valid),
                    self.sources[i].payload.eq(self.sink.payload),
                    ready.eq(self.sources[i].ready),
                ]
        m.d.comb += self.sink.ready.eq(ready & self.select.valid)
        m.d.comb += self.select.ready.eq(self.sink.valid & self.sink.ready & self.sink.payload.last)
        return m
