# amaranth: UnusedElaboratable=no
"""The command-driven rewriter (hdl/rewrite/command_rewriter.py) against the
reference model (twinplane.model.rewrite) and, for non-fragments, scapy's
recomputation: random frames (TCP/UDP/ICMP, VLAN, options, UDP 0, first and
later fragments) with random commands (both sides, seq/ack offsets, drop);
back-to-back at full rate (no bubble allowed) and with random back-pressure
and sink gaps; checksum corners; constructor check."""

from __future__ import annotations

import dataclasses
import random

import pytest
from amaranth.sim import Simulator
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.l2 import Dot1Q, Ether
from test_rewriter_model import (
    _free_word_for_zero_checksum,
    command_for,
    expected,
    random_changes,
    tcp_frame,
    udp_frame,
)
from test_rewriter_model import random_frame as random_plain_frame

from twinplane.hdl.rewrite.command_rewriter import CommandRewriter
from twinplane.hdl.rewrite.layout import command_value
from twinplane.model.rewrite import RewriteCommandModel, rewrite_frame


def run(cases, *, ready_chance=1.0, gap_chance=0.0, seed=0, **options):
    """(frame, command) pairs through the rewriter (``options``: its
    constructor's): (frames out, source.valid trace from the first byte out
    -- 1 a byte, 0 an idle clock between frames, -1 an idle clock inside a
    frame --, first-byte latency in clocks)."""
    dut = CommandRewriter(**options)
    rng = random.Random(seed)
    want = sum(not c.drop for _, c in cases)
    out: list[bytes] = []
    trace: list[int] = []
    times = {"in": None, "out": None}

    async def commands(ctx):
        for _, c in cases:
            ctx.set(dut.command.valid, 1)
            ctx.set(dut.command.payload, command_value(c))
            await ctx.tick().until(dut.command.ready)
        ctx.set(dut.command.valid, 0)

    async def frames(ctx):
        for frame, _ in cases:
            i = 0
            while i < len(frame):
                if rng.random() < gap_chance:
                    ctx.set(dut.sink.valid, 0)
                    await ctx.tick()
                    continue
                ctx.set(dut.sink.valid, 1)
                ctx.set(dut.sink.payload, {"data": frame[i], "first": i == 0, "last": i == len(frame) - 1})
                await ctx.tick().until(dut.sink.ready)
                i += 1
        ctx.set(dut.sink.valid, 0)

    async def consumer(ctx):
        clock = 0
        frame = bytearray()
        while len(out) < want:
            ready = rng.random() < ready_chance
            ctx.set(dut.source.ready, ready)
            if times["in"] is None and ctx.get(dut.sink.valid):
                times["in"] = clock
            valid = ctx.get(dut.source.valid)
            if out or frame:
                trace.append(1 if valid else -1 if frame else 0)
            if valid and ready:
                times["out"] = clock if times["out"] is None else times["out"]
                assert bool(ctx.get(dut.source.payload.first)) == (not frame)
                frame.append(ctx.get(dut.source.payload.data))
                if ctx.get(dut.source.payload.last):
                    out.append(bytes(frame))
                    frame = bytearray()
            await ctx.tick()
            clock += 1
            assert clock < 200_000, "rewriter stalled"

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(commands)
    sim.add_testbench(frames)
    sim.add_testbench(consumer)
    sim.run()
    return out, trace, times["out"] - times["in"]


def random_case(rng: random.Random, *, drops: bool):
    if rng.random() < 0.2:  # a fragment of a TCP/UDP datagram: first or later
        l4 = TCP(sport=rng.getrandbits(16), seq=rng.getrandbits(32)) if rng.random() < 0.5 else UDP(sport=9)
        whole = IP(bytes(IP(src="192.0.2.1", dst="198.51.100.2", id=rng.getrandbits(16)) / l4
                         / rng.randbytes(150)))
        frame = bytes(Ether(src="02:00:00:00:00:0c") / rng.choice(fragment(whole, fragsize=48)))
    else:
        frame = random_plain_frame(rng)
    c = command_for(frame, **random_changes(rng), drop=drops and rng.random() < 0.15)
    return frame, c


def check(cases, got):
    kept = [(f, c) for f, c in cases if not c.drop]
    for (frame, c), result in zip(kept, got, strict=True):
        assert result == rewrite_frame(frame, c), Ether(frame).summary()
        if not Ether(frame)[IP].flags.MF and Ether(frame)[IP].frag == 0:  # scapy recomputes whole datagrams
            assert result == expected(frame, c), Ether(frame).summary()


def test_back_to_back_full_rate():
    rng = random.Random(2)
    cases = [random_case(rng, drops=False) for _ in range(50)]
    got, trace, latency = run(cases)
    check(cases, got)
    # Bytes of a frame back to back; at most one idle clock between frames
    # (the command register loads when a frame's first byte is at the output).
    assert trace.count(-1) == 0, f"{trace.count(-1)} bubbles inside frames"
    assert trace.count(0) <= len(cases) - 1, f"{trace.count(0)} idle clocks between {len(cases)} frames"
    # The 8-byte line, the output register, and a clock for the first
    # command, which comes with the first byte (the rewriter sees a command
    # waiting from a flop).
    assert latency == 10


