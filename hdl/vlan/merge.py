"""VLAN merge: frames of several logical ports onto one physical port, each
tagged with its port's 802.1Q VLAN id.

# Ref: IEEE 802.1Q-2018 §9.6 (tag: TPID 0x8100, PCP 0, DEI 0, VID)

Whole frames are taken in turn from the inputs that have one (round robin:
the logical ports share the wire, neither may starve the other).  The tag
goes in after the 12 address bytes: for its 4 clocks the input waits while
the output keeps sending, so a frame that arrives back to back leaves back
to back, as the MAC's transmitter needs.  Frames shorter than 12 bytes
leave untagged (the DFS never sends one).
"""

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..packet import packet_signature
from ..stream.arbiter import FrameArbiter
from .split import _HELD, TPID, check_vids

__all__ = ["VlanMerge"]


class VlanMerge(wiring.Component):
    """``VlanMerge(vids)``: ``sinks[i]`` (untagged frames of VLAN ``vids[i]``)
    to ``source`` (tagged)."""

    def __init__(self, vids):
        self.vids = check_vids(vids)
        super().__init__({
            "sinks": In(packet_signature(8)).array(len(self.vids)),
            "source": Out(packet_signature(8)),
        })

    def elaborate(self, platform):
        m = Module()
        n = len(self.vids)
        m.submodules.arbiter = arbiter = FrameArbiter(n, round_robin=True)
        for i in range(n):
            wiring.connect(m, wiring.flipped(self.sinks[i]), arbiter.sinks[i])
        frame = arbiter.source

        count = Signal(range(_HELD + 5))  # bytes of the current frame sent, up to the tag's end
        tagging = (count >= _HELD) & (count < _HELD + 4)
        vid = Array(Const(v, 12) for v in self.vids)[arbiter.grant]
        # In sending order: TPID (high byte first), then PCP/DEI 0 and the VID.
        tag = Cat(Const(TPID >> 8, 8), Const(TPID & 0xFF, 8), vid[8:12], Const(0, 4), vid[:8])
        tag_byte = tag.word_select((count - _HELD)[:2], 8)

        m.d.comb += [
            self.source.valid.eq(tagging | frame.valid),
            self.source.payload.data.eq(Mux(tagging, tag_byte, frame.payload.data)),
            self.source.payload.first.eq(frame.payload.first & ~tagging),
            self.source.payload.last.eq(frame.payload.last & ~tagging),
            frame.ready.eq(self.source.ready & ~tagging),
        ]
        with m.If(self.source.valid & self.source.ready):
            with m.If(~tagging & frame.payload.last):
                m.d.sync += count.eq(0)
            with m.Elif(count < _HELD + 4):
                m.d.sync += count.eq(count + 1)
        return m
