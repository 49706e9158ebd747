"""The gateware message port against a scripted CS using the host codec: the
handshake of docs/protocol.md (HELLO, version verdicts, authentication,
session), CSMB requests with ACKs, and the checks that keep a forged,
replayed, unauthenticated or fenced CS out."""

from __future__ import annotations

import ipaddress
import random

import pytest
from amaranth import Module
from amaranth.lib.wiring import connect
from amaranth.sim import Simulator
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from twinplane.hdl.msgport.held import HeldCoreMessage
from twinplane.hdl.msgport.layout import MAX_SENT_BYTES
from twinplane.hdl.msgport.port import MessagePort
from twinplane.protocol.codec import Codec, DecodeError, ReplayWindow, auth_response, session_id
from twinplane.protocol.codes import CSMB_UDP_PORT, Bus, ConfigItem, CsmbType, ErrorCode, Flag, Role, SsmbType
from twinplane.protocol.layouts import message_layout
from twinplane.protocol.messages import (
    TAG_SIZE,
    AddVs,
    Config,
    CsmbAck,
    CsmbAuthChallenge,
    CsmbAuthResponse,
    CsmbHello,
    DelVs,
    SsmbQuery,
    SsmbReply,
    VirtualServer,
    VsList,
)

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
DFS_MAC, DFS_IP = 0x02000000D0F5, 0x0A640001
CS_MAC, CS_IP, CS_PORT, CS_SSMB_PORT = 0x02000000C501, 0x0A640002, 41000, 41001


class ScriptedCS:
    """Drives a MessagePort in Amaranth's simulator as a CS would."""

    def __init__(self, ctx, port: MessagePort, frames: list[bytes], *, ip=CS_IP, src_port=CS_PORT, key=KEY):
        self.ctx, self.port, self.frames = ctx, port, frames
        self.ip, self.src_port = ip, src_port
        self.codec = Codec(key)
        self.seq = 0
        self.session = 0
        self.serial = 0

    def stamp(self, msg, *, seq=None, session=None):
        self.seq += 1
        msg.seq = self.seq if seq is None else seq
        msg.session = self.session if session is None else session
        if msg.BUS is Bus.CSMB:
            self.serial += 1
            msg.serial_global = self.serial
        return msg

    async def send(self, bus: Bus, *msgs, raw: bytes | None = None, src_port=None) -> list:
        ctx, port = self.ctx, self.port
        payload = raw if raw is not None else b"".join(self.codec.encode(m) for m in msgs)
        ctx.set(port.rx_bus, int(bus))
        ctx.set(port.rx_src_mac, CS_MAC)
        ctx.set(port.rx_src_ip, self.ip)
        ctx.set(port.rx_src_port, src_port or (self.src_port if bus is Bus.CSMB else CS_SSMB_PORT))
        for i, byte in enumerate(payload):
            ctx.set(port.rx.valid, 1)
            ctx.set(port.rx.payload, {"data": byte, "first": i == 0, "last": i == len(payload) - 1})
            await ctx.tick().until(port.rx.ready)
        ctx.set(port.rx.valid, 0)
        # Answers: wait until the port has been quiet for a while.
        seen, quiet = len(self.frames), 0
        while quiet < 6 * MAX_SENT_BYTES:  # the receiver hashes a whole message, then the answer is hashed and sent
            await ctx.tick()
            quiet = 0 if len(self.frames) != seen else quiet + 1
            seen = len(self.frames)
        answers = []
        while self.frames:
            packet = Ether(self.frames.pop(0))
            assert packet.src == "02:00:00:00:d0:f5" and packet[IP].src == "10.100.0.1"
            assert packet.dst == "02:00:00:00:c5:01" and packet[IP].dst == str(ipaddress.IPv4Address(self.ip))
            answer_bus = Bus.CSMB if packet[UDP].sport == CSMB_UDP_PORT else Bus.SSMB
            answers += self.codec.decode(answer_bus, bytes(packet[UDP].payload))
        return answers

    async def handshake(self, *, hello_interval_ms=0):
        hello = self.stamp(CsmbHello(nonce=b"cs-nonce", role=Role.ACTIVE, csmb_vers_major=1, ssmb_vers_major=1,
                                     hello_interval_ms=hello_interval_ms,
                                     ssmb_addr=ipaddress.IPv4Address(self.ip), ssmb_port=CS_SSMB_PORT))
        (answer,) = await self.send(Bus.CSMB, hello)
        assert isinstance(answer, CsmbHello) and answer.error == ErrorCode.NONE
        challenge = self.stamp(CsmbAuthChallenge(challenge=b"chalenge"))
        (response,) = await self.send(Bus.CSMB, challenge)
        assert isinstance(response, CsmbAuthResponse)
        assert response.response == auth_response(KEY, b"chalenge", answer.nonce)
        assert response.session == session_id(KEY, b"chalenge", answer.nonce)
        self.session = response.session
        return answer, response


