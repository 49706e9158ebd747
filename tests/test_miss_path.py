"""The miss path holds the frames of pending flows, sends one QUERY per new
flow, releases held frames in order on accept, drops them on refusal or
timeout, and stays bounded (slots, frames per slot, bytes per slot)."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from twinplane.hdl.miss.miss_path import MissPath, SlotState


def frame(key: int, number: int, length: int = 64) -> bytes:
    return bytes([key, number]) + bytes((key * 31 + number + i) & 0xFF for i in range(length - 2))


def run(script, ready_rate=1.0, **kwargs):
    """``ready_rate``: how often the release's consumer is ready (random
    clocks below 1).  The DUT comes back with ``agains`` (the `again` bit of
    each QUERY taken) and ``beats`` (the clock of each released byte)."""
    dut = MissPath(key_width=16, query_shape=8, **kwargs)
    released, queries = [], []
    dut.agains = agains = []
    dut.beats = beats = []
    dut.slots = slots = []  # the release_slot of each released frame

    async def consumer(ctx):
        rng = random.Random(5)
        async for _ in ctx.tick():
            ctx.set(dut.release.ready, rng.random() < ready_rate)

    async def driver(ctx):
        ctx.set(dut.release.ready, 1)
        ctx.set(dut.query.ready, 1)

        async def hold(key: int, data: bytes):
            ctx.set(dut.hold.valid, 1)
            ctx.set(dut.hold.payload, {"key": key, "query": key & 0xFF})
            for i, byte in enumerate(data):
                ctx.set(dut.sink.valid, 1)
                ctx.set(dut.sink.payload, {"data": byte, "first": i == 0, "last": i == len(data) - 1})
                await ctx.tick().until(dut.sink.ready)
                ctx.set(dut.hold.valid, 0)
            ctx.set(dut.sink.valid, 0)
            await ctx.tick()

        async def resolve(key: int, accept: bool):
            ctx.set(dut.resolve.valid, 1)
            ctx.set(dut.resolve.payload, {"key": key, "accept": accept})
            await ctx.tick().until(dut.resolve.ready)
            ctx.set(dut.resolve.valid, 0)

        async def probe(key: int):
            # the answer: every slot compared with the key once (one a clock), registered
            ctx.set(dut.probe_key, key)
            await ctx.tick().repeat(dut.probe_latency)
            return ctx.get(dut.probe_hit), ctx.get(dut.probe_state)

        await script(ctx, dut, hold, resolve, probe)
        await ctx.tick().repeat(400)

    async def monitor(ctx):
        current = bytearray()
        clock = 0
        async for _, _, valid, ready, payload, slot, qv, qr, q in ctx.tick().sample(
            dut.release.valid, dut.release.ready, dut.release.payload, dut.release_slot, dut.query.valid,
            dut.query.ready, dut.query.payload
        ):
            if qv and qr:
                queries.append(q.query)
                agains.append(q.again)
            clock += 1
            if valid and ready:
                beats.append(clock)
                assert bool(payload.first) == (not current)
                if payload.first:
                    slots.append(slot)
                assert slot == slots[-1], "release_slot changed inside a frame"
                current.append(payload.data)
                if payload.last:
                    released.append(bytes(current))
                    current = bytearray()

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(driver)
    sim.add_process(monitor)
    if ready_rate < 1:
        sim.add_process(consumer)
    sim.run()
    return dut, released, queries


def test_accept_releases_in_order_and_refusal_drops():
    counters = {}

    async def script(ctx, dut, hold, resolve, probe):
        await hold(1, frame(1, 0))
        await hold(2, frame(2, 0))
        await hold(1, frame(1, 1, 100))
        assert await probe(1) == (1, SlotState.WAITING)
        assert await probe(3) == (0, 0)
        await resolve(2, False)
        await resolve(1, True)
        await ctx.tick().repeat(400)
        assert await probe(1) == (0, 0)  # released and freed
        await resolve(7, True)  # nothing pending for key 7
        await ctx.tick().repeat(dut.resolve_latency + 1)
        for name in ("queries", "frames_held", "frames_released", "frames_dropped_refused", "resolve_unmatched"):
            counters[name] = ctx.get(getattr(dut, name))

    _, released, queries = run(script)
    assert released == [frame(1, 0), frame(1, 1, 100)]
    assert queries == [1, 2]
    assert counters == {"queries": 2, "frames_held": 3, "frames_released": 2, "frames_dropped_refused": 1,
                        "resolve_unmatched": 1}


def test_bounds_slots_frames_and_bytes():
    counters = {}

    async def script(ctx, dut, hold, resolve, probe):
        for key in range(1, 4):  # 2 slots: the third new flow is dropped
            await hold(key, frame(key, 0))
        for n in range(1, 4):  # 3 frames per slot: the fourth is dropped
            await hold(1, frame(1, n))
        await hold(2, frame(2, 1, 200))  # 256 bytes per slot: 64 + 200 does not fit
        for name in ("dropped_no_slot", "dropped_queue_full", "frames_held"):
            counters[name] = ctx.get(getattr(dut, name))
        await resolve(1, True)
        await resolve(2, True)

    _, released, _ = run(script, slots=2, frames_per_slot=3, slot_bytes=256)
    assert counters == {"dropped_no_slot": 1, "dropped_queue_full": 2, "frames_held": 4}
    assert released == [frame(1, 0), frame(1, 1), frame(1, 2), frame(2, 0)]


def test_timeout_and_flush():
    counters = {}

    async def script(ctx, dut, hold, resolve, probe):
        await hold(1, frame(1, 0))
        await ctx.tick().repeat(110)  # no REPLY within the timeout
        assert (await probe(1))[0] == 0  # no longer pending
        await ctx.tick().repeat(100)  # its frame is discarded meanwhile
        await hold(2, frame(2, 0))
        ctx.set(dut.flush, 1)
        await ctx.tick()
        ctx.set(dut.flush, 0)
        await resolve(2, True)  # too late: flushed
        await ctx.tick().repeat(dut.resolve_latency)  # the resolve's key compare (a round)
        counters["timeouts"] = ctx.get(dut.timeouts)
        counters["resolve_unmatched"] = ctx.get(dut.resolve_unmatched)

    _, released, _ = run(script, timeout_cycles=100)
    assert released == []
    assert counters == {"timeouts": 1, "resolve_unmatched": 1}


@pytest.mark.parametrize("gap", [0, 3, 20])
def test_a_frame_stored_while_its_slot_is_released_goes_out_too(gap):
    """A frame of the flow arrives as its slot is being released: the reader
    has sent the first frame and waits at the end of the queue while the
    second goes in.  The slot must not be freed before the reader sees the
    second frame's end (it moves a few clocks after the store)."""

    async def script(ctx, dut, hold, resolve, probe):
        await hold(1, frame(1, 0, 16))
        await resolve(1, True)
        if gap:
            await ctx.tick().repeat(gap)
        await hold(1, frame(1, 1, 120))
        await ctx.tick().repeat(300)
        assert await probe(1) == (0, 0)  # released and freed

    _, released, queries = run(script)
    assert released == [frame(1, 0, 16), frame(1, 1, 120)]
    assert queries == [1]


