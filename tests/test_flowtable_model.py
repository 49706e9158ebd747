"""Flow table reference model: API behaviour and the occupancy target."""

import random

from twinplane.hdl.dfs.top import DEFAULT_GEOMETRY
from twinplane.model.flowtable import FlowGeometry, FlowTableModel, InsertStatus
from twinplane.sim.flowtable.bench import ebr_estimate, first_failure


def test_default_geometry_reaches_90_percent_before_first_failure():
    g = FlowGeometry()
    for seed in range(4):
        index, occupancy = first_failure(g, seed)
        assert occupancy >= 0.90, (seed, occupancy)
        assert index == round(occupancy * g.entries)


def test_default_geometry_fits_the_ebr_budget():
    est = ebr_estimate(FlowGeometry())
    # 56 EBR on the LFE5U-25F.  The 4 sub-tables stacked in one keymem,
    # 512 rows of 2 x 108 bits, read one a clock: 6 EBR (not 4 x 6).
    assert est["total"] <= 18 and est["keymem"] == 6
    # The DFS's geometry (105-bit keys, 179-bit actions): 2 x 109 bits a row.
    dfs = ebr_estimate(DEFAULT_GEOMETRY)
    assert dfs["keymem"] == 7 and dfs["actmem"] == 10 and dfs["total"] == 24


def test_api_round_trip():
    g = FlowGeometry(buckets=8)
    m = FlowTableModel(g)
    r = random.Random(2)
    keys = [r.getrandbits(g.key_width) for _ in range(20)]
    handles = [m.insert(k, i, 5).handle for i, k in enumerate(keys)]
    assert handles == list(range(20))
    assert [m.lookup(k) for k in keys] == handles
    assert m.lookup(r.getrandbits(g.key_width)) is None
    assert m.occupancy == 20 / g.entries

    again = m.insert(keys[3], 99, 6)
    assert (again.handle, again.status, again.victim) == (3, InsertStatus.UPDATED, None)
    assert m.read(3).action == 99

    m.touch(3, 100, 7)
    m.touch(3, 50, 9)
    e = m.read(3)
    assert (e.packets, e.bytes, e.last_seen) == (2, 150, 9)
    m.clear(3, 10)
    e = m.read(3)
    assert (e.packets, e.bytes, e.last_seen) == (0, 0, 10)

    gone = m.delete(7)
    assert gone.key == keys[7] and m.lookup(keys[7]) is None
    assert m.delete(7) is None and m.read(7) is None
    assert len(m.entries()) == 19 and m.occupancy == 19 / g.entries
    assert sorted(e.handle for e in m.entries()) == sorted(set(handles) - {7})

    m.flush()
    assert m.entries() == [] and m.occupancy == 0
    assert m.insert(keys[0], 1, 0).handle == 0


def test_handles_reused_after_fresh_ones_in_delete_order():
    g = FlowGeometry(buckets=8)
    m = FlowTableModel(g)
    r = random.Random(4)
    for i in range(g.entries // 2):
        m.insert(r.getrandbits(g.key_width), i, 0)
    m.delete(5)
    m.delete(2)
    # Never-used handles first, then deleted ones in the order they were freed.
    new = []
    while len(new) < g.entries // 2 + 2:
        res = m.insert(r.getrandbits(g.key_width), 0, 0)
        if res.status == InsertStatus.EVICTED:
            break
        new.append(res.handle)
    assert new[:g.entries // 2] == list(range(g.entries // 2, g.entries))
    assert new[g.entries // 2:] == [5, 2][:len(new) - g.entries // 2]


def test_counters_wrap_at_their_widths():
    g = FlowGeometry(buckets=8, packets_width=4, bytes_width=8, ts_width=4)
    m = FlowTableModel(g)
    h = m.insert(1 << 40, 0, 0).handle
    for i in range(17):
        m.touch(h, 200, 30 + i)
    e = m.read(h)
    assert (e.packets, e.bytes, e.last_seen) == (17 % 16, 17 * 200 % 256, 46 % 16)
