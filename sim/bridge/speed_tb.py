"""cocotb side of the simulation speed bench (sim/bridge/speed.py): run the
DUT for BENCH_CYCLES cycles, first with only the clock, then with the port
drivers sending back-to-back 64-byte frames into every rx stream, and write
cycles per wall second to BENCH_OUT (JSON)."""

import json
import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, Timer

from .ports import discover_ports

__all__ = ["FRAME"]

FRAME = bytes(range(64))


@cocotb.test()
async def bench(dut):
    cycles = int(os.environ.get("BENCH_CYCLES", "20000"))
    Clock(dut.clk, 8, unit="ns", impl=os.environ.get("BENCH_CLOCK", "gpi")).start()
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    for name in ("rx__valid", "tx__ready", "rx__0__valid", "rx__1__valid", "tx__0__ready", "tx__1__ready"):
        if hasattr(dut, name):
            getattr(dut, name).value = 0
    await RisingEdge(dut.clk)
    # Timer, not ClockCycles: ClockCycles wakes Python on every edge.
    t = time.perf_counter()
    await Timer(cycles * 8, unit="ns")
    idle = cycles / (time.perf_counter() - t)

    ports = discover_ports(dut, dut.clk)
    for p in ports:
        for _ in range(cycles // len(FRAME) + 2):
            p.source.send_nowait(FRAME)
    await RisingEdge(dut.clk)
    t = time.perf_counter()
    await Timer(cycles * 8, unit="ns")
    busy = cycles / (time.perf_counter() - t)
    out = {"clock_only": idle, "traffic": busy,
           "frames_out": sum(p.sink.frames for p in ports), "frames_in": sum(p.source.frames for p in ports)}
    dut._log.info("speed %s", out)
    with open(os.environ["BENCH_OUT"], "w") as f:
        json.dump(out, f)
    assert out["frames_in"] > 0
