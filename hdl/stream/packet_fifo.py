"""Store-and-forward packet FIFO: a frame becomes visible to the reader only
once the writer commits it, and a frame the writer drops (or that did not fit)
vanishes whole.

Write side (domain ``w_domain``): ``sink`` is a packet stream whose ``ready``
is always 1 -- the writer is never stalled, because a MAC cannot pause the
wire.  On the transfer that carries ``last`` the writer says ``commit`` (keep
the frame) or leaves it low (drop it).  A ``drop`` strobe without a transfer
discards whatever part of a frame was written so far (e.g. a receive aborted
before its last byte).  If the memory fills up mid-frame, the rest of that
frame is ignored and, at its end, the frame is discarded and ``overflow``
pulses for one write clock (only if the writer wanted to commit it, so a bad
frame is never also counted as an overflow).  ``committed`` pulses for each
frame kept.

Read side (domain ``r_domain``): ``source`` carries committed frames only,
with ``first`` regenerated (it is not stored: one memory bit saved per entry).

Clock domains: when ``w_domain == r_domain`` the pointers are compared
directly.  Otherwise the committed-write pointer (which jumps by a whole frame
at a commit, so Gray code cannot carry it) crosses with a hold register and a
toggle handshake: the reader sees commits a few clocks late, never a torn
pointer; the read pointer, which steps by one, crosses in Gray code as in any
asynchronous FIFO.  Both directions are conservative: late news only makes the
FIFO look fuller (writer) or emptier (reader).

Timing: ``full`` is a register that looks one clock ahead ("the next
write pointer leaves at most one free entry", ``wp' - rp >= depth - 1``),
and in the two-clock case the read pointer's Gray decode is registered too.
The write side then decides from flops only (no pointer subtract or 13-bit
compare in front of ``wp``'s enable), at the price of one entry: the FIFO
reports full one entry early and holds at most ``depth - 1`` entries (plus
the reader's one-entry prefetch).  Like any late news of the read pointer,
this only makes the FIFO look fuller: no entry is ever overwritten.
"""

from amaranth import Cat, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..packet import packet_layout, packet_signature

__all__ = ["PacketFIFO"]

EBR_BITS_X9 = 2048 * 9  # an ECP5 DP16KD in its x9/x18/x36 modes
EBR_BITS = 16384  # ... and in its x4/x2/x1 modes


def _gray(v):
    return v ^ (v >> 1)


def _ungray(g, width):
    bits = [None] * width
    bits[width - 1] = g[width - 1]
    for i in reversed(range(width - 1)):
        bits[i] = bits[i + 1] ^ g[i]
    return Cat(*bits)


