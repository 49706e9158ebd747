"""A simulated world around the whole DFS gateware (``DFSCore``) in
Amaranth's simulator: frames in and out of its ports, and a CS scripted with
the host codec that speaks to the message port through frames.  Used by the
end-to-end test and by ``twinplane bench dfs``."""

from __future__ import annotations

import ipaddress

from amaranth.sim import Simulator
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from twinplane.hdl.dfs.top import DFSCore
from twinplane.model.dfs_csmb import RESET_REASON_NO_FLOWS
from twinplane.model.flowkey import ACTION_WIDTH, KEY_WIDTH
from twinplane.model.flowtable import FlowGeometry
from twinplane.protocol.codec import Codec, auth_response, session_id
from twinplane.protocol.codes import CSMB_UDP_PORT, SSMB_UDP_PORT, Bus, ErrorCode, Flag, Role
from twinplane.protocol.messages import (
    AddVs,
    CsmbAuthChallenge,
    CsmbAuthResponse,
    CsmbHello,
    FlowSignature,
    SsmbQuery,
    SsmbReply,
    SsmbReset,
    Translation,
    VirtualServer,
)
from twinplane.sim.streams import put_frame

__all__ = [
    "ModelMirror", "ScriptedCs", "World", "bring_up", "bring_up_cs", "checksums_ok", "message_summary", "open_flow",
    "reply_to", "run_world",
]

KEY = bytes(range(16))
DFS_MAC, DFS_IP = "02:00:00:00:d0:f5", "10.100.0.1"
CS_MAC, CS_IP, CS_PORT = "02:00:00:00:c5:01", "10.100.0.2", 41000
CLIENT_MAC, CLIENT_IP = "02:00:00:00:00:0c", "10.2.0.1"
NODE_MAC, NODE_IP = "02:00:00:00:01:aa", "10.1.0.1"
VIP = "10.0.0.100"
GEOMETRY = FlowGeometry(key_width=KEY_WIDTH, action_width=ACTION_WIDTH, buckets=8, ways=2, tables=2)


def checksums_ok(packet) -> bool:
    rebuilt = packet.copy()
    for layer in (IP, TCP, UDP):
        if layer in rebuilt:
            del rebuilt[layer].chksum
    rebuilt = Ether(bytes(rebuilt))
    return all(
        layer not in packet or packet[layer].chksum == rebuilt[layer].chksum or (layer is UDP and packet[UDP].chksum == 0)
        for layer in (IP, TCP, UDP)
    )


def _stamp(sender, msg):
    """The next ``seq`` of ``sender`` (a World's own CS or a ScriptedCs), its
    session, and on the CSMB its next ``serial_global``."""
    sender.seq += 1
    msg.seq, msg.session = sender.seq, sender.session
    if msg.BUS is Bus.CSMB:
        sender.serial += 1
        msg.serial_global = sender.serial
    return msg


def _cs_frame(mac: str, ip: str, port: int, bus: Bus, payload: bytes) -> bytes:
    """A CS's datagram to the DFS's message port on ``bus``."""
    return bytes(Ether(src=mac, dst=DFS_MAC) / IP(src=ip, dst=DFS_IP)
                 / UDP(sport=port, dport=CSMB_UDP_PORT if bus is Bus.CSMB else SSMB_UDP_PORT) / payload)


