"""The machinery that turns one declaration of a message into a Python
dataclass, a packer and an unpacker (and, elsewhere, gateware layouts, scapy
layers and docs).

A block is declared as a class with a ``WIRE`` tuple of :class:`WireField`;
``Block.__init_subclass__`` makes it a dataclass whose fields, in order, are
the wire fields, and precompiles a :mod:`struct` format.  Byte order on the
wire is network order (big-endian) for every integer field, stated once here.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import struct
from typing import Any, ClassVar

__all__ = [
    "Block",
    "DecodeError",
    "Kind",
    "WireField",
    "addr",
    "block",
    "mac",
    "octets",
    "uint",
]

#: Network byte order, for every multi-byte integer on both buses.
BYTE_ORDER = "big"
_STRUCT_ORDER = "!"

_IPV4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DecodeError(ValueError):
    """The one exception decoding raises: names the field and the problem."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class Kind(enum.Enum):
    UINT = "uint"  #: unsigned integer, big-endian
    ADDR = "addr"  #: 16-byte address; IPv4 as IPv4-mapped IPv6
    MAC = "mac"  #: 6-byte Ethernet address (bytes)
    OCTETS = "octets"  #: opaque bytes; variable length only as a message's last field
    BLOCK = "block"  #: a nested block


@dataclasses.dataclass(frozen=True)
class WireField:
    name: str
    size: int  #: bytes on the wire (maximum for a variable field)
    kind: Kind
    doc: str
    enum: type | None = None  #: IntEnum/IntFlag the integer is decoded into
    block: type[Block] | None = None
    variable: bool = False
    default: int | None = None


def uint(name: str, size: int, doc: str, enum: type | None = None, *, default: int | None = None) -> WireField:
    if size not in (1, 2, 3, 4, 6, 8):
        raise ValueError(f"uint field {name!r}: size must be 1, 2, 3, 4, 6 or 8 bytes, not {size!r}")
    return WireField(name, size, Kind.UINT, doc, enum=enum, default=default)


def addr(name: str, doc: str) -> WireField:
    return WireField(name, 16, Kind.ADDR, doc)


def mac(name: str, doc: str) -> WireField:
    return WireField(name, 6, Kind.MAC, doc)


def octets(name: str, size: int, doc: str, *, variable: bool = False) -> WireField:
    return WireField(name, size, Kind.OCTETS, doc, variable=variable)


def block(name: str, cls: type[Block], doc: str) -> WireField:
    return WireField(name, cls.SIZE, Kind.BLOCK, doc, block=cls)


_UINT_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _default(f: WireField) -> Any:
    if f.kind is Kind.UINT:
        if f.default is not None:
            return f.enum(f.default) if f.enum is not None else f.default
        if f.enum is None:
            return 0
        # Zero where the enum has it (NONE), else its first member (IPV4).
        return f.enum._value2member_map_.get(0, next(iter(f.enum)))
    if f.kind is Kind.ADDR:
        return dataclasses.field(default_factory=lambda: ipaddress.IPv4Address(0))
    if f.kind is Kind.MAC:
        return bytes(6)
    if f.kind is Kind.OCTETS:
        return b"" if f.variable else bytes(f.size)
    return dataclasses.field(default_factory=f.block)


def _python_type(f: WireField) -> Any:
    return {
        Kind.UINT: f.enum or int,
        Kind.ADDR: IPAddress,
        Kind.MAC: bytes,
        Kind.OCTETS: bytes,
        Kind.BLOCK: f.block,
    }[f.kind]


def encode_addr(value: IPAddress | str | int) -> bytes:
    if not isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        value = ipaddress.ip_address(value)
    if value.version == 4:
        return _IPV4_MAPPED_PREFIX + value.packed
    return value.packed


def decode_addr(raw: bytes) -> IPAddress:
    if raw[:12] == _IPV4_MAPPED_PREFIX:
        return ipaddress.IPv4Address(raw[12:])
    return ipaddress.IPv6Address(raw)


