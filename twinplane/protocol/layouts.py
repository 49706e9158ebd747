"""Amaranth ``lib.data`` layouts of the SSMB/CSMB messages, made from the one
declaration in :mod:`twinplane.protocol.messages`.

Byte order, stated once: the gateware receives a message as a byte stream and
shifts it into a register most significant byte first (``reg = reg << 8 |
byte``), so after ``n`` bytes the register holds the message as a big-endian
number of ``8*n`` bits.  Amaranth lays out struct fields from the least
significant bit, so the layout lists the wire fields in *reverse* order: then
each field's bits are exactly its big-endian (network order) value, and
``view.flow.dst_port`` is the port as a number.  Transmit is the mirror image:
fill a view, shift it out most significant byte first.  A 16-byte address
holds IPv4 as ::ffff:a.b.c.d, so the IPv4 address is its low 32 bits.

The tag (last 8 bytes) is not in the layouts: the message port checks it as the
bytes stream past.
"""

from __future__ import annotations

from functools import cache

from amaranth.lib import data

from .messages import CSMB_HEADER, SSMB_HEADER, Message
from .wire import Block, Kind, WireField

__all__ = ["block_layout", "field_bit_offsets", "header_layout", "message_layout"]


def _field_shape(f: WireField) -> data.StructLayout | int:
    if f.kind is Kind.BLOCK:
        return block_layout(f.block)
    return 8 * f.size


def _layout_of(fields: tuple[WireField, ...]) -> data.StructLayout:
    fixed = [f for f in fields if not f.variable]
    return data.StructLayout({f.name: _field_shape(f) for f in reversed(fixed)})


@cache
def block_layout(cls: type[Block]) -> data.StructLayout:
    """Layout of a declared block (e.g. FlowSignature, Translation)."""
    return _layout_of(cls.WIRE)


@cache
def header_layout(bus_is_csmb: bool = False) -> data.StructLayout:
    return _layout_of(CSMB_HEADER if bus_is_csmb else SSMB_HEADER)


@cache
def message_layout(cls: type[Message]) -> data.StructLayout:
    """Layout of a whole message without its tag (header, then body)."""
    return _layout_of(cls.all_fields())


def field_bit_offsets(cls: type[Block]) -> dict[str, tuple[int, int]]:
    """``{dotted field name: (bit offset in the layout, width)}`` for every
    leaf field -- what the cross-check tests compare with the codec's byte
    offsets."""
    layout = message_layout(cls) if issubclass(cls, Message) else block_layout(cls)
    out: dict[str, tuple[int, int]] = {}

    def walk(layout: data.StructLayout, prefix: str, base: int) -> None:
        for name, field in layout:
            shape = field.shape
            if isinstance(shape, data.StructLayout):
                walk(shape, f"{prefix}{name}.", base + field.offset)
            else:
                out[f"{prefix}{name}"] = (base + field.offset, field.width)

    walk(layout, "", 0)
    return out