class World:
    """Frames in and out of the simulated DFS's two ports."""

    def __init__(self, ctx, dut):
        self.ctx, self.dut = ctx, dut
        self.out = {0: [], 1: []}
        self.out_started = {0: [], 1: []}  # clock each recorded frame began leaving
        self.cycle = 0
        self.codec = Codec(KEY)
        self.seq = 0
        self.session = 0
        self.serial = 0
        self.css: dict[str, ScriptedCs] = {}
        self.mirror: ModelMirror | None = None  # told what the ScriptedCs and port 0 send
        self.seen: list[tuple] = []  # message_summary of every message cs_messages returned

    async def send(self, port: int, frame: bytes):
        if self.mirror is not None and port == 0:
            self.mirror.frame_in(port, frame)
        await put_frame(self.ctx, self.dut.rx[port], frame)

    async def wait(self, port: int, count: int = 1, limit: int = 20_000) -> list:
        for _ in range(limit):
            if len(self.out[port]) >= count:
                break
            await self.ctx.tick()
        got, self.out[port] = self.out[port][:count], self.out[port][count:]
        self.out_started[port] = self.out_started[port][count:]
        assert len(got) == count, f"port {port}: {len(got)} of {count} frames after {limit} clocks"
        return [Ether(f) for f in got]

    def stamp(self, msg):
        return _stamp(self, msg)

    async def cs_send(self, *msgs):
        bus = msgs[0].BUS
        payload = b"".join(self.codec.encode(self.stamp(m)) for m in msgs)
        await self.send(1, _cs_frame(CS_MAC, CS_IP, CS_PORT, bus, payload))

    def cs_decode(self, packet) -> list:
        assert packet.dst == CS_MAC and packet[IP].dst == CS_IP and checksums_ok(packet)
        bus = Bus.CSMB if packet[UDP].sport == CSMB_UDP_PORT else Bus.SSMB
        return self.codec.decode(bus, bytes(packet[UDP].payload))

    async def cs_messages(self, count: int, limit: int = 20_000) -> list:
        """The next ``count`` messages out of the internal port, each as
        ``(ScriptedCs, message)``."""
        out = []
        for packet in await self.wait(1, count, limit):
            cs = self.css[packet[IP].dst]
            assert packet.dst == cs.mac and packet[UDP].dport == cs.port and checksums_ok(packet)
            bus = Bus.CSMB if packet[UDP].sport == CSMB_UDP_PORT else Bus.SSMB
            out += [(cs, msg) for msg in cs.codec.decode(bus, bytes(packet[UDP].payload))]
        self.seen += [message_summary(cs, msg) for cs, msg in out]
        return out

    async def quiet(self, port: int, clocks: int) -> None:
        """``clocks`` clocks in which nothing may leave ``port``."""
        await self.ctx.tick().repeat(clocks)
        assert not self.out[port], f"port {port}: unexpected {[Ether(f).summary() for f in self.out[port]]}"



class ScriptedCs:
    """One more CS on the internal port (redundancy tests): its own
    addresses, session, ``seq`` and epoch; :meth:`World.cs_messages` sorts
    the DFS's messages by recipient."""

    def __init__(self, w: World, number: int, *, cs_id: int = 0, epoch: int = 0):
        self.w = w
        self.mac = f"02:00:00:00:c5:{number:02x}"
        self.ip = f"10.100.0.{10 + number}"
        self.port = 41000 + number
        self.cs_id, self.epoch = cs_id, epoch
        self.codec = Codec(KEY)
        self.seq = self.session = self.serial = 0
        self.nonce = b""  # the DFS's, from its last HELLO answer
        w.css[self.ip] = self

    def stamp(self, msg):
        msg.epoch = self.epoch
        return _stamp(self, msg)

    async def send(self, *msgs):
        bus = msgs[0].BUS
        payload = b"".join(self.codec.encode(self.stamp(m)) for m in msgs)
        if self.w.mirror is not None:
            self.w.mirror.message_in(self, bus, payload)
        await self.w.send(1, _cs_frame(self.mac, self.ip, self.port, bus, payload))

    def hello(self, role: Role, hello_interval_ms: int = 60_000) -> CsmbHello:
        return CsmbHello(nonce=b"cs-nonce", role=role, cs_id=self.cs_id, csmb_vers_major=1, ssmb_vers_major=1,
                         hello_interval_ms=hello_interval_ms, ssmb_addr=ipaddress.IPv4Address(self.ip),
                         ssmb_port=self.port)


