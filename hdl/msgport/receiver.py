# Ref: docs/protocol.md (framing, tag over bus byte | header | body, byte order);
#      oracle: twinplane.protocol.codec.Codec.iter_decode.
"""Message receiver: splits the UDP payload of an SSMB/CSMB datagram into
messages, checks each one's length, type, version and SipHash-2-4 tag in
gateware, and passes on the messages that survive.

Interface
---------
``sink``      In(packet stream): the UDP payload of one datagram (first/last).
``bus``, ``src_mac``, ``src_ip``, ``src_port``
              In: which bus and which sender; held by the producer for the
              whole datagram and sampled with its first byte.
``key``       In(128): the shared key (``int.from_bytes(key16, "little")``);
              with ``shared_hash=True`` a ``hash`` port to the port's one
              SipHash core instead (:class:`~.hash_arbiter.HashArbiter`).
``source``    Out(stream of :func:`received_message_layout`): one accepted
              message, its header and body in the low bits of ``raw``; held
              (valid, stable payload) until taken, so a consumer may work
              on it in place instead of copying it.
``rotate``    In(1): while ``source`` is held after its consumer has read
              the message, rotate ``raw`` left by a byte (its top byte moves
              to the bottom) a clock later (a reader asking on consecutive
              clocks finds the next byte below the top while its previous
              rotation is pending), so the bytes of a message that fills ``raw``
              come out in wire order at the top, 8 multiplexers instead of a
              byte-wide one over 1,216 bits; after ``MAX_RECEIVED_BYTES`` rotations
              ``raw`` is as it was.  (The session engine reads a REPLY/NEWFLOW
              this way to replicate it.)
counters      Out(32) each: ``accepted``, ``bad_length``, ``truncated``,
              ``unexpected``, ``bad_version``, ``bad_tag``.

Sessions, sequence numbers and epochs are not checked here: they are state of
the association, kept by the message port's executor.

A message whose ``msg_length`` is out of range ends the datagram (nothing
after it is framed), as in the host codec; any other bad message is skipped
alone.  Bytes are taken one a clock into the register (but for a clock's
pause after byte 5, whose length check has a clock of its own); once a
message and its tag are in, the register is rotated a byte a clock through SipHash
(MAX_RECEIVED_BYTES clocks, then ~15 for the tag), so the SipHash core can
be the port's shared one: it is never held while the network delivers bytes.
Messages are at least 36 bytes and a REPLY (the largest, 160) costs about
330 clocks, so the receiver takes a message every ~2.6 us at 125 MHz; the
DFS's frame buffer holds the datagrams behind it.
In the message port the receiver's register is the only copy of a message on
the way in: the session engine works on it in place, so the receiver takes
no new byte until the engine is done with it (backpressure into the DFS's
frame buffer).
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from twinplane.protocol.codes import SUPPORTED_VERSIONS, Bus, CsmbType, SsmbType
from twinplane.protocol.messages import HEADER_SIZE, TAG_SIZE

from ..crypto.siphash import SipHash24
from ..onehot import OneHotFSM, flop_copy, onehot_mux
from ..packet import packet_signature
from .hash_arbiter import hash_client_signature
from .layout import MAX_RECEIVED_BYTES, expected_lengths, received_message_layout

__all__ = ["MessageReceiver"]

_MIN_LENGTH = HEADER_SIZE + TAG_SIZE
_MAX_LENGTH = MAX_RECEIVED_BYTES + TAG_SIZE
_COUNTERS = ("accepted", "bad_length", "truncated", "unexpected", "bad_version", "bad_tag")


class MessageReceiver(wiring.Component):
    def __init__(self, *, shared_hash: bool = False):
        if not isinstance(shared_hash, bool):
            raise TypeError(f"shared_hash must be a bool, not {shared_hash!r}")
        self._shared_hash = shared_hash
        hash_port = {"hash": Out(hash_client_signature())} if shared_hash else {"key": In(128)}
        super().__init__(
            {
                "sink": In(packet_signature(8)),
                "bus": In(1),
                "src_mac": In(48),
                "src_ip": In(32),
                "src_port": In(16),
                "rotate": In(1),  # while source is held: raw's top byte to the bottom
                **hash_port,
                "source": Out(stream.Signature(received_message_layout())),
                **{name: Out(32) for name in _COUNTERS},
            }
        )

    def elaborate(self, platform):
        m = Module()
        if self._shared_hash:
            siphash = self.hash
        else:
            m.submodules.siphash = siphash = SipHash24()
            m.d.comb += siphash.key.eq(self.key)

        out = self.source.payload
        bus = Signal(1)
        # Byte of the current message being taken: 8 bits are enough, since a
        # message whose msg_length is out of range ends at byte 5.
        assert _MAX_LENGTH < 256
        index = Signal(8)
        length = Signal(16)
        msg_type = Signal(8)
        vers_major = Signal(8)
        tag = Signal(64, reset_less=True)
        datagram_over = Signal()  # the byte just taken carried `last`
        tag_ok = Signal(8)  # the hash's tag equals the message's, byte by byte

        byte = self.sink.payload.data
        take = Signal()
        m.d.comb += take.eq(self.sink.valid & self.sink.ready)

        # The expected length in three registered steps (a flop per known
        # (bus, type), their sizes OR-ed, the compare): "Checking" comes 30
        # clocks or more after the type and length are in; the type's decode
        # and the 16-bit compare in one clock ran on into the state flops
        # (7 levels, and still 7 into a register of the 16-bit switch).
        sizes = expected_lengths()
        assert max(sizes.values()) < 256
        type_hits = Signal(len(sizes))
        m.d.sync += type_hits.eq(
            Cat((Cat(msg_type, bus) == (code | int(msg_bus) << 8)) for msg_bus, code in sizes)
        )
        expected_q = Signal(8)  # 0: no such message
        m.d.sync += expected_q.eq(onehot_mux(type_hits, list(sizes.values())))
        is_hello = Signal()
        m.d.comb += is_hello.eq(
            ((bus == Bus.SSMB) & (msg_type == SsmbType.HELLO)) | ((bus == Bus.CSMB) & (msg_type == CsmbType.HELLO))
        )
        version_ok = Signal()
        m.d.comb += version_ok.eq(is_hello)
        for major in {major for major, _ in SUPPORTED_VERSIONS}:
            with m.If(vers_major == major):
                m.d.comb += version_ok.eq(1)
        length_ok_q = Signal()
        version_ok_q = Signal()
        # and both as one flop, a clock later still: "Next message"'s flop
        # has the consumer's ready (the session engine's, from its state)
        # in front of it, with them 3 levels (7.98 ns).
        check_bad_q = Signal()
        m.d.sync += [
            length_ok_q.eq(expected_q == length),
            version_ok_q.eq(version_ok),
            check_bad_q.eq(~(length_ok_q & version_ok_q)),
        ]

        # Where the message ends, from registers: `length` is known from byte 6
        # on and these follow it a clock later, long before they are compared
        # (the tag starts at byte 24 or later), so no subtraction sits in
        # front of the register's enable (a net to ~1,300 flip-flops).
        signed_end = Signal(8)  # index of the last signed byte: length - TAG_SIZE - 1
        tag_end = Signal(8)  # index of the tag's last byte: length - 1
        unused = Signal(range(MAX_RECEIVED_BYTES + 1))  # raw's bytes above the message
        # ... and each less one, for index + 1's compares.
        signed_end_less1, tag_end_less1 = Signal(8), Signal(8)
        unused_less1 = Signal.like(unused, name="unused_less1")
        m.d.sync += [
            signed_end.eq((length - TAG_SIZE - 1)[:8]),
            tag_end.eq((length - 1)[:8]),
            unused.eq(MAX_RECEIVED_BYTES + TAG_SIZE - length),
            signed_end_less1.eq((length - TAG_SIZE - 2)[:8]),
            tag_end_less1.eq((length - 2)[:8]),
            unused_less1.eq(MAX_RECEIVED_BYTES + TAG_SIZE - 1 - length),
        ]
        # index == signed_end and index == tag_end from flops: each compared
        # a clock ahead with index kept and with index stepped, picked by
        # whether it stepped (the 8-bit compares in front of the hash's
        # ready and the take ran 5 levels into the state flops).  Where they
        # are read, index was not cleared in the clock before (the states
        # that clear it are left a clock before, or index is then 0, below
        # HEADER_SIZE).
        index_stepped = Signal()
        at_signed_kept, at_signed_stepped = Signal(), Signal()
        at_tag_kept, at_tag_stepped = Signal(), Signal()
        m.d.sync += [
            at_signed_kept.eq(index == signed_end), at_signed_stepped.eq(index == signed_end_less1),
            at_tag_kept.eq(index == tag_end), at_tag_stepped.eq(index == tag_end_less1),
        ]
        at_signed_end = Mux(index_stepped, at_signed_stepped, at_signed_kept)
        at_tag_end = Mux(index_stepped, at_tag_stepped, at_tag_kept)
        last_signed = Signal()
        m.d.comb += last_signed.eq((index >= HEADER_SIZE) & at_signed_end)
        # msg_length while byte 5 is taken: its high byte must be 0 (the
        # limits are under 256), registered when byte 4 is taken, so only the
        # low byte's compares meet index == 5 (7 levels from length[8:16]).
        assert _MAX_LENGTH < 256
        length_hi_bad = Signal()
        at_length = Signal()  # byte 5 is next (index == 5, a flop)
        # byte 4 is next (index == 4, a flop): the compare on index ran on
        # into length's enable, 5 levels (late on the 45F-6 at c3ed804)
        at_length_hi = Signal()
        length_bad = Signal()
        length_bad_q = Signal()
        m.d.comb += length_bad.eq(length_hi_bad | (byte < _MIN_LENGTH) | (byte > _MAX_LENGTH))

        def count(name):
            counter = getattr(self, name)
            m.d.sync += counter.eq(counter + 1)

        # The message and tag registers are written outside the FSM, as
        # "clear, else shift, else hold": synthesis maps that onto the flip-
        # flops' synchronous reset and clock enable, so the ~1,300 bits need
        # no logic in front of them.  Rotating (raw's top byte to the bottom)
        # is how the message is hashed, and read again for a replica: after
        # MAX_RECEIVED_BYTES rotations raw is as it was.
        # raw's clear and enable come straight from flip-flops (their fan-out
        # is the whole register): what a clock decides is done to raw the
        # clock after, with the byte taken held for it.  Meanwhile `top` is
        # raw's top byte as it will be (the one below it while a rotation
        # is pending), which is what the hash, and a reader rotating raw
        # (``rotate``: the same one-clock delay), must see.
        clear, shift_raw, shift_tag, rotate = Signal(), Signal(), Signal(), Signal()
        clear_q, step_q, shift_q, byte_q = Signal(), Signal(), Signal(), Signal(8)
        m.d.sync += [
            clear_q.eq(clear),
            step_q.eq(~clear & (shift_raw | rotate | self.rotate)),
            shift_q.eq(shift_raw),
            byte_q.eq(byte),
        ]
        # raw and tag take no domain reset: every message clears them before
        # its first byte, and nothing reads them before.  With the reset,
        # their flops' LSR was `rst | clear_q`, a LUT on a net of fan-out
        # 1,216 across the chip (8.15 ns, the core clock's worst path).
        raw = Signal(len(out.raw), reset_less=True)
        m.d.comb += out.raw.eq(raw)
        with m.If(clear_q):
            m.d.sync += raw.eq(0)
        with m.Elif(step_q):
            m.d.sync += raw.eq(Cat(Mux(shift_q, byte_q, raw[-8:]), raw[:-8]))
        # The tag is never cleared: all TAG_SIZE of its bytes are shifted in
        # before it is judged (a clear from the states' decisions was the
        # flops' LSR, 8.40 ns on the 25F).
        with m.If(shift_tag):
            m.d.sync += tag.eq(Cat(tag[8:], byte))
        top = Signal(8)
        m.d.comb += top.eq(Mux(step_q, raw[-16:-8], raw[-8:]))
        # The header's bytes likewise a clock after their take, with byte_q:
        # their enable was the take (message_in's valid) and index <
        # HEADER_SIZE, 2 levels on a net of fanout 168 (17 late at 7.45 ns);
        # now a flop a copy per 4 bytes.  The header is read after
        # "Checking", 30 clocks or more on.
        shift_header = Signal()
        header = out.header.as_value()
        header_shifted = Cat(byte_q, header[:-8])
        for k in range(0, HEADER_SIZE, 4):
            with m.If(flop_copy(m, shift_header, name=f"header_en_r{k // 4}")):
                m.d.sync += header[8 * k:8 * k + 32].eq(header_shifted[8 * k:8 * k + 32])
        # The sender's address (98 flops) a clock after the first byte is
        # seen (the producer holds it for the whole datagram, and the byte is
        # not taken in "Waiting for a message"): its enable was message_in's
        # valid and first, fanout 97; now a flop a copy per 32-34 bits.
        sample_sender = Signal()
        sender_en = [flop_copy(m, sample_sender, name=f"sender_en_r{k}") for k in range(3)]
        sender = [(bus, self.bus), (out.bus, self.bus), (out.src_port, self.src_port),
                  (out.src_mac[:16], self.src_mac[:16]), (out.src_ip, self.src_ip),
                  (out.src_mac[16:], self.src_mac[16:])]
        for k, part in enumerate((sender[:4], sender[4:5], sender[5:])):
            with m.If(sender_en[k]):
                m.d.sync += [reg.eq(value) for reg, value in part]

        # The hash reads the message from raw once it is whole: first the
        # unused top of raw rotates away, then the bus byte and the signed
        # bytes go to SipHash as they reach the top.
        m.d.comb += siphash.sink.payload.data.eq(top)

        # index is written outside the states, as "clear, else step": the
        # states' conditions meet at two nets instead of a mux of the states'
        # values in front of each bit (7 levels from the hash's ready).
        # Its clear comes from flops (it was a state's test with the
        # message_in's valid, or the 8-bit compare with unused, 3 levels on
        # the flops' LSR, 8 late at 7.53 ns): the states that clear it
        # do so on every clock they are in (index is not read there), and
        # "Rotating to the message"'s end is a flop set a clock ahead.
        index_clear, index_step = Signal(), Signal()
        rotated = Signal()  # in "Rotating to the message": index == unused
        with m.If(index_clear):
            m.d.sync += index.eq(0)
        with m.Elif(index_step):
            m.d.sync += index.eq(index + 1)
        m.d.sync += index_stepped.eq(index_step & ~index_clear)

        # One-hot (a flop a state): each state's test is its own flop, not a
        # decode of a binary state register in front of raw's and the hash's
        # enables (7 levels).
        with OneHotFSM(m, "Waiting for a message", name="receiver") as fsm:
            with fsm.state("Waiting for a message"):
                m.d.comb += index_clear.eq(1)
                # length and its byte flags cleared in every clock of the two
                # states that start a message, whatever they decide (the
                # decision, from `datagram_over` or the sink, ran 4 LUTs and
                # 6 ns of route into length on the 25F).
                m.d.sync += [length.eq(0), at_length.eq(0), at_length_hi.eq(0)]
                with m.If(self.sink.valid):
                    m.d.comb += clear.eq(1)
                    with m.If(self.sink.payload.first):
                        m.d.comb += sample_sender.eq(1)
                    fsm.goto("Taking header and body")

            with fsm.state("Taking header and body"):
                m.d.comb += self.sink.ready.eq(1)
                with m.If(take):
                    m.d.sync += [at_length_hi.eq(index == 3), at_length.eq(at_length_hi)]
                    m.d.comb += index_step.eq(1)
                    m.d.comb += shift_raw.eq(1)
                    with m.If(index < HEADER_SIZE):
                        m.d.comb += shift_header.eq(1)
                    with m.Switch(index):
                        with m.Case(0):
                            m.d.sync += vers_major.eq(byte)
                        with m.Case(2):
                            m.d.sync += msg_type.eq(byte)
                    with m.If(at_length_hi):
                        m.d.sync += [length[8:16].eq(byte), length_hi_bad.eq(byte != 0)]
                    with m.If(at_length):
                        # Byte 5 judged in a clock of its own (one more a
                        # message): its compares ran on into the state flops
                        # (7 levels from the byte).
                        m.d.sync += [length[0:8].eq(byte), length_bad_q.eq(length_bad),
                                     datagram_over.eq(self.sink.payload.last)]
                        fsm.goto("Checking the length")
                    with m.Elif(self.sink.payload.last):
                        count("truncated")
                        fsm.goto("Waiting for a message")
                    with m.Elif(last_signed):
                        fsm.goto("Taking the tag")

            with fsm.state("Checking the length"):
                with m.If(length_bad_q):
                    count("bad_length")
                    with m.If(datagram_over):
                        fsm.goto("Waiting for a message")
                    with m.Else():
                        fsm.goto("Eating the rest")
                with m.Elif(datagram_over):
                    count("truncated")
                    fsm.goto("Waiting for a message")
                with m.Else():
                    fsm.goto("Taking header and body")

            with fsm.state("Taking the tag"):
                m.d.comb += self.sink.ready.eq(1)
                with m.If(take):
                    m.d.comb += index_step.eq(1)
                    m.d.comb += shift_tag.eq(1)
                    m.d.sync += datagram_over.eq(self.sink.payload.last)
                    with m.If(at_tag_end):
                        fsm.goto("Checking")
                    with m.Elif(self.sink.payload.last):
                        count("truncated")
                        fsm.goto("Waiting for a message")

            with fsm.state("Checking"):
                m.d.comb += index_clear.eq(1)
                m.d.sync += [out.msg_type.eq(msg_type), rotated.eq(unused == 0)]
                with m.If(check_bad_q):
                    with m.If(~length_ok_q):
                        count("unexpected")
                    with m.Else():
                        count("bad_version")
                    fsm.goto("Next message")
                with m.Else():
                    fsm.goto("Rotating to the message")

            with fsm.state("Rotating to the message"):
                with m.If(rotated):
                    m.d.comb += index_clear.eq(1)
                    fsm.goto("Hashing the bus byte")
                with m.Else():
                    m.d.comb += rotate.eq(1)
                    m.d.comb += index_step.eq(1)
                    m.d.sync += rotated.eq(index == unused_less1)

            with fsm.state("Hashing the bus byte"):
                # Domain separation: the bus byte first.
                m.d.comb += [siphash.sink.valid.eq(1), siphash.sink.payload.data.eq(bus)]
                with m.If(siphash.sink.ready):
                    fsm.goto("Hashing the message")

            with fsm.state("Hashing the message"):
                last = at_signed_end
                m.d.comb += [siphash.sink.valid.eq(1), siphash.sink.payload.last.eq(last)]
                with m.If(siphash.sink.ready):
                    m.d.comb += rotate.eq(1)
                    m.d.comb += index_step.eq(1)
                    with m.If(last):
                        fsm.goto("Checking the tag")

            with fsm.state("Checking the tag"):
                m.d.comb += siphash.source.ready.eq(1)
                with m.If(siphash.source.valid):
                    # Registered a byte a flop, a clock a message: the 64-bit
                    # compare ran on into the state flops and source.valid
                    # (7 levels, and 7 into a single flop).
                    m.d.sync += tag_ok.eq(
                        Cat(siphash.source.payload.word_select(i, 8) == tag.word_select(i, 8) for i in range(8))
                    )
                    fsm.goto("Judging the tag")

            with fsm.state("Judging the tag"):
                with m.If(~tag_ok.all()):
                    count("bad_tag")
                    fsm.goto("Next message")
                with m.Else():
                    m.d.sync += self.source.valid.eq(1)
                    fsm.goto("Passing it on")

            with fsm.state("Passing it on"):
                with m.If(self.source.ready):
                    m.d.sync += self.source.valid.eq(0)
                    count("accepted")
                    fsm.goto("Next message")

            with fsm.state("Next message"):
                # Same datagram, next message: same bus, same sender.
                m.d.comb += index_clear.eq(1)
                m.d.sync += [length.eq(0), at_length.eq(0), at_length_hi.eq(0)]
                with m.If(datagram_over):
                    fsm.goto("Waiting for a message")
                with m.Else():
                    m.d.comb += clear.eq(1)
                    fsm.goto("Taking header and body")

            with fsm.state("Eating the rest"):
                # msg_length was out of range: nothing after it is framed.
                m.d.comb += self.sink.ready.eq(1)
                with m.If(take & self.sink.payload.last):
                    fsm.goto("Waiting for a message")
        return m
