"""boards/slack.py and the build report's ``late_endpoints``: endpoints past
a clock target, read from nextpnr's per-endpoint report, by block."""

import json

import pytest

from twinplane.boards.slack import Endpoint, endpoints, late, main
from twinplane.host.build import late_endpoints


def _report():
    # The shape of nextpnr's --detailed-timing-report: per net, its driver's
    # clock event and, per endpoint, the capture event and the arrival.
    def net(name, driver_clock, *eps):
        return {"net": name, "driver": "d", "port": "Q", "event": f"posedge $glbnet${driver_clock}",
                "endpoints": [{"cell": c, "port": p, "event": f"posedge $glbnet${clk}", "delay": [0.1, d]}
                              for c, p, clk, d in eps]}
    return {"detailed_net_timings": [
        net("core.dfs.table.n1", "console.clk",
            ("core.dfs.table.fsm_in_age_read_TRELLIS_FF_Q", "DI", "console.clk", 10.55),
            ("core.dfs.table.t1_TRELLIS_FF_Q_10", "DI", "console.clk", 7.30),
            ("core.dfs.msgport.session.out_slot_TRELLIS_FF_Q", "CE", "console.clk", 7.20),
            ("core.dfs.table.t2_TRELLIS_FF_Q", "DI", "mac0.mac.rx0_clk", 9.0)),  # a crossing: not timed
        net("mac0.mac.n2", "mac0.mac.rx0_clk",
            ("mac0.mac.fifo.full_TRELLIS_FF_Q", "DI", "mac0.mac.rx0_clk", 7.39),
            ("mac0.mac.fifo.wp_TRELLIS_FF_Q_1", "DI", "mac0.mac.rx0_clk", 6.0),
            # 7.0 ns: within 7.27 ns, past it with the reset input's 0.42 ns setup
            ("mac0.mac.rx.count_TRELLIS_FF_Q_9", "LSR", "mac0.mac.rx0_clk", 7.0)),
        # two bits of one register, fed by a net with a fanout of 3
        net("core.dfs.parser0.ce", "console.clk",
            ("core.dfs.parser0.rec_TRELLIS_FF_Q_3", "CE", "console.clk", 7.5),
            ("core.dfs.parser0.rec_TRELLIS_FF_Q_4", "CE", "console.clk", 7.6),
            ("core.dfs.parser0.rec_TRELLIS_FF_Q_5", "CE", "console.clk", 7.0)),
    ]}


def test_late_endpoints_by_period_and_clock():
    eps = endpoints(_report())[:7]
    assert len(eps) == 7
    past = late(eps, 137.5)  # 7.27 ns
    assert [(e.register, e.port) for e in past] == [
        ("core.dfs.table.fsm_in_age_read", "DI"), ("mac0.mac.rx.count", "LSR"), ("mac0.mac.fifo.full", "DI"),
        ("core.dfs.table.t1", "DI")]
    assert past[0].block(3) == "core.dfs.table"
    assert (past[0].net, past[0].fanout) == ("core.dfs.table.n1", 4)
    assert len(late(eps, 137.5, same_clock=False)) == 5  # with the crossing
    assert late(eps, 100.0) == past[:1]  # 10 ns: only the 10.55 ns path
    assert late(eps, 90.0) == []  # 11.1 ns


def test_late_endpoints_per_domain_with_margin(tmp_path):
    path = tmp_path / "nextpnr-report.json"
    path.write_text(json.dumps(_report()))
    # 125 MHz + 10 %: 7.27 ns; the clock nets map to the board's domains.
    assert late_endpoints(path, {"sync": 125.0, "rx0": 125.0}) == {"sync": 4, "rx0": 2}
    assert late_endpoints(path, {"sync": 100.0, "rx0": 125.0}) == {"sync": 1, "rx0": 2}  # 9.09 ns


def test_the_listing_by_block(tmp_path, capsys):
    (tmp_path / "nextpnr-report.json").write_text(json.dumps(_report()))
    assert main([str(tmp_path), "--mhz", "137.5", "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "6 of 9 endpoints past 7.27 ns (137.5 MHz)" in out
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines() if line.startswith(("core.", "mac0."))}
    assert rows == {"core.dfs.table": ["2", "2"], "core.dfs.parser0": ["2", "1"],
                    "mac0.mac.fifo": ["1", "1"], "mac0.mac.rx": ["1", "1"]}
    assert "10.55 ns  core.dfs.table.fsm_in_age_read.DI" in out
    assert "by register" not in out and "by net" not in out


def _section(out, title):
    lines = out.split(f"by {title}:\n", 1)[1].splitlines()
    return [line.split() for line in lines[: next(i for i, line in enumerate(lines) if not line.startswith("  "))]]


def test_the_listings_by_register_and_by_net(tmp_path, capsys):
    (tmp_path / "nextpnr-report.json").write_text(json.dumps(_report()))
    assert main([str(tmp_path), "--registers", "--nets"]) == 0
    out = capsys.readouterr().out
    # a register's bits are one row, per input port; most late first, then by name
    assert _section(out, "register.input") == [
        ["2", "7.60ns", "core.dfs.parser0.rec.CE"], ["1", "10.55ns", "core.dfs.table.fsm_in_age_read.DI"],
        ["1", "7.30ns", "core.dfs.table.t1.DI"], ["1", "7.39ns", "mac0.mac.fifo.full.DI"],
        ["1", "7.42ns", "mac0.mac.rx.count.LSR"]]
    # the net with the late of all its endpoints (the crossing counts in the fanout, not as late)
    assert _section(out, "net (late of fanout)") == [
        ["2/3", "7.60ns", "core.dfs.parser0.ce"], ["2/4", "10.55ns", "core.dfs.table.n1"],
        ["2/3", "7.42ns", "mac0.mac.n2"]]


def test_a_report_without_endpoint_timing_is_refused():
    with pytest.raises(ValueError, match="--detailed-timing-report"):
        endpoints({"fmax": {}, "critical_paths": []})


def test_a_block_ram_clock_enable_counts_its_setup_time():
    # nextpnr's worst path of f522c50's build: 8.27 ns to an EBR's CEB, 8.61 ns with its setup
    ebr = Endpoint("core.dfs.miss.queries$252.ebr1", "CEB", "console.clk", "console.clk", 7.0)
    flop = Endpoint("core.dfs.miss.ask_TRELLIS_FF_Q_1", "DI", "console.clk", "console.clk", 7.0)
    assert ebr.required_ns == pytest.approx(7.34)
    assert late([ebr, flop], 137.5) == [ebr]  # 7.27 ns
