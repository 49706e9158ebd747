"""Flow table benchmark: occupancy at the first insert failure, lookup rate.

* ``occupancy_at_first_failure``: random keys are inserted into the model
  (bit-exact with the gateware) at the default geometry until the first insert
  that has to evict; the occupancy just before it.  Several seeds: the first
  one is the headline, min and mean are reported too.
* ``rtl_first_failure_matches_model``: the same on the gateware at a small
  geometry, insert by insert.
* ``lookups_per_cycle``: the gateware at the default geometry, half full, a
  lookup offered every clock for ``LOOKUP_CYCLES`` clocks; results counted per
  clock (and checked against the model).  One every ``tables`` clocks: the
  table reads one sub-table a clock (``hdl/flowtable/table.py``).
"""

import random

from amaranth.sim import Simulator

from twinplane.hdl.flowtable import FlowTable
from twinplane.model.flowtable import FlowGeometry, FlowOp, FlowTableModel, InsertStatus
from twinplane.sim.flowtable.driver import command

__all__ = ["ebr_estimate", "first_failure", "run_bench"]

SEEDS = 8
LOOKUP_CYCLES = 2000
EBR_BITS = 18 * 1024
ECP5_25F_EBR = 56


def first_failure(geometry: FlowGeometry, seed: int) -> tuple[int, float]:
    """(index of the first insert that evicts, occupancy just before it)."""
    model, r = FlowTableModel(geometry), random.Random(seed)
    for i in range(geometry.entries + 1):
        if model.insert(r.getrandbits(geometry.key_width), i, i).status \
                == InsertStatus.EVICTED:
            return i, i / geometry.entries
    raise AssertionError("table never overflowed")


def _ebr(depth: int, width: int) -> int:
    """ECP5 DP16KD blocks for a one-read one-write memory: the widest mode
    whose depth covers ``depth`` (512x36, 1024x18, 2048x9, 4096x4, ...)."""
    best = None
    for mode_depth, mode_width in ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2),
                                   (16384, 1)):
        n = -(-depth // mode_depth) * -(-width // mode_width)
        best = n if best is None else min(best, n)
    return best


def ebr_estimate(g: FlowGeometry) -> dict:
    loc_bits = (max(1, (g.tables - 1).bit_length()) + g.index_bits
                + max(1, (g.ways - 1).bit_length()))
    parts = {
        "keymem": _ebr(g.tables * g.buckets, g.ways * g.slot_width),
        "actmem": _ebr(g.entries, g.action_width),
        "cntmem": _ebr(g.entries, g.packets_width + g.bytes_width + g.ts_width),
        "locmem": _ebr(g.entries, loc_bits),
        "fifomem": _ebr(g.entries, g.handle_bits),
    }
    parts["total"] = sum(parts.values())
    parts["fraction_of_25F"] = parts["total"] / ECP5_25F_EBR
    return parts


def _rtl_first_failure(g: FlowGeometry, seed: int) -> int:
    dut, r, out = FlowTable(g), random.Random(seed), {}

    async def bench(ctx):
        for i in range(g.entries + 1):
            rsp = await command(ctx, dut, FlowOp.INSERT, key=r.getrandbits(g.key_width),
                                action=i, now=i)
            if rsp["status"] == InsertStatus.EVICTED:
                out["i"] = i
                return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out["i"]


def _lookup_rate(g: FlowGeometry) -> tuple[float, int]:
    """(results per clock, the lookup latency)."""
    dut, model, r = FlowTable(g), FlowTableModel(g), random.Random(1)
    stats = {"results": 0, "cycles": 0}

    async def bench(ctx):
        keys = []
        for i in range(g.entries // 2):
            k = r.getrandbits(g.key_width)
            keys.append(k)
            await command(ctx, dut, FlowOp.INSERT, key=k, action=i, now=i)
            model.insert(k, i, i)
        issued = []
        k = r.choice(keys)
        for cycle in range(LOOKUP_CYCLES + dut.latency + 1):
            ctx.set(dut.lookup.valid, cycle < LOOKUP_CYCLES)
            ctx.set(dut.lookup.payload.key, k)
            if cycle < LOOKUP_CYCLES and ctx.get(dut.lookup.ready):
                issued.append(k)
                k = r.choice(keys) if r.random() < 0.5 else r.getrandbits(g.key_width)
            if ctx.get(dut.result.valid):
                res = ctx.get(dut.result.payload)
                want = issued[stats["results"]]
                h = model.lookup(want)
                assert (int(res.key), int(res.hit), int(res.handle)) == (
                    want, h is not None, h or 0)
                stats["results"] += 1
            await ctx.tick()
        stats["cycles"] = LOOKUP_CYCLES

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return stats["results"] / stats["cycles"], dut.latency


def run_bench() -> dict:
    g = FlowGeometry()
    occ = [first_failure(g, seed)[1] for seed in range(SEEDS)]
    small = FlowGeometry(buckets=8)
    rate, latency = _lookup_rate(g)
    return {
        "flow_entries": g.entries,
        "geometry": f"{g.tables} tables x {g.buckets} buckets x {g.ways} ways",
        "occupancy_at_first_failure": occ[0],
        "occupancy_at_first_failure_min": min(occ),
        "occupancy_at_first_failure_mean": sum(occ) / len(occ),
        "rtl_first_failure_matches_model": _rtl_first_failure(small, 0)
        == first_failure(small, 0)[0],
        "lookups_per_cycle": rate,
        "lookup_latency_cycles": latency,
        "ebr": ebr_estimate(g),
    }


if __name__ == "__main__":
    for name, value in run_bench().items():
        print(f"{name}: {value}")
