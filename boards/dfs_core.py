"""The DFS (``hdl/dfs/top.py``'s ``DFSCore``) behind the board contract of
:mod:`.core`: port streams renamed, configuration fields and counters mapped.

# Ref: boards/core.py (the contract), hdl/dfs/top.py (the DFS)

Port roles: port 0 external, port 1 internal (message port).  On a one-port
board with ``vlans=(external_vid, internal_vid)`` the two networks are
802.1Q VLANs on the single port: a :class:`VlanSplit` feeds the DFS's two
ports and a :class:`VlanMerge` tags what they send (``hdl/vlan/``); frames
of other VLANs or untagged ones are dropped (``vlan_dropped``).  Without
``vlans`` the single port carries both roles untagged.  Flow-table size: ``flow_entries`` is
rounded down to 4 tables x 2 ways x a power-of-two bucket count (the DFS
default geometry's shape); the capacity actually built is reported.
The console's ``cs_ip`` with the build's ``cs_prefix`` (a constructor
argument: a console register for it moved the Colorlight's marginal FIFO
path below its timing margin, docs/boards.md) say whose messages the DFS
takes: a source in that network; prefix 0, the default, takes any
authenticated CS.  ``cs_mac``/``cs_port`` are not consumed (the DFS learns
each CS's addresses from its HELLO).
"""

from amaranth import Module, Signal
from amaranth.lib import wiring

from .core import CORE_COUNTERS, core_signature

__all__ = ["DFSBoardCore", "board_core"]

TABLES, WAYS = 4, 2


class DFSBoardCore(wiring.Component):
    """``DFSBoardCore(n_ports, flow_entries, vlans=(), cs_prefix=0)``."""

    def __init__(self, n_ports: int = 2, flow_entries: int = 1024, vlans: tuple[int, ...] = (),
                 cs_prefix: int = 0):
        from twinplane.hdl.dfs.top import DEFAULT_GEOMETRY, DFSCore
        from twinplane.hdl.vlan import check_vids

        if n_ports not in (1, 2):
            raise ValueError(f"the DFS board core has 1 or 2 ports, not {n_ports!r}")
        if vlans:
            if n_ports != 1:
                raise ValueError(f"vlans is for a one-port board, not one with {n_ports!r} ports")
            vlans = check_vids(vlans)
            if len(vlans) != 2:
                raise ValueError(f"vlans must be (external, internal) VLAN ids, not {vlans!r}")
        self.vlans = tuple(vlans)
        if not isinstance(cs_prefix, int) or not 0 <= cs_prefix <= 32:
            raise ValueError(f"cs_prefix must be an integer 0..32, not {cs_prefix!r}")
        self.cs_prefix = cs_prefix
        if not isinstance(flow_entries, int) or flow_entries < TABLES * WAYS * 2:
            raise ValueError(f"flow_entries must be an int >= {TABLES * WAYS * 2}, not {flow_entries!r}")
        buckets = 1 << ((flow_entries // (TABLES * WAYS)).bit_length() - 1)
        geometry = DEFAULT_GEOMETRY.__class__(
            key_width=DEFAULT_GEOMETRY.key_width, action_width=DEFAULT_GEOMETRY.action_width,
            buckets=buckets, ways=WAYS, tables=TABLES, ts_width=DEFAULT_GEOMETRY.ts_width)
        dfs_ports = 2 if self.vlans else n_ports
        self._dfs = DFSCore(ports=dfs_ports, external_ports=(0,), internal_port=dfs_ports - 1, geometry=geometry)
        self._n = n_ports
        self.name = "dfs"
        self.flow_entries = buckets * WAYS * TABLES
        super().__init__(core_signature(n_ports))
        # Frames of no listed VLAN (VLAN mode).  Not among the console's eight
        # core counters, which the board contract fixes to the DFS's.
        self.vlan_dropped = Signal(32)

    def elaborate(self, platform):
        from twinplane.hdl.dfs.top import _COUNTERS

        m = Module()
        m.submodules.dfs = dfs = self._dfs
        if self.vlans:
            from twinplane.hdl.stream.skid import SkidBuffer
            from twinplane.hdl.vlan import VlanMerge, VlanSplit

            m.submodules.vlan_split = split = VlanSplit(self.vlans)
            m.submodules.vlan_merge = merge = VlanMerge(self.vlans)
            wiring.connect(m, outside=wiring.flipped(self.rx0), split=split.sink)
            wiring.connect(m, merge=merge.source, outside=wiring.flipped(self.tx0))
            for i in range(2):
                # A skid buffer between: the DFS's frame buffer's `full`
                # through the split's state into the MAC FIFO's read enable
                # (block RAM CEB) was the ECPIX-5's only path past 137.5 MHz
                # (7.98 ns, 24 endpoints).
                m.submodules[f"vlan_skid{i}"] = skid = SkidBuffer(split.sources[i].signature)
                wiring.connect(m, split=split.sources[i], skid=skid.sink)
                wiring.connect(m, skid=skid.source, dfs=dfs.rx[i])
                wiring.connect(m, dfs=dfs.tx[i], merge=merge.sinks[i])
            m.d.comb += self.vlan_dropped.eq(split.dropped)
        else:
            for i in range(self._n):
                wiring.connect(m, outside=wiring.flipped(getattr(self, f"rx{i}")), dfs=dfs.rx[i])
                wiring.connect(m, dfs=dfs.tx[i], outside=wiring.flipped(getattr(self, f"tx{i}")))
        m.d.comb += [dfs.key.eq(self.config.key), dfs.own_mac.eq(self.config.own_mac),
                     dfs.own_ip.eq(self.config.own_ip),
                     # Messages only from the CS network (console cs_ip / cs_prefix; prefix 0: any).
                     dfs.cs_net.eq(self.config.cs_ip), dfs.cs_prefix.eq(self.cs_prefix)]
        for j, name in enumerate(_COUNTERS[:CORE_COUNTERS]):
            m.d.comb += self.counters[j].eq(getattr(dfs, name))
        return m


def board_core(n_ports: int, flow_entries: int, vlans: tuple[int, ...] = (), cs_prefix: int = 0) -> DFSBoardCore:
    return DFSBoardCore(n_ports, flow_entries, vlans, cs_prefix)
