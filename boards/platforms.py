"""Board platforms: the amaranth-boards ECP5 platforms, subclassed to fix
their Ethernet resources for a two-port data plane.

# Ref: amaranth-boards (colorlight_5a75b_r7_0, versa_ecp5, ecpix5);
#      Colorlight 5A-75B V8.0 pinout from q3k/chubby75 5a-75b/hardware_V8.0.md

What the subclasses change, and why:
- ``eth_rgmii`` keeps only the RGMII data/clock pins; ``rst``/``mdc``/``mdio``
  move to ``eth_mgmt`` resources.  On the Colorlight both PHYs share one
  reset, MDC and MDIO, and amaranth-boards lists those pins in *both*
  ``eth_rgmii`` resources, so requesting port 0 and port 1 fails with a pin
  conflict; with one shared ``eth_mgmt`` 0 both ports can be requested.
- ``tx_ctrl``/``rx_ctrl`` (Versa port 1, ECPIX-5) are renamed ``tx_ctl``/
  ``rx_ctl`` so every board offers the names ``RGMIIAdapter`` uses.
- ``rx_clk`` gets a 125 MHz clock constraint, so nextpnr times the receive
  domains (1000BASE-T RGMII receive clock).
- Colorlight 5A-75B R8.0 (not in amaranth-boards): the R7.0 platform with
  the R8.0 clock/LED/button/Ethernet pins (two RTL8211FD PHYs).  Its SDRAM
  and HUB75 connectors are not declared here.  On R8.0 the FPGA's 25 MHz
  clock comes from PHY 1, so the PHY reset must never be asserted.
"""

from __future__ import annotations

from amaranth.build import Attrs, Clock, Pins, PinsN, Resource, Subsignal
from amaranth_boards.colorlight_5a75b_r7_0 import Colorlight_5A75B_R70Platform
from amaranth_boards.ecpix5 import ECPIX545Platform
from amaranth_boards.resources import ButtonResources, LEDResources, UARTResource
from amaranth_boards.versa_ecp5 import VersaECP5Platform

__all__ = [
    "Colorlight5A75BR7Platform",
    "Colorlight5A75BR8Platform",
    "ECPIX5Platform",
    "VersaECP5TwinPlatform",
    "split_rgmii_resources",
]

_RENAME = {"tx_ctrl": "tx_ctl", "rx_ctrl": "rx_ctl"}
_MGMT = ("rst", "mdc", "mdio")
RGMII_RX_HZ = 125e6


def split_rgmii_resources(resources, *, shared_mgmt: bool) -> list:
    """Rewrite ``eth_rgmii`` resources as described in the module docstring.

    With ``shared_mgmt`` the management pins of all ports become one
    ``eth_mgmt`` 0 (they must then be the same pins on every port)."""
    out, mgmt = [], {}
    for res in resources:
        if res.name != "eth_rgmii":
            out.append(res)
            continue
        data_sigs, mgmt_sigs = [], []
        for sub in res.ios:
            name = _RENAME.get(sub.name, sub.name)
            extras = [sub.clock] if sub.clock is not None else []
            if name == "rx_clk" and sub.clock is None:
                extras = [Clock(RGMII_RX_HZ)]
            new = Subsignal(name, *sub.ios, *extras, sub.attrs)
            (mgmt_sigs if name in _MGMT else data_sigs).append(new)
        out.append(Resource("eth_rgmii", res.number, *data_sigs, res.attrs))
        key = 0 if shared_mgmt else res.number
        pins = tuple(sorted((s.name, repr(s.ios)) for s in mgmt_sigs))
        if key in mgmt and mgmt[key][0] != pins:
            raise ValueError(f"eth_rgmii {res.number!r}: management pins differ from port {key!r}'s, "
                             "cannot share them")
        mgmt.setdefault(key, (pins, Resource("eth_mgmt", key, *mgmt_sigs, res.attrs)))
    out.extend(res for _, res in mgmt.values())
    return out


