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
For those, ``copies=k`` splits the payload register into ``k`` groups, each
loaded under its own copy of the "full" flop: the load enable of one wide
register is a net of fanout its width from a LUT, which crosses the die
(the message to the flow controller: 559 clock enables, late on the 25F).
"""

from amaranth import Module, Mux, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..onehot import flop_copy

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
    """``StreamRegister(signature, *, copies=1)``: ``sink`` -> one register ->
    ``source``, at most a beat every two clocks; ``copies``: the payload's
    load enable made from that many copies of the "full" flop."""

    def __init__(self, signature, *, copies: int = 1):
        super().__init__(signature)
        width = Value.cast(self.sink.payload).shape().width
        if not 1 <= copies <= max(1, width):
            raise ValueError(f"copies must be between 1 and the payload's width ({width}), not {copies}")
        self._copies = copies

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.sink.ready.eq(~self.source.valid)
        valid_next = Mux(self.source.valid, ~self.source.ready, self.sink.valid)
        m.d.sync += self.source.valid.eq(valid_next)
        sink, source = Value.cast(self.sink.payload), Value.cast(self.source.payload)
        k = self._copies
        bounds = [len(sink) * i // k for i in range(k + 1)]
        for i in range(k):
            full = self.source.valid if k == 1 else flop_copy(m, valid_next, name=f"full{i}")
            with m.If(~full & self.sink.valid):
                m.d.sync += source[bounds[i]:bounds[i + 1]].eq(sink[bounds[i]:bounds[i + 1]])
        return m
