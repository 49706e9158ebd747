"""UART TX/RX bit timing against a waveform model (Amaranth simulator)."""

import random

import pytest
from amaranth import Module
from amaranth.sim import Simulator

from twinplane.hdl.uart.rx import UARTRx
from twinplane.hdl.uart.tx import UARTTx


def waveform(data: bytes, divisor: int, *, bit_len=None, stop=1, idle=3) -> list[int]:
    """Line level per clock cycle for 8N1 frames; ``bit_len(i)`` may vary a bit's length."""
    bit_len = bit_len or (lambda i: divisor)
    levels = [1] * idle * divisor
    n = 0
    for byte in data:
        bits = [0] + [(byte >> i) & 1 for i in range(8)] + [stop]
        for b in bits:
            levels += [b] * bit_len(n)
            n += 1
        levels += [1] * random.randrange(0, 2 * divisor)
    return levels + [1] * idle * divisor


def decode(levels: list[int], divisor: int) -> list[tuple[int, list[int]]]:
    """(byte, run lengths of its 10 bits) for each frame on a sampled line."""
    frames, i = [], 0
    while i < len(levels):
        if levels[i] == 0:
            bits, runs = [], []
            for k in range(10):
                centre = i + k * divisor + divisor // 2
                bits.append(levels[centre])
            byte = sum(b << k for k, b in enumerate(bits[1:9]))
            # Run lengths of the data bits measured edge to edge.
            j, run_start = i, i
            for _ in range(10):
                while j < len(levels) and levels[j] == levels[run_start]:
                    j += 1
                runs.append(j - run_start)
                run_start = j
                if j >= len(levels):
                    break
            frames.append((byte, bits, runs))
            i += 10 * divisor - divisor // 2
            while i < len(levels) and levels[i] == 0:  # stop bit must be high: stay on it
                i += 1
        else:
            i += 1
    return frames


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_tx_bit_timing(divisor):
    rng = random.Random(divisor)
    data = bytes([0x00, 0xFF, 0x55, 0xAA, 0x01, 0x80] + [rng.randrange(256) for _ in range(10)])
    dut = UARTTx(divisor)
    levels = []

    async def feed(ctx):
        for byte in data:
            ctx.set(dut.sink.payload, byte)
            ctx.set(dut.sink.valid, 1)
            await ctx.tick().until(dut.sink.ready)
            ctx.set(dut.sink.valid, 0)
            if rng.random() < 0.3:
                await ctx.tick().repeat(rng.randrange(1, 3 * divisor))
        await ctx.tick().repeat(12 * divisor)

    async def watch(ctx):
        async for _clk, _rst, tx in ctx.tick().sample(dut.tx):
            levels.append(tx)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(feed)
    sim.add_process(watch)
    sim.run()
    frames = decode(levels, divisor)
    assert [f[0] for f in frames] == list(data)
    for byte, bits, _ in frames:
        assert bits[0] == 0 and bits[9] == 1, (byte, bits)
    # Each bit lasts exactly ``divisor`` cycles: check edges fall on the bit grid.
    start = levels.index(0)
    for k in range(10):
        for c in range(divisor):
            expected = ([0] + [(data[0] >> i) & 1 for i in range(8)] + [1])[k]
            assert levels[start + k * divisor + c] == expected, (k, c)
    # Idle line is high, and back-to-back frames keep a full stop bit.
    assert levels[0] == 1
    runs_of_ones = []
    i = 0
    while i < len(levels):
        j = i
        while j < len(levels) and levels[j] == levels[i]:
            j += 1
        if levels[i] == 1 and i > 0 and j < len(levels):
            runs_of_ones.append(j - i)
        i = j
    assert min(runs_of_ones) >= 1


def run_rx(levels, divisor):
    dut = UARTRx(divisor)
    got, errors = [], [0, 0]

    async def drive(ctx):
        ctx.set(dut.source.ready, 1)
        for level in levels:
            ctx.set(dut.rx, level)
            await ctx.tick()
            if ctx.get(dut.source.valid):
                got.append(ctx.get(dut.source.payload))
            errors[0] += ctx.get(dut.framing_error)
            errors[1] += ctx.get(dut.overrun)
        await ctx.tick().repeat(4)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(drive)
    sim.run()
    return got, errors


