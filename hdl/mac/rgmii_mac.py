"""RGMII Ethernet MAC: the top a board instantiates (RGMIIAdapter + GMIIMac).

# Ref: IEEE 802.3-2018 §3, §4; RGMII v2.0

Domains: ``rx`` (from the PHY's RX_CLK; in mode "io" the adapter drives it
from the pin, the board only adds the domain name), ``sync`` (core: frames
out of ``source``, into ``sink``, and GMII TX) and ``tx90`` (``sync`` shifted
by 90 degrees, only when the PHY has no internal TX delay; pass
``tx_clk_domain="sync"`` otherwise).  See :mod:`.rgmii` for per-board delays.
"""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..packet import packet_signature
from .gmii_mac import COUNTERS, GMIIMac
from .rgmii import RGMIIAdapter

__all__ = ["RGMIIMac"]


class RGMIIMac(wiring.Component):
    def __init__(self, mode: str = "io", pins=None, *, data_width: int = 8, max_frame: int = 1518,
                 rx_fifo_depth: int | None = None, tx_clk_domain: str = "tx90"):
        self._phy = RGMIIAdapter(mode, pins, rx_domain="rx", tx_domain="sync", tx_clk_domain=tx_clk_domain)
        self._mac = GMIIMac(data_width, max_frame, rx_fifo_depth, rx_domain="rx")
        members = {
            "source": Out(packet_signature(data_width)),
            "sink": In(packet_signature(data_width)),
            **{name: Out(32) for name in COUNTERS},
        }
        if mode != "io":
            members.update({
                "rgmii_rxd": In(4),
                "rgmii_rx_ctl": In(1),
                "rgmii_txd": Out(4),
                "rgmii_tx_ctl": Out(1),
                "rgmii_tx_clk": Out(1),
            })
        self._mode = mode
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.phy = phy = self._phy
        m.submodules.mac = mac = self._mac
        m.d.comb += [
            mac.rxd.eq(phy.rxd), mac.rx_dv.eq(phy.rx_dv), mac.rx_er.eq(phy.rx_er),
            phy.txd.eq(mac.txd), phy.tx_en.eq(mac.tx_en), phy.tx_er.eq(mac.tx_er),
        ]
        if self._mode != "io":
            m.d.comb += [
                phy.rgmii_rxd.eq(self.rgmii_rxd), phy.rgmii_rx_ctl.eq(self.rgmii_rx_ctl),
                self.rgmii_txd.eq(phy.rgmii_txd), self.rgmii_tx_ctl.eq(phy.rgmii_tx_ctl),
                self.rgmii_tx_clk.eq(phy.rgmii_tx_clk),
            ]
        wiring.connect(m, mac=mac.source, outside=wiring.flipped(self.source))
        wiring.connect(m, outside=wiring.flipped(self.sink), mac=mac.sink)
        for name in COUNTERS:
            m.d.comb += getattr(self, name).eq(getattr(mac, name))
        return m
