"""The gateware session engine follows the redundancy rule of
docs/redundancy.md, checked against the reference DFS (twinplane.model):
each scripted CS talks to both -- the MessagePort in Amaranth's simulator
and a ReferenceDFS -- and every answer (type, error, ACTIVE_CS flag, epoch,
recipient) must agree.  Covers epoch adoption by role, fencing by the active
set, re-authentication to become active, Flag.ACTIVE_CS, CS expiry, the
replication of the core's DELETE/RESET to every authenticated CS and the
active/active split of QUERYs by CRC-32 of the flow key."""

from __future__ import annotations

import copy as copy_module
import ipaddress
import random

from amaranth import Module
from amaranth.lib.wiring import connect
from amaranth.sim import Simulator
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from twinplane.hdl.msgport.held import HeldCoreMessage
from twinplane.hdl.msgport.layout import MAX_SENT_BYTES, MAX_TRANSMIT_BYTES
from twinplane.hdl.msgport.port import MessagePort
from twinplane.model.dfs import DfsConfig, ReferenceDFS
from twinplane.protocol.codec import Codec, session_id
from twinplane.protocol.codes import CSMB_UDP_PORT, Bus, ConfigItem, ErrorCode, Flag, Role, SsmbType
from twinplane.protocol.messages import (
    TAG_SIZE,
    AddVs,
    Config,
    CsmbAuthChallenge,
    CsmbAuthResponse,
    CsmbHello,
    FlowSignature,
    SsmbDelete,
    SsmbDump,
    SsmbNewflow,
    SsmbQuery,
    SsmbReply,
    SsmbReset,
    SsmbStats,
    Translation,
    VirtualServer,
    VsList,
)

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
DFS_MAC, DFS_IP = 0x02000000D0F5, 0x0A640001
CS_MAC = 0x02000000C501
CYCLES_PER_MS = 20  # the tick strobe: one per 20 clocks stands for 1 ms


class TwinCS:
    """One CS talking to both DFSs: its seq/session/serial for each."""

    def __init__(self, ip: int, role: Role, epoch: int, hello_interval_ms: int = 1000, cs_id: int = 0):
        self.ip, self.role, self.epoch, self.interval = ip, role, epoch, hello_interval_ms
        self.cs_id = cs_id
        self.csmb_port, self.ssmb_port = 41000, 41001
        self.seq = {"gw": 0, "model": 0}
        self.session = {"gw": 0, "model": 0}
        self.serial = {"gw": 0, "model": 0}

    def stamp(self, side, msg, *, epoch=None, session=None):
        self.seq[side] += 1
        msg.seq = self.seq[side]
        msg.session = self.session[side] if session is None else session
        msg.epoch = self.epoch if epoch is None else epoch
        if msg.BUS is Bus.CSMB:
            self.serial[side] += 1
            msg.serial_global = self.serial[side]
        return msg

    def hello(self):
        return CsmbHello(nonce=b"cs-nonce", role=self.role, cs_id=self.cs_id, csmb_vers_major=1, ssmb_vers_major=1,
                         hello_interval_ms=self.interval, ssmb_addr=ipaddress.IPv4Address(self.ip),
                         ssmb_port=self.ssmb_port)


def summary(msg):
    """What both DFSs must agree on (nonces and sessions differ by design)."""
    active = bool(msg.flags & Flag.ACTIVE_CS) if isinstance(msg, CsmbHello) else None
    return (type(msg).__name__, int(msg.error), active, msg.epoch)


