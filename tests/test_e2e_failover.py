"""Failover with real Linux TCP through the simulated gateware: the scenario
of tests/test_redundancy_netns.py (kill of the active CS, the standby takes
over) with ``DFSCore`` compiled with CXXRTL instead of the reference model
(sim/engine/netns.py, docs/redundancy.md).

An active and a standby ``CsDaemon`` (HELLO every 4 s) serve one DFS; 3
keep-alive HTTP connections are open when the active one stops answering.
The gateware forgets it after 3 of its HELLO intervals, the standby hears
that no CS is active, takes over at the next epoch (re-authentication,
ADD_VS, DUMP: it adopts the open flows) and serves the new connections;
the open ones never needed a CS, and a connection opened right after the
stop is answered once the kernel's SYN retry meets the new active CS.  Needs root: skipped with the reason
otherwise.  Same ``EngineConfig()`` as the other engine tests.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from twinplane.protocol.codes import Role
from twinplane.sim.bridge.tap import need_root
from twinplane.sim.engine.netns import NODES, LoopThread

NODE_NAMES = tuple(name for name, _, _ in NODES)

LATE_CLIENT = """
import urllib.request
with urllib.request.urlopen("http://10.0.0.100/late?size=100", timeout=80) as answer:
    print(answer.read().split(b"\\n")[0].decode())
"""


@pytest.fixture(scope="module")
def harness():
    why = need_root()
    if why:
        pytest.skip(why)
    h = LoopThread()
    h.start_world(css=({"epoch": 1}, {"epoch": 1, "role": "standby"}))
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
        asked = site.gateways[1].queried()
        # A new connection while no CS answers: the kernel retries its SYN (1, 3, 7, 15, 31 s)
        # until the standby has taken over.
        late = site.topo.exec(site.client_ns, sys.executable, "-c", LATE_CLIENT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
        during = await site.ask(op="ping", timeout=30)
        took_over = await world.wait_for(lambda: standby.role is Role.ACTIVE and world.associated(1), 90)
        takeover_s = time.monotonic() - t
        after = await site.ask(op="ping", timeout=30)
        fresh = await site.ask(op="get", n=3, concurrency=1, size=200, tag="after-takeover", timeout=40)
        adopted = standby.counters["flows_adopted"]
        late_out, late_err = await asyncio.to_thread(late.communicate, timeout=90)
        late_s = time.monotonic() - t
        new_flows = site.gateways[1].queried() - asked
        await site.ask(op="close")
        empty, count = await world.tables_empty(1, site, 40)
        late_answer = (late.returncode, late_out.decode().strip(), late_err.decode()[-300:], late_s)
        return opened, mirrored, during, took_over, takeover_s, after, fresh, new_flows, adopted, empty, count, \
            late_answer

    (opened, mirrored, during, took_over, takeover_s, after, fresh, new_flows, adopted, empty,
     count, late_answer) = harness.run(body())
    print(f"takeover {takeover_s:.1f} s after the active CS stopped (epoch {standby.epoch}); the standby "
          f"mirrored {mirrored} flows from REPLY copies, adopted {adopted} from the DUMP")
    assert all(n in NODE_NAMES for n in opened["nodes"]), opened
    # The open connections need no CS: answered by the same nodes before and after the takeover.
    assert during["nodes"] == opened["nodes"] and after["nodes"] == opened["nodes"], (opened, during, after)
    assert took_over and standby.epoch == 2
    assert mirrored + adopted >= 3, (mirrored, adopted)
    assert not [r for r in fresh["results"] if r["error"]], fresh["results"]
    assert len(new_flows) == 4  # the 3 fresh ones and the late one, asked of the new active CS
    assert empty and count == 0
    code, node, err, late_s = late_answer
    print(f"a connection opened right after the stop was answered by {node} after {late_s:.1f} s")
    assert code == 0 and node in NODE_NAMES, (code, node, err)
