"""cocotb tests of GMIIMac: cocotbext-eth GMII models on the wire side,
frames built with scapy, verdicts and counters against sim/mac/model.py."""

import os
import random
import struct
import zlib

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, Timer
from cocotbext.eth import GmiiFrame, GmiiSink, GmiiSource, RgmiiSink, RgmiiSource
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from twinplane.sim.mac.model import rx_verdict

COUNTERS = ("rx_frames", "rx_bytes", "rx_fcs_errors", "rx_runts", "rx_oversize", "rx_drops", "tx_frames", "tx_bytes")


def bit(sig) -> int:
    """A 1-bit signal as int; X (Icarus leaves an always @* unevaluated until
    an input changes) reads as 0."""
    v = sig.value
    return int(v) if v.is_resolvable else 0


def scapy_frame(size: int, seed: int) -> bytes:
    """A UDP frame of ``size`` bytes without FCS (>= 42 bytes)."""
    rng = random.Random(seed)
    hdr = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(
        sport=rng.randrange(1024, 65536), dport=80
    )
    pad = size - len(hdr)
    return bytes(hdr / bytes(rng.randrange(256) for _ in range(pad)))[:size] if pad >= 0 else bytes(hdr)[:size]


async def start_shifted(sig, delay_ns):
    await Timer(delay_ns, unit="ns")
    Clock(sig, 8, unit="ns", impl="gpi").start()


class TB:
    """GMIIMac, or RGMIIMac(mode="sim") when MAC_PHY=rgmii: then the far side
    is RgmiiSource on rx_clk and RgmiiSink on the 90-degree tx90_clk."""

    def __init__(self, dut, rx_clock: str = "clk"):
        self.dut = dut
        self.max_frame = int(os.environ.get("MAC_MAX_FRAME", "1518"))
        rgmii = os.environ.get("MAC_PHY") == "rgmii"
        if rgmii:
            rx_clock = "rx_clk"
        # GPI clocks: no Python wake-up per edge (docs/simulation.md).
        Clock(dut.clk, 8, unit="ns", impl="gpi").start()
        rx_clk = getattr(dut, rx_clock)
        if rx_clock != "clk":
            Clock(rx_clk, 7.9, unit="ns", impl="gpi").start()
        self.rx_clk = rx_clk
        if rgmii:
            cocotb.start_soon(start_shifted(dut.tx90_clk, 2))
            self.source = RgmiiSource(dut.rgmii_rxd, dut.rgmii_rx_ctl, rx_clk)
            # Held in reset with the MAC: its outputs are X before (the GPI
            # clocks run from time 0).
            dut.rst.value = 1
            self.sink = RgmiiSink(dut.rgmii_txd, dut.rgmii_tx_ctl, dut.rgmii_tx_clk, reset=dut.rst)
            self.tx_en, self.txd = dut.phy.tx_en, dut.phy.txd
        else:
            self.source = GmiiSource(dut.rxd, dut.rx_er, dut.rx_dv, rx_clk)
            self.sink = GmiiSink(dut.txd, dut.tx_er, dut.tx_en, dut.clk)
            self.tx_en, self.txd = dut.tx_en, dut.txd
        self.received = []  # frames from the MAC's source stream
        self.expect_rx = []
        self.count = dict.fromkeys(COUNTERS, 0)
        self.min_gap = None
        self.preambles = 0
        dut.sink__valid.value = 0
        dut.source__ready.value = 1
        cocotb.start_soon(self._collect())
        cocotb.start_soon(self._watch_gap())

    async def reset(self):
        resets = [self.dut.rst] + [getattr(self.dut, n) for n in ("rx_rst", "tx90_rst") if hasattr(self.dut, n)]
        for r in resets:
            r.value = 1
        await ClockCycles(self.dut.clk, 4)
        for r in resets:
            r.value = 0
        await ClockCycles(self.dut.clk, 4)

    async def _collect(self):
        cur = None
        while True:
            await RisingEdge(self.dut.clk)
            if bit(self.dut.source__valid) and bit(self.dut.source__ready):
                p = int(self.dut.source__payload.value)
                first, last = (p >> 8) & 1, (p >> 9) & 1
                if first:
                    assert cur is None, "first inside a frame"
                    cur = bytearray()
                assert cur is not None, "byte outside a frame"
                cur.append(p & 0xFF)
                if last:
                    self.received.append(bytes(cur))
                    cur = None

    async def _watch_gap(self):
        """Check every preamble byte by byte (GmiiSink misses the first byte
        of a burst after idle) and keep the smallest inter-frame gap."""
        gap = None
        pre = None
        while True:
            await RisingEdge(self.dut.clk)
            if bit(self.tx_en):
                if gap is None or gap > 0:
                    pre = bytearray()
                if gap is not None and gap > 0:
                    self.min_gap = gap if self.min_gap is None else min(self.min_gap, gap)
                gap = 0
                if pre is not None:
                    pre.append(int(self.txd.value))
                    if len(pre) == 8:
                        assert bytes(pre) == PRE, f"bad preamble {bytes(pre).hex()}"
                        self.preambles += 1
                        pre = None
            elif gap is not None:
                gap += 1

    def offer_rx(self, wire: bytes, error_at=None):
        """Queue one rx_dv burst and note what the MAC must make of it."""
        frame = GmiiFrame(wire)
        if error_at is not None:
            frame.error = [1 if i == error_at else 0 for i in range(len(wire))]
        self.source.send_nowait(frame)
        verdict = rx_verdict(wire, error_at is not None and error_at >= 8, self.max_frame)
        if verdict is None:
            return
        kind, payload = verdict
        if kind == "good":
            self.expect_rx.append(payload)
            self.count["rx_frames"] += 1
            self.count["rx_bytes"] += len(payload)
        else:
            self.count[{"fcs": "rx_fcs_errors", "runt": "rx_runts", "oversize": "rx_oversize"}[kind]] += 1

    async def send_tx(self, frames):
        """Drive the MAC's sink with ``frames``, a random valid pattern between frames."""
        dut = self.dut
        for data in frames:
            for i, b in enumerate(data):
                dut.sink__valid.value = 1
                dut.sink__payload.value = b | ((i == 0) << 8) | ((i == len(data) - 1) << 9)
                await RisingEdge(dut.clk)
                while not bit(dut.sink__ready):
                    await RisingEdge(dut.clk)
            dut.sink__valid.value = 0
            self.count["tx_frames"] += 1
            self.count["tx_bytes"] += len(data)

    async def check_tx(self, frames):
        for data in frames:
            got = await self.sink.recv()
            assert got.data[got.get_preamble_len() - 1] == 0xD5, "no SFD"
            assert got.check_fcs(), "bad FCS on transmit"
            want = data + bytes(max(0, 60 - len(data)))
            assert got.get_payload() == want, f"tx mismatch at length {len(data)}"
            assert got.error is None or not any(got.error), "tx_er raised"

    async def finish(self):
        await self.source.wait()
        # Store-and-forward: the last frame is read out only after it ended.
        # (A Timer, not ClockCycles: no Python wake-up per clock.)
        await Timer((2 * self.max_frame + 3000) * 8, unit="ns")
        assert len(self.received) == len(self.expect_rx), (len(self.received), len(self.expect_rx))
        for i, (got, want) in enumerate(zip(self.received, self.expect_rx, strict=True)):
            assert got == want, f"rx frame {i}: length {len(got)} != {len(want)} or content differs"
        for name in COUNTERS:
            assert int(getattr(self.dut, name).value) == self.count[name], (
                name, int(getattr(self.dut, name).value), self.count[name])
        assert self.sink.empty()
        assert self.preambles == self.count["tx_frames"], (self.preambles, self.count["tx_frames"])
        if self.min_gap is not None:
            assert self.min_gap >= 12, f"inter-frame gap {self.min_gap} < 12"


