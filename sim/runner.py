"""Build an Amaranth component to Verilog and run a cocotb test module on it
under Icarus, from pytest.

One build folder per (toplevel, parameter set) so tests never share stale
builds; cocotb's results file is read back and a failure raises, so pytest
sees every cocotb failure.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from amaranth.back import verilog

__all__ = ["BUILD_ROOT", "run_cocotb", "write_verilog"]

BUILD_ROOT = Path(os.environ.get("TWINPLANE_SIM_BUILD", Path(__file__).resolve().parent.parent / "sim_build"))


def write_verilog(component, name: str, build_dir: Path) -> Path:
    """Convert ``component`` to Verilog named ``name`` in ``build_dir``."""
    build_dir.mkdir(parents=True, exist_ok=True)
    path = build_dir / f"{name}.v"
    text = verilog.convert(component, name=name, emit_src=False)
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