class Twin:
    def __init__(self, ctx, port, frames, state):
        self.ctx, self.port, self.frames, self.state = ctx, port, frames, state
        self.model = ReferenceDFS(DfsConfig(key=KEY, dfs_addr=ipaddress.IPv4Address(DFS_IP)))
        self.codec = Codec(KEY)
        self.sessions: dict[int, int] = {}  # by CS address: its gateware session
        self.core_answers: dict[int, list] = {}  # the model's answers that the gateware's core gives

    @property
    def now(self) -> float:
        return self.state["ms"] / 1000

    async def wait(self, cycles):
        await self.ctx.tick().repeat(cycles)

    async def quiet(self):
        """Wait until the port has sent nothing for a while."""
        seen, quiet = len(self.frames), 0
        while quiet < 6 * MAX_TRANSMIT_BYTES:  # receiving ~2x a message (hashed from the register), sending ~2.5x
            await self.wait(1)
            quiet = 0 if len(self.frames) != seen else quiet + 1
            seen = len(self.frames)

    def gateware_answers(self, sessions):
        """Frames sent so far, decoded, by recipient IP; each carries its
        recipient's session (or 0 while it has none)."""
        out = {}
        while self.frames:
            packet = Ether(self.frames.pop(0))
            bus = Bus.CSMB if packet[UDP].sport == CSMB_UDP_PORT else Bus.SSMB
            ip = int(ipaddress.IPv4Address(packet[IP].dst))
            for msg in self.codec.decode(bus, bytes(packet[UDP].payload)):
                assert msg.session in (0, sessions.get(ip, 0)), (msg, sessions)
                out.setdefault(ip, []).append(summary(msg))
        return out

    def model_answers(self, *, from_core=False):
        """The model's answers, without those that come from the DFS core
        in the gateware (``from_core``: every SSMB message)."""
        out = {}
        for bus, dst, data in self.model.messages_to_send():
            for msg in self.codec.decode(bus, data):
                if from_core and bus is Bus.SSMB:
                    self.core_answers.setdefault(int(ipaddress.IPv4Address(dst[0])), []).append(summary(msg))
                    continue
                out.setdefault(int(ipaddress.IPv4Address(dst[0])), []).append(summary(msg))
        return out

    async def send(self, cs: TwinCS, bus: Bus, make, **stamp):
        """Send ``make()`` from ``cs`` to both; return the gateware's answers
        (decoded messages to ``cs``) after checking both DFSs agree."""
        gw_msg, model_msg = cs.stamp("gw", make(), **stamp), cs.stamp("model", make(), **stamp)
        src_port = cs.csmb_port if bus is Bus.CSMB else cs.ssmb_port
        self.model.receive_message(bus, self.codec.encode(model_msg), (str(ipaddress.IPv4Address(cs.ip)), src_port),
                                   self.now)
        await self._put(cs, bus, self.codec.encode(gw_msg))
        await self.quiet()
        return self.compare(make, from_core=bus is Bus.SSMB)

    def compare(self, what, *, from_core=False):
        gw = self.gateware_answers(self.sessions)
        model = self.model_answers(from_core=from_core)
        assert gw == model, f"{what}: gateware {gw} != model {model}"
        return gw

    async def associate(self, cs: TwinCS, challenge=b"chalenge"):
        answers = await self.send(cs, Bus.CSMB, cs.hello)
        assert answers[cs.ip][0][1] == ErrorCode.NONE
        await self.authenticate(cs, challenge)

    async def authenticate(self, cs: TwinCS, challenge=b"chalenge"):
        before = len(self.frames)
        # The session comes back in the AUTH_RESPONSE: read it from the frame.
        gw_msg = cs.stamp("gw", CsmbAuthChallenge(challenge=challenge), session=0)
        model_msg = cs.stamp("model", CsmbAuthChallenge(challenge=challenge), session=0)
        self.model.receive_message(Bus.CSMB, self.codec.encode(model_msg),
                                   (str(ipaddress.IPv4Address(cs.ip)), cs.csmb_port), self.now)
        await self._put(cs, Bus.CSMB, self.codec.encode(gw_msg))
        await self.quiet()
        assert len(self.frames) == before + 1
        (response,) = self.codec.decode(Bus.CSMB, bytes(Ether(self.frames[-1])[UDP].payload))
        assert isinstance(response, CsmbAuthResponse)
        cs.session["gw"] = response.session
        peer = self.model.peers[(str(ipaddress.IPv4Address(cs.ip)), cs.csmb_port)]
        cs.session["model"] = peer.session
        assert peer.session == session_id(KEY, challenge, peer.nonce)
        self.sessions[cs.ip] = response.session
        self.compare("AUTH_CHALLENGE", from_core=True)  # the model's RESET "I hold no flow" is the core's

    async def _put(self, cs, bus, payload):
        ctx, port = self.ctx, self.port
        ctx.set(port.rx_bus, int(bus))
        ctx.set(port.rx_src_mac, CS_MAC)
        ctx.set(port.rx_src_ip, cs.ip)
        ctx.set(port.rx_src_port, cs.csmb_port if bus is Bus.CSMB else cs.ssmb_port)
        for i, byte in enumerate(payload):
            ctx.set(port.rx.valid, 1)
            ctx.set(port.rx.payload, {"data": byte, "first": i == 0, "last": i == len(payload) - 1})
            await ctx.tick().until(port.rx.ready)
        ctx.set(port.rx.valid, 0)

    async def core_sends(self, msg):
        """The DFS core hands the port a message (what the model's core would send)."""
        signed = self.codec.encode(msg)[:-TAG_SIZE]
        raw_left = int.from_bytes(signed, "big") << 8 * (MAX_SENT_BYTES - len(signed))
        core = self.state["core"].sink
        self.ctx.set(core.valid, 1)
        self.ctx.set(core.payload, {"length": len(signed), "raw": raw_left})
        await self.ctx.tick().until(core.ready)
        self.ctx.set(core.valid, 0)
        await self.quiet()
        return self.gateware_answers(self.sessions)


