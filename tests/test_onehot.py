"""hdl/onehot.py: one-hot AND-OR selection, every select pattern of three; the one-hot FSM against Amaranth's;
``Loads`` against plain ``m.d.sync`` writes in exclusive branches."""

import random

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from twinplane.hdl.onehot import Loads, OneHotFSM, onehot_mux


def test_every_select_pattern():
    values = [0x12, 0x34, 0xC0]
    sel = Signal(3)
    out = Signal(8)
    m = Module()
    m.d.comb += out.eq(onehot_mux(sel, values))

    async def bench(ctx):
        for pattern in range(8):
            ctx.set(sel, pattern)
            want = 0
            for i, v in enumerate(values):
                if pattern >> i & 1:
                    want |= v
            assert ctx.get(out) == want, pattern  # one-hot: the value; none: 0

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_counts_must_match():
    with pytest.raises(ValueError, match="2 selects for 3 values"):
        onehot_mux([Signal(), Signal()], [1, 2, 3])


def _machine(m, state, goto, a, b, out):
    """Three states written once for both FSMs: A -> B on ``a``; B -> C on
    ``b``, else -> A on ``a``; C -> A; ``out`` counts in B, 7 in C."""
    with state("A"):
        m.d.sync += out.eq(0)
        with m.If(a):
            goto("B")
    with state("B"):
        m.d.sync += out.eq(out + 1)
        with m.If(b):
            goto("C")
        with m.Elif(a):
            goto("A")
    with state("C"):
        m.d.sync += out.eq(7)
        goto("A")


def test_one_hot_fsm_follows_amaranth_fsm():
    a, b = Signal(), Signal()
    ref_out, hot_out = Signal(4), Signal(4)
    m = Module()
    with m.FSM():
        def goto(name):
            m.next = name
        _machine(m, m.State, goto, a, b, ref_out)
    fsm = OneHotFSM(m, "A")
    with fsm:
        _machine(m, fsm.state, fsm.goto, a, b, hot_out)
    in_a, in_b, in_c = (fsm.ongoing(s) for s in "ABC")
    rng = random.Random(7)

    async def bench(ctx):
        seen = set()
        for _ in range(300):
            ctx.set(a, rng.random() < 0.5)
            ctx.set(b, rng.random() < 0.3)
            await ctx.tick()
            hot = (ctx.get(in_a), ctx.get(in_b), ctx.get(in_c))
            assert sum(hot) == 1, hot  # exactly one state
            seen.add(hot)
            assert ctx.get(hot_out) == ctx.get(ref_out)
        assert len(seen) == 3  # every state visited

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_one_hot_fsm_checks_its_use():
    m = Module()
    fsm = OneHotFSM(m, "A")
    with pytest.raises(ValueError, match="outside a state"):
        fsm.goto("A")
    with pytest.raises(ValueError, match="never defined"):
        with fsm:
            with fsm.state("A"):
                fsm.goto("B")


@pytest.mark.parametrize("zero_reset", [True, False], ids=["zero-reset", "zero-value"])
@pytest.mark.parametrize("mode", ["chain", "and_or", "comb"])
def test_loads_follow_plain_writes(mode, zero_reset):
    """Five writers of one register (two of one value, one of 0, one of an
    expression of the register itself) in exclusive branches, each a random
    clock: the ``Loads`` register follows the one written with ``m.d``,
    its 0 a reset or a value of the mux (``zero_reset``)."""
    which = Signal(range(6))  # 0: no writer this clock
    x, y = Signal(8), Signal(8)
    ref, out = Signal(8, init=0x5A), Signal(8, init=0x5A)
    m = Module()
    to_out = Loads(m, out, comb=mode == "comb", and_or=mode == "and_or", zero_reset=zero_reset)
    values = [x, 0, y, x, (out + 3)[:8]] if mode != "comb" else [x, 0, y, x, ~y]
    for i, value in enumerate(values, start=1):
        with m.If(which == i):
            (m.d.comb if mode == "comb" else m.d.sync).__iadd__(ref.eq(value))
            to_out(value)
    to_out.close()
    rng = random.Random(mode)

    async def bench(ctx):
        seen = set()
        for _ in range(400):
            w = rng.randrange(6)
            seen.add(w)
            ctx.set(which, w)
            ctx.set(x, rng.randrange(256))
            ctx.set(y, rng.randrange(256))
            if mode == "comb":
                await ctx.delay(1e-6)
                assert ctx.get(out) == (ctx.get(ref) if w else 0), w  # 0 where no writer
            else:
                await ctx.tick()
                assert ctx.get(out) == ctx.get(ref), w
        assert seen == set(range(6))

    sim = Simulator(m)
    if mode != "comb":
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_loads_reject_a_wider_value():
    m = Module()
    to_out = Loads(m, Signal(4))
    with pytest.raises(ValueError, match="wider than the register"):
        to_out(Signal(5))


