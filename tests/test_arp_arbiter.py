"""ARP replies are what scapy expects; the frame arbiter never interleaves
frames, keeps each input's order and prefers the lowest input; with its
choice registered no input's ready follows another input's valid."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator
from scapy.layers.l2 import ARP, Ether

from twinplane.hdl.arp.responder import ArpResponder
from twinplane.hdl.stream.arbiter import FrameArbiter
from twinplane.sim.streams import frame_collector


@pytest.mark.parametrize("ready_p", [1.0, 0.5])
def test_arp_reply_frames(ready_p):
    # With the consumer's ready random as well: the responder picks each
    # byte a byte ahead, which must advance only with a byte taken.
    dut = ArpResponder()
    frames = []
    requests = [(0x02AABBCCDD01, 0x0A000001, 0x0A000064), (0x02AABBCCDD02, 0x0A000002, 0x0A640001)]
    rng = random.Random(7)

    async def bench(ctx):
        ctx.set(dut.own_mac, 0x02000000D0F5)
        for mac, ip, target in requests:
            ctx.set(dut.request.valid, 1)
            ctx.set(dut.request.payload, {"requester_mac": mac, "requester_ip": ip, "target_ip": target})
            await ctx.tick().until(dut.request.ready)
            ctx.set(dut.request.valid, 0)
        await ctx.tick().repeat(int(150 / ready_p))
        assert ctx.get(dut.replies) == 2

    async def consumer(ctx):
        while True:
            ctx.set(dut.source.ready, rng.random() < ready_p)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(bench)
    sim.add_process(consumer)
    sim.add_process(frame_collector(dut.source, frames))
    sim.run()
    assert [len(f) for f in frames] == [60, 60]
    for frame, (mac, ip, target) in zip(frames, requests, strict=True):
        packet = Ether(frame)
        arp = packet[ARP]
        assert packet.dst == arp.hwdst == ":".join(f"{b:02x}" for b in mac.to_bytes(6, "big"))
        assert packet.src == arp.hwsrc == "02:00:00:00:d0:f5"
        assert arp.op == 2 and arp.psrc == ".".join(str(b) for b in target.to_bytes(4, "big"))
        assert arp.pdst == ".".join(str(b) for b in ip.to_bytes(4, "big"))
        # Every byte, the constant header and the zero padding included (RFC 826).
        own = (0x02000000D0F5).to_bytes(6, "big")
        expected = (mac.to_bytes(6, "big") + own + bytes.fromhex("0806 0001 0800 06 04 0002") + own
                    + target.to_bytes(4, "big") + mac.to_bytes(6, "big") + ip.to_bytes(4, "big"))
        assert frame == expected + bytes(60 - len(expected))


@pytest.mark.parametrize("registered_choice", [False, True])
def test_arbiter_keeps_frames_whole_and_in_order(registered_choice):
    rng = random.Random(4)
    inputs = 3
    offered = [[bytes([i, n]) + rng.randbytes(rng.randint(0, 12)) for n in range(15)] for i in range(inputs)]
    dut = FrameArbiter(inputs, registered_choice=registered_choice)
    out = []

    def producer(i):
        async def run(ctx):
            for frame in offered[i]:
                for k, byte in enumerate(frame):
                    ctx.set(dut.sinks[i].valid, 1)
                    ctx.set(dut.sinks[i].payload, {"data": byte, "first": k == 0, "last": k == len(frame) - 1})
                    await ctx.tick().until(dut.sinks[i].ready)
                    ctx.set(dut.sinks[i].valid, 0)
                    if rng.random() < 0.2:
                        await ctx.tick()
        return run

    async def consumer(ctx):
        for _ in range(3000):
            ctx.set(dut.source.ready, rng.random() < 0.8)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    for i in range(inputs):
        sim.add_testbench(producer(i))
    sim.add_testbench(consumer)
    sim.add_process(frame_collector(dut.source, out))
    sim.run()
    for i in range(inputs):
        assert [f for f in out if f[0] == i] == offered[i]
    # priority: input 0 finishes before the others
    last_zero = max(k for k, f in enumerate(out) if f[0] == 0)
    assert last_zero < max(k for k, f in enumerate(out) if f[0] == 2)


def test_registered_choice_ready_does_not_follow_other_valid():
    """Clock by clock, input 1's ready is the same with input 0 valid or
    not (the plain arbiter's choice, and with it input 1's ready, follows
    input 0's valid between frames); frames of input 1 still pass."""
    dut = FrameArbiter(2, registered_choice=True)
    rng = random.Random(7)
    passed = []

    async def bench(ctx):
        ctx.set(dut.source.ready, 1)
        ctx.set(dut.sinks[1].valid, 1)
        for k in range(200):
            ctx.set(dut.sinks[1].payload, {"data": k & 0xFF, "first": 0, "last": k % 5 == 4})
            ctx.set(dut.sinks[0].valid, 0)
            alone = ctx.get(dut.sinks[1].ready)
            ctx.set(dut.sinks[0].valid, 1)
            ctx.set(dut.sinks[0].payload, {"data": 0, "first": 1, "last": 1})
            assert ctx.get(dut.sinks[1].ready) == alone
            ctx.set(dut.sinks[0].valid, rng.random() < 0.3 and not alone)
            passed.append(ctx.get(dut.sinks[1].ready))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(bench)
    sim.run()
    assert sum(passed) > 50
