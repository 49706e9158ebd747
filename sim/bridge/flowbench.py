"""A design of moderate size for the simulation speed bench: the two-port
loopback plus a FlowTable doing one lookup per clock, keyed by the last bytes
seen on port 0, so the table's memories and hash logic switch every cycle."""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...hdl.flowtable import FlowTable
from ...hdl.packet import packet_signature
from .loopback import CrossLoopback

__all__ = ["FlowBench"]


class FlowBench(wiring.Component):
    def __init__(self, *, buckets: int = 1024):
        self._buckets = buckets
        super().__init__({
            "rx": In(packet_signature(8)).array(2),
            "tx": Out(packet_signature(8)).array(2),
            "hits": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.loop = loop = CrossLoopback(depth=16)
        m.submodules.table = table = FlowTable(buckets=self._buckets)
        for i in range(2):
            wiring.connect(m, wiring.flipped(self.rx[i]), loop.rx[i])
            wiring.connect(m, loop.tx[i], wiring.flipped(self.tx[i]))
        key = Signal(table.geometry.key_width)
        with m.If(self.rx[0].valid & self.rx[0].ready):
            m.d.sync += key.eq(key << 8 | self.rx[0].payload.data)
        m.d.comb += [
            table.lookup.valid.eq(1),
            table.lookup.payload.key.eq(key),
            table.result.ready.eq(1),
            table.rsp.ready.eq(1),
        ]
        with m.If(table.result.valid & table.result.payload.hit):
            m.d.sync += self.hits.eq(self.hits + 1)
        return m