def test_a_flush_as_a_frame_goes_in_leaves_its_slot_empty():
    """RESET's flush in the clock a frame's last byte is stored: the slot is
    freed with its queue empty, so the next flow's frame comes out whole."""

    async def script(ctx, dut, hold, resolve, probe):
        data = frame(1, 0)
        ctx.set(dut.hold.valid, 1)
        ctx.set(dut.hold.payload, {"key": 1, "query": 1})
        for i, byte in enumerate(data):
            ctx.set(dut.sink.valid, 1)
            ctx.set(dut.sink.payload, {"data": byte, "first": i == 0, "last": i == len(data) - 1})
            ctx.set(dut.flush, i == len(data) - 1)
            await ctx.tick().until(dut.sink.ready)
            ctx.set(dut.hold.valid, 0)
        ctx.set(dut.sink.valid, 0)
        ctx.set(dut.flush, 0)
        await ctx.tick().repeat(10)
        assert await probe(1) == (0, 0)  # flushed
        await hold(2, frame(2, 0, 40))
        await resolve(2, True)

    _, released, _ = run(script, slots=1)
    assert released == [frame(2, 0, 40)]


def test_timeouts_of_many_slots_at_once_are_all_counted():
    """Slots waiting since the same prescaler tick expire on the same clock:
    the count sums them across the groups of four it adds up separately."""
    counters = {}

    async def script(ctx, dut, hold, resolve, probe):
        for key in range(1, 7):
            await hold(key, frame(key, 0))
        await ctx.tick().repeat(1200)  # past the timeout (and its quarter) of them all
        counters["timeouts"] = ctx.get(dut.timeouts)

    _, released, _ = run(script, slots=8, timeout_cycles=800)
    assert released == []
    assert counters == {"timeouts": 6}


