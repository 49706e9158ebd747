"""The flow controller with the real flow table: QUERY, REPLY installing both
directions, REAP alive and dead, TIMEOUT, DELETE, overflow eviction reported
to the CS, TCP close tracking, idle ageing, RESET and DUMP -- every message it
emits is decoded with the host codec."""

from __future__ import annotations

import ipaddress

from amaranth import Module
from amaranth.lib.wiring import connect
from amaranth.sim import Simulator

from twinplane.hdl.dfs.flow_control import FlowController
from twinplane.hdl.flowtable import FlowTable
from twinplane.model.flowkey import ACTION_WIDTH, KEY_WIDTH, pack_key, unpack_action
from twinplane.model.flowtable import FlowGeometry
from twinplane.protocol.codec import Codec
from twinplane.protocol.codes import Bus, DeleteReason, ErrorCode, Flag
from twinplane.protocol.messages import (
    TAG_SIZE,
    FlowSignature,
    SsmbDelete,
    SsmbDump,
    SsmbQuery,
    SsmbReap,
    SsmbReply,
    SsmbReset,
    SsmbStats,
    SsmbTimeout,
    Translation,
)

KEY = bytes(16)
CODEC = Codec(KEY)
GEOMETRY = FlowGeometry(key_width=KEY_WIDTH, action_width=ACTION_WIDTH, buckets=4, ways=2, tables=2, ts_width=16)
VIP, NODE = ipaddress.IPv4Address("10.0.0.100"), ipaddress.IPv4Address("10.1.0.1")


def client(n: int) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(0x0A020000 + n)


def signature(n: int) -> FlowSignature:
    return FlowSignature(src_addr=client(n), dst_addr=VIP, src_port=40000 + n, dst_port=80, protocol=6)


def reply(n: int, error=ErrorCode.NONE) -> SsmbReply:
    xlate = Translation(node_addr=NODE, node_port=8080, egress_port=1, client_port=0,
                        node_mac=bytes.fromhex("0200000001aa"), client_mac=bytes.fromhex("0200000002bb"),
                        vs_id=3, node_id=5, node_vlan=30, client_vlan=0x801)
    return SsmbReply(serial=1000 + n, error=error, flags=Flag.TRANSLATE_ADDR | Flag.TRANSLATE_PORT,
                     flow=signature(n), xlate=xlate)


def inbound_key(n: int) -> int:
    return pack_key(src_ip=int(client(n)), dst_ip=int(VIP), src_port=40000 + n, dst_port=80, protocol=6, inbound=1)


class Harness:
    def __init__(self, ctx, top):
        self.ctx, self.top = ctx, top
        self.messages = []
        self.resolved = []

    async def send(self, msg):
        signed = CODEC.encode(msg)[:-TAG_SIZE]
        header_bits = int.from_bytes(signed[:24], "big")
        ctx, fc = self.ctx, self.top.fc
        ctx.set(fc.msg.valid, 1)
        ctx.set(fc.msg.payload, {"bus": 0, "msg_type": int(msg.TYPE), "raw": int.from_bytes(signed, "big")})
        ctx.set(fc.msg.payload.header.as_value(), header_bits)
        await ctx.tick().until(fc.msg.ready)
        ctx.set(fc.msg.valid, 0)
        await self.settle()

    async def settle(self, cycles=300):
        await self.ctx.tick().repeat(cycles)

    async def until_resolved(self, key: int, limit=5000):
        """Wait for the verdict on the REPLY of ``key``: the flow controller
        resolves a REPLY after everything it did for it (evictions reported
        included), however long the table took."""
        for _ in range(limit):
            if any(k == key for k, _ in self.resolved):
                return
            await self.ctx.tick()
        raise AssertionError(f"REPLY of {key:#x} not resolved in {limit} clocks")

    def take(self):
        out, self.messages = self.messages, []
        return out

    async def touch(self, handle: int, nbytes: int):
        ctx, ft = self.ctx, self.top.ft
        ctx.set(ft.touch.valid, 1)
        ctx.set(ft.touch.payload, {"handle": handle, "nbytes": nbytes, "now": ctx.get(self.top.fc.now)})
        await ctx.tick()
        ctx.set(ft.touch.valid, 0)

    async def lookup(self, key: int):
        ctx, ft = self.ctx, self.top.ft
        ctx.set(ft.lookup.valid, 1)
        ctx.set(ft.lookup.payload, {"key": key})
        await ctx.tick().until(ft.lookup.ready)
        ctx.set(ft.lookup.valid, 0)
        for _ in range(ft.latency + 2):
            if ctx.get(ft.result.valid):
                result = ctx.get(ft.result.payload)
                return (result.hit, result.handle, result.action)
            await ctx.tick()
        raise AssertionError("no lookup result")


