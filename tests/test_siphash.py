"""SipHash-2-4 core against the Python reference (twinplane.protocol.siphash)
in Amaranth's simulator: every message length 0..64, random keys per message,
random gaps on the sink, random backpressure on the source, empty transfers."""

import random

import pytest
from amaranth.sim import Simulator

from twinplane.hdl.crypto.siphash import SipHash24
from twinplane.protocol.siphash import siphash24


def _transfers(message: bytes, rng: random.Random, *, empties: bool):
    """The sink transfers of one message: one per byte, plus (if ``empties``)
    empty transfers sprinkled in and sometimes an empty closing one."""
    out = []
    close_empty = not message or (empties and rng.random() < 0.3)
    for i, byte in enumerate(message):
        if empties and rng.random() < 0.05:
            out.append({"data": rng.getrandbits(8), "last": 0, "empty": 1})
        out.append({"data": byte, "last": int(i == len(message) - 1 and not close_empty), "empty": 0})
    if close_empty:
        out.append({"data": rng.getrandbits(8), "last": 1, "empty": 1})
    return out


def run_messages(messages, *, seed, gap_prob, stall_prob, empties=True, idle_between=0, key_held=False,
                 scramble=None, after_tag=False):
    """Stream ``messages`` (list of (key16, message)) through the core and
    return (tags, sink_stall_cycles, cycles).  ``key_held``: the core does
    not copy its key.  ``scramble`` (default: unless ``key_held``): change
    the key after each message's first transfer.  ``after_tag``: a message
    starts once the previous one's tag was taken (as the message port's
    arbiter grants the core)."""
    scramble = not key_held if scramble is None else scramble
    rng = random.Random(seed)
    dut = SipHash24(key_held=key_held)
    tags = []
    stats = {"stalls": 0, "cycles": 0}

    async def producer(ctx):
        for n, (key, message) in enumerate(messages):
            while after_tag and len(tags) < n:
                await ctx.tick()
            for transfer in _transfers(message, rng, empties=empties):
                while rng.random() < gap_prob:
                    await ctx.tick()
                ctx.set(dut.key, int.from_bytes(key, "little"))
                ctx.set(dut.sink.payload, transfer)
                ctx.set(dut.sink.valid, 1)
                while True:
                    ready = ctx.get(dut.sink.ready)
                    await ctx.tick()
                    if ready:
                        break
                    stats["stalls"] += 1
                if scramble:
                    # Scramble the key between messages' first transfers: the core must have latched it.
                    ctx.set(dut.key, rng.getrandbits(128))
                ctx.set(dut.sink.valid, 0)
            for _ in range(idle_between):
                await ctx.tick()

    async def consumer(ctx):
        while len(tags) < len(messages):
            ready = rng.random() >= stall_prob
            ctx.set(dut.source.ready, ready)
            valid = ctx.get(dut.source.valid)
            payload = ctx.get(dut.source.payload)
            await ctx.tick()
            stats["cycles"] += 1
            if ready and valid:
                tags.append(payload)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    return tags, stats


@pytest.mark.parametrize("gap_prob,stall_prob", [(0.0, 0.0), (0.3, 0.3)])
def test_all_lengths(gap_prob, stall_prob):
    rng = random.Random(1624 + int(gap_prob * 10))
    messages = []
    for length in range(65):
        messages.append((rng.randbytes(16), rng.randbytes(length)))
    rng.shuffle(messages)
    tags, _ = run_messages(messages, seed=rng.getrandbits(32), gap_prob=gap_prob, stall_prob=stall_prob)
    assert [hex(t) for t in tags] == [hex(siphash24(k, msg)) for k, msg in messages]


@pytest.mark.parametrize("gap_prob,stall_prob", [(0.0, 0.0), (0.3, 0.3)])
def test_all_lengths_with_a_held_key(gap_prob, stall_prob):
    # The message port's configuration: one key, held by its producer, no copy.
    rng = random.Random(4021 + int(gap_prob * 10))
    key = rng.randbytes(16)
    messages = [(key, rng.randbytes(length)) for length in range(65)]
    rng.shuffle(messages)
    tags, _ = run_messages(messages, seed=rng.getrandbits(32), gap_prob=gap_prob, stall_prob=stall_prob,
                           key_held=True)
    assert [hex(t) for t in tags] == [hex(siphash24(k, msg)) for k, msg in messages]


