"""The main job: `twinplane demo` runs a complete system over loopback UDP and
its checks pass; the command line lists every subcommand."""

import asyncio
import subprocess
import sys

from twinplane.cli import SUBCOMMANDS, main
from twinplane.host.demo import run_demo


def test_demo_checks_pass_and_flows_are_spread():
    summary = asyncio.run(run_demo(clients=30, concurrency=8, reset_share=0.2, seed=4, time_limit=40))
    failed = [(name, detail) for name, ok, detail in summary["checks"] if not ok]
    assert not failed, failed
    assert summary["client_states"].get("done", 0) + summary["client_states"].get("reset", 0) == 30
    assert sum(summary["served_by_node"].values()) == 30
    assert summary["dfs_counters"]["queries"] == 30  # one QUERY per connection, the rest in hardware


def test_demo_with_maglev_and_the_cli(capsys):
    assert main(["demo", "--clients", "12", "--method", "maglev", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"checks"' in out and "false" not in out.split('"checks"')[1].split("]]")[0]


def test_help_lists_the_subcommands():
    out = subprocess.run([sys.executable, "-m", "twinplane.cli", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for name in SUBCOMMANDS:
        assert name in out
    assert {"demo", "bench", "cs", "ctl", "build", "docs"} <= set(SUBCOMMANDS)
