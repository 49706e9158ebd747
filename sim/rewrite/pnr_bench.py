"""Place-and-route numbers of the command-driven rewriter on ECP5.

The command (about 600 bits) is loaded through a shift register from one
pin, so the bench fits the package; the frame streams are pins.

Run: ``python -m twinplane.sim.rewrite.pnr_bench [workdir]``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from amaranth import Cat, Elaboratable, Module, Signal
from amaranth.back import verilog

from twinplane.boards.pnr import place_and_route
from twinplane.hdl.rewrite.command_rewriter import CommandRewriter

__all__ = ["RewriterBench", "main"]


class RewriterBench(Elaboratable):
    def __init__(self):
        self.rw = CommandRewriter()
        self.din = Signal()
        self.command_valid = Signal()
        self.command_ready = Signal()
        self.sink = Signal(11)  # data, first, last, valid
        self.sink_ready = Signal()
        self.source = Signal(11)
        self.source_ready = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.rw = rw = self.rw
        cmd = rw.command.payload.as_value()
        shift = Signal(len(cmd))
        m.d.sync += shift.eq(Cat(self.din, shift[:-1]))
        m.d.comb += [
            cmd.eq(shift), rw.command.valid.eq(self.command_valid), self.command_ready.eq(rw.command.ready),
            Cat(rw.sink.payload.data, rw.sink.payload.first, rw.sink.payload.last, rw.sink.valid).eq(self.sink),
            self.sink_ready.eq(rw.sink.ready), rw.source.ready.eq(self.source_ready),
            self.source.eq(Cat(rw.source.payload.data, rw.source.payload.first, rw.source.payload.last,
                               rw.source.valid)),
        ]
        return m


def main(argv: list[str]) -> None:
    bench = RewriterBench()
    text = verilog.convert(bench, name="rw_bench", ports=[
        bench.din, bench.command_valid, bench.command_ready, bench.sink, bench.sink_ready, bench.source,
        bench.source_ready])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(argv[0]) if argv else Path(tmp)  # a folder given on the command line keeps the logs
        r = place_and_route(text, "rw_bench", freq_mhz=137.5, workdir=work)
        log = Path(r["log"]).read_text().splitlines()
        # The last critical-path report names the slowest nets (nextpnr's "Critical path report").
        starts = [i for i, line in enumerate(log) if "Critical path report for clock" in line]
        path = log[starts[-1] : starts[-1] + 40] if starts else []
    print(f"CommandRewriter P&R (25k-6): lut4={r['lut4']} ff={r['ff']} fmax={r['fmax_mhz']}", flush=True)
    print("\n".join(path))


if __name__ == "__main__":
    main(sys.argv[1:])
