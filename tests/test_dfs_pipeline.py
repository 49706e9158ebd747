"""The whole DFS pipeline on the wire under cocotb and Icarus: GMII MACs on
both ports of the DFS gateware, cocotbext-eth's GMII models at the far ends,
and the reference model (sim/dfs/scoreboard.py) checking every frame and
message on random traffic, including frames the wire spoils
(sim/dfs/pipeline_tb.py).

``TWINPLANE_SCOREBOARD_SEED`` (a number, or ``random``) and
``TWINPLANE_SCOREBOARD_STEPS`` replay or lengthen a run, as for the run in
Amaranth's simulator (tests/test_dfs_scoreboard.py)."""

from __future__ import annotations

from twinplane.sim.dfs.gmii_dfs import GmiiDFS
from twinplane.sim.dfs.scoreboard import SMALL_GEOMETRY as SMALL
from twinplane.sim.dfs.scoreboard import make_dut, seed_and_steps
from twinplane.sim.runner import run_cocotb


def test_pipeline_on_the_wire_against_the_model():
    seed, steps = seed_and_steps(40)
    print(f"pipeline scoreboard seed {seed}, {steps} steps")
    run_cocotb(
        GmiiDFS(make_dut(SMALL)),
        toplevel="gmii_dfs",
        test_module="twinplane.sim.dfs.pipeline_tb",
        build_name="dfs_pipeline_small",
        extra_env={"DFS_SEED": str(seed), "DFS_STEPS": str(steps),
                   "DFS_GEOMETRY": f"{SMALL.buckets},{SMALL.ways},{SMALL.tables}"},
    )
