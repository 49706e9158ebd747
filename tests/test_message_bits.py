"""hdl/msgport/message_bits.py: a message built bit by bit equals the one
written through a View; its constants stay Python ints; its wire words are
wire_words'."""

import random

import pytest
from amaranth import Cat, Module, Signal
from amaranth.lib import data
from amaranth.sim import Simulator

from twinplane.hdl.msgport.layout import wire_words
from twinplane.hdl.msgport.message_bits import MessageBits, bits_value, pieces_value, wire_word_bits

_INNER = data.StructLayout({"lo": 8, "addr": 32})
_LONG = data.StructLayout({"count": 16, "inner": _INNER, "serial": 12, "version": 4})  # 72 bits
_SHORT = data.StructLayout({"tail": 12, "version": 4})  # over the long one's top


def _equal_on_random_inputs(m, got, ref, inputs, *, rounds, seed):
    """``got`` equals ``ref`` in ``m`` for ``rounds`` random draws of
    ``inputs`` (a signed one over its whole range)."""
    rng = random.Random(seed)

    async def bench(ctx):
        for _ in range(rounds):
            for s in inputs:
                ctx.set(s, rng.randrange(1 << len(s)) - (1 << len(s) - 1 if s.shape().signed else 0))
            await ctx.delay(1e-6)
            assert ctx.get(got) == ctx.get(ref)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_bits_equal_the_view_build():
    """Fields (an int, a narrower signal, a signed one, pieces with
    constants), then a shorter layout over the top under a condition: the
    bit list's value equals the same writes through Views, on random inputs."""
    count, lo, serial = Signal(16), Signal(5), Signal(range(-32, 32))  # serial: signed, sign-extended
    ip, tail, when = Signal(8), Signal(12), Signal()
    fields = [(("count",), count), (("inner", "lo"), lo), (("inner", "addr"), (ip, (0xAB, 8), (0, 16))),
              (("serial",), serial), (("version",), 5)]
    bits = MessageBits(_LONG.size)
    for path, value in fields:
        bits.put(_LONG, path, value)
    bits.put(_SHORT, ("tail",), tail, at=_LONG.size - _SHORT.size, when=when)
    bits.put(_SHORT, ("version",), 5, at=_LONG.size - _SHORT.size, when=when)

    m = Module()
    ref = Signal(_LONG.size)
    view = data.View(_LONG, ref)
    for path, value in fields:
        field = view
        for name in path:
            field = getattr(field, name)
        m.d.comb += field.eq(pieces_value(value))
    with m.If(when):
        m.d.comb += data.View(_SHORT, ref[-_SHORT.size:]).tail.eq(tail)
    got = Signal(_LONG.size)
    m.d.comb += got.eq(bits.value())

    # The version (5 under either condition) and the address's 0xAB and
    # zeros are constants; the count's bits are not.
    assert bits.bits[68:72] == [1, 0, 1, 0]
    assert bits.bits[16 + 8 + 8:16 + 8 + 16] == [1, 1, 0, 1, 0, 1, 0, 1]
    assert not any(isinstance(b, int) for b in bits.bits[:16])
    assert not isinstance(bits.bits[60], int)  # the tail's or the serial's, by ``when``

    _equal_on_random_inputs(m, got, ref, (count, lo, serial, ip, tail, when), rounds=200, seed=1)


def test_wire_word_bits_are_wire_words():
    """The words of a bit list hold the bits wire_words' words hold."""
    nbytes = 13
    value = Signal(8 * nbytes)
    bit_words = wire_word_bits([value[i] for i in range(8 * nbytes)], nbytes)
    m = Module()
    ref, got = Signal(64 * len(bit_words)), Signal(64 * len(bit_words))
    m.d.comb += [ref.eq(Cat(*wire_words(value, nbytes))),
                 got.eq(bits_value([b for word in bit_words for b in word]))]
    _equal_on_random_inputs(m, got, ref, (value,), rounds=50, seed=2)


def test_bad_fields_are_named():
    bits = MessageBits(_LONG.size)
    with pytest.raises(ValueError, match="pieces make 20 bits, the field has 32"):
        bits.put(_LONG, ("inner", "addr"), (Signal(4), (0, 16)))
    with pytest.raises(ValueError, match="version ends at bit 76, past the message's 72"):
        bits.put(_SHORT, ("version",), 1, at=_LONG.size - _SHORT.size + 4)
    with pytest.raises(ValueError, match="13 bits for 2 bytes"):
        wire_word_bits([0] * 13, 2)


def test_a_condition_between_equal_constants_stays_a_constant():
    bits = MessageBits(_SHORT.size)
    bits.put(_SHORT, ("version",), 9)
    bits.put(_SHORT, ("version",), 9, when=Signal())
    assert bits.bits[12:] == [1, 0, 0, 1]
    bits.put(_SHORT, ("version",), 3, when=Signal())  # 0b1001 or 0b0011
    assert (bits.bits[12], bits.bits[14]) == (1, 0)
    assert not isinstance(bits.bits[13], int) and not isinstance(bits.bits[15], int)
