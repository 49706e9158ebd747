"""H3 hash in gateware: each index bit is the parity of the key ANDed with a mask.

Ref: Carter & Wegman, "Universal classes of hash functions" (1979), class H3.
The masks come from :func:`twinplane.model.flowtable.h3_masks`, so gateware
and model hash alike.  Cost: one XOR tree of about ``key_width / 2`` inputs per
index bit, a few LUT levels, no clock.
"""

from amaranth.hdl import Cat, Const, Value

__all__ = ["h3_index"]


def h3_index(key: Value, masks: list[int]) -> Value:
    """The index (``len(masks)`` bits) of ``key`` under one table's masks."""
    if not masks:
        raise ValueError(f"masks must not be empty, not {masks!r}")
    width = len(key)
    return Cat(*((key & Const(m, width)).xor() for m in masks))
