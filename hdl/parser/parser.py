# Ethernet/VLAN/IPv4/ARP header parser at one byte per clock.
# Ref: IEEE 802.3 §3.2, IEEE 802.1Q §9.6, RFC 791 §3.1, RFC 1071, RFC 826,
#      RFC 793 §3.1, RFC 768, RFC 792; the reference is twinplane/model/frames.py.
"""HeaderParser: observes a packet stream, emits one ``ParsedFrame`` per frame.

The parser only watches: ``sink.ready`` is 1 every cycle except while a
classified record waits for ``meta`` (the previous record still on ``meta``,
even in the clock it is taken: ``sink.ready`` is of flops only).
``meta`` becomes valid 3 cycles after the frame's ``last`` byte is accepted:
one cycle compares the frame's lengths and fields (``check`` stage), one
runs the class priority and selects the record's fields (``meta`` register
loads at its end).

Capture: bytes are written by position into per-field registers.  ``cap``
is the byte index in the frame, 7 bits, saturating at 127 (every captured
field ends before byte 92: 18 bytes of L2, 60 of IPv4 header, 14 of TCP).
A field at L3 offset k is captured where ``cap == k + 14`` (``k + 18``
with a VLAN tag), an L4 field where ``cap - l4s`` is its offset; each such
position is a flag kept a clock ahead, so a byte register's clock enable
is one LUT of flops (the byte's valid and first, a copy of ``sink.ready``,
the flag).  The L4 start (``l4s`` = L3 offset + IHL x 4) is registered
when the IPv4 version/IHL byte arrives.  The IPv4 header checksum is summed one 16-bit
word every second header byte with an end-around carry kept in bit 16, so
the final check is a compare, not an addition.  Nothing is cleared between
frames: classification compares the frame length with each field's
position, so a field left over from an earlier frame is never used.

Rationale for the two classification cycles (timing: docs/dfs.md): the
length compares are 16-bit carry chains and the class priority is a chain
of a dozen conditions feeding the clock enables of the 200-odd-bit record;
in one cycle they made 83 MHz.  ``check`` registers each condition as a
flag; the next cycle only combines flags.  The capture registers must then
hold the frame one cycle longer: the next frame's byte 0 (``eth_dst``'s top
byte) and its length may already have landed, so ``check`` keeps a copy of
those two; every other field is written at byte 1 or later.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from twinplane.hdl.lut4 import builds_lut4s, lut4, lut_and, lut_eq_const_nibbles
from twinplane.hdl.onehot import flop_copy
from twinplane.hdl.packet import packet_signature
from twinplane.model.frames import FragmentKind, FrameClass, MalformedReason

from .layout import ParsedFrame

__all__ = ["HeaderParser"]


class HeaderParser(wiring.Component):
    """``sink``: ``packet_signature(8)``; ``meta``: ``stream.Signature(ParsedFrame)``."""

    def __init__(self, data_width: int = 8, *, zero_unused: bool = True):
        """``zero_unused``: the record is the model's, every field a class does
        not define 0.  False: fields that hold a value in some class hold the
        captured value in every class (ARP's addresses and IPv4's the same
        fields; ICMP's type/code not moved into the ports), and ``tcp_flags``
        is 0 unless the protocol is TCP.  For a consumer that reads a field
        only in the classes that define it (the DFS's forwarder): the 250-odd
        record bits then load without a class condition each."""
        if data_width != 8:
            raise ValueError(f"HeaderParser supports data_width 8 only, not {data_width!r}")
        self.data_width = data_width
        self._zero_unused = bool(zero_unused)
        super().__init__({
            "sink": In(packet_signature(data_width)),
            "meta": Out(stream.Signature(ParsedFrame)),
        })

    def elaborate(self, platform):
        m = Module()
        sink, meta = self.sink, self.meta
        byte, first = sink.payload.data, sink.payload.first
        accept = Signal()
        m.d.comb += accept.eq(sink.valid & sink.ready)

        # ---- handshake ------------------------------------------------------
        # pending: the capture registers hold a finished frame for `check`.
        # checked: `check` holds its flags, the capture registers its fields.
        pending, checked = Signal(), Signal()
        out_load = Signal()
        # The record loads only into an empty ``meta`` (not one being taken
        # this clock): ``sink.ready`` is then of the parser's flops alone.
        # The consumer's ready went through it into every capture enable and,
        # in the DFS, back through the fork and the ingress arbiter (7
        # levels).  The price is a clock when a record waits on a full ``meta``.
        # ``sink.ready`` (~checked | out_load, i.e. not both checked and
        # meta.valid) is itself a flop, loaded from their next values: with
        # it, a capture enable is one LUT of flops (the byte's valid and
        # first, ready, the position flag); of checked and meta.valid it was
        # three LUT2s (depth parser --in-dfs).
        m.d.comb += out_load.eq(checked & ~meta.valid)
        check_load = pending & (~checked | out_load)
        checked_next, valid_next = Signal(), Signal()
        ready = Signal(init=1)
        m.d.comb += [
            checked_next.eq(Mux(check_load, 1, Mux(out_load, 0, checked))),
            valid_next.eq(out_load | (meta.valid & ~meta.ready)),
            sink.ready.eq(ready),
        ]
        ready_next = ~(checked_next & valid_next)
        m.d.sync += ready.eq(ready_next)
        # Copies of ready for the capture enables, one a group of 16 byte
        # registers (``lane``): ready & valid ran to 80 enables, with ~first
        # to 34 more LUTs, two nets across the parser (depth parser --in-dfs).
        lanes = [flop_copy(m, ready_next, name=f"ready_r{i}", init=1) for i in range(4)]
        with m.If(accept & sink.payload.last):
            m.d.sync += pending.eq(1)
        with m.Elif(check_load):
            m.d.sync += pending.eq(0)
        with m.If(check_load):
            m.d.sync += checked.eq(1)
        with m.Elif(out_load):
            m.d.sync += checked.eq(0)
        with m.If(meta.ready):
            m.d.sync += meta.valid.eq(0)
        with m.If(out_load):
            m.d.sync += meta.valid.eq(1)

        # ---- byte position --------------------------------------------------
        pos = Signal(16)       # bytes accepted so far in the current frame
        # pos saturates at 0xFFFF: the test a flag kept with it (the 16-bit
        # compare ran on into pos's and flen's next values, 5 levels behind
        # parse_in's first, fanout 117, in depth dfs --in-dfs)
        pos_max = Signal()     # pos == 0xFFFF
        idx_next = Mux(first, 1, Mux(pos_max, 0xFFFF, pos + 1))
        flen = Signal(16)      # length of the finished frame
        cap = Signal(7)        # byte index for the captures, saturating
        with m.If(accept):
            m.d.sync += pos.eq(idx_next)
            m.d.sync += pos_max.eq(~first & (pos_max | (pos == 0xFFFE)))
            m.d.sync += cap.eq(Mux(first, 1, Mux(cap == 127, 127, cap + 1)))
        # flen's enable from a copy of ready of its own (from accept, shared
        # with pos's and the captures', it was 2 levels and a net across the
        # parser: 7.65 ns on the 25F, syn_c seed 4)
        flen_ready = flop_copy(m, ready_next, name="ready_flen", init=1)
        with m.If(sink.valid & flen_ready & sink.payload.last):
            m.d.sync += flen.eq(idx_next)

        # The capture enables are a byte's accept AND a flag that is set
        # while ``cap`` is at the byte's position, kept a clock ahead (a
        # shift as bytes are accepted): the compares of ``cap`` with each
        # position, the VLAN/ARP offset muxes and the L4 subtraction ran on
        # into the enables, 4-5 LUT levels with nets of fanout 40-50 (parser0/1
        # capture registers 7.5-8.5 ns routed, ~75 endpoints past 137.5 MHz in
        # the b4d3dc3 build).  ``at[k]``: ``cap == k``; ``l3at[j]``: ``cap ==
        # l3 + j``; ``l4at[k]``: ``cap - l4s == k`` (7 bits).  A byte with
        # ``first`` is byte 0 whatever ``cap``: every enable of a later byte
        # has ``accept_nf``.
        accept_nf = Signal()   # a byte accepted that is not a frame's first
        m.d.comb += accept_nf.eq(accept & ~first)
        lane_of = iter(range(1000))

        def accept_lane():
            """accept_nf for the next byte register, from its group's copy of ready."""
            return sink.valid & lanes[next(lane_of) // 16] & ~first
        at = [Signal(name=f"at{k}", init=k == 0) for k in range(18)]
        with m.If(accept):
            m.d.sync += at[0].eq(0)
            m.d.sync += [at[k].eq(Mux(first, k == 1, at[k - 1])) for k in range(1, len(at))]

        # ---- L2 -------------------------------------------------------------
        eth_dst, eth_src = Signal(48), Signal(48)
        et0, tci, et1 = Signal(16), Signal(16), Signal(16)
        vlan = Signal()        # et0 == 0x8100, kept as a flag as et0 is written
        l3 = Mux(vlan, 18, 14)

        def capture(fields, hits):
            """``fields``: (register, first byte index); bytes in network order;
            ``hits``: the position flags (``at``: byte 0 is ``first``'s)."""
            for reg, start in fields:
                nbytes = len(reg) // 8
                for k in range(nbytes):
                    lo = 8 * (nbytes - 1 - k)
                    if hits is at and start + k == 0:
                        en = accept & first
                    else:
                        en = accept_lane() & hits[start + k]
                    with m.If(en):
                        m.d.sync += reg[lo:lo + 8].eq(byte)

        capture([(eth_dst, 0), (eth_src, 6), (et0, 12), (tci, 14), (et1, 16)], at)
        # The byte's compares with constants, each its own two levels of
        # LUT4s on ECP5 (hdl/lut4.py): ABC shared the terms of the dozen
        # compares of ``byte`` and chained them, even through a carry chain
        # (parser1 l3at0/vlan 7.89-8.05 ns on the 25F at syn_j).
        # Built here, outside any If (a plain build's comb assignment inside
        # one would hold only under its condition).
        ecp5 = builds_lut4s(platform)
        constants = (0x00, 0x81, 0x08, 0x86, 0x06, 0xDD, 17, 1)
        byte_nibbles = {k: lut_eq_const_nibbles(m, f"byte_is_{k:02x}", byte, k, instance=ecp5) for k in constants}
        byte_is = {k: lut_and(m, f"byte_is_{k:02x}", byte_nibbles[k], instance=ecp5) for k in constants}

        # The EtherType bytes' compares as flags written with them (the
        # 8-bit compares of et0 ran on into vlan's and l3at[0]'s next values,
        # 6 levels behind the byte's first in depth dfs --in-dfs).
        et0_hi81, et0_lo00 = Signal(), Signal()  # et0[8:16] == 0x81, et0[0:8] == 0
        with m.If(accept_nf & at[12]):
            m.d.sync += et0_hi81.eq(byte_is[0x81])
        with m.If(accept_nf & at[13]):
            m.d.sync += et0_lo00.eq(byte_is[0x00])
        # vlan at byte 12 ((byte == 0x81) & et0_lo00) or 13 (et0_hi81 &
        # (byte == 0)), each a LUT of the compare's nibbles, then their OR.
        hi81, lo00 = byte_nibbles[0x81], byte_nibbles[0x00]
        vlan_at12 = lut4(m, "vlan_at12", [at[12], *hi81, et0_lo00], lambda a12, h0, h1, z: a12 & h0 & h1 & z,
                         instance=ecp5)
        vlan_at13 = lut4(m, "vlan_at13", [at[12], et0_hi81, *lo00], lambda a12, h, z0, z1: (a12 ^ 1) & h & z0 & z1,
                         instance=ecp5)
        with m.If(accept_nf & (at[12] | at[13])):
            m.d.sync += vlan.eq(vlan_at12 | vlan_at13)
        # The EtherTypes the classes test, a flag per byte compare written
        # with et0's and et1's bytes: ``Mux(vlan, et1, et0) == K`` ran from
        # vlan (fanout 26) into c_arp, c_ipv4 and arp_et, 5 levels.
        et_hi = {(reg, k): Signal(name=f"{reg}_hi{k:02x}") for reg in ("et0", "et1") for k in (0x08, 0x86)}
        et_lo = {(reg, k): Signal(name=f"{reg}_lo{k:02x}", init=k == 0)
                 for reg in ("et0", "et1") for k in (0x00, 0x06, 0xDD)}
        for reg, at_hi in (("et0", 12), ("et1", 16)):
            with m.If(accept_nf & at[at_hi]):
                m.d.sync += [flag.eq(byte_is[k]) for (r, k), flag in et_hi.items() if r == reg]
            with m.If(accept_nf & at[at_hi + 1]):
                m.d.sync += [flag.eq(byte_is[k]) for (r, k), flag in et_lo.items() if r == reg]

        def et_is(value):
            hi, lo = value >> 8, value & 0xFF
            return Mux(vlan, et_hi["et1", hi] & et_lo["et1", lo], et_hi["et0", hi] & et_lo["et0", lo])

        # l3at[0] is set past byte 13 (no VLAN tag) or 17; vlan changes only at
        # bytes 12 and 13 (at 13 to the tag test, at 17 it is the frame's),
        # so later flags shift with the bytes.
        l3at = [Signal(name=f"l3at{j}") for j in range(28)]
        # Its next value: a LUT of the zero compare's nibbles ("untagged at
        # 13"), then one more (three levels from the byte).
        untagged13 = lut4(m, "l3at0_untagged13", [at[13], et0_hi81, *lo00],
                          lambda a13, h, z0, z1: a13 & ((h & z0 & z1) ^ 1), instance=ecp5)
        l3at0_next = lut4(m, "l3at0_next", [first, untagged13, at[17], vlan],
                          lambda f, u, a17, v: (f ^ 1) & (u | (a17 & v)), instance=ecp5)
        with m.If(accept):
            m.d.sync += l3at[0].eq(l3at0_next)
            m.d.sync += [l3at[j].eq(~first & l3at[j - 1]) for j in range(1, len(l3at))]

        # ---- L3: IPv4 and ARP fields ---------------------------------------
        b0, tos, tlen, ff, proto = Signal(8), Signal(8), Signal(16), Signal(16), Signal(8)
        htype, ptype, hlen_a, plen_a, oper = Signal(16), Signal(16), Signal(8), Signal(8), Signal(16)
        sha = Signal(48)
        capture([(b0, 0), (tos, 1), (tlen, 2), (ff, 6), (proto, 9)], l3at)
        capture([(htype, 0), (ptype, 2), (hlen_a, 4), (plen_a, 5), (oper, 6), (sha, 8)], l3at)
        # The protocol's compares as flags written with it, so ``check`` can
        # register the IPv4 class and the L4 length test from flags (proto's
        # compares and the TCP/UDP choice were 5 levels from c_udp into meta).
        p_tcp, p_udp, p_icmp = Signal(), Signal(), Signal()
        with m.If(accept_nf & l3at[9]):
            m.d.sync += [p_tcp.eq(byte_is[6]), p_udp.eq(byte_is[17]), p_icmp.eq(byte_is[1])]
        # The record's two addresses: IPv4's source/destination or ARP's sender/
        # target protocol address, one register each (a frame is one or the
        # other; the EtherType is in by then: ``arp_et``, a clock late, is
        # right from byte 19 on, and the first address byte is L3 + 12).
        sip, dip = Signal(32), Signal(32)
        arp_et = Signal()
        m.d.sync += arp_et.eq(et_is(0x0806))
        for reg, ip_at, arp_at in [(sip, 12, 14), (dip, 16, 24)]:
            for k in range(4):
                lo = 8 * (3 - k)
                with m.If(accept_lane() & Mux(arp_et, l3at[arp_at + k], l3at[ip_at + k])):
                    m.d.sync += reg[lo:lo + 8].eq(byte)

        ihl = b0[0:4]
        hbytes = Signal(6)
        m.d.comb += hbytes.eq(ihl * 4)
        l4s = Signal(7)        # L4 start: l3 + IHL x 4, written with b0
        with m.If(accept_nf & l3at[0]):
            m.d.sync += l4s.eq(l3 + Cat(Const(0, 2), byte[0:4]))

        # rel4 = cap - l4s, a register stepped with cap (the subtraction ran
        # on into the compares of l4at and in_header, 4 levels from l4s in
        # depth parser --in-dfs; l4at3 7.51 ns, in_header 7.13 ns routed):
        # a first byte makes cap 1, the version/IHL byte (cap == l3) writes
        # l4s = cap + 4 x IHL, any other byte steps cap unless it is at 127.
        rel4 = Signal(7)
        with m.If(accept):
            with m.If(first):
                m.d.sync += rel4.eq(1 - l4s)
            with m.Elif(l3at[0]):
                m.d.sync += rel4.eq(1 - Cat(Const(0, 2), byte[0:4]))
            with m.Elif(cap != 127):
                m.d.sync += rel4.eq(rel4 + 1)

        # IPv4 header checksum: one's complement sum of the IHL*4 header bytes,
        # the carry out of bit 15 added back with the next word.  Summed at
        # the odd bytes (``hi`` holds the even ones) inside the header:
        # ``in_header`` (l3 < cap < l4s; at the odd bytes the same as
        # l3 <= cap) a flag kept a clock ahead like the capture positions
        # (the compares with l3 and l4s ran on into the sum's enable): set
        # past the version/IHL byte unless IHL is 0, cleared as cap reaches
        # l4s (l4s is written at byte l3, so fresh by then).
        acc = Signal(17)
        hi = Signal(8)
        in_header = Signal()
        with m.If(accept):
            m.d.sync += in_header.eq(~first & Mux(l3at[0], byte[0:4] != 0, in_header & (rel4 != 127)))
        with m.If(accept & ~first & ~cap[0]):
            m.d.sync += hi.eq(byte)
        # The clear is a reset over the sum's enable (the flops' LSR), not a
        # mux behind the carry chain (7.29 ns on the 25F, syn_a seed 5).
        with m.If(accept & first):
            m.d.sync += acc.eq(0)
        with m.Elif(accept & cap[0] & in_header):
            # (acc[0:16] + word + acc[16]) in one carry chain: the carry
            # enters through a bottom bit that is 1 + acc[16].
            total = Cat(Const(1, 1), acc[0:16]) + Cat(acc[16], byte, hi)
            m.d.sync += acc.eq(total[1:18])

        # ---- L4 -------------------------------------------------------------
        # l4at[k] = (rel4 == k) next clock: a first byte makes cap 1; the IPv4
        # version/IHL byte (cap == l3) writes l4s = l3 + 4 x IHL, so rel4
        # becomes 1 - 4 x IHL (1 only for IHL 0); any other byte steps cap
        # (at 127 it stays, but l4s <= 78 keeps rel4 >= 49 there, and l4s is
        # written before cap can get to 127).
        l4at = {k: Signal(name=f"l4at{k}", init=k == 0) for k in (0, 1, 2, 3, 13)}
        with m.If(accept):
            for k, flag in l4at.items():
                m.d.sync += flag.eq(Mux(first, l4s == (1 - k) % 128,
                                        Mux(l3at[0], (k == 1) & (byte[0:4] == 0), rel4 == (k - 1) % 128)))
        sport, dport, tflags = Signal(16), Signal(16), Signal(8)
        capture([(sport, 0), (dport, 2), (tflags, 13)], l4at)

        # ---- check: every condition of the classification, registered -----
        c = {name: Signal(name=f"c_{name}") for name in (
            "l2_short", "arp", "ipv6", "ipv4", "arp_short", "arp_ok", "ipv6_short", "ipv4_short",
            "bad_version", "ihl_small", "l3_short", "tlen_small", "tlen_beyond", "sum_ok",
            "later", "more", "tcp", "l4_short")}
        c_ip_klass = Signal(FrameClass)  # the class of an IPv4 frame that passes every check
        c_flen = Signal(16)
        c_dst_hi = Signal(8)
        et = Signal(16)
        m.d.comb += et.eq(Mux(vlan, et1, et0))
        version = b0[4:8]
        # Sums of captured fields, registered every cycle: they only matter for
        # frames long enough that the fields were written well before the end.
        tlen_end = Signal(17)  # where the IPv4 packet ends in the frame
        tlen_l4 = Signal(17)   # IPv4 total length minus the header, two's complement
        m.d.sync += [tlen_end.eq(tlen + l3), tlen_l4.eq(tlen - hbytes)]
        # Every compare below with avail runs only where flen >= l3 (l2_short is
        # checked first), so flen < l3 + K stands for avail < K.
        s_ok = Mux(acc[16], acc[0:16] == 0xFFFE, acc[0:16] == 0xFFFF)
        with m.If(check_load):
            m.d.sync += [
                c_flen.eq(flen), c_dst_hi.eq(eth_dst[40:48]),
                c["l2_short"].eq((flen < 14) | (vlan & (flen < 18))),
                c["arp"].eq(et_is(0x0806)), c["ipv6"].eq(et_is(0x86DD)), c["ipv4"].eq(et_is(0x0800)),
                c["arp_short"].eq(flen < Mux(vlan, 18 + 28, 14 + 28)),
                c["arp_ok"].eq((htype == 1) & (ptype == 0x0800) & (hlen_a == 6) & (plen_a == 4)),
                c["ipv6_short"].eq(flen < Mux(vlan, 18 + 40, 14 + 40)),
                c["ipv4_short"].eq(flen < Mux(vlan, 18 + 20, 14 + 20)),
                c["bad_version"].eq(version != 4),
                c["ihl_small"].eq(ihl < 5),
                c["l3_short"].eq(flen < l4s),
                c["tlen_small"].eq(tlen_l4[16]),
                c["tlen_beyond"].eq(tlen_end > flen),
                # the sum alone: the header checks it also needs are flags of
                # their own (with them in, 8.3-8.6 ns routed in the 6a07163 build)
                c["sum_ok"].eq(s_ok),
                # TCP's header needs 20 bytes, UDP's and ICMP's 8 (unless ``later``)
                c["l4_short"].eq(Mux(p_tcp, tlen_l4.as_signed() < 20, (p_udp | p_icmp) & (tlen_l4.as_signed() < 8))),
                c["later"].eq(ff[0:13] != 0), c["more"].eq(ff[13]),
                c["tcp"].eq(p_tcp),
                c_ip_klass.eq(Mux(p_tcp, FrameClass.IPV4_TCP, Mux(p_udp, FrameClass.IPV4_UDP,
                                  Mux(p_icmp, FrameClass.IPV4_ICMP, FrameClass.IPV4_OTHER)))),
            ]

        # ---- classify: priorities as the model, into the meta register -----
        rec = Signal(ParsedFrame)
        self._classify(m, rec, c, c_ip_klass, zero_unused=self._zero_unused, flen=c_flen, vlan=vlan, l3=l3, tci=tci, et=et,
                       eth_dst=Cat(eth_dst[0:40], c_dst_hi), eth_src=eth_src, tos=tos,
                       tlen=tlen, proto=proto, sip=sip, dip=dip, ihl=ihl, l4s=l4s, oper=oper,
                       sha=sha, sport=sport, dport=dport, tflags=tflags)
        # The record's 200-odd flops load while ``meta`` is empty, not on
        # ``out_load``: a payload is read only once valid, and ``out_load``
        # (valid set) falls in such a clock, so the last load is the record
        # that goes out.  Their enable is then a flop (``meta_empty``, which
        # mirrors ~valid) instead of a LUT driving hundreds of loads (the
        # record was 8.1-8.3 ns routed, 76 endpoints past 137.5 MHz on the two
        # parsers in the 329f034 build).
        meta_empty = Signal(init=1)
        with m.If(meta.ready):
            m.d.sync += meta_empty.eq(1)
        with m.If(out_load):
            m.d.sync += meta_empty.eq(0)
        with m.If(meta_empty):
            m.d.sync += meta.payload.eq(rec)
        return m

    @staticmethod
    def _classify(m, rec, c, ip_klass, *, zero_unused, flen, vlan, l3, tci, et, eth_dst, eth_src, tos, tlen, proto,
                  sip, dip, ihl, l4s, oper, sha, sport, dport, tflags):
        """Combinational record from the check flags and the capture registers."""
        def malformed(reason):
            m.d.comb += [rec.klass.eq(FrameClass.MALFORMED), rec.malformed_reason.eq(reason)]

        # Fields set whatever the class when ``zero_unused`` is off (see __init__).
        free = {"eth_dst": eth_dst, "eth_src": eth_src, "ethertype": et, "arp_oper": oper, "arp_sha": sha,
                "src_ip": sip, "dst_ip": dip,
                "tos": tos, "ip_total_length": tlen, "protocol": proto, "l4_offset": l4s,
                "src_port": sport, "dst_port": dport, "tcp_flags": Mux(c["tcp"], tflags, 0)}
        if not zero_unused:
            m.d.comb += [rec[name].eq(value) for name, value in free.items()]

        def put(**fields):
            m.d.comb += [rec[name].eq(value) for name, value in fields.items() if zero_unused or name not in free]

        m.d.comb += rec.frame_length.eq(flen)
        with m.If(c["l2_short"]):
            malformed(MalformedReason.TRUNCATED_L2)
        with m.Else():
            put(eth_dst=eth_dst, eth_src=eth_src, ethertype=et)
            m.d.comb += [
                rec.vlan.eq(vlan), rec.vlan_id.eq(Mux(vlan, tci[0:12], 0)), rec.l3_offset.eq(l3),
                rec.klass.eq(FrameClass.OTHER),
            ]
            with m.If(c["arp"]):
                with m.If(c["arp_short"]):
                    malformed(MalformedReason.TRUNCATED_L3)
                with m.Elif(c["arp_ok"]):
                    m.d.comb += rec.klass.eq(FrameClass.ARP)
                    put(arp_oper=oper, arp_sha=sha, src_ip=sip, dst_ip=dip)
            with m.Elif(c["ipv6"]):
                with m.If(c["ipv6_short"]):
                    malformed(MalformedReason.TRUNCATED_L3)
                with m.Else():
                    m.d.comb += rec.klass.eq(FrameClass.IPV6)
            with m.Elif(c["ipv4"]):
                later = c["later"]
                m.d.comb += rec.ip_checksum_ok.eq(c["sum_ok"] & ~c["ipv4_short"] & ~c["bad_version"]
                                                  & ~c["ihl_small"] & ~c["l3_short"])
                with m.If(c["ipv4_short"]):
                    malformed(MalformedReason.TRUNCATED_L3)
                with m.Elif(c["bad_version"]):
                    malformed(MalformedReason.BAD_VERSION)
                with m.Elif(c["ihl_small"]):
                    malformed(MalformedReason.IHL_TOO_SMALL)
                with m.Elif(c["l3_short"]):
                    malformed(MalformedReason.TRUNCATED_L3)
                with m.Elif(c["tlen_small"]):
                    malformed(MalformedReason.TOTAL_LENGTH_TOO_SMALL)
                with m.Elif(c["tlen_beyond"]):
                    malformed(MalformedReason.TOTAL_LENGTH_BEYOND_FRAME)
                with m.Elif(~c["sum_ok"]):  # the header checks above passed
                    malformed(MalformedReason.BAD_IP_CHECKSUM)
                with m.Elif(~later & c["l4_short"]):
                    malformed(MalformedReason.TRUNCATED_L4)
                with m.Else():
                    m.d.comb += [
                        rec.ip_options.eq(ihl > 5),
                        rec.fragment.eq(Mux(later, FragmentKind.LATER,
                                            Mux(c["more"], FragmentKind.FIRST, FragmentKind.NONE))),
                        rec.klass.eq(ip_klass),
                    ]
                    put(tos=tos, ip_total_length=tlen, protocol=proto, src_ip=sip, dst_ip=dip, l4_offset=l4s)
                    with m.If(ip_klass == FrameClass.IPV4_TCP):
                        with m.If(~later):
                            put(src_port=sport, dst_port=dport, tcp_flags=tflags)
                    with m.Elif(ip_klass == FrameClass.IPV4_UDP):
                        with m.If(~later):
                            put(src_port=sport, dst_port=dport)
                    with m.Elif(ip_klass == FrameClass.IPV4_ICMP):
                        with m.If(~later):
                            put(src_port=sport[8:16], dst_port=sport[0:8])
