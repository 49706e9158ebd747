"""Sharing the flow table's lookup and counter ports between the forwarders
of several network ports.

The flow table takes a lookup every ``tables`` clocks (its ``ready``) and
answers a fixed number of clocks later, in order (``result.ready`` is
ignored), and a counter update every clock.  Each forwarder issues at most
one lookup and one update per frame (at least 64 clocks at 8 bits), so
taking turns, a clock each, is enough: whose turn it is is a register, so a
client's ``ready`` never depends on another client's ``valid`` (with a
priority grant one forwarder's FSM reached the other's through it, 6
levels in the whole DFS).  A client waits at most ``clients - 1`` clocks for
its turn.  The granted lookup reaches the table from a register, which
holds it until the table takes it and takes the next only once empty, so a
client's ``ready`` comes from registers alone.  Who asked goes into a small
FIFO that each answer pops: answers come in order, so this holds whatever
the table's latency is.
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from twinplane.model.flowtable import FlowGeometry

__all__ = ["LookupSharer", "TurnMerger"]

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
        grant = _turn(m, n)
        granted = Signal()
        for i in range(n):
            with m.If(grant == i):
                m.d.comb += granted.eq(self.lookups[i].valid)
        # The granted lookup goes to the table from a register: the table
        # hashes it in its first clock, which leaves no room for the clients'
        # FSM decode and this mux in front.  The register takes a new one
        # only when empty, not in the clock it is being emptied: the clients'
        # ``ready`` is then a flop, not the table's ``ready`` through this
        # logic into the forwarders' state (5 levels, fanout 213, in the
        # DFS).  The table is busy for ``tables`` (>= 2) clocks after each
        # take anyway.
        free = ~self.table_lookup.valid
        owner = Signal.like(grant)  # whose lookup is in the register
        with m.If(free):
            m.d.sync += [self.table_lookup.valid.eq(granted), owner.eq(grant)]
        with m.Elif(self.table_lookup.ready):
            m.d.sync += self.table_lookup.valid.eq(0)
        for i in range(n):
            with m.If(grant == i):
                m.d.comb += self.lookups[i].ready.eq(free)
                with m.If(free):
                    m.d.sync += self.table_lookup.payload.eq(self.lookups[i].payload)

        # Who asked, in order; each answer pops one.  Pushed as the table
        # takes the lookup from the register (two flops), not as the register
        # takes it: the clients' valid behind the grant ran on into the
        # FIFO's level (forwarder state -> owners' r_level, 7 levels).
        # Buffered: the head owner is read from a register, not from the
        # FIFO's LUT RAM, since it decides the enable of every held result
        # (fan-out 191: RAM read, compare and net were 8.43 ns).  The answer
        # comes many clocks after the push, so the extra clock is free.
        m.submodules.owners = owners = fifo.SyncFIFOBuffered(width=len(grant), depth=8)
        m.d.comb += [
            owners.w_en.eq(self.table_lookup.valid & self.table_lookup.ready),
            owners.w_data.eq(owner),
            owners.r_en.eq(self.table_result.valid),
        ]

        # Results are held per client until taken (the forwarder reads its own
        # in place until its frame is done: no copy of its own).
        for i in range(n):
            held = Signal.like(self.table_result.payload, name=f"held{i}")
            full = Signal(name=f"full{i}")
            with m.If(self.table_result.valid & (owners.r_data == i)):
                m.d.sync += [held.eq(self.table_result.payload), full.eq(1)]
            with m.Elif(self.results[i].ready):
                m.d.sync += full.eq(0)
            m.d.comb += [self.results[i].valid.eq(full), self.results[i].payload.eq(held)]
        return m


def _turn(m, n: int, hold=None) -> Signal:
    """A register counting 0 .. ``n - 1`` round, a step a clock (not while ``hold``)."""
    turn = Signal(range(max(n, 2)))
    if n > 1:
        step = Mux(turn == n - 1, 0, turn + 1)
        if hold is None:
            m.d.sync += turn.eq(step)
        else:
            with m.If(~hold):
                m.d.sync += turn.eq(step)
    return turn


class TurnMerger(wiring.Component):
    """Several streams of one payload shape into one, a transfer at a time:
    the inputs take turns, a clock each (counter updates, TCP events).

    Whose turn it is is a register, so an input's ``ready`` is its turn and
    the output's ``ready``, never another input's ``valid``; the turn stays
    while the output offers a transfer it has not taken (a stream's
    ``valid`` holds).  An input waits at most ``clients - 1`` clocks."""

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
        turn = _turn(m, n, hold=self.source.valid & ~self.source.ready)
        for i in range(n):
            with m.If(turn == i):
                m.d.comb += [
                    self.source.valid.eq(self.sinks[i].valid),
                    self.source.payload.eq(self.sinks[i].payload),
                    self.sinks[i].ready.eq(self.source.ready),
                ]
        return m
