"""A trivial two-port device for bridge tests: port 0 rx goes to port 1 tx
and port 1 rx to port 0 tx, each through a small FIFO.

Ports have the shape the DFS top uses: ``rx`` (In) and ``tx`` (Out) arrays of
``packet_signature(8)`` streams, index 0 = external, 1 = internal; flattened
names are ``rx__0__payload``, ``tx__1__valid``, ...  Frames pass unchanged, so
a test can compare what leaves with what went in.
"""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ...hdl.packet import packet_layout, packet_signature

__all__ = ["CrossLoopback"]


class CrossLoopback(wiring.Component):
    def __init__(self, *, depth: int = 16, ports: int = 2):
        if not isinstance(depth, int) or depth < 2:
            raise ValueError(f"depth must be an integer >= 2, not {depth!r}")
        if ports != 2:
            raise ValueError(f"ports must be 2, not {ports!r}")
        self._depth = depth
        super().__init__({
            "rx": In(packet_signature(8)).array(ports),
            "tx": Out(packet_signature(8)).array(ports),
        })

    def elaborate(self, platform):
        m = Module()
        width = packet_layout(8).size
        for i, o in ((0, 1), (1, 0)):
            fifo = m.submodules[f"fifo{i}to{o}"] = SyncFIFOBuffered(width=width, depth=self._depth)
            m.d.comb += [
                fifo.w_data.eq(self.rx[i].payload),
                fifo.w_en.eq(self.rx[i].valid),
                self.rx[i].ready.eq(fifo.w_rdy),
                self.tx[o].payload.eq(fifo.r_data),
                self.tx[o].valid.eq(fifo.r_rdy),
                fifo.r_en.eq(self.tx[o].ready),
            ]
        return m
