"""Smoke test of the CS benchmark: every figure is produced and no reply is lost."""

from twinplane.host.cs.bench import run_bench


def test_bench_small():
    figures = run_bench(quick=True, count=800, preload=20_000)
    assert figures["lost"] == 0
    assert figures["setups_per_s"] > 0 and figures["echo_per_s"] > 0 and figures["setups_per_s_at_1m_flows"] > 0
    assert figures["ratio"] == round(figures["setups_per_s"] / figures["echo_per_s"], 3)
    assert figures["preloaded_flows"] == 20_000
