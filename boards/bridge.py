"""Interim core until the DFS top exists: a two-port L2 bridge (every frame
received on port 0 is sent on port 1 and back), or a loopback on a one-port
board.  It honours the board contract of :mod:`.core`, so a board build
measures the real MAC, clocking and FIFOs.

# Ref: IEEE 802.1D §8 (a bridge forwards frames; this one does not learn or filter)

Each direction goes through a :class:`PacketFIFO` (store and forward, never
stalls the receiver; a frame that does not fit is dropped and counted), so a
busy transmitter on one side does not hold the other side's receive FIFO,
with a :class:`~twinplane.hdl.stream.register.PipelineRegister` on each side (timing: block RAM outputs feed
the next block's logic through a flop, not straight from the RAM).
Counters (core domain): 2*i = frames forwarded from port i, 2*i+1 = frames
dropped on the way (FIFO full).
"""

from amaranth import Module, Signal
from amaranth.lib import wiring

from ..hdl.packet import packet_signature
from ..hdl.stream.packet_fifo import PacketFIFO
from ..hdl.stream.register import PipelineRegister
from .core import core_signature

__all__ = ["L2Bridge"]


class L2Bridge(wiring.Component):
    """``L2Bridge(n_ports=2, fifo_depth=2048, flow_entries=0)`` (``flow_entries`` is accepted and ignored).

    2048 entries hold one 1514-byte frame and are one ECP5 block RAM (2048x9),
    whose read data needs no address mux (timing)."""

    flow_entries = 0

    def __init__(self, n_ports: int = 2, fifo_depth: int = 2048, flow_entries: int = 0):
        if n_ports not in (1, 2):
            raise ValueError(f"the bridge has 1 or 2 ports, not {n_ports!r}")
        self._n = n_ports
        self._depth = fifo_depth
        self.name = "bridge" if n_ports == 2 else "loopback"
        super().__init__(core_signature(n_ports))

    def elaborate(self, platform):
        m = Module()
        for i in range(self._n):
            out = (i + 1) % self._n
            fifo = PacketFIFO(8, self._depth)
            m.submodules[f"fifo{i}"] = fifo
            rx, tx = getattr(self, f"rx{i}"), getattr(self, f"tx{out}")
            # A register between the MAC's FIFO (block RAM out) and this FIFO's pointer logic.
            m.submodules[f"in_reg{i}"] = in_reg = PipelineRegister(packet_signature(8))
            wiring.connect(m, port=wiring.flipped(rx), reg=in_reg.sink)
            m.d.comb += [
                fifo.sink.valid.eq(in_reg.source.valid),
                fifo.sink.payload.eq(in_reg.source.payload),
                fifo.commit.eq(in_reg.source.payload.last),
                in_reg.source.ready.eq(fifo.sink.ready),
            ]
            # Two registers after the FIFO's block RAM (5.8 ns clock-to-out):
            # the first has no other load, so the placer keeps it next to
            # the RAM; the second feeds the MAC's CRC logic.
            m.submodules[f"reg{i}"] = reg = PipelineRegister(packet_signature(8))
            m.submodules[f"out_reg{i}"] = out_reg = PipelineRegister(packet_signature(8))
            wiring.connect(m, fifo=fifo.source, reg=reg.sink)
            wiring.connect(m, reg=reg.source, out_reg=out_reg.sink)
            wiring.connect(m, out_reg=out_reg.source, port=wiring.flipped(tx))
            fwd, drop = Signal(32), Signal(32)
            with m.If(fifo.committed):
                m.d.sync += fwd.eq(fwd + 1)
            with m.If(fifo.overflow):
                m.d.sync += drop.eq(drop + 1)
            m.d.comb += [self.counters[2 * i].eq(fwd), self.counters[2 * i + 1].eq(drop)]
        return m