class Block:
    """Base of every declared block (a nested group of fields) and message."""

    WIRE: ClassVar[tuple[WireField, ...]] = ()
    SIZE: ClassVar[int] = 0
    #: (field, offset) for every field, in wire order.
    OFFSETS: ClassVar[tuple[tuple[WireField, int], ...]] = ()
    _STRUCT: ClassVar[struct.Struct]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = cls.all_fields()
        for index, f in enumerate(fields):
            if f.variable and index != len(fields) - 1:
                raise TypeError(f"{cls.__name__}.{f.name}: a variable field must be the last one")
        annotations = {}
        for f in fields:
            annotations[f.name] = _python_type(f)
            setattr(cls, f.name, _default(f))
        cls.__annotations__ = annotations
        dataclasses.dataclass(cls)
        offsets, offset, fmt = [], 0, _STRUCT_ORDER
        for f in fields:
            offsets.append((f, offset))
            offset += f.size
            if f.variable:
                continue
            fmt += _UINT_FORMATS.get(f.size, f"{f.size}s") if f.kind is Kind.UINT else f"{f.size}s"
        cls.OFFSETS = tuple(offsets)
        cls.SIZE = offset
        cls._STRUCT = struct.Struct(fmt)

    @classmethod
    def all_fields(cls) -> tuple[WireField, ...]:
        return cls.WIRE

    # -- packing ---------------------------------------------------------------
    def _values(self) -> list[Any]:
        out = []
        for f, _ in self.OFFSETS:
            value = getattr(self, f.name)
            if f.variable:
                continue
            if f.kind is Kind.UINT:
                value = int(value)
                if value < 0 or value >> (8 * f.size):
                    raise ValueError(f"{type(self).__name__}.{f.name}: {value!r} does not fit in {f.size} bytes")
                if f.size not in _UINT_FORMATS:
                    value = value.to_bytes(f.size, BYTE_ORDER)
            elif f.kind is Kind.ADDR:
                value = encode_addr(value)
            elif f.kind is Kind.BLOCK:
                value = value.pack()
            elif len(value) != f.size:
                raise ValueError(f"{type(self).__name__}.{f.name}: must be {f.size} bytes, not {len(value)}")
            out.append(value)
        return out

    def pack(self) -> bytes:
        data = self._STRUCT.pack(*self._values())
        last = self.OFFSETS[-1][0] if self.OFFSETS else None
        if last is not None and last.variable:
            tail = getattr(self, last.name)
            if len(tail) > last.size:
                raise ValueError(f"{type(self).__name__}.{last.name}: at most {last.size} bytes, not {len(tail)}")
            data += tail
        return data

    @classmethod
    def unpack(cls, data: bytes | memoryview, *, where: str = "") -> Block:
        """Decode exactly one block from ``data``; raise :class:`DecodeError`."""
        where = where or cls.__name__
        fixed = cls._STRUCT.size
        if len(data) < fixed:
            raise DecodeError(where, f"truncated: {len(data)} bytes, need {fixed}")
        raw = cls._STRUCT.unpack_from(data)
        kwargs: dict[str, Any] = {}
        index = 0
        for f, _ in cls.OFFSETS:
            if f.variable:
                tail = bytes(data[fixed:])
                if len(tail) > f.size:
                    raise DecodeError(f"{where}.{f.name}", f"too long: {len(tail)} bytes, at most {f.size}")
                kwargs[f.name] = tail
                continue
            value = raw[index]
            index += 1
            if f.kind is Kind.UINT:
                if f.size not in _UINT_FORMATS:
                    value = int.from_bytes(value, BYTE_ORDER)
                if f.enum is not None:
                    try:
                        value = f.enum(value)
                    except ValueError:
                        raise DecodeError(f"{where}.{f.name}", f"unknown value {value}") from None
            elif f.kind is Kind.ADDR:
                value = decode_addr(value)
            elif f.kind is Kind.BLOCK:
                value = f.block.unpack(value, where=f"{where}.{f.name}")
            kwargs[f.name] = value
        if not cls.OFFSETS or not cls.OFFSETS[-1][0].variable:
            if len(data) != fixed:
                raise DecodeError(where, f"length mismatch: {len(data)} bytes, expected {fixed}")
        return cls(**kwargs)
