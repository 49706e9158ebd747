"""Board bitstreams with the PyPI toolchain, checked through their report:
every clock meets its constraint with 10% margin, resources fit the device.

The Colorlight 5A-75B (R8.0) build runs in CI (marked ``slow``: about two
minutes on 2 cores).  The other boards, and the Colorlight with the DFS
core, run only before a release, with ``TWINPLANE_RELEASE=1``; otherwise
they are skipped and say why.
"""

import json
import os

import pytest

from twinplane.host.build import TIMING_MARGIN, bridge_factory, build_board, dfs_factory

RELEASE = os.environ.get("TWINPLANE_RELEASE") == "1"


def slow_clocks(report):
    return {clock: (mhz, report["target_mhz"][clock]) for clock, mhz in report["fmax_mhz"].items()
            if mhz < report["target_mhz"][clock] * TIMING_MARGIN}


def check_report(report, out_dir, *, timing=True):
    # The report on disk is the one returned.
    assert json.loads((out_dir / "report.json").read_text()) == report
    # nextpnr ran with the placer the report names.
    assert f"--placer {report['placer']} " in (out_dir / "build_twinplane.sh").read_text()
    # It ran through the stall watch (boards/nextpnr_seeds.py); the last
    # attempt finished, with the seed the report names.
    attempts = report["pnr_attempts"]
    assert attempts and attempts[-1]["outcome"] == "finished" and attempts[-1]["returncode"] == 0, attempts
    assert report["seed"] == attempts[-1]["seed"] and all(a["outcome"] == "stalled" for a in attempts[:-1])
    assert (out_dir / "twinplane.bit").stat().st_size > 100_000
    assert report["fmax_mhz"], "nextpnr reported no clock"
    assert set(report["fmax_mhz"]) == set(report["target_mhz"])
    # The core clock and every port's receive clock are timed at 125 MHz.
    assert all(target == 125.0 for target in report["target_mhz"].values()), report["target_mhz"]
    if timing:
        assert not slow_clocks(report), f"clocks below constraint + 10%: {slow_clocks(report)}"
    # The endpoints past each clock's target + 10 % (nextpnr's per-endpoint
    # report) agree with its Fmax, away from the boundary (setup time and
    # clock skew are in Fmax, not in an arrival).
    assert set(report["late_endpoints"]) == set(report["fmax_mhz"]), report["late_endpoints"]
    for clock, mhz in report["fmax_mhz"].items():
        margin = report["target_mhz"][clock] * TIMING_MARGIN
        if mhz > margin * 1.02:
            assert report["late_endpoints"][clock] == 0, (clock, mhz, report["late_endpoints"])
        elif mhz < margin * 0.98:
            assert report["late_endpoints"][clock] > 0, (clock, mhz, report["late_endpoints"])
    for key in ("lut4", "ff", "ebr", "dsp"):
        assert 0 <= report[key] <= report[f"{key}_avail"], key
    assert report["lut4"] > 0 and report["ebr"] > 0


def build_and_check(board, tmp_path, *, timing=True, **kwargs):
    out = tmp_path / board
    report = build_board(board, out_dir=out, **kwargs)
    print(f"\n{board}: {report['build_seconds']} s, core {report['core']}, Fmax {report['fmax_mhz']}, "
          f"LUT4 {report['lut4']}/{report['lut4_avail']}, FF {report['ff']}, EBR {report['ebr']}/{report['ebr_avail']}, "
          f"endpoints past target + 10 % {report['late_endpoints']}")
    check_report(report, out, timing=timing)
    return report


@pytest.fixture(scope="module")
def colorlight_report(tmp_path_factory):
    # The MAC, PHY clocking and board plumbing with the L2 bridge core: what
    # this test can hold to today.  The DFS core's build is tracked in issue 6.
    return build_and_check("colorlight-5a-75b", tmp_path_factory.mktemp("build"), timing=False,
                           core_factory=bridge_factory)


@pytest.mark.slow
def test_colorlight_5a_75b_bitstream(colorlight_report):
    assert colorlight_report["ports"] == ["external", "internal"]
    assert colorlight_report["core"] == "bridge"


@pytest.mark.slow
def test_colorlight_5a_75b_timing(colorlight_report):
    # The receive clocks with 10% margin (PacketFIFO's write side, issue 6);
    # every clock meets its 125 MHz constraint.
    rx = {c: v for c, v in slow_clocks(colorlight_report).items() if c != "sync"}
    assert not rx, f"receive clocks below constraint + 10%: {rx}"
    assert colorlight_report["timing_met"], colorlight_report["fmax_mhz"]


@pytest.mark.slow
def test_colorlight_5a_75b_sync_margin(colorlight_report):
    # sync with 10% margin: PacketFIFO reads through the DP16KD output
    # register (measured 145.3 / 143.2 / 149.3 MHz on seeds 1 / 2 / 3; 191.5
    # at seed 1 since the write side's full is a subtract's sign bit).
    assert "sync" not in slow_clocks(colorlight_report), slow_clocks(colorlight_report)


@pytest.mark.slow
@pytest.mark.release
@pytest.mark.parametrize(("board", "core", "flows"), [
    ("colorlight-5a-75b-r7", "bridge", 0), ("versa-ecp5", "dfs", 2048), ("ecpix5", "dfs", 2048)])
def test_release_board_bitstream(board, core, flows, tmp_path):
    # A plain build of each board, every clock with 10 % margin.  On the 45F
    # boards that is the DFS with the largest flow table their 108 block RAMs
    # hold (4096 entries would need about 125; docs/boards.md, "The DFS on
    # the boards").
    if not RELEASE:
        pytest.skip(f"{board}: release build, runs only with TWINPLANE_RELEASE=1")
    report = build_and_check(board, tmp_path)
    assert (report["core"], report["flow_entries"]) == (core, flows)


@pytest.mark.slow
@pytest.mark.release
def test_colorlight_5a_75b_dfs_places_and_routes(tmp_path):
    # The DFS core on the Colorlight's 25F (issue 6): since the eleventh
    # session it places, routes and fits, about 9 minutes on 2 cores.  Its
    # core clock is not yet at 125 MHz (docs/boards.md, "Where it stands"), so
    # only the receive clocks are held to their constraint here.
    if not RELEASE:
        pytest.skip("colorlight-5a-75b --core dfs: release build, runs only with TWINPLANE_RELEASE=1")
    report = build_and_check("colorlight-5a-75b", tmp_path, timing=False, core_factory=dfs_factory)
    assert (report["core"], report["flow_entries"]) == ("dfs", 1024)
    rx = {c: (mhz, report["target_mhz"][c]) for c, mhz in report["fmax_mhz"].items()
          if c != "sync" and mhz < report["target_mhz"][c]}
    assert not rx, f"receive clocks below their constraint: {rx}"
