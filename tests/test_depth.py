"""boards/depth.py: logic levels of register-to-register paths in a mapped
netlist, on hand-made netlists (exact counts) and on a small synthesised
design (a registered boundary between two blocks cuts the path in two)."""

import json

from amaranth import Module, Signal
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from twinplane.boards.depth import block_of, logic_paths
from twinplane.boards.pnr import synth_netlist


def _cell(kind, dirs, conns, params=None):
    return {"type": kind, "port_directions": dirs, "connections": conns, "parameters": params or {}}


def _ff(d, q):
    return _cell("TRELLIS_FF", {"CLK": "input", "DI": "input", "Q": "output"}, {"CLK": [2], "DI": [d], "Q": [q]})


def _lut(a, b, z):
    return _cell("LUT4", {p: "input" for p in "ABCD"} | {"Z": "output"}, {"A": [a], "B": [b], "C": ["0"], "D": ["0"],
                                                                           "Z": [z]})


def _ccu(a, cin, s, cout):
    ports = ("A0", "B0", "C0", "D0", "A1", "B1", "C1", "D1", "CIN")
    return _cell("CCU2C", {p: "input" for p in ports} | {"S0": "output", "S1": "output", "COUT": "output"},
                 {"A0": [a], "CIN": [cin], "S0": [s], "S1": [], "COUT": [cout]})


def _netlist(cells, names):
    return {"modules": {"bench": {"cells": cells, "netnames": {
        n: {"bits": [b], "hide_name": 0} for n, b in names.items()}}}}


def test_levels_count_luts_not_carries_nor_muxes():
    # r0 -> LUT -> LUT -> r1; r0 -> CCU2C -> carry -> carry -> CCU2C's sum -> r2.
    cells = {
        "ff0": _ff(10, 11), "l1": _lut(11, 11, 12), "l2": _lut(12, 11, 13), "ff1": _ff(13, 14),
        "c1": _ccu(11, "0", 20, 21), "c2": _ccu("0", 21, 22, 23), "c3": _ccu("0", 23, 24, 25), "ff2": _ff(24, 26),
        "mux": _cell("PFUMX", {"ALUT": "input", "BLUT": "input", "C0": "input", "Z": "output"},
                     {"ALUT": [12], "BLUT": [11], "C0": [11], "Z": [30]}),
        "ff3": _ff(30, 31),
    }
    names = {"a.x.r0": 11, "a.y.r1": 14, "b.r2": 26, "a.x.r3": 31}
    paths = {p.end: p for p in logic_paths(_netlist(cells, names))}
    assert paths["a.y.r1"].levels == 2 and paths["a.y.r1"].start == "a.x.r0"
    assert paths["b.r2"].levels == 1  # the first CCU2C's LUT; its carries add nothing
    assert paths["a.x.r3"].levels == 1  # LUT then the slice's mux
    assert paths["a.y.r1"].max_fanout == 6  # r0 feeds l1 twice, l2, c1 and the mux twice
    assert block_of("a.x.r0") == "a.x" and block_of("r0") == "(top)"


def test_ebr_read_without_output_register_starts_deep():
    ebr = _cell("DP16KD", {"DOB0": "output", "ADB0": "input", "CLKB": "input"},
                {"DOB0": [40], "ADB0": [11], "CLKB": [2]}, {"REGMODE_B": "NOREG"})
    cells = {"ff0": _ff(10, 11), "ebr": ebr, "l": _lut(40, 11, 41), "ff1": _ff(41, 42)}
    paths = {p.end: p for p in logic_paths(_netlist(cells, {"r0": 11, "r1": 42}))}
    assert paths["r1"].levels == 7  # 6 for the EBR's clock-to-out and the LUT
    ebr["parameters"]["REGMODE_B"] = "OUTREG"
    paths = {p.end: p for p in logic_paths(_netlist(cells, {"r0": 11, "r1": 42}))}
    assert paths["r1"].levels == 2


class _Wide(wiring.Component):
    """a 16-bit compare of two registers into a third block's register,
    optionally through a register at the boundary."""

    x: In(16)
    y: In(16)
    out: Out(1)

    def __init__(self, registered):
        self._registered = registered
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        a, b = Signal(16), Signal(16)
        m.d.sync += [a.eq(a + self.x), b.eq(b ^ self.y)]
        equal = Signal()
        m.d.comb += equal.eq((a == b) & (a[:8] < b[8:]))
        if self._registered:
            boundary = Signal()
            m.d.sync += boundary.eq(equal)
            equal = boundary
        count = Signal(8)
        with m.If(equal):
            m.d.sync += count.eq(count + 1)
        m.d.comb += self.out.eq(count.xor())
        return m


def _synth(tmp_path, registered):
    text = rtlil.convert(_Wide(registered), name="bench", emit_src=False)
    return logic_paths(json.loads(synth_netlist(text, "bench", workdir=tmp_path / str(registered)).read_text()))


def test_a_register_cuts_the_path(tmp_path):
    def into_count(paths):
        return max(p.levels for p in paths if p.end.startswith("count"))

    combinational = into_count(_synth(tmp_path, registered=False))
    registered = into_count(_synth(tmp_path, registered=True))
    assert combinational >= 3
    assert registered < combinational
