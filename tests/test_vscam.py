# amaranth: UnusedElaboratable=no
# (the constructor-check tests build components that raise before use)
"""The virtual-server CAM against its reference model (twinplane.model.vscam):
random tables and back-to-back questions with writes racing them, the
precedence cases one by one, the ARP lookup, and the constructor checks."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from twinplane.hdl.vscam.vs_cam import VirtualServerCAM
from twinplane.model.vscam import VirtualServerTable, VsCamEntry
from twinplane.protocol.codes import Flag

WA, WP, NOARP = Flag.WILDCARD_ADDR, Flag.WILDCARD_PORT, Flag.NOARP_MODE
ADDRS = [0xC6336400, 0xC6336401, 0x0A000001, 0xCB007101]
PORTS = [80, 443, 53]


def write_payload(index: int, e: VsCamEntry) -> dict:
    return {"index": index, "valid": int(e.valid), "flags": int(e.flags),
            "vs": {"vs_id": e.vs_id, "protocol": e.protocol, "virt_addr": (0xFFFF << 32) | e.virt_addr,
                   "virt_port": e.virt_port, "vlan_id": e.vlan_id}}


def run_cam(entries: int, steps):
    """``steps``: (write or None, lookup tuple or None, arp addr or None,
    local_addr), each offered at once and held until taken.  Every answer is
    checked against the model, which applies each write when the gateware
    takes it; a question's answer comes exactly ``latency()`` clocks after it
    was taken, and no write is taken in between."""
    dut = VirtualServerCAM(entries)
    model = VirtualServerTable(entries)
    checked = {"lookup": 0, "hits": 0, "arp": 0, "writes_waited": 0}
    latency = dut.latency()

    async def bench(ctx):
        pending: dict[int, tuple] = {}  # clock -> ("lookup", query, want) / ("arp", addr, want)
        now = 0
        for write, query, arp, local in steps:
            ctx.set(dut.local_addr, local)
            todo = {"write": write, "lookup": query, "arp": arp}
            while any(v is not None for v in todo.values()):
                ctx.set(dut.write.valid, todo["write"] is not None)
                if todo["write"] is not None:
                    ctx.set(dut.write.payload, write_payload(*todo["write"]))
                ctx.set(dut.lookup.valid, todo["lookup"] is not None)
                if todo["lookup"] is not None:
                    ctx.set(dut.lookup.payload, dict(zip(("dst_ip", "dst_port", "protocol", "vlan_id"),
                                                         todo["lookup"], strict=True)))
                ctx.set(dut.arp.valid, todo["arp"] is not None)
                if todo["arp"] is not None:
                    ctx.set(dut.arp.payload.addr, todo["arp"])
                taken = {name: todo[name] is not None and ctx.get(getattr(dut, name).ready) for name in todo}
                if todo["write"] is not None and not taken["write"]:
                    assert pending, "a write waits only behind a question"
                    checked["writes_waited"] += 1
                assert sum(taken.values()) <= 1 or not (taken["lookup"] and taken["arp"])
                if taken["write"]:
                    assert not pending
                    if todo["write"][0] < entries:  # the gateware ignores an index past the table
                        model.write(*todo["write"])
                if taken["lookup"]:
                    want = model.lookup(*todo["lookup"], local_addr=local)
                    pending[now + latency] = ("lookup", todo["lookup"], want)
                if taken["arp"]:
                    pending[now + latency] = ("arp", todo["arp"], model.answer_arp(todo["arp"]))
                for name in todo:
                    if taken[name]:
                        todo[name] = None
                await ctx.tick()
                now += 1
                check(ctx, pending, now)
        for _ in range(latency + 2):
            ctx.set(dut.write.valid, 0)
            ctx.set(dut.lookup.valid, 0)
            ctx.set(dut.arp.valid, 0)
            await ctx.tick()
            now += 1
            check(ctx, pending, now)
        assert not pending

    def check(ctx, pending, now):
        due = pending.pop(now, None)
        r = dut.result
        assert ctx.get(r.valid) == (due is not None and due[0] == "lookup")
        assert ctx.get(dut.arp_result.valid) == (due is not None and due[0] == "arp")
        if due is None:
            return
        kind, question, want = due
        if kind == "lookup":
            got = (ctx.get(r.hit), ctx.get(r.vs_id), ctx.get(r.index), ctx.get(r.flags))
            exp = (0, 0, 0, 0) if want is None else (1, want.vs_id, want.index, int(want.flags))
            assert got == exp, (now, question, want)
            checked["lookup"] += 1
            checked["hits"] += want is not None
        else:
            assert ctx.get(dut.arp_result.answer_arp) == want, (now, question)
            checked["arp"] += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return checked


def random_entry(rng: random.Random, vs_id: int) -> VsCamEntry:
    flags = rng.choice([Flag.NONE, Flag.NONE, WP, WA, WA | WP, NOARP, WP | NOARP, Flag.DISABLED])
    return VsCamEntry(valid=rng.random() < 0.85, vs_id=vs_id, protocol=rng.choice([6, 17]),
                      virt_addr=rng.choice(ADDRS), virt_port=rng.choice(PORTS), flags=flags,
                      vlan_id=rng.choice([0, 0, 0, 5]))


def random_query(rng: random.Random) -> tuple:
    return (rng.choice([*ADDRS, rng.getrandbits(32)]), rng.choice([*PORTS, rng.getrandbits(16)]),
            rng.choice([6, 17]), rng.choice([0, 5, 7]))


@pytest.mark.parametrize("entries", [16, 64])
def test_random_tables_and_racing_writes(entries):
    rng = random.Random(entries)
    steps = []
    # Fill the table, then ask questions back to back while writes keep changing it.
    for i in range(entries):
        steps.append(((i, random_entry(rng, rng.getrandbits(16))), None, None, 0))
    for _ in range(150 if entries > 16 else 700):
        write = (rng.randrange(entries), random_entry(rng, rng.getrandbits(16))) if rng.random() < 0.3 else None
        query = random_query(rng) if rng.random() < 0.9 else None
        arp = rng.choice([*ADDRS, rng.getrandbits(32)]) if rng.random() < 0.7 else None
        local = rng.choice([0, 0, ADDRS[2]])
        steps.append((write, query, arp, local))
    checked = run_cam(entries, steps)
    lookups = 100 if entries > 16 else 550
    assert checked["lookup"] > lookups and checked["hits"] > lookups // 4 and checked["arp"] > lookups * 2 // 3
    assert checked["writes_waited"] > 20


def test_write_past_the_table_changes_nothing():
    # The write index is 8 bits; a table of 16 uses its low 4.  A write at
    # 16 + k must not land in (or validate) entry k: the questions that would
    # hit the ignored entries must miss, and entry k keeps its old answer.
    entries = 16
    rng = random.Random(7)
    steps = [((i, VsCamEntry(valid=i % 2 == 0, vs_id=100 + i, protocol=6, virt_addr=ADDRS[0],
                             virt_port=1000 + i, flags=Flag.NONE, vlan_id=0)), None, None, 0)
             for i in range(entries)]
    for index in [16, 17, 21, 31, 33, 128, 255]:
        k = index % entries
        stray = VsCamEntry(valid=True, vs_id=0xBEEF, protocol=6, virt_addr=ADDRS[0],
                           virt_port=1000 + k, flags=Flag.NONE, vlan_id=0)
        steps.append(((index, stray), None, None, 0))
        steps.append((None, (ADDRS[0], 1000 + k, 6, 0), None, 0))  # hits entry k only if it was valid
        steps.append((None, (ADDRS[0], 1000 + rng.randrange(entries), 6, 0), None, 0))
    checked = run_cam(entries, steps)
    assert checked["lookup"] == 14 and 0 < checked["hits"] < 14


VIP, OTHER = ADDRS[0], ADDRS[1]


def test_precedence_cases():
    e = VsCamEntry
    table = [
        (9, e(True, 100, 6, 0, 80, WA | WP)),  # both wildcards
        (8, e(True, 101, 6, 0, 80, WA)),  # any address, port 80
        (7, e(True, 102, 6, VIP, 0, WP)),  # VIP, any port
        (6, e(True, 103, 6, VIP, 80)),  # exact
        (5, e(True, 104, 6, VIP, 80)),  # exact, lower index: wins the tie
        (4, e(True, 105, 17, OTHER, 53, Flag.NONE, 5)),  # VLAN 5 only
    ]
    q = [
        (VIP, 80, 6, 0),  # exact, lowest index -> 104
        (VIP, 81, 6, 0),  # WILDCARD_PORT -> 102
        (OTHER, 80, 6, 0),  # OTHER is known (entry 4, any protocol): no wildcard match
        (ADDRS[3], 80, 6, 0),  # unknown address, port 80 -> 101
        (ADDRS[3], 81, 6, 0),  # unknown address, other port -> both wildcards 100
        (ADDRS[2], 80, 6, 0),  # the DFS's own address (local_addr): no wildcard match
        (OTHER, 53, 17, 5), (OTHER, 53, 17, 0), (OTHER, 53, 6, 5),
    ]
    steps = [((i, ent), None, None, ADDRS[2]) for i, ent in table]
    steps += [(None, query, None, ADDRS[2]) for query in q]
    steps += [(None, None, a, 0) for a in ADDRS]
    assert run_cam(16, steps)["hits"] == 5
    model = VirtualServerTable(16)
    for i, ent in table:
        model.write(i, ent)
    got = [m.vs_id if (m := model.lookup(*query, local_addr=ADDRS[2])) else None for query in q]
    assert got == [104, 102, None, 101, 100, None, 105, None, None]
    model.write(6, e(True, 103, 6, VIP, 80, NOARP))
    model.write(5, e(False))
    model.write(7, e(True, 102, 6, VIP, 0, WP | NOARP))
    assert not model.answer_arp(VIP)
    assert model.answer_arp(OTHER)


@pytest.mark.parametrize(("value", "error", "text"), [
    (8, ValueError, "entries must be from 16 to 256, not 8"),
    (257, ValueError, "entries must be from 16 to 256, not 257"),
    ("16", TypeError, "entries must be an integer, not '16'"),
])
def test_constructor_checks(value, error, text):
    with pytest.raises(error, match=text):
        VirtualServerCAM(value)
