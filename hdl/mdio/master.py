"""MDIO management master: IEEE 802.3 clause 22 register reads and writes.

# Ref: IEEE 802.3-2018 §22.2.4.5 (frame: PRE 32x1, ST 01, OP 01 write / 10
#      read, PHYAD, REGAD, TA, DATA, MSB first), §22.3.4 (MDC >= 400 ns
#      period; the PHY samples MDIO on MDC's rising edge, and answers a read
#      after it)

Each bit takes ``2 * divisor`` clocks: MDC low for the first half (MDIO
changes at its start, well away from the PHY's sampling edge), high for the
second.  A read samples MDIO at each rising edge: the PHY drives a bit after
one rising edge and holds it over the next.  ``divisor`` = 32 at 125 MHz
gives MDC ~1.95 MHz (the limit is 2.5 MHz).
"""

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MDIOMaster", "mdio_command_layout"]

_FRAME_BITS = 64
_DRIVEN_ON_READ = 46  # preamble, ST, OP, PHYAD, REGAD: then the PHY talks


def mdio_command_layout() -> data.StructLayout:
    return data.StructLayout({"read": 1, "phy": 5, "reg": 5, "data": 16})


class MDIOMaster(wiring.Component):
    """``MDIOMaster(divisor=32)``: ``cmd`` (``read``, ``phy``, ``reg``, ``data``
    for a write) one frame per transfer; ``rsp`` carries the 16 bits of each
    read.  Pins: ``mdc``, ``mdio_o`` / ``mdio_oe`` / ``mdio_i``."""

    def __init__(self, divisor: int = 32):
        if not isinstance(divisor, int) or divisor < 2:
            raise ValueError(f"divisor must be an integer >= 2, not {divisor!r}")
        self.divisor = divisor
        super().__init__({
            "cmd": In(stream.Signature(mdio_command_layout())),
            "rsp": Out(stream.Signature(16)),
            "mdc": Out(1),
            "mdio_o": Out(1),
            "mdio_oe": Out(1),
            "mdio_i": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        frame = Signal(_FRAME_BITS)  # the bit on the wire is the top one
        bit = Signal(range(_FRAME_BITS))
        timer = Signal(range(self.divisor))
        high = Signal()  # second half of the bit: MDC high
        reading = Signal()
        got = Signal(16)
        c = self.cmd.payload

        m.d.comb += [self.mdc.eq(high), self.mdio_o.eq(frame[-1]), self.rsp.payload.eq(got)]
        with m.FSM():
            with m.State("Idle"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    # Cat is LSB first, the wire MSB first: the frame from its last bit up.
                    op = Cat(~c.read, c.read)  # "01" write, "10" read
                    ta = Const(0b10, 2)  # a write's turnaround; on a read the PHY drives it
                    m.d.sync += [
                        frame.eq(Cat(c.data, ta, c.reg, c.phy, op, Const(0b01, 2), Const(0xFFFFFFFF, 32))),
                        reading.eq(c.read), bit.eq(0), timer.eq(0), high.eq(0),
                    ]
                    m.next = "Shifting"
            with m.State("Shifting"):
                m.d.comb += self.mdio_oe.eq(~reading | (bit < _DRIVEN_ON_READ))
                m.d.sync += timer.eq(timer + 1)
                with m.If(timer == self.divisor - 1):
                    m.d.sync += [timer.eq(0), high.eq(~high)]
                    with m.If(~high):  # rising edge: the PHY samples ours, we sample its
                        m.d.sync += got.eq(Cat(self.mdio_i, got[:-1]))
                    with m.Else():  # falling edge: next bit
                        m.d.sync += [frame.eq(frame << 1), bit.eq(bit + 1)]
                        with m.If((bit == _FRAME_BITS - 1) & reading):
                            m.next = "Answering"
                        with m.Elif(bit == _FRAME_BITS - 1):
                            m.next = "Idle"
            with m.State("Answering"):
                m.d.comb += self.rsp.valid.eq(1)
                with m.If(self.rsp.ready):
                    m.next = "Idle"
        return m
