"""Scapy layers for SSMB and CSMB, made from the one declaration, bound to the
buses' UDP ports so ``UDP(...)/...`` dissects them and users craft messages with
the tool they know.

Each message is a header layer (:class:`SSMB` or :class:`CSMB`) whose payload
is the body layer of its ``msg_type`` (named after the message class, e.g.
``SsmbQueryBody``); the body ends in the 8-byte ``tag``.  Batched messages
chain: whatever follows a body is dissected as the next header.  Nested blocks
are flattened with their name as prefix (``flow_src_addr``).

To send a valid message, build it with :mod:`twinplane.protocol.codec` (which
computes the length and the tag) and dissect it here, or fill ``msg_length``
and ``tag`` yourself (``Codec(key).tag(bus, bytes(header/body)[:-8])``).
"""

from __future__ import annotations

from scapy.fields import (
    BitField,
    ByteEnumField,
    ByteField,
    Field,
    FlagsField,
    IntField,
    IP6Field,
    LongField,
    MACField,
    ShortEnumField,
    ShortField,
    StrLenField,
    XStrFixedLenField,
)
from scapy.layers.inet import UDP
from scapy.packet import Packet, bind_layers

from .codes import CSMB_UDP_PORT, SSMB_UDP_PORT, Bus, CsmbType, Flag, SsmbType
from .messages import ALL_MESSAGES, CSMB_HEADER, HEADER_SIZE, SSMB_HEADER, TAG_SIZE, Message
from .wire import Kind, WireField

__all__ = ["BODY_LAYERS", "CSMB", "SSMB", "scapy_fields"]


def _uint_field(name: str, f: WireField) -> Field:
    if f.enum is Flag:
        names = [(member.name or "") if (member := _flag_at(bit)) else f"bit{bit}" for bit in range(32)]
        return FlagsField(name, 0, 32, names)
    enum_map = {int(m): m.name for m in f.enum} if f.enum is not None else None
    if f.size == 1:
        return ByteEnumField(name, 0, enum_map) if enum_map else ByteField(name, 0)
    if f.size == 2:
        return ShortEnumField(name, 0, enum_map) if enum_map else ShortField(name, 0)
    if f.size == 4:
        return IntField(name, 0)
    if f.size == 8:
        return LongField(name, 0)
    return BitField(name, 0, 8 * f.size)


def _flag_at(bit: int) -> Flag | None:
    try:
        member = Flag(1 << bit)
    except ValueError:
        return None
    return member if member.name else None


def scapy_fields(fields: tuple[WireField, ...], prefix: str = "") -> list[Field]:
    """Scapy fields for declared wire fields (nested blocks flattened)."""
    out: list[Field] = []
    fixed_before_tail = HEADER_SIZE + sum(f.size for f in fields if not f.variable)
    for f in fields:
        name = prefix + f.name
        if f.kind is Kind.UINT:
            out.append(_uint_field(name, f))
        elif f.kind is Kind.ADDR:
            out.append(IP6Field(name, "::ffff:0.0.0.0"))
        elif f.kind is Kind.MAC:
            out.append(MACField(name, "00:00:00:00:00:00"))
        elif f.kind is Kind.OCTETS and f.variable:
            # Variable tail: what msg_length leaves after the fixed part and the tag.
            out.append(
                StrLenField(
                    name,
                    b"",
                    length_from=lambda pkt, fixed=fixed_before_tail: max(
                        0, (pkt.underlayer.msg_length if pkt.underlayer else fixed + TAG_SIZE) - fixed - TAG_SIZE
                    ),
                )
            )
        elif f.kind is Kind.OCTETS:
            out.append(XStrFixedLenField(name, bytes(f.size), length=f.size))
        else:
            out.extend(scapy_fields(f.block.WIRE, prefix=f"{name}_"))
    return out


class _Header(Packet):
    def guess_payload_class(self, payload: bytes) -> type[Packet]:
        return BODY_LAYERS.get((self.BUS, self.msg_type), Packet.guess_payload_class(self, payload))


class SSMB(_Header):
    name = "SSMB"
    BUS = Bus.SSMB
    fields_desc = scapy_fields(SSMB_HEADER)


class CSMB(_Header):
    name = "CSMB"
    BUS = Bus.CSMB
    fields_desc = scapy_fields(CSMB_HEADER)


# msg_type shown by name in the header
SSMB.fields_desc[2] = ByteEnumField("msg_type", 0, {int(t): t.name for t in SsmbType})
CSMB.fields_desc[2] = ByteEnumField("msg_type", 0, {int(t): t.name for t in CsmbType})


def _body_layer(cls: type[Message]) -> type[Packet]:
    header = SSMB if cls.BUS is Bus.SSMB else CSMB

    def guess_payload_class(self: Packet, payload: bytes) -> type[Packet]:
        return header if payload else Packet.guess_payload_class(self, payload)

    return type(
        f"{cls.__name__}Body",
        (Packet,),
        {
            "name": f"{cls.BUS.name} {cls.TYPE.name}",
            "fields_desc": [*scapy_fields(cls.BODY), XStrFixedLenField("tag", bytes(TAG_SIZE), length=TAG_SIZE)],
            "guess_payload_class": guess_payload_class,
        },
    )


BODY_LAYERS: dict[tuple[Bus, int], type[Packet]] = {}
for _cls in ALL_MESSAGES:
    _layer = _body_layer(_cls)
    globals()[_layer.__name__] = _layer
    BODY_LAYERS[(_cls.BUS, int(_cls.TYPE))] = _layer
    bind_layers(SSMB if _cls.BUS is Bus.SSMB else CSMB, _layer, msg_type=int(_cls.TYPE))

for _port, _layer in ((SSMB_UDP_PORT, SSMB), (CSMB_UDP_PORT, CSMB)):
    bind_layers(UDP, _layer, dport=_port)
    bind_layers(UDP, _layer, sport=_port)
