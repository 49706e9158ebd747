# Ref: docs/dfs.md (message port: the core's messages).
"""A core message held as its signed bytes, offered as the session engine
takes one: the narrow ``from_core`` stream (length, header type, error and
session, a QUERY's flow) and the bytes through :func:`core_read_signature`.

For a producer that has the message's bytes at hand (tests, a core that
builds its messages in a register): its ``sink`` carries them left-aligned in
``raw``, as the transmitter reads them, and stays valid and stable until
taken.  Nothing is copied: the narrow fields are views of ``raw``, and the
read port's word a register loaded every clock from ``raw`` by index
(0 while the reader says it reads something else).  The
DFS's flow controller answers the read from its own registers instead.
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from twinplane.protocol.layouts import header_layout, message_layout
from twinplane.protocol.messages import HEADER_SIZE, SsmbQuery

from ..onehot import onehot_mux
from .layout import MAX_SENT_BYTES, core_read_signature, wire_words
from .session import core_message_layout

__all__ = ["HeldCoreMessage", "raw_core_message_layout"]


def raw_core_message_layout() -> data.StructLayout:
    """A core message as its signed bytes (header fields other than session,
    seq, epoch and msg_length filled in), left-aligned in ``raw``."""
    return data.StructLayout({"length": range(MAX_SENT_BYTES + 1), "raw": 8 * MAX_SENT_BYTES})


class HeldCoreMessage(wiring.Component):
    sink: In(stream.Signature(raw_core_message_layout()))
    source: Out(stream.Signature(core_message_layout()))
    read: In(core_read_signature())

    def elaborate(self, platform):
        m = Module()
        raw = self.sink.payload.raw
        hdr = data.View(header_layout(), raw[-8 * HEADER_SIZE :])
        query = data.View(message_layout(SsmbQuery), raw[-message_layout(SsmbQuery).size :])
        m.d.comb += [
            self.source.valid.eq(self.sink.valid),
            self.sink.ready.eq(self.source.ready),
            self.source.payload.length.eq(self.sink.payload.length),
            self.source.payload.msg_type.eq(hdr.msg_type),
            self.source.payload.error.eq(hdr.error),
            self.source.payload.session.eq(hdr.session),
            self.source.payload.flow.eq(query.flow),
        ]
        word = Signal(64, reset_less=True)
        m.d.sync += word.eq(Mux(self.read.en, onehot_mux(self.read.word_at, wire_words(raw, MAX_SENT_BYTES)), 0))
        m.d.comb += self.read.word.eq(word)
        return m
