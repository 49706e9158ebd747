# One-hot selection as an AND-OR: the mux a timing-driven design wants when
# its selects are registered one-hot flags (one LUT level per pair of inputs,
# no binary decode in front).
"""``onehot_mux(selects, values)``: the OR of the values whose select is set.
``OneHotFSM``: a state machine with a flop per state.
``Loads``: a register written from several exclusive places (one-hot
states), as a mux without priority."""

from contextlib import contextmanager

from amaranth import Cat, Const, Module, Mux, Signal, Value

__all__ = ["Loads", "OneHotFSM", "flop_copy", "onehot_mux"]


def flop_copy(m: Module, value, *, name: str, init=0) -> Signal:
    """A flop loaded with ``value`` every clock, one of several copies of the
    same register (each near its own group of loads).  Its own output is in
    its D in a form that is ``value`` either way: Yosys's opt_merge merges
    identical flops (``keep`` or not) before ABC, which then folds it."""
    value = Value.cast(value)
    r = Signal(len(value), name=name, init=init, attrs={"keep": 1})
    m.d.sync += r.eq((value & r) | (value & ~r))
    return r


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

    def ahead(self, state: str | None = None, *, transient: bool = False) -> Value:
        """``state``'s flop's next value (the current state's by default):
        registered, it equals the flop, so a flop loaded from it is a copy
        of the state's test, e.g. one near each group of a wide register's
        flops (``Loads(..., replicas=)``).  ``transient``: the caller knows
        every branch of the state goes elsewhere (it lasts one clock), so
        the next value is the transitions into it alone, without the
        state's own leaving conditions."""
        if state is None:
            if not self._current:
                raise ValueError("ahead() outside a state")
            state = self._current[-1]
        bit = self._bit(state)
        if transient:
            return self._go[state]
        return self._go[state] | (bit & ~self._leave[state])

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


