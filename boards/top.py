"""Board top level: clocking, reset, RGMII MACs per port, PHY management
pins, the UART register console, LEDs, and the core (the DFS) in between.

# Ref: RGMII v2.0 (HP, 2002); board details in registry.py / platforms.py

This file only connects blocks.  The core comes from a factory so the board
does not depend on which core it carries (see :mod:`.core` for the
contract); the default is the interim L2 bridge until ``hdl/dfs/top.py``
exists.

Domains: ``sync`` (125 MHz from the PLL), ``tx90`` (its 90-degree copy),
``rx{i}`` (port i's receive clock from its PHY).  Every MAC counter the
console reads is in ``sync`` (the MAC's transmit counters); receive counters
live in ``rx{i}`` and are not exported (a multi-bit counter cannot cross
clocks by two flops).
"""

from __future__ import annotations

from amaranth import ClockDomain, DomainRenamer, Elaboratable, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer

from ..hdl.mac.rgmii_mac import RGMIIMac
from ..hdl.mdio import PHYInit
from ..hdl.uart.console import RegisterConsole
from ..hdl.uart.regmap import N_COUNTERS
from .core import CORE_COUNTERS, check_core
from .pll import ECP5PLL
from .registry import BoardSpec

__all__ = ["BoardTop"]

LED_STRETCH_BITS = 22  # 2**22 cycles at 125 MHz = 34 ms: a visible blink per frame


