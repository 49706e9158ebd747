"""MAC benchmark: back-to-back minimum-size frames through RX -> TX in cocotb,
and place-and-route reports of the MAC alone (RGMII, no FIFO) and of the
header parser alone (sim/parser/pnr.py) on the Colorlight's LFE5U-25F-6BG256
at 125 MHz.

The data path is RX -> PacketFIFO -> TX loopback (GMIIMac with its source
looped to its sink, one clock): twinplane.hdl.parser.HeaderParser did not
exist when this was written; the dict says which path was measured.

Line rate: a 64-byte frame takes 84 byte times on the wire, so the TX side
must start a frame every 84 clocks; the ratio is (frames out - 1) * 84 over
the clocks between the first and the last frame start on TX.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from amaranth import Module
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from twinplane.hdl.mac.gmii_mac import COUNTERS, GMIIMac
from twinplane.hdl.mac.gmii_rx import GMIIRx
from twinplane.hdl.mac.gmii_tx import GMIITx
from twinplane.hdl.mac.rgmii import RGMIIAdapter
from twinplane.hdl.packet import packet_signature
from twinplane.sim.runner import BUILD_ROOT, run_cocotb

__all__ = ["MacCore", "MacLoopback", "run_bench"]

WIRE_CYCLES = 84

# Colorlight 5A-75B v7.0, eth_rgmii 0 (as in amaranth-boards); only the RGMII
# pins are located, the stream ports stay internal.
COLORLIGHT_RGMII0_LPF = """\
LOCATE COMP "rx_clk" SITE "M1";
LOCATE COMP "rgmii_rx_ctl" SITE "N6";
LOCATE COMP "rgmii_rxd[0]" SITE "N1";
LOCATE COMP "rgmii_rxd[1]" SITE "M5";
LOCATE COMP "rgmii_rxd[2]" SITE "N5";
LOCATE COMP "rgmii_rxd[3]" SITE "M6";
LOCATE COMP "rgmii_tx_clk" SITE "M2";
LOCATE COMP "rgmii_tx_ctl" SITE "M3";
LOCATE COMP "rgmii_txd[0]" SITE "L1";
LOCATE COMP "rgmii_txd[1]" SITE "L3";
LOCATE COMP "rgmii_txd[2]" SITE "P2";
LOCATE COMP "rgmii_txd[3]" SITE "L4";
FREQUENCY PORT "rx_clk" 125 MHZ;
"""


class MacLoopback(wiring.Component):
    """GMIIMac in one clock domain with received frames sent straight back,
    through the header parser: every byte goes to the transmitter and to the
    parser in the same clock (a fork), so the parser must keep line rate or
    the loop slows down; ``parsed`` counts its records."""

    def __init__(self):
        self._mac = GMIIMac(rx_domain="sync")
        super().__init__({
            "rxd": In(8), "rx_dv": In(1), "rx_er": In(1),
            "txd": Out(8), "tx_en": Out(1), "tx_er": Out(1),
            "parsed": Out(32),
            **{name: Out(32) for name in COUNTERS},
        })

    def elaborate(self, platform):
        from twinplane.hdl.dfs.fork import StreamFork
        from twinplane.hdl.packet import packet_layout
        from twinplane.hdl.parser import HeaderParser

        m = Module()
        m.submodules.mac = mac = self._mac
        m.submodules.fork = fork = StreamFork(packet_layout(8))
        m.submodules.parser = parser = HeaderParser()
        m.d.comb += [mac.rxd.eq(self.rxd), mac.rx_dv.eq(self.rx_dv), mac.rx_er.eq(self.rx_er),
                     self.txd.eq(mac.txd), self.tx_en.eq(mac.tx_en), self.tx_er.eq(mac.tx_er)]
        m.d.comb += [getattr(self, n).eq(getattr(mac, n)) for n in COUNTERS]
        wiring.connect(m, mac.source, fork.sink)
        wiring.connect(m, fork.a, mac.sink)
        wiring.connect(m, fork.b, parser.sink)
        m.d.comb += parser.meta.ready.eq(1)
        with m.If(parser.meta.valid):
            m.d.sync += self.parsed.eq(self.parsed + 1)
        return m


class MacCore(wiring.Component):
    """The MAC without its FIFO, for P&R: RGMII (ECP5 DDR primitives) +
    GMIIRx in ``rx`` + GMIITx in ``sync``; the receive side leaves as the
    FIFO write port (stream + commit/drop).  No counters either (like
    verilog-ethernet's eth_mac_1g_rgmii, the comparison point): the whole
    RGMIIMac has more ports than the 256-ball package has pins."""

    def __init__(self):
        self._phy = RGMIIAdapter("ecp5", rx_domain="rx", tx_domain="sync", tx_clk_domain="tx90")
        self._rx = GMIIRx()
        self._tx = GMIITx()
        super().__init__({
            "rgmii_rxd": In(4), "rgmii_rx_ctl": In(1),
            "rgmii_txd": Out(4), "rgmii_tx_ctl": Out(1), "rgmii_tx_clk": Out(1),
            "source": Out(packet_signature(8)), "commit": Out(1), "drop": Out(1),
            "sink": In(packet_signature(8)),
        })

    def elaborate(self, platform):
        from amaranth import DomainRenamer
        m = Module()
        m.submodules.phy = phy = self._phy
        m.submodules.rx = rx = DomainRenamer("rx")(self._rx)
        m.submodules.tx = tx = self._tx
        m.d.comb += [
            phy.rgmii_rxd.eq(self.rgmii_rxd), phy.rgmii_rx_ctl.eq(self.rgmii_rx_ctl),
            self.rgmii_txd.eq(phy.rgmii_txd), self.rgmii_tx_ctl.eq(phy.rgmii_tx_ctl),
            self.rgmii_tx_clk.eq(phy.rgmii_tx_clk),
            self._rx.rxd.eq(phy.rxd), self._rx.rx_dv.eq(phy.rx_dv), self._rx.rx_er.eq(phy.rx_er),
            phy.txd.eq(tx.txd), phy.tx_en.eq(tx.tx_en), phy.tx_er.eq(tx.tx_er),
            self.commit.eq(rx.commit), self.drop.eq(rx.drop),
            self.source.valid.eq(rx.source.valid), self.source.payload.eq(rx.source.payload),
        ]
        wiring.connect(m, wiring.flipped(self.sink), tx.sink)
        return m


def run_bench(with_pnr: bool = False, frames: int = 200) -> dict:
    build = "mac_bench"
    out = BUILD_ROOT / build / "bench_result.json"
    if out.exists():
        out.unlink()
    run_cocotb(MacLoopback(), toplevel="mac_loopback", test_module="twinplane.sim.mac.bench_tb",
               build_name=build, extra_env={"MAC_BENCH_FRAMES": str(frames), "MAC_BENCH_OUT": str(out)})
    result = json.loads(out.read_text())
    result["path"] = "RX -> PacketFIFO -> fork(TX, HeaderParser) loopback"
    result["line_rate_ratio"] = round(result["line_rate_ratio"], 4)
    if with_pnr:
        from twinplane.boards.pnr import place_and_route
        work = Path(os.environ.get("MAC_PNR_DIR", BUILD_ROOT / "mac_pnr"))
        text = verilog.convert(MacCore(), name="mac_core", emit_src=False)
        work.mkdir(parents=True, exist_ok=True)
        (work / "colorlight_rgmii0.lpf").write_text(COLORLIGHT_RGMII0_LPF)
        lpf = work / "colorlight_rgmii0.lpf"
        result["pnr"] = place_and_route(text, "mac_core", workdir=work / "core", lpf=lpf)
        # The header parser alone (sim/parser/pnr.py): it sits in this loop.
        from twinplane.sim.parser.pnr import parser_pnr
        result["parser_pnr"] = parser_pnr(work / "parser")
    return result


if __name__ == "__main__":
    print(json.dumps(run_bench(with_pnr=True), indent=1))