def test_new_flows_wait_for_their_query_in_arrival_order():
    """While the flow controller takes no QUERY (it is sending an earlier
    message), new flows still get slots; their QUERYs follow in arrival
    order, each once, with its slot (it used to refuse every new flow while
    one QUERY was unsent: a SYN in 16 lost in the demo)."""
    counters = {}

    async def script(ctx, dut, hold, resolve, probe):
        ctx.set(dut.query.ready, 0)
        for key in (5, 3, 7, 1):
            await hold(key, frame(key, 0))
        await hold(3, frame(3, 1))
        await resolve(7, False)  # refused before its QUERY left: no QUERY for it
        await ctx.tick().repeat(20)
        ctx.set(dut.query.ready, 1)
        await ctx.tick().repeat(20)
        for name in ("dropped_no_slot", "frames_held", "queries"):
            counters[name] = ctx.get(getattr(dut, name))
        for key in (5, 3, 1):
            await resolve(key, True)

    _, released, queries = run(script, slots=4)
    assert queries == [5, 3, 1]
    assert counters == {"dropped_no_slot": 0, "frames_held": 5, "queries": 3}
    assert sorted(released) == sorted([frame(5, 0), frame(3, 0), frame(3, 1), frame(1, 0)])


def test_asked_again_when_the_active_set_loses_a_member():
    """docs/redundancy.md change 8, the miss path's part: a QUERY handed over
    while CS 0 was active is asked again (again = 1: same serial) once CS 1
    is; a new flow while no CS is active waits unasked; with no CS at all it
    is dropped."""
    counters = {}

    async def script(ctx, dut, hold, resolve, probe):
        ctx.set(dut.cs_present, 0b11)
        ctx.set(dut.active_set, 0b01)
        await hold(1, frame(1, 0))
        await ctx.tick().repeat(5)
        ctx.set(dut.active_set, 0b00)  # CS 0 is gone, CS 1 not active yet
        await hold(2, frame(2, 0))
        await ctx.tick().repeat(20)
        counters["before"] = ctx.get(dut.queries), ctx.get(dut.asked_again)
        ctx.set(dut.active_set, 0b10)  # CS 1 takes over
        await ctx.tick().repeat(20)
        ctx.set(dut.active_set, 0b11)  # a member joins: nobody is asked again
        await ctx.tick().repeat(20)
        ctx.set(dut.cs_present, 0)
        ctx.set(dut.active_set, 0)
        await hold(3, frame(3, 0))  # no CS at all: dropped
        assert (await probe(3))[0] == 0
        for name in ("queries", "asked_again", "dropped_no_cs", "frames_held"):
            counters[name] = ctx.get(getattr(dut, name))

    dut, _, queries = run(script, slots=4, cs_slots=2)
    assert list(zip(queries, dut.agains, strict=True)) == [(1, 0), (1, 1), (2, 0)]
    assert counters == {"before": (1, 0), "queries": 2, "asked_again": 1, "dropped_no_cs": 1, "frames_held": 2}


