# Ref: RFC 1624 §3 eqn. 3 (incremental checksum), RFC 791 (IPv4 header),
#      RFC 793 (TCP seq/ack, checksum), RFC 768 (UDP checksum 0 = none);
#      the patent: TRANSLATE_ADDR, TRANSLATE_PORT, ADD_TCP_OFFSETS.
"""NAT rewriter: one frame in, the same frame out with its addresses, ports,
MACs, VLAN id and TCP sequence numbers rewritten and every checksum updated
incrementally, one byte per clock.

Each frame comes with a ``decision`` (the flow's action from the table and
the header values the parser read), taken before its first byte leaves.
What changes:

* Ethernet: destination = ``action.eth_dst``, source = ``own_mac``;
  a tagged frame gets ``action.vlan_id`` when ``vlan_rewrite`` (priority bits
  kept; a tag is never added or removed, so the length never changes);
* IPv4: destination address (inbound: ``rewrite_source`` 0) or source address
  (return flow) becomes ``new_ip`` when ``translate_addr``; header checksum;
* TCP/UDP: the same side's port becomes ``new_port`` when ``translate_port``;
  with ``add_offsets`` TCP seq += ``seq_delta`` and ack += ``ack_delta``
  (mod 2**32); the L4 checksum covers the pseudo-header addresses, the port
  and seq/ack.  A UDP checksum of 0 (none) stays 0; a UDP result of 0 is sent
  as 0xFFFF.

Why a lookahead line: the IPv4 checksum (offset 10) passes before the
addresses, the TCP checksum after seq/ack, and a carry of seq + delta runs
from its last byte to its first.  The frame runs through an 8-byte line, so
every value is known a few clocks before its first byte leaves; old
addresses and ports come from the decision, old seq/ack and checksums are
captured as they enter the line.  Latency: 8 bytes plus one clock per frame
to take the decision.

Checksums follow RFC 1624 eqn. 3: the sum D of ``~old + new`` over the
changed 16-bit words is prepared early (plain sums, folded), and the new
checksum is ``~fold(~old_checksum + D)``, two registered steps once the old
checksum has entered the line.
"""

from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..dfs.forwarder import decision_layout
from ..packet import packet_layout, packet_signature

__all__ = ["Rewriter"]

_LINE = 8
_TCP, _UDP = 6, 17


def _fold(m: Module, value, name: str) -> Signal:
    """One's-complement fold of a wide sum to 16 bits (two end-around carries)."""
    once = Signal(18, name=f"{name}_fold1")
    twice = Signal(16, name=f"{name}_fold2")
    m.d.comb += [once.eq(value[:16] + value[16:]), twice.eq(once[:16] + once[16:])]
    return twice


def _words(value, count: int):
    """The 16-bit words of a value, most significant first."""
    return [value[16 * (count - 1 - i) : 16 * (count - i)] for i in range(count)]


