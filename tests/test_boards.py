"""Board support without place-and-route: platform subclasses, board tops
for every board, the core contract, the interim bridge against models, report parsing, config parsing, ``program``."""

import random

import pytest
from amaranth.build.res import ResourceError
from amaranth.lib import wiring
from amaranth.sim import Simulator
from amaranth_boards.colorlight_5a75b_r7_0 import Colorlight_5A75B_R70Platform

from twinplane.boards.bridge import L2Bridge
from twinplane.boards.core import check_core, core_signature
from twinplane.boards.platforms import split_rgmii_resources
from twinplane.boards.registry import BOARDS, get_board
from twinplane.boards.top import BoardTop
from twinplane.cli import main
from twinplane.hdl.packet import packet_signature
from twinplane.host import build
from twinplane.host.build import CORES, build_board, default_core_factory, parse_report, read_config


def _pins(platform, name, number):
    res = platform.lookup(name, number)
    ios = [io for sub in res.ios for io in (sub.ios if hasattr(sub, "ios") else [sub])]
    return {p for io in ios for p in io.names}


def test_upstream_colorlight_cannot_request_both_ports():
    # The reason the subclass exists: both eth_rgmii list the same rst/mdc/mdio.
    platform = Colorlight_5A75B_R70Platform()
    platform.request("eth_rgmii", 0)
    with pytest.raises(ResourceError):
        platform.request("eth_rgmii", 1)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_each_board_requests_all_ports_and_elaborates(name):
    spec = get_board(name)
    platform = spec.platform()
    n = len(spec.roles)
    ports = [_pins(platform, "eth_rgmii", i) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            assert not ports[i] & ports[j]
    mgmt = [r for r in platform.resources.values() if r.name == "eth_mgmt"]
    assert mgmt and all(not (_pins(platform, "eth_mgmt", r.number) & set().union(*ports)) for r in mgmt)
    for i in range(n):
        res = platform.lookup("eth_rgmii", i)
        names = {s.name for s in res.ios}
        assert names == {"tx_clk", "tx_ctl", "tx_data", "rx_clk", "rx_ctl", "rx_data"}
        assert next(s for s in res.ios if s.name == "rx_clk").clock.frequency == 125e6
    # The whole board top (PLL, MACs, console, LEDs, bridge) goes through the platform.
    plan = platform.prepare(BoardTop(spec, L2Bridge(n)), name="top")
    assert "EHXPLLL" in plan.files["top.il"]
    # The platform reaches every block: the MACs' FIFOs read through the
    # DP16KD's output register (hdl/ram/block_ram.py), as block_pnr builds them.
    assert "OUTREG" in plan.files["top.il"]


def test_colorlight_revisions_differ_only_where_the_boards_do():
    r7, r8 = get_board("colorlight-5a-75b-r7").platform(), get_board("colorlight-5a-75b").platform()
    for i in range(2):
        assert _pins(r7, "eth_rgmii", i) != _pins(r8, "eth_rgmii", i)
    # Both revisions share one set of management pins between their two PHYs.
    assert [r.number for r in r8.resources.values() if r.name == "eth_mgmt"] == [0]
    assert _pins(r7, "clk25", 0) == _pins(r8, "clk25", 0)


def test_split_refuses_to_share_different_management_pins():
    upstream = get_board("versa-ecp5").platform.__mro__[1].resources
    with pytest.raises(ValueError, match="management pins differ from port 0's"):
        split_rgmii_resources(upstream, shared_mgmt=True)


def test_unknown_board():
    with pytest.raises(ValueError, match="unknown board 'de10'"):
        get_board("de10")


def test_core_contract_is_checked():
    class NotACore(wiring.Component):
        def __init__(self):
            super().__init__(core_signature(1))
            self.name, self.flow_entries = "x", 0

        def elaborate(self, platform):
            raise AssertionError

    with pytest.raises(TypeError, match="does not have the board contract's signature"):
        check_core(NotACore(), 2)
    bridge = L2Bridge(2)
    check_core(bridge, 2)
    assert (bridge.name, bridge.flow_entries) == ("bridge", 0)
    with pytest.raises(TypeError, match="spec must be a BoardSpec, not 'colorlight'"):
        BoardTop("colorlight", bridge)
    with pytest.raises(ValueError, match="the bridge has 1 or 2 ports, not 3"):
        L2Bridge(3)


def random_frames(rng, count, lo=14, hi=120):
    return [bytes(rng.randrange(256) for _ in range(rng.randrange(lo, hi))) for _ in range(count)]


async def put_frames(ctx, port, frames, rng):
    for frame in frames:
        for k, byte in enumerate(frame):
            ctx.set(port.payload, {"data": byte, "first": k == 0, "last": k == len(frame) - 1})
            ctx.set(port.valid, 1)
            await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)
        for _ in range(rng.randrange(0, 4)):
            await ctx.tick()


