# Ref: RFC 791 (IPv4 header, checksum), RFC 768 (UDP; checksum 0 = none over IPv4),
#      docs/protocol.md (tag over bus byte | header | body).
"""Message transmitter: wraps one SSMB/CSMB message from the DFS into an
Ethernet/IPv4/UDP frame with its SipHash-2-4 tag.

Interface
---------
``sink``      In(stream of :func:`transmit_message_layout`): one message's
              bus, length and destination; held until the frame is out.
``read``      Out(:func:`message_read_signature`): the message's bytes, asked
              for in order while ``sink`` is valid, each answered
              ``READ_LATENCY`` clocks later (a 4-byte FIFO here absorbs that).
``key``       In(128): the shared key (``int.from_bytes(key16, "little")``).
``own_mac``, ``own_ip``
              In: the DFS's addresses on the internal side (frame source).
``source``    Out(packet stream): the frame, without FCS (the MAC adds it).
``sent``      Out(32): frames sent.

Two passes over the message: first its bytes go through SipHash, then the
frame goes out.  The tag is needed at the end of the frame and a MAC must not
see a gap inside a frame, so hashing cannot overlap sending.  The message is
not copied: the transmitter holds ``sink`` (ready low) until the frame's last
byte, so the producer's message stays put, and asks the producer for the
byte it needs by index (``read``) -- no message-sized register or
multiplexer on this side.
The Ethernet/IPv4/UDP headers are picked the same way from their fields.  A
message costs about ``length + 20 + 42 + length + 8`` cycles.

With ``shared_hash=True`` the SipHash core is outside (``hash``: see
:class:`~.hash_arbiter.HashArbiter`) and ``key`` is not a member.

The UDP checksum is 0 ("no checksum", allowed over IPv4 by RFC 768): the tag
protects the payload end to end.  The IPv4 header checksum is summed from
the header fields, a word a clock, while the message is hashed.
"""

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from twinplane.protocol.codes import CSMB_UDP_PORT, SSMB_UDP_PORT
from twinplane.protocol.messages import TAG_SIZE

from ..crypto.siphash import SipHash24
from ..lut4 import builds_lut4s, lut_select_bits
from ..onehot import OneHotFSM
from ..packet import packet_signature
from .hash_arbiter import hash_client_signature
from .layout import (
    MAX_TRANSMIT_BYTES,
    READ_LATENCY,
    message_read_signature,
    transmit_message_layout,
    words_of,
)
from .message_bits import field_bits

__all__ = ["MessageTransmitter"]

_HEADERS = 14 + 20 + 8  # Ethernet, IPv4, UDP
_TTL = 64


