"""The contract between a board top and the core it carries (the DFS).

A core is built by a factory ``factory(n_ports=..., flow_entries=...)`` and
is a ``wiring.Component`` whose signature is :func:`core_signature`:

- ``rx{i}``: ``In(packet_signature(8))`` -- frames received on port ``i``
  (from the MAC; preamble/SFD/FCS stripped, only good frames), core domain.
- ``tx{i}``: ``Out(packet_signature(8))`` -- frames to send on port ``i``
  (the MAC adds padding and FCS).  Once a frame has started, its bytes must
  follow back to back (the MAC has no transmit FIFO; a gap is an underrun).
- ``config``: ``In(CONFIG_LAYOUT)`` -- the live configuration from the UART
  register console (build-time values until someone writes them).
- ``counters``: ``Out(ArrayLayout(32, CORE_COUNTERS))`` -- read by the console
  at registers ``COUNTER_BASE + i``; all in the core (``sync``) domain.

Everything runs in ``sync`` (125 MHz).  A core also sets the attributes
``name`` (str, for the build report) and ``flow_entries`` (int, flow-table
capacity actually built; 0 for a core without one).
"""

from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..hdl.packet import packet_signature
from ..hdl.uart.regmap import CONFIG_LAYOUT

__all__ = ["CORE_COUNTERS", "check_core", "core_signature"]

CORE_COUNTERS = 8


def core_signature(n_ports: int) -> wiring.Signature:
    if not isinstance(n_ports, int) or not 1 <= n_ports <= 4:
        raise ValueError(f"n_ports must be 1..4, not {n_ports!r}")
    members = {}
    for i in range(n_ports):
        members[f"rx{i}"] = In(packet_signature(8))
        members[f"tx{i}"] = Out(packet_signature(8))
    members["config"] = In(CONFIG_LAYOUT)
    members["counters"] = Out(data.ArrayLayout(32, CORE_COUNTERS))
    return wiring.Signature(members)


def check_core(core, n_ports: int) -> None:
    """Raise TypeError unless ``core`` honours the contract for ``n_ports``."""
    want = core_signature(n_ports)
    if not isinstance(core, wiring.Component) or core.signature != want:
        raise TypeError(f"core {core!r} does not have the board contract's signature {want!r}")
    for attr, kind in (("name", str), ("flow_entries", int)):
        if not isinstance(getattr(core, attr, None), kind):
            raise TypeError(f"core {core!r} lacks a {kind.__name__} attribute {attr!r}")
