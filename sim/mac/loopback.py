"""A MAC with its receive stream looped into its transmit stream, for the
frame-size sweep (sim/mac/sweep_tb.py).

# Ref: IEEE 802.3-2018 §3.2 (frame format), §4.2.3.2.1 (inter-frame gap)

Why a loopback: a testbench that reads ``source`` and drives ``sink`` from
Python wakes up every clock, which makes every size 64..1518 (1.2 M clocks)
take many minutes under Icarus.  Looped in gateware, the only Python left
per clock is cocotbext-eth's source and sink on the wire, and every frame
crosses both the receiver and the transmitter: what leaves TX must be what
entered RX, byte for byte, with a fresh preamble and FCS.
"""

from amaranth import Module
from amaranth.lib import wiring

__all__ = ["MacWireLoopback"]

_STREAMS = ("source", "sink")


class MacWireLoopback(wiring.Component):
    """``MacWireLoopback(mac)``: ``mac`` (a GMIIMac or an RGMIIMac in mode
    ``"sim"``) with ``mac.source`` connected to ``mac.sink``; every other
    member of the MAC (wire pins, counters) is a member of this component,
    under the same name.  The MAC's clock domains stay as they are, so the
    Verilog has the same clock and reset ports as the MAC alone."""

    def __init__(self, mac):
        if not isinstance(mac, wiring.Component) or not all(s in mac.signature.members for s in _STREAMS):
            raise TypeError(f"mac must be a component with source and sink streams, not {mac!r}")
        self._mac = mac
        super().__init__({n: m for n, m in mac.signature.members.items() if n not in _STREAMS})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mac = mac = self._mac
        wiring.connect(m, mac.source, mac.sink)
        for name, member in self.signature.members.items():
            inner, outer = getattr(mac, name), getattr(self, name)
            m.d.comb += outer.eq(inner) if member.flow == wiring.Out else inner.eq(outer)
        return m