def run_port(script, **port_args):
    port = MessagePort(**port_args)
    # The DFS core's messages as their bytes (state["core"].sink), on from_core and its read port.
    core = HeldCoreMessage()
    top = Module()
    top.submodules.port, top.submodules.core = port, core
    connect(top, core.source, port.from_core)
    connect(top, port.from_core_read, core.read)
    frames: list[bytes] = []
    state = {"core": core}

    async def testbench(ctx):
        ctx.set(port.key, int.from_bytes(KEY, "little"))
        ctx.set(port.own_mac, DFS_MAC)
        ctx.set(port.own_ip, DFS_IP)
        ctx.set(port.tx.ready, 1)
        ctx.set(port.vs_write.ready, 1)
        ctx.set(port.to_core.ready, 1)
        await script(ctx, port, frames, state)

    async def collector(ctx):
        frame = bytearray()
        async for _, _, valid, payload, vs_valid, vs, core_valid, core in ctx.tick().sample(
            port.tx.valid, port.tx.payload, port.vs_write.valid, port.vs_write.payload,
            port.to_core.valid, port.to_core.payload,
        ):
            if valid:
                frame.append(payload.data)
                if payload.last:
                    frames.append(bytes(frame))
                    frame = bytearray()
            if vs_valid:
                state.setdefault("vs_writes", []).append((vs.index, vs.valid, vs.vs.vs_id, vs.vs.virt_port))
            if core_valid:
                state.setdefault("to_core", []).append((core.msg_type, core.header.session, core.raw))

    sim = Simulator(top)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.add_process(collector)
    sim.run()
    return state