class MessageTransmitter(wiring.Component):
    def __init__(self, *, shared_hash: bool = False):
        if not isinstance(shared_hash, bool):
            raise TypeError(f"shared_hash must be a bool, not {shared_hash!r}")
        self._shared_hash = shared_hash
        hash_port = {"hash": Out(hash_client_signature())} if shared_hash else {"key": In(128)}
        super().__init__(
            {
                "sink": In(stream.Signature(transmit_message_layout())),
                "read": Out(message_read_signature()),
                **hash_port,
                "own_mac": In(48),
                "own_ip": In(32),
                "source": Out(packet_signature(8)),
                "sent": Out(32),
            }
        )

    def elaborate(self, platform):
        m = Module()
        if self._shared_hash:
            siphash = self.hash
        else:
            m.submodules.siphash = siphash = SipHash24()
            m.d.comb += siphash.key.eq(self.key)

        msg = self.sink.payload  # held by the producer until the last byte
        body_index = Signal(range(MAX_TRANSMIT_BYTES + 1))  # message bytes taken in this pass
        length = Signal(range(MAX_TRANSMIT_BYTES + 1))  # msg.length, registered
        last_index = Signal(range(MAX_TRANSMIT_BYTES))  # msg.length - 1
        # body_index == last_index as a flop, set as the byte before the
        # last is taken (compared with msg.length - 2): the compare ran on
        # through the hash arbiter's byte into its spare, and with the
        # arbiter's ready into body_index, 7 levels.
        penult_index = Signal(range(MAX_TRANSMIT_BYTES))
        last_body = Signal()
        # The next header byte's index, one-hot (bit _HEADERS: none left): the
        # 42-way byte select is an AND-OR of flops (a binary index made it a
        # multiplexer tree, 7 levels to head_q).
        head_at = Signal(_HEADERS + 1)
        tag = Signal(64)
        ident = Signal(16)
        ip_total = Signal(16)
        udp_length = Signal(16)  # ip_total - 20, registered (its subtract ran on into head_q)
        ip_sum = Signal(16)
        ip_carry = Signal()
        sum_step = Signal(3)

        # -- Fetcher: asks the producer for the message's bytes in order,
        # READ_LATENCY clocks ahead (``read`` answers through registers), into
        # a small FIFO.  Whether to ask depends on registers only (FIFO fill +
        # the bytes in flight), so the consumer's ready is not in front of the
        # producer's byte multiplexer; READ_LATENCY + 2 entries keep one byte
        # a clock flowing.
        depth = READ_LATENCY + 2
        fetching = Signal()  # the FSM is in a pass that reads the message
        fetch_index = Signal(range(MAX_TRANSMIT_BYTES + 1))
        fetch_word = Signal(words_of(MAX_TRANSMIT_BYTES), init=1)  # fetch_index // 8, one-hot
        fetch_more = Signal()  # fetch_index != length, registered (off the path into `read.en`)
        in_flight = Signal(READ_LATENCY)  # the asks of the last READ_LATENCY clocks
        arriving = in_flight[-1]
        fifo = [Signal(8, name=f"fifo{i}") for i in range(depth)]
        fill = Signal(range(depth + 1))
        pop = Signal()
        ask = Signal()
        m.d.comb += [
            ask.eq(fetching & fetch_more & (fill + sum(in_flight) < depth)),
            self.read.en.eq(ask),
            self.read.index.eq(fetch_index),
            self.read.word_at.eq(fetch_word),
        ]
        m.d.sync += in_flight.eq(Cat(ask, in_flight[:-1]))
        with m.If(ask):
            m.d.sync += [fetch_index.eq(fetch_index + 1), fetch_more.eq(fetch_index != last_index)]
            with m.If(fetch_index[:3] == 7):
                m.d.sync += fetch_word.eq(fetch_word << 1)
        m.d.sync += fill.eq(fill + arriving - pop)
        # The fill as a flop per value too: where the arriving byte lands is
        # then a 2-way pick on pop, not fill - pop compared (pop comes from
        # the consumer's ready: that subtract and compare ran on into the
        # entries' enables, 7 levels).
        fill_is = Signal(depth + 1, init=1)
        with m.If(arriving & ~pop):
            m.d.sync += fill_is.eq(fill_is << 1)
        with m.Elif(pop & ~arriving):
            m.d.sync += fill_is.eq(fill_is >> 1)
        for i in range(depth):
            # Entry i after this clock: shift down on pop; the arriving byte
            # lands at the first free place.
            kept = fifo[i + 1] if i + 1 < depth else fifo[i]
            with m.If(arriving & Mux(pop, fill_is[i + 1], fill_is[i])):
                m.d.sync += fifo[i].eq(self.read.byte)
            with m.Elif(pop):
                m.d.sync += fifo[i].eq(kept)
        have_byte = ~fill_is[0]
        body_byte = fifo[0]
        # body_index is written outside the states, as "clear, else step"
        # (the states' writes, a priority chain of muxes behind pop and the
        # hash's ready, ran 5 levels from the arbiter's grant and full).
        body_clear, body_step = Signal(), Signal()
        with m.If(body_clear):
            m.d.sync += body_index.eq(0)
        with m.Elif(body_step):
            m.d.sync += body_index.eq(body_index + 1)
        with m.If(pop):
            m.d.sync += last_body.eq(body_index == penult_index)

        # The IPv4 header checksum, one 16-bit word a clock while the message
        # is hashed (a 9-operand sum in one clock would be 3 carry chains
        # deep), its carry added in with the next word (one's complement),
        # and the last carry by a step with no word: no fold adders.  A sum
        # that carried is at most 0xFFFE (0xFFFF + 0xFFFF + 1 never happens,
        # as the carry starts at 0), so that step never carries.  7 steps;
        # a message is hashed for at least 24 clocks.
        sum_words = Array([ip_total, ident, self.own_ip[16:], self.own_ip[:16], msg.dst_ip[16:], msg.dst_ip[:16]])
        sum_steps = len(sum_words) + 1  # the Array is 0 past its words

        # The source port by the bus: its bits where the two ports differ
        # are the bus bit (or its inverse), the others constants.
        port = [c if c == s else (msg.bus if c else ~msg.bus)
                for c, s in ((CSMB_UDP_PORT >> i & 1, SSMB_UDP_PORT >> i & 1) for i in range(16))]
        # The checksum as sent, a register: its inverse as a LUT input was
        # a level of its own.  Its last add lands long before the headers
        # go out (above), this a clock later.
        ip_check = Signal(16)
        m.d.sync += ip_check.eq(~ip_sum)
        fields = [
            (msg.dst_mac, 48),
            (self.own_mac, 48),
            (Const(0x0800, 16), 16),
            (Const(0x4500, 16), 16),
            (ip_total, 16),
            (ident, 16),
            (Const(0x4000, 16), 16),
            (Const(_TTL, 8), 8),
            (Const(17, 8), 8),
            (ip_check, 16),
            (self.own_ip, 32),
            (msg.dst_ip, 32),
            (port, 16),
            (msg.dst_port, 16),
            (udp_length, 16),
            (Const(0, 16), 16),
        ]
        assert sum(width for _, width in fields) == 8 * _HEADERS
        assert all(len(value) == width for value, width in fields)
        # Each field is big-endian on the wire: its top byte goes first.
        head_bytes = [field_bits(value, width)[8 * (width // 8 - 1 - k):][:8]
                      for value, width in fields for k in range(width // 8)]
        # The byte goes out from a register (head_q), loaded a byte ahead:
        # head_at is the next byte's, so the 42-way select ends at a
        # register, not at the frame's output.
        head_q = Signal(8)
        first = Signal()
        # head_q and head_at load on one enable, from one value (the first
        # byte too: head_at points at it from "Waiting for a message" on):
        # the tag's arrival and the consumer's ready picking between two
        # loads ran on into head_q, 6 levels.
        # The select bit by bit, an OR of (head_at AND bit) over the bytes
        # where the bit is not a constant 0: LUT4s on ECP5, four levels for
        # the 42 bytes (ABC chained it to 5, with the bus's decode from the
        # session's kind in front: 7.35-7.59 ns on the 25F, seed 5).
        head_next = lut_select_bits(m, "head", head_at, head_bytes, instance=builds_lut4s(platform))
        head_load = Signal()
        with m.If(head_load):
            m.d.sync += [head_q.eq(head_next), head_at.eq(head_at << 1)]

        # Payloads driven in every state (a value set only where valid is
        # raised would be ANDed with the state, a LUT per bit).
        sending_head, sending_tag = Signal(), Signal()
        # The tag's last byte, a flag set a byte ahead: sink.ready (the
        # producer's "done", on into the session engine and the receiver)
        # comes from flops, not through body_index's compare.
        tag_last = Signal()
        m.d.comb += [
            siphash.sink.payload.data.eq(body_byte),
            siphash.sink.payload.last.eq(last_body),
            self.source.payload.data.eq(Mux(sending_head, head_q, Mux(sending_tag, tag[:8], body_byte))),
            self.source.payload.first.eq(first),
            self.source.payload.last.eq(sending_tag & tag_last),
        ]

        # The IPv4 header checksum adds a word a clock from a register: the
        # word select (six ways on sum_step) and the 17-bit add in one clock
        # were 8.5 ns routed (ip_sum: 10 endpoints past 137.5 MHz in the
        # 329f034 build).  The last add lands a clock after the last select,
        # long before the headers go out (the message is hashed at three
        # clocks a byte first).
        sum_word, sum_word_valid = Signal(16), Signal()
        m.d.sync += sum_word_valid.eq(0)  # the state's select (below) wins
        with m.If(sum_word_valid):
            m.d.sync += Cat(ip_sum, ip_carry).eq(ip_sum + sum_word + ip_carry)

        with OneHotFSM(m, "Waiting for a message", name="transmitter") as fsm:
            with fsm.state("Waiting for a message"):
                m.d.comb += body_clear.eq(1)
                m.d.sync += [fetch_index.eq(0), fetch_word.eq(1), fetch_more.eq(1), sum_step.eq(0),
                             head_at.eq(1),
                             ip_sum.eq(0x4500 + 0x4000 + (_TTL << 8 | 17)), ip_carry.eq(0)]
                with m.If(self.sink.valid):
                    m.d.sync += [ip_total.eq(20 + 8 + msg.length + TAG_SIZE), udp_length.eq(8 + msg.length + TAG_SIZE),
                                 length.eq(msg.length), last_index.eq(msg.length - 1),
                                 penult_index.eq(msg.length - 2), last_body.eq(0)]
                    fsm.goto("Hashing the bus byte")

            with fsm.state("Hashing the bus byte"):
                m.d.comb += [
                    fetching.eq(1),
                    siphash.sink.valid.eq(1),
                    siphash.sink.payload.data.eq(msg.bus),
                    siphash.sink.payload.last.eq(0),
                ]
                with m.If(siphash.sink.ready):
                    fsm.goto("Hashing the message")

            with fsm.state("Hashing the message"):
                m.d.comb += [fetching.eq(1), siphash.sink.valid.eq(have_byte), pop.eq(have_byte & siphash.sink.ready),
                             body_step.eq(pop)]
                with m.If(pop):
                    with m.If(last_body):
                        fsm.goto("Waiting for the tag")
                with m.If(sum_step != sum_steps):
                    m.d.sync += [sum_word.eq(sum_words[sum_step]), sum_word_valid.eq(1), sum_step.eq(sum_step + 1)]

            with fsm.state("Waiting for the tag"):
                m.d.sync += [fetch_index.eq(0), fetch_word.eq(1), fetch_more.eq(1)]  # a message is never empty
                m.d.comb += siphash.source.ready.eq(1)
                with m.If(siphash.source.valid):
                    m.d.comb += [head_load.eq(1), body_clear.eq(1)]
                    m.d.sync += [tag.eq(siphash.source.payload), last_body.eq(0), first.eq(1)]
                    fsm.goto("Sending the headers")

            with fsm.state("Sending the headers"):
                m.d.comb += [fetching.eq(1), sending_head.eq(1), self.source.valid.eq(1)]
                with m.If(self.source.ready):
                    m.d.comb += head_load.eq(1)
                    m.d.sync += first.eq(0)
                    with m.If(head_at[_HEADERS]):
                        fsm.goto("Sending the message")

            with fsm.state("Sending the message"):
                # The FIFO filled during the headers and the fetcher keeps a
                # byte a clock coming, so valid does not drop inside the frame.
                m.d.comb += [fetching.eq(1), self.source.valid.eq(have_byte),
                             pop.eq(have_byte & self.source.ready), body_step.eq(pop)]
                with m.If(pop):
                    with m.If(last_body):
                        m.d.comb += body_clear.eq(1)
                        m.d.sync += tag_last.eq(0)
                        fsm.goto("Sending the tag")

            with fsm.state("Sending the tag"):
                m.d.comb += [sending_tag.eq(1), self.source.valid.eq(1)]
                m.d.comb += body_step.eq(self.source.ready)
                with m.If(self.source.ready):
                    m.d.sync += tag.eq(tag >> 8)
                    m.d.sync += tag_last.eq(body_index == TAG_SIZE - 2)
                    with m.If(tag_last):
                        m.d.sync += [self.sent.eq(self.sent + 1), ident.eq(ident + 1)]
                        fsm.goto("Done")

            with fsm.state("Done"):
                # The frame is out: now the producer may move on.  Its ready
                # is this state's flop, a clock after the last byte (the
                # consumer's ready ran through tag_last into the session's
                # state, 7 levels).
                m.d.comb += self.sink.ready.eq(1)
                fsm.goto("Waiting for a message")
        return m
