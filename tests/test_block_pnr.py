# amaranth: UnusedElaboratable=no
"""boards/block_pnr.py: the out-of-context bench of a DFS block, the outputs
the board's DFS leaves unconnected, and the Yosys-only cell count."""

import gc

import pytest
from amaranth import Module
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from twinplane.boards.block_pnr import BLOCKS, BlockBench, dfs_unused
from twinplane.boards.pnr import synth_counts


class _Counting(wiring.Component):
    """A 32-bit event counter and a registered copy of its input."""

    event: In(1)
    count: Out(32)
    copy: Out(1)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.event):
            m.d.sync += self.count.eq(self.count + 1)
        m.d.sync += self.copy.eq(self.event)
        return m


# Blocks are built here but not elaborated: their "never used" warnings are
# let out now (collected in the test), not in some later test.
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("name", sorted(set(BLOCKS) - {"dfs"}))
def test_every_left_out_output_exists(name):
    bench = BlockBench(BLOCKS[name](1024), dfs_unused(name))  # raises on a name the block lacks
    if name in ("msgport", "forwarder", "flow_control", "miss", "arp"):
        assert dfs_unused(name), name
    del bench
    gc.collect()


def test_unknown_output_refused():
    with pytest.raises(ValueError, match=r"leave_out names no output of _Counting: \['counter'\]"):
        BlockBench(_Counting(), ["counter"])


def test_leaving_an_output_out_removes_its_logic(tmp_path):
    whole = synth_counts(rtlil.convert(BlockBench(_Counting()), name="bench"), "bench", workdir=tmp_path / "a")
    left = synth_counts(rtlil.convert(BlockBench(_Counting(), ["count"]), name="bench"), "bench",
                        workdir=tmp_path / "b")
    # The counter is a 32-bit carry chain: 16 CCU2C, each two LUT4s' worth.
    assert whole["ccu2c"] >= 16 and left["ccu2c"] == 0
    assert whole["comb"] == whole["lut4"] + 2 * whole["ccu2c"] + 6 * whole["lutram"]
    assert whole["ff"] >= left["ff"] + 32
