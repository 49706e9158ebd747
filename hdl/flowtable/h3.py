"""H3 hash in gateware: each index bit is the parity of the key ANDed with a mask.

Ref: Carter & Wegman, "Universal classes of hash functions" (1979), class H3.
The masks come from :func:`twinplane.model.flowtable.h3_masks`, so gateware
and model hash alike.  Cost: one XOR tree of about ``key_width / 2`` inputs per
index bit, a few LUT levels, no clock.
"""

from amaranth.hdl import Cat, Const, Mux, Value

__all__ = ["h3_index", "h3_restore"]


def h3_index(key: Value, masks: list[int]) -> Value:
    """The index (``len(masks)`` bits) of ``key`` under one table's masks."""
    if not masks:
        raise ValueError(f"masks must not be empty, not {masks!r}")
    width = len(key)
    return Cat(*((key & Const(m, width)).xor() for m in masks))


def h3_restore(table: Value, bucket: Value, rest: Value, masks: list[list[int]]) -> Value:
    """The full key stored as ``rest`` in ``bucket`` of sub-table ``table``.

    ``masks[t][j]`` holds key bit ``j`` and no other low key bit (see
    :func:`twinplane.model.flowtable.h3_masks`), so bit ``j`` is the bucket's
    bit ``j`` XOR the parity of the rest under the mask.
    """
    ib = len(masks[0])
    low = Const(0, ib)
    for t in reversed(range(len(masks))):
        bits = Cat(*(bucket[j] ^ (rest & Const(masks[t][j] >> ib, len(rest))).xor()
                     for j in range(ib)))
        low = Mux(table == t, bits, low)
    return Cat(low, rest)