class Rewriter(wiring.Component):
    sink: In(packet_signature(8))
    decision: In(stream.Signature(decision_layout()))
    own_mac: In(48)
    source: Out(packet_signature(8))
    frames: Out(32)

    def elaborate(self, platform):
        m = Module()
        # ---- the lookahead line ---------------------------------------------------------
        line = Array(Signal(packet_layout(8), name=f"line{k}") for k in range(_LINE))
        count = Signal(range(_LINE + 1))
        take_in = Signal()
        take_out = Signal()
        m.d.comb += [
            take_in.eq(self.sink.valid & self.sink.ready),
            take_out.eq(self.source.valid & self.source.ready),
            self.sink.ready.eq((count < _LINE) | take_out),
        ]
        for k in range(_LINE):
            with m.If(take_out):
                if k + 1 < _LINE:
                    m.d.sync += line[k].eq(line[k + 1])
            with m.If(take_in & ((count - take_out) == k)):
                m.d.sync += line[k].eq(self.sink.payload)
        m.d.sync += count.eq(count + take_in - take_out)
        has_last = Signal()
        for k in range(_LINE):
            with m.If((k < count) & line[k].last):
                m.d.comb += has_last.eq(1)

        # ---- the frame at the output: its decision --------------------------------------
        d = Signal(decision_layout())
        a = d.action
        have_decision = Signal()
        head = line[0]
        with m.If((count != 0) & head.first & ~have_decision & self.decision.valid):
            m.d.comb += self.decision.ready.eq(1)
            m.d.sync += [d.eq(self.decision.payload), have_decision.eq(1)]

        out_index = Signal(16)
        in_index = Signal(16)
        with m.If(take_in):
            m.d.sync += in_index.eq(Mux(self.sink.payload.last, 0, in_index + 1))
        with m.If(take_out):
            m.d.sync += out_index.eq(Mux(head.last, 0, out_index + 1))
            with m.If(head.last):
                m.d.sync += [have_decision.eq(0), self.frames.eq(self.frames + 1)]

        # ---- what changes ------------------------------------------------------------------
        src_side = a.rewrite_source
        new_src_ip = Mux(src_side & a.translate_addr, a.new_ip, d.src_ip)
        new_dst_ip = Mux(~src_side & a.translate_addr, a.new_ip, d.dst_ip)
        new_src_port = Mux(src_side & a.translate_port, a.new_port, d.src_port)
        new_dst_port = Mux(~src_side & a.translate_port, a.new_port, d.dst_port)
        is_tcp = d.protocol == _TCP
        is_udp = d.protocol == _UDP
        offsets = a.add_offsets & is_tcp

        # D over the address words (IPv4 header and L4 pseudo-header) and the port
        # word, prepared as soon as the decision is in (registered: plenty of time).
        old_ip_words = _words(Cat(d.dst_ip, d.src_ip), 4)
        new_ip_words = _words(Cat(new_dst_ip, new_src_ip), 4)
        d_ip = Signal(16)
        ip_sum = Signal(20)
        m.d.sync += ip_sum.eq(sum(~o[:16] for o in old_ip_words) + sum(new_ip_words))
        m.d.comb += d_ip.eq(_fold(m, ip_sum, "d_ip"))
        port_sum = Signal(19)
        m.d.sync += port_sum.eq(
            (~d.src_port)[:16] + (~d.dst_port)[:16] + new_src_port + new_dst_port + d_ip
        )
        d_l4_base = Signal(16)
        m.d.comb += d_l4_base.eq(_fold(m, port_sum, "d_l4_base"))

        # Captures as bytes enter the line (indices relative to the frame at the input).
        in_rel3 = in_index - d.l3_offset
        in_rel4 = in_index - d.l4_offset
        byte_in = self.sink.payload.data
        ip_ck_old = Signal(16)
        l4_ck_old = Signal(16)
        old_seq = Signal(32)
        old_ack = Signal(32)
        with m.If(take_in & have_decision):
            with m.If((in_rel3 == 10) | (in_rel3 == 11)):
                m.d.sync += ip_ck_old.eq(Cat(byte_in, ip_ck_old[:8]))
            with m.If((in_rel4 >= 4) & (in_rel4 < 8)):
                m.d.sync += old_seq.eq(Cat(byte_in, old_seq[:24]))
            with m.If((in_rel4 >= 8) & (in_rel4 < 12)):
                m.d.sync += old_ack.eq(Cat(byte_in, old_ack[:24]))
            l4_ck_at = Mux(is_tcp, 16, 6)
            with m.If((in_rel4 == l4_ck_at) | (in_rel4 == l4_ck_at + 1)):
                m.d.sync += l4_ck_old.eq(Cat(byte_in, l4_ck_old[:8]))

        new_seq = Signal(32)
        new_ack = Signal(32)
        m.d.sync += [new_seq.eq(old_seq + a.seq_delta), new_ack.eq(old_ack + a.ack_delta)]
        seqack_sum = Signal(20)
        m.d.sync += seqack_sum.eq(
            sum((~w)[:16] for w in _words(old_seq, 2) + _words(old_ack, 2))
            + sum(_words(new_seq, 2) + _words(new_ack, 2))
        )
        d_seqack = Signal(16)
        m.d.comb += d_seqack.eq(_fold(m, seqack_sum, "d_seqack"))
        l4_total = Signal(18)
        m.d.sync += l4_total.eq(d_l4_base + Mux(offsets, d_seqack, 0))
        d_l4 = Signal(16)
        m.d.comb += d_l4.eq(_fold(m, l4_total, "d_l4"))

        # new = ~fold(~old + D), two registered steps after the old checksum is in.
        ip_step = Signal(17)
        m.d.sync += ip_step.eq((~ip_ck_old)[:16] + d_ip)
        ip_ck_new = Signal(16)
        m.d.sync += ip_ck_new.eq(~(ip_step[:16] + ip_step[16:]))
        l4_step = Signal(17)
        m.d.sync += l4_step.eq((~l4_ck_old)[:16] + d_l4)
        l4_folded = Signal(16)
        m.d.comb += l4_folded.eq(~(l4_step[:16] + l4_step[16:]))
        l4_ck_new = Signal(16)
        with m.If(is_udp & (l4_ck_old == 0)):
            m.d.sync += l4_ck_new.eq(0)  # no checksum stays no checksum
        with m.Elif(is_udp & (l4_folded == 0)):
            m.d.sync += l4_ck_new.eq(0xFFFF)
        with m.Else():
            m.d.sync += l4_ck_new.eq(l4_folded)

        # ---- the byte that leaves ---------------------------------------------------------
        j = out_index
        rel3 = Signal(16)
        rel4 = Signal(16)
        m.d.comb += [rel3.eq(j - d.l3_offset), rel4.eq(j - d.l4_offset)]
        out = Signal(8)
        m.d.comb += out.eq(head.data)

        def byte_of(value, width_bytes, index):
            """Byte ``index`` (0 = first on the wire) of a big-endian value."""
            return Array(value[8 * (width_bytes - 1 - i) : 8 * (width_bytes - i)] for i in range(width_bytes))[index]

        with m.If(j < 6):
            m.d.comb += out.eq(byte_of(a.eth_dst, 6, j[:3]))
        with m.Elif(j < 12):
            m.d.comb += out.eq(byte_of(self.own_mac, 6, (j - 6)[:3]))
        with m.Elif(d.vlan_valid & a.vlan_rewrite & (j == 14)):
            m.d.comb += out.eq(Cat(a.vlan_id[8:12], head.data[4:8]))
        with m.Elif(d.vlan_valid & a.vlan_rewrite & (j == 15)):
            m.d.comb += out.eq(a.vlan_id[:8])
        with m.Elif((rel3 == 10) | (rel3 == 11)):
            m.d.comb += out.eq(byte_of(ip_ck_new, 2, rel3[0]))
        with m.Elif((rel3 >= 12) & (rel3 < 16)):
            m.d.comb += out.eq(byte_of(new_src_ip, 4, (rel3 - 12)[:2]))
        with m.Elif((rel3 >= 16) & (rel3 < 20)):
            m.d.comb += out.eq(byte_of(new_dst_ip, 4, (rel3 - 16)[:2]))
        with m.Elif(is_tcp | is_udp):
            with m.If(rel4 < 2):
                m.d.comb += out.eq(byte_of(new_src_port, 2, rel4[0]))
            with m.Elif(rel4 < 4):
                m.d.comb += out.eq(byte_of(new_dst_port, 2, rel4[0]))
            with m.Elif(offsets & (rel4 < 8)):
                m.d.comb += out.eq(byte_of(new_seq, 4, (rel4 - 4)[:2]))
            with m.Elif(offsets & (rel4 < 12)):
                m.d.comb += out.eq(byte_of(new_ack, 4, (rel4 - 8)[:2]))
            with m.Elif(is_tcp & ((rel4 == 16) | (rel4 == 17))):
                m.d.comb += out.eq(byte_of(l4_ck_new, 2, rel4[0]))
            with m.Elif(is_udp & ((rel4 == 6) | (rel4 == 7))):
                m.d.comb += out.eq(byte_of(l4_ck_new, 2, rel4[0]))

        m.d.comb += [
            self.source.valid.eq((count != 0) & have_decision & ((count == _LINE) | has_last)),
            self.source.payload.data.eq(out),
            self.source.payload.first.eq(head.first),
            self.source.payload.last.eq(head.last),
        ]
        return m