def test_handshake_requests_and_core_messages():
    async def script(ctx, port, frames, state):
        cs = ScriptedCS(ctx, port, frames)
        hello, _ = await cs.handshake()
        assert hello.ssmb_addr == ipaddress.IPv4Address("10.100.0.1") and len(hello.nonce) == 8

        vs = VirtualServer(vs_id=7, protocol=6, virt_addr=ipaddress.IPv4Address("10.0.0.100"), virt_port=80)
        (ack,) = await cs.send(Bus.CSMB, cs.stamp(AddVs(vs=vs)))
        assert isinstance(ack, CsmbAck) and ack.error == ErrorCode.NONE
        assert ack.acked_type == CsmbType.ADD_VS and ack.acked_serial == cs.serial
        assert ack.session == cs.session
        vs2 = VirtualServer(vs_id=9, protocol=17, virt_addr=ipaddress.IPv4Address("10.0.0.101"), virt_port=53)
        (ack,) = await cs.send(Bus.CSMB, cs.stamp(AddVs(vs=vs2, flags=Flag.WILDCARD_PORT)))
        assert ack.error == ErrorCode.NONE
        # idempotent: the same vs_id again replaces, it does not take a new slot
        (ack,) = await cs.send(Bus.CSMB, cs.stamp(AddVs(vs=vs)))
        assert ack.error == ErrorCode.NONE
        assert [w[:3] for w in state["vs_writes"]] == [(0, 1, 7), (1, 1, 9), (0, 1, 7)]

        listed = await cs.send(Bus.CSMB, cs.stamp(VsList()))
        assert [type(m) for m in listed] == [VsList, VsList, CsmbAck]
        assert [(m.vs, m.list_index, m.list_count) for m in listed[:2]] == [(vs, 0, 2), (vs2, 1, 2)]
        assert listed[1].flags == Flag.WILDCARD_PORT
        # serial numbers: global counts every CSMB message, by-type counts per type
        assert listed[1].serial_bytype == listed[0].serial_bytype + 1
        assert listed[2].serial_global == listed[1].serial_global + 1

        (ack,) = await cs.send(Bus.CSMB, cs.stamp(DelVs(vs=VirtualServer(vs_id=9))))
        assert ack.error == ErrorCode.NONE and state["vs_writes"][-1][:3] == (1, 0, 9)
        (ack,) = await cs.send(Bus.CSMB, cs.stamp(AddVs(vs=VirtualServer(vs_id=3, protocol=6), flags=Flag.HTTP_PROXY)))
        assert ack.error == ErrorCode.BADCONFIG  # proxy classes are not supported yet

        config = Config(item=ConfigItem.IDLE_TIMEOUT_S, value=(300).to_bytes(16, "big"))
        (ack,) = await cs.send(Bus.CSMB, cs.stamp(config))
        assert ack.error == ErrorCode.NONE and ctx.get(port.idle_timeout_s) == 300

        # SSMB: a REPLY with the session goes to the core; the core's QUERY goes to the CS
        reply = cs.stamp(SsmbReply(serial=42))
        assert await cs.send(Bus.SSMB, reply) == []
        ((msg_type, session, raw),) = state["to_core"]
        assert (msg_type, session) == (SsmbType.REPLY, cs.session)
        assert raw == int.from_bytes(cs.codec.encode(reply)[:-TAG_SIZE], "big")

        query = SsmbQuery(serial=77, vs_id=7)
        signed = Codec(KEY).encode(query)[:-TAG_SIZE]
        raw_left = int.from_bytes(signed, "big") << 8 * (MAX_SENT_BYTES - len(signed))
        core = state["core"].sink
        ctx.set(core.valid, 1)
        ctx.set(core.payload, {"length": len(signed), "raw": raw_left})
        await ctx.tick().until(core.ready)
        ctx.set(core.valid, 0)
        (sent,) = await cs.send(Bus.SSMB, raw=b"")
        assert isinstance(sent, SsmbQuery) and sent.serial == 77 and sent.vs_id == 7
        assert sent.session == cs.session and sent.seq > ack.seq
        assert ctx.get(port.rx_accepted) == 10 and ctx.get(port.replayed) == 0

    run_port(script)


def test_the_vs_walk_compares_every_entry_to_the_end_of_a_full_table():
    # The ADD_VS/DEL_VS walk reads an entry's id, registers it, then compares
    # it (three clocks an entry): each id must be matched at its own entry,
    # the last one included, and a full table must refuse a new id.
    async def script(ctx, port, frames, state):
        cs = ScriptedCS(ctx, port, frames)
        await cs.handshake()
        for vs_id in (10, 11, 12, 13):
            (ack,) = await cs.send(Bus.CSMB, cs.stamp(AddVs(vs=VirtualServer(vs_id=vs_id, protocol=6))))
            assert ack.error == ErrorCode.NONE
        (ack,) = await cs.send(Bus.CSMB, cs.stamp(AddVs(vs=VirtualServer(vs_id=14, protocol=6))))
        assert ack.error == ErrorCode.BADCONFIG  # no free entry
        (ack,) = await cs.send(Bus.CSMB, cs.stamp(DelVs(vs=VirtualServer(vs_id=13))))
        assert ack.error == ErrorCode.NONE
        (ack,) = await cs.send(Bus.CSMB, cs.stamp(AddVs(vs=VirtualServer(vs_id=12, protocol=17))))
        assert ack.error == ErrorCode.NONE
        (ack,) = await cs.send(Bus.CSMB, cs.stamp(DelVs(vs=VirtualServer(vs_id=99))))
        assert ack.error == ErrorCode.NONE  # already gone: no write
        assert [w[:3] for w in state["vs_writes"]] == [(0, 1, 10), (1, 1, 11), (2, 1, 12), (3, 1, 13),
                                                      (3, 0, 13), (2, 1, 12)]

    run_port(script, vs_entries=4)