async def get_frames(ctx, port, count, rng, *, stall=True, gaps=None):
    frames, current, cycles = [], [], 0
    while len(frames) < count:
        # Stall only between frames: the MAC takes a started frame byte by byte.
        ready = 1 if not stall or current else rng.random() < 0.7
        ctx.set(port.ready, ready)
        _, _, valid, p = await ctx.tick().sample(port.valid, port.payload)
        if valid and ready:
            assert p.first == (not current)
            current.append(p.data)
            if p.last:
                frames.append(bytes(current))
                current = []
        elif current and gaps is not None:
            gaps.append(len(frames))  # a bubble inside a frame: a MAC underrun
        cycles += 1
        assert cycles < 100_000
    ctx.set(port.ready, 0)
    return frames


def test_bridge_forwards_both_ways_in_order():
    rng = random.Random(5)
    dut = L2Bridge(2)
    sent = [random_frames(rng, 12), random_frames(rng, 12)]
    got, gaps = {}, []

    async def source(ctx, i):
        await put_frames(ctx, getattr(dut, f"rx{i}"), sent[i], rng)

    async def sink(ctx, i):
        got[i] = await get_frames(ctx, getattr(dut, f"tx{i}"), len(sent[1 - i]), rng, gaps=gaps)

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    for i in range(2):
        async def src(ctx, i=i):
            await source(ctx, i)

        async def snk(ctx, i=i):
            await sink(ctx, i)

        sim.add_testbench(src)
        sim.add_testbench(snk)
    sim.run()
    assert got[1] == sent[0] and got[0] == sent[1]
    assert gaps == []  # frames leave back to back, as the MAC requires


def test_bridge_counts_frames():
    rng = random.Random(6)
    dut = L2Bridge(2)
    frames = random_frames(rng, 5)
    out = {}

    async def bench(ctx):
        ctx.set(dut.tx1.ready, 1)
        await put_frames(ctx, dut.rx0, frames, rng)
        await ctx.tick().repeat(600)
        out["c"] = [ctx.get(dut.counters[k]) for k in range(4)]

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(bench)
    sim.run()
    assert out["c"] == [len(frames), 0, 0, 0]


def test_parse_report():
    log = "\n".join([
        "Info: Max frequency for clock '$glbnet$console.clk': 100.00 MHz (FAIL at 125.00 MHz)",
        "Info: Device utilisation:",
        "Info: \t          TRELLIS_COMB:   612/24288     2%",
        "Info: \t            TRELLIS_FF:    80/24288     0%",
        "Info: \t                DP16KD:     3/   56     5%",
        "Info: Max frequency for clock '$glbnet$console.clk': 140.50 MHz (PASS at 125.00 MHz)",
        "Info: Max frequency for clock '$glbnet$mac0.phy.rxd_buf.rx0_clk': 130.25 MHz (PASS at 125.00 MHz)",
        "Info: Max frequency for clock '$glbnet$mac1.mac.fifo.rx1_clk': 150.00 MHz (PASS at 125.00 MHz)",
    ])
    report = parse_report(log)
    assert report["fmax_mhz"] == {"sync": 140.5, "rx0": 130.25, "rx1": 150.0}
    assert report["target_mhz"] == {"sync": 125.0, "rx0": 125.0, "rx1": 125.0}
    assert (report["lut4"], report["lut4_avail"], report["ff"], report["ebr"], report["ebr_avail"]) == \
        (612, 24288, 80, 3, 56)
    assert report["timing_met"] and report["dsp"] == 0
    assert not parse_report(log.replace("130.25 MHz (PASS", "120.25 MHz (FAIL"))["timing_met"]


def test_config_file_and_flags(tmp_path):
    path = tmp_path / "board.toml"
    path.write_text('own_ip = "10.100.0.1"\nkey = "000102030405060708090a0b0c0d0e0f"\ncs_port = 4791\n')
    config = read_config(path, {"own_ip": "10.100.0.2", "own_mac": None})
    assert config == {"own_ip": 0x0A640002, "key": 0x000102030405060708090A0B0C0D0E0F, "cs_port": 4791}


def test_build_refuses_an_unknown_placer(tmp_path):
    # Refused before anything is elaborated or written, with the field named.
    with pytest.raises(ValueError, match="placer must be one of static, heap, not 'sa'"):
        build_board("colorlight-5a-75b", out_dir=tmp_path / "out", placer="sa")
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit):
        main(["build", "--board", "colorlight-5a-75b", "--placer", "sa"])


@pytest.mark.parametrize(("board", "core", "flows"), [
    ("colorlight-5a-75b", "bridge", 1024), ("colorlight-5a-75b-r7", "bridge", 1024),
    ("versa-ecp5", "dfs", 2048), ("ecpix5", "dfs", 2048)])