class Colorlight5A75BR7Platform(Colorlight_5A75B_R70Platform):
    """Colorlight 5A-75B R7.0, two Broadcom B50612D PHYs sharing rst/MDC/MDIO."""

    resources = split_rgmii_resources(Colorlight_5A75B_R70Platform.resources, shared_mgmt=True)


_R8_REPLACED = {"clk25", "led", "button", "uart", "sdram", "eth_rgmii"}


class Colorlight5A75BR8Platform(Colorlight_5A75B_R70Platform):
    """Colorlight 5A-75B R8.0: two Realtek RTL8211FD PHYs (pins: chubby75 hardware_V8.0.md).

    As on R7.0 (amaranth-boards' choice), UART 0 reuses the LED pin (T6) for
    TX and the button (R7) for RX, on connector J19's LED/KEY pads."""

    resources = [r for r in Colorlight_5A75B_R70Platform.resources if r.name not in _R8_REPLACED] + [
        Resource("clk25", 0, Pins("P6", dir="i"), Clock(25e6), Attrs(IO_TYPE="LVCMOS33")),
        *LEDResources(pins="T6", invert=True, attrs=Attrs(IO_TYPE="LVCMOS33", DRIVE="4")),
        *ButtonResources(pins="R7", invert=True, attrs=Attrs(IO_TYPE="LVCMOS33", PULLMODE="UP")),
        UARTResource(0, tx="T6", rx="R7", attrs=Attrs(IO_TYPE="LVCMOS33")),
        *split_rgmii_resources([
            Resource("eth_rgmii", 0,
                     Subsignal("rst", PinsN("R6", dir="o")),
                     Subsignal("mdc", Pins("R5", dir="o")),
                     Subsignal("mdio", Pins("T4", dir="io")),
                     Subsignal("tx_clk", Pins("L1", dir="o")),
                     Subsignal("tx_ctl", Pins("L2", dir="o")),
                     Subsignal("tx_data", Pins("M2 M1 P1 R1", dir="o")),
                     Subsignal("rx_clk", Pins("J1", dir="i")),
                     Subsignal("rx_ctl", Pins("J2", dir="i")),
                     Subsignal("rx_data", Pins("K2 J3 K1 K3", dir="i")),
                     Attrs(IO_TYPE="LVCMOS33")),
            Resource("eth_rgmii", 1,
                     Subsignal("rst", PinsN("R6", dir="o")),
                     Subsignal("mdc", Pins("R5", dir="o")),
                     Subsignal("mdio", Pins("T4", dir="io")),
                     Subsignal("tx_clk", Pins("J16", dir="o")),
                     Subsignal("tx_ctl", Pins("K14", dir="o")),
                     Subsignal("tx_data", Pins("K16 J15 J14 K15", dir="o")),
                     Subsignal("rx_clk", Pins("M16", dir="i")),
                     Subsignal("rx_ctl", Pins("P16", dir="i")),
                     Subsignal("rx_data", Pins("M15 R16 L15 L16", dir="i")),
                     Attrs(IO_TYPE="LVCMOS33")),
        ], shared_mgmt=True),
    ]
    # The R7.0 connectors carry R7.0 pins; R8.0's HUB75 pinout differs.
    connectors = []


class VersaECP5TwinPlatform(VersaECP5Platform):
    """Lattice ECP5 Versa (LFE5UM-45F): two Marvell 88E1512 PHYs, each with its own rst/MDC/MDIO."""

    resources = split_rgmii_resources(VersaECP5Platform.resources, shared_mgmt=False)


class ECPIX5Platform(ECPIX545Platform):
    """LambdaConcept ECPIX-5 (LFE5UM5G-45F): one Microchip KSZ9031 PHY."""

    resources = split_rgmii_resources(ECPIX545Platform.resources, shared_mgmt=False)
