# Ref: the patent's figure 17 (a packet of a known flow is processed and sent
#      on; a new one is queried) and the section on virtual servers ("the DFS
#      attempts to match the destination address and port number of packets
#      received from the external network to a virtual server"); docs/dfs.md.
"""Forwarder: the per-port decision, one frame at a time.

For each frame the parser has described (``meta``, in frame order) the
forwarder decides, then moves the frame's bytes (``frame``, from the port's
frame buffer, same order) to where they go:

==========================  =================================================
malformed, IPv6, non-IP,    dropped (counted: malformed or other)
later fragment
ARP request for the DFS's   an ARP reply is requested; the request itself is
address or a virtual one    consumed
UDP to the DFS's SSMB/CSMB  the UDP payload goes to the message port
port (internal side only)
flow table hit              rewritten (``decision`` + frame to the rewriter,
                            counters touched, FIN/RST reported)
pending flow (miss path     held behind the frames already waiting, even when
WAITING or RELEASING)       the table hits (no frame overtakes a held one)
miss to a virtual server    held by the miss path, which sends the QUERY
(external side)
anything else               dropped (counted)
==========================  =================================================

Frames the miss path releases come back through the port's parser with
``released`` set: they skip the pending check and take the table's action.

``meta`` and ``result`` are read where they stand: a frame's ``meta`` is
taken the clock after its last byte, its ``result`` then too (both come from
registers that hold them until taken, hdl/dfs/top.py), so the forwarder
keeps no copy of either.  The ``decision`` is made of them: it is offered
(``valid`` a flop) while the frame's bytes go out on ``forward_frame`` and
must be taken before the frame's last byte (the rewriter takes it with
the first, and a forwarded frame is a whole TCP or UDP header long).
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from twinplane.model.flowtable import FlowGeometry
from twinplane.protocol.codes import CSMB_UDP_PORT, SSMB_UDP_PORT, Bus

from ..arp.responder import arp_request_layout
from ..miss.miss_path import SlotState
from ..onehot import OneHotFSM
from ..packet import packet_signature
from ..parser.layout import FLOW_FIELDS
from .flow_control import query_layout, tcp_event_layout
from .layouts import FlowAction, FlowKey

__all__ = ["Forwarder", "decision_layout", "frame_info_layout"]

_TCP = 6
_UDP = 17
_ICMP = 1
_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10


def frame_info_layout() -> data.StructLayout:
    """What the forwarder needs to know about a frame (filled from the
    parser's record by the DFS top)."""
    return data.StructLayout(
        {
            "kind": 3,  # FrameKind
            "released": 1,  # the miss path released this frame
            "eth_src": 48,
            "vlan_valid": 1,
            "vlan_id": 12,
            **FLOW_FIELDS,
            "ip_length": 16,  # IPv4 total length
            "ip_end": 16,  # where the IPv4 packet ends in the frame (Ethernet padding follows)
            "arp_request": 1,  # ARP "who has" (oper 1)
        }
    )


class FrameKind:
    """The forwarder's view of a frame's class."""

    DROP = 0  #: malformed, IPv6, non-IP, later fragment: nothing to do
    ARP = 1
    FLOW = 2  #: IPv4 TCP, UDP or ICMP with the 5-tuple filled in
    OTHER_IPV4 = 3


def decision_layout() -> data.StructLayout:
    """A frame going to the rewriter: the table's action and the header
    values the rewriter needs (it learns old values from here, not from the
    bytes, because the IPv4 checksum passes before the addresses)."""
    return data.StructLayout(
        {
            "action": FlowAction,
            "src_ip": 32,
            "dst_ip": 32,
            "src_port": 16,
            "dst_port": 16,
            "protocol": 8,
            "vlan_valid": 1,
            "l3_offset": 8,
            "l4_offset": 8,
        }
    )


_COUNTERS = (
    "frames",
    "forwarded",
    "held",
    "to_message_port",
    "arp_answered",
    "dropped_malformed",
    "dropped_no_flow",
    "dropped_other",
    "dropped_arp",
    "dropped_not_cs",
)


class Forwarder(wiring.Component):
    def __init__(self, geometry: FlowGeometry, *, external: bool, port: int):
        if not isinstance(geometry, FlowGeometry):
            raise TypeError(f"geometry must be a FlowGeometry, not {geometry!r}")
        if not isinstance(port, int) or not 0 <= port < 4:
            raise ValueError(f"port must be 0..3, not {port!r}")
        self.geometry = g = geometry
        self._external = bool(external)
        self._port = port
        super().__init__(
            {
                "meta": In(stream.Signature(frame_info_layout())),
                "frame": In(packet_signature(8)),
                "dfs_ip": In(32),
                # messages are taken only from sources in cs_net/cs_mask (mask 0: any)
                "cs_net": In(32),
                "cs_mask": In(32),
                "now": In(g.ts_width),
                # flow table (shared; the top arbitrates)
                "lookup": Out(stream.Signature(data.StructLayout({"key": g.key_width}))),
                "result": In(stream.Signature(data.StructLayout(
                    {"key": g.key_width, "hit": 1, "handle": g.handle_bits, "action": g.action_width}))),
                "touch": Out(stream.Signature(data.StructLayout(
                    {"handle": g.handle_bits, "nbytes": g.nbytes_width, "now": g.ts_width}))),
                "tcp_event": Out(stream.Signature(tcp_event_layout(g))),
                # virtual servers (the top answers from the CAM)
                "vs_query": Out(stream.Signature(data.StructLayout(
                    {"dst_ip": 32, "dst_port": 16, "protocol": 8, "vlan_id": 12}))),
                "vs_answer": In(stream.Signature(data.StructLayout({"hit": 1, "vs_id": 16, "answer_arp": 1}))),
                # miss path
                "probe_key": Out(g.key_width),
                "probe_hit": In(1),
                "probe_state": In(2),
                "hold": Out(stream.Signature(data.StructLayout({"key": g.key_width, "query": query_layout()}))),
                "hold_frame": Out(packet_signature(8)),
                # where frames go
                "decision": Out(stream.Signature(decision_layout())),
                "forward_frame": Out(packet_signature(8)),
                "message_frame": Out(packet_signature(8)),
                "message_bus": Out(1),
                "message_src": Out(data.StructLayout({"mac": 48, "ip": 32, "port": 16})),
                "arp_request": Out(stream.Signature(arp_request_layout())),
                **{name: Out(32) for name in _COUNTERS},
            }
        )

    def elaborate(self, platform):
        m = Module()
        # The frame's record and its lookup's answer, held by the registers in
        # front until the frame's last byte (no copy here: 400-odd flops).
        info = self.meta.payload
        key = Signal(FlowKey)
        result = self.result.payload
        byte_index = Signal(16)
        # Message frames: the UDP payload's first and last byte and whether
        # the byte is inside it, as flops set a byte ahead (compared with
        # the byte before each: start - 1, end - 2); the 16-bit compares of
        # byte_index ran on into the message port's skid buffer, 5-6 levels
        # across blocks.
        # ``nonempty``: the payload has a byte (ip_end > l4_offset + 8), in
        # two registered steps every clock from the record (held from
        # "Classifying" on; read first at the payload's start, bytes later):
        # loaded in Classifying, the add and the compare were 5 levels.
        nonempty = Signal()
        if not self._external:
            payload_at = Signal(9)  # l4_offset + 9, the payload's second byte
            m.d.sync += [payload_at.eq(info.l4_offset + 9), nonempty.eq(info.ip_end >= payload_at)]
        # ``at_start``: byte_index is the byte before the UDP payload's first
        # (start - 1); ``at_end``: the byte before its last (end - 2).  Flops
        # kept with byte_index, compared as it steps with the bounds less
        # one more (start_m2, end_m3): the 16-bit compares of byte_index
        # itself were in front of msg_last, 6 levels.
        start_m2, end_m3 = Signal(16), Signal(16)
        at_start, at_end = Signal(name="at_start"), Signal(name="at_end")
        msg_first, msg_last, msg_inside = Signal(name="msg_first"), Signal(name="msg_last"), Signal(name="msg_inside")
        vs_answer = Signal.like(self.vs_answer.payload)
        cam_protocol = Signal(8)
        hold_offered = Signal()  # the hold record waits for the miss path (``hold.valid``, a flop)
        decision_offered = Signal()  # the decision waits for the rewriter (``decision.valid``, a flop)
        # The CAM question waits for the CAM (``vs_query.valid``, a flop: the
        # state's decode ran on into the CAM's question register, 5 levels),
        # raised in "Asking the CAM" itself, a clock after the state is
        # entered: raised by the states that ask (an ARP request's
        # address compare, the miss path's answer), it was 4 levels (7.36 ns
        # on the 25F, syn_f seed 4).
        query_offered = Signal()

        def count(name):
            counter = getattr(self, name)
            m.d.sync += counter.eq(counter + 1)

        m.d.comb += [
            key.src_ip.eq(info.src_ip),
            key.dst_ip.eq(info.dst_ip),
            key.src_port.eq(info.src_port),
            key.dst_port.eq(info.dst_port),
            key.protocol.eq(info.protocol),
            key.inbound.eq(self._external),
            self.probe_key.eq(key),
        ]
        # The record's compares, registered every clock: "Classifying" comes a
        # clock after "Waiting for a frame" saw the record, which the register
        # in front holds unchanged from then on, so they are its.  The 32-bit
        # compares ran on into the FSM's next state and ``route`` (7 levels).
        for_message_port = Signal()
        # The address compare a byte a flag (Yosys made the 32-bit compare a
        # 6-level chain), the flags ANDed where they are used.
        ip_bytes_eq = Signal(4)
        m.d.sync += ip_bytes_eq.eq(Cat(info.dst_ip.word_select(k, 8) == self.dfs_ip.word_select(k, 8)
                                       for k in range(4)))
        to_dfs_ip = Signal()  # the frame is addressed to the DFS's own address
        m.d.comb += to_dfs_ip.eq(ip_bytes_eq.all())
        # The message port's two UDP ports differ in their lowest bit alone:
        # one compare of the rest (two 16-bit compares and their OR were a
        # LUT level more, 4 into ``flow_to_port``: 7.47 ns on the 25F, syn_c
        # seed 4).
        assert SSMB_UDP_PORT ^ CSMB_UDP_PORT == 1
        to_port_pair = info.dst_port[1:] == SSMB_UDP_PORT >> 1
        if self._external:
            m.d.comb += for_message_port.eq(0)  # never from the external side
        else:
            to_message_port = Signal()
            m.d.sync += to_message_port.eq((info.protocol == _UDP) & to_port_pair)
            m.d.comb += for_message_port.eq(to_message_port & to_dfs_ip)
        from_cs = Signal()  # the source is one the board was told is a CS
        m.d.sync += from_cs.eq(((info.src_ip ^ self.cs_net) & self.cs_mask) == 0)
        # A FLOW frame to the message port's UDP ports (the compares of
        # ``to_message_port`` and the kind in one flop), for ``route`` (below).
        flow_to_port = Signal()
        if not self._external:
            m.d.sync += flow_to_port.eq((info.kind == FrameKind.FLOW) & (info.protocol == _UDP) & to_port_pair)
        # TCP and not a lone SYN; TCP with FIN or RST: registered as the above.
        tcp_not_syn, tcp_fin_rst = Signal(), Signal()
        m.d.sync += [
            tcp_not_syn.eq((info.protocol == _TCP) & ((info.tcp_flags & (_SYN | _ACK | _RST)) != _SYN)),
            tcp_fin_rst.eq((info.protocol == _TCP) & ((info.tcp_flags & (_FIN | _RST)) != 0)),
        ]
        m.d.comb += [
            self.message_src.mac.eq(info.eth_src),
            self.message_src.ip.eq(info.src_ip),
            self.message_src.port.eq(info.src_port),
        ]
        pending = Signal()
        m.d.comb += pending.eq(
            ~info.released
            & self.probe_hit
            & ((self.probe_state == SlotState.WAITING) | (self.probe_state == SlotState.RELEASING))
        )

        # byte routing, chosen per frame
        route = Signal(2)  # one of the four below
        ROUTE_DROP, ROUTE_FORWARD, ROUTE_HOLD, ROUTE_MESSAGE = 0, 1, 2, 3

        def discard_frame(counter):
            """Count the reason; the frame's bytes are then read and discarded."""
            if counter is not None:
                count(counter)
            fsm.goto("Moving the frame")  # route: ROUTE_DROP (below)

        # The CAM question is "answer ARP for this address?" for an ARP
        # request, else a flow's (only a flow reaches Deciding): the record's,
        # registered every clock as its compares above, not loaded by the
        # states (their decode, 6 levels, in front of the CAM question's).
        # The question is the held record's but for its protocol (0: "answer
        # ARP?"; the CAM then reads the address alone).
        # The protocol a clock behind ``asking_arp``, so that its zeroing (a
        # synchronous reset) comes from that flop alone: the kind's decode
        # from the record ran across the die into it (8.42 ns on the 25F at
        # 3d04f7a, seed 2).  A question is offered two clocks after a new
        # record is seen at the earliest ("Classifying", then "Asking the
        # CAM"), and the record is the new one from that first clock on.
        asking_arp = Signal()
        protocol_q = Signal.like(info.protocol, name="cam_protocol_in")
        m.d.sync += [asking_arp.eq(info.kind == FrameKind.ARP), protocol_q.eq(info.protocol),
                     cam_protocol.eq(Mux(asking_arp, 0, protocol_q))]

        def ask_cam():
            fsm.goto("Asking the CAM")

        # Payloads are driven in every state (they matter only with valid): set
        # in the states they would each be ANDed with the state, a LUT a bit.
        d = self.decision.payload
        m.d.comb += [
            self.arp_request.payload.requester_mac.eq(info.eth_src),
            self.arp_request.payload.requester_ip.eq(info.src_ip),
            self.arp_request.payload.target_ip.eq(info.dst_ip),
            self.vs_query.payload.dst_ip.eq(info.dst_ip),
            self.vs_query.payload.dst_port.eq(info.dst_port),
            self.vs_query.payload.protocol.eq(cam_protocol),
            self.vs_query.payload.vlan_id.eq(info.vlan_id),
            self.lookup.payload.key.eq(key),
            self.touch.payload.handle.eq(result.handle),
            self.touch.payload.nbytes.eq(info.ip_length),
            self.touch.payload.now.eq(self.now),
            self.tcp_event.payload.handle.eq(result.handle),
            self.tcp_event.payload.fin.eq((info.tcp_flags & _FIN) != 0),
            self.tcp_event.payload.rst.eq((info.tcp_flags & _RST) != 0),
            d.action.eq(result.action),
            d.src_ip.eq(info.src_ip),
            d.dst_ip.eq(info.dst_ip),
            d.src_port.eq(info.src_port),
            d.dst_port.eq(info.dst_port),
            d.protocol.eq(info.protocol),
            d.vlan_valid.eq(info.vlan_valid),
            d.l3_offset.eq(info.l3_offset),
            d.l4_offset.eq(info.l4_offset),
            self.forward_frame.payload.eq(self.frame.payload),
            self.hold_frame.payload.eq(self.frame.payload),
            self.message_frame.payload.data.eq(self.frame.payload.data),
            # valid from flops only (msg_inside is 0 outside a message
            # frame's payload), not the FSM's state decode
            self.message_frame.valid.eq(self.frame.valid & msg_inside),
            self.message_frame.payload.first.eq(msg_first),
            self.message_frame.payload.last.eq(msg_last),
        ]
        self._hold_record(m, key, info, vs_answer)
        m.d.comb += [self.hold.valid.eq(hold_offered), self.decision.valid.eq(decision_offered),
                     self.vs_query.valid.eq(query_offered)]

        with OneHotFSM(m, "Waiting for a frame", name="forwarder") as fsm:
            with fsm.state("Waiting for a frame"):
                with m.If(self.meta.valid):
                    m.d.sync += byte_index.eq(0)
                    count("frames")
                    fsm.goto("Classifying")

            with fsm.state("Classifying"):
                # A message frame's bounds, loaded whatever the frame (used
                # only on ROUTE_MESSAGE): their enables are the state's flop.
                # msg_inside is 0 here already (cleared with every frame's
                # last byte), msg_first and msg_last matter only inside.  Not
                # on the external port (never a message frame: no flops).
                if not self._external:
                    # byte_index is 0 here (and the first byte not taken).
                    m.d.sync += [
                        start_m2.eq(info.l4_offset + 6), end_m3.eq(info.ip_end - 3),
                        at_start.eq((info.l4_offset + 7)[:16] == 0), at_end.eq((info.ip_end - 2)[:16] == 0),
                        msg_first.eq(0), msg_last.eq(0), msg_inside.eq(0),
                    ]
                with m.Switch(info.kind):
                    with m.Case(FrameKind.ARP):
                        with m.If(info.arp_request & to_dfs_ip):
                            fsm.goto("Answering ARP")
                        with m.Elif(info.arp_request & self._external):
                            ask_cam()  # asking_arp
                        with m.Else():
                            discard_frame("dropped_arp")
                    with m.Case(FrameKind.FLOW):
                        with m.If(for_message_port & ~from_cs):
                            discard_frame("dropped_not_cs")
                        with m.Elif(for_message_port):
                            # a flop: the port compare ran on into the
                            # message port's receiver, 4 levels across blocks
                            m.d.sync += self.message_bus.eq(Mux(info.dst_port == CSMB_UDP_PORT, Bus.CSMB, Bus.SSMB))
                            count("to_message_port")
                            fsm.goto("Moving the frame")
                        with m.Else():
                            fsm.goto("Looking up")
                    with m.Case(FrameKind.DROP):
                        discard_frame("dropped_malformed")
                    with m.Default():
                        discard_frame("dropped_other")

            with fsm.state("Answering ARP"):
                m.d.comb += self.arp_request.valid.eq(1)
                with m.If(self.arp_request.ready):
                    discard_frame("arp_answered")

            with fsm.state("Asking the CAM"):
                with m.If(query_offered & self.vs_query.ready):
                    m.d.sync += query_offered.eq(0)
                    fsm.goto("The CAM answered")
                with m.Else():
                    m.d.sync += query_offered.eq(1)
            with fsm.state("The CAM answered"):
                m.d.comb += self.vs_answer.ready.eq(1)
                with m.If(self.vs_answer.valid):
                    m.d.sync += vs_answer.eq(self.vs_answer.payload)
                    with m.If(asking_arp & self.vs_answer.payload.answer_arp):
                        fsm.goto("Answering ARP")
                    with m.Elif(asking_arp):
                        discard_frame("dropped_arp")
                    with m.Elif(self.vs_answer.payload.hit & tcp_not_syn):
                        # Only a SYN opens a TCP flow (the model's drop_tcp_not_syn): a stray
                        # segment of a flow the DFS does not hold must not make a QUERY.
                        discard_frame("dropped_no_flow")
                    with m.Elif(self.vs_answer.payload.hit):
                        fsm.goto("Holding")
                    with m.Else():
                        discard_frame("dropped_no_flow")

            with fsm.state("Looking up"):
                m.d.comb += self.lookup.valid.eq(1)
                with m.If(self.lookup.ready):
                    fsm.goto("Waiting for the table")
            with fsm.state("Waiting for the table"):
                with m.If(self.result.valid):
                    fsm.goto("Deciding")

            with fsm.state("Deciding"):
                with m.If(pending):
                    fsm.goto("Holding")  # behind the frames already waiting
                with m.Elif(result.hit):
                    fsm.goto("Touching")
                with m.Else():
                    # a Python choice, not an Elif on a constant (Yosys's
                    # Verilog of the one-hot FSM's comb process then had an
                    # empty statement Icarus rejects)
                    if self._external:
                        ask_cam()  # a flow's
                    else:
                        discard_frame("dropped_no_flow")

            with fsm.state("Touching"):
                m.d.comb += self.touch.valid.eq(1)
                with m.If(self.touch.ready):
                    with m.If(tcp_fin_rst):
                        fsm.goto("Reporting FIN or RST")
                    with m.Else():
                        fsm.goto("Sending the decision")
            with fsm.state("Reporting FIN or RST"):
                m.d.comb += self.tcp_event.valid.eq(1)
                with m.If(self.tcp_event.ready):
                    fsm.goto("Sending the decision")
            with fsm.state("Sending the decision"):
                count("forwarded")
                m.d.sync += decision_offered.eq(1)
                fsm.goto("Moving the frame")

            with fsm.state("Holding"):
                m.d.sync += hold_offered.eq(1)
                count("held")
                fsm.goto("Moving the frame")

            with fsm.state("Moving the frame"):
                f = self.frame
                last = f.payload.last
                with m.Switch(route):
                    with m.Case(ROUTE_FORWARD):
                        m.d.comb += [
                            self.forward_frame.valid.eq(f.valid),
                            f.ready.eq(self.forward_frame.ready),
                        ]
                        # The decision is offered until the rewriter takes it, which it
                        # does before this frame's first byte leaves it (so before the
                        # last byte leaves here: the record and answer it is made of
                        # are held until then).
                        with m.If(self.decision.valid & self.decision.ready):
                            m.d.sync += decision_offered.eq(0)
                    with m.Case(ROUTE_HOLD):
                        m.d.comb += [
                            self.hold_frame.valid.eq(f.valid),
                            f.ready.eq(self.hold_frame.ready),
                        ]
                        # The hold record is offered until the miss path takes it
                        # (together with the first byte, so always in this state):
                        # its valid is a flop, not the FSM's decode, into the
                        # miss path's writer.
                        with m.If(self.hold.valid & self.hold.ready):
                            m.d.sync += hold_offered.eq(0)
                    with m.Case(ROUTE_MESSAGE):
                        # Only the UDP payload: skip the headers, cut the Ethernet padding.
                        # msg_inside's update reads this route's ready, not
                        # f.ready (the mux of every route's, two levels more)
                        msg_ready = Mux(msg_inside, self.message_frame.ready, 1)
                        m.d.comb += f.ready.eq(msg_ready)
                        with m.If(f.valid & msg_ready):
                            m.d.sync += [
                                msg_first.eq(at_start),
                                msg_last.eq(at_end),
                                msg_inside.eq(Mux(at_start, nonempty, msg_inside & ~msg_last)),
                            ]
                    with m.Default():
                        m.d.comb += f.ready.eq(1)
                with m.If(f.valid & f.ready):
                    m.d.sync += byte_index.eq(byte_index + 1)
                    if not self._external:
                        m.d.sync += [at_start.eq(byte_index == start_m2), at_end.eq(byte_index == end_m3)]
                    with m.If(last):
                        m.d.sync += msg_inside.eq(0)  # a frame cut short ends its payload too
                        fsm.goto("Done with the frame")

            with fsm.state("Done with the frame"):
                # Its record and answer (if it had one) are taken in a state of
                # their own: the readies are the state's decode, not the byte
                # handshake (7 levels into the registers in front).
                m.d.comb += [self.meta.ready.eq(1), self.result.ready.eq(1)]
                fsm.goto("Waiting for a frame")
        # The route is loaded in every state but "Moving the frame" (it is
        # read only there), from the state that goes there: FORWARD from
        # "Sending the decision", HOLD from "Holding", MESSAGE from
        # "Classifying" a message frame, else DROP.  Written where each
        # state chose it, the ARP responder's ready (arp1.busy, fanout 120)
        # and the Classifying compares ran into it, 5 levels (routed 7.10 ns,
        # build 9b18dc6).
        assert (ROUTE_DROP, ROUTE_FORWARD, ROUTE_HOLD, ROUTE_MESSAGE) == (0b00, 0b01, 0b10, 0b11)
        sending, holding = fsm.ongoing("Sending the decision"), fsm.ongoing("Holding")
        message = fsm.ongoing("Classifying") & flow_to_port & from_cs & to_dfs_ip
        with m.If(~fsm.ongoing("Moving the frame")):
            m.d.sync += route.eq(Cat(sending | message, holding | message))
        return m

    def _hold_record(self, m, key, info, vs_answer):
        q = self.hold.payload.query
        m.d.comb += [
            self.hold.payload.key.eq(key),
            q.key.eq(key),
            q.tos.eq(info.tos),
            q.vlan_valid.eq(info.vlan_valid),
            q.vlan_id.eq(info.vlan_id),
            q.ingress_port.eq(self._port),
            q.client_mac.eq(info.eth_src),
            q.vs_id.eq(vs_answer.vs_id),
            q.tcp_flags.eq(info.tcp_flags),
        ]