def test_the_dfs_counts_its_seqs_from_1_per_association_and_for_answers_without_one():
    """The seq a message of the DFS carries: its association's last + 1 from
    1, and answers to a CS without a slot count on their own (the engine
    keeps the next seqs, incremented as a message goes)."""
    async def script(ctx, port, frames, state):
        cs = ScriptedCS(ctx, port, frames)
        anonymous = []
        for _ in range(2):
            (ack,) = await cs.send(Bus.CSMB, cs.stamp(AddVs(vs=VirtualServer(vs_id=1, protocol=6))))
            assert ack.error == ErrorCode.NOTAUTH and ack.session == 0
            anonymous.append(ack.seq)
        hello, response = await cs.handshake()
        seqs = [hello.seq, response.seq]
        for _ in range(2):
            (ack,) = await cs.send(Bus.CSMB, cs.stamp(Config(item=ConfigItem.HELLO_INTERVAL_MS)))
            seqs.append(ack.seq)
        (ack,) = await cs.send(Bus.CSMB, cs.stamp(AddVs(vs=VirtualServer(vs_id=1, protocol=6)), session=1))
        assert ack.error == ErrorCode.NOTAUTH  # a wrong session: answered in the association
        seqs.append(ack.seq)
        assert anonymous == [1, 2] and seqs == [1, 2, 3, 4, 5]

    run_port(script)


def test_intruders_are_kept_out():
    async def script(ctx, port, frames, state):
        cs = ScriptedCS(ctx, port, frames)
        # before authentication: NOTAUTH, nothing written
        (ack,) = await cs.send(Bus.CSMB, cs.stamp(AddVs(vs=VirtualServer(vs_id=1, protocol=6))))
        assert ack.error == ErrorCode.NOTAUTH and ack.session == 0
        await cs.handshake()
        add = cs.stamp(AddVs(vs=VirtualServer(vs_id=1, protocol=6)))
        (ack,) = await cs.send(Bus.CSMB, add)
        assert ack.error == ErrorCode.NONE
        # the same datagram again: replayed, ignored
        assert await cs.send(Bus.CSMB, add) == []
        assert ctx.get(port.replayed) == 1
        # wrong session (a message of another association): NOTAUTH, not executed
        (ack,) = await cs.send(Bus.CSMB, cs.stamp(DelVs(vs=VirtualServer(vs_id=1)), session=cs.session ^ 1))
        assert ack.error == ErrorCode.NOTAUTH and ctx.get(port.bad_session) == 1
        # a forged message (wrong key): dropped by the receiver, no answer
        forger = Codec(bytes(16))
        assert await cs.send(Bus.CSMB, raw=forger.encode(cs.stamp(DelVs(vs=VirtualServer(vs_id=1))))) == []
        assert ctx.get(port.rx_bad_tag) == 1
        # fencing: epoch 5 accepted, then epoch 4 is stale
        (ack,) = await cs.send(Bus.CSMB, cs.stamp(Config(item=ConfigItem.HELLO_INTERVAL_MS, epoch=5)))
        assert ack.error == ErrorCode.NONE and ack.epoch == 5
        (ack,) = await cs.send(Bus.CSMB, cs.stamp(DelVs(vs=VirtualServer(vs_id=1), epoch=4)))
        assert ack.error == ErrorCode.STALE_EPOCH and ctx.get(port.stale_epoch) == 1
        assert [w[1] for w in state["vs_writes"]] == [1]  # the delete never happened
        # SSMB without the session never reaches the core
        assert await cs.send(Bus.SSMB, cs.stamp(SsmbReply(), session=0)) == []
        assert "to_core" not in state

    run_port(script)


