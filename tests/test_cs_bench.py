"""Smoke test of the CS benchmark: every figure is produced and no reply is lost."""

import os
import time

from twinplane.host.cs.bench import _cpu_seconds, run_bench


def test_bench_small():
    figures = run_bench(quick=True, count=800, preload=20_000)
    assert figures["lost"] == 0
    assert figures["setups_per_s"] > 0 and figures["echo_per_s"] > 0 and figures["setups_per_s_at_1m_flows"] > 0
    assert figures["ratio"] == round(figures["setups_per_s"] / figures["echo_per_s"], 3)
    assert figures["preloaded_flows"] == 20_000
    for name in ("cpu_us_per_setup", "cpu_us_per_setup_at_1m_flows", "echo_cpu_us_per_reply"):
        assert figures[name] is not None and figures[name] >= 0  # Linux: /proc is there


def test_cpu_seconds_of_a_process():
    before = _cpu_seconds(os.getpid())
    end = time.process_time() + 0.2
    while time.process_time() < end:
        pass
    assert 0.1 <= _cpu_seconds(os.getpid()) - before <= 5
    assert _cpu_seconds(2**22 + 12345) is None  # no such process
