# Ref: docs/protocol.md (one SipHash-2-4 key for every tag of the port);
#      amaranth.lib.stream (valid/ready rules).
"""One SipHash-2-4 core shared by clients of the message port (the session
engine and the transmitter).

Messages leave at message rate, not line rate, and each client hashes one
message at a time (bytes in, then it waits for the tag), so one core serves
them: the arbiter grants it to a client from that client's
first byte until the client has taken the tag, then looks again.  A grant
never ends halfway through a message, so the core's key and state always
belong to one client's message.  The lowest-numbered waiting client wins.
A client must not wait on anything outside the port while it holds the core
(between its first byte and taking its tag), or the others wait with it:
that is why the receiver hashes a message only once it holds all of it.
The client's bytes pass two registers here (its own, then the core's
input) and the core's tag one, so no client's logic reaches into the core
(and the other way round).

Interface
---------
``sink{i}``    In(stream of :data:`siphash_input_layout`): client ``i``'s bytes.
``source{i}``  Out(stream of unsigned(64)): client ``i``'s tag.
``key``        In(128): passed to the core, which does not copy it: held by
               its producer (the port's configuration register).
"""

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..crypto.siphash import SipHash24, siphash_input_layout
from ..onehot import onehot_mux

__all__ = ["HashArbiter", "hash_client_signature"]


def hash_client_signature() -> wiring.Signature:
    """What a client of the shared core drives (``sink``) and takes (``source``)."""
    return wiring.Signature(
        {
            "sink": Out(stream.Signature(siphash_input_layout)),
            "source": In(stream.Signature(unsigned(64))),
        }
    )


class HashArbiter(wiring.Component):
    def __init__(self, clients: int):
        if not isinstance(clients, int) or not 1 <= clients <= 8:
            raise ValueError(f"clients must be an integer from 1 to 8, not {clients!r}")
        self._clients = clients
        super().__init__(
            {
                "key": In(128),
                **{f"client{i}": In(hash_client_signature()) for i in range(clients)},
            }
        )

    def elaborate(self, platform):
        m = Module()
        # The port's key is a configuration register (held): no copy in the core.
        m.submodules.siphash = siphash = SipHash24(key_held=True)
        m.d.comb += siphash.key.eq(self.key)

        clients = [getattr(self, f"client{i}") for i in range(self._clients)]
        # The grant, a flop per client: a client's ready and valid come
        # from flops (the owner's decode and the core's ready ran on into the
        # transmitter's FIFO enables, 7 levels).
        granted = Signal(self._clients)
        busy = granted.any()
        # Registers on each side of the core.  In front: each client's byte
        # into a register of its own (``taken{i}``, every clock; ``taken_valid``:
        # the granted client pushed), then ``stage`` (the core's input) with
        # ``spare`` behind it; behind: the core's tag into ``tag``.  The
        # selects by the grant and the spare are then a LUT or two from
        # flops: with the clients' byte logic in front of them they ran on
        # into stage and spare, 5 levels (9b18dc6 build: siphash.sink__payload
        # and spare 7.53 ns).  A client's ready is ~(taken_valid & spare_valid)
        # and the grant, flops: a byte in ``taken`` always has a place next
        # clock unless the spare is full.  Two clocks more per byte stream
        # than straight in, the throughput stays a byte a clock.
        stage, spare = Signal(siphash_input_layout), Signal(siphash_input_layout)
        stage_valid, spare_valid = Signal(), Signal()
        taken = [Signal(siphash_input_layout, name=f"taken{i}") for i in range(self._clients)]
        taken_valid = Signal()
        tag = Signal(64)
        tag_valid = Signal()
        m.d.comb += [
            siphash.sink.valid.eq(stage_valid),
            siphash.sink.payload.eq(stage),
            siphash.source.ready.eq(~tag_valid),
        ]
        with m.If(siphash.source.valid & ~tag_valid):
            m.d.sync += [tag.eq(siphash.source.payload), tag_valid.eq(1)]
        # The tag goes to every client; only the owner sees it valid.
        # taken_valid & spare_valid as a flop of its own, so that a client's
        # ready is the grant and one flop, as with one register in front
        # (two flops into the clients' logic made 6 levels).
        full = Signal()
        offered = Signal()  # the granted client's valid (it pushes unless full)
        m.d.comb += offered.eq(Cat(granted[i] & client.sink.valid for i, client in enumerate(clients)).any())
        for i, client in enumerate(clients):
            m.d.comb += [
                client.source.payload.eq(tag),
                client.sink.ready.eq(granted[i] & ~full),
                client.source.valid.eq(granted[i] & tag_valid),
            ]
            with m.If(granted[i]):
                with m.If(tag_valid & client.source.ready):
                    m.d.sync += [tag_valid.eq(0), granted.eq(0)]
            # Loaded whatever the client's valid while the register is free:
            # its enable is ~full, flops (its byte is only used when pushed).
            with m.If(~full):
                m.d.sync += taken[i].eq(client.sink.payload)
        # The granted client's byte, an AND-OR by the grant's flops.
        incoming = Signal(siphash_input_layout)
        m.d.comb += incoming.eq(onehot_mux(granted, [t.as_value() for t in taken]))
        stage_free = ~stage_valid | siphash.sink.ready
        with m.If(stage_free):
            m.d.sync += [stage.eq(Mux(spare_valid, spare, incoming)), stage_valid.eq(spare_valid | taken_valid),
                         spare.eq(incoming), spare_valid.eq(spare_valid & taken_valid)]
        with m.Elif(~spare_valid):
            m.d.sync += [spare.eq(incoming), spare_valid.eq(taken_valid)]
        # taken_valid's and full's next values with full = taken_valid &
        # spare_valid worked in (as "taken moves on, a push refills it", the
        # same functions ran 5 levels from full and the grant to full and
        # taken_valid): full, the byte in taken stays while the stage holds;
        # else taken holds the byte pushed, and full follows if either
        # register keeps one.
        m.d.sync += [taken_valid.eq(Mux(full, ~stage_free, offered)),
                     full.eq(~stage_free & (full | (offered & (taken_valid | spare_valid))))]
        with m.If(~busy):
            # Grant the lowest waiting client; it starts next clock.
            for i in reversed(range(self._clients)):
                with m.If(clients[i].sink.valid):
                    m.d.sync += granted.eq(1 << i)
        return m