class ModelMirror:
    """The reference DFS (``twinplane.model.dfs``) given the same CS messages
    and client frames as the gateware in a :class:`World` (time: the
    gateware's ticks of ``ms_per_tick`` = 1), to compare what each sends:
    :meth:`messages` (recipient, type, serial, error, flow) and
    :meth:`frames` (every frame out, by port).  The model takes the
    gateware's nonce for each CS, so their sessions agree."""

    def __init__(self, w: World, tick_cycles: int):
        from twinplane.model.dfs import DfsConfig, PortRole, ReferenceDFS

        self.w, self.tick_cycles = w, tick_cycles
        config = DfsConfig(key=KEY, dfs_addr=ipaddress.IPv4Address(DFS_IP),
                           dfs_mac=bytes.fromhex(DFS_MAC.replace(":", "")),
                           port_roles=(PortRole.EXTERNAL, PortRole.INTERNAL), geometry=GEOMETRY, tick_s=0.001,
                           pending_timeout_s=1000.0, randbytes=lambda n: bytes(n))
        self.model = ReferenceDFS(config)
        self.out: list[tuple[int, bytes]] = []
        w.mirror = self

    def now(self) -> float:
        return self.w.cycle // self.tick_cycles * 0.001

    def message_in(self, cs: ScriptedCs, bus: Bus, payload: bytes) -> None:
        self.model.poll(self.now())
        self.model.receive_message(bus, payload, (cs.ip, cs.port), self.now())

    def frame_in(self, port: int, frame: bytes) -> None:
        self.model.poll(self.now())
        self.out += self.model.receive_frame(port, frame, self.now())

    def take_nonce(self, cs: ScriptedCs, nonce: bytes) -> None:
        self.model.peers[(cs.ip, cs.port)].nonce = nonce

    def messages(self) -> list[tuple]:
        """What the model sent since the last call, sorted as :func:`message_summary` makes them."""
        self.model.poll(self.now())
        out = []
        for bus, dst, data in self.model.messages_to_send():
            cs = self.w.css[str(dst[0])]
            # The gateware does not send the "I hold no flow" RESET after an authentication (docs/dfs.md).
            out += [message_summary(cs, msg) for msg in Codec(KEY).decode(bus, data)
                    if not (isinstance(msg, SsmbReset) and msg.reason == RESET_REASON_NO_FLOWS)]
        return sorted(out)

    def frames(self) -> list[tuple[int, bytes]]:
        out, self.out = self.out + self.model.frames_to_send(), []
        return sorted(out)


def message_summary(cs: ScriptedCs, msg) -> tuple:
    """What a redundancy test compares of a message to ``cs``: the rest (the
    DFS's nonce, CSMB serials) is known to differ (docs/dfs.md)."""
    flow = getattr(msg, "flow", None)
    key = None if flow is None else (str(flow.src_addr), str(flow.dst_addr), flow.src_port, flow.dst_port)
    session_ok = msg.session == cs.session if msg.BUS is Bus.SSMB else None  # (a CSMB answer may precede it)
    return (cs.ip, type(msg).__name__, getattr(msg, "serial", 0), int(msg.error), session_ok, key)


async def bring_up(w: World) -> None:
    """HELLO, authentication and one virtual server (VIP:80/tcp)."""
    # A long HELLO interval: this CS sends no more HELLOs, and the DFS forgets
    # a CS after 3 of them.
    await w.cs_send(CsmbHello(nonce=b"cs-nonce", role=Role.ACTIVE, csmb_vers_major=1, ssmb_vers_major=1,
                              hello_interval_ms=60_000, ssmb_addr=ipaddress.IPv4Address(CS_IP), ssmb_port=CS_PORT))
    (hello,) = w.cs_decode((await w.wait(1))[0])
    assert isinstance(hello, CsmbHello) and hello.error == ErrorCode.NONE
    await w.cs_send(CsmbAuthChallenge(challenge=b"12345678"))
    (response,) = w.cs_decode((await w.wait(1))[0])
    assert isinstance(response, CsmbAuthResponse)
    assert response.response == auth_response(KEY, b"12345678", hello.nonce)
    w.session = session_id(KEY, b"12345678", hello.nonce)
    vs = VirtualServer(vs_id=1, protocol=6, virt_addr=ipaddress.IPv4Address(VIP), virt_port=80)
    await w.cs_send(AddVs(vs=vs))
    (ack,) = w.cs_decode((await w.wait(1))[0])
    assert ack.error == ErrorCode.NONE


async def bring_up_cs(cs: ScriptedCs, role: Role = Role.ACTIVE, *, hello_interval_ms: int = 60_000,
                      add_vs: bool = True) -> None:
    """HELLO and authentication of ``cs`` (and, from an active one, VIP:80/tcp)."""
    w = cs.w
    await cs.send(cs.hello(role, hello_interval_ms))
    ((_, hello),) = await w.cs_messages(1)
    assert isinstance(hello, CsmbHello) and hello.error == ErrorCode.NONE
    cs.nonce = hello.nonce
    if w.mirror is not None:
        w.mirror.take_nonce(cs, hello.nonce)
    cs.session = 0
    await cs.send(CsmbAuthChallenge(challenge=b"12345678"))
    ((_, response),) = await w.cs_messages(1)
    assert isinstance(response, CsmbAuthResponse)
    assert response.response == auth_response(KEY, b"12345678", hello.nonce)
    cs.session = session_id(KEY, b"12345678", hello.nonce)
    if add_vs:
        vs = VirtualServer(vs_id=1, protocol=6, virt_addr=ipaddress.IPv4Address(VIP), virt_port=80)
        await cs.send(AddVs(vs=vs))
        ((_, ack),) = await w.cs_messages(1)
        assert ack.error == ErrorCode.NONE