async def _sequence_against_the_model(ctx, port, cs, seqs):
    """Send a CONFIG with each seq after the handshake (seqs 1 and 2): answered
    and counted as the codec's ReplayWindow says, one by one."""
    model = ReplayWindow()
    for seq in (1, 2):  # the handshake's
        model.check(seq)
    replayed = ctx.get(port.replayed)
    for seq in seqs:
        try:
            model.check(seq)
            fresh = True
        except DecodeError:
            fresh, replayed = False, replayed + 1
        answers = await cs.send(Bus.CSMB, cs.stamp(Config(item=ConfigItem.HELLO_INTERVAL_MS), seq=seq))
        assert len(answers) == fresh, seq
        assert ctx.get(port.replayed) == replayed, seq


def test_replay_window_against_the_model():
    """The slot's 64-message window (circular in LUT RAM in gateware) against
    the codec's ReplayWindow: steps of 1 to 64 and more ahead, inside and
    just outside the window behind, repeats after the window moved, seq 0,
    then random steps and repeats."""
    rng = random.Random(7)
    seqs = [3, 9, 8, 8, 72, 10, 10, 75, 72, 9, 139, 75, 138, 170, 138, 0, 140, 110, 109, 110]
    highest = 170
    for _ in range(8):
        if rng.random() < 0.4:  # an earlier one again
            seqs.append(rng.choice(seqs[-8:]) or 1)
        else:
            seqs.append(max(highest + rng.choice([rng.randint(1, 70), -rng.randint(0, 70)]), 1))
        highest = max(highest, seqs[-1])

    async def script(ctx, port, frames, state):
        cs = ScriptedCS(ctx, port, frames)
        await cs.handshake()
        await _sequence_against_the_model(ctx, port, cs, seqs)

    run_port(script)


def test_replay_window_of_a_reused_slot():
    """A slot's window holds its seqs circularly (seq mod 64): a CS that takes
    the slot of one that expired must not find the old CS's seqs seen, after
    small steps ahead or a jump of 64 or more (which clears every bit)."""
    old_seqs = list(range(3, 60)) + [130, 131, 164, 200]
    new_seqs = [10, 7, 9, 20, 15, 15, 3, 100, 99, 40, 37, 36, 170, 131, 164, 130, 171, 107, 106, 200, 201, 170]

    async def script(ctx, port, frames, state):
        old = ScriptedCS(ctx, port, frames)
        await old.handshake()
        for seq in old_seqs:
            assert len(await old.send(Bus.CSMB, old.stamp(Config(item=ConfigItem.HELLO_INTERVAL_MS), seq=seq))) == 1
        # The old CS goes silent: 3 HELLO intervals (1 s each) later its slot is free.
        ctx.set(port.tick, 1)
        await ctx.tick().repeat(8)
        ctx.set(port.tick, 0)
        await ctx.tick().repeat(8)
        assert ctx.get(port.expired) == 1
        new = ScriptedCS(ctx, port, frames, ip=CS_IP + 1)
        await new.handshake()
        await _sequence_against_the_model(ctx, port, new, new_seqs)

    run_port(script, cs_slots=1, ms_per_tick=1000)


@pytest.mark.parametrize(("interval_ms", "alive_after", "gone_after"), [(0, 2, 5), (1, 2, 5), (2, 5, 8)])
def test_a_silent_cs_expires_after_three_of_its_intervals(interval_ms, alive_after, gone_after):
    """A CS's slot is freed 3 HELLO intervals after its HELLO (an interval
    of 0 counts as 1 ms): alive ``alive_after`` ms later, gone by
    ``gone_after`` (1 ms a tick)."""

    async def script(ctx, port, frames, state):
        cs = ScriptedCS(ctx, port, frames)
        await cs.handshake(hello_interval_ms=interval_ms)
        for ticks, expired in ((alive_after, 0), (gone_after - alive_after, 1)):
            ctx.set(port.tick, 1)
            await ctx.tick().repeat(ticks)
            ctx.set(port.tick, 0)
            await ctx.tick().repeat(16)
            assert ctx.get(port.expired) == expired, (interval_ms, ticks)

    run_port(script, cs_slots=1, ms_per_tick=1)


