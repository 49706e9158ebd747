"""The whole system with real Linux TCP through the simulated gateware
(issue #7): kernel HTTP clients and three kernel HTTP servers in network
namespaces, their TAPs wired to the ports of ``DFSCore`` compiled with CXXRTL,
and the real ``CsDaemon`` reaching its message port over real UDP
(sim/engine/netns.py, docs/simulation.md "End-to-end").

One world (one DFS, one CS) is set up for the module and the checks run on
it in order; the last one restarts the CS.  Every response body is checked
byte for byte by the client, and every TCP/IP checksum the gateware
rewrote by the receiving kernel (``InCsumErrors`` must stay 0).  Needs root
(TAP, namespaces): skipped with the reason otherwise.  The engine is the
default ``EngineConfig()`` of tests/test_sim_engine.py and tests/test_demo.py
(one compile for the suite).  The world lives on a ``LoopThread``, so
the CS keeps answering between the checks.

Known: with overlapping flow setups the miss path drops about one SYN in 16
(being fixed in hdl/miss); the kernel retransmits it after 1 s, so the
checks do not depend on no-drop but print the retransmissions.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from twinplane.sim.bridge.tap import need_root
from twinplane.sim.engine.netns import NODES, LoopThread

NODE_NAMES = tuple(name for name, _, _ in NODES)


@pytest.fixture(scope="module")
def harness():
    why = need_root()
    if why:
        pytest.skip(why)
    h = LoopThread()
    t0 = time.monotonic()
    h.start_world()
    print(f"\nworld up in {time.monotonic() - t0:.1f} s (engine compile or cache load included)")
    yield h
    h.close()


def test_demo_tap_cli(capsys):
    """``twinplane demo --tap`` on the same harness, before the module's world is up."""
    why = need_root()
    if why:
        pytest.skip(why)
    import json

    from twinplane.cli import main

    code = main(["demo", "--tap", "--clients", "3", "--concurrency", "2", "--json"])
    summary = json.loads(capsys.readouterr().out)
    failed = [(name, detail) for name, ok, detail in summary["checks"] if not ok]
    assert not failed and code == 0, failed
    assert summary["served_by_node"] == {name: 1 for name in NODE_NAMES}
    assert summary["forwarded"]["flows installed"] >= 3 and summary["engine"]["cycles_per_s"] > 0


def _failed(results: list[dict]) -> list:
    return [r for r in results if r["error"] is not None]


def test_round_robin_intact_and_flows_leave_both_tables(harness):
    world = harness.world
    site = world.sites[0]

    async def body():
        before, asked = await site.counters(), site.queried()
        snmp = (await site.ask(op="snmp"))["snmp"]
        t = time.monotonic()
        answer = await site.ask(op="get", n=6, concurrency=1, size=700, tag="rr", timeout=30)
        answer["delta"] = {k: v - snmp[k] for k, v in answer["snmp"].items()}
        took = time.monotonic() - t
        after = await site.counters()
        empty, count = await world.tables_empty(0, site, 40)
        return before, answer, took, after, empty, count, site.queried() - asked

    before, answer, took, after, empty, count, asked = harness.run(body())
    results = answer["results"]
    print(f"6 connections one at a time in {took:.1f} s; client TCP during them {answer['delta']}")
    assert not _failed(results), results
    per_node = Counter(r["node"] for r in results)
    # Round robin, one connection at a time: each node twice, in turn.
    assert per_node == {name: 2 for name in NODE_NAMES}, per_node
    # One QUERY per connection (asked again only if the engine was too slow for the miss timeout);
    # everything else went through the gateware alone.
    assert len(asked) == 6 and after["queries_sent"] - before["queries_sent"] >= 6
    assert after["flows_installed"] - before["flows_installed"] >= 6
    assert empty and count == 0, f"flows left: CS {world.cs_flows(0)}, DFS DUMP {count}"
    final = harness.run(site.counters())
    assert final["deletes_sent"] == final["flows_installed"]
    # No kernel saw a bad checksum on anything the gateware rewrote.
    assert answer["snmp"]["Tcp.InCsumErrors"] == 0 and answer["snmp"]["Ip.InHdrErrors"] == 0
    for name in NODE_NAMES:
        assert site.node_snmp(name)["Tcp.InCsumErrors"] == 0, name
    core = world.css[0].core
    assert core.counters["deletes_fin"] >= 6


