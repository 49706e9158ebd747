"""cocotb bench for HeaderParser on Icarus: header matrix, truncations and
random traffic driven back to back, meta read with random back-pressure,
every record compared with the reference parser."""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer

from twinplane.hdl.parser.layout import unpack_parsed_frame
from twinplane.model.frames import parse_frame
from twinplane.sim.parser.matrix import header_matrix, random_frames, truncations

__all__ = ["run_matrix"]


class TB:
    def __init__(self, dut):
        self.dut = dut
        cocotb.start_soon(Clock(dut.clk, 8, unit="ns").start())

    async def reset(self):
        self.dut.rst.value = 1
        self.dut.sink__valid.value = 0
        self.dut.meta__ready.value = 0
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def send(self, frames):
        """Drive mid-cycle; the byte moves at the next rising edge if ready was high."""
        dut = self.dut
        for frame in frames:
            for i, b in enumerate(frame):
                while True:
                    await FallingEdge(dut.clk)
                    dut.sink__valid.value = 1
                    dut.sink__payload.value = b | (int(i == 0) << 8) | (int(i == len(frame) - 1) << 9)
                    await Timer(1, unit="ns")  # after the receiver set meta.ready
                    if int(dut.sink__ready.value):
                        break
        await FallingEdge(dut.clk)
        dut.sink__valid.value = 0

    async def receive(self, count, rng, ready_p):
        dut = self.dut
        out = []
        while len(out) < count:
            await FallingEdge(dut.clk)
            ready = rng.random() < ready_p
            dut.meta__ready.value = int(ready)
            if ready and int(dut.meta__valid.value):
                out.append(unpack_parsed_frame(int(dut.meta__payload.value)))
        return out


async def run_matrix(dut, frames, seed, ready_p):
    tb = TB(dut)
    await tb.reset()
    rng = random.Random(seed)
    cocotb.start_soon(tb.send(frames))
    records = await tb.receive(len(frames), rng, ready_p)
    for frame, got in zip(frames, records, strict=True):
        assert got == parse_frame(frame).as_dict(), frame.hex()


@cocotb.test()
async def matrix_and_truncations(dut):
    frames = header_matrix()
    await run_matrix(dut, frames + truncations(frames[::4]), seed=1, ready_p=0.9)


@cocotb.test()
async def random_traffic_backpressure(dut):
    await run_matrix(dut, random_frames(random.Random(5), 300), seed=2, ready_p=0.5)
