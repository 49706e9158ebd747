"""Adapters between the DFS top and the blocks it is made of: they turn one
block's record into what the next one wants, so each block keeps the
interface that suits it."""

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from twinplane.model.frames import FragmentKind, FrameClass
from twinplane.protocol.codes import Flag

from ..msgport.session import vs_write_layout
from ..packet import packet_signature
from ..parser.parser import HeaderParser
from .forwarder import FrameKind, frame_info_layout

__all__ = ["CamAdapter", "ParserAdapter"]


class ParserAdapter(wiring.Component):
    """The header parser, its records turned into the forwarder's frame info.

    Only TCP and UDP (not later fragments, which have no ports) are flows;
    ICMP and other IPv4 are not forwarded yet (counted as "other")."""

    sink: In(packet_signature(8))
    info: Out(stream.Signature(frame_info_layout()))

    def elaborate(self, platform):
        m = Module()
        m.submodules.parser = parser = HeaderParser()
        connect(m, flipped(self.sink), parser.sink)
        meta = parser.meta.payload
        info = self.info.payload
        m.d.comb += [
            self.info.valid.eq(parser.meta.valid),
            parser.meta.ready.eq(self.info.ready),
            info.eth_src.eq(meta.eth_src),
            info.vlan_valid.eq(meta.vlan),
            info.vlan_id.eq(meta.vlan_id),
            info.src_ip.eq(meta.src_ip),
            info.dst_ip.eq(meta.dst_ip),
            info.src_port.eq(meta.src_port),
            info.dst_port.eq(meta.dst_port),
            info.protocol.eq(meta.protocol),
            info.tos.eq(meta.tos),
            info.tcp_flags.eq(meta.tcp_flags),
            info.l3_offset.eq(meta.l3_offset),
            info.l4_offset.eq(meta.l4_offset),
            info.ip_length.eq(meta.ip_total_length),
            # The UDP datagram ends where the IPv4 packet ends (Ethernet padding follows).
            info.udp_length.eq(meta.ip_total_length - (meta.l4_offset - meta.l3_offset)),
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
    """Virtual servers as the forwarder asks about them, kept in registers
    (``vs_entries`` is small: 16 by default).

    Precedence of the patent's matches: exact address and port, then
    WILDCARD_PORT (address matches), then WILDCARD_ADDR (port matches), then
    both wildcards; the lowest entry wins a tie.  An entry with a VLAN id only
    matches frames of that VLAN.  A query with protocol 0 asks "should the DFS
    answer ARP for this address?": yes for a virtual address without
    WILDCARD_ADDR or NOARP_MODE.
    """

    def __init__(self, *, vs_entries: int = 16):
        if not isinstance(vs_entries, int) or not 1 <= vs_entries <= 64:
            raise ValueError(f"vs_entries must be an integer from 1 to 64, not {vs_entries!r}")
        self._entries = vs_entries
        super().__init__(
            {
                "write": In(stream.Signature(vs_write_layout())),
                "query": In(stream.Signature(data.StructLayout(
                    {"dst_ip": 32, "dst_port": 16, "protocol": 8, "vlan_id": 12}))),
                "answer": Out(stream.Signature(data.StructLayout({"hit": 1, "vs_id": 16, "answer_arp": 1}))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        n = self._entries
        entries = [Signal(vs_write_layout(), name=f"entry{i}") for i in range(n)]
        m.d.comb += self.write.ready.eq(1)
        with m.If(self.write.valid):
            for i in range(n):
                with m.If(self.write.payload.index == i):
                    m.d.sync += entries[i].eq(self.write.payload)

        q = Signal.like(self.query.payload)
        pending = Signal()
        m.d.comb += self.query.ready.eq(~pending)
        with m.If(self.query.valid & ~pending):
            m.d.sync += [q.eq(self.query.payload), pending.eq(1)]
        with m.If(self.answer.valid & self.answer.ready):
            m.d.sync += pending.eq(0)

        # match[level][i]: entry i matches at precedence level (0 = exact ... 3 = both wildcards)
        levels = [[Signal(name=f"match{level}_{i}") for i in range(n)] for level in range(4)]
        arp = Signal()
        for i, e in enumerate(entries):
            vs, flags = e.vs, e.flags
            wild_addr = (flags & Flag.WILDCARD_ADDR) != 0
            wild_port = (flags & Flag.WILDCARD_PORT) != 0
            base = e.valid & (vs.protocol == q.protocol) & ((vs.vlan_id == 0) | (vs.vlan_id == q.vlan_id))
            addr_ok = vs.virt_addr[:32] == q.dst_ip
            port_ok = vs.virt_port == q.dst_port
            m.d.comb += [
                levels[0][i].eq(base & ~wild_addr & ~wild_port & addr_ok & port_ok),
                levels[1][i].eq(base & ~wild_addr & wild_port & addr_ok),
                levels[2][i].eq(base & wild_addr & ~wild_port & port_ok),
                levels[3][i].eq(base & wild_addr & wild_port),
            ]
            with m.If(e.valid & ~wild_addr & ((flags & Flag.NOARP_MODE) == 0) & addr_ok):
                m.d.comb += arp.eq(1)

        hit = Signal()
        vs_id = Signal(16)
        for level in reversed(range(4)):  # the last assignment wins: level 0 first
            for i in reversed(range(n)):
                with m.If(levels[level][i]):
                    m.d.comb += [hit.eq(1), vs_id.eq(entries[i].vs.vs_id)]
        m.d.comb += [
            self.answer.valid.eq(pending),
            self.answer.payload.hit.eq(hit & (q.protocol != 0)),
            self.answer.payload.vs_id.eq(vs_id),
            self.answer.payload.answer_arp.eq(arp),
        ]
        return m
