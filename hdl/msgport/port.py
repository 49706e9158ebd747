# Ref: docs/protocol.md, docs/dfs.md (message port).
"""The DFS's message port: SSMB/CSMB datagrams in, answers and the DFS core's
messages out, as frames.

    UDP payload ─► MessageReceiver ─► SessionEngine ─► MessageTransmitter ─► frames
                                         │      ▲
                              to_core ◄──┘      └── from_core (+ from_core_read: its bytes by index)

The DFS top delivers the UDP payload of every datagram addressed to the
DFS's SSMB or CSMB port on the internal side (with the sender's addresses and
which bus), and merges the frames on ``tx`` into the internal port's egress.

One SipHash-2-4 core (:class:`HashArbiter`) serves the receiver, the
session engine and the transmitter: each hashes a message it already holds
(the receiver rotates its register once the message is whole), so none
holds the core while waiting on the network.  No stage copies a message: each holds the one it
works on in its producer's stream (valid, payload stable) until done, so the
receiver's register is the only message-sized one on the way in, and
``to_core`` likewise stays valid and stable until taken.
"""

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect

from ..packet import packet_signature
from .hash_arbiter import HashArbiter
from .layout import core_read_signature, received_message_layout
from .receiver import _COUNTERS as _RX_COUNTERS
from .receiver import MessageReceiver
from .session import _COUNTERS as _SESSION_COUNTERS
from .session import SessionEngine, core_message_layout, vs_write_layout
from .transmitter import MessageTransmitter

__all__ = ["COUNTERS", "MessagePort"]

COUNTERS = tuple(f"rx_{name}" for name in _RX_COUNTERS) + _SESSION_COUNTERS + ("tx_sent",)


class MessagePort(wiring.Component):
    def __init__(self, *, cs_slots: int = 2, vs_entries: int = 16, nonce_seed: int = 0x9E3779B97F4A7C15,
                 ms_per_tick: int = 1, install_verdicts: bool = False):
        self._engine_args = dict(cs_slots=cs_slots, vs_entries=vs_entries, nonce_seed=nonce_seed,
                                 ms_per_tick=ms_per_tick, install_verdicts=install_verdicts)
        self._install_verdicts = install_verdicts
        SessionEngine.check_arguments(**self._engine_args)
        super().__init__(
            {
                "key": In(128),
                "own_mac": In(48),
                "own_ip": In(32),
                "tick": In(1),  # one clock every ms_per_tick ms; CS expiry needs it (0: never)
                "rx": In(packet_signature(8)),
                "rx_bus": In(1),
                "rx_src_mac": In(48),
                "rx_src_ip": In(32),
                "rx_src_port": In(16),
                "tx": Out(packet_signature(8)),
                "to_core": Out(stream.Signature(received_message_layout())),
                "from_core": In(stream.Signature(core_message_layout())),
                "from_core_read": Out(core_read_signature()),  # from_core's bytes, by index (session.py)
                # install_verdicts: the core says, per REPLY/NEWFLOW it took,
                # whether it installed it (1: copied to the other CSs)
                **({"installed": In(stream.Signature(1))} if install_verdicts else {}),
                "vs_write": Out(stream.Signature(vs_write_layout())),
                "dfs_ip": Out(32),
                "dfs_mac": Out(48),
                "idle_timeout_s": Out(16),
                "active_cs": Out(8),
                "active_set": Out(cs_slots),
                "cs_present": Out(cs_slots),
                "core_delivered": Out(1),  # with from_core.ready: the message went out (to core_sent_to)
                "core_sent_to": Out(range(max(cs_slots, 2))),
                **{name: Out(32) for name in COUNTERS},
            }
        )

    def elaborate(self, platform):
        m = Module()
        # One SipHash core for the three: none holds it while waiting on
        # anything outside the port (the receiver hashes a whole message from
        # its register; the session engine hashes only while the transmitter
        # is idle, as it hands a message over only when the previous frame is
        # out; the transmitter reads the session's message).
        m.submodules.receiver = receiver = MessageReceiver(shared_hash=True)
        m.submodules.session = session = SessionEngine(**self._engine_args, shared_hash=True)
        m.submodules.transmitter = transmitter = MessageTransmitter(shared_hash=True)
        m.submodules.hash = hasher = HashArbiter(3)
        m.d.comb += hasher.key.eq(self.key)
        connect(m, session.hash, hasher.client0)
        connect(m, transmitter.hash, hasher.client1)
        connect(m, receiver.hash, hasher.client2)

        m.d.comb += [
            receiver.bus.eq(self.rx_bus),
            receiver.src_mac.eq(self.rx_src_mac),
            receiver.src_ip.eq(self.rx_src_ip),
            receiver.src_port.eq(self.rx_src_port),
            receiver.rotate.eq(session.rx_rotate),
            session.own_mac.eq(self.own_mac),
            session.own_ip.eq(self.own_ip),
            session.tick.eq(self.tick),
            transmitter.own_mac.eq(session.dfs_mac),
            transmitter.own_ip.eq(session.dfs_ip),
            self.dfs_ip.eq(session.dfs_ip),
            self.dfs_mac.eq(session.dfs_mac),
            self.idle_timeout_s.eq(session.idle_timeout_s),
            self.active_cs.eq(session.active_cs),
            self.active_set.eq(session.active_set),
            self.cs_present.eq(session.cs_present),
            self.core_delivered.eq(session.core_delivered),
            self.core_sent_to.eq(session.core_sent_to),
        ]
        connect(m, wiring.flipped(self.rx), receiver.sink)
        connect(m, receiver.source, session.rx)
        connect(m, session.tx, transmitter.sink)
        connect(m, transmitter.read, session.tx_read)
        connect(m, transmitter.source, wiring.flipped(self.tx))
        connect(m, session.to_core, wiring.flipped(self.to_core))
        connect(m, wiring.flipped(self.from_core), session.from_core)
        connect(m, session.from_core_read, wiring.flipped(self.from_core_read))
        if self._install_verdicts:
            connect(m, wiring.flipped(self.installed), session.installed)
        connect(m, session.vs_write, wiring.flipped(self.vs_write))

        for name in _RX_COUNTERS:
            m.d.comb += getattr(self, f"rx_{name}").eq(getattr(receiver, name))
        for name in _SESSION_COUNTERS:
            m.d.comb += getattr(self, name).eq(getattr(session, name))
        m.d.comb += self.tx_sent.eq(transmitter.sent)
        return m
