"""cocotb tests of the port drivers on CrossLoopback: frames in, same frames
out of the other port, at full rate, with gaps and with backpressure."""

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.utils import get_sim_time

from .ports import discover_ports

__all__ = ["TB"]

PERIOD_NS = 8


class TB:
    def __init__(self, dut, *, idle_cycles=0, ready_probability=1.0):
        self.dut = dut
        Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start()
        self.ports = discover_ports(dut, dut.clk, idle_cycles=idle_cycles,
                                    ready_probability=ready_probability)

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)


def random_frames(rng, count):
    return [rng.randbytes(rng.choice([1, 2, 14, 60, rng.randrange(1, 200)])) for _ in range(count)]


async def run_exchange(dut, *, idle_cycles=0, ready_probability=1.0, count=40, seed=1):
    tb = TB(dut, idle_cycles=idle_cycles, ready_probability=ready_probability)
    await tb.reset()
    assert len(tb.ports) == int(os.environ.get("BRIDGE_PORTS", "2"))
    rng = random.Random(seed)
    sent = {p.index: random_frames(rng, count) for p in tb.ports}
    start = get_sim_time("ns")
    for p in tb.ports:
        for f in sent[p.index]:
            p.source.send_nowait(f)
    for p in tb.ports:
        other = tb.ports[1 - p.index]
        for f in sent[p.index]:
            got = await other.sink.recv()
            assert got == f, f"port {p.index}->{other.index}: {got.hex()} != {f.hex()}"
    cycles = (get_sim_time("ns") - start) // PERIOD_NS
    for p in tb.ports:
        await p.source.wait_idle()
        assert p.sink.empty() and p.sink.errors == 0
    return tb, sent, cycles


@cocotb.test()
async def test_full_rate(dut):
    """Back to back: the busier direction takes its byte count plus a few
    cycles of FIFO latency, so no cycle is lost between frames."""
    tb, sent, cycles = await run_exchange(dut, seed=2)
    busiest = max(sum(map(len, fs)) for fs in sent.values())
    assert busiest <= cycles <= busiest + 8, (busiest, cycles)
    for p in tb.ports:
        assert p.source.frames == len(sent[p.index])


@cocotb.test()
async def test_idle_gap(dut):
    """With a gap after each frame the time grows by the gaps."""
    gap = 12
    tb, sent, cycles = await run_exchange(dut, idle_cycles=gap, count=20, seed=3)
    need = max(sum(map(len, fs)) + gap * (len(fs) - 1) for fs in sent.values())
    assert need <= cycles <= need + gap + 8, (need, cycles)


@cocotb.test()
async def test_backpressure(dut):
    """Random ready on the tx side: every frame still arrives intact."""
    await run_exchange(dut, ready_probability=0.4, count=30, seed=4)