def run_twin(script, **port_args):
    port = MessagePort(**port_args)
    # The DFS core's messages as their bytes (state["core"].sink), on from_core and its read port.
    core = HeldCoreMessage()
    top = Module()
    top.submodules.port, top.submodules.core = port, core
    connect(top, core.source, port.from_core)
    connect(top, port.from_core_read, core.read)
    frames: list[bytes] = []
    state: dict = {"ms": 0, "core": core}

    async def testbench(ctx):
        ctx.set(port.key, int.from_bytes(KEY, "little"))
        ctx.set(port.own_mac, DFS_MAC)
        ctx.set(port.own_ip, DFS_IP)
        ctx.set(port.tx.ready, 1)
        ctx.set(port.vs_write.ready, 1)
        ctx.set(port.to_core.ready, 1)
        twin = Twin(ctx, port, frames, state)
        await script(twin)

    async def ticker(ctx):
        cycles = 0
        while True:
            await ctx.tick()
            cycles += 1
            ctx.set(port.tick, cycles % CYCLES_PER_MS == 0)
            state["ms"] = cycles // CYCLES_PER_MS

    async def collector(ctx):
        frame = bytearray()
        async for _, _, valid, payload, core_valid, core in ctx.tick().sample(
            port.tx.valid, port.tx.payload, port.to_core.valid, port.to_core.payload
        ):
            if valid:
                frame.append(payload.data)
                if payload.last:
                    frames.append(bytes(frame))
                    frame = bytearray()
            if core_valid:
                state.setdefault("to_core", []).append((core.msg_type, core.src_ip))

    sim = Simulator(top)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.add_testbench(ticker, background=True)
    sim.add_process(collector)
    sim.run()
    return state


ACTIVE_IP, STANDBY_IP = 0x0A640002, 0x0A640003
XLATE = Translation(node_addr=ipaddress.IPv4Address("10.1.0.5"), node_port=8080, node_mac=b"\x02\x00\x00\x00\x01\x05",
                    client_mac=b"\x02\x00\x00\x00\x00\x09", idle_timeout_s=30)
VS = VirtualServer(vs_id=7, protocol=6, virt_addr=ipaddress.IPv4Address("10.0.0.100"), virt_port=80)


