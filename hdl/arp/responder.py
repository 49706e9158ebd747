# Ref: RFC 826 (ARP), RFC 5227 §2.1.1 (a reply is unicast to the requester).
"""ARP responder: answers "who has A?" for the DFS's own address and for
virtual addresses (unless NOARP_MODE) -- the patent: "the controller acts as
a host and advertises the address".

The DFS decides *whether* to answer (it knows its address and asks the
virtual-server CAM); this block only builds the reply frame:

    Ethernet  dst = requester MAC, src = our MAC, type 0x0806
    ARP       htype 1, ptype 0x0800, hlen 6, plen 4, oper 2 (reply),
              sha = our MAC, spa = the address asked for,
              tha = requester MAC, tpa = requester address
    padding   to 60 bytes (the MAC adds the FCS)
"""

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from ..onehot import onehot_mux
from ..packet import packet_signature
from ..stream.register import PipelineRegister

__all__ = ["ArpResponder", "arp_request_layout"]

_FRAME_BYTES = 60
_ARP_BYTES = 14 + 28


def arp_request_layout() -> data.StructLayout:
    """What is needed to answer: who asked, and for which address."""
    return data.StructLayout({"requester_mac": 48, "requester_ip": 32, "target_ip": 32})


class ArpResponder(wiring.Component):
    request: In(stream.Signature(arp_request_layout()))
    own_mac: In(48)
    source: Out(packet_signature(8))
    replies: Out(32)

    def elaborate(self, platform):
        m = Module()
        # The request is kept (112 bits) and each byte is picked by its index:
        # cheaper than shifting a 480-bit frame register.
        req = Signal(arp_request_layout())
        index = Signal(6)  # 0..59
        busy = Signal()

        # The frame as a big-endian number: first byte on top.
        fields = [
            req.requester_mac, self.own_mac, Const(0x0806, 16),
            Const(1, 16), Const(0x0800, 16), Const(6, 8), Const(4, 8), Const(2, 16),
            self.own_mac, req.target_ip, req.requester_mac, req.requester_ip,
        ]
        assert sum(len(f) for f in fields) == 8 * _ARP_BYTES
        # Bytes in wire order, then zero padding.
        frame = Cat(*(f.word_select(len(f) // 8 - 1 - k, 8) for f in fields for k in range(len(f) // 8)),
                    Const(0, 8 * (64 - _ARP_BYTES)))
        # The byte in two registered steps: each group of eight bytes has its
        # byte at the index picked a byte ahead (``at``, by ``low_1h``, the
        # index's next low bits), and a one-hot flag a group (``in_group``)
        # picks one of those flops.  A 64-way mux on the index ran 7 levels
        # into the output register (a 3-level pick, unregistered, still 7).
        # The byte within a group by a one-hot flag a byte (``low_1h``,
        # rotated), an AND-OR: by the binary low bits, the 8-way mux ran
        # 5 levels from them (fanout 84) into ``at0`` (routed 7.25 ns,
        # build 9b18dc6).
        groups = [frame[64 * g:64 * g + 64] for g in range((_ARP_BYTES + 7) // 8)]  # the rest is padding
        at = [Signal(8, name=f"at{g}") for g in range(len(groups))]
        in_group = Signal(len(groups))
        low_1h = Signal(8)  # the index's next low bits, one-hot
        byte = Signal(8)
        m.d.comb += byte.eq(onehot_mux(in_group, at))

        m.d.comb += self.request.ready.eq(~busy)
        with m.If(self.request.valid & ~busy):
            m.d.sync += [req.eq(self.request.payload), index.eq(0), busy.eq(1), in_group.eq(1),
                         at[0].eq(self.request.payload.requester_mac[40:48]),  # the frame's byte 0
                         low_1h.eq(0b10)]

        # The byte ends in a register with nothing but its enable in
        # front (a skid buffer's spare-or-input mux made it 7 levels from
        # ``index``); the consumer's ready passes (the DFS's egress arbiter:
        # its registered grant and its output register's flops).
        m.submodules.out_stage = out_stage = PipelineRegister(packet_signature(8))
        connect(m, out_stage.source, flipped(self.source))
        out = out_stage.sink
        m.d.comb += [
            out.valid.eq(busy),
            out.payload.data.eq(byte),
            out.payload.first.eq(index == 0),
            out.payload.last.eq(index == _FRAME_BYTES - 1),
        ]
        with m.If(out.valid & out.ready):
            m.d.sync += index.eq(index + 1)
            m.d.sync += [a.eq(onehot_mux(low_1h, [group.word_select(k, 8) for k in range(8)]))
                         for a, group in zip(at, groups, strict=True)]
            m.d.sync += low_1h.eq(low_1h.rotate_left(1))
            with m.If(index[:3] == 7):
                m.d.sync += in_group.eq(in_group << 1)  # none past the last: padding
            with m.If(index == _FRAME_BYTES - 1):
                m.d.sync += [busy.eq(0), self.replies.eq(self.replies + 1)]
        return m
