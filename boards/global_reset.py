"""The core's reset on one of the ECP5's global networks.

Every flip-flop of the DFS has a synchronous reset, about 15k of them on one
net.  nextpnr-ecp5 puts clocks on the global networks by itself but not
other nets (ecp5/globals.cc promotes clock nets only), so the reset was
routed through the fabric: in the whole DFS routed on the 45F its paths
were the second worst (11.7 ns of routing).  A DCCA (Lattice TN1263,
"dynamic clock control") puts a net on a global; the global's fabric
branches reach every slice's LSR.
"""

from amaranth import Instance, Module, Signal

__all__ = ["global_net"]


def global_net(m: Module, net, platform, *, name: str) -> Signal:
    """``net`` as a global network on ECP5 (through a DCCA), unchanged
    elsewhere (simulation, other families)."""
    if getattr(platform, "family", None) != "ecp5":
        return net
    out = Signal(name=f"{name}_global")
    m.submodules[f"{name}_dcca"] = Instance("DCCA", i_CLKI=net, i_CE=1, o_CLKO=out)
    return out