def test_active_active_asks_again_only_when_the_owner_leaves():
    """Two active CSs: the message port reports which one a QUERY went to
    (``asked``); the slot is asked again only when that CS leaves the active
    set, as the reference DFS does (its pending flow remembers its CS)."""
    counters = {}

    async def script(ctx, dut, hold, resolve, probe):
        ctx.set(dut.cs_present, 0b11)
        ctx.set(dut.active_set, 0b11)
        await hold(1, frame(1, 0))
        await hold(2, frame(2, 0))
        for slot, cs in ((0, 1), (1, 0)):  # the CRC split: flow 1 to CS 1, flow 2 to CS 0
            ctx.set(dut.asked.valid, 1)
            ctx.set(dut.asked.payload, {"slot": slot, "cs": cs, "sent": 1})
            await ctx.tick()
        ctx.set(dut.asked.valid, 0)
        ctx.set(dut.active_set, 0b10)  # CS 0 leaves: only flow 2 is asked again
        await ctx.tick().repeat(20)
        counters["asked_again"] = ctx.get(dut.asked_again)

    dut, _, queries = run(script, slots=4, cs_slots=2)
    assert list(zip(queries, dut.agains, strict=True)) == [(1, 0), (2, 0), (2, 1)]
    assert counters == {"asked_again": 1}


@pytest.mark.parametrize("ready_rate", [1.0, 0.4])
def test_random_traffic_against_a_model(ready_rate):
    """The model's frames, released whole and in order; also when the
    consumer is ready on 40 % of the clocks (the store's read runs ahead of
    it into the release FIFO, which must lose nothing)."""
    rng = random.Random(21)
    plan = []
    for _ in range(60):
        if rng.random() < 0.25:
            plan.append(("resolve", rng.randrange(1, 6), rng.random() < 0.7))
        else:
            key = rng.randrange(1, 6)
            plan.append(("hold", key, frame(key, rng.randrange(256), rng.randrange(60, 200))))

    # The model: same bounds, resolves act immediately, released frames in order per flow.
    slots, per_slot, slot_bytes = 3, 4, 512
    pending: dict[int, list[bytes]] = {}
    expected: dict[int, list[bytes]] = {}
    for action, key, arg in plan:
        if action == "hold":
            if key not in pending:
                if len(pending) == slots:
                    continue
                pending[key] = []
            queue = pending[key]
            if len(queue) < per_slot and sum(map(len, queue)) + len(arg) <= slot_bytes:
                queue.append(arg)
        elif key in pending:
            frames_ = pending.pop(key)
            if arg:
                expected.setdefault(key, []).extend(frames_)

    async def script(ctx, dut, hold, resolve, probe):
        for action, key, arg in plan:
            if action == "hold":
                await hold(key, arg)
            else:
                await resolve(key, arg)
                # The model's release is at once: the key comes back once its slot is free.
                for _ in range(400):
                    if (await probe(key))[0] == 0:
                        break
                else:
                    raise AssertionError(f"the slot of key {key} was never freed")

    _, released, _ = run(script, ready_rate, slots=slots, frames_per_slot=per_slot, slot_bytes=slot_bytes)
    got: dict[int, list[bytes]] = {}
    for f in released:
        got.setdefault(f[0], []).append(f)
    assert got == expected


def test_a_released_queue_leaves_a_byte_a_clock():
    """At line rate: a ready consumer takes a released queue's bytes on
    consecutive clocks, across its frames (the release FIFO has a place for
    every read in flight)."""

    async def script(ctx, dut, hold, resolve, probe):
        await hold(1, frame(1, 0, 100))
        await hold(1, frame(1, 1, 120))
        await resolve(1, True)

    dut, released, _ = run(script, slot_bytes=256)
    assert released == [frame(1, 0, 100), frame(1, 1, 120)]
    assert dut.beats == list(range(dut.beats[0], dut.beats[0] + 220))


