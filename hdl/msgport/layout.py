"""What the message port's gateware knows about messages, derived from the one
declaration in :mod:`twinplane.protocol.messages` (never typed in by hand).

# Ref: docs/protocol.md (framing, tag, byte order).
"""

from __future__ import annotations

from amaranth import Cat, Const
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from twinplane.protocol.codes import Bus, CsmbType, SsmbType
from twinplane.protocol.layouts import header_layout
from twinplane.protocol.messages import HEADER_SIZE, MESSAGES_BY_TYPE, TAG_SIZE, Message

__all__ = [
    "DFS_RECEIVES",
    "DFS_REPLICATES",
    "DFS_SENDS",
    "MAX_RECEIVED_BYTES",
    "MAX_SENT_BYTES",
    "MAX_TRANSMIT_BYTES",
    "READ_LATENCY",
    "core_read_signature",
    "expected_lengths",
    "message_read_signature",
    "received_message_layout",
    "transmit_message_layout",
    "wire_word",
    "wire_words",
    "words_of",
]

#: Messages a DFS accepts (CS -> DFS, or either direction).  Anything else that
#: arrives is counted as unexpected and dropped.
DFS_RECEIVES: tuple[type[Message], ...] = tuple(
    MESSAGES_BY_TYPE[key]
    for key in (
        (Bus.SSMB, SsmbType.HELLO),
        (Bus.SSMB, SsmbType.REPLY),
        (Bus.SSMB, SsmbType.NEWFLOW),
        (Bus.SSMB, SsmbType.DELETE),
        (Bus.SSMB, SsmbType.REAP),
        (Bus.SSMB, SsmbType.TIMEOUT),
        (Bus.SSMB, SsmbType.RESET),
        (Bus.SSMB, SsmbType.AUTH_CHALLENGE),
        (Bus.SSMB, SsmbType.DUMP),
        (Bus.CSMB, CsmbType.HELLO),
        (Bus.CSMB, CsmbType.AUTH_CHALLENGE),
        (Bus.CSMB, CsmbType.ADD_VS),
        (Bus.CSMB, CsmbType.DEL_VS),
        (Bus.CSMB, CsmbType.VS_LIST),
        (Bus.CSMB, CsmbType.CONFIG),
    )
)
assert not any(f.variable for cls in DFS_RECEIVES for f in cls.BODY)

#: Messages a DFS sends (DFS -> CS, or either direction).
DFS_SENDS: tuple[type[Message], ...] = tuple(
    MESSAGES_BY_TYPE[key]
    for key in (
        (Bus.SSMB, SsmbType.HELLO),
        (Bus.SSMB, SsmbType.QUERY),
        (Bus.SSMB, SsmbType.DELETE),
        (Bus.SSMB, SsmbType.STATS),
        (Bus.SSMB, SsmbType.RESET),
        (Bus.SSMB, SsmbType.AUTH_RESPONSE),
        (Bus.SSMB, SsmbType.DUMP),
        (Bus.CSMB, CsmbType.HELLO),
        (Bus.CSMB, CsmbType.AUTH_RESPONSE),
        (Bus.CSMB, CsmbType.VS_LIST),
        (Bus.CSMB, CsmbType.ACK),
    )
)

#: Header and body of the largest message a DFS sends.
MAX_SENT_BYTES = max(cls.wire_size() - TAG_SIZE for cls in DFS_SENDS)

#: Header and body of the largest message a DFS accepts (the tag is not kept).
MAX_RECEIVED_BYTES = max(cls.wire_size() - TAG_SIZE for cls in DFS_RECEIVES)

#: Messages the port copies, re-stamped, to the other CSs (replication).
DFS_REPLICATES: tuple[type[Message], ...] = (
    MESSAGES_BY_TYPE[(Bus.SSMB, SsmbType.REPLY)],
    MESSAGES_BY_TYPE[(Bus.SSMB, SsmbType.NEWFLOW)],
)
assert {cls.wire_size() for cls in DFS_REPLICATES} == {MAX_RECEIVED_BYTES + TAG_SIZE}

#: Header and body of the largest message the transmitter frames (a replica).
MAX_TRANSMIT_BYTES = max(MAX_SENT_BYTES, MAX_RECEIVED_BYTES)

#: Clocks from a read's ``en``/``index`` to its ``byte`` (:func:`message_read_signature`).
READ_LATENCY = 2


def words_of(nbytes: int) -> int:
    """8-byte words of ``nbytes`` bytes (the last padded): the width of a
    read's one-hot ``word_at``."""
    return (nbytes + 7) // 8


