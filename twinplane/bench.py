"""``twinplane bench NAME``: run one benchmark and print its figures.

Each benchmark is a function returning a dict of figures that hold on any
machine (ratios, cycle counts) plus the raw numbers behind them; ``--json``
prints the dict as one JSON object, otherwise a readable table.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys

__all__ = ["BENCHMARKS", "configure", "run"]

# name -> (module, function, help); each function takes ``quick``.
BENCHMARKS: dict[str, tuple[str, str, str]] = {
    "mac": ("twinplane.bench", "bench_mac", "back-to-back minimum frames RX -> TX at line rate; MAC P&R"),
    "flowtable": ("twinplane.bench", "bench_flowtable", "flow table occupancy at first failure, lookups per clock"),
    "cs": ("twinplane.host.cs.bench", "run_bench", "flow setups per second through the CS over loopback UDP"),
    "failover": ("twinplane.host.cs.failover", "run_bench", "redundant CSs: kill -9 of the active, takeover time, lost flows"),
    "dfs": ("twinplane.sim.dfs.bench", "run_bench", "the DFS gateware: line rate both ports, latency, SYN flood"),
    "sim": ("twinplane.sim.engine.bench", "run_bench", "the compiled DFS simulation: cycles/s, packets/s, flow setup"),
}


def bench_mac(quick: bool = False) -> dict:
    from twinplane.sim.mac.bench import run_bench

    return run_bench(with_pnr=not quick, frames=100 if quick else 1000)


def bench_flowtable(quick: bool = False) -> dict:
    from twinplane.sim.flowtable.bench import run_bench

    return run_bench()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(BENCHMARKS), help="which benchmark")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="smaller run (for smoke tests)")


@contextlib.contextmanager
def _stdout_to_stderr():
    """Everything written to file descriptor 1 meanwhile -- simulators and
    toolchains run as subprocesses log there -- goes to stderr instead, so
    that ``--json`` leaves exactly one JSON object on stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def run(args: argparse.Namespace) -> int:
    module_name, function, _ = BENCHMARKS[args.name]
    bench = getattr(importlib.import_module(module_name), function)
    if args.json:
        with _stdout_to_stderr():
            figures = bench(quick=args.quick)
        print(json.dumps(figures, sort_keys=True))
        return 0
    figures = bench(quick=args.quick)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"twinplane bench {args.name}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    Console().print(table)
    return 0
