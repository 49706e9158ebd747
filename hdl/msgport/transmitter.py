# Ref: RFC 791 (IPv4 header, checksum), RFC 768 (UDP; checksum 0 = none over IPv4),
#      docs/protocol.md (tag over bus byte | header | body).
"""Message transmitter: wraps one SSMB/CSMB message from the DFS into an
Ethernet/IPv4/UDP frame with its SipHash-2-4 tag.

Interface
---------
``sink``      In(stream of :func:`transmit_message_layout`): one message, its
              signed bytes left-aligned in ``raw``, and its destination.
``key``       In(128): the shared key (``int.from_bytes(key16, "little")``).
``own_mac``, ``own_ip``
              In: the DFS's addresses on the internal side (frame source).
``source``    Out(packet stream): the frame, without FCS (the MAC adds it).
``sent``      Out(32): frames sent.

Two passes over the message: first its bytes go through the SipHash core,
then the frame goes out.  The tag is needed at the end of the frame and a MAC
must not see a gap inside a frame, so hashing cannot overlap sending.  The
message register rotates a byte per clock: ``length`` rotations feed the hash
and the remaining ones bring it back in place, so one register serves both
passes without a barrel shifter.  A message costs about
``MAX_SENT_BYTES + 50 + length + 8`` cycles: well over a million messages a
second at 125 MHz.

The UDP checksum is 0 ("no checksum", allowed over IPv4 by RFC 768): the tag
protects the payload end to end.  The IPv4 header checksum is computed from
the header fields while the message is hashed.
"""

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from twinplane.protocol.codes import CSMB_UDP_PORT, SSMB_UDP_PORT
from twinplane.protocol.messages import TAG_SIZE

from ..crypto.siphash import SipHash24
from ..packet import packet_signature
from .layout import MAX_SENT_BYTES, transmit_message_layout

__all__ = ["MessageTransmitter"]

_HEADERS = 14 + 20 + 8  # Ethernet, IPv4, UDP
_TTL = 64


class MessageTransmitter(wiring.Component):
    def __init__(self):
        super().__init__(
            {
                "sink": In(stream.Signature(transmit_message_layout())),
                "key": In(128),
                "own_mac": In(48),
                "own_ip": In(32),
                "source": Out(packet_signature(8)),
                "sent": Out(32),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.siphash = siphash = SipHash24()
        m.d.comb += siphash.key.eq(self.key)

        msg = Signal.like(self.sink.payload)
        rotations = Signal(range(MAX_SENT_BYTES + 1))
        tag = Signal(64)
        ident = Signal(16)
        ip_total = Signal(16)
        ip_sum = Signal(20)
        headers = Signal(8 * _HEADERS)
        index = Signal(range(_HEADERS + MAX_SENT_BYTES + TAG_SIZE + 1))
        frame_length = Signal.like(index)

        # Folding the checksum's carries is idempotent once folded, and the
        # hash takes more than the two clocks a 20-bit sum needs.
        folded = ip_sum[:16] + ip_sum[16:]
        fold = ip_sum.eq(folded[:16] + folded[16:])

        top_byte = msg.raw[-8:]
        rotate = msg.raw.eq(Cat(top_byte, msg.raw[:-8]))

        with m.FSM(name="transmitter"):
            with m.State("Waiting for a message"):
                m.d.comb += self.sink.ready.eq(1)
                with m.If(self.sink.valid):
                    m.d.sync += [
                        msg.eq(self.sink.payload),
                        rotations.eq(0),
                        ip_total.eq(20 + 8 + self.sink.payload.length + TAG_SIZE),
                    ]
                    m.next = "Hashing the bus byte"

            with m.State("Hashing the bus byte"):
                m.d.comb += [siphash.sink.valid.eq(1), siphash.sink.payload.data.eq(msg.bus)]
                with m.If(siphash.sink.ready):
                    m.next = "Hashing the message"

            with m.State("Hashing the message"):
                m.d.comb += [
                    siphash.sink.valid.eq(1),
                    siphash.sink.payload.data.eq(top_byte),
                    siphash.sink.payload.last.eq(rotations == msg.length - 1),
                ]
                with m.If(siphash.sink.ready):
                    m.d.sync += [rotate, rotations.eq(rotations + 1)]
                    with m.If(rotations == msg.length - 1):
                        m.next = "Rotating back"
                # The IPv4 header checksum, meanwhile: a plain sum, folded below.
                m.d.sync += ip_sum.eq(
                    0x4500
                    + ip_total
                    + ident
                    + 0x4000
                    + (_TTL << 8 | 17)
                    + self.own_ip[16:]
                    + self.own_ip[:16]
                    + msg.dst_ip[16:]
                    + msg.dst_ip[:16]
                )

            with m.State("Rotating back"):
                with m.If(rotations == MAX_SENT_BYTES):
                    m.next = "Waiting for the tag"
                with m.Else():
                    m.d.sync += [rotate, rotations.eq(rotations + 1)]
                m.d.sync += fold

            with m.State("Waiting for the tag"):
                m.d.sync += fold
                m.d.comb += siphash.source.ready.eq(1)
                with m.If(siphash.source.valid):
                    port = Signal(16)
                    m.d.comb += port.eq(SSMB_UDP_PORT)
                    with m.If(msg.bus):
                        m.d.comb += port.eq(CSMB_UDP_PORT)
                    # Headers as a big-endian number: the first byte on top.
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
                        (~ip_sum[:16], 16),
                        (self.own_ip, 32),
                        (msg.dst_ip, 32),
                        (port, 16),
                        (msg.dst_port, 16),
                        ((ip_total - 20)[:16], 16),
                        (Const(0, 16), 16),
                    ]
                    m.d.sync += [
                        headers.eq(Cat(*(value for value, _ in reversed(fields)))),
                        tag.eq(siphash.source.payload),
                        index.eq(0),
                        frame_length.eq(_HEADERS + msg.length + TAG_SIZE),
                        ident.eq(ident + 1),
                    ]
                    assert sum(width for _, width in fields) == 8 * _HEADERS
                    assert all(len(value) == width for value, width in fields)
                    m.next = "Sending"

            with m.State("Sending"):
                data = self.source.payload.data
                with m.If(index < _HEADERS):
                    m.d.comb += data.eq(headers[-8:])
                with m.Elif(index < _HEADERS + msg.length):
                    m.d.comb += data.eq(top_byte)
                with m.Else():
                    m.d.comb += data.eq(tag[:8])
                m.d.comb += [
                    self.source.valid.eq(1),
                    self.source.payload.first.eq(index == 0),
                    self.source.payload.last.eq(index == frame_length - 1),
                ]
                with m.If(self.source.ready):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index < _HEADERS):
                        m.d.sync += headers.eq(headers << 8)
                    with m.Elif(index < _HEADERS + msg.length):
                        m.d.sync += rotate
                    with m.Else():
                        m.d.sync += tag.eq(tag >> 8)
                    with m.If(index == frame_length - 1):
                        m.d.sync += self.sent.eq(self.sent + 1)
                        m.next = "Waiting for a message"
        return m
