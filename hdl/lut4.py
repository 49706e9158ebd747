"""Logic as ECP5 LUT4 instances where a path's depth matters.

Left to itself, Yosys's LUT mapper (ABC) trades depth for area wherever a
path has slack *in its own view*: it chains an AND-OR's terms or a compare's
bit pairs up to the design's deepest path (5-6 LUT levels), which on a
congested 25F costs a late endpoint.  An instantiated LUT4 is kept as it is,
so a balanced tree of them holds its ``ceil(log4(n))`` levels.

Every helper takes ``instance``: ``True`` builds LUT4 instances, ``False``
the same function as plain Amaranth logic (the simulator cannot run a LUT4;
``tests/test_lut4_equivalence.py`` proves the two builds of each block that
uses these equal).  :func:`builds_lut4s` says which a platform gets.
"""

import operator
from functools import reduce

from amaranth import Cat, Const, Instance, Module, Signal, Value

__all__ = ["builds_lut4s", "lut4", "lut4_init", "lut_and", "lut_and_or", "lut_eq", "lut_eq_bits", "lut_eq_const",
           "lut_eq_const_nibbles", "lut_or", "lut_or_of_ands", "lut_select_bits"]


def builds_lut4s(platform) -> bool:
    """LUT4 instances on an ECP5, or on a platform that asks for them
    (``lut4_instances = True``: the equivalence tests' stand-in, which
    builds memories as the simulator does)."""
    return getattr(platform, "family", None) == "ecp5" or getattr(platform, "lut4_instances", False)


def lut4_init(fn, count: int) -> int:
    """The LUT4 ``INIT`` of ``fn`` of its first ``count`` inputs (A is bit 0
    of the index); the unused inputs are tied to 0 by :func:`lut4`."""
    return sum(1 << i for i in range(16) if fn(*(i >> k & 1 for k in range(count))) & 1)


def lut4(m: Module, name: str, inputs, fn, *, instance: bool) -> Signal:
    """``fn`` of the one to four 1-bit ``inputs`` as one LUT.  ``fn`` must
    mean the same on 0/1 ints and on 1-bit values: ``&``, ``|``, ``^``
    (``x ^ 1`` for a NOT, since ``~1`` is -2).  Call it (and the helpers
    below) outside any ``If``: the plain build's comb assignment inside one
    would hold only under its condition."""
    inputs = list(inputs)
    if not 1 <= len(inputs) <= 4:
        raise ValueError(f"a LUT4 has 1 to 4 inputs, not {len(inputs)}")
    z = Signal(name=name)
    if instance:
        ports = dict(zip("ABCD", inputs + [Const(0, 1)] * (4 - len(inputs)), strict=True))
        m.submodules[f"{name}_lut"] = Instance(
            "LUT4", p_INIT=Const(lut4_init(fn, len(inputs)), 16), **{f"i_{k}": v for k, v in ports.items()}, o_Z=z)
    else:
        m.d.comb += z.eq(fn(*inputs))
    return z


def _and(*bits):
    return reduce(operator.and_, bits)


def _or(*bits):
    return reduce(operator.or_, bits)


def _tree(m: Module, name: str, bits, fn, tag: str, *, instance: bool) -> Value:
    """``fn`` (``_and`` or ``_or``) of ``bits`` as a balanced tree of LUT4s,
    named ``{name}_{tag}{level}_{index}``."""
    bits, level = list(bits), 0
    while len(bits) > 1:
        bits = [lut4(m, f"{name}_{tag}{level}_{i // 4}", bits[i:i + 4], fn, instance=instance)
                if len(bits[i:i + 4]) > 1 else bits[i] for i in range(0, len(bits), 4)]
        level += 1
    return bits[0]


def lut_and(m: Module, name: str, bits, *, instance: bool) -> Value:
    """The AND of ``bits`` (1-bit values) as a balanced tree of LUT4s."""
    return _tree(m, name, bits, _and, "a", instance=instance)


def lut_or(m: Module, name: str, bits, *, instance: bool) -> Value:
    """The OR of ``bits`` (1-bit values) as a balanced tree of LUT4s."""
    return _tree(m, name, bits, _or, "o", instance=instance)


def lut_and_or(m: Module, name: str, terms, *, instance: bool) -> Value:
    """The OR of ``flag & value`` over ``terms`` (pairs of a 1-bit flag and
    an equally wide value), bit by bit: two terms a LUT, then their OR, one
    LUT for up to eight terms (two levels in all), a tree of LUT4s beyond."""
    if not terms:
        raise ValueError("no terms")
    width = len(terms[0][1])
    bits = []
    for b in range(width):
        pairs = []
        for i in range(0, len(terms), 2):
            group = terms[i:i + 2]
            ins = [v for f, a in group for v in (f, a[b])]
            pairs.append(lut4(m, f"{name}_{b}_{i // 2}", ins,
                              lambda *v: _or(*(v[k] & v[k + 1] for k in range(0, len(v), 2))), instance=instance))
        if len(pairs) == 1:
            bits.append(pairs[0])
        elif len(pairs) <= 4:
            bits.append(lut4(m, f"{name}_{b}", pairs, _or, instance=instance))
        else:
            bits.append(_tree(m, f"{name}_{b}", pairs, _or, "o", instance=instance))
    return Cat(*bits)


