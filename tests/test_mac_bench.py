"""The MAC benchmark at small scale: minimum-size frames back to back must
come out at line rate with none lost (no place-and-route here)."""

from twinplane.sim.mac.bench import run_bench


def test_mac_bench_line_rate():
    r = run_bench(with_pnr=False, frames=40)
    assert r["frames_offered"] == 40
    assert r["frames_lost"] == 0
    assert r["frames_out"] == 40
    assert r["line_rate_ratio"] == 1.0
    assert r["rx_frames"] == r["tx_frames"] == 40
    assert r["frames_parsed"] == 40  # the parser is in the loop and kept up
    assert "HeaderParser" in r["path"]
