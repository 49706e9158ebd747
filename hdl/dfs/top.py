# Ref: docs/dfs.md (the plan this file wires up); the patent's figure 1 (a DFS
#      with external and internal network connections and a message bus).
"""The data flow segment: every block wired together.

``DFSCore`` has ``ports`` network ports as packet streams (``rx[i]`` in,
``tx[i]`` out; frames without FCS), so a board puts a MAC on each and the
simulator drives them directly.  Port roles: ``external_ports`` face the
clients (virtual servers are matched there), ``internal_port`` faces the
nodes and carries the message port.

Per port::

    rx ─┬─► arbiter(rx, miss-path release) ─► fork ─► frame buffer ───────────┐
        │                                        └──► parser ─► frame info ─► forwarder
        │                                                                      │ decision + frame
        │                                                          rewriter ◄──┘
        │                                                             │ per-frame demux by egress port
        └──────────────────────────────────────── egress arbiter ◄────┘ ◄── ARP replies, message port

Shared: the flow table (lookups and counter updates arbitrated between
ports), the virtual-server CAM, the miss path, the flow controller and the
message port.
"""

from functools import partial

from amaranth import Const, Module, Signal, Value
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from twinplane.model.dfs import HELD_BYTES_PER_FLOW, HELD_PER_FLOW
from twinplane.model.flowkey import ACTION_WIDTH, KEY_WIDTH
from twinplane.model.flowtable import FlowGeometry

from ..arp.responder import ArpResponder
from ..flowtable import FlowTable
from ..miss.miss_path import MissPath
from ..msgport.port import MessagePort
from ..packet import packet_layout, packet_signature
from ..rewrite.command_rewriter import CommandRewriter
from ..stream.arbiter import FrameArbiter
from ..stream.block_fifo import BlockFIFO
from ..stream.register import PipelineRegister, StreamRegister
from ..stream.skid import SkidBuffer
from .adapters import CamAdapter, DecisionToCommand, ParserAdapter
from .flow_control import FlowController, query_layout, tcp_event_layout
from .fork import FrameDemux, StreamFork
from .forwarder import Forwarder, frame_info_layout
from .seconds_to_ticks import SecondsToTicks
from .table_clients import LookupSharer, TurnMerger

__all__ = ["DEFAULT_GEOMETRY", "DFSCore"]

#: The flow table of the boards' default build (see docs/boards.md for sizes).
DEFAULT_GEOMETRY = FlowGeometry(
    key_width=KEY_WIDTH, action_width=ACTION_WIDTH, buckets=128, ways=2, tables=4, ts_width=16
)

_COUNTERS = (
    "flows_installed",
    "queries_sent",
    "deletes_sent",
    "evictions",
    "miss_dropped_no_slot",
    "miss_dropped_queue_full",
    "miss_timeouts",
    "miss_frames_dropped",
    "msg_rx_accepted",
    "msg_rx_bad_tag",
    "msg_rx_not_cs",
)


def _connect_by_field(m, source, sink):
    """``source`` -> ``sink``, streams whose payloads have the same field names
    in shapes of their own (the miss path's slot numbers are narrower than
    the flow controller's): each field assigned, as ``connect`` cannot."""
    m.d.comb += [sink.valid.eq(source.valid), source.ready.eq(sink.ready)]
    shape = sink.payload.shape()
    if isinstance(shape, data.StructLayout):
        for name, _ in shape:
            m.d.comb += getattr(sink.payload, name).eq(getattr(source.payload, name))
    else:
        m.d.comb += sink.payload.eq(source.payload)


def _through(m, name, register, source, sink=None):
    """``source`` -> a stream register (hdl/stream: ``register`` of the
    source's payload) called ``name`` -> ``sink``: a register between two
    blocks.  Returns it (its ``source`` for a caller that has no sink yet)."""
    m.submodules[name] = reg = register(stream.Signature(source.payload.shape()))
    _connect_by_field(m, source, reg.sink)
    if sink is not None:
        _connect_by_field(m, reg.source, sink)
    return reg


