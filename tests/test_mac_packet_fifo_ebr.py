"""PacketFIFO as built for ECP5 (DP16KD columns read through their output
register, hdl/ram/block_ram.py) in cocotb/Icarus against a behavioural
DP16KD (sim/stream/dp16kd.v) and the toolchain's LUT4 model (its pointer
compares are LUT4s there): x9 one column, x4 three columns, x18 with
byte enables over two columns."""

import os
import sys
from pathlib import Path

import pytest
from cocotb_tools.runner import get_results, get_runner

from twinplane.hdl.ram import ECP5Netlist
from twinplane.hdl.stream.packet_fifo import PacketFIFO
from twinplane.sim.runner import BUILD_ROOT, ecp5_lut4_model, write_verilog

DP16KD_MODEL = Path(__file__).resolve().parent.parent / "sim" / "stream" / "dp16kd.v"


@pytest.mark.parametrize(("data_width", "depth"), [(8, 2048), (8, 4096), (16, 1024)])
def test_ecp5_fifo_frames(data_width, depth):
    build_dir = BUILD_ROOT / f"packet_fifo_ebr_w{data_width}_d{depth}"
    top = "packet_fifo_ebr"
    source = write_verilog(PacketFIFO(data_width, depth), top, build_dir, platform=ECP5Netlist())
    assert "REGMODE_B" in source.read_text()  # the DP16KD instances, not a Memory
    runner = get_runner("icarus")
    runner.build(sources=[source, DP16KD_MODEL, ecp5_lut4_model(build_dir)], hdl_toplevel=top, build_dir=build_dir,
                 timescale=("1ns", "1ps"))
    env = {"FIFO_DATA_WIDTH": str(data_width), "FIFO_SEED": str(depth),
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    results = runner.test(hdl_toplevel=top, test_module="twinplane.sim.stream.fifo_ebr_tb",
                          build_dir=build_dir, test_dir=build_dir, extra_env=env)
    total, failed = get_results(results)
    assert total == 1 and failed == 0, f"cocotb: {failed} of {total} failed (see {build_dir})"
