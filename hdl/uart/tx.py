"""UART transmitter: 8 data bits, no parity, one stop bit (8N1), LSB first.

# Ref: TIA-232-F (asynchronous start/stop framing); the usual 8N1 convention

``divisor`` is clock cycles per bit (125 MHz / 115200 = 1085).  Bytes come in
on ``sink`` (an 8-bit stream); ``tx`` idles high.
"""

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["UARTTx", "check_divisor"]


def check_divisor(divisor) -> int:
    if not isinstance(divisor, int) or isinstance(divisor, bool):
        raise TypeError(f"divisor must be an int, not {divisor!r}")
    if divisor < 4:
        raise ValueError(f"divisor must be >= 4 clock cycles per bit, not {divisor!r}")
    return divisor


class UARTTx(wiring.Component):
    """``UARTTx(divisor)``: ``sink`` (bytes in), ``tx`` (the pin, idle high)."""

    sink: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor: int = 1085):
        self._divisor = check_divisor(divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        # The whole frame in one shift register: start bit, data, stop bit.
        shreg = Signal(10, init=0x3FF)
        bits_left = Signal(range(11))
        timer = Signal(range(self._divisor))
        # "timer is at divisor - 1", a flop set a clock ahead: the 11-bit
        # compare stays off the shift register's load (7.74 ns routed with
        # the console's state in front, Colorlight DFS build of 1d82fb4).
        bit_end = Signal()

        m.d.comb += self.sink.ready.eq(bits_left == 0)
        with m.If(bits_left == 0):
            with m.If(self.sink.valid):
                m.d.sync += [shreg.eq(Cat(Const(0, 1), self.sink.payload, Const(1, 1))),
                             bits_left.eq(10), timer.eq(0), bit_end.eq(0)]
        with m.Else():
            # Hold each bit for ``divisor`` cycles, then shift in the next one.
            m.d.sync += self.tx.eq(shreg[0])
            with m.If(bit_end):
                m.d.sync += [timer.eq(0), bit_end.eq(0), shreg.eq(Cat(shreg[1:], Const(1, 1))),
                             bits_left.eq(bits_left - 1)]
            with m.Else():
                m.d.sync += [timer.eq(timer + 1), bit_end.eq(timer == self._divisor - 2)]
        with m.If((bits_left == 0) & ~self.sink.valid):
            m.d.sync += self.tx.eq(1)
        return m
