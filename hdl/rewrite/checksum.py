# Incremental Internet checksum update for the NAT rewriter.
# Ref: RFC 1624 §3 eqn. 3, RFC 1071 §2 (end-around carry, deferred carries),
#      RFC 768 (UDP checksum 0 = none; computed 0 sent as 0xFFFF).
"""The checksum after a rewrite, from the old checksum and the changed words.

    new = ~(~old + ~m[0] + m'[0] + ... + ~m[n-1] + m'[n-1])    (one's complement)

Bit-identical to a full recomputation (see twinplane.model.checksum, the
reference model, for why eqn. 3 and not eqn. 2).  Unchanged slots may be fed
old == new (or 0/0): ``~m + m`` is 0xFFFF, one's-complement zero.

Structure (RFC 1071 §2's deferred carries): the 2n + 1 terms are added as
plain binary numbers in a balanced adder tree, each level one bit wider, and
the carries are folded back only once at the end -- ``lo16 + hi`` then
``+ carry`` -- instead of an end-around carry at every add (two carry chains
per add).  A wide sum of non-zero terms folds to 1..0xFFFF, the same
representation end-around adds give.  Then the complement and, with ``udp``,
RFC 768: an old checksum of 0 stays 0 and a result of 0 becomes 0xFFFF.

Levels: ceil(log2(2n + 1)) tree adds, the first fold, then the second fold
with the complement and UDP rule.  ``stages`` pipeline registers are spread
evenly between levels (latency ``stages`` clocks, one update per clock);
with 0 the block is combinational.

Ports (``n = words``):
``valid``        In(1): qualifies the inputs; comes out as ``out_valid``.
``old_checksum`` In(16), ``old_words`` / ``new_words`` In(ArrayLayout(16, n)).
``udp``          In(1): apply the RFC 768 rules.
``new_checksum`` Out(16), ``out_valid`` Out(1).

:func:`checksum_update_value` gives the same arithmetic as a combinational
Amaranth expression, for use inside another block.
"""

from amaranth import Cat, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ChecksumUpdate", "checksum_update_value", "ones_complement_fold"]


def _tree_levels(terms: int) -> int:
    return max(1, (terms - 1).bit_length())


def _add_level(values):
    out = [a + b for a, b in zip(values[0::2], values[1::2], strict=False)]
    if len(values) % 2:
        out.append(values[-1])
    return out


def ones_complement_fold(wide) -> Value:
    """Fold a wide binary sum of 16-bit terms (at most 2**16 of them) to its
    16-bit one's-complement value (0 only if the sum is 0)."""
    wide = Value.cast(wide)
    first = wide[:16] + wide[16:]
    return (first[:16] + first[16:])[:16]


def checksum_update_value(old_checksum, old_words, new_words) -> Value:
    """RFC 1624 eqn. 3 as a combinational expression (no UDP rule)."""
    if len(old_words) != len(new_words) or not old_words:
        raise ValueError(
            f"need as many old as new words, at least one: {len(old_words)!r}, {len(new_words)!r}"
        )
    values = [~Value.cast(old_checksum)[:16]]
    for old, new in zip(old_words, new_words, strict=True):
        values += [~Value.cast(old)[:16], Value.cast(new)[:16]]
    while len(values) > 1:
        values = _add_level(values)
    return ~ones_complement_fold(values[0])


class ChecksumUpdate(wiring.Component):
    """Incremental checksum update over ``words`` changed 16-bit words, with
    ``stages`` pipeline registers (see the module docstring)."""

    def __init__(self, words: int = 6, *, stages: int = 0):
        if not isinstance(words, int) or isinstance(words, bool):
            raise TypeError(f"words must be an int, not {words!r}")
        if not 1 <= words <= 1024:
            raise ValueError(f"words must be between 1 and 1024, not {words!r}")
        self.words = words
        self.levels = self.levels_for(words)
        if not isinstance(stages, int) or isinstance(stages, bool):
            raise TypeError(f"stages must be an int, not {stages!r}")
        if not 0 <= stages < self.levels:
            raise ValueError(
                f"stages must be between 0 and {self.levels - 1} for {words} words, not {stages!r}"
            )
        self.stages = stages
        self.latency = stages
        # Register after these levels (1-based), spread evenly.
        self._register_after = {k * self.levels // (stages + 1) for k in range(1, stages + 1)}
        super().__init__(
            {
                "valid": In(1),
                "old_checksum": In(16),
                "old_words": In(data.ArrayLayout(16, words)),
                "new_words": In(data.ArrayLayout(16, words)),
                "udp": In(1),
                "new_checksum": Out(16),
                "out_valid": Out(1),
            }
        )

    @staticmethod
    def levels_for(words: int) -> int:
        """Adder levels for ``words`` changed words; ``stages`` may be 0..levels-1."""
        return _tree_levels(2 * words + 1) + 2

    def elaborate(self, platform):
        m = Module()
        level = 0

        def boundary(values, ctrl):
            # After each level: registers if a stage sits here.
            nonlocal level
            level += 1
            if level not in self._register_after:
                return values, ctrl
            regs = [Signal(len(v), name=f"l{level}_t{i}") for i, v in enumerate(values)]
            ctrl_r = Signal(len(ctrl), name=f"l{level}_ctrl")
            m.d.sync += [r.eq(v) for r, v in zip(regs, values, strict=True)]
            m.d.sync += ctrl_r.eq(ctrl)
            return regs, ctrl_r

        values = [~self.old_checksum]
        for i in range(self.words):
            values += [~self.old_words[i], self.new_words[i]]
        # valid, udp, "old checksum is 0" travel with the data.
        ctrl = Cat(self.valid, self.udp, self.old_checksum == 0)

        while len(values) > 1:
            values, ctrl = boundary(_add_level(values), ctrl)
        wide = values[0]
        (first,), ctrl = boundary([wide[:16] + wide[16:]], ctrl)
        total = (first[:16] + first[16:])[:16]
        result = ~total
        valid, udp, old_zero = ctrl[0], ctrl[1], ctrl[2]
        m.d.comb += [
            self.new_checksum.eq(Mux(udp & old_zero, 0, Mux(udp & (result == 0), 0xFFFF, result))),
            self.out_valid.eq(valid),
        ]
        return m
