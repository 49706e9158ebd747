"""The boards twinplane builds for, by name, with what each one needs.

Port roles: ``external`` faces the clients (and the virtual servers' public
addresses), ``internal`` faces the servers.  A one-port board (ECPIX-5)
carries both roles as 802.1Q VLANs on its single port: ``vlans`` gives the
(external, internal) VLAN ids the DFS core builds in (``--vlans`` changes
them).
"""

from __future__ import annotations

from dataclasses import dataclass

from .platforms import (
    Colorlight5A75BR7Platform,
    Colorlight5A75BR8Platform,
    ECPIX5Platform,
    VersaECP5TwinPlatform,
)

__all__ = ["BOARDS", "BoardSpec", "get_board"]


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
            notes="88E1512: RX clock delay must be enabled over MDIO (not done yet); TX from the PLL 90-degree phase"),
        BoardSpec(
            "ecpix5", ECPIX5Platform, "clk100", 100e6, ("external",), "tx90",
            activity_leds=("rgb_led:0",),
            notes="KSZ9031: one port, external/internal as 802.1Q VLANs (10/20 by default); "
                  "TX from the PLL 90-degree phase",
            vlans=(10, 20)),
    )
}


def get_board(name: str) -> BoardSpec:
    if name not in BOARDS:
        raise ValueError(f"unknown board {name!r}; known: {', '.join(BOARDS)}")
    return BOARDS[name]
