"""RGMII <-> GMII adapter: 4-bit DDR pins to 8-bit single-rate signals.

# Ref: RGMII v2.0 (HP, 2002) §3 (signals), §3.3 (timing: clock-to-data skew 1.5..2 ns)

Receive: a byte is its low nibble with ``RX_CTL = RX_DV`` at the rising edge
of ``RX_CLK`` and its high nibble with ``RX_CTL = RX_DV xor RX_ER`` at the
falling edge.  Transmit mirrors that on ``TX_CLK``.

Clock alignment.  RGMII sends clock and data edge-aligned; someone must delay
the clock by ~2 ns (90 degrees at 125 MHz) so the receiver samples mid-bit:
- TX: either the PHY delays ``TX_CLK`` internally (RGMII-TXID; then pass
  ``tx_clk_domain=tx_domain``), or ``TX_CLK`` is driven from a domain whose
  clock is the TX clock shifted by 90 degrees (a PLL output; the default
  ``tx_clk_domain="tx90"``), with data launched from ``tx_domain``.
- RX: this adapter adds no FPGA input delay, so the PHY must delay
  ``RX_CLK`` (RGMII-RXID), or the board a DELAYG in front of ``rx_clk``.
Per board (to be confirmed on hardware; none was at hand here):
- Colorlight 5A-75B (Broadcom B50612D, RTL8211 on some revisions): the
  usual open designs drive ``TX_CLK`` without FPGA-side shift and rely on
  the PHY's strapped internal delays on both directions; use
  ``tx_clk_domain=tx_domain`` and keep RX as is.
- Versa ECP5 (Marvell 88E1512): internal delays are set over MDIO (page 2,
  register 21: bit 5 RX, bit 4 TX); the board enables RX at power-up
  (``hdl/mdio/``, ``boards/registry.py``) and uses the ``tx90`` PLL phase.
- ECPIX-5 (Microchip KSZ9031): its pad-skew registers (MMD 2, registers
  4..8) give at most ~+0.96 ns on the clock pads -- not a full 2 ns -- so use
  the ``tx90`` domain for TX and program the RX clock skew to its maximum.

Modes:
- ``"io"``: ``pins`` is the board's ``eth_rgmii`` resource (``rx_clk``,
  ``rx_ctl``, ``rx_data``, ``tx_clk``, ``tx_ctl``, ``tx_data`` io ports);
  DDR through ``amaranth.lib.io.DDRBuffer``; the ``rx`` domain's clock is
  taken from the ``rx_clk`` pin here.
- ``"sim"``: pins are plain signals (``rgmii_*`` members) and DDR is modelled
  with a rising- and a falling-edge register, for cocotb/Icarus; ``rx``'s
  clock is the simulator's, ``TX_CLK`` is the ``tx_clk_domain`` clock.
- ``"ecp5"``: plain signals into ECP5 IDDRX1F/ODDRX1F primitives (what
  DDRBuffer becomes on ECP5), for stand-alone synthesis of the MAC.
"""

from amaranth import Cat, ClockDomain, ClockSignal, Instance, Module, Mux, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RGMIIAdapter"]

MODES = ("io", "sim", "ecp5")


