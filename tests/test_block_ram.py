"""BlockRAM (hdl/ram/block_ram.py): the generic build (Memory + register)
in Amaranth's simulator and the ECP5 build (DP16KD columns through their
output register) in cocotb/Icarus against a behavioural DP16KD
(sim/stream/dp16kd.v), both against sim/ram/model.py clock by clock."""

import os
import random
import sys
from pathlib import Path

import pytest
from amaranth.back import rtlil
from amaranth.lib import data
from amaranth.sim import Simulator
from cocotb_tools.runner import get_results, get_runner

from twinplane.hdl.ram import BlockRAM, ECP5Netlist, dp16kd_columns
from twinplane.sim.ram.model import BlockRAMModel, random_ops
from twinplane.sim.runner import BUILD_ROOT, write_verilog

DP16KD_MODEL = Path(__file__).resolve().parent.parent / "sim" / "stream" / "dp16kd.v"


@pytest.mark.parametrize(("args", "kwargs", "error", "message"), [
    ((0, 16), {}, ValueError, "shape must be at least one bit wide, not 0"),
    (("x", 16), {}, TypeError, "shape must be a shape-castable, not 'x'"),
    ((8, 1), {}, ValueError, "depth must be an integer >= 2, not 1"),
    ((8, 16.0), {}, ValueError, "depth must be an integer >= 2, not 16.0"),
    ((8, 16), {"granularity": 3}, ValueError, "granularity must divide the width 8, not 3"),
    ((8, 4), {"init": [1] * 5}, ValueError, "init has 5 entries, more than depth 4"),
    ((8, 4), {"init": ["a"]}, TypeError, "init must be integers (the words' bits), not ['a']"),
    ((8, 4), {"w_domain": 1}, TypeError, "w_domain must be a domain name, not 1"),
])
def test_arguments(args, kwargs, error, message):
    with pytest.raises(error) as e:
        BlockRAM(*args, **kwargs)
    assert str(e.value) == message


@pytest.mark.parametrize(("width", "depth", "granularity", "init"), [
    (9, 2048, None, ()), (218, 512, 109, ()), (179, 1024, None, ()), (16, 16, 8, (5, 6, 7)),
])
def test_generic(width, depth, granularity, init):
    dut = BlockRAM(width, depth, granularity=granularity, init=list(init))
    model = BlockRAMModel(width, depth, granularity, init)
    ops = list(random_ops(random.Random(width * depth), width, depth, granularity, 3000))
    ports = {"w_addr": dut.write.addr, "w_data": dut.write.data, "w_en": dut.write.en,
             "r_addr": dut.read.addr, "r_en": dut.read.en, "out_en": dut.read.out_en}
    reads = []

    async def bench(ctx):
        for op in ops:
            assert ctx.get(dut.read.data) == model.out
            for k, v in op.items():
                ctx.set(ports[k], v)
            model.step(**op)
            reads.append(op["r_en"] and op["out_en"])
            await ctx.tick()
        assert ctx.get(dut.read.data) == model.out

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert sum(reads) > 1000  # the case is not vacuous
    assert any(model.mem)


def test_layout_shape():
    layout = data.StructLayout({"a": 5, "b": 7})
    dut = BlockRAM(layout, 64)
    assert isinstance(dut.read.data, data.View) and dut.read.data.shape() == layout
    assert "read__data" in rtlil.convert(dut)


@pytest.mark.parametrize(("width", "depth", "granularity", "columns"), [
    (9, 2048, None, 1), (179, 1024, None, 10), (218, 512, 109, 7), (218, 1024, 109, 13),
    (88, 1024, None, 5), (12, 4096, None, 3), (8, 256, None, 0), (8, 32768, None, 0),
    (18, 512, None, 1), (20, 1024, 10, 2), (40, 512, 20, 2), (12, 4096, 6, 4),
])
def test_ecp5_netlist(width, depth, granularity, columns):
    assert dp16kd_columns(width, depth, granularity) == columns
    dut = BlockRAM(width, depth, granularity=granularity)
    text = rtlil.convert(dut, platform=ECP5Netlist())
    assert text.count("cell \\DP16KD ") == columns
    assert text.count('REGMODE_B "OUTREG"') == columns
    # x36 (a 512-word RAM wider than 18 bits): both halves' output registers.
    x36 = depth == 512 and width > 18
    assert text.count('REGMODE_A "OUTREG"') == (columns if x36 else 0)
    assert text.count("DATA_WIDTH_A 36") == (columns if x36 else 0)
    assert "DP16KD" not in rtlil.convert(BlockRAM(width, depth, granularity=granularity))
    assert "DP16KD" not in rtlil.convert(BlockRAM(width, depth, init=[1]), platform=ECP5Netlist())


@pytest.mark.parametrize(("width", "depth", "granularity"), [
    (9, 2048, None), (20, 1024, 10), (3, 4096, None), (26, 1024, 13), (218, 512, 109), (40, 512, None),
])
def test_ecp5_dp16kd(width, depth, granularity):
    build_dir = BUILD_ROOT / f"block_ram_ebr_w{width}_d{depth}_g{granularity}"
    top = "block_ram_ebr"
    source = write_verilog(BlockRAM(width, depth, granularity=granularity), top, build_dir,
                           platform=ECP5Netlist())
    assert "REGMODE_B" in source.read_text()
    runner = get_runner("icarus")
    runner.build(sources=[source, DP16KD_MODEL], hdl_toplevel=top, build_dir=build_dir,
                 timescale=("1ns", "1ps"))
    env = {"RAM_WIDTH": str(width), "RAM_DEPTH": str(depth), "RAM_GRANULARITY": str(granularity or 0),
           "RAM_SEED": str(width + depth), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    results = runner.test(hdl_toplevel=top, test_module="twinplane.sim.ram.block_ram_tb",
                          build_dir=build_dir, test_dir=build_dir, extra_env=env)
    total, failed = get_results(results)
    assert total == 1 and failed == 0, f"cocotb: {failed} of {total} failed (see {build_dir})"