def test_overlapping_connections(harness):
    world = harness.world
    site = world.sites[0]

    async def body():
        before = await site.counters()
        snmp = (await site.ask(op="snmp"))["snmp"]
        t = time.monotonic()
        answer = await site.ask(op="get", n=8, concurrency=4, size=300, tag="burst", timeout=40)
        answer["delta"] = {k: v - snmp[k] for k, v in answer["snmp"].items()}
        took = time.monotonic() - t
        empty, count = await world.tables_empty(0, site, 40)
        return before, answer, took, await site.counters(), empty, count

    before, answer, took, after, empty, count = harness.run(body())
    dropped = after["miss_dropped_no_slot"] - before["miss_dropped_no_slot"]
    print(f"8 connections, 4 at once, in {took:.1f} s; SYNs dropped by the miss path: {dropped}; "
          f"client TCP during them {answer['delta']}")
    assert not _failed(answer["results"]), answer["results"]
    assert set(Counter(r["node"] for r in answer["results"])) == set(NODE_NAMES)
    assert empty and count == 0


def test_idle_flow_is_reaped(harness):
    world = harness.world
    site = world.sites[0]
    from twinplane.sim.engine.netns import IDLE_VPORT

    async def body():
        reaps = len(site.messages("SsmbReap", "to_dfs"))
        opened = await site.ask(op="open", n=1, port=IDLE_VPORT, timeout=30)
        installed = world.cs_flows(0, site)
        t = time.monotonic()
        # The virtual server on IDLE_VPORT reaps after 3 s idle: the CS sends REAP, the DFS deletes.
        gone = await world.wait_for(lambda: world.cs_flows(0, site) == 0, 40)
        took = time.monotonic() - t
        empty, count = await world.tables_empty(0, site, 20)
        await site.ask(op="abort")
        return opened, installed, gone, took, empty, count, len(site.messages("SsmbReap", "to_dfs")) - reaps

    opened, installed, gone, took, empty, count, reaps = harness.run(body())
    print(f"idle flow reaped after {took:.1f} s with {reaps} REAP(s)")
    assert opened["nodes"][0] in NODE_NAMES, opened
    assert installed == 1
    assert gone and empty and count == 0
    assert reaps >= 1
    reasons = [m.stats.reason for m in site.messages("SsmbDelete", "to_cs")]
    from twinplane.protocol.codes import DeleteReason

    assert DeleteReason.REAP in reasons or DeleteReason.IDLE in reasons, reasons


def test_node_taken_down_gets_no_new_flows(harness):
    world = harness.world
    site = world.sites[0]
    core = world.css[0].core
    node_b = next(n for n in core.nodes.values() if str(n.address) == "10.1.0.2")

    async def body():
        site.stop_server("node-b")
        core.set_health(node_b, False)  # what the health monitor decides when the node stops answering
        flows_before = node_b.total_flows
        answer = await site.ask(op="get", n=4, concurrency=2, size=200, tag="down", timeout=30)
        await site.start_server("node-b")
        core.set_health(node_b, True)
        empty, count = await world.tables_empty(0, site, 40)
        return flows_before, answer, empty, count

    flows_before, answer, empty, count = harness.run(body())
    assert not _failed(answer["results"]), answer["results"]
    assert {r["node"] for r in answer["results"]} == {"node-a", "node-c"}
    assert node_b.total_flows == flows_before
    assert empty and count == 0


