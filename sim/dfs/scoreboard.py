# Ref: docs/dfs.md ("the RTL is compared against [the reference model] on
#      random traffic"); twinplane/model/dfs.py (ReferenceDFS, the oracle).
"""A scoreboard of the whole DFS gateware (``DFSCore``) against
``ReferenceDFS`` on random traffic, in Amaranth's simulator.

Every input (client and node frames, ARP, malformed and unknown traffic, the
CS's messages, forged ones included) goes to both; the frames that leave each
port of the gateware must equal the model's byte for byte, in order per port,
and the messages the gateware sends (decoded) must equal the model's, in
order.  At the end the counters must agree and a DUMP read back through the
message port must list the same flows with the same counters on both.

Two engines run it: Amaranth's simulator on ``DFSCore`` alone
(:func:`run_scoreboard`), and cocotb on Icarus with GMII MACs and
cocotbext-eth's GMII models on the wire (``sim/dfs/pipeline_tb.py``, which
drives :class:`Scoreboard` through a wire-level ``World``).

Time: the gateware's ``now`` ticks every ``TICK_CYCLES`` clocks; the model is
given ``now = tick * tick_s``.  A step starts only when it can finish inside
the current tick (else it waits for the next), so both see the same tick for
every touch, insert and eviction.  At each new tick the gateware's idle
scanner gets a few hundred clocks, then the model is polled: closed flows
(FIN both ways, RST) are deleted by both after the close linger.
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import os
import random

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from twinplane.hdl.dfs.top import DFSCore
from twinplane.model.dfs import DfsConfig, PortRole, ReferenceDFS
from twinplane.model.dfs_csmb import RESET_REASON_NO_FLOWS
from twinplane.model.flowkey import ACTION_WIDTH, KEY_WIDTH
from twinplane.model.flowtable import FlowGeometry
from twinplane.protocol.codec import Codec, auth_response, session_id
from twinplane.protocol.codes import CSMB_UDP_PORT, SSMB_UDP_PORT, Bus, DeleteReason, ErrorCode, Flag, Role
from twinplane.protocol.messages import (
    AddVs,
    CsmbAuthChallenge,
    CsmbHello,
    FlowSignature,
    SsmbDump,
    SsmbQuery,
    SsmbReply,
    SsmbReset,
    Translation,
    VirtualServer,
)

from .world import CS_IP, CS_MAC, CS_PORT, DFS_IP, DFS_MAC, GEOMETRY, KEY, World, run_world

__all__ = ["SMALL_GEOMETRY", "TICK_CYCLES", "Scoreboard", "make_dut", "run_checksum_corners", "run_scoreboard",
           "seed_and_steps"]

TICK_CYCLES = 4000
CLOSE_LINGER = 2  # ticks (short, so that closes are deleted within a short run)
VIP, VIP2 = "10.0.0.100", "10.0.0.101"
NODES = [("10.1.0.11", "02:00:00:00:01:11"), ("10.1.0.12", "02:00:00:00:01:12"),
         ("10.1.0.13", "02:00:00:00:01:13")]
ROUTER_MAC = "02:00:00:00:00:0c"
#: (vs_id, protocol, address, port, flags): an exact TCP server, a wildcard-port
#: TCP server on a second address, an exact UDP server.
VSS = [(7, 6, VIP, 80, Flag.NONE), (3, 6, VIP2, 0, Flag.WILDCARD_PORT), (5, 17, VIP, 53, Flag.NONE)]


#: An eight-entry flow table: evictions (figure 21) happen within a short run.
SMALL_GEOMETRY = FlowGeometry(key_width=KEY_WIDTH, action_width=ACTION_WIDTH, buckets=4, ways=1, tables=2)


def seed_and_steps(default_steps: int, default_seed: int = 11) -> tuple[int, int]:
    """A run's seed and length: ``TWINPLANE_SCOREBOARD_SEED`` (a number, or
    ``random``) and ``TWINPLANE_SCOREBOARD_STEPS`` replay or lengthen it."""
    seed = os.environ.get("TWINPLANE_SCOREBOARD_SEED", str(default_seed))
    seed = random.randrange(1 << 32) if seed == "random" else int(seed)
    return seed, int(os.environ.get("TWINPLANE_SCOREBOARD_STEPS", default_steps))


def make_dut(geometry: FlowGeometry = GEOMETRY) -> DFSCore:
    return DFSCore(geometry=geometry, tick_cycles=TICK_CYCLES, frame_buffer_bytes=2048,
                   close_linger=CLOSE_LINGER)


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


#: The model follows an authentication while it holds no flow with
#: SsmbReset(reason 1) (the handshake's "RESET after a restart"); the
#: gateware's session engine does not send it.  Left out of the model's
#: stream, with its sequence number (the gateware's seq does not count it).


def _normal(msg):
    """A message as compared: header and body, without the stats' ages
    (milliseconds from ticks on one side, from seconds on the other)."""
    fields = dict(vars(msg))
    if "stats" in fields:
        fields["stats"] = dataclasses.replace(fields["stats"], age_ms=0, idle_ms=0)
    return type(msg).__name__, fields


#: Deletions the idle scanner makes: it visits the table from wherever its
#: cursor stands, the model walks its flows in insertion order.
_SWEEP_REASONS = (DeleteReason.FIN, DeleteReason.RST, DeleteReason.IDLE)


def _run_kind(name: str, fields: dict) -> str | None:
    if name == "SsmbStats":
        return "SsmbStats run"
    if name == "SsmbDelete" and fields["stats"].reason in _SWEEP_REASONS:
        return "SsmbDelete sweep"
    return None


def _runs(msgs: list) -> list:
    """Messages whose order says nothing, each run of them in serial order:

    * a DUMP's STATS: the gateware walks its table by handle, the model sorts
      by serial; the CS collects them until END;
    * the DELETEs of one sweep (closes that lingered, idle flows): each names
      its own flow, and the scanner's order depends on where its cursor was.

    Their sequence numbers still must match as a set.  Evictions' DELETEs
    (one per insert) keep their order."""
    out, run, kind = [], [], None
    for name, fields in msgs + [("", {})]:
        this = _run_kind(name, fields) if name else None
        if run and this != kind:
            seqs = sorted(f["seq"] for f in run)
            run = sorted(({**f, "seq": 0} for f in run), key=lambda f: f["serial"])
            out.append((kind, seqs, run))
            run = []
        kind = this
        if this is not None:
            run.append(fields)
        elif name:
            out.append((name, fields))
    return out


@dataclasses.dataclass
class _Flow:
    client_ip: str
    sport: int
    vs: tuple
    dport: int
    node: tuple | None = None
    node_port: int = 0


class Scoreboard:
    def __init__(self, w: World, rng: random.Random, geometry: FlowGeometry = GEOMETRY):
        self.w, self.rng, self.geometry = w, rng, geometry
        self.nonce = b""
        self.model: ReferenceDFS | None = None
        self.model_codec = Codec(KEY)
        self.expected: dict[int, list[bytes]] = {0: [], 1: []}
        self.msgs_rtl: list = []
        self.msgs_model: list = []
        self.sent: list[tuple[Bus, bytes]] = []  # authentic datagrams, for replays
        self.flows: list[_Flow] = []
        self.epoch = 0
        self.model_seq_skew = 0
        self.last_tick = 0
        self.tick_edge = 0
        self.compared = {"frames": 0, "messages": 0}
        self.p_notavail, self.p_offsets = 0.08, 0.3  # how the scripted CS answers
        self.sent_frames: list[bytes] = []  # data frames out of the gateware (compared)

    # -- time ------------------------------------------------------------------------------------
    def tick(self) -> int:
        return self.w.ctx.get(self.w.dut.now)

    def now(self) -> float:
        return self.tick() * self.model.config.tick_s

    async def room(self, cycles: int = 1200):
        """Wait, if needed, until a step of ``cycles`` clocks fits in one tick;
        at each new tick let the idle scanner run, then poll the model."""
        while True:
            t = self.tick()
            if t != self.last_tick:
                self.last_tick, self.tick_edge = t, self.w.cycle
                await self.idle(400)
                self.model.poll(self.now())
                await self.settle()
                continue
            if self.w.cycle - self.tick_edge + cycles < TICK_CYCLES:
                return
            await self.w.ctx.tick()

    async def next_tick(self):
        """Wait for the gateware's next tick and let both handle it (as
        :meth:`room` does at every tick)."""
        t = self.tick()
        while self.tick() == t:
            await self.w.ctx.tick()
        await self.room(0)

    async def idle(self, cycles: int):
        for _ in range(cycles):
            await self.w.ctx.tick()

    # -- inputs to both --------------------------------------------------------------------------
    async def frame(self, port: int, frame: bytes):
        await self.room(len(frame) + 600)
        await self.w.send(port, frame)
        for out_port, out in self.model.receive_frame(port, frame, self.now()):
            self.expected[out_port].append(out)
        await self.settle()

    def stamp(self, msg, *, epoch: int | None = None):
        self.w.stamp(msg)
        msg.epoch = self.epoch if epoch is None else epoch
        return msg

    async def datagram(self, bus: Bus, payload: bytes, *, settle: bool = True):
        frame = (Ether(src=CS_MAC, dst=DFS_MAC) / IP(src=CS_IP, dst=DFS_IP)
                 / UDP(sport=CS_PORT, dport=CSMB_UDP_PORT if bus is Bus.CSMB else SSMB_UDP_PORT) / payload)
        await self.room(len(frame) + 800)
        await self.w.send(1, bytes(frame))
        if self.model is not None:
            self.model.receive_message(bus, payload, (CS_IP, CS_PORT), self.now())
        if settle:
            await self.settle()

    async def message(self, msg, *, epoch: int | None = None):
        payload = self.w.codec.encode(self.stamp(msg, epoch=epoch))
        self.sent.append((msg.BUS, payload))
        await self.datagram(msg.BUS, payload)

    # -- outputs of both -------------------------------------------------------------------------
    def _collect(self):
        for port in (0, 1):
            frames, self.w.out[port] = self.w.out[port], []
            for frame in frames:
                packet = Ether(frame)
                if port == 1 and UDP in packet and packet[IP].src == DFS_IP and \
                        packet[UDP].sport in (CSMB_UDP_PORT, SSMB_UDP_PORT):
                    self.msgs_rtl += self.w.cs_decode(packet)
                    continue
                want = self.expected[port].pop(0) if self.expected[port] else None
                self.sent_frames.append(frame)
                assert frame == want, (f"port {port}: the gateware sent\n  {packet!r}\nthe model\n  "
                                       f"{want and Ether(want)!r}")
                self.compared["frames"] += 1
        if self.model is not None:
            for bus, _dst, data in self.model.messages_to_send():
                for msg in self.model_codec.decode(bus, data):
                    if isinstance(msg, SsmbReset) and msg.reason == RESET_REASON_NO_FLOWS:
                        self.model_seq_skew += 1
                        continue
                    msg.seq -= self.model_seq_skew
                    self.msgs_model.append(msg)
            for port, frame in self.model.frames_to_send():
                self.expected[port].append(frame)

    async def settle(self, quiet: int = 120, limit: int = 30_000):
        """Run until the gateware has sent what the model did and then nothing
        for ``quiet`` clocks; compare."""
        calm = 0
        for _ in range(limit):
            self._collect()
            outstanding = any(self.expected.values()) or len(self.msgs_rtl) < len(self.msgs_model)
            calm = 0 if outstanding else calm + 1
            if calm >= quiet:
                break
            await self.w.ctx.tick()
            if any(self.w.out.values()):
                calm = 0
        self._collect()
        assert not any(self.expected.values()), f"the gateware did not send {self.expected!r}"
        got, want = _runs([_normal(m) for m in self.msgs_rtl]), _runs([_normal(m) for m in self.msgs_model])
        assert got == want, f"messages differ:\n gateware {got!r}\n model    {want!r}\n{self.model.counters!r}"
        self.compared["messages"] += len(got)
        replies = [m for m in self.msgs_rtl if isinstance(m, SsmbQuery)]
        self.msgs_rtl, self.msgs_model = [], []
        for query in replies:
            await self.answer(query)

    # -- the CS ----------------------------------------------------------------------------------
    async def bring_up(self):
        w = self.w
        hello = self.stamp(CsmbHello(nonce=b"cs-nonce", role=Role.ACTIVE, csmb_vers_major=1, ssmb_vers_major=1,
                                     hello_interval_ms=60_000,
                                     ssmb_addr=ipaddress.IPv4Address(CS_IP), ssmb_port=CS_PORT))
        payload = w.codec.encode(hello)
        await self.datagram(Bus.CSMB, payload, settle=False)
        (answer,) = w.cs_decode((await w.wait(1))[0])
        assert isinstance(answer, CsmbHello) and answer.error == ErrorCode.NONE
        # The model takes the gateware's nonce (both derive the session from it).
        self.nonce = answer.nonce
        config = DfsConfig(key=KEY, dfs_addr=ipaddress.IPv4Address(DFS_IP), dfs_mac=_mac(DFS_MAC),
                           port_roles=(PortRole.EXTERNAL, PortRole.INTERNAL), geometry=self.geometry,
                           tick_s=0.001, max_pending=8, max_held_total=64,
                           close_linger_ticks=CLOSE_LINGER, pending_timeout_s=1000.0,
                           randbytes=lambda n: self.nonce[:n])
        self.model = ReferenceDFS(config)
        self.last_tick, self.tick_edge = self.tick(), self.w.cycle
        self.model.receive_message(Bus.CSMB, payload, (CS_IP, CS_PORT), self.now())
        self.msgs_rtl.append(answer)
        await self.settle()
        challenge = b"12345678"
        await self.message(CsmbAuthChallenge(challenge=challenge))
        w.session = session_id(KEY, challenge, self.nonce)
        self.epoch = 1  # the CS moves on to epoch 1 (with its ADD_VSs), so that epoch 0 is stale
        for vs_id, protocol, addr, port, flags in VSS:
            vs = VirtualServer(vs_id=vs_id, protocol=protocol, virt_addr=ipaddress.IPv4Address(addr), virt_port=port)
            await self.message(AddVs(vs=vs, flags=flags))
        assert auth_response(KEY, challenge, self.nonce)  # (checked by the message comparison)

    async def answer(self, query: SsmbQuery):
        rng = self.rng
        flow = next((f for f in self.flows if f.client_ip == str(query.flow.src_addr)
                     and f.sport == query.flow.src_port and f.dport == query.flow.dst_port), None)
        node_ip, node_mac = rng.choice(NODES)
        node_port = rng.choice((8080, 8081, query.flow.dst_port))
        error = ErrorCode.NOTAVAIL if rng.random() < self.p_notavail else ErrorCode.NONE
        offsets = rng.random() < self.p_offsets and query.flow.protocol == 6
        xlate = Translation(node_addr=ipaddress.IPv4Address(node_ip), node_port=node_port, egress_port=1,
                            client_port=0, node_mac=_mac(node_mac), client_mac=query.client_mac,
                            vs_id=query.vs_id, node_id=NODES.index((node_ip, node_mac)) + 1,
                            seq_offset=rng.getrandbits(32) if offsets else 0,
                            ack_offset=rng.getrandbits(32) if offsets else 0)
        flags = Flag.TRANSLATE_ADDR | Flag.TRANSLATE_PORT | (Flag.ADD_TCP_OFFSETS if offsets else Flag.NONE)
        sig = FlowSignature(src_addr=query.flow.src_addr, dst_addr=query.flow.dst_addr,
                            src_port=query.flow.src_port, dst_port=query.flow.dst_port, protocol=query.flow.protocol)
        if flow is not None and error is ErrorCode.NONE:
            flow.node, flow.node_port = (node_ip, node_mac), node_port
        await self.message(SsmbReply(serial=query.serial, flags=flags, error=error, flow=sig, xlate=xlate))

    async def forged(self):
        """A message that must be counted and ignored: a bad tag, a replay or a stale epoch."""
        kind = self.rng.choice(("tag", "replay", "epoch"))
        if kind == "tag":
            payload = bytearray(self.w.codec.encode(self.stamp(SsmbDump())))
            payload[-1 - self.rng.randrange(8)] ^= 1 << self.rng.randrange(8)
            await self.datagram(Bus.SSMB, bytes(payload))
        elif kind == "replay":
            bus, payload = self.rng.choice(self.sent[1:])  # not the HELLO (a new association)
            await self.datagram(bus, payload)
        else:  # a REPLY from an older epoch (fenced: nothing installed, DUMP shows it)
            sig = FlowSignature(src_addr=ipaddress.IPv4Address("10.2.9.1"), dst_addr=ipaddress.IPv4Address(VIP),
                                src_port=self.rng.randrange(1024, 65536), dst_port=80, protocol=6)
            node_ip, node_mac = NODES[0]
            xlate = Translation(node_addr=ipaddress.IPv4Address(node_ip), node_port=80, egress_port=1,
                                node_mac=_mac(node_mac), client_mac=_mac(ROUTER_MAC), vs_id=7, node_id=1)
            await self.message(SsmbReply(serial=0, flags=Flag.TRANSLATE_ADDR, flow=sig, xlate=xlate),
                               epoch=self.epoch - 1)

    # -- clients and nodes -----------------------------------------------------------------------
    def client_packet(self, flow: _Flow, flags: str = "S", payload: bytes = b""):
        vs = flow.vs
        ip = Ether(src=ROUTER_MAC, dst=DFS_MAC) / IP(src=flow.client_ip, dst=vs[2], tos=self.rng.choice((0, 0, 2)))
        if vs[1] == 17:
            return ip / UDP(sport=flow.sport, dport=flow.dport, chksum=None if self.rng.random() < 0.7 else 0) / payload
        return ip / TCP(sport=flow.sport, dport=flow.dport, flags=flags, seq=self.rng.getrandbits(32),
                        ack=self.rng.getrandbits(32) if "A" in flags else 0) / payload

    def node_packet(self, flow: _Flow, flags: str = "A", payload: bytes = b""):
        node_ip, node_mac = flow.node
        ip = Ether(src=node_mac, dst=DFS_MAC) / IP(src=node_ip, dst=flow.client_ip)
        if flow.vs[1] == 17:
            return ip / UDP(sport=flow.node_port, dport=flow.sport) / payload
        return ip / TCP(sport=flow.node_port, dport=flow.sport, flags=flags, seq=self.rng.getrandbits(32),
                        ack=self.rng.getrandbits(32)) / payload

    def payload(self) -> bytes:
        return self.rng.randbytes(self.rng.choice((0, 0, 1, 6, 40, 200)))

    async def step(self):
        rng = self.rng
        live = [f for f in self.flows if f.node is not None]
        kind = rng.choices(("new", "client", "node", "close", "unknown", "arp", "malformed", "forged"),
                           (5, 8, 6, 3, 1, 1, 1, 1))[0]
        if kind == "new" or (kind in ("client", "node", "close") and not live):
            vs = rng.choice(VSS)
            flow = _Flow(client_ip=f"10.2.{rng.randrange(4)}.{rng.randrange(1, 250)}",
                         sport=rng.randrange(1024, 65536), vs=vs,
                         dport=vs[3] if vs[3] else rng.choice((22, 443, 8443)))
            self.flows.append(flow)
            await self.frame(0, bytes(self.client_packet(flow, "S", self.payload() if vs[1] == 17 else b"")))
        elif kind == "client":
            flow = rng.choice(live)
            await self.frame(0, bytes(self.client_packet(flow, rng.choice(("A", "PA")), self.payload())))
        elif kind == "node":
            flow = rng.choice(live)
            await self.frame(1, bytes(self.node_packet(flow, rng.choice(("A", "PA", "SA")), self.payload())))
        elif kind == "close":
            flow = rng.choice(live)
            flags = rng.choice(("FA", "FA", "R", "RA"))
            if rng.random() < 0.5:
                await self.frame(0, bytes(self.client_packet(flow, flags)))
            else:
                await self.frame(1, bytes(self.node_packet(flow, flags)))
        elif kind == "unknown":
            choice = rng.randrange(4)
            if choice == 0:  # to nobody's address
                frame = Ether(src=ROUTER_MAC, dst=DFS_MAC) / IP(src="10.2.9.9", dst="10.0.0.77") / TCP(flags="S")
                await self.frame(0, bytes(frame))
            elif choice == 1:  # not a SYN, no flow
                flow = _Flow("10.2.9.8", rng.randrange(1024, 65536), VSS[0], 80)
                await self.frame(0, bytes(self.client_packet(flow, "A")))
            elif choice == 2:  # from a node, no flow
                node_ip, node_mac = rng.choice(NODES)
                frame = Ether(src=node_mac, dst=DFS_MAC) / IP(src=node_ip, dst="10.2.9.7") / UDP(sport=1, dport=2)
                await self.frame(1, bytes(frame))
            else:  # ICMP
                await self.frame(0, bytes(Ether(src=ROUTER_MAC, dst=DFS_MAC) / IP(src="10.2.9.6", dst=VIP, proto=1)
                                          / Raw(b"\x08\x00" + bytes(30))))
        elif kind == "arp":
            port, target = rng.choice(((0, VIP), (0, VIP2), (1, DFS_IP), (0, "10.0.0.77"), (1, VIP)))
            await self.frame(port, bytes(Ether(src=ROUTER_MAC, dst="ff:ff:ff:ff:ff:ff")
                                         / ARP(op=1, hwsrc=ROUTER_MAC, psrc="10.2.0.254", pdst=target)))
        elif kind == "malformed":
            good = bytes(self.client_packet(_Flow("10.2.9.5", 4000, VSS[0], 80), "S"))
            choice = rng.randrange(3)
            if choice == 0:
                frame = good[: rng.randrange(14, 40)]  # truncated headers
            elif choice == 1:
                frame = good[:14] + bytes([0x65]) + good[15:]  # IP version 6 in an IPv4 ethertype
            else:
                frame = good[:14] + bytes([0x43]) + good[15:]  # IHL 3
            await self.frame(0, frame)
        else:
            await self.forged()

    async def finish(self) -> dict:
        """Compare the flow tables through DUMP and the counters."""
        await self.message(SsmbDump())
        # (the DUMP answers were compared message by message in settle)
        # The DUMP's answers can run past a tick: the gateware's scanner then
        # deletes a flow whose close linger ran out (counted, its DELETE on
        # its way) while the model, polled only at the next step's tick, has
        # not.  Take the next tick as a step would (scanner, model poll,
        # settle: the DELETEs compared) and read the counters inside it.
        await self.next_tick()
        assert self.tick() == self.last_tick, "the counters must be read within the tick both have seen"
        model, dut, ctx = self.model, self.w.dut, self.w.ctx
        c = model.counters
        want = {
            "flows_installed": c["flows_installed"],
            "queries_sent": c["queries"],
            "deletes_sent": c["tx_SsmbDelete"],
            "evictions": c["flows_deleted_overflow"],
            "miss_dropped_no_slot": c["drop_pending_full"],
            "miss_dropped_queue_full": c["drop_held_flow_full"],
            "miss_timeouts": c["pending_timeouts"],
            "miss_frames_dropped": c["drop_pending_timeout"] + sum(v for k, v in c.items() if k.startswith("drop_reply_")),
            "msg_rx_bad_tag": c["invalid_tag"],
        }
        got = {name: ctx.get(getattr(dut, name)) for name in want}
        assert got == want, f"counters: gateware {got!r}, model {want!r}"
        closes = c["flows_deleted_fin"] + c["flows_deleted_rst"]
        return {**got, **self.compared, "close_deletes": closes, "flows_at_end": len(model._unique_flows()), "ticks": self.tick()}


def run_scoreboard(steps: int, seed: int, geometry: FlowGeometry = GEOMETRY) -> dict:
    """``steps`` random steps (seeded); raises AssertionError on the first difference."""

    async def script(w: World) -> dict:
        board = Scoreboard(w, random.Random(seed), geometry)
        await board.bring_up()
        for _ in range(steps):
            await board.step()
        return await board.finish()

    return run_world(make_dut(geometry), script)



def _ones_sum(data: bytes) -> int:
    data = data + b"\0" * (len(data) & 1)
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def l4_checksum_verifies(packet) -> bool:
    """The one's-complement sum over pseudo-header and segment is 0xFFFF:
    true of 0x0000 and 0xFFFF alike where either represents the result
    (RFC 1624 §3), which a recomputation (always one of them) would not accept."""
    ip = packet[IP]
    segment = bytes(ip.payload)[: ip.len - ip.ihl * 4]
    pseudo = (ipaddress.IPv4Address(ip.src).packed + ipaddress.IPv4Address(ip.dst).packed
              + bytes([0, ip.proto]) + len(segment).to_bytes(2, "big"))
    return _ones_sum(pseudo + segment) == 0xFFFF


def run_checksum_corners(seed: int) -> list[bytes]:
    """TCP frames whose rewritten checksum is 0x0000 or 0xFFFF, and a UDP
    datagram with checksum 0, through the whole gateware (each compared with
    the model by the scoreboard); returns the frames the node got."""

    async def script(w: World) -> list[bytes]:
        board = Scoreboard(w, random.Random(seed))
        board.p_notavail = board.p_offsets = 0.0
        await board.bring_up()
        tcp = _Flow("10.2.0.9", 40000, VSS[0], 80)
        udp = _Flow("10.2.0.9", 40001, VSS[2], 53)
        board.flows += [tcp, udp]
        await board.frame(0, bytes(board.client_packet(tcp, "S")))
        await board.frame(0, bytes(board.client_packet(udp, "S", b"hello")))
        start = len(board.sent_frames)

        def rewritten(word: int) -> tuple[bytes, int]:
            packet = board.client_packet(tcp, "PA", word.to_bytes(2, "big") + b"corner")
            packet[TCP].seq, packet[TCP].ack = 1, 2
            frame = bytes(packet)
            ((_, out),) = copy.deepcopy(board.model).receive_frame(0, frame, board.now())
            return frame, int.from_bytes(out[50:52], "big")

        # The rewrite adds a constant to the one's-complement sum, so the
        # checksum of payload word 0 tells which words land on the zero class.
        _, c0 = rewritten(0)
        for word in {c0, (c0 - 1) & 0xFFFF, (c0 + 1) & 0xFFFF, 0, 0xFFFF, (~c0) & 0xFFFF}:
            frame, checksum = rewritten(word)
            if checksum in (0x0000, 0xFFFF):
                await board.frame(0, frame)
        datagram = board.client_packet(udp, "", b"zero")
        datagram[UDP].chksum = 0
        await board.frame(0, bytes(datagram))
        return board.sent_frames[start:]

    return run_world(make_dut(), script)
