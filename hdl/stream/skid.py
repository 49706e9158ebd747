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
        # ``~spare_valid`` in a flop of its own: the spare's enable.
        spare_free = Signal(init=1)
        spare_valid_next = Signal()
        m.d.comb += self.sink.ready.eq(~spare_valid)
        # The spare takes the offered payload every clock it is empty, kept
        # or not (``spare_valid`` says whether it was): its enable is a flop.
        # Loaded only when the beat must wait, its enable was the consumer's
        # ready and the producer's valid, a LUT net across blocks of fanout
        # 9 (the rewriters' and an egress register's, 7.6-7.9 ns, b4d3dc3).
        # Enabled by ``spare_valid`` itself, the spare's hold mux was the
        # output register's spare-or-input mux, merged: no enable, and a
        # level more into both (the rewriter's byte mux, 5 levels).
        with m.If(spare_free):
            m.d.sync += spare.eq(self.sink.payload)
        m.d.comb += spare_valid_next.eq(spare_valid)
        with m.If(~self.source.valid | self.source.ready):
            # The output register is free (or freed) this clock.
            with m.If(spare_valid):
                m.d.sync += [self.source.payload.eq(spare), self.source.valid.eq(1)]
                m.d.comb += spare_valid_next.eq(0)
            with m.Else():
                m.d.sync += [self.source.payload.eq(self.sink.payload), self.source.valid.eq(self.sink.valid)]
        with m.Elif(self.sink.valid & ~spare_valid):
            m.d.comb += spare_valid_next.eq(1)
        m.d.sync += [spare_valid.eq(spare_valid_next), spare_free.eq(~spare_valid_next)]
        return m
