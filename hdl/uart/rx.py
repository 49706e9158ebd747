"""UART receiver: 8N1, LSB first, sampled mid-bit.

# Ref: TIA-232-F (asynchronous start/stop framing); the usual 8N1 convention

The pin goes through a two-flop synchroniser.  A falling edge starts a frame;
the start bit is checked half a bit later (a glitch shorter than that is
ignored), then each bit is sampled one ``divisor`` apart, i.e. mid-bit.  A
byte whose stop bit is low is dropped and counted in ``framing_error``
(a one-cycle strobe).  ``source`` holds a byte until it is taken; a byte that
arrives while the previous one is still waiting replaces nothing and strobes
``overrun``.
"""

from amaranth import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from .tx import check_divisor

__all__ = ["UARTRx"]


class UARTRx(wiring.Component):
    """``UARTRx(divisor)``: ``rx`` (the pin), ``source`` (bytes out)."""

    rx: In(1, init=1)
    source: Out(stream.Signature(8))
    framing_error: Out(1)
    overrun: Out(1)

    def __init__(self, divisor: int = 1085):
        self._divisor = check_divisor(divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(self._divisor))
        shreg = Signal(8)
        bit = Signal(range(9))

        with m.If(self.source.ready):
            m.d.sync += self.source.valid.eq(0)
        m.d.sync += [self.framing_error.eq(0), self.overrun.eq(0)]

        with m.FSM():
            with m.State("Waiting for a start bit"):
                with m.If(~rx):
                    m.d.sync += timer.eq(self._divisor // 2 - 1)
                    m.next = "Checking the start bit"
            with m.State("Checking the start bit"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.next = "Waiting for a start bit"  # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [timer.eq(self._divisor - 1), bit.eq(0)]
                        m.next = "Sampling data bits"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("Sampling data bits"):
                with m.If(timer == 0):
                    m.d.sync += [shreg.eq(Cat(shreg[1:], rx)), bit.eq(bit + 1), timer.eq(self._divisor - 1)]
                    with m.If(bit == 7):
                        m.next = "Sampling the stop bit"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("Sampling the stop bit"):
                # The byte loads only into an empty ``source`` (``valid``, a
                # flop), so the consumer's ready is not in the payload's
                # enable (it was, through the console's FSM, 8.5 ns routed).
                # A byte taken this very clock empties it for the next clock:
                # the stop bit is sampled again then, half a bit from its end.
                with m.If(timer == 0):
                    with m.If(~rx):
                        m.d.sync += self.framing_error.eq(1)
                        m.next = "Waiting for a start bit"
                    with m.Elif(~self.source.valid):
                        m.d.sync += [self.source.payload.eq(shreg), self.source.valid.eq(1)]
                        m.next = "Waiting for a start bit"  # mid-stop-bit, so the next start edge is not missed
                    with m.Elif(~self.source.ready):
                        m.d.sync += self.overrun.eq(1)
                        m.next = "Waiting for a start bit"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
        return m
