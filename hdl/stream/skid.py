# Ref: amaranth.lib.stream (valid holds with a stable payload until ready).
"""A two-register skid buffer: both directions of a stream from flops.

``source.valid``/``payload`` come from a register, and so does
``sink.ready`` (it is "the spare register is empty"), so neither the
producer's logic nor the consumer's ``ready`` reaches across it.  Full
throughput: with the consumer ready every clock a beat passes every clock
through the output register and the spare is never used; when the consumer
stalls, the beat offered in that clock waits in the spare.  One clock of
latency.
"""

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """``SkidBuffer(signature)``: ``sink`` -> output register (+ spare) -> ``source``."""

    def __init__(self, signature):
        if not isinstance(signature, stream.Signature):
            raise TypeError(f"signature must be a stream.Signature, not {signature!r}")
        self._payload_shape = signature.members["payload"].shape
        super().__init__({"sink": In(signature), "source": Out(signature)})

    def elaborate(self, platform):
        m = Module()
        spare = Signal(self._payload_shape)
        spare_valid = Signal()
        m.d.comb += self.sink.ready.eq(~spare_valid)
        with m.If(~self.source.valid | self.source.ready):
            # The output register is free (or freed) this clock.
            with m.If(spare_valid):
                m.d.sync += [self.source.payload.eq(spare), self.source.valid.eq(1), spare_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.source.payload.eq(self.sink.payload), self.source.valid.eq(self.sink.valid)]
        with m.Elif(self.sink.valid & ~spare_valid):
            m.d.sync += [spare.eq(self.sink.payload), spare_valid.eq(1)]
        return m