class RGMIIAdapter(wiring.Component):
    def __init__(self, mode: str = "io", pins=None, *, rx_domain: str = "rx", tx_domain: str = "sync",
                 tx_clk_domain: str = "tx90"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES!r}, not {mode!r}")
        if mode == "io" and pins is None:
            raise ValueError("mode 'io' needs the eth_rgmii pins, not None")
        self._mode = mode
        self._pins = pins
        self._rx_domain = rx_domain
        self._tx_domain = tx_domain
        self._tx_clk_domain = tx_clk_domain
        members = {
            # GMII side
            "rxd": Out(8),
            "rx_dv": Out(1),
            "rx_er": Out(1),
            "txd": In(8),
            "tx_en": In(1),
            "tx_er": In(1),
        }
        if mode != "io":
            members.update({
                "rgmii_rxd": In(4),
                "rgmii_rx_ctl": In(1),
                "rgmii_txd": Out(4),
                "rgmii_tx_ctl": Out(1),
                "rgmii_tx_clk": Out(1),
            })
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        rx_rise_d, rx_fall_d = Signal(4), Signal(4)
        rx_rise_ctl, rx_fall_ctl = Signal(), Signal()
        tx_ctl_rise = self.tx_en
        tx_ctl_fall = self.tx_en ^ self.tx_er

        if self._mode == "io":
            pins = self._pins
            m.domains.rx = rx_cd = ClockDomain(self._rx_domain, local=False)
            m.submodules.rx_clk_buf = rx_clk = io.Buffer("i", pins.rx_clk)
            m.d.comb += ClockSignal(rx_cd.name).eq(rx_clk.i)
            m.submodules.rxd_buf = rxd = io.DDRBuffer("i", pins.rx_data, i_domain=self._rx_domain)
            m.submodules.rx_ctl_buf = rx_ctl = io.DDRBuffer("i", pins.rx_ctl, i_domain=self._rx_domain)
            m.d.comb += [rx_rise_d.eq(rxd.i[0]), rx_fall_d.eq(rxd.i[1]),
                         rx_rise_ctl.eq(rx_ctl.i[0]), rx_fall_ctl.eq(rx_ctl.i[1])]
            m.submodules.txd_buf = txd = io.DDRBuffer("o", pins.tx_data, o_domain=self._tx_domain)
            m.submodules.tx_ctl_buf = tx_ctl = io.DDRBuffer("o", pins.tx_ctl, o_domain=self._tx_domain)
            m.submodules.tx_clk_buf = tx_clk = io.DDRBuffer("o", pins.tx_clk, o_domain=self._tx_clk_domain)
            m.d.comb += [txd.o[0].eq(self.txd[:4]), txd.o[1].eq(self.txd[4:]),
                         tx_ctl.o[0].eq(tx_ctl_rise), tx_ctl.o[1].eq(tx_ctl_fall),
                         tx_clk.o[0].eq(1), tx_clk.o[1].eq(0)]
        elif self._mode == "sim":
            # Rising-edge register = low nibble + RX_DV, falling-edge register =
            # high nibble + RX_DV^RX_ER, paired at the next rising edge.
            m.domains.rgmii_rx_fall = fall = ClockDomain(clk_edge="neg", local=True, reset_less=True)
            m.d.comb += ClockSignal(fall.name).eq(ClockSignal(self._rx_domain))
            m.d[self._rx_domain] += [rx_rise_d.eq(self.rgmii_rxd), rx_rise_ctl.eq(self.rgmii_rx_ctl)]
            m.d.rgmii_rx_fall += [rx_fall_d.eq(self.rgmii_rxd), rx_fall_ctl.eq(self.rgmii_rx_ctl)]
            # TX: low nibble held while the clock is high, high nibble while it
            # is low; the far end samples on the 90-degree TX_CLK, mid-phase.
            m.domains.rgmii_tx_fall = tfall = ClockDomain(clk_edge="neg", local=True, reset_less=True)
            m.d.comb += ClockSignal(tfall.name).eq(ClockSignal(self._tx_domain))
            lo, lo_ctl, hi, hi_ctl, hi_next, hi_ctl_next = (Signal(4), Signal(), Signal(4), Signal(), Signal(4),
                                                             Signal())
            m.d[self._tx_domain] += [lo.eq(self.txd[:4]), lo_ctl.eq(tx_ctl_rise),
                                     hi_next.eq(self.txd[4:]), hi_ctl_next.eq(tx_ctl_fall)]
            m.d.rgmii_tx_fall += [hi.eq(hi_next), hi_ctl.eq(hi_ctl_next)]
            clk = ClockSignal(self._tx_domain)
            m.d.comb += [self.rgmii_txd.eq(Mux(clk, lo, hi)), self.rgmii_tx_ctl.eq(Mux(clk, lo_ctl, hi_ctl)),
                         self.rgmii_tx_clk.eq(ClockSignal(self._tx_clk_domain))]
        else:  # ecp5
            rx_clk = ClockSignal(self._rx_domain)
            for i in range(5):
                pin = self.rgmii_rxd[i] if i < 4 else self.rgmii_rx_ctl
                q0 = rx_rise_d[i] if i < 4 else rx_rise_ctl
                q1 = rx_fall_d[i] if i < 4 else rx_fall_ctl
                m.submodules[f"iddr{i}"] = Instance("IDDRX1F", i_D=pin, i_SCLK=rx_clk, i_RST=0, o_Q0=q0, o_Q1=q1)
            tx_clk = ClockSignal(self._tx_domain)
            for i in range(5):
                pin = self.rgmii_txd[i] if i < 4 else self.rgmii_tx_ctl
                d0 = self.txd[i] if i < 4 else tx_ctl_rise
                d1 = self.txd[4 + i] if i < 4 else tx_ctl_fall
                m.submodules[f"oddr{i}"] = Instance("ODDRX1F", i_D0=d0, i_D1=d1, i_SCLK=tx_clk, i_RST=0,
                                                    o_Q=pin)
            m.submodules.oddr_clk = Instance("ODDRX1F", i_D0=1, i_D1=0, i_SCLK=ClockSignal(self._tx_clk_domain),
                                             i_RST=0, o_Q=self.rgmii_tx_clk)

        # Pair each rising-edge sample with the falling-edge one after it.
        m.d[self._rx_domain] += [
            self.rxd.eq(Cat(rx_rise_d, rx_fall_d)),
            self.rx_dv.eq(rx_rise_ctl),
            self.rx_er.eq(rx_rise_ctl ^ rx_fall_ctl),
        ]
        return m