class DFSCore(wiring.Component):
    def __init__(
        self,
        *,
        ports: int = 2,
        external_ports: tuple[int, ...] = (0,),
        internal_port: int = 1,
        geometry: FlowGeometry = DEFAULT_GEOMETRY,
        vs_entries: int = 16,
        cs_slots: int = 2,
        miss_slots: int = 8,
        miss_slot_bytes: int = HELD_BYTES_PER_FLOW,
        frames_per_slot: int = HELD_PER_FLOW,
        miss_timeout_cycles: int = 125_000_000,
        tick_cycles: int = 1 << 24,
        clk_hz: int = 125_000_000,
        frame_buffer_bytes: int = 4096,
        nonce_seed: int = 0x9E3779B97F4A7C15,
        close_linger: int = 16,
    ):
        if not isinstance(ports, int) or not 1 <= ports <= 4:
            raise ValueError(f"ports must be 1..4, not {ports!r}")
        if not external_ports or any(not 0 <= p < ports for p in external_ports):
            raise ValueError(f"external_ports must name ports below {ports}, not {external_ports!r}")
        if not 0 <= internal_port < ports:
            raise ValueError(f"internal_port must be below {ports}, not {internal_port!r}")
        if len(external_ports) != 1:
            raise ValueError(f"one external port is supported for now (one miss path), not {external_ports!r}")
        if not isinstance(tick_cycles, int) or tick_cycles < 1:
            raise ValueError(f"tick_cycles must be a positive integer, not {tick_cycles!r}")
        ms_per_tick = max(1, round(tick_cycles * 1000 / clk_hz))
        self._ports = ports
        self._external = tuple(external_ports)
        self._internal = internal_port
        self.geometry = geometry
        self._args = dict(
            vs_entries=vs_entries, cs_slots=cs_slots, miss_slots=miss_slots, miss_slot_bytes=miss_slot_bytes,
            frames_per_slot=frames_per_slot, miss_timeout_cycles=miss_timeout_cycles, tick_cycles=tick_cycles,
            ms_per_tick=ms_per_tick, frame_buffer_bytes=frame_buffer_bytes, nonce_seed=nonce_seed,
            close_linger=close_linger,
        )
        super().__init__(
            {
                "rx": In(packet_signature(8)).array(ports),
                "tx": Out(packet_signature(8)).array(ports),
                "key": In(128),
                "own_mac": In(48),
                "own_ip": In(32),
                # Messages are taken only from sources in cs_net/cs_prefix (0: any).
                "cs_net": In(32),
                "cs_prefix": In(range(33)),
                "now": Out(geometry.ts_width),
                **{name: Out(32) for name in _COUNTERS},
            }
        )

    def elaborate(self, platform):
        m = Module()
        g, a = self.geometry, self._args
        n = self._ports

        # -- which sources may send messages: the prefix as a mask, registered
        # (configuration changes rarely; the shifter stays off every path).
        cs_mask = Signal(32)
        m.d.sync += cs_mask.eq(~(Const(0xFFFFFFFF, 32) >> self.cs_prefix))

        # -- time: one tick every tick_cycles clocks
        prescaler = Signal(range(a["tick_cycles"]))
        tick = Signal()  # one clock per tick: the message port counts CS expiry on it
        if a["tick_cycles"] == 1:
            m.d.comb += tick.eq(1)
        else:
            # A flop, set as the prescaler reaches tick_cycles - 2: the 24-bit
            # compare in front of the prescaler's reset was 9.6 ns routed (the
            # worst endpoints of the 5cb6190 Colorlight build).
            with m.If(tick):
                m.d.sync += [prescaler.eq(0), tick.eq(0)]
            with m.Else():
                m.d.sync += [prescaler.eq(prescaler + 1), tick.eq(prescaler == a["tick_cycles"] - 2)]
        with m.If(tick):
            m.d.sync += self.now.eq(self.now + 1)

        # -- shared blocks
        m.submodules.table = table = FlowTable(g)
        m.submodules.lookups = lookups = LookupSharer(g, n)
        touch_layout = data.StructLayout({"handle": g.handle_bits, "nbytes": g.nbytes_width, "now": g.ts_width})
        m.submodules.touches = touches = TurnMerger(touch_layout, n)
        m.submodules.tcp_events = tcp_events = TurnMerger(tcp_event_layout(g), n)
        m.submodules.control = control = FlowController(
            g, ms_per_tick=a["ms_per_tick"], close_linger=a["close_linger"], install_verdicts=True,
            pending_slots=a["miss_slots"])
        m.submodules.miss = miss = MissPath(
            key_width=g.key_width, query_shape=query_layout(), slots=a["miss_slots"],
            slot_bytes=a["miss_slot_bytes"], frames_per_slot=a["frames_per_slot"],
            timeout_cycles=a["miss_timeout_cycles"], cs_slots=a["cs_slots"],
        )
        m.submodules.msgport = msgport = MessagePort(
            cs_slots=a["cs_slots"], vs_entries=a["vs_entries"], nonce_seed=a["nonce_seed"],
            ms_per_tick=a["ms_per_tick"], install_verdicts=True,
        )
        m.submodules.cam = cam = CamAdapter(vs_entries=a["vs_entries"])

        connect(m, lookups.table_lookup, table.lookup)
        connect(m, table.result, lookups.table_result)
        # The merged counter updates reach the table from a register: the
        # table's counter read address and its FSM's "no touch now" grant
        # read ``touch.valid`` combinationally, and through the merger that
        # was a forwarder's state (254b154's worst routed path, 10.55 ns:
        # forwarder1's state -> the merger -> the flow table's age states).
        # The table takes a touch every clock, so this costs only a clock.
        _through(m, "touch", PipelineRegister, touches.source, table.touch)
        connect(m, control.cmd, table.cmd)
        connect(m, table.rsp, control.rsp)
        # A register between the merged TCP events and the flow controller's
        # Idle decision (a forwarder's FSM reached its read address through
        # the merger, 7 levels): an event a frame at most, half rate is plenty.
        _through(m, "tcp_event", StreamRegister, tcp_events.source, control.tcp_event)
        # The message port and the flow controller are the DFS's two largest
        # blocks and sit apart: the held message (which the flow controller
        # read in place) and the install verdict each cross through a
        # register (a routed worst path of the eighth session ran from the
        # message port's held message through the flow controller and back).
        # One message per CS datagram: half rate is plenty, and Yosys keeps
        # only the bits the flow controller reads (559 of them): loaded in
        # groups, each under its own copy of the "full" flop (one enable of
        # fanout 559 from a LUT was 46 late endpoints on the 25F).
        to_core_copies = max(1, Value.cast(msgport.to_core.payload).shape().width // 128)
        _through(m, "to_core", partial(StreamRegister, copies=to_core_copies), msgport.to_core, control.msg)
        connect(m, control.core_msg, msgport.from_core)
        connect(m, msgport.from_core_read, control.core_read)  # its bytes, read by index
        _through(m, "verdict", StreamRegister, control.installed, msgport.installed)  # REPLY/NEWFLOW replication
        # The flow controller takes a QUERY when it composes it (its state and
        # kind into the miss path's slot logic were 7 levels): a register.
        _through(m, "query", StreamRegister, miss.query, control.query)
        connect(m, control.resolve, miss.resolve)
        # Pending flows across a takeover (docs/redundancy.md): the miss path
        # watches the active set and asks again.
        m.d.comb += [
            miss.active_set.eq(msgport.active_set),
            miss.cs_present.eq(msgport.cs_present),
            control.core_delivered.eq(msgport.core_delivered),
            control.core_sent_to.eq(msgport.core_sent_to),
        ]
        # Where a QUERY went is known when the message port takes it (its
        # session's choice of CS); the miss path's redundancy watch decides on
        # it: a register between them.
        _through(m, "asked", PipelineRegister, control.asked, miss.asked)
        # The session's FSM decides a CAM write; the CAM decodes its index into
        # the entries' valid bits: a register between them.
        _through(m, "vs_write", StreamRegister, msgport.vs_write, cam.write)
        # The message port's configuration (CONFIG or the build's values) is
        # quasi-static: registered once here, so its muxes in the session
        # stay off the forwarders', ARP responders', rewriters' and CAM's
        # paths (6 levels from the session's registers).  A clock late is
        # nothing to a CONFIG.
        dfs_ip, dfs_mac = Signal(32), Signal(48)
        idle_timeout_s = Signal.like(msgport.idle_timeout_s)
        m.d.sync += [dfs_ip.eq(msgport.dfs_ip), dfs_mac.eq(msgport.dfs_mac),
                     idle_timeout_s.eq(msgport.idle_timeout_s)]
        m.d.comb += cam.local_addr.eq(dfs_ip)
        # CONFIG IDLE_TIMEOUT_S in ticks, for the idle scanner.
        m.submodules.idle_ticks = idle_ticks = SecondsToTicks(
            width=16, ms_per_tick=a["ms_per_tick"], ticks_width=g.ts_width)
        m.d.comb += [idle_ticks.seconds.eq(idle_timeout_s), control.idle_timeout.eq(idle_ticks.ticks)]
        m.d.comb += [
            control.now.eq(self.now),
            miss.flush.eq(control.flush_pending),
            msgport.key.eq(self.key),
            msgport.tick.eq(tick),
            msgport.own_mac.eq(self.own_mac),
            msgport.own_ip.eq(self.own_ip),
        ]

        # -- per port: ingress
        egress_inputs: list[list] = [[] for _ in range(n)]
        rewriter_outputs = []
        forwarders = []
        for p in range(n):
            external = p in self._external
            fwd = Forwarder(g, external=external, port=p)
            forwarders.append(fwd)
            m.submodules[f"forwarder{p}"] = fwd
            m.submodules[f"parser{p}"] = parser = ParserAdapter()
            m.submodules[f"fork{p}"] = fork = StreamFork(packet_layout(8))
            depth = a["frame_buffer_bytes"]
            # Block RAM read through its output register (hdl/stream/block_fifo.py):
            # lib.fifo's read without it (5.8 ns) went through a LUT into the
            # next flop (7 levels), its level compare into its ready (6).
            m.submodules[f"buffer{p}"] = buffer = BlockFIFO(packet_layout(8), depth)
            m.submodules[f"tags{p}"] = tags = fifo.SyncFIFOBuffered(width=1, depth=16)

            if external:
                # Released frames of pending flows come round again on their port.
                m.submodules[f"ingress{p}"] = ingress = FrameArbiter(2)
                connect(m, flipped(self.rx[p]), ingress.sinks[0])
                # Through a skid buffer: the arbiter's grant, as its ready,
                # ran on into the miss path's reader and frame counts (4
                # levels across the blocks).
                _through(m, "release", SkidBuffer, miss.release, ingress.sinks[1])
                # The arbiter's choice through a skid buffer: it ran through the
                # fork into the frame buffer's write and level (7 levels), and
                # the fork's ready back into the MAC's and the miss path's.
                _through(m, f"ingress_reg{p}", SkidBuffer, ingress.source, fork.sink)
                first = ingress.source.valid & ingress.source.ready & ingress.source.payload.first
                tag = ingress.grant == 1
            else:
                # Through a skid buffer as well: the fork's ready (the frame
                # buffer's full, the parser's register) ran back into the
                # MAC FIFO's read enable (mac1.mac.fifo CEB 7.43 ns on the
                # 25F, syn_a seed 5).
                _through(m, f"ingress_reg{p}", SkidBuffer, self.rx[p], fork.sink)
                first = fork.sink.valid & fork.sink.ready & fork.sink.payload.first
                tag = 0
            # The tag is written a clock after the frame's first byte: the
            # fork's ready (the frame buffer's level, the parser's state) ran
            # on into the tag FIFO's level (7 levels).  It is read with the
            # frame's record, clocks after its last byte.
            tag_w_en, tag_w_data = Signal(name=f"tag_w_en{p}"), Signal(name=f"tag_w_data{p}")
            m.d.sync += [tag_w_en.eq(first), tag_w_data.eq(tag)]
            m.d.comb += [tags.w_en.eq(tag_w_en), tags.w_data.eq(tag_w_data)]

            # fork -> frame buffer and parser
            connect(m, fork.a, buffer.sink)
            # The parser's bytes through a register on valid and payload: the
            # MAC's valid and the ingress arbiter's choice went through the fork
            # into the parser's capture enables (7 levels).  Its ready passes
            # (of the parser's flops).
            _through(m, f"parse_in{p}", PipelineRegister, fork.b, parser.sink)
            # The buffer's word is a flop (the block RAM's output register); a
            # skid buffer after it, so the forwarder's ready reaches only flops.
            m.submodules[f"buffer_out{p}"] = buffer_out = SkidBuffer(packet_signature(8))
            connect(m, buffer.source, buffer_out.sink)
            connect(m, buffer_out.source, fwd.frame)
            # parser record + released tag -> frame info, through a register:
            # the forwarder's FSM took it straight into the parser's field
            # enables, the tag FIFO and (by the fork) the frame buffer, 7
            # levels.  A record a frame: half rate is plenty.  The forwarder
            # reads it here, in place, and takes it with the frame's last byte.
            m.submodules[f"meta{p}"] = meta = StreamRegister(stream.Signature(frame_info_layout()))
            m.d.comb += [
                meta.sink.valid.eq(parser.info.valid & tags.r_rdy),
                meta.sink.payload.eq(parser.info.payload),
                meta.sink.payload.released.eq(tags.r_data),
                parser.info.ready.eq(meta.sink.ready & tags.r_rdy),
                tags.r_en.eq(meta.sink.ready & parser.info.valid),
            ]
            connect(m, meta.source, fwd.meta)

            m.d.comb += [fwd.dfs_ip.eq(dfs_ip), fwd.now.eq(self.now),
                         fwd.cs_net.eq(self.cs_net), fwd.cs_mask.eq(cs_mask)]
            connect(m, fwd.lookup, lookups.lookups[p])
            connect(m, lookups.results[p], fwd.result)
            connect(m, fwd.touch, touches.sinks[p])
            connect(m, fwd.tcp_event, tcp_events.sinks[p])

            if external:
                connect(m, fwd.vs_query, cam.query)
                connect(m, cam.answer, fwd.vs_answer)
                connect(m, fwd.hold, miss.hold)
                # The held frame's bytes through a register on valid and payload
                # (the forwarder's FSM reached the miss path's writer FSM, 6
                # levels); the hold record is offered until taken, so it still
                # meets its first byte.
                _through(m, "hold_frame", PipelineRegister, fwd.hold_frame, miss.sink)
                # The forwarder looks at the probe's answer after the flow
                # table's result: its key (the frame's record) is there from
                # "Waiting for a frame" on, then come Classifying, Looking up,
                # the lookup sharer's register, the table's latency and the
                # sharer's held result, ``table.latency + 4`` clocks at least
                # (+ 3 here, a clock to spare): the miss path must have
                # answered by then.
                if miss.probe_latency > table.latency + 3:
                    raise ValueError(f"the miss path answers a probe in {miss.probe_latency} clocks, "
                                     f"after the flow table's {table.latency}: fewer miss slots")
                m.d.comb += [
                    miss.probe_key.eq(fwd.probe_key),
                    fwd.probe_hit.eq(miss.probe_hit),
                    fwd.probe_state.eq(miss.probe_state),
                ]
            else:
                # No virtual servers and no new flows on this side: the
                # forwarder of an internal port never asks nor holds.
                m.d.comb += [fwd.hold.ready.eq(1), fwd.hold_frame.ready.eq(1)]

            if p == self._internal:
                # A skid buffer between the forwarder's byte count and the
                # receiver's FSM and its clears (the whole DFS's worst path,
                # eighth session).  The side-band below is sampled with the
                # message's first byte, which is at least a UDP header into
                # the frame and a message header before its end, so the
                # forwarder (at most two bytes ahead) is still on that frame.
                _through(m, "message_in", SkidBuffer, fwd.message_frame, msgport.rx)
                m.d.comb += [
                    msgport.rx_bus.eq(fwd.message_bus),
                    msgport.rx_src_mac.eq(fwd.message_src.mac),
                    msgport.rx_src_ip.eq(fwd.message_src.ip),
                    msgport.rx_src_port.eq(fwd.message_src.port),
                ]
            else:
                m.d.comb += fwd.message_frame.ready.eq(1)

            # ARP replies leave on the port the request came in on.
            m.submodules[f"arp{p}"] = arp = ArpResponder()
            m.d.comb += arp.own_mac.eq(dfs_mac)
            connect(m, fwd.arp_request, arp.request)
            # Through a skid buffer: the egress register's ready ran through
            # the egress arbiter into the responder's state (4-5 levels).
            egress_inputs[p].append(_through(m, f"arp_out{p}", SkidBuffer, arp.source).source)

            # Rewrite, then steer each frame to its egress port.  The decision
            # is made of the frame's record and table answer, which the
            # registers in front of the forwarder hold, and is offered from a
            # flop until the rewriter takes it (when the frame's first byte
            # reaches it): no register of its own (a 292-bit copy before),
            # and both directions start at flops (the rewriter's ``load`` is
            # its flops'), as a FIFO's would not (the forwarder's FSM reached
            # its write enables, 298 bits, 4 levels).
            # Its source MAC is the DFS's own (``dfs_mac``, a register): read in place.
            m.submodules[f"rewriter{p}"] = rewriter = CommandRewriter(held_eth_src=True)
            m.submodules[f"command{p}"] = to_command = DecisionToCommand()
            m.submodules[f"egress_ports{p}"] = ports = fifo.SyncFIFOBuffered(width=2, depth=8)
            m.submodules[f"demux{p}"] = demux = FrameDemux(n)
            # The frame's egress port goes into its FIFO as the rewriter takes
            # the decision (the frame reaches the demux after that).
            # Room in the FIFO, registered: its level compare went through the
            # decision's valid into the rewriter's input ready and on into the
            # forwarder and the frame buffer's skid (7 levels).  The port is
            # written a clock after the take, from flops (the rewriter's
            # ``load``, fanout 316, ran on through the write into the FIFO's
            # level, 5 levels).  Decided from the level a clock old, with one
            # write a clock at most and one in flight: at most depth - 4
            # then leaves room for this clock's take.
            d = fwd.decision
            room = Signal(name=f"egress_room{p}", init=1)
            port_taken, taken_port = Signal(name=f"egress_port_taken{p}"), Signal(ports.width, name=f"egress_port{p}")
            m.d.sync += [room.eq(ports.w_level <= ports.depth - 4),
                         port_taken.eq(d.valid & to_command.decision.ready & room),
                         taken_port.eq(d.payload.action.egress_port)]
            m.d.comb += [
                to_command.decision.valid.eq(d.valid & room),
                to_command.decision.payload.eq(d.payload),
                d.ready.eq(to_command.decision.ready & room),
                ports.w_en.eq(port_taken),
                ports.w_data.eq(taken_port),
                to_command.own_mac.eq(dfs_mac),
            ]
            connect(m, to_command.command, rewriter.command)
            # The forwarder's FSM and route gate its frame bytes, which went
            # straight into the rewriter's stage enables (6 levels): a skid
            # buffer, both directions from flops (a pipeline register's
            # passing ready took the rewriter's input ready, of the decision's
            # valid and its line, into the forwarder's FSM and the frame
            # buffer's skid, 6 levels).
            _through(m, f"forward{p}", SkidBuffer, fwd.forward_frame, rewriter.sink)
            connect(m, rewriter.source, demux.sink)
            # The frame's egress port through a register: the demux takes it
            # with the frame's last byte, which the egress arbiter's ready
            # decides, and that reached the FIFO's read logic (6 levels).  One
            # a frame: half rate is plenty.
            m.submodules[f"select{p}"] = select = StreamRegister(demux.select.signature.flip())
            m.d.comb += [
                select.sink.valid.eq(ports.r_rdy),
                select.sink.payload.eq(ports.r_data),
                ports.r_en.eq(select.sink.ready),
            ]
            connect(m, select.source, demux.select)
            rewriter_outputs.append(demux)

        for p in range(n):
            for q, demux in enumerate(rewriter_outputs):
                # A skid buffer from each port's demux to each egress: the
                # select's valid went through the demux and the arbiter into
                # the egress register's spare (6 levels), and the egress
                # register's ready back through both into the rewriter's
                # output stage (5).  A clock more on the fast path.
                fast = _through(m, f"fast{q}_to{p}", SkidBuffer, demux.sources[p]).source
                egress_inputs[p].insert(0, fast)  # the fast path first
        # The message port's frames through a skid buffer: the transmitter's
        # FIFO level reached the egress arbiter's grant and, through it, the
        # other sources' readies (6 levels, fanout 91).
        egress_inputs[self._internal].append(_through(m, "msgport_tx", SkidBuffer, msgport.tx).source)

        # -- per port: egress
        for p in range(n):
            # The choice in a clock of its own between frames: the demux of
            # every port (and its egress-port FIFO) reached the others'
            # through the arbiter's choice, 6 levels.
            m.submodules[f"egress{p}"] = egress = FrameArbiter(len(egress_inputs[p]), registered_choice=True)
            for i, source in enumerate(egress_inputs[p]):
                connect(m, source, egress.sinks[i])
            # The arbiter's choice and mux end in flops, and so does the MAC's ready.
            _through(m, f"egress_reg{p}", SkidBuffer, egress.source, self.tx[p])

        m.d.comb += [
            self.flows_installed.eq(control.flows_installed),
            self.queries_sent.eq(control.queries_sent),
            self.deletes_sent.eq(control.deletes_sent),
            self.evictions.eq(control.evictions),
            self.miss_dropped_no_slot.eq(miss.dropped_no_slot),
            self.miss_dropped_queue_full.eq(miss.dropped_queue_full),
            # Pending flows given up without a REPLY, and the held frames that
            # went with refused or given-up flows: losses a user must see.
            self.miss_timeouts.eq(miss.timeouts),
            self.miss_frames_dropped.eq(miss.frames_dropped_refused),
            self.msg_rx_accepted.eq(msgport.rx_accepted),
            self.msg_rx_bad_tag.eq(msgport.rx_bad_tag),
            # Only the internal port takes messages.
            self.msg_rx_not_cs.eq(forwarders[self._internal].dropped_not_cs),
        ]
        return m