def test_a_held_key_is_read_where_it_stands():
    # No copy: a key changed after a message's first transfer (which the latching core ignores)
    # reaches the held-key core's tag.  The messages are shorter than a word, so the core reads
    # the key after their last transfer, when run_messages has scrambled it.
    rng = random.Random(77)
    messages = [(rng.randbytes(16), rng.randbytes(length)) for length in (1, 3, 5, 7)]
    expected = [siphash24(k, msg) for k, msg in messages]
    latched, _ = run_messages(messages, seed=5, gap_prob=0.0, stall_prob=0.0, scramble=True)
    held, _ = run_messages(messages, seed=5, gap_prob=0.0, stall_prob=0.0, key_held=True, scramble=True)
    assert latched == expected
    assert all(tag != want for tag, want in zip(held, expected, strict=True))



def test_paper_vector():
    # Appendix A key 00..0f over 00..0e; expected value from the reference model.
    key = bytes(range(16))
    message = bytes(range(15))
    tags, _ = run_messages([(key, message)], seed=0, gap_prob=0.0, stall_prob=0.0, empties=False)
    assert tags == [siphash24(key, message)]
    assert tags[0].to_bytes(8, "little") == bytes.fromhex("e545be4961ca29a1")


def test_one_byte_per_clock_on_the_message_port():
    """A batch on the message port: signed parts of at least 24 bytes (header),
    each started once the previous tag was taken (the arbiter's grant).  At
    one byte per clock the sink must never stall inside a message: a word's
    compression (8 clocks) keeps up with its 8 bytes, the next word folded in."""
    rng = random.Random(7)
    lengths = [24, 25, 31, 32, 33, 39, 40, 41, 47, 48, 56, 64, 24, 24, 32, 32, 255, 256]
    messages = [(rng.randbytes(16), rng.randbytes(n)) for n in lengths]
    tags, stats = run_messages(messages, seed=3, gap_prob=0.0, stall_prob=0.0, empties=False, after_tag=True)
    assert tags == [siphash24(k, msg) for k, msg in messages]
    assert stats["stalls"] == 0


def test_next_message_waits_for_the_finalization():
    """Messages 8 clocks apart (a part's 8 tag bytes between them, not hashed)
    see backpressure while the previous one is finalized (16 clocks), and
    their tags stay right."""
    rng = random.Random(7)
    messages = [(rng.randbytes(16), rng.randbytes(n)) for n in (24, 25, 31, 32, 33, 64)]
    tags, stats = run_messages(messages, seed=3, gap_prob=0.0, stall_prob=0.0, empties=False, idle_between=8)
    assert tags == [siphash24(k, msg) for k, msg in messages]
    assert stats["stalls"] > 0


def test_short_messages_backpressure_but_stay_correct():
    rng = random.Random(11)
    messages = [(rng.randbytes(16), rng.randbytes(rng.randrange(4))) for _ in range(20)]
    tags, stats = run_messages(messages, seed=5, gap_prob=0.0, stall_prob=0.0)
    assert tags == [siphash24(k, msg) for k, msg in messages]
    assert stats["stalls"] > 0  # 1..3-byte messages arrive faster than 20+ clocks of finalization


def test_long_messages_wrap_the_length_byte():
    # SipHash's final word carries the length mod 256.
    rng = random.Random(256)
    messages = [(rng.randbytes(16), rng.randbytes(n)) for n in (255, 256, 257, 300)]
    tags, _ = run_messages(messages, seed=9, gap_prob=0.1, stall_prob=0.1)
    assert tags == [siphash24(k, msg) for k, msg in messages]


@pytest.mark.parametrize("length", [0, 1, 5, 7, 8, 9, 12, 13, 16, 31, 64])
def test_tag_latency(length):
    """The documented latency at one byte per clock: 28 clocks from the last
    transfer to a valid tag for messages under 8 bytes, 36 - length % 8 for
    longer ones (36: a full last word is followed by the length-only word)."""
    dut = SipHash24()
    key, message = bytes(range(16)), bytes(range(length))
    result = {}

    async def bench(ctx):
        ctx.set(dut.source.ready, 1)
        ctx.set(dut.key, int.from_bytes(key, "little"))
        beats = [{"data": b, "last": int(i == length - 1), "empty": 0} for i, b in enumerate(message)]
        for beat in beats or [{"data": 0, "last": 1, "empty": 1}]:
            ctx.set(dut.sink.payload, beat)
            ctx.set(dut.sink.valid, 1)
            while not ctx.get(dut.sink.ready):
                await ctx.tick()
            await ctx.tick()
        ctx.set(dut.sink.valid, 0)
        clocks = 0
        while not ctx.get(dut.source.valid):
            await ctx.tick()
            clocks += 1
        result["latency"] = clocks  # edges after the one that took the last transfer
        result["tag"] = ctx.get(dut.source.payload)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert result["tag"] == siphash24(key, message)
    if length < 8:
        assert result["latency"] == 28
    else:
        assert result["latency"] == 36 - length % 8