@pytest.mark.parametrize(
    ("offered", "verdict", "carried"),
    [((2, 0), ErrorCode.VERS_NEW, (1, 0)), ((0, 9), ErrorCode.VERS_OBSOLETE, (1, 0)), ((1, 0), ErrorCode.NONE, (1, 0))],
)
def test_version_negotiation(offered, verdict, carried):
    async def script(ctx, port, frames, state):
        cs = ScriptedCS(ctx, port, frames)
        hello = cs.stamp(CsmbHello(csmb_vers_major=offered[0], csmb_vers_minor=offered[1], vers_major=offered[0]))
        (answer,) = await cs.send(Bus.CSMB, hello)
        assert answer.error == verdict
        assert (answer.csmb_vers_major, answer.csmb_vers_minor) == carried

    run_port(script)


def test_slots_run_out_and_second_cs_has_its_own_session():
    async def script(ctx, port, frames, state):
        first = ScriptedCS(ctx, port, frames)
        await first.handshake()
        second = ScriptedCS(ctx, port, frames, ip=CS_IP + 1)
        await second.handshake()
        assert first.session != second.session
        third = ScriptedCS(ctx, port, frames, ip=CS_IP + 2)
        assert await third.send(Bus.CSMB, third.stamp(CsmbHello())) == []
        assert ctx.get(port.no_slot) == 1

    run_port(script, cs_slots=2)


def test_constructor_checks():
    with pytest.raises(ValueError, match="cs_slots must be an integer from 1 to 8, not 0"):
        MessagePort(cs_slots=0)
    with pytest.raises(ValueError, match="vs_entries"):
        MessagePort(vs_entries=1000)
    assert message_layout(SsmbQuery).size // 8 + TAG_SIZE == SsmbQuery.wire_size()


def test_core_message_goes_out_while_the_core_has_not_taken_ours():
    """The DFS core sends one message at a time and takes none meanwhile: a
    QUERY it offers must leave even while a REPLY waits for it on to_core
    (waiting for each other would stop both for good)."""

    async def script(ctx, port, frames, state):
        cs = ScriptedCS(ctx, port, frames)
        await cs.handshake()
        ctx.set(port.to_core.ready, 0)
        reply = cs.stamp(SsmbReply(serial=42))
        assert await cs.send(Bus.SSMB, reply) == []
        assert ctx.get(port.to_core.valid) and ctx.get(port.to_core.payload.msg_type) == SsmbType.REPLY
        query = SsmbQuery(serial=77, vs_id=7)
        signed = Codec(KEY).encode(query)[:-TAG_SIZE]
        core = state["core"].sink
        ctx.set(core.valid, 1)
        ctx.set(core.payload, {"length": len(signed), "raw": int.from_bytes(signed, "big") << 8 * (
            MAX_SENT_BYTES - len(signed))})
        for _ in range(2000):
            if (await ctx.tick().sample(core.ready))[2]:
                break
        else:
            raise AssertionError("the core's QUERY never left: the port waits for the core and the core for it")
        ctx.set(core.valid, 0)
        (sent,) = await cs.send(Bus.SSMB, raw=b"")
        assert isinstance(sent, SsmbQuery) and sent.serial == 77
        assert ctx.get(port.to_core.valid)  # the REPLY still waits, unchanged
        ctx.set(port.to_core.ready, 1)
        await ctx.tick().repeat(3)
        assert [(t, s) for t, s, _ in state["to_core"]][-1] == (SsmbType.REPLY, cs.session)
        assert not ctx.get(port.to_core.valid) and ctx.get(port.rx_accepted) == 3

    run_port(script)