def test_queues_released_back_to_back_keep_their_slots():
    """Two flows resolved together under a slow consumer: the reader moves
    to the second slot only once the first one's bytes have all left the
    release FIFO, so every byte carries its own queue's ``release_slot``."""

    async def script(ctx, dut, hold, resolve, probe):
        for n in range(3):
            await hold(1, frame(1, n, 70))
            await hold(2, frame(2, n, 70))
        await resolve(1, True)
        await resolve(2, True)
        await ctx.tick().repeat(1200)

    dut, released, _ = run(script, ready_rate=0.3, slots=2)
    assert released == [frame(1, n, 70) for n in range(3)] + [frame(2, n, 70) for n in range(3)]
    assert dut.slots[0] != dut.slots[3] and len(set(dut.slots[:3])) == len(set(dut.slots[3:])) == 1


def test_constructor_checks():
    with pytest.raises(ValueError, match="slot_bytes must be a power of two of at least 64, not 100"):
        MissPath(key_width=8, query_shape=8, slot_bytes=100)
    with pytest.raises(ValueError, match="slots"):
        MissPath(key_width=8, query_shape=8, slots=0)
    with pytest.raises(ValueError, match="cs_slots must be None or an integer from 1 to 8, not 9"):
        MissPath(key_width=8, query_shape=8, cs_slots=9)


def test_ecp5_queries_in_block_ram():
    """On ECP5 the slots' QUERYs are block RAM read through its output
    register (the DP16KD's 36-bit mode), not LUT RAM: the queues' one EBR
    plus the QUERY memory's columns."""
    from amaranth.back import rtlil
    from amaranth.hdl import Shape

    from twinplane.hdl.dfs.flow_control import query_layout
    from twinplane.hdl.ram import ECP5Netlist, dp16kd_columns
    from twinplane.model.flowkey import KEY_WIDTH

    width = Shape.cast(query_layout()).width
    text = rtlil.convert(MissPath(key_width=KEY_WIDTH, query_shape=query_layout(), cs_slots=2),
                         platform=ECP5Netlist())
    columns = dp16kd_columns(width, 512)
    assert columns == -(-width // 36)  # ~200 bits: six columns
    assert text.count("cell \\DP16KD ") == 1 + columns
    assert text.count("DATA_WIDTH_A 36") == columns
    assert text.count('REGMODE_B "OUTREG"') == 1 + columns


def test_concurrent_new_flows_through_the_whole_dfs():
    """Eight SYNs of eight new flows back to back (the demo's overlapping
    setups): each takes a slot and gets its QUERY while the message port is
    still sending the previous ones; the REPLYs release every SYN."""
    from scapy.layers.inet import IP, TCP

    from twinplane.hdl.dfs.top import DFSCore
    from twinplane.protocol.messages import SsmbQuery
    from twinplane.sim.dfs.world import GEOMETRY, NODE_IP, bring_up, client_frame, reply_to, run_world

    clients = [(f"10.2.0.{10 + i}", 40000 + i) for i in range(8)]

    async def script(w):
        await bring_up(w)
        for ip, port in clients:
            await w.send(0, client_frame(ip, port, "S"))
        queries = [msg for packet in await w.wait(1, len(clients)) for msg in w.cs_decode(packet)]
        assert all(isinstance(q, SsmbQuery) for q in queries)
        assert sorted((q.flow.src_addr.compressed, q.flow.src_port) for q in queries) == clients
        assert len({q.serial for q in queries}) == len(clients)
        for query in queries:
            await w.cs_send(reply_to(query))
        at_node = await w.wait(1, len(clients))
        assert sorted((p[IP].src, p[TCP].sport) for p in at_node) == clients
        assert all(p[IP].dst == NODE_IP and p[TCP].flags == "S" for p in at_node)
        return w.dut

    dut = DFSCore(geometry=GEOMETRY, tick_cycles=1000, frame_buffer_bytes=2048)
    run_world(dut, script)
