"""Frame arbiter: several packet streams into one, a whole frame at a time,
the lowest-numbered ready input first.

The DFS puts its fast path on input 0, so established flows keep the egress
port whatever the miss path, the message port or ARP have to send: a frame
of a lower priority input waits for the gap after the current frame, never
for more than that.  (A starvation-free scheme is not needed here: the other
inputs are bounded by the miss path and message rates.)  With
``round_robin`` the input after the last one served goes first instead, for
inputs that share a link as equals (the VLANs of a one-port board).

With ``registered_choice`` the choice is made in a clock of its own between
frames (nothing passes in it) and held in a register: every input's
``ready`` is then its grant and the output's ``ready``, never another
input's ``valid``, so the blocks in front of the inputs (the DFS's per-port
demultiplexers) do not reach one another through the arbiter.  The price is
that clock: one per frame, within the gap a MAC leaves between frames.
"""

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..onehot import onehot_mux
from ..packet import packet_signature

__all__ = ["FrameArbiter"]


class FrameArbiter(wiring.Component):
    def __init__(self, inputs: int, data_width: int = 8, *, round_robin: bool = False,
                 registered_choice: bool = False):
        if not isinstance(inputs, int) or inputs < 1:
            raise ValueError(f"inputs must be a positive integer, not {inputs!r}")
        self._inputs = inputs
        self._round_robin = bool(round_robin)
        self._registered = bool(registered_choice)
        super().__init__(
            {
                "sinks": In(packet_signature(data_width)).array(inputs),
                "source": Out(packet_signature(data_width)),
                "grant": Out(range(max(inputs, 2))),  # the input the current transfer comes from
            }
        )

    def elaborate(self, platform):
        m = Module()
        n = self._inputs
        grant = Signal(range(max(n, 2)))
        locked = Signal()  # inside a frame of input `grant`

        choice = Signal.like(grant)
        if self._round_robin:
            # Priority order grant+1, grant+2, ..., grant: one case per grant.
            with m.Switch(grant):
                for g in range(n):
                    with m.Case(g):
                        for k in reversed(range(1, n + 1)):
                            i = (g + k) % n
                            with m.If(self.sinks[i].valid):
                                m.d.comb += choice.eq(i)
        else:
            for i in reversed(range(n)):
                with m.If(self.sinks[i].valid):
                    m.d.comb += choice.eq(i)
        if self._registered:
            # Not locked: choose among the valid inputs into ``grant``, lock.
            # Locked: pass input ``grant`` until its last byte.  The grant is
            # kept one-hot too, so the output is an AND-OR of flops and the
            # inputs (a decode of the binary grant in front of the select
            # made the egress's valid 3-4 levels into the next block's skid
            # buffer, 8.11 ns).
            grant_1h = Signal(n)
            with m.If(~locked):
                m.d.sync += [grant.eq(choice), grant_1h.eq(Cat(choice == i for i in range(n))),
                             locked.eq(Cat(s.valid for s in self.sinks).any())]
            m.d.comb += [
                self.grant.eq(grant),
                self.source.valid.eq(locked & Cat(grant_1h[i] & s.valid for i, s in enumerate(self.sinks)).any()),
                self.source.payload.eq(onehot_mux(grant_1h, [s.payload.as_value() for s in self.sinks])),
            ]
            for i in range(n):
                m.d.comb += self.sinks[i].ready.eq(self.source.ready & locked & grant_1h[i])
            with m.If(self.source.valid & self.source.ready & self.source.payload.last):
                m.d.sync += locked.eq(0)
            return m

        current = Signal.like(grant)
        m.d.comb += current.eq(grant)
        with m.If(~locked):
            m.d.comb += current.eq(choice)
        m.d.comb += self.grant.eq(current)

        for i in range(n):
            with m.If(current == i):
                m.d.comb += [
                    self.source.valid.eq(self.sinks[i].valid),
                    self.source.payload.eq(self.sinks[i].payload),
                    self.sinks[i].ready.eq(self.source.ready),
                ]
        with m.If(self.source.valid & self.source.ready):
            m.d.sync += [grant.eq(current), locked.eq(~self.source.payload.last)]
        return m
