"""Sharing the flow table's lookup and counter ports between the forwarders
of several network ports.

The flow table takes a lookup every clock and answers two clocks later, in
order (``result.ready`` is ignored), and a counter update every clock.  Each
forwarder issues at most one lookup and one update per frame (at least 64
clocks at 8 bits), so a fixed-priority grant per clock is enough; the grant
rides along a delay line so each result goes back to the forwarder that
asked.
"""

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from twinplane.model.flowtable import FlowGeometry

__all__ = ["LookupSharer", "PriorityMerger"]

_RESULT_LATENCY = 2


def _lookup_sig(g: FlowGeometry):
    return stream.Signature(data.StructLayout({"key": g.key_width}))


def _result_sig(g: FlowGeometry):
    return stream.Signature(
        data.StructLayout({"key": g.key_width, "hit": 1, "handle": g.handle_bits, "action": g.action_width})
    )


class LookupSharer(wiring.Component):
    def __init__(self, geometry: FlowGeometry, clients: int):
        if not isinstance(clients, int) or clients < 1:
            raise ValueError(f"clients must be a positive integer, not {clients!r}")
        self._clients = clients
        super().__init__(
            {
                "lookups": In(_lookup_sig(geometry)).array(clients),
                "results": Out(_result_sig(geometry)).array(clients),
                "table_lookup": Out(_lookup_sig(geometry)),
                "table_result": In(_result_sig(geometry)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        n = self._clients
        grant = Signal(range(max(n, 2)))
        granted = Signal()
        for i in reversed(range(n)):
            with m.If(self.lookups[i].valid):
                m.d.comb += [grant.eq(i), granted.eq(1)]
        for i in range(n):
            with m.If(grant == i):
                m.d.comb += [
                    self.table_lookup.payload.eq(self.lookups[i].payload),
                    self.lookups[i].ready.eq(1),
                ]
        m.d.comb += self.table_lookup.valid.eq(granted)

        # Who asked, delayed like the table's answer.
        owner = [Signal(range(max(n, 2)), name=f"owner{k}") for k in range(_RESULT_LATENCY)]
        asked = [Signal(name=f"asked{k}") for k in range(_RESULT_LATENCY)]
        m.d.sync += [owner[0].eq(grant), asked[0].eq(granted)]
        for k in range(1, _RESULT_LATENCY):
            m.d.sync += [owner[k].eq(owner[k - 1]), asked[k].eq(asked[k - 1])]

        # Results are held per client until taken (the forwarder may be a clock late).
        for i in range(n):
            held = Signal.like(self.table_result.payload, name=f"held{i}")
            full = Signal(name=f"full{i}")
            with m.If(self.table_result.valid & asked[-1] & (owner[-1] == i)):
                m.d.sync += [held.eq(self.table_result.payload), full.eq(1)]
            with m.Elif(self.results[i].ready):
                m.d.sync += full.eq(0)
            m.d.comb += [self.results[i].valid.eq(full), self.results[i].payload.eq(held)]
        return m


class PriorityMerger(wiring.Component):
    """Several streams of one payload shape into one, a transfer at a time,
    the lowest-numbered valid input first (counter updates, TCP events)."""

    def __init__(self, shape, clients: int):
        if not isinstance(clients, int) or clients < 1:
            raise ValueError(f"clients must be a positive integer, not {clients!r}")
        self._clients = clients
        super().__init__(
            {
                "sinks": In(stream.Signature(shape)).array(clients),
                "source": Out(stream.Signature(shape)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        n = self._clients
        for i in reversed(range(n)):
            with m.If(self.sinks[i].valid):
                m.d.comb += [self.source.valid.eq(1), self.source.payload.eq(self.sinks[i].payload)]
                for j in range(n):
                    m.d.comb += self.sinks[j].ready.eq((j == i) & self.source.ready)
        return m
