"""A message composed bit by bit, with the bits that are constant known in
Python.

A message the gateware sends is mostly constants (the header fields the
message port fills in, the zeros above a 32-bit counter in a 64-bit field,
the ``::ffff:`` of an IPv4 address) beside a few registers.  Written
through a :class:`~amaranth.lib.data.View` into a ``Signal``, which of its
bits are constant is known to Yosys alone; a selection built from LUT4
instances (:func:`twinplane.hdl.lut4.lut_or_of_ands`) must know it in
Python to leave them out.  :class:`MessageBits` keeps the message as a list
of bits, each a Python ``int`` (0 or 1) or a 1-bit Amaranth value.
"""

from __future__ import annotations

from amaranth import Cat, Const, Mux, Value
from amaranth.lib import data

__all__ = ["MessageBits", "bits_value", "field_bits", "pieces_value", "wire_word_bits"]


def _field(layout: data.StructLayout, path: tuple[str, ...]) -> tuple[int, int]:
    """(offset, width) of the field at ``path`` in ``layout``."""
    offset = 0
    for i, name in enumerate(path):
        field = layout[name]
        offset += field.offset
        if i < len(path) - 1:
            layout = data.Layout.cast(field.shape)
    return offset, field.width


def field_bits(value, width: int) -> list:
    """``value`` (an int, a ``Const``, a Value, a list of ``width`` bits, or a
    tuple of pieces, lowest first, each a Value or an ``(int, width)`` pair)
    as ``width`` bits, lowest first, a constant's as ints, cut or extended as
    ``.eq`` would."""
    if isinstance(value, list):
        if len(value) != width:
            raise ValueError(f"{len(value)} bits for a field of {width}")
        return value
    if isinstance(value, tuple):
        bits = []
        for piece in value:
            if isinstance(piece, tuple):
                const, w = piece
                bits += [const >> i & 1 for i in range(w)]
            else:
                bits += field_bits(piece, len(Value.cast(piece)))
        if len(bits) != width:
            raise ValueError(f"pieces make {len(bits)} bits, the field has {width}")
        return bits
    if isinstance(value, Const):
        value = value.value
    if isinstance(value, int):
        value &= (1 << width) - 1  # a negative int is its two's complement, as .eq takes it
        return [value >> i & 1 for i in range(width)]
    value = Value.cast(value)
    bits = [value[i] for i in range(min(width, len(value)))]
    pad = value[-1] if value.shape().signed else 0
    return bits + [pad] * (width - len(bits))


def pieces_value(value):
    """A field's value as :meth:`MessageBits.put` takes it, as one Amaranth
    value (for a ``View``'s ``.eq``): a tuple of pieces is their ``Cat``."""
    if isinstance(value, tuple):
        return Cat(*(Const(*piece) if isinstance(piece, tuple) else piece for piece in value))
    return value


class MessageBits:
    """The bits of a message of ``size`` bits (0 until written).  ``put``
    writes a field of ``layout`` placed ``at`` bits up in the message (a
    shorter message's layout over the top of a longer one), under ``when``
    (a 1-bit value) if given, over what was written before."""

    def __init__(self, size: int):
        self.bits: list = [0] * size

    def put(self, layout: data.StructLayout, path: tuple[str, ...], value, *, at: int = 0, when=None) -> None:
        offset, width = _field(layout, path)
        offset += at
        if offset + width > len(self.bits):
            raise ValueError(f"{'.'.join(path)} ends at bit {offset + width}, past the message's {len(self.bits)}")
        for i, bit in enumerate(field_bits(value, width)):
            old = self.bits[offset + i]
            # (the same constant either way stays a constant)
            if when is not None and not (isinstance(bit, int) and isinstance(old, int) and bit == old):
                bit = Mux(when, bit, old)
            self.bits[offset + i] = bit

    def value(self) -> Value:
        """The message as one value (for a simulation or a plain build)."""
        return bits_value(self.bits)


def bits_value(bits: list) -> Value:
    """A list of bits (Python 0/1 or 1-bit values), lowest first, as one value."""
    return Cat(*(Const(b, 1) if isinstance(b, int) else b for b in bits))


def wire_word_bits(bits: list, nbytes: int) -> list[list]:
    """:func:`twinplane.hdl.msgport.layout.wire_words` of a bit list: the
    8-byte words of the message's ``nbytes`` top bytes as a big-endian number
    (the first byte on the wire on top), each a list of 64 bits with its first
    byte on the wire in the low bits, the last padded with zeros."""
    if len(bits) != 8 * nbytes:
        raise ValueError(f"{len(bits)} bits for {nbytes} bytes")
    wire = [bits[8 * (nbytes - 1 - k) + j] for k in range(nbytes) for j in range(8)]
    wire += [0] * (8 * (-nbytes % 8))
    return [wire[64 * w:64 * (w + 1)] for w in range(len(wire) // 64)]
