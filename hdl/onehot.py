# One-hot selection as an AND-OR: the mux a timing-driven design wants when
# its selects are registered one-hot flags (one LUT level per pair of inputs,
# no binary decode in front).
"""``onehot_mux(selects, values)``: the OR of the values whose select is set.
``OneHotFSM``: a state machine with a flop per state."""

from contextlib import contextmanager

from amaranth import Module, Mux, Signal

__all__ = ["OneHotFSM", "onehot_mux"]


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


class OneHotFSM:
    """A state machine written like Amaranth's ``m.FSM``, one flop a state.

    Amaranth's FSM is binary and Yosys leaves it so (its ``fsm`` pass skips
    a state register with an init value), so each state's test is a decode
    of the whole state register, two LUT levels in front of every load and
    transition.  Here ``with fsm.state(name)`` is an ``If`` on that state's
    own flop, and ``fsm.goto(name)`` (Amaranth's ``m.next = name``) leaves
    the current state for ``name``; a state that does not call it stays.
    At most one ``goto`` a clock (the callers' branches are exclusive: two
    would set two flops).  ``with fsm:`` around the states closes it (the
    flops' next values, once every state is known); the domain's reset
    and the initial values put it in ``initial``.
    """

    def __init__(self, m: Module, initial: str, *, name: str = "fsm"):
        self._m = m
        self._name = name
        self._initial = initial
        self._bits: dict[str, Signal] = {}
        self._go: dict[str, Signal] = {}
        self._leave: dict[str, Signal] = {}
        self._current: list[str] = []
        self._opened: set[str] = set()
        self._bit(initial)

    def _bit(self, state: str) -> Signal:
        if state not in self._bits:
            slug = "".join(c if c.isalnum() else "_" for c in state.lower())
            self._bits[state] = Signal(init=state == self._initial, name=f"{self._name}_in_{slug}")
            self._go[state] = Signal(name=f"{self._name}_go_{slug}")
            self._leave[state] = Signal(name=f"{self._name}_leave_{slug}")
        return self._bits[state]

    def ongoing(self, state: str) -> Signal:
        """The flop that is set while in ``state``."""
        return self._bit(state)

    @contextmanager
    def state(self, state: str):
        if self._current:
            raise ValueError(f"state {state!r} opened inside state {self._current[-1]!r}")
        bit = self._bit(state)
        self._opened.add(state)
        self._current.append(state)
        try:
            with self._m.If(bit):
                yield
        finally:
            self._current.pop()

    def goto(self, state: str) -> None:
        if not self._current:
            raise ValueError(f"goto({state!r}) outside a state")
        self._bit(state)
        self._m.d.comb += [self._go[state].eq(1), self._leave[self._current[-1]].eq(1)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()
        return False

    def close(self) -> None:
        """The flops' next values, once every state is known (what leaving
        ``with fsm:`` does, for a machine whose states are spread over a
        long ``elaborate``)."""
        missing = sorted(set(self._bits) - self._opened)
        if missing:
            raise ValueError(f"states never defined: {missing}")
        for state, bit in self._bits.items():
            self._m.d.sync += bit.eq(self._go[state] | (bit & ~self._leave[state]))
