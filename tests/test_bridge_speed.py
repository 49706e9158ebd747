"""The CXXRTL path of the speed bench (sim/bridge/speed.py): the loopback
compiled with write_cxxrtl + g++ carries back-to-back frames at full rate."""

import shutil

import pytest

from twinplane.sim.bridge.speed import cxxrtl_speed


def test_cxxrtl_loopback_full_rate():
    if shutil.which("g++") is None:
        print("skipped: no g++")
        pytest.skip("no g++")
    cycles = 100_000
    result = cxxrtl_speed("loopback", cycles)
    # Two ports, 64-byte frames, one byte per cycle each: all but the frames
    # still inside the FIFOs (a few cycles of latency) have come out.
    assert 2 * (cycles // 64) - 2 <= result["frames_out"] <= 2 * (cycles // 64)
    assert result["cycles_per_s"] > 0
