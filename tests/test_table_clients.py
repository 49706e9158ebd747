"""Two forwarders share the flow table's lookup port: each gets its own
answers, also when both ask in the same clock; merged streams lose nothing,
and no input's ready waits on another input's valid."""

import random

from amaranth import ClockDomain, Module
from amaranth.lib.wiring import connect
from amaranth.sim import Simulator

from twinplane.hdl.dfs.table_clients import LookupSharer, TurnMerger
from twinplane.hdl.flowtable import FlowTable
from twinplane.model.flowtable import FlowGeometry, FlowOp

GEOMETRY = FlowGeometry(key_width=32, action_width=16, buckets=8, ways=2, tables=2)


def test_two_clients_get_their_own_answers():
    table = FlowTable(GEOMETRY)
    sharer = LookupSharer(GEOMETRY, 2)
    m = Module()
    m.submodules += [table, sharer]
    connect(m, sharer.table_lookup, table.lookup)
    connect(m, table.result, sharer.table_result)
    installed = {0x1000 + k: 0x100 + k for k in range(10)}
    answers = {0: [], 1: []}
    asked = {0: [], 1: []}
    rng = random.Random(3)

    async def bench(ctx):
        ctx.set(table.rsp.ready, 1)
        for key, action in installed.items():
            ctx.set(table.cmd.valid, 1)
            ctx.set(table.cmd.payload, {"op": FlowOp.INSERT, "key": key, "action": action, "handle": 0, "now": 0})
            await ctx.tick().until(table.cmd.ready)
            ctx.set(table.cmd.valid, 0)
            await ctx.tick().until(table.rsp.valid)

    def client(i):
        async def run(ctx):
            await ctx.tick().repeat(400)
            for _ in range(30):
                key = rng.choice(list(installed) + [0x2000 + i])
                asked[i].append(key)
                ctx.set(sharer.lookups[i].valid, 1)
                ctx.set(sharer.lookups[i].payload, {"key": key})
                await ctx.tick().until(sharer.lookups[i].ready)
                ctx.set(sharer.lookups[i].valid, 0)
                ctx.set(sharer.results[i].ready, 1)
                await ctx.tick().until(sharer.results[i].valid)
                ctx.set(sharer.results[i].ready, 0)
                result = ctx.get(sharer.results[i].payload)
                answers[i].append((result.key, result.hit, result.action))
        return run

    sim = Simulator(m)
    sim.add_clock(8e-9)
    sim.add_testbench(bench)
    sim.add_testbench(client(0))
    sim.add_testbench(client(1))
    sim.run()
    for i in (0, 1):
        assert answers[i] == [(k, k in installed, installed.get(k, 0)) for k in asked[i]]


def test_turn_merger_loses_nothing():
    dut = TurnMerger(8, 3)
    got = []
    sent = {i: [i * 50 + k for k in range(20)] for i in range(3)}
    rng = random.Random(5)

    def producer(i):
        async def run(ctx):
            for value in sent[i]:
                ctx.set(dut.sinks[i].valid, 1)
                ctx.set(dut.sinks[i].payload, value)
                await ctx.tick().until(dut.sinks[i].ready)
                ctx.set(dut.sinks[i].valid, 0)
        return run

    async def consumer(ctx):
        for _ in range(300):
            ready = rng.random() < 0.7
            ctx.set(dut.source.ready, ready)
            await ctx.tick()

    async def monitor(ctx):
        async for _, _, valid, ready, payload in ctx.tick().sample(dut.source.valid, dut.source.ready, dut.source.payload):
            if valid and ready:
                got.append(payload)

    top = Module()  # the merger is combinational: give the bench a clock
    top.submodules.dut = dut
    top.domains.sync = ClockDomain()
    sim = Simulator(top)
    sim.add_clock(8e-9)
    for i in range(3):
        sim.add_testbench(producer(i))
    sim.add_testbench(consumer)
    sim.add_process(monitor)
    sim.run()
    for i in range(3):
        assert [v for v in got if v // 50 == i] == sent[i]


def test_turn_merger_ready_is_the_turn_not_the_others_valid():
    """Input 1's ready is the same clock by clock whether input 0 offers or
    not (a priority merger held it off while 0 was valid), and input 0
    always valid does not starve input 1."""
    def readies(zero_valid):
        dut = TurnMerger(8, 2)
        seen = []

        async def bench(ctx):
            ctx.set(dut.source.ready, 1)
            ctx.set(dut.sinks[0].valid, zero_valid)
            ctx.set(dut.sinks[1].valid, 1)
            for _ in range(8):
                seen.append(ctx.get(dut.sinks[1].ready))
                await ctx.tick()

        top = Module()
        top.submodules.dut = dut
        top.domains.sync = ClockDomain()
        sim = Simulator(top)
        sim.add_clock(8e-9)
        sim.add_testbench(bench)
        sim.run()
        return seen

    alone, contended = readies(0), readies(1)
    assert alone == contended
    assert 0 < sum(contended) < len(contended)