def test_standby_never_fences_the_active_and_reads_are_open():
    """Changes 1, 2 and 4: epoch adoption by role, fencing by the active set,
    Flag.ACTIVE_CS in the CSMB HELLO answer."""

    async def script(twin):
        active = TwinCS(ACTIVE_IP, Role.ACTIVE, epoch=1)
        standby = TwinCS(STANDBY_IP, Role.STANDBY, epoch=7)
        (hello,) = (await twin.send(standby, Bus.CSMB, standby.hello))[STANDBY_IP]
        assert hello[2] is False  # no active CS yet
        await twin.authenticate(standby)
        await twin.associate(active)
        # the standby's HELLO answer now says an active CS is there
        (hello,) = (await twin.send(standby, Bus.CSMB, standby.hello))[STANDBY_IP]
        assert hello[2] is True and hello[3] == 1
        # the standby, at a higher epoch, may not program the DFS and does not raise its epoch
        (ack,) = (await twin.send(standby, Bus.CSMB, lambda: Config(item=ConfigItem.HELLO_INTERVAL_MS)))[STANDBY_IP]
        assert ack[1] == ErrorCode.STALE_EPOCH and ack[3] == 1
        assert await twin.send(standby, Bus.SSMB, lambda: SsmbReply(serial=1)) == {}
        # ... but it may read: VS_LIST is answered, DUMP reaches the core
        (ack,) = (await twin.send(standby, Bus.CSMB, VsList))[STANDBY_IP]
        assert ack[:2] == ("CsmbAck", ErrorCode.NONE)
        await twin.send(standby, Bus.SSMB, SsmbDump)
        # the active still programs it
        (ack,) = (await twin.send(active, Bus.CSMB, lambda: AddVs(vs=VS)))[ACTIVE_IP]
        assert ack[1] == ErrorCode.NONE and ack[3] == 1
        await twin.send(active, Bus.SSMB, lambda: SsmbReply(serial=2))
        # an older epoch from the active is fenced, but its VS_LIST is answered
        (ack,) = (await twin.send(active, Bus.CSMB, lambda: AddVs(vs=VS), epoch=0))[ACTIVE_IP]
        assert ack[1] == ErrorCode.STALE_EPOCH
        listed = (await twin.send(active, Bus.CSMB, VsList, epoch=0))[ACTIVE_IP]
        assert [m[0] for m in listed] == ["VsList", "CsmbAck"] and listed[-1][1] == ErrorCode.NONE
        to_core = twin.state["to_core"]
        assert to_core == [(SsmbType.DUMP, STANDBY_IP), (SsmbType.REPLY, ACTIVE_IP)]
        assert twin.ctx.get(twin.port.stale_epoch) == twin.model.counters["invalid_stale_epoch"] == 3

    run_twin(script)


def test_becoming_active_takes_a_fresh_authentication():
    """Change 3: a HELLO that turns an authenticated standby active ends its
    session; after the next AUTH_CHALLENGE the DFS adopts its epoch."""

    async def script(twin):
        first = TwinCS(ACTIVE_IP, Role.ACTIVE, epoch=1)
        standby = TwinCS(STANDBY_IP, Role.STANDBY, epoch=1)
        await twin.associate(first)
        await twin.associate(standby)
        # takeover: the standby goes active at epoch 2
        standby.role, standby.epoch = Role.ACTIVE, 2
        await twin.send(standby, Bus.CSMB, standby.hello)
        assert twin.ctx.get(twin.port.reauth_for_active) == twin.model.counters["cs_reauth_for_active"] == 1
        (ack,) = (await twin.send(standby, Bus.CSMB, lambda: AddVs(vs=VS)))[STANDBY_IP]
        assert ack[1] == ErrorCode.NOTAUTH  # its session ended
        await twin.authenticate(standby, b"again!!!")
        (ack,) = (await twin.send(standby, Bus.CSMB, lambda: AddVs(vs=VS)))[STANDBY_IP]
        assert ack[1] == ErrorCode.NONE and ack[3] == 2
        # the old active is fenced now, and learns the new epoch from its HELLO answer
        (ack,) = (await twin.send(first, Bus.CSMB, lambda: AddVs(vs=VS)))[ACTIVE_IP]
        assert ack[1] == ErrorCode.STALE_EPOCH and ack[3] == 2
        (hello,) = (await twin.send(first, Bus.CSMB, first.hello))[ACTIVE_IP]
        assert hello[2] is True and hello[3] == 2
        assert twin.ctx.get(twin.port.active_cs) == 1  # the second slot
        assert twin.ctx.get(twin.port.active_set) == 0b10

    run_twin(script)


