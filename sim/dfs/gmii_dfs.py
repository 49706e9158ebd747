"""The whole DFS pipeline as a board has it, minus pins: a GMII MAC on each
port of ``DFSCore``, for the cocotb pipeline test (sim/dfs/pipeline_tb.py)
where cocotbext-eth's GMII models are the far ends of both links.

# Ref: IEEE 802.3-2018 §35 (GMII); docs/dfs.md (the DFS); boards/core.py
#      (the same MAC + DFS arrangement on a board)

Everything runs in ``sync`` (the PHY's receive clock is the core clock, as
in ``tests/test_mac.py``).  Wire pins are named per port, ``p0_rxd``,
``p0_rx_dv``, ..., so cocotb finds them without Amaranth's array
flattening, and so are the MACs' counters (``p0_rx_fcs_errors``, ...);
the DFS's configuration inputs, ``now`` and counters keep their names.
"""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from twinplane.hdl.dfs.top import _COUNTERS
from twinplane.hdl.mac.gmii_mac import COUNTERS as MAC_COUNTERS
from twinplane.hdl.mac.gmii_mac import GMIIMac

__all__ = ["GmiiDFS"]

_PINS = {"rxd": In(8), "rx_dv": In(1), "rx_er": In(1), "txd": Out(8), "tx_en": Out(1), "tx_er": Out(1)}


class GmiiDFS(wiring.Component):
    """``GmiiDFS(dfs)``: ``dfs`` (a ``DFSCore``) with a ``GMIIMac`` per port."""

    def __init__(self, dfs):
        self._dfs = dfs
        self._ports = len(dfs.rx)
        super().__init__({
            **{f"p{i}_{pin}": member for i in range(self._ports) for pin, member in _PINS.items()},
            "key": In(128),
            "own_mac": In(48),
            "own_ip": In(32),
            "now": Out(dfs.geometry.ts_width),
            **{name: Out(32) for name in _COUNTERS},
            **{f"p{i}_{name}": Out(32) for i in range(self._ports) for name in MAC_COUNTERS},
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.dfs = dfs = self._dfs
        for i in range(self._ports):
            mac = GMIIMac(rx_domain="sync")
            m.submodules[f"mac{i}"] = mac
            wiring.connect(m, mac.source, dfs.rx[i])
            wiring.connect(m, dfs.tx[i], mac.sink)
            for pin, member in _PINS.items():
                outer, inner = getattr(self, f"p{i}_{pin}"), getattr(mac, pin)
                m.d.comb += outer.eq(inner) if member.flow == Out else inner.eq(outer)
            m.d.comb += [getattr(self, f"p{i}_{name}").eq(getattr(mac, name)) for name in MAC_COUNTERS]
        m.d.comb += [dfs.key.eq(self.key), dfs.own_mac.eq(self.own_mac), dfs.own_ip.eq(self.own_ip)]
        m.d.comb += [getattr(self, name).eq(getattr(dfs, name)) for name in _COUNTERS]
        m.d.comb += self.now.eq(dfs.now)
        return m
