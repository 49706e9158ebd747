# Ethernet/VLAN/IPv4/ARP header parser at one byte per clock.
# Ref: IEEE 802.3 §3.2, IEEE 802.1Q §9.6, RFC 791 §3.1, RFC 1071, RFC 826,
#      RFC 793 §3.1, RFC 768, RFC 792; the reference is twinplane/model/frames.py.
"""HeaderParser: observes a packet stream, emits one ``ParsedFrame`` per frame.

The parser only watches: ``sink.ready`` is 1 every cycle except while the
finished record of a frame cannot be handed over because the previous one
still waits unaccepted on ``meta``.  ``meta`` becomes valid 2 cycles after
the frame's ``last`` byte is accepted (one cycle to classify, one for the
output register).

Structure: bytes are captured by position into per-field registers
(``idx`` = byte index in the frame, ``rel`` = index from the L3 start,
``rel4`` = index from the L4 start, all modulo 2**16 so a byte before a
region has a huge index and matches no case).  The IPv4 header checksum is
summed on the fly, one 16-bit word every second byte while ``rel < IHL*4``,
end-around carries folded at the end.  Nothing is cleared between frames:
classification compares the frame length with each field's position, so a
field left over from an earlier frame is never used.  In the cycle after
``last`` the registers still hold the finished frame even if the next frame's
first byte is accepted (it only lands at the clock edge), which is what lets
frames follow back to back.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from twinplane.hdl.packet import packet_signature
from twinplane.model.frames import FragmentKind, FrameClass, MalformedReason

from .layout import ParsedFrame

__all__ = ["HeaderParser"]



class HeaderParser(wiring.Component):
    """``sink``: ``packet_signature(8)``; ``meta``: ``stream.Signature(ParsedFrame)``."""

    def __init__(self, data_width: int = 8):
        if data_width != 8:
            raise ValueError(f"HeaderParser supports data_width 8 only, not {data_width!r}")
        self.data_width = data_width
        super().__init__({
            "sink": In(packet_signature(data_width)),
            "meta": Out(stream.Signature(ParsedFrame)),
        })

    def elaborate(self, platform):
        m = Module()
        sink, meta = self.sink, self.meta
        byte = sink.payload.data
        accept = Signal()
        m.d.comb += accept.eq(sink.valid & sink.ready)

        # ---- byte position --------------------------------------------------
        pos = Signal(16)       # bytes accepted so far in the current frame
        idx = Signal(16)
        m.d.comb += idx.eq(Mux(sink.payload.first, 0, pos))
        idx_next = Mux(idx == 0xFFFF, 0xFFFF, idx + 1)
        flen = Signal(16)      # length of the finished frame
        with m.If(accept):
            m.d.sync += pos.eq(idx_next)
            with m.If(sink.payload.last):
                m.d.sync += flen.eq(idx_next)

        def capture(switch_value, fields):
            """``fields``: (register, first byte index); bytes in network order."""
            with m.Switch(switch_value):
                for reg, start in fields:
                    nbytes = len(reg) // 8
                    for k in range(nbytes):
                        with m.Case(start + k):
                            lo = 8 * (nbytes - 1 - k)
                            m.d.sync += reg[lo:lo + 8].eq(byte)

        # ---- L2 -------------------------------------------------------------
        eth_dst, eth_src = Signal(48), Signal(48)
        et0, tci, et1 = Signal(16), Signal(16), Signal(16)
        vlan = Signal()
        m.d.comb += vlan.eq(et0 == 0x8100)
        l3 = Signal(5)
        m.d.comb += l3.eq(Mux(vlan, 18, 14))
        with m.If(accept):
            capture(idx, [(eth_dst, 0), (eth_src, 6), (et0, 12), (tci, 14), (et1, 16)])

        # ---- L3: IPv4 and ARP fields ---------------------------------------
        rel = Signal(16)
        m.d.comb += rel.eq(idx - l3)
        b0, tos, tlen, ff, proto = Signal(8), Signal(8), Signal(16), Signal(16), Signal(8)
        sip, dip = Signal(32), Signal(32)
        htype, ptype, hlen_a, plen_a, oper = Signal(16), Signal(16), Signal(8), Signal(8), Signal(16)
        sha, spa, tpa = Signal(48), Signal(32), Signal(32)
        with m.If(accept):
            capture(rel, [(b0, 0), (tos, 1), (tlen, 2), (ff, 6), (proto, 9), (sip, 12), (dip, 16)])
            capture(rel, [(htype, 0), (ptype, 2), (hlen_a, 4), (plen_a, 5), (oper, 6),
                          (sha, 8), (spa, 14), (tpa, 24)])

        ihl = b0[0:4]
        hbytes = Signal(6)
        m.d.comb += hbytes.eq(ihl * 4)

        # IPv4 header checksum: one's complement sum of the IHL*4 header bytes.
        acc = Signal(21)   # 30 words of 0xFFFF fit; carries folded at the end
        hi = Signal(8)
        with m.If(accept):
            with m.If(sink.payload.first):
                m.d.sync += acc.eq(0)
            with m.Elif(~rel[0]):
                m.d.sync += hi.eq(byte)
            with m.Elif(rel < hbytes):
                m.d.sync += acc.eq(acc + Cat(byte, hi))

        # ---- L4 -------------------------------------------------------------
        rel4 = Signal(16)
        m.d.comb += rel4.eq(rel - hbytes)
        sport, dport, tflags = Signal(16), Signal(16), Signal(8)
        with m.If(accept):
            capture(rel4, [(sport, 0), (dport, 2), (tflags, 13)])

        # ---- finish: classify once the last byte is in ----------------------
        pending = Signal()
        out_busy = Signal()
        m.d.comb += [
            out_busy.eq(meta.valid & ~meta.ready),
            sink.ready.eq(~(pending & out_busy)),
        ]
        with m.If(meta.ready):
            m.d.sync += meta.valid.eq(0)

        rec = Signal(ParsedFrame)
        self._classify(m, rec, flen=flen, vlan=vlan, l3=l3, tci=tci, et0=et0, et1=et1,
                       eth_dst=eth_dst, eth_src=eth_src, b0=b0, tos=tos, tlen=tlen, ff=ff,
                       proto=proto, sip=sip, dip=dip, hbytes=hbytes, acc=acc,
                       htype=htype, ptype=ptype, hlen_a=hlen_a, plen_a=plen_a, oper=oper,
                       sha=sha, spa=spa, tpa=tpa, sport=sport, dport=dport, tflags=tflags)

        with m.If(pending & ~out_busy):
            m.d.sync += [meta.payload.eq(rec), meta.valid.eq(1)]
        with m.If(accept & sink.payload.last):
            m.d.sync += pending.eq(1)
        with m.Elif(~out_busy):
            m.d.sync += pending.eq(0)
        return m

    @staticmethod
    def _classify(m, rec, *, flen, vlan, l3, tci, et0, et1, eth_dst, eth_src, b0, tos, tlen,
                  ff, proto, sip, dip, hbytes, acc, htype, ptype, hlen_a, plen_a, oper, sha,
                  spa, tpa, sport, dport, tflags):
        """Combinational record from the capture registers; priorities as the model."""
        avail = Signal(16)
        et = Signal(16)
        m.d.comb += [avail.eq(flen - l3), et.eq(Mux(vlan, et1, et0))]
        version, ihl = b0[4:8], b0[0:4]

        s1 = Signal(17)
        s2 = Signal(17)
        m.d.comb += [s1.eq(acc[0:16] + acc[16:]), s2.eq(s1[0:16] + s1[16])]
        csum_ok = Signal()
        m.d.comb += csum_ok.eq((version == 4) & (ihl >= 5) & (avail >= 20) & (avail >= hbytes)
                               & (s2[0:16] == 0xFFFF))

        offset, more = ff[0:13], ff[13]
        later = offset != 0
        need = Signal(6)
        with m.Switch(proto):
            with m.Case(6):
                m.d.comb += need.eq(20)
            with m.Case(17, 1):
                m.d.comb += need.eq(8)

        def malformed(reason):
            m.d.comb += [rec.klass.eq(FrameClass.MALFORMED), rec.malformed_reason.eq(reason)]

        m.d.comb += rec.frame_length.eq(flen)
        with m.If((flen < 14) | (vlan & (flen < 18))):
            malformed(MalformedReason.TRUNCATED_L2)
        with m.Else():
            m.d.comb += [
                rec.eth_dst.eq(eth_dst), rec.eth_src.eq(eth_src), rec.ethertype.eq(et),
                rec.vlan.eq(vlan), rec.vlan_id.eq(Mux(vlan, tci[0:12], 0)), rec.l3_offset.eq(l3),
                rec.klass.eq(FrameClass.OTHER),
            ]
            with m.Switch(et):
                with m.Case(0x0806):
                    with m.If(avail < 28):
                        malformed(MalformedReason.TRUNCATED_L3)
                    with m.Elif((htype == 1) & (ptype == 0x0800) & (hlen_a == 6) & (plen_a == 4)):
                        m.d.comb += [
                            rec.klass.eq(FrameClass.ARP), rec.arp_oper.eq(oper), rec.arp_sha.eq(sha),
                            rec.src_ip.eq(spa), rec.dst_ip.eq(tpa),
                        ]
                with m.Case(0x86DD):
                    with m.If(avail < 40):
                        malformed(MalformedReason.TRUNCATED_L3)
                    with m.Else():
                        m.d.comb += rec.klass.eq(FrameClass.IPV6)
                with m.Case(0x0800):
                    m.d.comb += rec.ip_checksum_ok.eq(csum_ok)
                    with m.If(avail < 20):
                        malformed(MalformedReason.TRUNCATED_L3)
                    with m.Elif(version != 4):
                        malformed(MalformedReason.BAD_VERSION)
                    with m.Elif(ihl < 5):
                        malformed(MalformedReason.IHL_TOO_SMALL)
                    with m.Elif(avail < hbytes):
                        malformed(MalformedReason.TRUNCATED_L3)
                    with m.Elif(tlen < hbytes):
                        malformed(MalformedReason.TOTAL_LENGTH_TOO_SMALL)
                    with m.Elif(tlen > avail):
                        malformed(MalformedReason.TOTAL_LENGTH_BEYOND_FRAME)
                    with m.Elif(~csum_ok):
                        malformed(MalformedReason.BAD_IP_CHECKSUM)
                    with m.Elif(~later & (tlen < hbytes + need)):
                        malformed(MalformedReason.TRUNCATED_L4)
                    with m.Else():
                        m.d.comb += [
                            rec.ip_options.eq(ihl > 5),
                            rec.fragment.eq(Mux(later, FragmentKind.LATER,
                                                Mux(more, FragmentKind.FIRST, FragmentKind.NONE))),
                            rec.tos.eq(tos), rec.ip_total_length.eq(tlen), rec.protocol.eq(proto),
                            rec.src_ip.eq(sip), rec.dst_ip.eq(dip), rec.l4_offset.eq(l3 + hbytes),
                        ]
                        with m.Switch(proto):
                            with m.Case(6):
                                m.d.comb += rec.klass.eq(FrameClass.IPV4_TCP)
                                with m.If(~later):
                                    m.d.comb += [rec.src_port.eq(sport), rec.dst_port.eq(dport),
                                                 rec.tcp_flags.eq(tflags)]
                            with m.Case(17):
                                m.d.comb += rec.klass.eq(FrameClass.IPV4_UDP)
                                with m.If(~later):
                                    m.d.comb += [rec.src_port.eq(sport), rec.dst_port.eq(dport)]
                            with m.Case(1):
                                m.d.comb += rec.klass.eq(FrameClass.IPV4_ICMP)
                                with m.If(~later):
                                    m.d.comb += [rec.src_port.eq(sport[8:16]), rec.dst_port.eq(sport[0:8])]
                            with m.Default():
                                m.d.comb += rec.klass.eq(FrameClass.IPV4_OTHER)
