"""cocotb sweep of every frame size through a MAC looped back on itself
(sim/mac/loopback.py): cocotbext-eth's GMII or RGMII source sends every size
64..1518 (FCS included) back to back at the minimum gap, its sink takes what
the transmitter sends, and each frame is checked as it arrives.

# Ref: IEEE 802.3-2018 §3.2 (frame), §4.2.3.2.1 (inter-frame gap)

Speed is the point of this file's shape (docs/simulation.md): GPI clocks,
waits as simulated time instead of clock counting, no coroutine of ours on
any clock edge, and the models' per-frame log lines off.  Checked per frame:
payload equal to what was sent, valid FCS, a 7-byte preamble and SFD, no
tx_er, at least 12 idle clocks before it; at the end: every frame out, the
transmitter kept line rate (it ends within one frame time of the receiver),
and every counter equals what was sent.
"""

import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, Timer
from cocotb.utils import get_sim_time
from cocotbext.eth import GmiiFrame, GmiiSink, GmiiSource, RgmiiSink, RgmiiSource
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

__all__ = ["sweep_frames", "sweep_sizes"]

PERIOD_PS = 8000
# RGMII: the PHY's receive clock runs 500 ppm slower than the core clock, so
# the transmitter can always keep up (a faster one would fill the FIFO).
RX_PERIOD_PS = 8004
PREAMBLE = b"\x55" * 7 + b"\xd5"
IFG = 12


def sweep_sizes(mode: str) -> list[int]:
    """Frame sizes (FCS included), largest first: then the transmitter, which
    sends frame n while frame n+1 (shorter) arrives, always has the next frame
    ready and must hold exactly the minimum gap.  ``"full"``: every size
    64..1518; ``"ci"``: every size 64..127 and every 67th size up to 1518
    (86 sizes, 26 k clocks, a 45th of the full sweep), to keep CI's time."""
    if mode == "full":
        sizes = set(range(64, 1519))
    elif mode == "ci":
        sizes = set(range(64, 128)) | set(range(128, 1519, 67)) | {1518}
    else:
        raise ValueError(f"MAC_SWEEP must be 'full' or 'ci', not {mode!r}")
    return sorted(sizes, reverse=True)


def sweep_frames(sizes: list[int], seed: int = 0) -> list[bytes]:
    """One UDP frame per size (FCS included, so payloads of size - 4 bytes),
    each with its own header fields and random payload bytes."""
    rng = random.Random(seed)
    frames = []
    for size in sizes:
        hdr = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                    / IP(src="10.0.0.1", dst="10.0.0.2", id=size)
                    / UDP(sport=rng.randrange(1024, 65536), dport=80))
        frames.append(hdr + rng.randbytes(size - 4 - len(hdr)))
    return frames


async def _start_late(sig, period_ps, delay_ps):
    await Timer(delay_ps, unit="ps")
    Clock(sig, period_ps, unit="ps", impl="gpi").start()


