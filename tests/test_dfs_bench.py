"""`twinplane bench dfs` at small scale: established flows keep line rate on
both ports, also while a SYN flood fills the miss path."""

from twinplane.sim.dfs.bench import run_bench


def test_dfs_bench_line_rate_and_flood():
    r = run_bench(quick=True)
    assert r["established_offered"] == 24
    assert r["established_ratio"] == 1.0
    assert r["flood_established_loss"] == 0 and r["flood_established_offered"] == 24
    # store and forward: the 60-byte frame is in, then a short fixed pipeline
    assert 60 <= r["latency_cycles"] < 120
    assert r["occupancy_at_first_failure"] >= 0.90 and r["flow_entries"] == 1024
