"""Adapters between the DFS top and the blocks it is made of: they turn one
block's record into what the next one wants, so each block keeps the
interface that suits it."""

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from twinplane.model.frames import FragmentKind, FrameClass

from ..msgport.session import vs_write_layout
from ..packet import packet_signature
from ..parser.layout import FLOW_FIELDS
from ..parser.parser import HeaderParser
from ..rewrite.layout import RewriteCommand
from ..vscam.vs_cam import VirtualServerCAM, vs_lookup_layout
from .forwarder import FrameKind, decision_layout, frame_info_layout

__all__ = ["CamAdapter", "DecisionToCommand", "ParserAdapter"]


class ParserAdapter(wiring.Component):
    """The header parser, its records turned into the forwarder's frame info.

    Only TCP and UDP (not later fragments, which have no ports) are flows;
    ICMP and other IPv4 are not forwarded yet (counted as "other")."""

    sink: In(packet_signature(8))
    info: Out(stream.Signature(frame_info_layout()))

    def elaborate(self, platform):
        m = Module()
        m.submodules.parser = parser = HeaderParser(zero_unused=False)  # the forwarder reads a field only where its class defines it
        connect(m, flipped(self.sink), parser.sink)
        meta = parser.meta.payload
        info = self.info.payload
        m.d.comb += [
            self.info.valid.eq(parser.meta.valid),
            parser.meta.ready.eq(self.info.ready),
            info.eth_src.eq(meta.eth_src),
            info.vlan_valid.eq(meta.vlan),
            info.vlan_id.eq(meta.vlan_id),
            *(info[name].eq(meta[name]) for name in FLOW_FIELDS),
            info.ip_length.eq(meta.ip_total_length),
            # The UDP datagram ends where the IPv4 packet ends (Ethernet padding follows):
            # one add here rather than two subtracts and an add in front of the forwarder's register.
            info.ip_end.eq(meta.l3_offset + meta.ip_total_length),
            info.arp_request.eq(meta.arp_oper == 1),
        ]
        with m.Switch(meta.klass):
            with m.Case(FrameClass.MALFORMED):
                m.d.comb += info.kind.eq(FrameKind.DROP)
            with m.Case(FrameClass.ARP):
                m.d.comb += info.kind.eq(FrameKind.ARP)
            with m.Case(FrameClass.IPV4_TCP, FrameClass.IPV4_UDP):
                with m.If(meta.fragment == FragmentKind.LATER):
                    m.d.comb += info.kind.eq(FrameKind.OTHER_IPV4)
                with m.Else():
                    m.d.comb += info.kind.eq(FrameKind.FLOW)
            with m.Default():
                m.d.comb += info.kind.eq(FrameKind.OTHER_IPV4)
        return m


class CamAdapter(wiring.Component):
    """The virtual-server CAM (:class:`VirtualServerCAM`) behind the
    forwarder's question/answer handshake.  A question with protocol 0 asks
    "should the DFS answer ARP for this address?"; any other is a virtual
    server lookup.  Precedence and ARP rules are the CAM's (hdl/vscam).

    A question is taken as soon as none is open (``query.ready`` a flop) and
    handed to the CAM from the next clock on, its kind decoded as it is
    taken: the forwarder's state ran through the kind's decode and the CAM's
    ready into the CAM's question register, 5 levels across the blocks.  Its
    payload is read in place until the CAM takes it: the asker holds it
    until the answer is taken (the forwarder's record and protocol do)."""

    def __init__(self, *, vs_entries: int = 16):
        self._entries = vs_entries
        super().__init__(
            {
                "write": In(stream.Signature(vs_write_layout())),
                "local_addr": In(32),
                "query": In(stream.Signature(vs_lookup_layout())),
                "answer": Out(stream.Signature(data.StructLayout({"hit": 1, "vs_id": 16, "answer_arp": 1}))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.cam = cam = VirtualServerCAM(self._entries)
        connect(m, flipped(self.write), cam.write)
        m.d.comb += cam.local_addr.eq(self.local_addr)
        busy = Signal()  # a question is open (taken, its answer not yet taken)
        asking = Signal()  # the open question waits for the CAM to take it
        for_arp = Signal()  # its protocol is 0
        answer = Signal.like(self.answer.payload)
        answered = Signal()
        m.d.comb += self.query.ready.eq(~busy)
        with m.If(self.query.valid & ~busy):
            m.d.sync += [busy.eq(1), answered.eq(0), asking.eq(1), for_arp.eq(self.query.payload.protocol == 0)]
        m.d.comb += [cam.arp.valid.eq(asking & for_arp), cam.arp.payload.addr.eq(self.query.payload.dst_ip),
                     cam.lookup.valid.eq(asking & ~for_arp), cam.lookup.payload.eq(self.query.payload)]
        with m.If((cam.arp.valid & cam.arp.ready) | (cam.lookup.valid & cam.lookup.ready)):
            m.d.sync += asking.eq(0)
        with m.If(busy & ~asking & ~answered):
            with m.If(cam.result.valid):
                m.d.sync += [answered.eq(1), answer.hit.eq(cam.result.hit), answer.vs_id.eq(cam.result.vs_id),
                             answer.answer_arp.eq(0)]
            with m.If(cam.arp_result.valid):
                m.d.sync += [answered.eq(1), answer.hit.eq(0), answer.answer_arp.eq(cam.arp_result.answer_arp)]
        m.d.comb += [self.answer.valid.eq(busy & answered), self.answer.payload.eq(answer)]
        with m.If(self.answer.valid & self.answer.ready):
            m.d.sync += busy.eq(0)
        return m


class DecisionToCommand(wiring.Component):
    """The forwarder's decision as the command rewriter's command: one side
    of the flow translated (``rewrite_source``: source, else destination),
    the DFS's own MAC as the source.  Mirrors
    :func:`twinplane.model.rewrite.command_from_decision`."""

    decision: In(stream.Signature(decision_layout()))
    own_mac: In(48)
    command: Out(stream.Signature(RewriteCommand))

    def elaborate(self, platform):
        m = Module()
        d, c = self.decision.payload, self.command.payload
        a = d.action
        src = a.rewrite_source
        m.d.comb += [
            self.command.valid.eq(self.decision.valid),
            self.decision.ready.eq(self.command.ready),
            c.eth_dst.eq(a.eth_dst),
            c.eth_src.eq(self.own_mac),
            c.tagged.eq(d.vlan_valid),
            c.vlan_rewrite.eq(a.vlan_rewrite),
            c.vlan_id.eq(a.vlan_id),
            c.l3_offset.eq(d.l3_offset),
            c.l4_offset.eq(d.l4_offset),
            c.protocol.eq(d.protocol),
            c.l4_valid.eq(1),  # later fragments are not flows: they never reach the rewriter
            c.old_src_ip.eq(d.src_ip),
            c.old_dst_ip.eq(d.dst_ip),
            c.old_src_port.eq(d.src_port),
            c.old_dst_port.eq(d.dst_port),
            c.new_src_ip.eq(a.new_ip),
            c.new_dst_ip.eq(a.new_ip),
            c.new_src_port.eq(a.new_port),
            c.new_dst_port.eq(a.new_port),
            c.set_src_ip.eq(src & a.translate_addr),
            c.set_dst_ip.eq(~src & a.translate_addr),
            c.set_src_port.eq(src & a.translate_port),
            c.set_dst_port.eq(~src & a.translate_port),
            c.add_offsets.eq(a.add_offsets),
            c.seq_delta.eq(a.seq_delta),
            c.ack_delta.eq(a.ack_delta),
            c.drop.eq(0),
        ]
        return m
