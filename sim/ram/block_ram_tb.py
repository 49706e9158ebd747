"""cocotb bench for BlockRAM's ECP5 build (DP16KD columns read through
their output register) on Icarus, against sim/stream/dp16kd.v and
:class:`BlockRAMModel`: random writes and reads, the output checked every
clock.  Knobs from the environment: RAM_WIDTH, RAM_DEPTH, RAM_GRANULARITY
(0: none), RAM_SEED."""

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from .model import BlockRAMModel, random_ops

WIDTH = int(os.environ.get("RAM_WIDTH", "8"))
DEPTH = int(os.environ.get("RAM_DEPTH", "1024"))
GRANULARITY = int(os.environ.get("RAM_GRANULARITY", "0")) or None
SEED = int(os.environ.get("RAM_SEED", "1"))
PORTS = {"w_addr": "write__addr", "w_data": "write__data", "w_en": "write__en",
         "r_addr": "read__addr", "r_en": "read__en", "out_en": "read__out_en"}


@cocotb.test()
async def random_traffic(dut):
    cocotb.start_soon(Clock(dut.clk, 8, unit="ns").start())
    dut.rst.value = 1
    for name in PORTS.values():
        getattr(dut, name).value = 0
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    model = BlockRAMModel(WIDTH, DEPTH, GRANULARITY)
    # Fill every entry first (the DP16KD model starts undefined).
    lanes = WIDTH // (GRANULARITY or WIDTH)
    ops = [{"w_addr": a, "w_data": random.Random(a).getrandbits(WIDTH), "w_en": (1 << lanes) - 1}
           for a in range(DEPTH)]
    ops += list(random_ops(random.Random(SEED), WIDTH, DEPTH, GRANULARITY, 3000))
    checked = 0
    for i, op in enumerate(ops):
        await FallingEdge(dut.clk)
        assert int(dut.read__data.value) == model.out, f"clock {i}"
        checked += 1
        for k, v in op.items():
            getattr(dut, PORTS[k]).value = v
        model.step(**op)
        if not op.get("r_en", 0):
            getattr(dut, PORTS["r_en"]).value = 0
        if not op.get("out_en", 0):
            getattr(dut, PORTS["out_en"]).value = 0
    assert checked > 2000