@pytest.mark.parametrize("zero_reset", [True, False], ids=["zero-reset", "zero-value"])
@pytest.mark.parametrize("and_or", [False, True])
@pytest.mark.parametrize("replicas", [1, 3, 12])
def test_replicated_loads_follow_plain_writes(replicas, and_or, zero_reset):
    """A register written in a one-hot FSM's states (x in A, 0 in C, y in D;
    B writes nothing), its enable and selects flops loaded a clock ahead from
    ``OneHotFSM.ahead()`` in ``replicas`` groups of bits: it follows the one
    written with ``m.d``, including right after reset and on states held
    for several clocks.  ``and_or``: a select flop a value, ORed; D writes
    y or z on ``a`` (the flag's condition a clock ahead: ``a_r`` is ``a``
    registered), so three values share the register's selects."""
    a, b = Signal(), Signal()
    a_r = Signal()
    x, y, z = Signal(12), Signal(12), Signal(12)
    ref, out = Signal(12, init=0x5A5), Signal(12, init=0x5A5)
    m = Module()
    m.d.sync += a_r.eq(a)
    to_out = Loads(m, out, replicas=replicas, and_or=and_or, zero_reset=zero_reset)
    fsm = OneHotFSM(m, "A")
    with fsm:
        with fsm.state("A"):
            m.d.sync += ref.eq(x)
            to_out(x, ahead=fsm.ahead(), ahead_init=True)  # A is the initial state
            with m.If(a):
                fsm.goto("B")
        with fsm.state("B"):
            with m.If(b):
                fsm.goto("C")
            with m.Elif(a):
                fsm.goto("D")
        with fsm.state("C"):
            m.d.sync += ref.eq(0)
            to_out(0, ahead=fsm.ahead())
            fsm.goto("D")
        with fsm.state("D"):
            if and_or:
                with m.If(a_r):
                    m.d.sync += ref.eq(z)
                    to_out(z, ahead=fsm.ahead() & a)
                with m.Else():
                    m.d.sync += ref.eq(y)
                    to_out(y, ahead=fsm.ahead() & ~a)
            else:
                m.d.sync += ref.eq(y)
                to_out(y, ahead=fsm.ahead())
            with m.If(b):
                fsm.goto("A")
    to_out.close()
    rng = random.Random(replicas)

    async def bench(ctx):
        seen = set()
        for _ in range(400):
            ctx.set(a, rng.random() < 0.4)
            ctx.set(b, rng.random() < 0.4)
            ctx.set(x, rng.randrange(4096))
            ctx.set(y, rng.randrange(4096))
            ctx.set(z, rng.randrange(4096))
            await ctx.tick()
            seen.add(tuple(ctx.get(fsm.ongoing(s)) for s in "ABCD"))
            assert ctx.get(out) == ctx.get(ref)
        assert len(seen) == 4

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_transient_state_ahead_is_its_way_in():
    """``ahead(transient=True)`` of a state that always leaves after a clock
    (B, entered from A or C) is the transitions into it: a replicated
    register loaded in B follows the one written with ``m.d``."""
    a, b = Signal(), Signal()
    x = Signal(8)
    ref, out = Signal(8), Signal(8)
    m = Module()
    to_out = Loads(m, out, replicas=2)
    fsm = OneHotFSM(m, "A")
    with fsm:
        with fsm.state("A"):
            with m.If(a):
                fsm.goto("B")
        with fsm.state("B"):
            m.d.sync += ref.eq(x)
            to_out(x, ahead=fsm.ahead(transient=True))
            with m.If(b):
                fsm.goto("C")
            with m.Else():
                fsm.goto("A")
        with fsm.state("C"):
            with m.If(a):
                fsm.goto("B")
    to_out.close()
    rng = random.Random(7)

    async def bench(ctx):
        loads = 0
        for _ in range(300):
            ctx.set(a, rng.random() < 0.5)
            ctx.set(b, rng.random() < 0.5)
            ctx.set(x, rng.randrange(256))
            loads += ctx.get(fsm.ongoing("B"))
            await ctx.tick()
            assert ctx.get(out) == ctx.get(ref)
        assert loads > 50

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_replicated_loads_need_their_flag_ahead():
    m = Module()
    to_out = Loads(m, Signal(8), replicas=2)
    with pytest.raises(ValueError, match="a clock ahead"):
        to_out(Signal(8))
    with pytest.raises(ValueError, match="not a combinational value"):
        Loads(m, Signal(8), replicas=2, comb=True)