def reply_to(query: SsmbQuery, *, error: ErrorCode = ErrorCode.NONE) -> SsmbReply:
    """The REPLY a CS sends for ``query``: to NODE_IP:8080 through port 1."""
    xlate = Translation(node_addr=ipaddress.IPv4Address(NODE_IP), node_port=8080, egress_port=1,
                        client_port=0, node_mac=bytes.fromhex(NODE_MAC.replace(":", "")),
                        client_mac=query.client_mac, vs_id=query.vs_id, node_id=2)
    flow = FlowSignature(src_addr=query.flow.src_addr, dst_addr=query.flow.dst_addr,
                         src_port=query.flow.src_port, dst_port=query.flow.dst_port, protocol=query.flow.protocol)
    return SsmbReply(serial=query.serial, error=error, flags=Flag.TRANSLATE_ADDR | Flag.TRANSLATE_PORT,
                     flow=flow, xlate=xlate)


def client_frame(client_ip: str, sport: int, flags: str = "A", payload: bytes = b"") -> bytes:
    return bytes(Ether(src=CLIENT_MAC, dst=DFS_MAC) / IP(src=client_ip, dst=VIP)
                 / TCP(sport=sport, dport=80, flags=flags, seq=1000) / payload)


def node_frame(client_ip: str, sport: int, flags: str = "A", payload: bytes = b"") -> bytes:
    return bytes(Ether(src=NODE_MAC, dst=DFS_MAC) / IP(src=NODE_IP, dst=client_ip)
                 / TCP(sport=8080, dport=sport, flags=flags, seq=5000) / payload)


async def open_flow(w: World, client_ip: str, sport: int):
    """A client's SYN, the QUERY, the REPLY, the SYN at the node: returns the
    QUERY and the frame the node got."""
    await w.send(0, client_frame(client_ip, sport, "S"))
    (query,) = w.cs_decode((await w.wait(1))[0])
    assert isinstance(query, SsmbQuery) and query.vs_id == 1
    xlate = Translation(node_addr=ipaddress.IPv4Address(NODE_IP), node_port=8080, egress_port=1,
                        client_port=0, node_mac=bytes.fromhex(NODE_MAC.replace(":", "")),
                        client_mac=query.client_mac, vs_id=1, node_id=2)
    flow = FlowSignature(src_addr=query.flow.src_addr, dst_addr=query.flow.dst_addr,
                         src_port=query.flow.src_port, dst_port=80, protocol=6)
    await w.cs_send(SsmbReply(serial=query.serial, flags=Flag.TRANSLATE_ADDR | Flag.TRANSLATE_PORT,
                              flow=flow, xlate=xlate))
    (to_node,) = await w.wait(1)
    return query, to_node


def run_world(dut: DFSCore, script) -> dict:
    """Run ``script(world)`` against ``dut``; every frame leaving a port is
    recorded in ``world.out`` with the clock it started in."""
    state: dict = {}

    async def bench(ctx):
        ctx.set(dut.key, int.from_bytes(KEY, "little"))
        ctx.set(dut.own_mac, int(DFS_MAC.replace(":", ""), 16))
        ctx.set(dut.own_ip, int(ipaddress.IPv4Address(DFS_IP)))
        for p in (0, 1):
            ctx.set(dut.tx[p].ready, 1)
        state["world"] = w = World(ctx, dut)
        state["result"] = await script(w)

    async def monitor(ctx):
        frames = {0: bytearray(), 1: bytearray()}
        async for sampled in ctx.tick().sample(*(x for p in (0, 1) for x in (dut.tx[p].valid, dut.tx[p].ready,
                                                                              dut.tx[p].payload))):
            w = state.get("world")
            if w is None:
                continue
            w.cycle += 1
            values = sampled[2:]
            for p in (0, 1):
                valid, ready, payload = values[3 * p : 3 * p + 3]
                if valid and ready:
                    if not frames[p]:
                        w.out_started[p].append(w.cycle)
                    frames[p].append(payload.data)
                    if payload.last:
                        w.out[p].append(bytes(frames[p]))
                        frames[p] = bytearray()

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(bench)
    sim.add_process(monitor)
    sim.run()
    return state["result"]
