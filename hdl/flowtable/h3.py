"""H3 hash in gateware: each index bit is the parity of the key ANDed with a mask.

Ref: Carter & Wegman, "Universal classes of hash functions" (1979), class H3.
The masks come from :func:`twinplane.model.flowtable.h3_masks`, so gateware
and model hash alike.  Cost: one XOR tree of about ``key_width / 2`` inputs per
index bit, a few LUT levels, no clock.
"""

from amaranth.hdl import Cat, Const, Instance, Module, Mux, Signal, Value

from ..lut4 import builds_lut4s

__all__ = ["h3_index", "h3_parts", "h3_restore"]


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


def _xor_tree(m: Module, bits: list[Value], name: str, ecp5: bool) -> Value:
    """The parity of ``bits`` as a balanced tree of 4-input XORs; on ECP5
    each an instantiated LUT4: left to itself, ABC shares XOR subtrees
    between index bits (their masks overlap) into chains of 5 levels where 3
    do (it deepens paths up to the design's deepest to save area; a ``keep``
    signal per XOR did not stop it)."""
    level = 0
    while len(bits) > 1:
        nxt = []
        for i in range(0, len(bits), 4):
            group = bits[i:i + 4]
            x = Signal(name=f"{name}_x{level}_{i // 4}")
            if ecp5 and len(group) > 1:
                group = group + [Const(0)] * (4 - len(group))
                m.submodules[f"{name}_lut{level}_{i // 4}"] = Instance(
                    "LUT4", p_INIT=Const(0x6996, 16), i_A=group[0], i_B=group[1], i_C=group[2],
                    i_D=group[3], o_Z=x)
            else:
                m.d.comb += x.eq(Cat(*group).xor())
            nxt.append(x)
        bits, level = nxt, level + 1
    return bits[0]


def h3_parts(key: Value, masks: list[int], parts: int, *, m: Module | None = None,
             name: str = "h3", platform=None) -> list[Value]:
    """``parts`` values whose XOR is :func:`h3_index` of ``key``: each index
    bit's mask split into ``parts`` groups of about equal count (H3 is
    linear), so a pipeline can register the groups' parities and XOR them a
    clock later (one LUT for up to four groups).  With a module ``m``, each
    group's parity is a balanced tree of 4-input XORs (``name`` names them),
    LUT4 instances where ``platform.family`` is "ecp5": ``ceil(log4(n))``
    LUT levels for ``n`` key bits."""
    if not masks:
        raise ValueError(f"masks must not be empty, not {masks!r}")
    if parts < 1:
        raise ValueError(f"parts must be at least 1, not {parts!r}")
    width = len(key)
    out = [[] for _ in range(parts)]
    for j, mask in enumerate(masks):
        ones = [i for i in range(width) if mask >> i & 1]
        for p in range(parts):
            group = ones[p * len(ones) // parts:(p + 1) * len(ones) // parts]
            if m is None:
                out[p].append((key & Const(sum(1 << i for i in group), width)).xor())
            else:
                out[p].append(_xor_tree(m, [key[i] for i in group], f"{name}_{j}_{p}",
                                        builds_lut4s(platform)))
    return [Cat(*bits) for bits in out]