@pytest.mark.parametrize("divisor", [4, 8, 13, 33])
def test_rx_exact_and_skewed(divisor):
    rng = random.Random(100 + divisor)
    data = bytes([0x00, 0xFF, 0x55, 0xAA] + [rng.randrange(256) for _ in range(12)])
    got, errors = run_rx(waveform(data, divisor), divisor)
    assert bytes(got) == data and errors == [0, 0]
    # A transmitter 3% fast or slow (well inside 8N1's ~5% budget) is still read.
    for skew in (0.97, 1.03):
        if divisor < 16:
            continue
        bit_len = lambda i, s=skew: round(divisor * s * (i + 1)) - round(divisor * s * i)  # noqa: E731
        got, errors = run_rx(waveform(data, divisor, bit_len=bit_len), divisor)
        assert bytes(got) == data, skew


def test_rx_framing_error_and_glitch():
    divisor = 16
    good = waveform(b"\x5a", divisor)
    bad = waveform(b"\xa5", divisor, stop=0)
    glitch = [1] * 20 + [0] * (divisor // 2 - 2) + [1] * 40  # shorter than half a bit
    got, errors = run_rx(good + bad + glitch + good, divisor)
    assert got == [0x5A, 0x5A]
    assert errors == [1, 0]


def test_rx_overrun_keeps_first_byte():
    divisor = 8
    dut = UARTRx(divisor)
    levels = waveform(b"\x11\x22", divisor)
    seen = {}

    async def drive(ctx):
        ctx.set(dut.source.ready, 0)
        overruns = 0
        for level in levels:
            ctx.set(dut.rx, level)
            await ctx.tick()
            overruns += ctx.get(dut.overrun)
        seen["byte"] = ctx.get(dut.source.payload)
        seen["valid"] = ctx.get(dut.source.valid)
        seen["overruns"] = overruns

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(drive)
    sim.run()
    assert seen == {"byte": 0x11, "valid": 1, "overruns": 1}


@pytest.mark.parametrize("divisor", [5, 10])
def test_loopback_random(divisor):
    rng = random.Random(divisor * 7)
    data = bytes(rng.randrange(256) for _ in range(24))
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor)
    m.submodules.rx = rx = UARTRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    got = []

    async def feed(ctx):
        ctx.set(rx.source.ready, 1)
        for byte in data:
            ctx.set(tx.sink.payload, byte)
            ctx.set(tx.sink.valid, 1)
            await ctx.tick().until(tx.sink.ready)
        ctx.set(tx.sink.valid, 0)
        await ctx.tick().repeat(12 * divisor)

    async def collect(ctx):
        async for _clk, _rst, valid, payload in ctx.tick().sample(rx.source.valid, rx.source.payload):
            if valid:
                got.append(payload)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(feed)
    sim.add_process(collect)
    sim.run()
    assert bytes(got) == data


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_divisor_checks():
    with pytest.raises(ValueError, match="divisor must be >= 4 clock cycles per bit, not 3"):
        UARTTx(3)
    with pytest.raises(TypeError, match="divisor must be an int, not '9600'"):
        UARTRx("9600")


def test_rx_byte_taken_as_the_next_stop_bit_is_sampled():
    # The first byte waits until the consumer takes it at clock ``take``.
    # Taken by the clock the second byte's stop bit is sampled (or the one
    # after, which the receiver waits for), both bytes arrive; taken later,
    # the second is an overrun.  The payload's load does not look at
    # ``ready``, so the same-clock case is the one to watch.
    divisor = 8
    random.seed(3)
    levels = waveform(b"\x11\x22", divisor)

    def run(take):
        dut = UARTRx(divisor)
        out = {"bytes": [], "overruns": 0, "second_valid_at": None}

        async def drive(ctx):
            for clock, level in enumerate(levels):
                ctx.set(dut.rx, level)
                ready = take is None or clock == take or (clock > take and bool(out["bytes"]))
                ctx.set(dut.source.ready, ready)
                if ready and ctx.get(dut.source.valid):
                    out["bytes"].append(ctx.get(dut.source.payload))
                    if len(out["bytes"]) == 2:
                        out["second_valid_at"] = clock
                await ctx.tick()
                out["overruns"] += ctx.get(dut.overrun)

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(drive)
        sim.run()
        return out

    free = run(None)
    assert free["bytes"] == [0x11, 0x22] and free["overruns"] == 0
    sampled = free["second_valid_at"] - 1  # the clock whose edge loaded the second byte
    outcomes = {}
    for take in range(sampled - 3, sampled + 4):
        out = run(take)
        outcomes[take - sampled] = (out["bytes"], out["overruns"])
    both, lost = ([0x11, 0x22], 0), ([0x11], 1)
    assert outcomes == {-3: both, -2: both, -1: both, 0: both, 1: lost, 2: lost, 3: lost}, outcomes