def test_silent_cs_is_forgotten():
    """Change 5: a CS that misses 3 of its HELLO intervals loses its slot."""

    async def script(twin):
        cs = TwinCS(ACTIVE_IP, Role.ACTIVE, epoch=1, hello_interval_ms=100)
        hello_at = twin.now
        await twin.associate(cs)
        await twin.wait(int((0.2 - (twin.now - hello_at)) * 1000 * CYCLES_PER_MS))  # 2 intervals
        twin.model.poll(twin.now)
        (ack,) = (await twin.send(cs, Bus.CSMB, lambda: AddVs(vs=VS)))[ACTIVE_IP]
        assert ack[1] == ErrorCode.NONE
        assert twin.now - hello_at < 0.28  # still well inside 3 intervals
        await twin.wait(int((0.33 - (twin.now - hello_at)) * 1000 * CYCLES_PER_MS))  # 3.3 intervals
        twin.model.poll(twin.now)
        assert twin.ctx.get(twin.port.expired) == twin.model.counters["cs_expired"] == 1
        assert twin.ctx.get(twin.port.active_cs) == 1  # none (= cs_slots)
        (ack,) = (await twin.send(cs, Bus.CSMB, lambda: AddVs(vs=VS)))[ACTIVE_IP]
        assert ack[1] == ErrorCode.NOTAUTH
        # its slot is free again: another CS gets it (one slot only here)
        other = TwinCS(STANDBY_IP, Role.ACTIVE, epoch=1)
        await twin.associate(other)

    run_twin(script, cs_slots=1)


def test_core_delete_and_reset_go_to_every_authenticated_cs():
    """Change 6 (the port's part): DELETE and RESET from the core are sent to
    every authenticated CS, the active one first, each with its own session;
    a QUERY goes to the active CS only."""

    async def script(twin):
        active = TwinCS(ACTIVE_IP, Role.ACTIVE, epoch=1)
        standby = TwinCS(STANDBY_IP, Role.STANDBY, epoch=1)
        await twin.associate(active)
        await twin.associate(standby)
        got = await twin.core_sends(SsmbQuery(serial=5))
        assert list(got) == [ACTIVE_IP] and got[ACTIVE_IP][0][0] == "SsmbQuery"
        for msg in (SsmbDelete(serial=6), SsmbReset()):
            got = await twin.core_sends(msg)
            assert list(got) == [ACTIVE_IP, STANDBY_IP]  # the active first
            assert got[ACTIVE_IP] == got[STANDBY_IP] == [(type(msg).__name__, 0, None, 1)]
        # with no active CS left (it stepped down), DELETE still reaches both; a QUERY nobody
        active.role = Role.STANDBY
        await twin.send(active, Bus.CSMB, active.hello)
        got = await twin.core_sends(SsmbDelete(serial=7))
        assert list(got) == [ACTIVE_IP, STANDBY_IP]
        assert await twin.core_sends(SsmbQuery(serial=8)) == {}
        assert twin.ctx.get(twin.port.no_active_cs) == 1
        assert twin.ctx.get(twin.port.replicated) == 3

    run_twin(script)


def test_active_active_splits_queries_by_flow_key():
    """Change 7: with two ACTIVE CSs at one epoch, a QUERY goes to member
    crc32(inbound key) % 2 of the active set ordered by cs_id -- the model's
    ``cs_for_key`` -- and a CS that leaves the set takes its share with it."""

    async def script(twin):
        # cs_id order is the reverse of slot order, so the ranking is exercised
        first = TwinCS(ACTIVE_IP, Role.ACTIVE, epoch=1, cs_id=9)
        second = TwinCS(STANDBY_IP, Role.ACTIVE, epoch=1, cs_id=4)
        await twin.associate(first)
        await twin.associate(second)
        rng = random.Random(3)
        owners = []
        for serial in range(1, 13):
            sig = FlowSignature(src_addr=ipaddress.IPv4Address(rng.getrandbits(32)),
                                dst_addr=ipaddress.IPv4Address("10.0.0.100"), src_port=rng.getrandbits(16),
                                dst_port=rng.choice((80, 443)), protocol=rng.choice((6, 17)))
            expected = twin.model.cs_for_key(twin.model._sig_key(sig))
            got = await twin.core_sends(SsmbQuery(serial=serial, flow=sig))
            assert list(got) == [int(ipaddress.IPv4Address(expected.ssmb_addr[0]))], serial
            owners.append(list(got)[0])
        assert set(owners) == {ACTIVE_IP, STANDBY_IP}  # both got a share
        assert twin.ctx.get(twin.port.active_set) == 0b11
        # the first steps down: every QUERY goes to the second
        first.role = Role.STANDBY
        await twin.send(first, Bus.CSMB, first.hello)
        for serial in range(13, 16):
            sig = FlowSignature(src_addr=ipaddress.IPv4Address(rng.getrandbits(32)),
                                dst_addr=ipaddress.IPv4Address("10.0.0.100"), src_port=rng.getrandbits(16),
                                dst_port=80, protocol=6)
            assert list(await twin.core_sends(SsmbQuery(serial=serial, flow=sig))) == [STANDBY_IP]

    run_twin(script)