class BoardTop(Elaboratable):
    """``BoardTop(spec, core, *, console=True, divisor=1085)``.

    ``core`` is a component honouring :func:`.core.check_core` for
    ``len(spec.roles)`` ports.  With ``console`` the UART register console
    is built; ``console_config`` (field -> value, see ``CONFIG_LAYOUT``)
    gives its registers' build-time values.
    """

    def __init__(self, spec: BoardSpec, core, *, console: bool = True, divisor: int = 1085,
                 console_config: dict | None = None):
        if not isinstance(spec, BoardSpec):
            raise TypeError(f"spec must be a BoardSpec, not {spec!r}")
        check_core(core, len(spec.roles))
        self.spec = spec
        self.core = core
        self.console = RegisterConsole(divisor, console_config) if console else None

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.domains.tx90 = ClockDomain("tx90", reset_less=True)
        m.submodules.pll = pll = ECP5PLL(spec.clock_hz)
        clk = platform.request(spec.clock, 0, dir="-")
        m.submodules.clk_buf = clk_buf = io.Buffer("i", clk)
        m.d.comb += pll.clk_in.eq(clk_buf.i)

        m.submodules.core = core = self.core
        n = len(spec.roles)
        macs = []
        for i in range(n):
            pins = platform.request("eth_rgmii", i, dir="-")
            mac = DomainRenamer({"rx": f"rx{i}"})(RGMIIMac("io", pins, tx_clk_domain=spec.tx_clk_domain))
            m.submodules[f"mac{i}"] = mac
            macs.append(mac)
            # Port i: MAC source -> core rx{i}; core tx{i} -> MAC sink.
            m.d.comb += [
                getattr(core, f"rx{i}").valid.eq(mac.source.valid),
                getattr(core, f"rx{i}").payload.eq(mac.source.payload),
                mac.source.ready.eq(getattr(core, f"rx{i}").ready),
                mac.sink.valid.eq(getattr(core, f"tx{i}").valid),
                mac.sink.payload.eq(getattr(core, f"tx{i}").payload),
                getattr(core, f"tx{i}").ready.eq(mac.sink.ready),
            ]
        # PHY management: reset released; where the board's PHY needs registers
        # written (spec.phy_init: the RGMII clock delays), an MDIO master finds
        # the PHYs and writes them after power-up; otherwise MDC stays low and
        # MDIO is left to the PHY's pull-up.
        mgmt_numbers = sorted({r.number for r in platform.resources.values() if r.name == "eth_mgmt"})
        for k in mgmt_numbers:
            mgmt = platform.request("eth_mgmt", k, dir="-")
            m.submodules[f"phy_rst{k}"] = rst = io.Buffer("o", mgmt.rst)  # active low on the pin
            m.submodules[f"phy_mdc{k}"] = mdc = io.Buffer("o", mgmt.mdc)
            m.d.comb += rst.o.eq(0)
            if spec.phy_init:
                m.submodules[f"phy_init{k}"] = init = PHYInit(spec.phy_init)
                m.submodules[f"phy_mdio{k}"] = mdio = io.Buffer("io", mgmt.mdio)
                m.submodules[f"phy_mdio_sync{k}"] = FFSynchronizer(mdio.i, init.mdio_i, init=1)
                m.d.comb += [mdc.o.eq(init.mdc), mdio.o.eq(init.mdio_o), mdio.oe.eq(init.mdio_oe)]
            else:
                m.d.comb += mdc.o.eq(0)

        if self.console is not None:
            m.submodules.console = cons = self.console
            uart = platform.request("uart", 0, dir="-")
            m.submodules.uart_rx = uart_rx = io.Buffer("i", uart.rx)
            m.submodules.uart_tx = uart_tx = io.Buffer("o", uart.tx)
            m.d.comb += [cons.rx.eq(uart_rx.i), uart_tx.o.eq(cons.tx), core.config.eq(cons.config)]
            # Registers COUNTER_BASE+0..7: the core's; +8..: per port MAC tx_frames, tx_bytes.
            for j in range(CORE_COUNTERS):
                m.d.comb += cons.counters[j].eq(core.counters[j])
            for i, mac in enumerate(macs):
                if CORE_COUNTERS + 2 * i + 1 < N_COUNTERS:
                    m.d.comb += [cons.counters[CORE_COUNTERS + 2 * i].eq(mac.tx_frames),
                                 cons.counters[CORE_COUNTERS + 2 * i + 1].eq(mac.tx_bytes)]

        # LEDs: on while port i's receive clock runs (the PHY has a link),
        # blinking off for a moment on each frame received.
        if not (self.console is not None and spec.uart_shares_led):
            for i, led_name in enumerate(spec.activity_leds[:n]):
                name, number = led_name.split(":")
                led = platform.request(name, int(number), dir="-")
                # The RGB LED's green element; plain LEDs are one pin.
                m.submodules[f"led{i}"] = buf = io.Buffer("o", led.g if name == "rgb_led" else led)
                link, act = self._link_activity(m, i, getattr(core, f"rx{i}"))
                m.d.comb += buf.o.eq(link & ~act)
        return m

    @staticmethod
    def _link_activity(m, i, rx_stream, stretch_bits=LED_STRETCH_BITS):
        beat = Signal(20, name=f"rx{i}_beat")
        m.d[f"rx{i}"] += beat.eq(beat + 1)
        beat_msb = Signal(name=f"rx{i}_beat_msb")
        m.submodules[f"beat_sync{i}"] = FFSynchronizer(beat[-1], beat_msb)
        last_msb, alive = Signal(), Signal(stretch_bits + 2)
        m.d.sync += last_msb.eq(beat_msb)
        with m.If(beat_msb != last_msb):
            m.d.sync += alive.eq((1 << (stretch_bits + 2)) - 1)
        with m.Elif(alive != 0):
            m.d.sync += alive.eq(alive - 1)
        # A frame's end, registered: the core's ready (its frame buffer's
        # state) ran on into the stretcher's enable across the die.  The
        # stretcher counts up from 0 and stops at its top bit, so its enable
        # is two flops (a "not zero" compare of the count was 2 levels more):
        # 7.79 ns on the Versa, the only late path of a DFS build.
        frame_end = Signal(name=f"rx{i}_frame_end")
        m.d.sync += frame_end.eq(rx_stream.valid & rx_stream.ready & rx_stream.payload.last)
        act = Signal(stretch_bits + 1, name=f"rx{i}_act", init=1 << stretch_bits)
        with m.If(frame_end):
            m.d.sync += act.eq(0)
        with m.Elif(~act[-1]):
            m.d.sync += act.eq(act + 1)
        # Off for the first half of the count (2**(stretch_bits - 1) clocks).
        return alive != 0, ~act[-1] & ~act[-2]