def expected_lengths() -> dict[tuple[Bus, int], int]:
    """``msg_length`` (header + body + tag) of every message a DFS accepts."""
    return {(cls.BUS, int(cls.TYPE)): cls.wire_size() for cls in DFS_RECEIVES}


def received_message_layout() -> data.StructLayout:
    """One accepted message: its bus and type, its signed bytes (header and
    body) as a big-endian number in the low ``8 * (msg_length - 8)`` bits of
    ``raw`` -- view them with ``layouts.message_layout(cls)`` on
    ``raw[: message_layout(cls).size]`` -- its header again on its own (at a
    fixed place, whatever the length), and who sent it."""
    return data.StructLayout(
        {
            "bus": 1,
            "msg_type": 8,
            "header": header_layout(),  # SSMB names; CSMB's serial_global|serial_bytype is `serial`
            "raw": 8 * MAX_RECEIVED_BYTES,
            "src_mac": 48,
            "src_ip": 32,
            "src_port": 16,
        }
    )


def transmit_message_layout() -> data.StructLayout:
    """One message to send: its bus, the number of signed bytes (header and
    body) and where it goes.  The bytes themselves are read through
    :func:`message_read_signature` while the message is offered.  The
    destination may settle a clock after ``valid`` rises (the session engine
    registers it): a reader takes ``bus`` and ``length`` at once and the
    destination no sooner than two clocks later."""
    return data.StructLayout(
        {
            "bus": 1,
            "length": range(MAX_TRANSMIT_BYTES + 1),
            "dst_mac": 48,
            "dst_ip": 32,
            "dst_port": 16,
        }
    )


def message_read_signature() -> wiring.Signature:
    """Access to the signed bytes of the message being offered, from the
    reader's side: with ``en`` high, ``index`` (0 = the first byte on the
    wire) is asked for, and ``byte`` holds it :data:`READ_LATENCY` clocks
    later (the producer selects it through registers, a word then a byte, so
    its selection ends in a flip-flop instead of running on into the
    reader's logic).  A reader reads the message in
    order, ``index`` 0 to ``length - 1``, each once per pass (a producer may
    rely on it: the session engine rotates the receiver's register for a
    replica).  Neither side holds the message in a message-sized register or
    multiplexes one as a whole.  ``word_at`` is ``index // 8`` one-hot (bit
    w: byte ``index`` is in word w), a register of the reader's beside
    ``index``: the producer's word select is an AND-OR of flops, not a
    decode of the index (the index's word select was 7 levels)."""
    return wiring.Signature({"en": Out(1), "index": Out(range(MAX_TRANSMIT_BYTES)),
                             "word_at": Out(words_of(MAX_TRANSMIT_BYTES)), "byte": In(8)})


def wire_words(value, nbytes: int) -> list:
    """The 8-byte words of ``value`` (``nbytes`` signed bytes as a big-endian
    number, the first byte on the wire on top), each with its first byte on
    the wire in the low bits, the last padded with zeros."""
    wire = Cat(*(value[8 * (nbytes - 1 - k) : 8 * (nbytes - k)] for k in range(nbytes)))
    wire = Cat(wire, Const(0, 8 * (-nbytes % 8)))
    return [wire[64 * w : 64 * (w + 1)] for w in range(len(wire) // 64)]


def wire_word(value, nbytes: int, word):
    """Word number ``word`` of :func:`wire_words`, selected by a shift; past
    the end, zeros."""
    return Cat(*wire_words(value, nbytes)).word_select(word, 64)


def core_read_signature() -> wiring.Signature:
    """Access to the signed bytes of the core's message being offered (the
    session engine's ``from_core``), from the reader's side: ``word`` holds,
    one clock after ``index`` (0 = the first byte on the wire), the 8-byte
    word holding that byte, its first byte on the wire in the low bits --
    if ``en`` was high then, else 0 (``en``: the reader is reading this
    message, a level, not a strobe per read).  The producer registers it
    every clock from ``index`` alone, ``en`` its flip-flops' synchronous
    reset: the reader's second stage picks the byte, ORed with its own
    messages' word, so a :func:`message_read_signature` read through it keeps
    its :data:`READ_LATENCY`, and the message is never a message-sized
    register or multiplexed as a whole on either side.  ``word_at``: the
    word of ``index``, one-hot (as :func:`message_read_signature`'s); the
    producer selects by it."""
    return wiring.Signature({"en": Out(1), "index": Out(range(MAX_SENT_BYTES)),
                             "word_at": Out(words_of(MAX_SENT_BYTES)), "word": In(64)})


assert HEADER_SIZE == 24  # the receiver reads msg_type at 2 and msg_length at 4..5
