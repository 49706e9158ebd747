# Command-driven NAT rewriter: one frame in, the same frame out rewritten.
# Ref: RFC 1624 §3 eqn. 3 (incremental checksum), RFC 791 (IPv4 header),
#      RFC 793 (TCP seq/ack, checksum), RFC 768 (UDP checksum 0 = none);
#      model: twinplane.model.rewrite.rewrite_frame.
"""``CommandRewriter``: the rewrite of :mod:`twinplane.model.rewrite`, one
byte per clock, driven by a ``RewriteCommand`` per frame (both sides can be
translated at once, the source MAC comes with the command, a frame can be
dropped, a later fragment gets L3 changes only).

Stream contract: a frame's first byte on ``sink`` waits for its command on
``command``, which is consumed when that frame reaches the output (the
command must stay put until then, as the stream rules say); ``source`` carries the
rewritten frame, same length; a dropped frame is read and discarded.

Why a lookahead line: the IPv4 checksum (l3+10)
passes before the addresses, the TCP checksum after seq/ack.  Frames run
through an 8-byte line, so each value is known a few clocks before its first
byte leaves: old addresses/ports come from the command, old checksums and
seq/ack are captured as they enter.  The commands of the frames in the line
sit in one register for the frame at the output and on ``command`` for the
next one, loaded when that frame's first byte is at the output: one idle
clock between back-to-back frames; latency 9 clocks, the line and an output
skid buffer (frames shorter than 8 bytes may wait for a command register).  The checksum adjustments are adder trees
with one registered level a clock and registered folds, computed while the
earlier header bytes pass (they have 6 or more clocks of slack).
"""

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out, connect, flipped

from ..lut4 import builds_lut4s, lut_and_or, lut_eq
from ..onehot import flop_copy, onehot_mux
from ..packet import packet_layout, packet_signature
from ..stream.skid import SkidBuffer
from .layout import RewriteCommand

__all__ = ["CommandRewriter"]

_LINE = 8  # lookahead: a byte leaves once 8 bytes (or its frame's end) are in
_DEPTH = _LINE + 1  # one spare register: the sink's ready does not wait for the source's
_TCP, _UDP = 6, 17


def _fold(m: Module, value, name: str, keep=None) -> Signal:
    """One's-complement fold of a wide sum to 16 bits (two end-around carries),
    registered; 0 where ``keep`` is 0."""
    once = Signal(18, name=f"{name}_fold1")
    twice = Signal(16, name=f"{name}_fold2")
    m.d.comb += once.eq(value[:16] + value[16:])
    folded = once[:16] + once[16:]
    m.d.sync += twice.eq(folded if keep is None else Mux(keep, folded, 0))
    return twice


def _plus_not(a, b):
    """``a + ~b`` (``b`` 16 bits, 17-bit result) as one subtract: a CCU2C
    inverts its subtrahend in its own LUT halves, while ``~b`` as an addend
    took a LUT4 a bit.  ``2(a + 2^16) - (2b + 1) = 2(a + ~b) + 1``."""
    return (Cat(Const(0, 1), a, Const(1, 1)) - Cat(Const(1, 1), b))[1:18]


def _not_sum(a, c):
    """``~(a + c)`` on 16 bits (``c`` one bit) as one subtract from a
    constant, for the same reason: ``2(2^16 - 1) - (2a + c) = 2 ~(a + c) + c``."""
    return (Cat(Const(0, 1), Const(0xFFFF, 16)) - Cat(c, a))[1:17]


def _diffs(m: Module, pairs, name: str) -> list:
    """Registered ``new + ~old`` of each (new, old, keep) 16-bit word pair: the
    first level of a checksum adjustment's adder tree, each adder a subtract.
    Where ``keep`` is 0 the word is unchanged (new is old), so the term is
    ``old + ~old`` = 0xFFFF (one LUT a bit, the set/keep mux of the new word)."""
    terms = []
    for k, (new, old, keep) in enumerate(pairs):
        term = Signal(17, name=f"{name}_d{k}")
        value = _plus_not(new, old)
        m.d.sync += term.eq(value if keep is None else Mux(keep, value, 0xFFFF))
        terms.append(term)
    return terms


