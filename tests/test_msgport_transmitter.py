"""The gateware message transmitter's frames are valid Ethernet/IPv4/UDP
(scapy checks them) and carry exactly the message the host would send, tag
included."""

from __future__ import annotations

import ipaddress
import random

from amaranth import Cat, Elaboratable, Module, Signal
from amaranth.sim import Simulator
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from twinplane.hdl.msgport.layout import DFS_SENDS, MAX_SENT_BYTES, READ_LATENCY
from twinplane.hdl.msgport.transmitter import MessageTransmitter
from twinplane.protocol.codec import Codec
from twinplane.protocol.codes import CSMB_UDP_PORT, SSMB_UDP_PORT, Bus
from twinplane.protocol.messages import TAG_SIZE
from twinplane.protocol.samples import random_block
from twinplane.sim.streams import frame_collector

KEY = bytes(range(16, 32))
OWN_MAC, OWN_IP = 0x020000AA0001, 0x0A640001


class Producer(Elaboratable):
    """The transmitter and what a producer does for it: answer ``read``
    with the byte asked for, READ_LATENCY clocks later, here from a register
    holding the message; it also checks that the reader asks in order."""

    def __init__(self):
        self.dut = MessageTransmitter()
        self.raw = Signal(8 * MAX_SENT_BYTES)  # signed bytes, first on top

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        wire_order = Cat(*(self.raw.word_select(MAX_SENT_BYTES - 1 - k, 8) for k in range(MAX_SENT_BYTES)))
        # READ_LATENCY clocks from the ask to the byte: a register per clock.
        stages = [Signal(8, name=f"stage{i}") for i in range(READ_LATENCY - 1)] + [dut.read.byte]
        with m.If(dut.read.en):
            m.d.sync += stages[0].eq(wire_order.word_select(dut.read.index, 8))
        for a, b in zip(stages, stages[1:], strict=False):
            m.d.sync += b.eq(a)
        return m


def run_transmitter(jobs, ready_chance=1.0, seed=0):
    top = Producer()
    dut = top.dut
    frames: list[bytes] = []
    rng = random.Random(seed)

    async def producer(ctx):
        ctx.set(dut.key, int.from_bytes(KEY, "little"))
        ctx.set(dut.own_mac, OWN_MAC)
        ctx.set(dut.own_ip, OWN_IP)
        for bus, signed, dst in jobs:
            raw = int.from_bytes(signed, "big") << 8 * (MAX_SENT_BYTES - len(signed))
            ctx.set(dut.sink.valid, 1)
            ctx.set(top.raw, raw)
            ctx.set(
                dut.sink.payload,
                {"bus": int(bus), "length": len(signed), "dst_mac": dst[0], "dst_ip": dst[1], "dst_port": dst[2]},
            )
            await ctx.tick().until(dut.sink.ready)
            ctx.set(dut.sink.valid, 0)

    async def consumer(ctx):
        # Random backpressure; the monitor below records what was transferred.
        while len(frames) < len(jobs):
            ctx.set(dut.source.ready, rng.random() < ready_chance)
            await ctx.tick()

    async def monitor(ctx):
        # The reader asks for the message in order, from byte 0, once per
        # pass; a frame, once started, has no gap (a MAC cannot pause).
        expected, in_frame = 0, False
        async for _clk, _rst, en, index, valid, ready, last in ctx.tick().sample(
            dut.read.en, dut.read.index, dut.source.valid, dut.source.ready, dut.source.payload.last
        ):
            if en:
                assert index in (expected, 0), f"asked for byte {index}, expected {expected} or 0"
                expected = index + 1
            assert valid or not in_frame, "gap inside a frame"
            if valid and ready:
                in_frame = not last

    sim = Simulator(top)
    sim.add_clock(8e-9)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.add_process(monitor)
    sim.add_process(frame_collector(dut.source, frames))
    sim.run()
    return frames


def test_frames_carry_the_hosts_messages():
    rng = random.Random(5)
    codec = Codec(KEY)
    msgs = [random_block(cls, rng) for cls in DFS_SENDS for _ in range(2)]
    jobs = []
    for n, msg in enumerate(msgs):
        signed = codec.encode(msg)[:-TAG_SIZE]
        jobs.append((msg.BUS, signed, (0x02000000BB00 + n, 0x0A640000 + 10 + n, 40000 + n)))
    frames = run_transmitter(jobs, ready_chance=0.8)
    assert len(frames) == len(msgs)
    for n, (frame, msg) in enumerate(zip(frames, msgs, strict=True)):
        packet = Ether(frame)
        assert packet.dst == f"02:00:00:00:bb:{n:02x}" and packet.src == "02:00:00:aa:00:01"
        ip_sum = packet[IP].chksum
        del packet[IP].chksum
        assert Ether(bytes(packet))[IP].chksum == ip_sum, "IPv4 header checksum"
        assert packet[IP].src == "10.100.0.1" and packet[IP].dst == f"10.100.0.{10 + n}"
        assert packet[IP].len == len(frame) - 14 and packet[IP].ttl == 64 and packet[IP].flags == "DF"
        udp = packet[UDP]
        assert udp.sport == (CSMB_UDP_PORT if msg.BUS is Bus.CSMB else SSMB_UDP_PORT)
        assert udp.dport == 40000 + n and udp.chksum == 0 and udp.len == len(frame) - 34
        payload = bytes(udp.payload)
        assert payload == codec.encode(msg)
        assert codec.decode(msg.BUS, payload) == [msg]
    assert len({Ether(f)[IP].id for f in frames}) == len(frames)


def test_ip_checksum_carries():
    """The IPv4 header checksum is summed a word a clock, its carries added
    back: destinations whose words carry (the last one too), and one whose
    sum is 0xFFFF (checksum 0), against scapy's."""
    codec = Codec(KEY)
    rng = random.Random(11)
    msgs = [random_block(DFS_SENDS[0], rng) for _ in range(8)]
    signed = [codec.encode(msg)[:-TAG_SIZE] for msg in msgs]

    def partial(n, dst_hi):
        """The one's complement sum of frame n's header but dst_ip's low word."""
        words = [0x4500, 20 + 8 + len(signed[n]) + TAG_SIZE, n, 0x4000, 64 << 8 | 17, OWN_IP >> 16, OWN_IP & 0xFFFF,
                 dst_hi]
        total = sum(words)
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        return total

    dsts = [0xFFFFFFFF, 0xFFFF0000, 0x0000FFFF, 0xFFFEFFFF, 0xF0F0F0F0, 0x8000FFFF]
    dsts.append(0xFFF00000 | (0xFFFF - partial(6, 0xFFF0)))  # the sum is 0xFFFF: checksum 0
    dsts.append(0xFFFF0000 | (0x1FFFE - partial(7, 0xFFFF)) & 0xFFFF)
    jobs = [(msg.BUS, s, (0x02000000BB00, dst, 40000)) for msg, s, dst in zip(msgs, signed, dsts, strict=True)]
    frames = run_transmitter(jobs)
    assert Ether(frames[6])[IP].chksum == 0
    for frame, dst in zip(frames, dsts, strict=True):
        packet = Ether(frame)
        assert packet[IP].dst == str(ipaddress.IPv4Address(dst))
        ip_sum = packet[IP].chksum
        del packet[IP].chksum
        assert Ether(bytes(packet))[IP].chksum == ip_sum, f"IPv4 header checksum to {dst:#x}"
