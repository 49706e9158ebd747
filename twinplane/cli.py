"""The ``twinplane`` command line.

Each subcommand lives in its own module with ``configure(parser)`` and
``run(args) -> int``.  Those modules import their heavy dependencies inside
``run`` so that building the parser (and ``twinplane --help``) stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["SUBCOMMANDS", "main"]

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("twinplane.host.demo", "run a complete simulated system (CS + DFS + clients and servers) and check it"),
    "bench": ("twinplane.bench", "run a benchmark and print its figures"),
    "docs": ("twinplane.protocol.docgen", "regenerate docs/protocol.md from the protocol declaration"),
    "build": ("twinplane.host.build", "build a board bitstream and its timing/resource report"),
    "program": ("twinplane.host.program", "load a built bitstream into a board with openFPGALoader"),
    "console": ("twinplane.host.console", "configure a board over its UART register console"),
    "sim": ("twinplane.sim.engine.cli", "run the DFS gateware compiled (CXXRTL) with its ports on TAP/pcap/UDP"),
    "cs": ("twinplane.host.cs.daemon", "run the Control Segment daemon in the foreground"),
    "ctl": ("twinplane.host.cs.ctl", "query or steer a running Control Segment over its control socket"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twinplane",
        description="twinplane: FPGA-offloaded L4 load balancer (DFS gateware + CS daemon).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module_name)
        module = importlib.import_module(module_name)
        module.configure(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(args._module)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
