"""The boards twinplane builds for, by name, with what each one needs.

Port roles: ``external`` faces the clients (and the virtual servers' public
addresses), ``internal`` faces the servers.  A one-port board (ECPIX-5)
carries both roles as 802.1Q VLANs on its single port: ``vlans`` gives the
(external, internal) VLAN ids the DFS core builds in (``--vlans`` changes
them).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..hdl.mdio import PhyOp
from .platforms import (
    Colorlight5A75BR7Platform,
    Colorlight5A75BR8Platform,
    ECPIX5Platform,
    VersaECP5TwinPlatform,
)

__all__ = ["BOARDS", "KSZ9031_RX_DELAY", "MARVELL_88E1512_RX_DELAY", "BoardSpec", "get_board"]


@dataclass(frozen=True)
class BoardSpec:
    name: str
    platform: type
    """amaranth platform class (a subclass from :mod:`.platforms`)."""
    clock: str
    """oscillator resource feeding the PLL"""
    clock_hz: float
    roles: tuple[str, ...]
    """port role per ``eth_rgmii`` index"""
    tx_clk_domain: str
    """``"sync"`` when the PHY delays TX_CLK itself (strapped RGMII-TXID),
    ``"tx90"`` to drive TX_CLK from the PLL's 90-degree output"""
    activity_leds: tuple[str, ...] = ()
    """(resource, number) per port for a link/activity LED, ``"name:n"``"""
    uart_shares_led: bool = False
    """the UART TX pin is the LED pin: no LED when the console is on"""
    notes: str = ""
    vlans: tuple[int, ...] = ()
    """one-port boards: the (external, internal) 802.1Q VLAN ids by default"""
    phy_init: tuple[PhyOp, ...] = ()
    """MDIO register writes each PHY found gets after power-up (hdl/mdio/)"""
    default_core: str = "bridge"
    """what ``twinplane build`` builds without ``--core``: ``"dfs"`` on the
    boards where the DFS meets every clock with 10 % margin, the interim
    ``"bridge"`` where it does not yet (docs/boards.md, "The DFS on the boards")"""
    flow_entries: int = 1024
    """the largest DFS flow table that fits the device's block RAM, the
    default ``--flows`` (4096 entries need about 125 EBR, 2048 about 81)"""


#: Marvell 88E1512 (Versa): page 2 register 21 bit 5 delays RX_CLK (RGMII-RXID;
#: TX comes from the PLL's 90-degree phase), then back to page 0 and a soft
#: reset (register 0 bit 15), which the change needs to take effect.
MARVELL_88E1512_RX_DELAY = (PhyOp(22, 2), PhyOp(21, 0x0020, keep=0xFFFF), PhyOp(22, 0),
                            PhyOp(0, 0x8000, keep=0xFFFF))
#: Microchip KSZ9031 (ECPIX-5): MMD 2 pad skews through registers 13/14.  Its
#: skews cannot delay RX_CLK by a full 2 ns: RX_CLK +0.96 ns (register 8,
#: bits 4:0 = 31; GTX_CLK left at 0 ns, TX uses the PLL's 90-degree phase),
#: RX_DV and RXD0..3 -0.42 ns (registers 4 and 5): 1.38 ns clock to data.
KSZ9031_RX_DELAY = tuple(op for reg, value in ((8, 0x01FF), (5, 0x0000), (4, 0x0007))
                         for op in (PhyOp(13, 0x0002), PhyOp(14, reg), PhyOp(13, 0x4002), PhyOp(14, value)))


BOARDS: dict[str, BoardSpec] = {
    spec.name: spec
    for spec in (
        BoardSpec(
            "colorlight-5a-75b", Colorlight5A75BR8Platform, "clk25", 25e6, ("external", "internal"), "sync",
            activity_leds=("led:0",), uart_shares_led=True,
            notes="R8.0 (RTL8211FD); pins from chubby75 hardware_V8.0.md; PHY delays by strapping; "
                  "PHY reset never asserted (PHY 1 drives the FPGA clock)"),
        BoardSpec(
            "colorlight-5a-75b-r7", Colorlight5A75BR7Platform, "clk25", 25e6, ("external", "internal"), "sync",
            activity_leds=("led:0",), uart_shares_led=True,
            notes="R7.0 (B50612D); PHY delays by strapping"),
        BoardSpec(
            "versa-ecp5", VersaECP5TwinPlatform, "clk100", 100e6, ("external", "internal"), "tx90",
            activity_leds=("led:0", "led:1"),
            notes="88E1512: RX clock delay enabled over MDIO at power-up; TX from the PLL 90-degree phase",
            phy_init=MARVELL_88E1512_RX_DELAY, default_core="dfs", flow_entries=2048),
        BoardSpec(
            "ecpix5", ECPIX5Platform, "clk100", 100e6, ("external",), "tx90",
            activity_leds=("rgb_led:0",),
            notes="KSZ9031: one port, external/internal as 802.1Q VLANs (10/20 by default); "
                  "RX clock skew set over MDIO at power-up; TX from the PLL 90-degree phase",
            vlans=(10, 20), phy_init=KSZ9031_RX_DELAY, default_core="dfs", flow_entries=2048),
    )
}


def get_board(name: str) -> BoardSpec:
    if name not in BOARDS:
        raise ValueError(f"unknown board {name!r}; known: {', '.join(BOARDS)}")
    return BOARDS[name]
