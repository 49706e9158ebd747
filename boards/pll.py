"""ECP5 PLL: board oscillator -> 125 MHz core clock (``sync``) and the same
clock shifted by 90 degrees (``tx90``, RGMII TX_CLK when the PHY adds no TX
delay), with ``sync`` held in reset until the PLL locks.

# Ref: Lattice TN1263 "ECP5 and ECP5-5G sysCLOCK PLL/DLL Design and Usage Guide"

Divider choice (the same as ``ecppll -i F -o 125 --clkout1 125 --phase1 90``):
PFD = 25 MHz (``CLKI_DIV = F / 25``), VCO = 625 MHz (``CLKFB_DIV = 5`` with
feedback from CLKOP, ``CLKOP_DIV = 5``).  Output phase is counted in VCO
cycles: ``CPHASE = 2`` is 0 degrees for a divide-by-5 output, and 90 degrees
of 8 ns is 1.25 VCO cycles more: ``CPHASE = 3``, ``FPHASE = 2`` (eighths).
"""

from amaranth import ClockDomain, ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from .global_reset import global_net

__all__ = ["ECP5PLL"]

CORE_HZ = 125e6


class ECP5PLL(wiring.Component):
    """``ECP5PLL(f_in_hz)``: ``clk_in`` (in) -> clocks of ``sync`` and ``tx90``; ``locked`` (out).

    The parent defines the domains (``sync`` with a reset, ``tx90`` reset-less);
    nextpnr derives the outputs' 125 MHz constraints from the input clock's."""

    clk_in: In(1)
    locked: Out(1)

    def __init__(self, f_in_hz: float):
        if not isinstance(f_in_hz, (int, float)) or f_in_hz <= 0:
            raise ValueError(f"f_in_hz must be a positive frequency, not {f_in_hz!r}")
        div = f_in_hz / 25e6
        if div != int(div) or not 1 <= div <= 128:
            raise ValueError(f"f_in_hz must be a multiple of 25 MHz up to 3.2 GHz, not {f_in_hz!r}")
        self._f_in = f_in_hz
        self._clki_div = int(div)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        clkop, clkos = Signal(name="pll_clkop"), Signal(name="pll_clkos")
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=str(int(self._f_in / 1e6)),
            a_FREQUENCY_PIN_CLKOP="125", a_FREQUENCY_PIN_CLKOS="125",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=self._clki_div, p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=5,
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=5, p_CLKOP_CPHASE=2, p_CLKOP_FPHASE=0,
            p_CLKOS_ENABLE="ENABLED", p_CLKOS_DIV=5, p_CLKOS_CPHASE=3, p_CLKOS_FPHASE=2,
            i_RST=0, i_STDBY=0, i_CLKI=self.clk_in, i_CLKFB=clkop,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0,
            o_CLKOP=clkop, o_CLKOS=clkos, o_LOCK=self.locked,
        )
        m.d.comb += [ClockSignal("sync").eq(clkop), ClockSignal("tx90").eq(clkos)]
        # The synchroniser in a domain of its own on the same clock, so that its
        # output reaches ``sync``'s ~15k flip-flops on a global network.
        m.domains.reset_source = ClockDomain("reset_source", local=True)
        m.d.comb += ClockSignal("reset_source").eq(clkop)
        m.submodules.rst_sync = ResetSynchronizer(~self.locked, domain="reset_source")
        m.d.comb += ResetSignal("sync").eq(
            global_net(m, ResetSignal("reset_source"), platform, name="sync_reset"))
        return m
