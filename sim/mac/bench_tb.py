"""cocotb side of sim/mac/bench.py: N minimum-size frames back to back."""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.eth import GmiiFrame, GmiiSink, GmiiSource

from twinplane.sim.mac.gmii_tb import bit, scapy_frame

WIRE_CYCLES = 84


@cocotb.test()
async def bench_min_frames(dut):
    n = int(os.environ.get("MAC_BENCH_FRAMES", "200"))
    cocotb.start_soon(Clock(dut.clk, 8, unit="ns").start())
    src = GmiiSource(dut.rxd, dut.rx_er, dut.rx_dv, dut.clk)  # ifg 12: 84 clocks a frame
    sink = GmiiSink(dut.txd, dut.tx_er, dut.tx_en, dut.clk)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    payloads = [scapy_frame(60, i) for i in range(n)]
    for p in payloads:
        src.send_nowait(GmiiFrame.from_payload(p))
    starts = []
    cycle = 0
    prev = 0
    idle = 0
    first_rx = None
    while idle < 1000:
        await RisingEdge(dut.clk)
        cycle += 1
        if first_rx is None and bit(dut.rx_dv):
            first_rx = cycle
        en = bit(dut.tx_en)
        if en and not prev:
            starts.append(cycle)
        prev = en
        idle = 0 if (en or not src.empty() or src.active) else idle + 1
    out = []
    while not sink.empty():
        f = sink.recv_nowait()
        assert f.check_fcs()
        out.append(bytes(f.get_payload()))
    assert out == payloads[: len(out)], "frames out differ from frames in"
    span = starts[-1] - starts[0] if len(starts) > 1 else 0
    result = {
        "frames_offered": n,
        "frames_out": len(starts),
        "frames_lost": n - len(starts),
        "cycles": span,
        "cycles_first_in_to_last_out": (starts[-1] + WIRE_CYCLES - 12 - first_rx) if starts else 0,
        "line_rate_ratio": ((len(starts) - 1) * WIRE_CYCLES / span) if span else 0.0,
        "rx_frames": int(dut.rx_frames.value),
        "tx_frames": int(dut.tx_frames.value),
        "rx_drops": int(dut.rx_drops.value),
        "frames_parsed": int(dut.parsed.value),
    }
    with open(os.environ["MAC_BENCH_OUT"], "w") as fh:
        json.dump(result, fh)
