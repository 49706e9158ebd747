"""Pipeline register for a stream: cuts the combinational path from a
producer's payload (e.g. a block RAM read port, ~5.8 ns clock-to-out on
ECP5 without its output register) to the consumer's logic.

# Ref: Amaranth stream rules (amaranth.lib.stream): valid holds with a stable payload until ready

Full throughput: a new beat is taken whenever the register is empty or is
being emptied in the same cycle, so back-to-back bytes stay back to back.
``ready`` towards the producer is combinational from the consumer's
``ready`` (no skid buffer: one register, one cycle of latency).
"""

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamRegister"]


class StreamRegister(wiring.Component):
    """``StreamRegister(signature)``: ``sink`` -> one register -> ``source``."""

    def __init__(self, signature):
        if not isinstance(signature, stream.Signature):
            raise TypeError(f"signature must be a stream.Signature, not {signature!r}")
        super().__init__({"sink": In(signature), "source": Out(signature)})

    def elaborate(self, platform):
        m = Module()
        take = ~self.source.valid | self.source.ready
        m.d.comb += self.sink.ready.eq(take)
        with m.If(take):
            m.d.sync += [self.source.valid.eq(self.sink.valid), self.source.payload.eq(self.sink.payload)]
        return m