@cocotb.test()
async def sweep_every_size(dut):
    rgmii = os.environ.get("MAC_PHY", "gmii") == "rgmii"
    sizes = sweep_sizes(os.environ.get("MAC_SWEEP", "ci"))
    hi = max(sizes)
    Clock(dut.clk, PERIOD_PS, unit="ps", impl="gpi").start()
    resets = [dut.rst]
    for r in resets:
        r.value = 1
    if rgmii:
        Clock(dut.rx_clk, RX_PERIOD_PS, unit="ps", impl="gpi").start()
        cocotb.start_soon(_start_late(dut.tx90_clk, PERIOD_PS, PERIOD_PS // 4))
        resets += [dut.rx_rst, dut.tx90_rst]
        source = RgmiiSource(dut.rgmii_rxd, dut.rgmii_rx_ctl, dut.rx_clk)
        # Held in reset until the MAC is: its outputs are X before.
        sink = RgmiiSink(dut.rgmii_txd, dut.rgmii_tx_ctl, dut.rgmii_tx_clk, reset=dut.rst)
    else:
        source = GmiiSource(dut.rxd, dut.rx_er, dut.rx_dv, dut.clk)
        sink = GmiiSink(dut.txd, dut.tx_er, dut.tx_en, dut.clk, reset=dut.rst)
    for model in (source, sink):
        model.log.setLevel(logging.WARNING)  # one line per frame, each the whole frame
    for r in resets:
        r.value = 1
    await Timer(10 * PERIOD_PS, unit="ps")
    for r in resets:
        r.value = 0
    await Timer(10 * PERIOD_PS, unit="ps")

    frames = sweep_frames(sizes)
    for f in frames:
        source.send_nowait(GmiiFrame.from_payload(f))
    # GmiiSink skips the first byte of a burst after idle (it sleeps until
    # tx_en rises, then waits for the next edge): a watcher waking once per
    # frame notes when each burst truly starts and its first byte (RGMII: its
    # first nibble), for the preamble and the gaps.
    starts = []
    # RGMII: the adapter's GMII side (tx_ctl glitches between DDR edges);
    # the DDR output registers add a fixed delay, so the gaps are the wire's.
    en, txd = (dut.mac.phy.tx_en, dut.mac.phy.txd) if rgmii else (dut.tx_en, dut.txd)
    cocotb.start_soon(_watch_starts(en, txd, starts))
    checker = cocotb.start_soon(_check_out(sink, frames, starts, missed=0 if rgmii else 1))
    await source.wait()
    rx_end = get_sim_time("ps")
    # Store and forward: the last frame leaves after it has been received.
    await Timer((hi + len(PREAMBLE) + 200) * PERIOD_PS, unit="ps")
    assert checker.done(), f"{sink.count()} frames waiting, checker stuck"
    stats = checker.result()
    assert stats["frames"] == len(frames), (stats["frames"], len(frames))
    # Line rate: the transmitter's last frame ends within one frame time (+
    # a fixed latency) of the receiver's; a transmitter that lost a clock per
    # frame would be 1455 clocks behind.
    lag = (stats["last_end"] - rx_end) / PERIOD_PS
    assert lag <= hi + len(PREAMBLE) + 64, f"transmitter {lag} clocks behind the receiver"
    dut._log.info("%d sizes %d..%d: inter-frame gaps %d..%d clocks, tx ends %d clocks after rx",
                  stats["frames"], min(sizes), hi, stats["min_gap"], stats["max_gap"], lag)
    if not rgmii:  # one clock: the transmitter is never starved, so exactly the minimum
        assert stats["min_gap"] == stats["max_gap"] == IFG, (stats["min_gap"], stats["max_gap"])
    nbytes = sum(len(f) for f in frames)
    want = {"rx_frames": len(frames), "rx_bytes": nbytes, "tx_frames": len(frames), "tx_bytes": nbytes,
            "rx_fcs_errors": 0, "rx_runts": 0, "rx_oversize": 0, "rx_drops": 0}
    got = {name: int(getattr(dut, name).value) for name in want}
    assert got == want


async def _watch_starts(en, data, starts):
    while True:
        await en.rising_edge
        await ReadOnly()
        starts.append((get_sim_time("ps"), int(data.value)))


async def _check_out(sink, frames, starts, missed):
    """Check each frame as the sink delivers it (``missed``: preamble bytes
    the sink does not see); return the gap statistics."""
    min_gap, max_gap = None, 0
    for i, want in enumerate(frames):
        got = await sink.recv()
        what = f"frame {i} ({len(want) + 4} bytes)"
        data = bytes(got.data)
        assert starts[i][1] == 0x55, f"{what}: first byte {starts[i][1]:#x}"
        assert missed + data.find(b"\xd5") == 7 and set(data[: 7 - missed]) == {0x55}, f"{what}: preamble {data.hex()}"
        assert got.check_fcs(), f"{what}: bad FCS"
        assert got.get_payload() == want, f"{what}: payload differs"
        assert got.error is None or not any(got.error), f"{what}: tx_er raised"
        if i:
            # Idle clocks between the bursts: start to start minus the burst.
            gap = round((starts[i][0] - starts[i - 1][0]) / PERIOD_PS) - len(PREAMBLE) - len(frames[i - 1]) - 4
            assert gap >= IFG, f"{what}: inter-frame gap {gap} < {IFG}"
            min_gap = gap if min_gap is None else min(min_gap, gap)
            max_gap = max(max_gap, gap)
    return {"frames": len(frames), "min_gap": min_gap, "max_gap": max_gap, "last_end": got.sim_time_end}
