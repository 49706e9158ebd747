"""The message port's shared SipHash core (HashArbiter) in Amaranth's
simulator: three clients hashing random messages at once, with random gaps
and random backpressure on the tags; every tag against the Python reference
(twinplane.protocol.siphash), a grant never split inside a message, and a
byte a clock through the arbiter when nothing stalls."""

import random

import pytest
from amaranth.sim import Simulator

from twinplane.hdl.msgport.hash_arbiter import HashArbiter
from twinplane.protocol.siphash import siphash24

KEY = bytes(range(16))


def _run(messages_per_client, *, seed, gap_prob, stall_prob):
    rng = random.Random(seed)
    dut = HashArbiter(len(messages_per_client))
    clients = [getattr(dut, f"client{i}") for i in range(len(messages_per_client))]
    tags = [[] for _ in clients]
    owner_log = []  # (clock, client) of every accepted byte
    clock = {"now": 0}

    def producer(i):
        client = clients[i]

        async def run(ctx):
            for message in messages_per_client[i]:
                transfers = [{"data": b, "last": int(k == len(message) - 1), "empty": 0}
                             for k, b in enumerate(message)] or [{"data": 0, "last": 1, "empty": 1}]
                for transfer in transfers:
                    while rng.random() < gap_prob:
                        await ctx.tick()
                    ctx.set(client.sink.payload, transfer)
                    ctx.set(client.sink.valid, 1)
                    while True:
                        ready = ctx.get(client.sink.ready)
                        await ctx.tick()
                        if ready:
                            owner_log.append((clock["now"], i))
                            break
                    ctx.set(client.sink.valid, 0)
                # A client waits for its tag before its next message (as the
                # session engine and the transmitter do).
                ctx.set(client.source.ready, 0)
                while True:
                    ready = rng.random() >= stall_prob
                    ctx.set(client.source.ready, ready)
                    valid = ctx.get(client.source.valid)
                    tag = ctx.get(client.source.payload)
                    await ctx.tick()
                    if valid and ready:
                        tags[i].append(tag)
                        break
                ctx.set(client.source.ready, 0)
        return run

    async def clock_counter(ctx):
        while True:
            await ctx.tick()
            clock["now"] += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(clock_counter)
    for i in range(len(clients)):
        sim.add_testbench(producer(i))

    async def key(ctx):
        ctx.set(dut.key, int.from_bytes(KEY, "little"))

    sim.add_testbench(key)
    sim.run_until(1e-8 * 200_000)
    return tags, owner_log


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clients_share_the_core(seed):
    rng = random.Random(seed)
    messages = [[rng.randbytes(rng.randrange(0, 40)) for _ in range(6)] for _ in range(3)]
    tags, owner_log = _run(messages, seed=seed, gap_prob=0.2, stall_prob=0.3)
    for i, client_messages in enumerate(messages):
        assert [hex(t) for t in tags[i]] == [hex(siphash24(KEY, msg)) for msg in client_messages], f"client {i}"
    # Bytes of different clients never interleave within a message: each
    # run of one client's bytes is whole messages of it.
    runs = []
    for _, i in owner_log:
        if runs and runs[-1][0] == i:
            runs[-1][1] += 1
        else:
            runs.append([i, 1])
    pending = {i: [max(len(msg), 1) for msg in messages[i]] for i in range(3)}
    for i, length in runs:
        taken = 0
        while taken < length:
            taken += pending[i].pop(0)
        assert taken == length, f"client {i}'s message was split by another client's bytes"
    assert not any(pending.values())


def test_a_byte_a_clock():
    message = bytes(range(64))
    _, owner_log = _run([[message]], seed=7, gap_prob=0.0, stall_prob=0.0)
    clocks = [t for t, _ in owner_log]
    # After the grant, the 64 bytes go in on 64 consecutive clocks (the
    # core takes a byte a clock, and the client's ready is never a stall).
    assert clocks[-1] - clocks[0] == len(message) - 1