def test_a_plain_build_is_the_board_default(board, core, flows, monkeypatch):
    # The DFS where it meets every clock with 10 % margin (the 45F boards,
    # with the largest flow table their block RAM holds), the bridge on the
    # Colorlight (docs/boards.md, "The DFS on the boards").
    spec = get_board(board)
    assert (spec.default_core, spec.flow_entries) == (core, flows)
    assert default_core_factory(board) is CORES[core]
    made = CORES[core](len(spec.roles), spec.flow_entries, spec.vlans)
    assert made.name == core and made.flow_entries == (flows if core == "dfs" else 0)
    # The command line leaves both to build_board unless given.
    seen = {}

    def fake_build(name, **kwargs):
        seen[name] = kwargs
        raise SystemExit(0)

    monkeypatch.setattr(build, "build_board", fake_build)
    for argv, want in ((["build", "--board", board], (None, None)),
                       (["build", "--board", board, "--core", "bridge", "--flows", "512"], (CORES["bridge"], 512))):
        with pytest.raises(SystemExit):
            main(argv)
        assert (seen[board]["core_factory"], seen[board]["flows"]) == want


def test_build_refuses_a_bad_flow_count_before_building(tmp_path):
    with pytest.raises(ValueError, match="flows must be a non-negative int, not -1"):
        build_board("versa-ecp5", out_dir=tmp_path / "out", flows=-1)
    assert not (tmp_path / "out").exists()


def test_program_dry_run(capsys):
    assert main(["program", "--board", "colorlight-5a-75b", "--dry-run"]) == 0
    assert capsys.readouterr().out.split()[1:] == ["-c", "ft232", "-m", "build/colorlight-5a-75b/twinplane.bit"]


def test_colorlight_led_and_console_share_a_pin():
    spec = get_board("colorlight-5a-75b")
    led_pins = _pins(spec.platform(), "led", 0)
    uart_tx = _pins(spec.platform(), "uart", 0) & led_pins
    assert uart_tx == led_pins  # the UART's TX is the LED pin
    with_console = spec.platform().prepare(BoardTop(spec, L2Bridge(2)), name="top").files["top.lpf"]
    without = spec.platform().prepare(BoardTop(spec, L2Bridge(2), console=False), name="top").files["top.lpf"]
    assert "uart_0__tx" in with_console and "led_0" not in with_console
    assert "led_0" in without and "uart_0" not in without


def test_activity_led_blinks_once_per_frame_end():
    """The activity stretcher: off for 2**(bits - 1) clocks from a frame's
    last byte taken (registered), then on; nothing without a frame, and a
    byte that is not taken does not count."""
    from amaranth.hdl import ClockDomain, Module, Signal

    bits = 4
    m = Module()
    m.domains.sync = ClockDomain()
    m.domains.rx0 = ClockDomain()
    rx = packet_signature(8).create()
    valid, ready, last = rx.valid, rx.ready, rx.payload.last
    link, act = BoardTop._link_activity(m, 0, rx, stretch_bits=bits)
    off = Signal()
    m.d.comb += off.eq(act)
    seen = []

    async def bench(ctx):
        for _ in range(40):  # idle: never off
            await ctx.tick()
            seen.append(ctx.get(off))
        assert not any(seen)
        ctx.set(valid, 1)
        ctx.set(last, 1)  # offered, not taken
        await ctx.tick()
        ctx.set(ready, 1)  # taken
        await ctx.tick()
        ctx.set(valid, 0)
        ctx.set(ready, 0)
        ctx.set(last, 0)
        trace = []
        for _ in range(40):
            trace.append(ctx.get(off))
            await ctx.tick()
        # registered end, then the count: off for 2**(bits - 1) clocks, once
        start = trace.index(1)
        assert start <= 2, trace
        assert trace[start:start + 2 ** (bits - 1)] == [1] * 2 ** (bits - 1), trace
        assert not any(trace[start + 2 ** (bits - 1):]), trace

    sim = Simulator(m)
    sim.add_clock(1e-8, domain="sync")
    sim.add_clock(1e-8, domain="rx0")
    sim.add_testbench(bench)
    sim.run()


def test_build_table_names_the_seed_and_the_stalled_ones():
    from rich.console import Console

    from twinplane.host.build import _table

    report = {"board": "colorlight-5a-75b", "device": "LFE5U-25F-6BG256", "core": "dfs", "flow_entries": 1024,
              "fmax_mhz": {"sync": 120.8}, "target_mhz": {"sync": 125.0}, "build_seconds": 900.0, "seed": 3,
              "pnr_attempts": [{"seed": 1, "outcome": "stalled"}, {"seed": 2, "outcome": "stalled"},
                               {"seed": 3, "outcome": "finished"}],
              **{k: 1 for k in ("lut4", "ff", "ebr", "dsp")}, **{f"{k}_avail": 2 for k in ("lut4", "ff", "ebr", "dsp")}}
    console = Console(width=200, record=True)
    console.print(_table(report))
    text = console.export_text()
    assert "nextpnr seed" in text and "after 1, 2 stalled" in text
    assert "FAIL" in text  # 120.8 MHz against 125