def lut_or_of_ands(m: Module, name: str, terms, *, instance: bool) -> Value:
    """The OR of ``flag & bit`` over ``terms`` (pairs of 1-bit values, ``bit``
    a 1-bit value or a Python 0 or 1): a term whose bit is 0 drops out, one
    whose bit is 1 is its flag alone.  The terms are packed four inputs a
    LUT (two terms, a term and two flags, or four flags), then ORed in a
    balanced tree: two levels for up to four LUTs, three for up to 16."""
    full = [(f, b) for f, b in terms if not isinstance(b, int)]
    flags = [f for f, b in terms if isinstance(b, int) and b & 1]
    parts = [(f, b) for f, b in full] + [(f,) for f in flags]
    groups, used = [], 4
    for part in parts:
        if used + len(part) > 4:
            groups.append([])
            used = 0
        groups[-1].append(part)
        used += len(part)
    outs = []
    for i, group in enumerate(groups):
        if len(group) == 1 and len(group[0]) == 1:
            outs.append(group[0][0])
            continue
        arities = [len(part) for part in group]

        def fn(*v, arities=arities):
            result, k = 0, 0
            for n in arities:
                result = result | (v[k] & v[k + 1] if n == 2 else v[k])
                k += n
            return result
        outs.append(lut4(m, f"{name}_t{i}", [x for part in group for x in part], fn, instance=instance))
    if not outs:
        return Const(0, 1)
    return _tree(m, name, outs, _or, "o", instance=instance)


def lut_select_bits(m: Module, name: str, selects, words, *, instance: bool) -> Value:
    """The OR of the ``words`` whose (one-hot) ``selects`` bit is set, bit by
    bit a :func:`lut_or_of_ands`: ``words`` are equally long lists of bits
    (Python 0/1 or 1-bit values), so their constant bits drop out."""
    width = len(words[0])
    return Cat(*(lut_or_of_ands(m, f"{name}_{b}", [(selects[k], word[b]) for k, word in enumerate(words)],
                                instance=instance) for b in range(width)))


def lut_eq_bits(m: Module, name: str, a: Value, b: Value, *, instance: bool) -> list[Value]:
    """Two bits of ``a == b`` a LUT: the values whose AND is the compare."""
    if len(a) != len(b):
        raise ValueError(f"widths differ: {len(a)} and {len(b)}")
    return [lut4(m, f"{name}_x{i // 2}", [a[i], b[i], *([a[i + 1], b[i + 1]] if i + 1 < len(a) else [])],
                 lambda *v: _and(*(v[k] ^ v[k + 1] ^ 1 for k in range(0, len(v), 2))), instance=instance)
            for i in range(0, len(a), 2)]


def lut_eq(m: Module, name: str, a: Value, b: Value, *, instance: bool, also=()) -> Value:
    """``a == b`` ANDed with the 1-bit values ``also``: a level of two-bit
    compares, then :func:`lut_and` (ABC chained 10-bit compares to 4 and 5
    levels)."""
    return lut_and(m, name, lut_eq_bits(m, name, a, b, instance=instance) + list(also), instance=instance)


def _fitting(a, const: int) -> Value:
    """``a`` as a Value, once ``const`` is known to fit its width."""
    a = Value.cast(a)
    if not 0 <= const < 1 << len(a):
        raise ValueError(f"{const!r} does not fit {len(a)} bits")
    return a


def lut_eq_const_nibbles(m: Module, name: str, a: Value, const: int, *, instance: bool) -> list[Value]:
    """Four bits of ``a`` a LUT against the constant's bits: the values
    whose AND is ``a == const`` (for a caller that folds that AND into a
    LUT of its own)."""
    a = _fitting(a, const)
    nibbles = []
    for i in range(0, len(a), 4):
        bits = [a[k] for k in range(i, min(i + 4, len(a)))]
        want = [const >> k & 1 for k in range(i, min(i + 4, len(a)))]
        nibbles.append(lut4(m, f"{name}_n{i // 4}", bits,
                            lambda *v, want=want: _and(*(x ^ w ^ 1 for x, w in zip(v, want, strict=True))),
                            instance=instance))
    return nibbles


def lut_eq_const(m: Module, name: str, a: Value, const: int, *, instance: bool) -> Value:
    """``a == const``: four bits of ``a`` a LUT against the constant's bits,
    then :func:`lut_and`.  ABC shares the terms of several compares of one
    value with different constants and chains them (seven 16-bit compares
    of one field were 5 levels deep)."""
    if not instance:
        return _fitting(a, const) == const
    return lut_and(m, name, lut_eq_const_nibbles(m, name, a, const, instance=True), instance=True)
