# One-hot selection as an AND-OR: the mux a timing-driven design wants when
# its selects are registered one-hot flags (one LUT level per pair of inputs,
# no binary decode in front).
"""``onehot_mux(selects, values)``: the OR of the values whose select is set."""

from amaranth import Mux

__all__ = ["onehot_mux"]


def onehot_mux(selects, values):
    """The OR of ``values[i]`` whose ``selects[i]`` is set: their value when
    one select is set, 0 when none.  ``selects``: one-bit values (a list, or
    a Signal indexed bit by bit), as many as ``values``."""
    values = list(values)
    if len(selects) != len(values):
        raise ValueError(f"{len(selects)} selects for {len(values)} values")
    result = 0
    for i, v in enumerate(values):
        result = result | Mux(selects[i], v, 0)
    return result