class PacketFIFO(wiring.Component):
    """``PacketFIFO(data_width=8, depth=4096, w_domain="sync", r_domain="sync")``.

    ``depth`` (entries, a power of two >= 16) must exceed the largest frame
    the writer will commit: the FIFO stores at most ``depth - 1`` entries (see
    the timing note above); a larger frame always overflows.
    """

    def __init__(self, data_width: int = 8, depth: int = 4096, *, w_domain: str = "sync", r_domain: str = "sync"):
        packet_layout(data_width)  # checks data_width
        if not isinstance(depth, int) or depth < 16 or depth & (depth - 1):
            raise ValueError(f"depth must be a power of two >= 16, not {depth!r}")
        for name, dom in (("w_domain", w_domain), ("r_domain", r_domain)):
            if not isinstance(dom, str):
                raise TypeError(f"{name} must be a domain name, not {dom!r}")
        self._data_width = data_width
        self._depth = depth
        self._w_domain = w_domain
        self._r_domain = r_domain
        super().__init__(
            {
                "sink": In(packet_signature(data_width)),
                "commit": In(1),
                "drop": In(1),
                "committed": Out(1),
                "overflow": Out(1),
                "source": Out(packet_signature(data_width)),
            }
        )

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):
        m = Module()
        wd = m.d[self._w_domain]
        rd = m.d[self._r_domain]
        same = self._w_domain == self._r_domain
        abits = (self._depth - 1).bit_length()
        layout = packet_layout(self._data_width)
        stored = data.StructLayout({k: v.shape for k, v in layout if k != "first"})

        # Timing (ECP5): a block RAM (DP16KD) holds 18 kbit as 2048x9 but
        # only 16 kbit as 4096x4, 8192x2, 16384x1.  A deeper memory split
        # by address needs a read-data mux, one LUT and a route after the
        # RAM's 5.8 ns clock-to-out; split into bit lanes instead, each lane
        # one RAM column, the read data reaches the next flop without logic.
        width = stored.size
        lane = width if width * self._depth <= EBR_BITS_X9 else max(1, EBR_BITS // self._depth)
        w_word = Signal(width)
        r_word = Signal(width)
        w_en = Signal()
        r_en = Signal()
        w_addr = Signal(abits)
        r_addr = Signal(abits)
        for k, lo in enumerate(range(0, width, lane)):
            hi = min(width, lo + lane)
            mem = Memory(shape=hi - lo, depth=self._depth, init=[])
            m.submodules[f"mem{k}" if lane < width else "mem"] = mem
            wport = mem.write_port(domain=self._w_domain)
            rport = mem.read_port(domain=self._r_domain, transparent_for=())
            m.d.comb += [wport.addr.eq(w_addr), wport.en.eq(w_en), wport.data.eq(w_word[lo:hi]),
                         rport.addr.eq(r_addr), rport.en.eq(r_en), r_word[lo:hi].eq(rport.data)]
        wp_mem = data.View(stored, w_word)
        rp_mem = data.View(stored, r_word)

        # Pointers carry one extra bit so full and empty differ.
        wp = Signal(abits + 1)  # next entry to write
        cp = Signal(abits + 1)  # end of the committed frames (write domain)
        rp = Signal(abits + 1)  # next entry to read (read domain)
        rp_w = Signal(abits + 1)  # read pointer as seen by the writer
        cp_r = Signal(abits + 1)  # committed pointer as seen by the reader

        if same:
            m.d.comb += [rp_w.eq(rp), cp_r.eq(cp)]
        else:
            # Read pointer -> write domain, Gray coded (it steps by one).
            rp_gray = Signal(abits + 1)
            rd += rp_gray.eq(_gray(rp))
            rp_gray_w = Signal(abits + 1)
            m.submodules.rp_sync = FFSynchronizer(rp_gray, rp_gray_w, o_domain=self._w_domain)
            # Decoded into a register: the XOR chain is not in front of the full compare.
            wd += rp_w.eq(_ungray(rp_gray_w, abits + 1))
            # Committed pointer -> read domain, hold register + toggle handshake.
            hold = Signal(abits + 1)
            req = Signal()
            ack_w = Signal()
            req_r = Signal()
            ack = Signal()
            m.submodules.req_sync = FFSynchronizer(req, req_r, o_domain=self._r_domain)
            m.submodules.ack_sync = FFSynchronizer(ack, ack_w, o_domain=self._w_domain)
            with m.If((req == ack_w) & (hold != cp)):
                wd += [hold.eq(cp), req.eq(~req)]
            with m.If(req_r != ack):
                rd += [cp_r.eq(hold), ack.eq(req_r)]

        # Write side.
        overflowing = Signal()  # the frame being written did not fit
        m.d.comb += self.sink.ready.eq(1)
        # "full" is a register: it says whether the pointer wp takes at this
        # clock leaves at most one free entry (modular differences: the
        # pointers wrap).  Its three candidates are compared from flops in
        # parallel and the same branches that pick wp pick one of them, so
        # no subtract or compare sits in front of wp's enable.
        full = Signal()
        used = (wp - rp_w)[: abits + 1]
        used_cp = (cp - rp_w)[: abits + 1]
        # "v >= depth - 1" and "v >= depth - 2" for v <= depth (depth a power
        # of two) are AND trees of v's bits, not a second carry chain after
        # the subtract.
        stays_full = used[abits] | used[:abits].all()  # wp unchanged: used >= depth - 1
        fills_up = used[abits] | used[1:abits].all()  # wp + 1: used >= depth - 2
        back_full = used_cp[abits] | used_cp[:abits].all()  # wp back to cp
        wd += [self.committed.eq(0), self.overflow.eq(0), full.eq(stays_full)]
        fits = ~full & ~overflowing
        with m.If(self.sink.valid):
            with m.If(fits):
                m.d.comb += [
                    w_addr.eq(wp[:abits]),
                    w_en.eq(1),
                ]
                for name, _ in stored:
                    m.d.comb += wp_mem[name].eq(self.sink.payload[name])
            with m.If(self.sink.payload.last):
                wd += overflowing.eq(0)
                with m.If(self.commit & fits):
                    wd += [cp.eq(wp + 1), wp.eq(wp + 1), self.committed.eq(1), full.eq(fills_up)]
                with m.Else():
                    wd += [wp.eq(cp), full.eq(back_full)]
                    with m.If(self.commit):
                        wd += self.overflow.eq(1)
            with m.Elif(fits):
                wd += [wp.eq(wp + 1), full.eq(fills_up)]
            with m.Else():
                wd += overflowing.eq(1)
        with m.Elif(self.drop):
            wd += [wp.eq(cp), overflowing.eq(0), full.eq(back_full)]

        # Read side: one-entry prefetch through the synchronous read port,
        # whose output holds while en is low.
        r_first = Signal(init=1)
        do_read = (~self.source.valid | self.source.ready) & (rp != cp_r)
        m.d.comb += [
            r_addr.eq(rp[:abits]),
            r_en.eq(do_read),
            self.source.payload.first.eq(r_first),
        ]
        for name, _ in stored:
            m.d.comb += self.source.payload[name].eq(rp_mem[name])
        with m.If(do_read):
            rd += [rp.eq(rp + 1), self.source.valid.eq(1)]
        with m.Elif(self.source.ready):
            rd += self.source.valid.eq(0)
        with m.If(self.source.valid & self.source.ready):
            rd += r_first.eq(self.source.payload.last)
        return m