def _tree_sum(m: Module, terms: list, name: str):
    """Sum of ``terms`` as a tree of two-input adders, one registered level a
    clock: the adjustments have many clocks of slack, the clock period has not."""
    level = 0
    while len(terms) > 1:
        nxt = []
        for k in range(0, len(terms), 2):
            pair = terms[k : k + 2]
            width = max(len(t) for t in pair) + 1
            acc = Signal(width, name=f"{name}_l{level}_{k // 2}")
            m.d.sync += acc.eq(sum(pair))
            nxt.append(acc)
        terms, level = nxt, level + 1
    return terms[0]


def _words(value, count: int):
    """The 16-bit words of a value, most significant first."""
    return [value[16 * (count - 1 - i) : 16 * (count - i)] for i in range(count)]


def _byte_of(value, width_bytes: int, index):
    """Byte ``index`` (0 = first on the wire) of a big-endian value."""
    return Array(value[8 * (width_bytes - 1 - i) : 8 * (width_bytes - i)] for i in range(width_bytes))[index]


class CommandRewriter(wiring.Component):
    """Members: ``sink`` (in, packet_signature(8)), ``command`` (in stream of
    ``RewriteCommand``), ``source`` (out, packet_signature(8))."""

    def __init__(self, data_width: int = 8, *, held_eth_src: bool = False):
        """``held_eth_src``: the command's ``eth_src`` is the same for every
        frame and stays on ``command`` between commands too (the DFS's own
        MAC, from its configuration register): read where it stands, not
        copied per frame (48 flops)."""
        if data_width != 8:
            raise ValueError(f"data_width must be 8 (one byte per clock), not {data_width!r}")
        self._held_eth_src = bool(held_eth_src)
        super().__init__({
            "sink": In(packet_signature(8)),
            "command": In(stream.Signature(RewriteCommand)),
            "source": Out(packet_signature(8)),
        })

    def elaborate(self, platform):
        m = Module()
        # The rewritten bytes leave through a skid buffer: the byte mux ends
        # in a register, and the consumer's ready does not reach the line.
        m.submodules.out_stage = out_stage = SkidBuffer(packet_signature(8))
        connect(m, out_stage.source, flipped(self.source))
        # ---- the lookahead line and the commands of the frames in it -----------------
        # The line: its head byte in a register, the bytes behind it in a ring
        # of LUT RAM (written at ``wr_at``, read at ``rd_at``).  As a shift
        # register every byte had a load-or-shift mux whose enables came from
        # both handshakes: 323 COMB for 90 bits (docs/boards.md, tenth session).
        m.submodules.ring = ring = Memory(shape=packet_layout(8), depth=_LINE, init=[])
        ring_w = ring.write_port()
        ring_r = ring.read_port(domain="comb")
        wr_at = Signal(range(_LINE))
        rd_at = Signal(range(_LINE))
        head = Signal(packet_layout(8))
        # Bytes in the line, one-hot (``filled[n]``: n bytes): every use is one bit.
        filled = Signal(_DEPTH + 1, init=1)
        # One command register, ``c``, for the frame at the output.  A frame's
        # command is only looked at as its first byte enters (its offsets)
        # and stays on ``command`` (``unloaded``) until ``c`` is free and the
        # frame is at the head: no second 400-bit register.  ``c`` loads from
        # flops only (it was behind the input handshake, and ``load`` fans out
        # to every bit of ``c``); the price is one idle clock between frames,
        # which the 20-byte gap of Ethernet pays many times over.
        c = Signal(RewriteCommand)
        c_valid = Signal()
        unloaded = Signal()  # a frame in the line whose command is still on ``command``
        first_taken = Signal()
        load = Signal()
        pop = Signal()
        emit = Signal()  # the head byte may leave (or be dropped)
        # Frame ends in the line, counted (not an 8-way OR of the line), one-hot
        # (``lasts[n]``: n ends) as ``filled``: a binary count's add and
        # subtract ran from the output's ready through ``advance``, 6 levels.
        lasts = Signal(_DEPTH + 1, init=1)
        advance = Signal()
        take_in = Signal()
        # "The line lets its head go" (a byte in it, and eight behind it or a
        # frame's end), registered from the counts' next values: ``advance``
        # is then one LUT of flops, not three (filled, lasts, c, the output's
        # spare), and its 27-bit counters' enable came a level later still.
        line_ok = Signal()
        filled_next = Signal.like(filled)
        lasts_next = Signal.like(lasts)
        first_in = self.sink.payload.first
        # "A frame may start": a command waits on ``command`` (valid a clock
        # ago and not taken then, so still valid now: a stream's valid stays
        # until taken) and its frame's first byte is not in yet, as one flop
        # from the next values of the two (``load`` takes the command, a
        # first byte taken sets ``unloaded``).  The incoming
        # ``command.valid`` is the forwarder's decision through the egress
        # port FIFO's room: in front of ``sink.ready`` it ran on through
        # ``take_in`` into the captures' enables (rewriter1 ``cap_seq0``
        # 8.40 ns on the 45F-6); and as two flops, "waits" and ``unloaded``,
        # the handshake was two LUTs in front of the line's counts, one now
        # (rewriter ``first`` -> ``lasts``/``line_ok`` 5 levels, fanout 26).
        # A frame whose command comes with its first byte waits one clock
        # more.
        first_ok = Signal()
        m.d.sync += first_ok.eq(self.command.valid & ~self.command.ready & ~first_taken & ~unloaded)
        m.d.comb += [
            emit.eq(line_ok & c_valid),
            advance.eq(emit & (out_stage.sink.ready | c.drop)),
            self.sink.ready.eq(~filled[_DEPTH] & (~first_in | first_ok)),
            take_in.eq(self.sink.valid & self.sink.ready),
            first_taken.eq(take_in & first_in),
            pop.eq(advance & head.last),
            # c is free, so the head is the first byte of the frame whose command waits.
            load.eq(~c_valid & unloaded & ~filled[0]),
            self.command.ready.eq(load),
        ]
        with m.If(load):
            m.d.sync += c.eq(self.command.payload)
        with m.If(load):
            m.d.sync += c_valid.eq(1)
        with m.Elif(pop):
            m.d.sync += c_valid.eq(0)
        with m.If(first_taken):
            m.d.sync += unloaded.eq(1)
        with m.Elif(load):
            m.d.sync += unloaded.eq(0)
        last_in, last_out = take_in & self.sink.payload.last, advance & head.last
        m.d.comb += lasts_next.eq(lasts)
        with m.If(last_in & ~last_out):
            m.d.comb += lasts_next.eq(lasts << 1)
        with m.Elif(last_out & ~last_in):
            m.d.comb += lasts_next.eq(lasts >> 1)
        # The byte taken becomes the head when the line is empty after this
        # clock's advance; otherwise it joins the ring.
        to_head = Signal()
        m.d.comb += [
            to_head.eq(take_in & Mux(advance, filled[1], filled[0])),
            ring_w.addr.eq(wr_at), ring_w.data.eq(self.sink.payload), ring_w.en.eq(take_in & ~to_head),
            ring_r.addr.eq(rd_at),
        ]
        with m.If(take_in & ~to_head):
            m.d.sync += wr_at.eq(wr_at + 1)
        with m.If(advance & ~filled[1]):  # a byte behind the head
            m.d.sync += [head.eq(ring_r.data), rd_at.eq(rd_at + 1)]
        with m.Elif(to_head):
            m.d.sync += head.eq(self.sink.payload)
        m.d.comb += filled_next.eq(filled)
        with m.If(take_in & ~advance):
            m.d.comb += filled_next.eq(filled << 1)
        with m.Elif(advance & ~take_in):
            m.d.comb += filled_next.eq(filled >> 1)
        m.d.sync += [filled.eq(filled_next), lasts.eq(lasts_next),
                     line_ok.eq(~filled_next[0] & (filled_next[_LINE] | filled_next[_DEPTH] | ~lasts_next[0]))]

        # ---- the new values and the checksum adjustments of the frame at the output ------
        new_src_ip = Mux(c.set_src_ip, c.new_src_ip, c.old_src_ip)
        new_dst_ip = Mux(c.set_dst_ip, c.new_dst_ip, c.old_dst_ip)
        new_src_port = Mux(c.set_src_port, c.new_src_port, c.old_src_port)
        new_dst_port = Mux(c.set_dst_port, c.new_dst_port, c.old_dst_port)
        # Per-command bits the byte mux uses, registered with the command.
        is_tcp, is_udp, offsets, vlan_rewrite = Signal(), Signal(), Signal(), Signal()
        nc = self.command.payload
        with m.If(load):
            m.d.sync += [is_tcp.eq(nc.l4_valid & (nc.protocol == _TCP)), is_udp.eq(nc.l4_valid & (nc.protocol == _UDP)),
                         offsets.eq(nc.add_offsets & nc.l4_valid & (nc.protocol == _TCP)),
                         vlan_rewrite.eq(nc.tagged & nc.vlan_rewrite)]
        # Each word's new + ~old first (one subtract each, a kept word 0xFFFF),
        # then the tree: the same integer sum as the eight terms summed before,
        # so the same folds.
        ip_sum = _tree_sum(m, _diffs(m, [
            (n, o, keep) for new, old, keep in ((c.new_src_ip, c.old_src_ip, c.set_src_ip),
                                                 (c.new_dst_ip, c.old_dst_ip, c.set_dst_ip))
            for n, o in zip(_words(new, 2), _words(old, 2), strict=True)], "ip_sum"), "ip_sum")
        d_ip = _fold(m, ip_sum, "d_ip")
        port_sum = _tree_sum(m, _diffs(m, [(c.new_src_port, c.old_src_port, c.set_src_port),
                                           (c.new_dst_port, c.old_dst_port, c.set_dst_port)], "port_sum")
                             + [d_ip], "port_sum")
        d_l4_base = _fold(m, port_sum, "d_l4_base")

        # Captures as bytes enter (the frame at the input: its command is on
        # ``command`` with byte 0).  The position of the byte taken, relative
        # to L3/L4, counts (no subtract in front of the compares) and wraps
        # every 512 bytes: a capture again at byte 512 + l3 + 10 or later is
        # harmless, as the frame's head (at most 8 bytes behind, the same
        # frame) is then past every field it rewrites (they end below
        # l4 + 18 < 274) and the next frame's first byte loads new positions.
        in_rel3 = Signal(9)
        in_rel4 = Signal(9)
        in_tcp = Signal()
        # Selected by the byte's ``first`` (a flop), enabled by ``take_in``:
        # as ``first_taken``'s If, the input handshake was in the select too
        # (rewriter0 in_rel3/in_rel4 D 7.35-7.42 ns, 6a07163).
        with m.If(take_in):
            with m.If(first_in):
                m.d.sync += [in_rel3.eq(1 - self.command.payload.l3_offset),
                             in_rel4.eq(1 - self.command.payload.l4_offset),
                             in_tcp.eq(self.command.payload.protocol == _TCP)]
            with m.Else():
                m.d.sync += [in_rel3.eq(in_rel3 + 1), in_rel4.eq(in_rel4 + 1)]
        # The captures run a clock behind the byte taken: its data (``cap_byte``)
        # and "it is this field's byte" (``cap_*``, one flop per 16 bits) are
        # registered, so each old value's enable is a flop.  Decoded in the
        # clock the byte was taken (from the incoming valid and first, the
        # position compares and the packet kind) they were one LUT net of
        # fanout 16-32 a register, 7.7-8.4 ns routed (b4d3dc3).  The values
        # have the clock to spare: the tightest, the ack and through it the TCP
        # checksum, are still final a clock before their first byte is picked
        # (at full rate the test passes with two clocks of delay, not three).
        cap_byte = Signal(8)
        m.d.sync += cap_byte.eq(self.sink.payload.data)
        byte_at = {
            "ip_ck": (in_rel3 == 10) | (in_rel3 == 11),
            "seq": (in_rel4 >= 4) & (in_rel4 < 8),
            "ack": (in_rel4 >= 8) & (in_rel4 < 12),
            "l4_ck": (in_rel4 == Mux(in_tcp, 16, 6)) | (in_rel4 == Mux(in_tcp, 17, 7)),
        }
        # A byte past a frame's first taken: ``take_in & ~first_in`` written
        # out (the ready's command terms drop out when ``first`` is 0); as
        # ``take_in`` it shared that LUT with the command's and line's terms,
        # 4 levels from the incoming ``first`` into the captures' flops
        # (rewriter0 cap_ack0 7.54 ns on the 45F-6 at 23cab21).
        taken = self.sink.valid & ~first_in & ~filled[_DEPTH]
        ip_ck_old = Signal(16)
        l4_ck_old = Signal(16)
        old_seq = Signal(32)
        old_ack = Signal(32)
        for name, reg in (("ip_ck", ip_ck_old), ("l4_ck", l4_ck_old), ("seq", old_seq), ("ack", old_ack)):
            # Shifted in a byte at a time, first byte on the wire the most significant.
            for k in range(len(reg) // 16):
                cap = flop_copy(m, taken & byte_at[name], name=f"cap_{name}{k}")
                lo = 16 * k
                below = cap_byte if k == 0 else reg[lo - 8 : lo]
                with m.If(cap):
                    m.d.sync += reg[lo : lo + 16].eq(Cat(below, reg[lo : lo + 8]))

        new_seq = Signal(32)
        new_ack = Signal(32)
        m.d.sync += [new_seq.eq(old_seq + c.seq_delta), new_ack.eq(old_ack + c.ack_delta)]
        seqack_sum = _tree_sum(m, _diffs(m, [
            (n, o, None) for n, o in zip(_words(new_seq, 2) + _words(new_ack, 2),
                                         _words(old_seq, 2) + _words(old_ack, 2), strict=True)],
            "seqack_sum"), "seqack_sum")
        d_seqack = _fold(m, seqack_sum, "d_seqack", keep=offsets)  # 0 without ADD_TCP_OFFSETS
        l4_total = Signal(17)
        m.d.sync += l4_total.eq(d_l4_base + d_seqack)
        d_l4 = _fold(m, l4_total, "d_l4")

        # RFC 1624 eqn. 3: new = ~fold(~old + D), registered in two steps.
        ip_step = Signal(17)
        ip_ck_new = Signal(16)
        m.d.sync += [ip_step.eq(_plus_not(d_ip, ip_ck_old)), ip_ck_new.eq(_not_sum(ip_step[:16], ip_step[16]))]
        l4_step = Signal(17)
        m.d.sync += l4_step.eq(_plus_not(d_l4, l4_ck_old))
        l4_folded = Signal(16)
        m.d.comb += l4_folded.eq(_not_sum(l4_step[:16], l4_step[16]))
        # RFC 768's two cases as flags registered with l4_step from its own
        # operands, not compares after its carry chain (rewriter0 l4_ck_new
        # D 7.85 ns, 6a07163) nor on l4_step (3 levels and the mux:
        # rewriter1 l4_ck_new 7.53 ns on the 25F, syn_c seed 3): the old
        # checksum 0; and the new one 0, ``~fold(d + ~old)`` = 0, where
        # ``d + ~old`` is 0xFFFF (``d == old``) or 0x1FFFE (``d`` 0xFFFF
        # and ``old`` 0: the first case's).
        l4_old_zero = Signal()
        l4_folds_zero = Signal()
        # (The compare in LUT4s on ECP5: ABC merged it into l4_step's
        # subtract and chained it, 5 levels.)
        m.d.sync += [l4_old_zero.eq(l4_ck_old == 0),
                     l4_folds_zero.eq(lut_eq(m, "l4_folds_zero_eq", d_l4, l4_ck_old,
                                             instance=builds_lut4s(platform)))]
        l4_ck_new = Signal(16)
        with m.If(is_udp & l4_old_zero):
            m.d.sync += l4_ck_new.eq(0)  # no checksum stays no checksum
        with m.Elif(is_udp & l4_folds_zero):
            m.d.sync += l4_ck_new.eq(0xFFFF)
        with m.Else():
            m.d.sync += l4_ck_new.eq(l4_folded)

        # ---- the byte that leaves ---------------------------------------------------------
        # Which field the byte at the output belongs to, as one-hot registered
        # selects, so the byte mux is an AND-OR over flops.  Two stages run
        # ahead of the output: ``w1`` holds the position flags of the next
        # byte (compares on the counters ``p2_*`` of the byte after it), and
        # ``sel`` takes them with the fields' priority resolved as the head
        # advances.  A new frame's first six bytes are the destination MAC
        # whatever its offsets, so a command loads both stages with constants.
        p2_j, p2_rel3, p2_rel4 = Signal(9), Signal(9), Signal(9)  # head + 2 (rel = j - offset)
        # p2_j is 511, registered: the compare was a level in front of the counters' enable (27 bits).
        p2_end = Signal()

        def where(j, rel3, rel4):
            in_range = lambda v, lo, hi: (v >= lo) & (v < hi)  # noqa: E731
            # Disjoint ranges (a field's own bytes only), as the layers are:
            # the MACs end at 12, the TCI at 16, L3 starts at 14 or 18 and L4
            # at least 20 bytes after it.
            return {
                "dst_mac": j < 6, "src_mac": in_range(j, 6, 12), "tci_hi": j == 14, "tci_lo": j == 15,
                "ip_ck": in_range(rel3, 10, 12), "src_ip": in_range(rel3, 12, 16),
                "dst_ip": in_range(rel3, 16, 20), "src_port": rel4 < 2, "dst_port": in_range(rel4, 2, 4),
                "seq": in_range(rel4, 4, 8), "ack": in_range(rel4, 8, 12), "tcp_ck": in_range(rel4, 16, 18),
                "udp_ck": in_range(rel4, 6, 8),
            }

        def resolve(w):
            """The position flags made selects.  The ranges are disjoint but for
            UDP's checksum inside the sequence number's bytes, where the
            sequence number (only ever with ``offsets``) goes first: no
            precedence chain over all thirteen (it ran 7 levels into ``sel``)."""
            l4 = is_tcp | is_udp
            return {
                "dst_mac": w["dst_mac"], "src_mac": w["src_mac"],
                "tci_hi": vlan_rewrite & w["tci_hi"], "tci_lo": vlan_rewrite & w["tci_lo"],
                "ip_ck": w["ip_ck"], "src_ip": w["src_ip"], "dst_ip": w["dst_ip"],
                "src_port": l4 & w["src_port"], "dst_port": l4 & w["dst_port"],
                "seq": l4 & offsets & w["seq"], "ack": l4 & offsets & w["ack"],
                "tcp_ck": is_tcp & w["tcp_ck"], "udp_ck": is_udp & ~offsets & w["udp_ck"],
            }

        names = list(where(p2_j, p2_rel3, p2_rel4))
        w1 = {name: Signal(name=f"w1_{name}") for name in names}
        sel = {name: Signal(name=f"sel_{name}") for name in names}
        unchanged = Signal(init=1)  # no select set: registered beside them, not a 13-input NOR in the byte mux
        lo1, lo = Signal(2), Signal(2)  # rel3's low bits (= rel4's: IHL x 4) at head + 1 and the head
        new_l3 = self.command.payload.l3_offset
        new_l4 = self.command.payload.l4_offset
        with m.If(load):
            m.d.sync += [p2_j.eq(2), p2_rel3.eq(2 - new_l3), p2_rel4.eq(2 - new_l4),
                         lo1.eq((1 - new_l3)[:2]), lo.eq((-new_l3)[:2])]
            m.d.sync += [w1[k].eq(k == "dst_mac") for k in names]
            m.d.sync += [sel[k].eq(k == "dst_mac") for k in names]
            m.d.sync += [unchanged.eq(0), p2_end.eq(0)]
        with m.Elif(advance):
            # Past 511 no field is near (they end below l4 + 18 < 274): the counters stop,
            # and their flags stay clear (rel3/rel4 stop at 511 - offset > 255).  They
            # stop by adding 0, not by their enable: ``~p2_end`` in the enable of the
            # 27 bits was the third LUT level behind ``line_ok`` (rewriter1 p2_rel4 CE,
            # the 45F-6's only late register at 77c6779, 7.39 ns).
            step = ~p2_end
            m.d.sync += [p2_j.eq(p2_j + step), p2_rel3.eq(p2_rel3 + step), p2_rel4.eq(p2_rel4 + step),
                         p2_end.eq(p2_end | (p2_j == 510))]
            m.d.sync += [w1[k].eq(v) for k, v in where(p2_j, p2_rel3, p2_rel4).items()]
            selects = resolve(w1)
            m.d.sync += [sel[k].eq(v) for k, v in selects.items()]
            m.d.sync += unchanged.eq(~Cat(*selects.values()).any())
            m.d.sync += [lo1.eq(p2_rel3[:2]), lo.eq(lo1)]
        # Each field's byte for the head is picked a clock ahead too (``ahead``:
        # its byte for the head's next position, taken as the head advances),
        # so the byte mux is one AND-OR level over flops.  The values are final
        # clocks before their first byte reaches the head (see above); the TCI
        # is the head's own bits and the command's, no selection.
        eth_src = self.command.payload.eth_src if self._held_eth_src else c.eth_src

        def mac_bytes(value):
            return [value[8 * (5 - i):8 * (6 - i)] for i in range(6)]

        def field_bytes(j, lo):
            """``j``: the byte position mod 8, one-hot (the MACs' bytes an
            AND-OR of flops; j's binary decode into them was 5 levels)."""
            return {
                "dst_mac": onehot_mux(j[0:6], mac_bytes(c.eth_dst)),
                "src_mac": onehot_mux([j[(i + 6) % 8] for i in range(6)], mac_bytes(eth_src)),
                "ip_ck": _byte_of(ip_ck_new, 2, lo[0]),
                "src_ip": _byte_of(new_src_ip, 4, lo),
                "dst_ip": _byte_of(new_dst_ip, 4, lo),
                "src_port": _byte_of(new_src_port, 2, lo[0]),
                "dst_port": _byte_of(new_dst_port, 2, lo[0]),
                "seq": _byte_of(new_seq, 4, lo),
                "ack": _byte_of(new_ack, 4, lo),
                "tcp_ck": _byte_of(l4_ck_new, 2, lo[0]),
                "udp_ck": _byte_of(l4_ck_new, 2, lo[0]),
            }

        j1 = Signal(8)  # the head's next position mod 8, one-hot (the MACs' byte index)
        ahead = {k: Signal(8, name=f"byte_{k}") for k in field_bytes(j1, lo)}
        with m.If(load):
            m.d.sync += [ahead["dst_mac"].eq(self.command.payload.eth_dst[40:48]),  # a frame's byte 0
                         j1.eq(0b10)]
        with m.Elif(advance):
            m.d.sync += [ahead[k].eq(v) for k, v in field_bytes(j1, lo1).items()]
            m.d.sync += j1.eq(j1.rotate_left(1))
        field_byte = {
            **ahead,
            "tci_hi": Cat(c.vlan_id[8:12], head.data[4:8]),
            "tci_lo": c.vlan_id[:8],
        }
        out = Signal(8)
        # Fourteen terms as LUT4s on ECP5 (hdl/lut4.py), 3 levels: ABC made
        # 4, and the output stage's mux a fifth (7.42 ns on the 25F at e5daf14).
        terms = [(unchanged, head.data)] + [(sel[k], v) for k, v in field_byte.items()]
        m.d.comb += out.eq(lut_and_or(m, "out", terms, instance=builds_lut4s(platform)))

        m.d.comb += [
            out_stage.sink.valid.eq(emit & ~c.drop),
            out_stage.sink.payload.data.eq(out),
            out_stage.sink.payload.first.eq(head.first),
            out_stage.sink.payload.last.eq(head.last),
        ]
        return m
