"""VLAN split: frames of one physical port to one logical port per 802.1Q
VLAN id, the tag removed.

# Ref: IEEE 802.1Q-2018 §9.6 (tag: TPID 0x8100, then PCP 3 bits, DEI 1, VID 12)

The tag sits between the source address and the EtherType, so a frame's
port is known only at its 16th byte: the first 12 bytes wait in a shift
register while the tag goes by, then every further byte pushes the oldest
one out (the tag removed, the frame 4 bytes shorter), and the last 12 are
flushed after the input's ``last``.  A frame without a tag, with another
VLAN id, or shorter than 17 bytes is dropped and counted in ``dropped``.
Per frame the split takes 12 clocks more than the frame's bytes; the wire
gives 20 (preamble and inter-frame gap), so it keeps line rate.
"""

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..packet import packet_signature

__all__ = ["VlanSplit", "check_vids"]

TPID = 0x8100
_HELD = 12  # destination and source addresses


def check_vids(vids) -> tuple[int, ...]:
    """``vids`` as a tuple of distinct 802.1Q VLAN ids (1..4094), or ValueError."""
    vids = tuple(vids) if isinstance(vids, tuple | list) else vids
    if not isinstance(vids, tuple) or not vids:
        raise ValueError(f"vids must be a non-empty tuple of VLAN ids, not {vids!r}")
    for vid in vids:
        if not isinstance(vid, int) or isinstance(vid, bool) or not 1 <= vid <= 4094:
            raise ValueError(f"a VLAN id must be an integer 1..4094, not {vid!r}")
    if len(set(vids)) != len(vids):
        raise ValueError(f"VLAN ids must be distinct, not {vids!r}")
    return vids


class VlanSplit(wiring.Component):
    """``VlanSplit(vids)``: ``sink`` (the physical port's frames) to
    ``sources[i]`` (frames of VLAN ``vids[i]``, untagged); ``dropped``
    counts frames of no listed VLAN (32 bits, wrapping)."""

    def __init__(self, vids):
        self.vids = check_vids(vids)
        super().__init__({
            "sink": In(packet_signature(8)),
            "sources": Out(packet_signature(8)).array(len(self.vids)),
            "dropped": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        n = len(self.vids)
        held = Signal(8 * _HELD)  # byte 0 of the frame (or the oldest held) in the low byte
        count = Signal(range(_HELD + 5))
        tag = Signal(32)  # TPID and TCI as they arrived, first byte high
        port = Signal(range(max(n, 2)))
        first = Signal()
        left = Signal(range(_HELD + 1))
        sink = self.sink

        # Payloads are driven the same in every state; only `valid` selects.
        for src in self.sources:
            m.d.comb += [src.payload.data.eq(held[:8]), src.payload.first.eq(first),
                         src.payload.last.eq(left == 1)]
        # The selected output: `valid` from the state, `ready` back from it.
        out_valid, selected_ready = Signal(), Signal()
        for i, src in enumerate(self.sources):
            m.d.comb += src.valid.eq(out_valid & (port == i))
            with m.If(port == i):
                m.d.comb += selected_ready.eq(src.ready)

        def shift_in(byte):
            return held.eq(Cat(held[8:], byte))

        vid = tag[0:12]
        match = Signal(range(max(n, 2)))
        matched = Signal()
        tpid_ok = tag[16:32] == TPID
        for i, v in enumerate(self.vids):
            with m.If(tpid_ok & (vid == v)):
                m.d.comb += [match.eq(i), matched.eq(1)]

        with m.FSM():
            with m.State("Head"):
                m.d.comb += sink.ready.eq(1)
                with m.If(sink.valid):
                    with m.If(count < _HELD):
                        m.d.sync += shift_in(sink.payload.data)
                    with m.Else():
                        m.d.sync += tag.eq(Cat(sink.payload.data, tag[:24]))
                    m.d.sync += count.eq(count + 1)
                    with m.If(sink.payload.last):
                        m.d.sync += [count.eq(0), self.dropped.eq(self.dropped + 1)]
                    with m.Elif(count == _HELD + 3):
                        m.next = "Decide"
            with m.State("Decide"):
                # The tag is complete in `tag` now (one clock, off the input's path).
                m.d.sync += [count.eq(0), port.eq(match), first.eq(1)]
                with m.If(matched):
                    m.next = "Pass"
                with m.Else():
                    m.d.sync += self.dropped.eq(self.dropped + 1)
                    m.next = "Drop"
            with m.State("Pass"):
                m.d.comb += [out_valid.eq(sink.valid), sink.ready.eq(selected_ready)]
                with m.If(sink.valid & selected_ready):
                    m.d.sync += [shift_in(sink.payload.data), first.eq(0)]
                    with m.If(sink.payload.last):
                        m.d.sync += left.eq(_HELD)
                        m.next = "Flush"
            with m.State("Flush"):
                m.d.comb += out_valid.eq(1)
                with m.If(selected_ready):
                    m.d.sync += [shift_in(Const(0, 8)), left.eq(left - 1), first.eq(0)]
                    with m.If(left == 1):
                        m.next = "Head"
            with m.State("Drop"):
                m.d.comb += sink.ready.eq(1)
                with m.If(sink.valid & sink.payload.last):
                    m.next = "Head"
        return m
