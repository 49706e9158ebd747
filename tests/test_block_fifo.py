"""BlockFIFO (hdl/stream/block_fifo.py): every beat through in order, none
lost or doubled, under random valid and ready, with the FIFO filling up;
sink.ready and source.valid are registers; a beat a clock when both sides
always go; written back to back it holds depth - 1 entries plus the output register; on ECP5 its
memory is DP16KD with the output register on."""


import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from twinplane.hdl.packet import packet_layout
from twinplane.hdl.ram import ECP5Netlist
from twinplane.hdl.stream.block_fifo import BlockFIFO
from twinplane.sim.streams import random_handshakes


def run(seed, p_valid, p_ready, n=400, depth=16):
    return random_handshakes(BlockFIFO(packet_layout(8), depth), seed, p_valid, p_ready, n)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("p_valid,p_ready", [(1.0, 1.0), (0.5, 1.0), (1.0, 0.3), (0.7, 0.6)])
def test_order_under_random_handshakes(seed, p_valid, p_ready):
    run(seed, p_valid, p_ready)


def test_a_beat_a_clock():
    # 400 beats, 4 clocks of latency and a little slack: no bubbles.
    assert run(0, 1.0, 1.0) <= 400 + 6


def test_fills_up_and_gives_back_in_order():
    dut = BlockFIFO(packet_layout(8), 16)
    taken = [0]

    async def bench(ctx):
        ctx.set(dut.source.ready, 0)
        ctx.set(dut.sink.valid, 1)
        for _ in range(60):
            ctx.set(dut.sink.payload.data, taken[0])
            await ctx.delay(1e-9)
            if ctx.get(dut.sink.ready):
                taken[0] += 1
            await ctx.tick()
        # written back to back: depth - 1 in the memory, 1 in the output register
        assert taken[0] == 16
        ctx.set(dut.sink.valid, 0)
        ctx.set(dut.source.ready, 1)
        out = []
        for _ in range(40):
            await ctx.delay(1e-9)
            if ctx.get(dut.source.valid):
                out.append(ctx.get(dut.source.payload.data))
            await ctx.tick()
        assert out == list(range(16))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_ecp5_reads_through_the_output_register():
    text = rtlil.convert(BlockFIFO(packet_layout(8), 4096), platform=ECP5Netlist())
    assert "DP16KD" in text
    assert '"OUTREG"' in text


@pytest.mark.parametrize("depth", [16, 64])
def test_refills_to_the_same_level_after_a_partial_drain(depth):
    # The full limit steps with the reads: after draining k beats from a full
    # FIFO and letting it settle, exactly k more are taken, and every beat
    # still comes out in order.
    dut = BlockFIFO(packet_layout(8), depth)
    drained = 5

    async def bench(ctx):
        written, out = 0, []

        async def clock(write, read):
            nonlocal written
            ctx.set(dut.sink.valid, write)
            ctx.set(dut.sink.payload.data, written & 0xFF)
            ctx.set(dut.source.ready, read)
            await ctx.delay(1e-9)
            if read and ctx.get(dut.source.valid):
                out.append(ctx.get(dut.source.payload.data))
            if write and ctx.get(dut.sink.ready):
                written += 1
            await ctx.tick()

        for _ in range(depth + 20):
            await clock(1, 0)
        assert written == depth
        while len(out) < drained:
            await clock(0, 1)
        for _ in range(depth + 20):
            await clock(1, 0)
        assert written == depth + drained
        for _ in range(depth + 20):
            await clock(0, 1)
        assert out == [i & 0xFF for i in range(depth + drained)]

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