class Top:
    def __init__(self):
        self.fc = FlowController(GEOMETRY, ms_per_tick=10, close_linger=2)
        self.ft = FlowTable(GEOMETRY)

    def module(self):
        m = Module()
        m.submodules.fc, m.submodules.ft = self.fc, self.ft
        connect(m, self.fc.cmd, self.ft.cmd)
        connect(m, self.ft.rsp, self.fc.rsp)
        return m


def run(script):
    top = Top()
    now = {"ticks": 0}

    async def bench(ctx):
        ctx.set(top.fc.resolve.ready, 1)
        h = Harness(ctx, top)
        top.harness = h
        await script(ctx, top, h, now)

    async def collector(ctx):
        async for _, _, rv, rp in ctx.tick().sample(top.fc.resolve.valid, top.fc.resolve.payload):
            if rv:
                top.harness.resolved.append((rp.key, rp.accept))

    async def core_reader(ctx):
        """The message port's part: each message offered on core_msg read
        by index (a word a clock later), then taken."""
        fc = top.fc
        while True:
            await ctx.tick()
            if not ctx.get(fc.core_msg.valid):
                continue
            payload = ctx.get(fc.core_msg.payload)
            assert ctx.get(fc.core_read.word) == 0  # not read (en low) the clock before
            signed = bytearray()
            ctx.set(fc.core_read.en, 1)
            for w in range((payload.length + 7) // 8):
                ctx.set(fc.core_read.index, 8 * w)
                ctx.set(fc.core_read.word_at, 1 << w)
                await ctx.tick()
                signed += ctx.get(fc.core_read.word).to_bytes(8, "little")
            ctx.set(fc.core_read.en, 0)
            signed = signed[: payload.length]
            assert (payload.msg_type, payload.error) == (signed[2], signed[3])
            assert ctx.get(fc.core_msg.payload).as_bits() == payload.as_bits()  # held while read
            ctx.set(fc.core_msg.ready, 1)
            await ctx.tick()
            ctx.set(fc.core_msg.ready, 0)
            signed[4:6] = (payload.length + TAG_SIZE).to_bytes(2, "big")
            (msg,) = CODEC.decode(Bus.SSMB, bytes(signed) + CODEC.tag(Bus.SSMB, bytes(signed)))
            if isinstance(msg, SsmbQuery):  # the flow the message port splits QUERYs by
                flow = payload.flow
                assert (flow.src_addr & 0xFFFF_FFFF, flow.dst_addr & 0xFFFF_FFFF, flow.src_port, flow.dst_port,
                        flow.protocol) == (int(msg.flow.src_addr), int(msg.flow.dst_addr), msg.flow.src_port,
                                           msg.flow.dst_port, msg.flow.protocol)
            top.harness.messages.append(msg)

    async def clock(ctx):
        cycles = 0
        async for _ in ctx.tick():
            cycles += 1
            if cycles % 50 == 0:  # one DFS tick every 50 clocks
                now["ticks"] += 1
                ctx.set(top.fc.now, now["ticks"] & 0xFFFF)

    sim = Simulator(top.module())
    sim.add_clock(8e-9)
    sim.add_testbench(bench)
    sim.add_process(collector)
    sim.add_testbench(core_reader, background=True)
    sim.add_process(clock)
    sim.run()


def test_query_reply_reap_and_delete():
    async def script(ctx, top, h, now):
        fc = top.fc
        # QUERY from a miss-path request
        ctx.set(fc.query.valid, 1)
        ctx.set(fc.query.payload, {"slot": 0, "query": {
            "tos": 0x10, "vlan_valid": 0, "ingress_port": 0, "client_mac": 0x0200000002BB, "vs_id": 3,
            "tcp_flags": 0x02}})
        ctx.set(fc.query.payload.query.key.as_value(), inbound_key(1))
        await ctx.tick().until(fc.query.ready)
        ctx.set(fc.query.valid, 0)
        await h.settle(20)
        (query,) = h.take()
        assert isinstance(query, SsmbQuery)
        assert query.flow == FlowSignature(src_addr=client(1), dst_addr=VIP, src_port=40001, dst_port=80,
                                           protocol=6, tos=0x10)
        assert (query.client_mac, query.vs_id, query.tcp_flags) == (bytes.fromhex("0200000002bb"), 3, 2)

        # REPLY installs both directions and releases the held frames
        await h.settle(50 * 20)  # ticks in, so that an age counted from tick 0 would show
        sent = now["ticks"]
        await h.send(reply(1))
        installed = (sent, now["ticks"])  # the flow is created between the two
        assert h.resolved == [(inbound_key(1), 1)]
        hit, handle_in, action = await h.lookup(inbound_key(1))
        assert hit
        action = unpack_action(action)
        assert (action["new_ip"], action["new_port"], action["egress_port"]) == (int(NODE), 8080, 1)
        assert action["eth_dst"] == 0x0200000001AA and action["rewrite_source"] == 0
        assert (action["vlan_rewrite"], action["vlan_id"]) == (1, 30)
        return_key = pack_key(src_ip=int(NODE), dst_ip=int(client(1)), src_port=8080, dst_port=40001,
                              protocol=6, inbound=0)
        hit, handle_out, action = await h.lookup(return_key)
        assert hit
        action = unpack_action(action)
        assert (action["new_ip"], action["new_port"], action["rewrite_source"]) == (int(VIP), 80, 1)
        assert action["eth_dst"] == 0x0200000002BB and action["egress_port"] == 0
        assert (action["vlan_rewrite"], action["vlan_id"]) == (1, 0x801)

        # traffic, then REAP: alive
        for _ in range(3):
            await h.touch(handle_in, 100)
        await h.touch(handle_out, 1500)
        asked = now["ticks"]
        await h.send(SsmbReap(serial=1001, flow=signature(1), idle_ms=10_000))
        (stats,) = h.take()
        assert isinstance(stats, SsmbStats) and stats.error == ErrorCode.CONNALIVE and stats.serial == 1001
        assert (stats.stats.packets_in, stats.stats.bytes_in) == (3, 300)
        assert (stats.stats.packets_out, stats.stats.bytes_out) == (1, 1500)
        assert (stats.stats.vs_id, stats.stats.node_id) == (3, 5)
        # the flow's age, from its creation to the answer (10 ms a tick)
        assert 10 * (asked - installed[1]) <= stats.stats.age_ms <= 10 * (now["ticks"] - installed[0])

        # ...idle for a while: REAP deletes; then TIMEOUT of a flow that is gone
        await h.settle(50 * 5)
        asked = now["ticks"]
        await h.send(SsmbReap(serial=1001, flow=signature(1), idle_ms=30))
        (delete,) = h.take()
        assert isinstance(delete, SsmbDelete) and delete.stats.reason == DeleteReason.REAP
        assert delete.stats.packets_in == 3 and delete.flow.src_addr == client(1)
        assert 10 * (asked - installed[1]) <= delete.stats.age_ms <= 10 * (now["ticks"] - installed[0])
        assert not (await h.lookup(inbound_key(1)))[0] and not (await h.lookup(return_key))[0]
        await h.send(SsmbTimeout(serial=1001, flow=signature(1), idle_ms=0))
        (gone,) = h.take()
        assert isinstance(gone, SsmbDelete)
        assert (gone.stats.packets_in, gone.stats.bytes_in, gone.stats.packets_out, gone.stats.bytes_out) == (0,) * 4
        assert gone.stats.age_ms == 0  # unknown here: created "now"

        # refused: the miss path drops; a CS DELETE removes an installed flow
        await h.send(reply(2, error=ErrorCode.CONNLIMIT))
        assert h.resolved[-1] == (inbound_key(2), 0)
        await h.send(reply(3))
        await h.send(SsmbDelete(serial=1003, flow=signature(3)))
        (delete,) = h.take()
        assert delete.stats.reason == DeleteReason.CS_DELETE and delete.serial == 1003
        assert ctx.get(fc.flows_installed) == 2 and ctx.get(fc.flows_refused) == 1

    run(script)


def test_overflow_close_idle_dump_and_reset():
    async def script(ctx, top, h, now):
        fc = top.fc
        entries = GEOMETRY.entries  # 16 handles: 8 flows
        for n in range(entries // 2):
            await h.send(reply(n))
        assert h.take() == []
        # one more flow: the oldest are evicted, their partners go, the CS hears of it
        await h.settle(100)
        await h.send(reply(100))
        await h.until_resolved(inbound_key(100))
        evicted = h.take()
        assert evicted and all(isinstance(m, SsmbDelete) for m in evicted)
        assert all(m.stats.reason == DeleteReason.OVERFLOW for m in evicted)
        assert ctx.get(fc.evictions) >= 1
        assert (await h.lookup(inbound_key(100)))[0]

        # DUMP: one STATS per flow, then END with the count
        await h.send(SsmbDump())
        await h.settle(2000)
        dump = h.take()
        assert isinstance(dump[-1], SsmbDump) and dump[-1].flags & Flag.END
        stats = [m for m in dump if isinstance(m, SsmbStats)]
        assert dump[-1].count == len(stats) == entries // 2 + 1 - len(evicted)

        # TCP close: FIN both ways, then the flow lingers and goes (reason FIN)
        _, handle_in, _ = await h.lookup(inbound_key(100))
        return_key = pack_key(src_ip=int(NODE), dst_ip=int(client(100)), src_port=8080, dst_port=40100,
                              protocol=6, inbound=0)
        _, handle_out, _ = await h.lookup(return_key)
        for handle in (handle_in, handle_out):
            ctx.set(fc.tcp_event.valid, 1)
            ctx.set(fc.tcp_event.payload, {"handle": handle, "fin": 1, "rst": 0})
            await ctx.tick().until(fc.tcp_event.ready)
            ctx.set(fc.tcp_event.valid, 0)
        # the linger, plus a sweep of the idle scanner (~25 clocks a flow), plus
        # the harness's reading of each message (a word a clock)
        await h.settle(50 * 12)
        closed = h.take()
        assert [(m.flow.src_addr, m.stats.reason, m.stats.tcp_state) for m in closed] == [
            (client(100), DeleteReason.FIN, 0b011)]

        # idle ageing: every flow goes (reason IDLE)
        ctx.set(fc.idle_timeout, 3)
        await h.settle(50 * 20)  # idle for 3 ticks, then the scanner's sweeps (~30 clocks a flow), the reads
        idle = h.take()
        assert idle and all(m.stats.reason == DeleteReason.IDLE for m in idle)
        ctx.set(fc.idle_timeout, 0)

        # RESET: table flushed, RESET answered
        await h.send(reply(7))
        await h.send(SsmbReset())
        (answer,) = h.take()
        assert isinstance(answer, SsmbReset)
        assert not (await h.lookup(inbound_key(7)))[0]

    run(script)
