"""The DFS (``hdl/dfs/top.py``'s ``DFSCore``) behind the board contract of
:mod:`.core`: port streams renamed, configuration fields and counters mapped.

# Ref: boards/core.py (the contract), hdl/dfs/top.py (the DFS)

Port roles: port 0 external, port 1 internal (message port); on a one-port
board the single port carries both.  Flow-table size: ``flow_entries`` is
rounded down to 4 tables x 2 ways x a power-of-two bucket count (the DFS
default geometry's shape); the capacity actually built is reported.
``cs_ip``/``cs_mac``/``cs_port`` of the console are not consumed by the DFS
yet (it learns the CS from the message port).
"""

from amaranth import Module
from amaranth.lib import wiring

from .core import CORE_COUNTERS, core_signature

__all__ = ["DFSBoardCore", "board_core"]

TABLES, WAYS = 4, 2


class DFSBoardCore(wiring.Component):
    """``DFSBoardCore(n_ports, flow_entries)``."""

    def __init__(self, n_ports: int = 2, flow_entries: int = 1024):
        from twinplane.hdl.dfs.top import DEFAULT_GEOMETRY, DFSCore

        if n_ports not in (1, 2):
            raise ValueError(f"the DFS board core has 1 or 2 ports, not {n_ports!r}")
        if not isinstance(flow_entries, int) or flow_entries < TABLES * WAYS * 2:
            raise ValueError(f"flow_entries must be an int >= {TABLES * WAYS * 2}, not {flow_entries!r}")
        buckets = 1 << ((flow_entries // (TABLES * WAYS)).bit_length() - 1)
        geometry = DEFAULT_GEOMETRY.__class__(
            key_width=DEFAULT_GEOMETRY.key_width, action_width=DEFAULT_GEOMETRY.action_width,
            buckets=buckets, ways=WAYS, tables=TABLES, ts_width=DEFAULT_GEOMETRY.ts_width)
        self._dfs = DFSCore(ports=n_ports, external_ports=(0,), internal_port=n_ports - 1, geometry=geometry)
        self._n = n_ports
        self.name = "dfs"
        self.flow_entries = buckets * WAYS * TABLES
        super().__init__(core_signature(n_ports))

    def elaborate(self, platform):
        from twinplane.hdl.dfs.top import _COUNTERS

        m = Module()
        m.submodules.dfs = dfs = self._dfs
        for i in range(self._n):
            wiring.connect(m, outside=wiring.flipped(getattr(self, f"rx{i}")), dfs=dfs.rx[i])
            wiring.connect(m, dfs=dfs.tx[i], outside=wiring.flipped(getattr(self, f"tx{i}")))
        m.d.comb += [dfs.key.eq(self.config.key), dfs.own_mac.eq(self.config.own_mac),
                     dfs.own_ip.eq(self.config.own_ip)]
        for j, name in enumerate(_COUNTERS[:CORE_COUNTERS]):
            m.d.comb += self.counters[j].eq(getattr(dfs, name))
        return m


def board_core(n_ports: int, flow_entries: int) -> DFSBoardCore:
    return DFSBoardCore(n_ports, flow_entries)
