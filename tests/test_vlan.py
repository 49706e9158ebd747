"""802.1Q VLANs as logical ports (hdl/vlan/): the split takes frames of one
physical port apart by VLAN id and removes the tag, the merge tags each
logical port's frames and interleaves them whole.  Random frames built with
scapy, random gaps and backpressure, in Amaranth's simulator."""

import random

import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from twinplane.hdl.vlan import VlanMerge, VlanSplit
from twinplane.sim.streams import FrameAssembler

VIDS = (10, 20)


def frame(r: random.Random, vid: int | None, size: int | None = None) -> bytes:
    """A frame tagged with ``vid`` (None: untagged), about ``size`` bytes."""
    inner = r.choice([
        IP(src="10.2.0.7", dst="10.0.0.100") / TCP(sport=r.randrange(1024, 65536), dport=80),
        IP(src="10.1.0.1", dst="10.2.0.7") / UDP(sport=53, dport=r.randrange(1024, 65536)),
        ARP(psrc="10.1.0.1", pdst="10.1.0.254"),
    ])
    l2 = Ether(src=f"02:00:00:00:00:{r.randrange(256):02x}", dst="02:00:00:00:fe:01")
    pkt = l2 / Dot1Q(vlan=vid, prio=r.randrange(8)) / inner if vid is not None else l2 / inner
    data = bytes(pkt)
    size = size or r.randrange(60, 200)
    return data + bytes(r.getrandbits(8) for _ in range(max(0, size - len(data))))


def untag(data: bytes) -> bytes:
    return data[:12] + data[16:]


def run(dut, testbenches):
    """Until every testbench has returned (the receivers once they hold
    every frame they expect)."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for t in testbenches:
        sim.add_testbench(t)
    sim.run()


def sender(stream, frames, r, gaps=True):
    async def send(ctx):
        for data in frames:
            for i, byte in enumerate(data):
                while gaps and r.random() < 0.2:
                    ctx.set(stream.valid, 0)
                    await ctx.tick()
                ctx.set(stream.valid, 1)
                ctx.set(stream.payload, {"data": byte, "first": i == 0, "last": i == len(data) - 1})
                await ctx.tick().until(stream.ready)
            ctx.set(stream.valid, 0)
            for _ in range(r.randrange(3) if gaps else 0):
                await ctx.tick()
        ctx.set(stream.valid, 0)
    return send


def receiver(stream, frames, r, expect, stall=0.3, gapless=None):
    """Collects frames (random ``ready``) until ``expect`` have arrived; with
    ``gapless`` (a list) records, per frame, whether valid stayed high from
    its first byte to its last."""
    async def receive(ctx):
        asm = FrameAssembler(frames)
        inside, gap = False, False
        while len(frames) < expect:
            ready = r.random() >= stall
            ctx.set(stream.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
            if inside and not valid:
                gap = True
            if valid and ready:
                asm.feed(payload)
                inside = not payload.last
                if payload.last and gapless is not None:
                    gapless.append(not gap)
                if payload.last:
                    gap = False
    return receive


def test_checks():
    for bad, message in [((), "non-empty tuple"), ((0, 5), "1..4094, not 0"), ((5, 5), "distinct"),
                         ((4095,), "1..4094, not 4095"), ("10", "non-empty tuple")]:
        with pytest.raises(ValueError, match=message):
            VlanSplit(bad)
        with pytest.raises(ValueError, match=message):
            VlanMerge(bad)


def test_split_by_vlan_drops_the_rest():
    seed = 1
    r = random.Random(seed)
    dut = VlanSplit(VIDS)
    sent, want = [], {0: [], 1: []}
    dropped = 0
    for _ in range(50):
        kind = r.choice(["a", "b", "a", "b", "other", "untagged", "short"])
        if kind in ("a", "b"):
            port = "ab".index(kind)
            data = frame(r, VIDS[port], r.choice([None, 60, 64, 64, 1518 if r.random() < 0.2 else 300]))
            want[port].append(untag(data))
        elif kind == "other":
            data, dropped = frame(r, r.choice([1, 11, 19, 4094])), dropped + 1
        elif kind == "untagged":
            data, dropped = frame(r, None), dropped + 1
        else:  # a tagged frame of the right VLAN that ends within or right after the tag
            data, dropped = frame(r, VIDS[0])[:r.randrange(1, 17)], dropped + 1
        sent.append(data)
    got = {0: [], 1: []}
    procs = [receiver(dut.sources[p], got[p], random.Random(seed + p), len(want[p])) for p in (0, 1)]
    send = sender(dut.sink, sent, r)

    async def bench(ctx):
        await send(ctx)
        for _ in range(100):  # the last frame's flush, at the receivers' pace
            await ctx.tick()
        assert ctx.get(dut.dropped) == dropped
    run(dut, testbenches=[bench, *procs])
    assert got == want


def test_merge_tags_and_interleaves_whole_frames():
    r = random.Random(3)
    dut = VlanMerge(VIDS)
    frames = {p: [frame(r, None, r.choice([None, 60, 600])) for _ in range(12)] for p in (0, 1)}
    got, gapless = [], []
    run(dut, testbenches=[receiver(dut.source, got, r, 24, stall=0.0, gapless=gapless),
                          *[sender(dut.sinks[p], frames[p], random.Random(p), gaps=False) for p in (0, 1)]])
    by_vlan = {p: [untag(f) for f in got if Ether(f)[Dot1Q].vlan == VIDS[p]] for p in (0, 1)}
    assert by_vlan == frames
    for f in got:
        tag = Ether(f)[Dot1Q]
        assert (Ether(f).type, tag.prio, tag.dei) == (0x8100, 0, 0)
    # Back to back in, back to back out (the MAC has no transmit FIFO).
    assert all(gapless), gapless
    # Round robin: both inputs always have a frame waiting, so they alternate.
    order = [Ether(f)[Dot1Q].vlan for f in got]
    assert all(a != b for a, b in zip(order[:22], order[1:23], strict=True)), order


def test_merge_then_split_is_identity_under_backpressure():
    r = random.Random(4)

    class Loop(wiring.Component):
        def __init__(self):
            self.merge, self.split = VlanMerge(VIDS), VlanSplit(VIDS)
            super().__init__({})

        def elaborate(self, platform):
            m = Module()
            m.submodules.merge, m.submodules.split = self.merge, self.split
            wiring.connect(m, self.merge.source, self.split.sink)
            return m

    dut = Loop()
    frames = {p: [frame(r, None) for _ in range(12)] for p in (0, 1)}
    got = {0: [], 1: []}
    run(dut, testbenches=[*[receiver(dut.split.sources[p], got[p], random.Random(10 + p), 12) for p in (0, 1)],
                          *[sender(dut.merge.sinks[p], frames[p], random.Random(p)) for p in (0, 1)]])
    assert got == frames
