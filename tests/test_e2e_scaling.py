"""The patent's independent scaling with real Linux TCP through the simulated
gateware (sim/engine/netns.py): two DFSs (two compiled engines, each with a
client namespace and three node namespaces) served by one CS daemon, then a
second CS joins as a second *active* one and the two share every DFS's
QUERYs (docs/redundancy.md, active/active: the message port sends a QUERY
to ``active[crc32(flow key) % 2]``).

One world for the module, the checks in order.  Needs root (TAP,
namespaces): skipped with the reason otherwise.  Same ``EngineConfig()`` as
the other engine tests (one compile for the suite).
"""

from __future__ import annotations

import asyncio
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
    h.start_world(sites=2)
    yield h
    h.close()


async def _traffic(world, n: int, concurrency: int, tag: str) -> list[dict]:
    answers = await asyncio.gather(*(site.ask(op="get", n=n, concurrency=concurrency, size=300,
                                              tag=f"{tag}-{site.name}", timeout=40) for site in world.sites))
    return [a["results"] for a in answers]


def test_one_cs_serves_two_dfss(harness):
    world = harness.world
    core = world.css[0].core

    async def body():
        before = [await site.counters() for site in world.sites]
        asked = [site.queried() for site in world.sites]
        t = time.monotonic()
        results = await _traffic(world, 3, 1, "two-dfs")
        took = time.monotonic() - t
        after = [await site.counters() for site in world.sites]
        emptied = [await world.tables_empty(0, site, 40) for site in world.sites]
        asked = [site.queried() - a for site, a in zip(world.sites, asked, strict=True)]
        return before, results, took, after, emptied, asked

    before, results, took, after, emptied, asked = harness.run(body())
    print(f"3 connections through each of 2 DFSs at once in {took:.1f} s")
    assert sorted(core.peers) == ["dfs0", "dfs1"]
    for site_results, b, a, flows in zip(results, before, after, asked, strict=True):
        assert not [r for r in site_results if r["error"]], site_results
        # Each DFS asked the CS about its 3 connections (a QUERY asked again after a miss
        # timeout, when the engine is slow, is the same flow).
        assert len(flows) == 3 and a["flows_installed"] - b["flows_installed"] >= 3, (flows, b, a)
    # One pool behind both DFSs, one round robin: 6 connections, 2 per node.
    assert Counter(r["node"] for rs in results for r in rs) == {name: 2 for name in NODE_NAMES}
    assert all(ok and count == 0 for ok, count in emptied), emptied


def test_two_active_css_share_the_queries(harness):
    world = harness.world

    async def body():
        await world.start_cs(1, cs_id=2)
        up = await world.wait_for(lambda: world.associated(1), 90)
        asked = [[site.gateways[i].queried() for site in world.sites] for i in (0, 1)]
        t = time.monotonic()
        results = await _traffic(world, 6, 2, "active-active")
        took = time.monotonic() - t
        emptied = [await world.tables_empty(i, site, 40) for i in (0, 1) for site in world.sites]
        # The flows each CS was asked about during the traffic, per DFS.
        owned = [[world.sites[s].gateways[i].queried() - asked[i][s] for s in (0, 1)] for i in (0, 1)]
        return up, owned, results, took, emptied

    up, owned, results, took, emptied = harness.run(body())
    shares = [sum(len(flows) for flows in owned[i]) for i in (0, 1)]
    print(f"12 connections (6 per DFS, 2 at once) in {took:.1f} s; flows asked of each CS {shares}; "
          f"replicas {[world.css[i].core.counters['replicas'] for i in (0, 1)]}")
    assert up, "the second CS did not associate"
    assert all(world.css[i].core.role.name == "ACTIVE" for i in (0, 1))
    for site_results in results:
        assert not [r for r in site_results if r["error"]], site_results
    # Every connection's flow was asked of exactly one of the two (the split is by the flow
    # key), and both got some (all 12 to one CS: probability 2 * 2**-12 with random ports).
    for s in (0, 1):
        assert not owned[0][s] & owned[1][s] and len(owned[0][s] | owned[1][s]) == 6, owned
    assert min(shares) > 0, shares
    assert all(ok and count == 0 for ok, count in emptied), emptied