def test_dump_answers_go_to_the_cs_that_asked():
    """The port's part of DUMP: the core's STATS (error NONE) and DUMP END
    go to the CS whose DUMP it answers -- a standby, here -- as the model's
    answers do; a REAP's STATS (CONNALIVE) still goes to the active CS."""

    async def script(twin):
        active = TwinCS(ACTIVE_IP, Role.ACTIVE, epoch=1)
        standby = TwinCS(STANDBY_IP, Role.STANDBY, epoch=1)
        await twin.associate(active)
        await twin.associate(standby)
        twin.core_answers.clear()
        await twin.send(standby, Bus.SSMB, SsmbDump)
        assert list(twin.core_answers) == [STANDBY_IP]  # the model answers the asker
        assert list(await twin.core_sends(SsmbStats(serial=1))) == [STANDBY_IP]
        assert list(await twin.core_sends(SsmbStats(serial=2, error=ErrorCode.CONNALIVE))) == [ACTIVE_IP]
        assert list(await twin.core_sends(SsmbDump(flags=Flag.END, count=1))) == [STANDBY_IP]
        # the dump is over: STATS go to the active CS again
        assert list(await twin.core_sends(SsmbStats(serial=3))) == [ACTIVE_IP]

    run_twin(script)


def test_installed_reply_and_newflow_are_copied_to_the_other_cs():
    """Change 6, the REPLY/NEWFLOW half (port side, ``install_verdicts``):
    once the core says it installed a REPLY or NEWFLOW, the port sends it,
    re-stamped (session, seq, epoch), to every other authenticated CS; one
    the core did not install goes nowhere.  Meanwhile the core may still
    send its own messages."""

    async def script(twin):
        ctx, port = twin.ctx, twin.port
        active = TwinCS(ACTIVE_IP, Role.ACTIVE, epoch=1)
        standby = TwinCS(STANDBY_IP, Role.STANDBY, epoch=1)
        await twin.associate(active)
        await twin.associate(standby)
        sig = FlowSignature(src_addr=ipaddress.IPv4Address("192.0.2.7"), dst_addr=ipaddress.IPv4Address("10.0.0.100"),
                            src_port=40001, dst_port=80, protocol=6)
        for cls, installed in ((SsmbReply, 1), (SsmbNewflow, 0), (SsmbNewflow, 1)):
            original = cls(serial=11, flow=sig, xlate=XLATE)
            assert await twin.send(active, Bus.SSMB, lambda o=original: copy_module.copy(o)) == {}
            assert twin.state["to_core"][-1] == (cls.TYPE, ACTIVE_IP)
            # the core sends a QUERY before its verdict: it goes out
            assert list(await twin.core_sends(SsmbQuery(serial=99))) == [ACTIVE_IP]
            ctx.set(port.installed.valid, 1)
            ctx.set(port.installed.payload, installed)
            await ctx.tick().until(port.installed.ready)
            ctx.set(port.installed.valid, 0)
            await twin.quiet()
            copies = []
            while twin.frames:
                packet = Ether(twin.frames.pop(0))
                copies += [(packet[IP].dst, msg) for msg in twin.codec.decode(Bus.SSMB, bytes(packet[UDP].payload))]
            if not installed:
                assert copies == []
                continue
            ((dst, copy),) = copies
            assert dst == str(ipaddress.IPv4Address(STANDBY_IP)) and isinstance(copy, cls)
            assert copy.session == twin.sessions[STANDBY_IP] and copy.epoch == 1
            assert (copy.serial, copy.flow, copy.xlate) == (original.serial, original.flow, original.xlate)
        assert ctx.get(port.replicated) == 2

    run_twin(script, install_verdicts=True)