class Loads:
    """A register written by several states: each write raises a flag of its
    own where it stands, and the register loads the value whose flag is up --
    at most one flag a clock (the states are one-hot and a state's branches
    exclusive), so the mux needs no priority.  Written in the states as
    ``to_reg(value)`` (for ``to_reg = Loads(m, reg)``) where one would write
    ``m.d.sync += reg.eq(value)``; ``close()`` once every write is known.

    Amaranth's statements in separate ``If``s are a priority chain, one mux a
    writer, which a register written in many states turns into as many levels
    in front of its flops.  Here:

    * writes of the same value share one flag (theirs ORed first);
    * a write of a constant 0 is the flops' synchronous reset, not a mux
      input (``zero_reset=False``: a mux input like any other value, for a
      register whose reset would be a LUT of its own, the domain's reset
      ORed with the write, on a net across the die into every LSR);
    * the others: under the enable (the OR of every flag), a chain of
      2-input muxes, the last value needing no flag (the fewest LUTs); with
      ``and_or=True`` the OR of (flag AND value) instead, two or three LUT
      levels whatever the number of writers;
    * ``comb=True``: a combinational value, the AND-OR, 0 where no flag is up;
    * ``replicas=k``: a wide register whose enable and selects would be nets
      of fanout ~its width across the die: its bits in ``k`` groups, each
      with its own flops for the enable and the selects, loaded a clock
      ahead from each write's ``ahead`` (its flag's value one clock earlier,
      e.g. ``OneHotFSM.ahead()`` for a write that is its state's alone):
      the enable is a flop on the flops' CE, the select a flop on a 2-input
      mux (``ahead_init``: a write in the initial state, its flag up in the
      first clock); with ``and_or=True`` each value has a select flop and
      the bits are the OR of (select AND value): two LUT levels for up to
      five values, where the chain's selects are not known to be one-hot.
      ``name``: the copies' prefix (the register's name by default).
    """

    def __init__(self, m: Module, reg, *, comb: bool = False, and_or: bool = False, replicas: int = 0,
                 name: str | None = None, zero_reset: bool = True):
        self._m = m
        self._comb = comb
        self._and_or = and_or
        self._replicas = replicas
        if replicas and comb:
            raise ValueError("replicas is for a register, not a combinational value")
        self._reg = Value.cast(reg)
        self._sources: list[tuple[Signal, Value]] = []
        self._aheads: dict[int, Value] = {}
        self._given_name = name
        self._zero_reset = zero_reset

    def __call__(self, value, *, ahead=None, ahead_init: bool = False) -> None:
        flag = Signal(name=f"{self._name()}_load{len(self._sources)}")
        value = Value.cast(value)
        if len(value) > len(self._reg):
            raise ValueError(f"{value!r} is wider than the register")
        if self._replicas:
            if ahead is None:
                raise ValueError("a replicated register's write needs its flag a clock ahead")
            # ahead_init: the flag's value in the first clock (a write in
            # the initial state)
            self._aheads[id(flag)] = (Value.cast(ahead), ahead_init)
        self._m.d.comb += flag.eq(1)
        self._sources.append((flag, value))

    def _name(self) -> str:
        if self._given_name is not None:
            return self._given_name
        return self._reg.name if hasattr(self._reg, "name") else "reg"

    def close(self) -> None:
        if not self._sources:
            return
        # A write of 0 is the flops' synchronous reset (the domain's is
        # one already): no input of the mux.
        zeros = [] if self._comb or not self._zero_reset else [flag for flag, value in self._sources
                                       if isinstance(value, Const) and value.value == 0]
        # Writes of the same value (e.g. the answer's counters from
        # several states) share one flag: theirs ORed first.  The same value
        # is the same expression of the same signals (two signals may print
        # alike: the repr alone would merge them).
        groups: dict[tuple, tuple[list[Signal], Value]] = {}
        for flag, value in self._sources:
            if not any(flag is z for z in zeros):
                same = (repr(value), tuple(sorted(id(s) for s in value._rhs_signals())))
                groups.setdefault(same, ([], value))[0].append(flag)
        if self._replicas:
            self._close_replicated(zeros, list(groups.values()))
            return
        loads = [(Cat(flags).any() if len(flags) > 1 else flags[0], value.as_unsigned())
                 for flags, value in groups.values()]
        if self._comb or self._and_or:
            total = 0
            for flag, value in loads:
                total = total | (flag.replicate(len(self._reg)) & value)
            if self._comb:  # 0 where no state writes
                self._m.d.comb += self._reg.eq(total)
                return
        elif loads:
            # Under the enable one flag is up: the last value needs no flag
            # of its own (a 2-input mux a source, one input a bit less than AND-OR).
            total = loads[-1][1]
            for flag, value in reversed(loads[:-1]):
                total = Mux(flag, value, total)
        if loads:
            # The enable is the OR of every flag itself (the group ORs in it
            # mapped 83 COMB worse in the flow controller).
            with self._m.If(Cat(flag for flags, _ in groups.values() for flag in flags).any()):
                self._m.d.sync += self._reg.eq(total)
        if zeros:
            with self._m.If(Cat(zeros).any()):
                self._m.d.sync += self._reg.eq(0)

    def _close_replicated(self, zeros, groups) -> None:
        m, reg, k = self._m, self._reg, self._replicas
        width = len(reg)

        def copy(name, flags):
            return flop_copy(m, Cat(self._aheads[id(f)][0] for f in flags).any(), name=name,
                             init=any(self._aheads[id(f)][1] for f in flags))

        def widened(value):
            value = value.as_unsigned()
            return Cat(value, Const(0, width - len(value))) if len(value) < width else value

        values = [widened(value) for _, value in groups]
        every = [f for flags, _ in groups for f in flags]
        bounds = [width * i // k for i in range(k + 1)]
        for g in range(k):
            lo, hi = bounds[g], bounds[g + 1]
            if lo == hi:
                continue
            if groups:
                if self._and_or:
                    total = 0
                    for j, (flags, _) in enumerate(groups):
                        select = copy(f"{self._name()}_sel{j}_r{g}", flags)
                        total = total | (select.replicate(hi - lo) & values[j][lo:hi])
                else:
                    # under the enable one select is up: the last value needs none
                    total = values[-1][lo:hi]
                    for j in reversed(range(len(groups) - 1)):
                        total = Mux(copy(f"{self._name()}_sel{j}_r{g}", groups[j][0]), values[j][lo:hi], total)
                with m.If(copy(f"{self._name()}_en_r{g}", every)):
                    m.d.sync += reg[lo:hi].eq(total)
            if zeros:
                with m.If(copy(f"{self._name()}_zero_r{g}", zeros)):
                    m.d.sync += reg[lo:hi].eq(0)
