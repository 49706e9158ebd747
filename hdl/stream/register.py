# Ref: amaranth.lib.stream (valid holds with a stable payload until ready).
"""One-register stream boundaries.

``PipelineRegister``: ``valid``/``payload`` through a register at full rate,
``ready`` straight through.  Its payload register loads the producer's
payload with nothing but the flop's clock enable in front, so a producer whose
data comes late in the clock (a block RAM read without its output register,
5.8 ns on a speed-6 ECP5) lands in a flop with no logic in between.

``StreamRegister``: both directions from flops at half rate.

``source.valid``/``payload`` are a register, and ``sink.ready`` is "that
register is empty", so neither side's logic reaches across it, as with
:class:`~twinplane.hdl.stream.skid.SkidBuffer`, with one payload register
instead of two.  The price is throughput: a beat every other clock at most
(the register empties in one clock and takes the next beat in the
following one).  For the DFS's control streams between blocks (a CAM
write, a flow's message, a miss-path answer), which carry a beat every
few dozen clocks at most, and whose payloads are hundreds of bits wide.
"""

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["PipelineRegister", "StreamRegister"]


class _OneRegister(wiring.Component):
    def __init__(self, signature):
        if not isinstance(signature, stream.Signature):
            raise TypeError(f"signature must be a stream.Signature, not {signature!r}")
        super().__init__({"sink": In(signature), "source": Out(signature)})


class PipelineRegister(_OneRegister):
    """``PipelineRegister(signature)``: ``sink`` -> one register -> ``source``, a beat a clock."""

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.sink.ready.eq(~self.source.valid | self.source.ready)
        with m.If(self.sink.ready):
            m.d.sync += [self.source.valid.eq(self.sink.valid), self.source.payload.eq(self.sink.payload)]
        return m


class StreamRegister(_OneRegister):
    """``StreamRegister(signature)``: ``sink`` -> one register -> ``source``, at most a beat every two clocks."""

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.sink.ready.eq(~self.source.valid)
        with m.If(self.source.valid):
            with m.If(self.source.ready):
                m.d.sync += self.source.valid.eq(0)
        with m.Elif(self.sink.valid):
            m.d.sync += [self.source.valid.eq(1), self.source.payload.eq(self.sink.payload)]
        return m
