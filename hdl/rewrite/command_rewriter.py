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
from amaranth.lib.wiring import In, Out, connect, flipped

from ..packet import packet_layout, packet_signature
from ..stream.skid import SkidBuffer
from .layout import RewriteCommand

__all__ = ["CommandRewriter"]

_LINE = 8  # lookahead: a byte leaves once 8 bytes (or its frame's end) are in
_DEPTH = _LINE + 1  # one spare register: the sink's ready does not wait for the source's
_TCP, _UDP = 6, 17


def _fold(m: Module, value, name: str) -> Signal:
    """One's-complement fold of a wide sum to 16 bits (two end-around carries), registered."""
    once = Signal(18, name=f"{name}_fold1")
    twice = Signal(16, name=f"{name}_fold2")
    m.d.comb += once.eq(value[:16] + value[16:])
    m.d.sync += twice.eq(once[:16] + once[16:])
    return twice


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

    def __init__(self, data_width: int = 8):
        if data_width != 8:
            raise ValueError(f"data_width must be 8 (one byte per clock), not {data_width!r}")
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
        line = Array(Signal(packet_layout(8), name=f"line{k}") for k in range(_DEPTH))
        count = Signal(range(_DEPTH + 1))
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
        head = line[0]
        emit = Signal()  # the head byte may leave (or be dropped)
        lasts = Signal(range(_DEPTH + 1))  # frame ends in the line, counted (not an 8-way OR of the line)
        advance = Signal()
        take_in = Signal()
        first_in = self.sink.payload.first
        m.d.comb += [
            emit.eq((count != 0) & c_valid & ((count >= _LINE) | (lasts != 0))),
            advance.eq(emit & (out_stage.sink.ready | c.drop)),
            self.sink.ready.eq((count < _DEPTH) & (~first_in | (self.command.valid & ~unloaded))),
            take_in.eq(self.sink.valid & self.sink.ready),
            first_taken.eq(take_in & first_in),
            pop.eq(advance & head.last),
            # c is free, so the head is the first byte of the frame whose command waits.
            load.eq(~c_valid & unloaded & (count != 0)),
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
        m.d.sync += lasts.eq(lasts + (take_in & self.sink.payload.last) - (advance & head.last))
        for k in range(_DEPTH):
            with m.If(advance):
                if k + 1 < _DEPTH:
                    m.d.sync += line[k].eq(line[k + 1])
            # The free slot after this clock's shift: count - advance, as a choice of two compares.
            with m.If(take_in & Mux(advance, count == k + 1, count == k)):
                m.d.sync += line[k].eq(self.sink.payload)
        m.d.sync += count.eq(count + take_in - advance)

        # Byte positions saturate at 511: every rewritten field lies below l4 (< 256) + 18.
        out_index = Signal(9)
        in_index = Signal(9)
        with m.If(take_in):
            m.d.sync += in_index.eq(Mux(self.sink.payload.last, 0, Mux(in_index == 511, 511, in_index + 1)))
        with m.If(advance):
            m.d.sync += out_index.eq(Mux(head.last, 0, Mux(out_index == 511, 511, out_index + 1)))

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
        ip_sum = _tree_sum(m, [(~w)[:16] for w in _words(Cat(c.old_dst_ip, c.old_src_ip), 4)]
                           + _words(Cat(new_dst_ip, new_src_ip), 4), "ip_sum")
        d_ip = _fold(m, ip_sum, "d_ip")
        port_sum = _tree_sum(m, [(~c.old_src_port)[:16], (~c.old_dst_port)[:16], new_src_port, new_dst_port,
                                 d_ip], "port_sum")
        d_l4_base = _fold(m, port_sum, "d_l4_base")

        # Captures as bytes enter (the frame at the input: its command is on
        # ``command`` with byte 0).  The position of the byte taken, relative
        # to L3/L4, counts like in_index (no subtract in front of the compares).
        in_rel3 = Signal(9)
        in_rel4 = Signal(9)
        in_tcp = Signal()
        with m.If(first_taken):
            m.d.sync += [in_rel3.eq(1 - self.command.payload.l3_offset),
                         in_rel4.eq(1 - self.command.payload.l4_offset),
                         in_tcp.eq(self.command.payload.protocol == _TCP)]
        with m.Elif(take_in & (in_index != 511)):
            m.d.sync += [in_rel3.eq(in_rel3 + 1), in_rel4.eq(in_rel4 + 1)]
        byte_in = self.sink.payload.data
        ip_ck_old = Signal(16)
        l4_ck_old = Signal(16)
        old_seq = Signal(32)
        old_ack = Signal(32)
        with m.If(take_in & ~first_in):
            with m.If((in_rel3 == 10) | (in_rel3 == 11)):
                m.d.sync += ip_ck_old.eq(Cat(byte_in, ip_ck_old[:8]))
            with m.If((in_rel4 >= 4) & (in_rel4 < 8)):
                m.d.sync += old_seq.eq(Cat(byte_in, old_seq[:24]))
            with m.If((in_rel4 >= 8) & (in_rel4 < 12)):
                m.d.sync += old_ack.eq(Cat(byte_in, old_ack[:24]))
            l4_ck_at = Mux(in_tcp, 16, 6)
            with m.If((in_rel4 == l4_ck_at) | (in_rel4 == l4_ck_at + 1)):
                m.d.sync += l4_ck_old.eq(Cat(byte_in, l4_ck_old[:8]))

        new_seq = Signal(32)
        new_ack = Signal(32)
        m.d.sync += [new_seq.eq(old_seq + c.seq_delta), new_ack.eq(old_ack + c.ack_delta)]
        seqack_sum = _tree_sum(m, [(~w)[:16] for w in _words(old_seq, 2) + _words(old_ack, 2)]
                               + _words(new_seq, 2) + _words(new_ack, 2), "seqack_sum")
        d_seqack = _fold(m, seqack_sum, "d_seqack")
        l4_total = Signal(17)
        m.d.sync += l4_total.eq(d_l4_base + Mux(offsets, d_seqack, 0))
        d_l4 = _fold(m, l4_total, "d_l4")

        # RFC 1624 eqn. 3: new = ~fold(~old + D), registered in two steps.
        ip_step = Signal(17)
        ip_ck_new = Signal(16)
        m.d.sync += [ip_step.eq((~ip_ck_old)[:16] + d_ip), ip_ck_new.eq(~(ip_step[:16] + ip_step[16:]))]
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
        # Where the byte at the output sits, as registered flags: computed a
        # clock ahead from the next position (0 with a new command, else one
        # on), so the byte mux selects on flops, not on subtracts and compares.
        # ``nxt_*`` hold the position after the head byte's (rel = j - offset).
        nxt_j = Signal(9)
        nxt_rel3 = Signal(9)
        nxt_rel4 = Signal(9)
        j = out_index

        def where(j, rel3, rel4):
            in_range = lambda v, lo, hi: (v >= lo) & (v < hi)  # noqa: E731
            return {
                "dst_mac": j < 6, "src_mac": j < 12, "tci_hi": j == 14, "tci_lo": j == 15,
                "ip_ck": in_range(rel3, 10, 12), "src_ip": in_range(rel3, 12, 16),
                "dst_ip": in_range(rel3, 16, 20), "src_port": rel4 < 2, "dst_port": rel4 < 4,
                "seq": rel4 < 8, "ack": rel4 < 12, "tcp_ck": in_range(rel4, 16, 18),
                "udp_ck": in_range(rel4, 6, 8),
            }

        at = {name: Signal(name=f"at_{name}") for name in where(j, j, j)}
        rel3_lo = Signal(2)   # the low bits of the head's rel3 and rel4: a byte within a field
        rel4_lo = Signal(2)
        new_l3 = self.command.payload.l3_offset
        new_l4 = self.command.payload.l4_offset
        with m.If(load):
            m.d.sync += [nxt_j.eq(1), nxt_rel3.eq(1 - new_l3), nxt_rel4.eq(1 - new_l4),
                         rel3_lo.eq((-new_l3)[:2]), rel4_lo.eq((-new_l4)[:2])]
            m.d.sync += [at[k].eq(v) for k, v in where(Const(0, 9), (-new_l3)[:9], (-new_l4)[:9]).items()]
        with m.Elif(advance & (out_index != 511)):
            m.d.sync += [nxt_j.eq(nxt_j + 1), nxt_rel3.eq(nxt_rel3 + 1), nxt_rel4.eq(nxt_rel4 + 1),
                         rel3_lo.eq(nxt_rel3[:2]), rel4_lo.eq(nxt_rel4[:2])]
            m.d.sync += [at[k].eq(v) for k, v in where(nxt_j, nxt_rel3, nxt_rel4).items()]
        out = Signal(8)
        m.d.comb += out.eq(head.data)
        with m.If(at["dst_mac"]):
            m.d.comb += out.eq(_byte_of(c.eth_dst, 6, j[:3]))
        with m.Elif(at["src_mac"]):
            m.d.comb += out.eq(_byte_of(c.eth_src, 6, (j - 6)[:3]))
        with m.Elif(vlan_rewrite & at["tci_hi"]):
            m.d.comb += out.eq(Cat(c.vlan_id[8:12], head.data[4:8]))
        with m.Elif(vlan_rewrite & at["tci_lo"]):
            m.d.comb += out.eq(c.vlan_id[:8])
        with m.Elif(at["ip_ck"]):
            m.d.comb += out.eq(_byte_of(ip_ck_new, 2, rel3_lo[0]))
        with m.Elif(at["src_ip"]):
            m.d.comb += out.eq(_byte_of(new_src_ip, 4, rel3_lo))
        with m.Elif(at["dst_ip"]):
            m.d.comb += out.eq(_byte_of(new_dst_ip, 4, rel3_lo))
        with m.Elif(is_tcp | is_udp):
            with m.If(at["src_port"]):
                m.d.comb += out.eq(_byte_of(new_src_port, 2, rel4_lo[0]))
            with m.Elif(at["dst_port"]):
                m.d.comb += out.eq(_byte_of(new_dst_port, 2, rel4_lo[0]))
            with m.Elif(offsets & at["seq"]):
                m.d.comb += out.eq(_byte_of(new_seq, 4, rel4_lo))
            with m.Elif(offsets & at["ack"]):
                m.d.comb += out.eq(_byte_of(new_ack, 4, rel4_lo))
            with m.Elif(is_tcp & at["tcp_ck"]):
                m.d.comb += out.eq(_byte_of(l4_ck_new, 2, rel4_lo[0]))
            with m.Elif(is_udp & at["udp_ck"]):
                m.d.comb += out.eq(_byte_of(l4_ck_new, 2, rel4_lo[0]))

        m.d.comb += [
            out_stage.sink.valid.eq(emit & ~c.drop),
            out_stage.sink.payload.data.eq(out),
            out_stage.sink.payload.first.eq(head.first),
            out_stage.sink.payload.last.eq(head.last),
        ]
        return m