def test_reset_then_new_connections(harness):
    world = harness.world
    site = world.sites[0]
    daemon = world.css[0]

    async def body():
        opened = await site.ask(op="open", n=2, timeout=30)
        held = world.cs_flows(0, site)
        resets = len(site.messages("SsmbReset", "to_cs"))
        daemon.control({"cmd": "reset", "dfs": site.name})
        answered = await world.wait_for(lambda: len(site.messages("SsmbReset", "to_cs")) > resets, 30)
        dumped = await world.dump(0, site)
        cs_left = world.cs_flows(0, site)
        # The held connections lost their flows: their segments are no SYN, the DFS drops them.
        broken = await site.ask(op="ping", timeout=3)
        await site.ask(op="abort")
        again = await site.ask(op="get", n=3, concurrency=1, size=200, tag="after-reset", timeout=30)
        empty, count = await world.tables_empty(0, site, 40)
        return opened, held, answered, dumped, cs_left, broken, again, empty, count

    opened, held, answered, dumped, cs_left, broken, again, empty, count = harness.run(body())
    assert all(n in NODE_NAMES for n in opened["nodes"]) and held == 2, opened
    assert answered, "the DFS did not answer the RESET"
    assert dumped == 0 and cs_left == 0
    assert all(n not in NODE_NAMES for n in broken["nodes"]), broken
    assert not _failed(again["results"]), again["results"]
    assert empty and count == 0


def test_dfs_reboot_established_connections_survive(harness):
    """The board restarts (a fresh engine: empty tables, a new nonce): the CS
    notices at its next HELLO, re-associates and re-installs the flows it
    holds (NEWFLOW); the kernel retransmits meanwhile."""
    world = harness.world
    site = world.sites[0]
    core = world.css[0].core

    async def body():
        opened = await site.ask(op="open", n=3, timeout=30)
        repopulated = core.counters["flows_repopulated"]
        t = time.monotonic()
        await site.reboot()
        again = await world.wait_for(lambda: core.counters["flows_repopulated"] >= repopulated + 3, 60)
        took = time.monotonic() - t
        ping = await site.ask(op="ping", timeout=40)
        dumped = await world.dump(0, site)
        await site.ask(op="close")
        empty, count = await world.tables_empty(0, site, 40)
        return opened, again, took, ping, dumped, empty, count

    opened, again, took, ping, dumped, empty, count = harness.run(body())
    print(f"flows re-installed {took:.1f} s after the reboot")
    assert all(n in NODE_NAMES for n in opened["nodes"]), opened
    assert again
    assert ping["nodes"] == opened["nodes"], (opened, ping)
    assert dumped == 3
    assert empty and count == 0


def test_cs_restart_established_connections_continue(harness):
    """The CS stops with connections open: they keep working through the
    DFS alone; a new CS process (a new address, the next epoch) associates,
    adopts the open flows from the DFS's DUMP, serves new connections, and
    hears the DELETEs when the old connections close."""
    world = harness.world
    site = world.sites[0]

    async def body():
        opened = await site.ask(op="open", n=3, timeout=30)
        queries = (await site.counters())["queries_sent"]
        await world.stop_cs(0)
        alone = await site.ask(op="ping", size=500, timeout=30)
        alone_queries = (await site.counters())["queries_sent"] - queries
        await world.start_cs(0, epoch=1)
        up = await world.wait_for(lambda: world.associated(0), 90)
        adopted = world.css[0].core.counters["flows_adopted"]
        after = await site.ask(op="ping", timeout=30)
        fresh = await site.ask(op="get", n=3, concurrency=1, size=200, tag="new-cs", timeout=30)
        await site.ask(op="close")
        empty, count = await world.tables_empty(0, site, 40)
        return opened, alone, alone_queries, up, adopted, after, fresh, empty, count

    opened, alone, alone_queries, up, adopted, after, fresh, empty, count = harness.run(body())
    assert all(n in NODE_NAMES for n in opened["nodes"]), opened
    assert alone["nodes"] == opened["nodes"] and alone_queries == 0, alone
    assert up and adopted == 3
    assert after["nodes"] == opened["nodes"]
    assert not _failed(fresh["results"]), fresh["results"]
    assert empty and count == 0
