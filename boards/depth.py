"""Logic depth of every register-to-register path of a block, before
placement: which paths will be long once routed, and whether they cross
from one block of the DFS into another.

A routed run of the whole DFS takes most of an hour here and nextpnr names
one worst path per clock; Yosys's mapped netlist (``synth_ecp5 -json``,
flattened as the board builds it) has every path.  On a speed-6 ECP5 a LUT
level with its net costs ~0.5-1 ns and a net fanning out to hundreds of
loads 3 ns or more, so levels and fanout rank the paths the router will
find, and the blocks named by the registers at both ends tell whether a
registered boundary between blocks would cut them.

Counted: a LUT4 is a level; a CCU2C is a level from its LUT inputs and
nothing along its carry chain; PFUMX/L6MUX21 (the slice's wide-function
muxes) add nothing to the count (nextpnr: ~0.2 ns, no routing).  Paths
start at flip-flop outputs, RAM outputs (a DP16KD read without its output
register is ``EBR_LEVELS`` levels: 5.8 ns clock-to-out) and the top's
inputs, and end at any other cell's input.

``python -m twinplane.boards.depth dfs --in-dfs`` synthesises ``dfs`` as
:mod:`twinplane.boards.block_pnr` does and prints the deepest paths and the
deepest path between each pair of blocks.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Path_", "block_of", "logic_paths", "main"]

# Input -> output arcs that are one LUT level (the slice's muxes are not).
_LEVEL = {"LUT4": 1, "CCU2C": 1, "PFUMX": 0, "L6MUX21": 0, "TRELLIS_DPR16X4": 1}
# The DPR16X4's write side (WAD/DI/WRE) is a register endpoint, its read (RAD -> DO) a LUT.
_COMB_INPUTS = {
    "LUT4": ("A", "B", "C", "D"),
    "CCU2C": ("A0", "B0", "C0", "D0", "A1", "B1", "C1", "D1", "CIN"),
    "PFUMX": ("ALUT", "BLUT", "C0"),
    "L6MUX21": ("D0", "D1", "SD"),
    "TRELLIS_DPR16X4": ("RAD",),
}
# Yosys names a mapped cell's nets after the register they feed ("x_TRELLIS_FF_Q_DI_LUT4_Z_D"): not sources.
_DERIVED = re.compile(r"_(LUT4|TRELLIS_FF|PFUMX|L6MUX21|CCU2C|TRELLIS_DPR16X4|DP16KD)_")
#: A DP16KD read without its output register, in LUT levels (5.8 ns).
EBR_LEVELS = 6


@dataclass(frozen=True)
class Path_:
    """One register-to-register path: ``levels`` LUT levels, the largest
    fanout of a net on it, and the named nets from ``start`` to ``end``."""

    levels: int
    max_fanout: int
    start: str
    end: str
    end_port: str
    through: tuple[str, ...]

    @property
    def cost(self) -> float:
        # A ranking, not a delay: a level is one, a net to n loads adds log2(n)/3.
        return self.levels + math.log2(max(self.max_fanout, 1)) / 3


def block_of(name: str, depth: int = 2) -> str:
    """The block a flattened name belongs to: its first ``depth`` scopes
    (``block.msgport.session.state`` -> ``block.msgport``)."""
    parts = name.split(".")
    return ".".join(parts[:min(depth, len(parts) - 1)]) or "(top)"


def _bit_names(module: dict) -> dict[int, str]:
    """A readable name per net bit: its shortest public name, with the bit."""
    best: dict[int, tuple[tuple[bool, int], str]] = {}
    for name, net in module["netnames"].items():
        if net.get("hide_name", 0) or name.startswith("$"):
            continue
        for i, bit in enumerate(net["bits"]):
            if not isinstance(bit, int):
                continue
            label = name if len(net["bits"]) == 1 else f"{name}[{i}]"
            # A source name before one Yosys derived from a mapped cell's.
            rank = (bool(_DERIVED.search(name)), len(label))
            if bit not in best or rank < best[bit][0]:
                best[bit] = (rank, label)
    return {bit: label for bit, (_, label) in best.items()}


def logic_paths(netlist: dict, top: str = "bench") -> list[Path_]:
    """Every endpoint's deepest path in Yosys JSON ``netlist`` (module ``top``),
    deepest first."""
    module = netlist["modules"][top]
    names = _bit_names(module)
    fanout: dict[int, int] = {}
    driver: dict[int, tuple[str, str]] = {}  # bit -> (cell, output port)
    cells = module["cells"]
    for cname, cell in cells.items():
        dirs = cell.get("port_directions", {})
        for port, bits in cell["connections"].items():
            for bit in bits:
                if not isinstance(bit, int):
                    continue
                if dirs.get(port) == "output":
                    driver[bit] = (cname, port)
                else:
                    fanout[bit] = fanout.get(bit, 0) + 1

    # arrival[bit] = (levels, the largest fanout on the way, the bit it came from)
    arrival: dict[int, tuple[int, int, int | None]] = {}

    def start_levels(cell: dict) -> int:
        if cell["type"] in ("DP16KD", "PDPW16KD"):
            regmode = str(cell["parameters"].get("REGMODE_B", cell["parameters"].get("REGMODE", "NOREG")))
            return 1 if "OUTREG" in regmode else EBR_LEVELS
        return 0

    def arrive(bit: int) -> tuple[int, int, int | None]:
        # Iterative depth-first evaluation (paths run thousands of cells deep
        # along carry chains; Python's recursion would not).
        stack = [bit]
        while stack:
            b = stack[-1]
            if b in arrival:
                stack.pop()
                continue
            if b not in driver:  # a top-level input or a constant
                arrival[b] = (0, fanout.get(b, 0), None)
                stack.pop()
                continue
            cname, _ = driver[b]
            cell = cells[cname]
            kind = cell["type"]
            if kind not in _COMB_INPUTS:
                arrival[b] = (start_levels(cell), fanout.get(b, 0), None)
                stack.pop()
                continue
            ins = [x for p in _COMB_INPUTS[kind] for x in cell["connections"].get(p, []) if isinstance(x, int)]
            pending = [x for x in ins if x not in arrival]
            if pending:
                stack.extend(pending)
                continue
            best = (-1, 0, None)
            for x in ins:
                lv, fo, _ = arrival[x]
                # Along a carry chain the level does not grow.
                step = 0 if (kind == "CCU2C" and x in cell["connections"].get("CIN", [])) else _LEVEL[kind]
                cand = (lv + step, max(fo, fanout.get(b, 0)), x)
                if (cand[0], cand[1]) > (best[0], best[1]):
                    best = cand
            arrival[b] = best if best[0] >= 0 else (0, fanout.get(b, 0), None)
            stack.pop()
        return arrival[bit]

    paths = []
    for cname, cell in cells.items():
        dirs = cell.get("port_directions", {})
        comb_ins = _COMB_INPUTS.get(cell["type"], ())
        for port, bits in cell["connections"].items():
            if dirs.get(port) != "input" or port in comb_ins or port in ("CLK", "WCK", "CLKA", "CLKB", "CLKR", "CLKW"):
                continue
            for bit in bits:
                if not isinstance(bit, int):
                    continue
                levels, fo, prev = arrive(bit)
                chain = [bit]
                while prev is not None:
                    chain.append(prev)
                    prev = arrival[prev][2]
                chain.reverse()
                named = [names[b] for b in chain if b in names]
                start = names.get(chain[0], f"${chain[0]}")
                end = _endpoint_name(cell, cname, names)
                paths.append(Path_(levels, fo, start, end, port, tuple(named)))
    paths.sort(key=lambda p: -p.cost)
    return paths


def _endpoint_name(cell: dict, cname: str, names: dict[int, str]) -> str:
    # A flip-flop is known by its output's name; other cells by their own.
    for port in ("Q", "DO0", "DOA0", "DOB0"):
        bits = cell["connections"].get(port, [])
        if bits and isinstance(bits[0], int) and bits[0] in names:
            return names[bits[0]]
    return cname


def _base(name: str) -> str:
    return re.sub(r"\[\d+\]$", "", name)


def _worst_by(paths: list[Path_], key) -> dict:
    """The deepest path per ``key(path)``, with how many paths share the key."""
    worst: dict = {}
    for p in paths:
        k = key(p)
        best, n = worst.get(k, (p, 0))
        worst[k] = (p if p.cost > best.cost else best, n + 1)
    return worst


def _by_register(paths: list[Path_]) -> list[tuple[Path_, int]]:
    """The deepest path per (start register, end register), bits of a
    register taken together, with how many end bits share it; deepest first."""
    worst = _worst_by(paths, lambda p: (_base(p.start), _base(p.end)))
    return sorted(worst.values(), key=lambda pn: -pn[0].cost)


def _summary(paths: list[Path_], depth: int) -> dict[tuple[str, str], Path_]:
    """The deepest path per (start block, end block)."""
    worst = _worst_by(paths, lambda p: (block_of(p.start, depth), block_of(p.end, depth)))
    return {k: p for k, (p, _) in worst.items()}


def main(argv=None) -> None:
    from twinplane.boards.block_pnr import BLOCKS, bench_rtlil
    from twinplane.boards.pnr import synth_netlist

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("block", choices=sorted(BLOCKS))
    p.add_argument("--flows", type=int, default=1024)
    p.add_argument("--in-dfs", action="store_true", help="leave out the outputs the board's DFS does not use")
    p.add_argument("--json", help="analyse this Yosys JSON netlist instead of synthesising")
    p.add_argument("--out", default=None)
    p.add_argument("--top", type=int, default=25, help="how many of the deepest paths to print")
    p.add_argument("--scope", type=int, default=2, help="how many name scopes make a block (2: block.msgport)")
    a = p.parse_args(argv)
    if a.json:
        netlist_path = Path(a.json)
    else:
        netlist_path = synth_netlist(bench_rtlil(a.block, flows=a.flows, in_dfs=a.in_dfs), "bench",
                                     workdir=a.out or f"build/depth_{a.block}")
    paths = logic_paths(json.loads(netlist_path.read_text()))
    groups = _by_register(paths)
    print(f"{len(paths)} endpoints, {len(groups)} register pairs; the deepest {a.top}:")
    for path, bits in groups[:a.top]:
        print(f"  {path.levels:2d} levels, fanout {path.max_fanout:5d}: {path.start} -> {path.end} ({path.end_port}"
              f"{f', {bits} bits' if bits > 1 else ''})")
        inner = [n for n in path.through[1:-1] if not _DERIVED.search(n)]
        if inner:
            print(f"        via {' > '.join(inner[:8])}")
    print("deepest path from block to block (start block -> end block):")
    for (src, dst), path in sorted(_summary(paths, a.scope).items(), key=lambda kv: -kv[1].cost):
        if src != dst:
            print(f"  {path.levels:2d} levels, fanout {path.max_fanout:5d}: {src} -> {dst}: {path.start} -> {path.end}")


if __name__ == "__main__":
    main()
