"""Failover with real Linux TCP through the simulated gateware: the scenario
of tests/test_redundancy_netns.py (kill of the active CS, the standby takes
over) with ``DFSCore`` compiled with CXXRTL instead of the reference model
(sim/engine/netns.py, docs/redundancy.md).

An active and a standby ``CsDaemon`` (HELLO every 4 s) serve one DFS; 3
keep-alive HTTP connections are open when the active one stops answering.
The gateware forgets it after 3 of its HELLO intervals, the standby hears
that no CS is active, takes over at the next epoch (re-authentication,
ADD_VS, DUMP: it adopts the open flows) and serves the new connections;
the open ones never needed a CS.  Needs root: skipped with the reason
otherwise.  Same ``EngineConfig()`` as the other engine tests.
"""

from __future__ import annotations

import time

import pytest

from twinplane.protocol.codes import Role
from twinplane.sim.bridge.tap import need_root
from twinplane.sim.engine.netns import NODES, LoopThread

NODE_NAMES = tuple(name for name, _, _ in NODES)


@pytest.fixture(scope="module")
def harness():
    why = need_root()
    if why:
        pytest.skip(why)
    from twinplane.sim.engine import EngineConfig
    from twinplane.sim.engine.netns import World

    h = LoopThread()

    async def up():
        world = await World(EngineConfig()).start()
        h.world = world
        await world.start_cs(0, epoch=1)
        assert await world.wait_for(lambda: world.associated(0), 90), "the active CS did not associate"
        await world.start_cs(1, epoch=1, role="standby")
        assert await world.wait_for(lambda: world.associated(1), 90), "the standby CS did not associate"
        return world

    h.run(up())
    yield h
    h.close()


def test_standby_takes_over_and_open_connections_continue(harness):
    world = harness.world
    site = world.sites[0]
    standby = world.css[1].core

    async def body():
        opened = await site.ask(op="open", n=3, timeout=30)
        mirrored = world.cs_flows(1, site)
        t = time.monotonic()
        await world.stop_cs(0)  # its sockets close: the DFS hears nothing more from it
        during = await site.ask(op="ping", timeout=30)
        took_over = await world.wait_for(lambda: standby.role is Role.ACTIVE and world.associated(1), 90)
        takeover_s = time.monotonic() - t
        after = await site.ask(op="ping", timeout=30)
        asked = site.gateways[1].queried()
        fresh = await site.ask(op="get", n=3, concurrency=1, size=200, tag="after-takeover", timeout=40)
        new_flows = site.gateways[1].queried() - asked
        adopted = standby.counters["flows_adopted"]
        await site.ask(op="close")
        empty, count = await world.tables_empty(1, site, 40)
        return opened, mirrored, during, took_over, takeover_s, after, fresh, new_flows, adopted, empty, count

    (opened, mirrored, during, took_over, takeover_s, after, fresh, new_flows, adopted, empty,
     count) = harness.run(body())
    print(f"takeover {takeover_s:.1f} s after the active CS stopped (epoch {standby.epoch}); the standby "
          f"mirrored {mirrored} flows from REPLY copies, adopted {adopted} from the DUMP")
    assert all(n in NODE_NAMES for n in opened["nodes"]), opened
    # The open connections need no CS: answered by the same nodes before and after the takeover.
    assert during["nodes"] == opened["nodes"] and after["nodes"] == opened["nodes"], (opened, during, after)
    assert took_over and standby.epoch == 2
    assert mirrored + adopted >= 3, (mirrored, adopted)
    assert not [r for r in fresh["results"] if r["error"]], fresh["results"]
    assert len(new_flows) == 3  # asked of the new active CS
    assert empty and count == 0
