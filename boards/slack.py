"""Which routed endpoints miss a clock target, block by block.

nextpnr names one worst path per clock, and each fix so far moved that path
elsewhere in the next placement; the number of endpoints past the target is
the measure that does not move by chance.  ``twinplane build`` keeps
nextpnr's JSON report with its per-endpoint timing
(``nextpnr-report.json``, ``--detailed-timing-report``): for every
register, RAM or pin input, the arrival time of its latest path.  This
counts those past ``1000 / mhz`` ns (with the input's setup time) and groups them by the block that holds
the endpoint (its cell name's first ``scopes`` scopes, as
:mod:`twinplane.boards.depth` groups registers).

``--registers`` lists them by register (all its bits) and input (``CE``,
``DI``, ``LSR``); ``--nets`` by the net that feeds them, with its fanout:
a wide register late on ``CE`` behind one net of fanout 32 wants its
enable in a flop, not fewer logic levels.

``python -m twinplane.boards.slack build/colorlight-5a-75b --mhz 137.5 --nets``
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REPORT_NAME", "SETUP_NS", "Endpoint", "endpoints", "late", "main"]

#: nextpnr's JSON report in a build directory (host/build.py asks for it).
REPORT_NAME = "nextpnr-report.json"
# nextpnr names a packed cell after the net it drives ("x_TRELLIS_FF_Q"): the register is "x".
_PACKED = re.compile(r"_(TRELLIS_FF|LUT4|CCU2C|PFUMX|L6MUX21|TRELLIS_RAMW|TRELLIS_DPR16X4|DP16KD)_.*$")
#: Setup time of an input, ns, where it is not 0: nextpnr's arrival does not
#: include it.  From its critical-path reports on the 25F-6 (a flop's DI and
#: M 0.00, LSR 0.42; a block RAM's clock enable CEB 0.34; a flop's CE is not
#: in any report so far, taken as 0).
SETUP_NS = {"LSR": 0.42, "CEB": 0.34}
_BIT = re.compile(r"\[\d+\]")
# The clock of an event such as "posedge $glbnet$mac0.mac.rx0_clk".
_CLOCK = re.compile(r"^(?:posedge|negedge)\s+(?:\$glbnet\$)?(.*)$")


@dataclass(frozen=True)
class Endpoint:
    """A timing endpoint: ``cell``'s input ``port``, reached ``arrival_ns``
    after the ``launch`` clock's edge, captured by ``capture``."""

    cell: str
    port: str
    launch: str
    capture: str
    arrival_ns: float
    #: The net into the input and how many inputs it feeds: a wide
    #: register's enable or select with a large fanout is a long net.
    net: str = ""
    fanout: int = 0

    @property
    def required_ns(self) -> float:
        """The arrival plus the input's setup time: what must fit a period."""
        return self.arrival_ns + SETUP_NS.get(self.port, 0.0)

    @property
    def register(self) -> str:
        return _PACKED.sub("", self.cell)

    @property
    def bus(self) -> str:
        """The register without its bit index: the bits of one wide register
        are one row of the listing."""
        return _BIT.sub("", self.register)

    def block(self, scopes: int) -> str:
        return ".".join(self.register.split(".")[:scopes])


def _clock(event: str) -> str:
    match = _CLOCK.match(event)
    return match.group(1) if match else event


def endpoints(report: dict) -> list[Endpoint]:
    """Every endpoint of nextpnr's ``report`` (its ``detailed_net_timings``)."""
    if "detailed_net_timings" not in report:
        raise ValueError("the report has no detailed_net_timings: nextpnr ran without --detailed-timing-report")
    found = []
    for net in report["detailed_net_timings"]:
        launch = _clock(net.get("event", ""))
        for ep in net["endpoints"]:
            delay = ep["delay"]
            found.append(Endpoint(ep["cell"], ep["port"], launch, _clock(ep.get("event", "")),
                                  float(max(delay) if isinstance(delay, list) else delay),
                                  net.get("net", ""), len(net["endpoints"])))
    return found


def late(eps: list[Endpoint], mhz: float, *, same_clock: bool = True) -> list[Endpoint]:
    """The endpoints whose arrival plus setup time is past one period at
    ``mhz``, latest first (with ``same_clock``, only paths launched and
    captured by one clock: the crossings are synchronisers, not timed at
    full rate)."""
    period = 1000.0 / mhz
    return sorted((e for e in eps if e.required_ns > period and (not same_clock or e.launch == e.capture)),
                  key=lambda e: -e.required_ns)


def _listing(title: str, past: list[Endpoint], key, suffix) -> None:
    """``past`` grouped by ``key``: the count (with ``suffix(group)``) and the latest arrival, most first."""
    groups: dict[str, list[Endpoint]] = defaultdict(list)
    for e in past:
        groups[key(e)].append(e)
    print(f"by {title}:")
    for name, group in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        count = f"{len(group)}{suffix(group) if suffix else ''}"
        print(f"  {count:>9} {group[0].required_ns:6.2f}ns  {name}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m twinplane.boards.slack", description=__doc__.split("\n\n")[0])
    p.add_argument("build", help=f"a build directory (with {REPORT_NAME}) or the report itself")
    p.add_argument("--mhz", type=float, default=137.5, help="target clock (default 137.5: 125 MHz + 10 %%)")
    p.add_argument("--scopes", type=int, default=3, help="name scopes that make a block (default 3)")
    p.add_argument("--top", type=int, default=20, help="latest endpoints listed (default 20)")
    p.add_argument("--registers", action="store_true",
                   help="also list late inputs by register (all bits) and input port (CE, DI, LSR, ...)")
    p.add_argument("--nets", action="store_true",
                   help="also list late inputs by the net that feeds them, with its fanout")
    args = p.parse_args(argv)
    path = Path(args.build)
    if path.is_dir():
        path = path / REPORT_NAME
    eps = endpoints(json.loads(path.read_text()))
    past = late(eps, args.mhz)
    timed = sum(1 for e in eps if e.launch == e.capture)
    print(f"{path}: {len(past)} of {timed} endpoints past {1000 / args.mhz:.2f} ns ({args.mhz:g} MHz)")
    by_clock = Counter(e.capture for e in past)
    for clock, n in by_clock.most_common():
        print(f"  clock {clock}: {n}")
    blocks: dict[str, list[Endpoint]] = defaultdict(list)
    for e in past:
        blocks[e.block(args.scopes)].append(e)
    print(f"{'block':40} {'late':>6} {'registers':>9} {'latest':>8}")
    for block, group in sorted(blocks.items(), key=lambda kv: -len(kv[1])):
        registers = len({e.register for e in group})
        print(f"{block:40} {len(group):6d} {registers:9d} {group[0].required_ns:7.2f}ns")
    if args.registers:
        _listing("register.input", past, lambda e: f"{e.bus}.{e.port}", "")
    if args.nets:
        _listing("net (late of fanout)", past, lambda e: e.net, lambda group: f"/{group[0].fanout}")
    print(f"latest {min(args.top, len(past))}:")
    for e in past[: args.top]:
        print(f"  {e.required_ns:6.2f} ns  {e.register}.{e.port}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
