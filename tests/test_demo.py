"""The main job: ``twinplane demo`` runs the real CS daemon and the DFS
gateware compiled with CXXRTL (sim/engine/) over loopback UDP, with synthetic
clients and servers, and exits 0 only if its checks pass; ``--model`` runs
the reference model instead; the command line lists every subcommand.

The gateware test uses the default :class:`EngineConfig`, the one
tests/test_sim_engine.py builds, so the suite compiles the engine once (the
cache in sim_build/engine); after that the gateware run takes about a
minute of wall time on a loaded machine."""

import asyncio
import json
import subprocess
import sys

from twinplane.cli import SUBCOMMANDS, main
from twinplane.host.demo import run_demo


def test_gateware_demo_checks_pass_and_exit_code(capsys):
    # The CLI as the README runs it, with a fixed traffic size so the test does not depend on the
    # machine's load: 16 connections (some resetting), 4 at once (the default).  Overlapping setups
    # matter: with a miss timeout of one declared second (2,000 clocks) the engine gave up on the
    # later of two pending flows and lost its SYN (3 of 16 at this seed).
    code = main(["demo", "--clients", "16", "--concurrency", "4", "--reset-share", "0.25", "--seed", "2",
                 "--time-limit", "150", "--json"])
    summary = json.loads(capsys.readouterr().out)
    failed = [(name, detail) for name, ok, detail in summary["checks"] if not ok]
    assert not failed, failed
    assert code == 0
    assert summary["dfs"].startswith("gateware")
    states = summary["client_states"]
    assert states.get("done", 0) + states.get("reset", 0) == 16 and states.get("reset", 0) >= 1
    assert sum(summary["served_by_node"].values()) == 16
    # One QUERY per connection; the other segments were forwarded by the gateware alone.
    assert summary["messages_to_cs"]["SsmbQuery"] == 16 == summary["dfs_counters"]["queries_sent"]
    assert summary["forwarded"]["forwarded in hardware without the CS"] >= 5 * 16
    assert summary["query_reply_cycles"]["count"] == 16 and summary["query_reply_cycles"]["median"] > 0
    assert summary["flow_setup_cycles"]["count"] == 16
    assert summary["flow_setup_cycles"]["min"] > summary["query_reply_cycles"]["min"]
    assert summary["engine"]["cycles_per_s"] > 0
    assert not any(summary["drops"].values())
    assert summary["dfs_counters"]["miss_timeouts"] == 0 == summary["dfs_counters"]["miss_frames_dropped"]


def test_model_demo_checks_pass_and_flows_are_spread():
    summary = asyncio.run(run_demo(clients=30, concurrency=8, reset_share=0.2, seed=4, time_limit=40))
    failed = [(name, detail) for name, ok, detail in summary["checks"] if not ok]
    assert not failed, failed
    assert summary["client_states"].get("done", 0) + summary["client_states"].get("reset", 0) == 30
    assert sum(summary["served_by_node"].values()) == 30
    assert summary["dfs_counters"]["queries"] == 30  # one QUERY per connection, the rest in hardware


def test_model_demo_with_maglev_and_the_cli(capsys):
    assert main(["demo", "--model", "--clients", "12", "--method", "maglev", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert all(ok for _, ok, _ in summary["checks"])


def test_demo_exits_1_when_a_check_fails(capsys):
    # 400 connections cannot finish in a tenth of a second: the answer checks fail, so does the exit code.
    assert main(["demo", "--model", "--clients", "400", "--time-limit", "0.1", "--json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    failed = [name for name, ok, _ in summary["checks"] if not ok]
    assert "every closing client got its answer from the virtual server's address" in failed


def test_help_lists_the_subcommands():
    out = subprocess.run([sys.executable, "-m", "twinplane.cli", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for name in SUBCOMMANDS:
        assert name in out
    assert {"demo", "bench", "cs", "ctl", "build", "docs"} <= set(SUBCOMMANDS)