def with_fcs(frame: bytes) -> bytes:
    return frame + struct.pack("<L", zlib.crc32(frame))


PRE = b"\x55" * 7 + b"\xd5"


@cocotb.test()
async def test_bad_frames(dut):
    """Bad FCS, runts, oversize, rx_er, cut-off frames, no SFD, random bytes,
    interleaved with good frames at minimum gap; nothing may stall."""
    tb = TB(dut, os.environ.get("MAC_RX_CLOCK", "clk"))
    await tb.reset()
    rng = random.Random(1)
    mf = tb.max_frame
    # Edges first, whatever the random draw: largest good frame, one byte
    # over, smallest good frame, one byte under (valid FCS), a 1-byte frame.
    cases = [(PRE + with_fcs(scapy_frame(n, n)), None) for n in (mf - 4, mf - 3, 60, 59)]
    cases.append((PRE + b"\x42", None))
    for n in range(int(os.environ.get("MAC_CASES", "300"))):
        size = rng.choice([60, 61, 100, 500, 1514, mf - 4, rng.randrange(60, mf - 3)])
        good = PRE + with_fcs(scapy_frame(size, n))
        kind = rng.randrange(10)
        if kind == 0:  # bad FCS
            bad = bytearray(good)
            bad[rng.randrange(8, len(bad))] ^= 1 << rng.randrange(8)
            cases.append((bytes(bad), None))
        elif kind == 1:  # runt, good or bad FCS
            cases.append((PRE + with_fcs(scapy_frame(rng.randrange(1, 60), n)) if rng.randrange(2) else PRE + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))), None))
        elif kind == 2:  # oversize with a valid FCS
            cases.append((PRE + with_fcs(scapy_frame(rng.randrange(mf - 3, mf + 200), n)), None))
        elif kind == 3:  # cut off mid-frame
            cases.append((good[: rng.randrange(1, len(good))], None))
        elif kind == 4:  # rx_er somewhere in the frame
            cases.append((good, rng.randrange(8, len(good))))
        elif kind == 5:  # random bytes, maybe with a preamble in front
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
            cases.append(((b"\x55" * rng.randrange(3) + junk), None))
        else:
            cases.append((good, None))
    for wire, err in cases:
        tb.offer_rx(wire, err)
    # Short frames on TX need padding.
    tx_frames = [scapy_frame(rng.randrange(1, 120) if rng.randrange(2) else rng.randrange(42, 300), 900 + i)
                 for i in range(100)]
    checker = cocotb.start_soon(tb.check_tx(tx_frames))
    await tb.send_tx(tx_frames)
    await checker
    await tb.finish()