def test_random_backpressure_gaps_and_drops():
    rng = random.Random(1624)
    cases = [random_case(rng, drops=True) for _ in range(80)]
    assert any(c.drop for _, c in cases) and any(not c.l4_valid for _, c in cases)
    got, _, _ = run(cases, ready_chance=0.7, gap_chance=0.2, seed=4)
    check(cases, got)


def test_held_source_mac():
    """``held_eth_src``: one source MAC for every frame (the DFS's own), read
    from ``command`` where it stands: the same frames as a copied one, with
    back-pressure and gaps, and back to back at full rate."""
    rng = random.Random(6)
    mac = 0x0200_0000_D0F5
    cases = [(f, dataclasses.replace(c, eth_src=mac)) for f, c in (random_case(rng, drops=True) for _ in range(40))]
    got, _, _ = run(cases, ready_chance=0.7, gap_chance=0.2, seed=7, held_eth_src=True)
    check(cases, got)
    assert all(Ether(f).src == "02:00:00:00:d0:f5" for f in got)
    kept = [case for case in cases if not case[1].drop]
    got, trace, latency = run(kept, held_eth_src=True)
    check(kept, got)
    assert trace.count(-1) == 0 and latency == 10  # as test_back_to_back_full_rate


@pytest.mark.parametrize("kind", ["ip", "tcp", "udp"])
def test_checksum_corners_and_nat_directions(kind):
    frame = udp_frame() if kind == "udp" else tcp_frame(seq=2**32 - 1, ack=5)
    c = command_for(frame, set_dst_ip=True, new_dst_ip=0, set_dst_port=True, new_dst_port=0)
    c = _free_word_for_zero_checksum(frame, c, "new_dst_ip" if kind == "ip" else "new_dst_port")
    back = command_for(frame, set_src_ip=True, new_src_ip=0x0A000064, set_src_port=True, new_src_port=80,
                       add_offsets=True, seq_delta=3, ack_delta=2**32 - 6)
    zero = udp_frame(zero=True)
    cases = [(frame, c), (frame, back), (zero, command_for(zero, set_dst_ip=True, new_dst_ip=0x0A010005)),
             (frame, dataclasses.replace(back, drop=True)), (frame, c)]
    got, _, _ = run(cases)
    check(cases, got)
    p = Ether(got[0])
    ck = {"ip": p[IP].chksum, "tcp": p[TCP].chksum if TCP in p else None, "udp": p[UDP].chksum if UDP in p else None}
    assert ck[kind] == (0xFFFF if kind == "udp" else 0x0000)
    assert Ether(got[2])[UDP].chksum == 0


def test_long_frames_past_512_bytes():
    """Frames longer than the 9-bit byte positions: the input side's
    positions wrap after 512 bytes (a capture fires again in the payload),
    the output side's stop at 511; neither may touch the long frame's tail
    or the next frame's fields."""
    rng = random.Random(512)
    cases = []
    for vlan in (False, True):
        for l4 in (TCP(sport=40001, dport=80, seq=rng.getrandbits(32), ack=rng.getrandbits(32)), UDP(sport=9, dport=53)):
            eth = Ether(src="02:00:00:00:00:0c") / (Dot1Q(vlan=5) if vlan else IP(src="192.0.2.7", dst="198.51.100.10"))
            if vlan:
                eth = eth / IP(src="192.0.2.7", dst="198.51.100.10")
            frame = bytes(eth / l4 / rng.randbytes(1400))
            cases.append((frame, command_for(frame, **random_changes(rng))))
            short = tcp_frame(vlan=vlan)
            cases.append((short, command_for(short, set_src_ip=True, new_src_ip=0x0A000064, add_offsets=True,
                                             seq_delta=7, ack_delta=9)))
    assert all(len(f) > 1400 for f, _ in cases[::2])
    got, _, _ = run(cases, ready_chance=0.8, gap_chance=0.1, seed=5)
    check(cases, got)


@pytest.mark.parametrize("ready_chance", [1.0, 0.6])
def test_runts_back_to_back_each_with_its_own_command(ready_chance):
    """Frames of 1 to 12 bytes, a frame's first byte right behind the last
    one's: each takes its own command (its MACs, its drop), never the one
    before's.  Their L3/L4 offsets lie past their ends, so only the MACs
    change."""
    rng = random.Random(12)
    cases = []
    for k in range(60):
        frame = rng.randbytes(rng.randint(1, 12))
        c = RewriteCommandModel(eth_dst=0x02_0000_0000_00 + k, eth_src=0x02_0000_0100_00 + k, l3_offset=14,
                                l4_offset=34, protocol=17, old_src_ip=0, old_dst_ip=0, l4_valid=False,
                                drop=rng.random() < 0.3)
        cases.append((frame, c))
    assert any(len(f) == 1 for f, _ in cases)
    got, _, _ = run(cases, ready_chance=ready_chance, seed=3)
    want = [(c.eth_dst.to_bytes(6, "big") + c.eth_src.to_bytes(6, "big"))[:len(f)] for f, c in cases if not c.drop]
    assert got == want


def test_constructor_check():
    with pytest.raises(ValueError, match="data_width must be 8 \\(one byte per clock\\), not 16"):
        CommandRewriter(16)
