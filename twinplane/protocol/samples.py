"""Random, valid messages of every type, for tests, fuzzing and benchmarks."""

from __future__ import annotations

import ipaddress
import random

from .codes import Flag
from .messages import Message
from .wire import Block, Kind

__all__ = ["as_int", "leaf_values", "random_block", "random_value"]


def random_value(f, rng: random.Random):
    if f.kind is Kind.UINT:
        if f.enum is Flag:
            return Flag(rng.getrandbits(18) & ((1 << 14) - 1 | Flag.END | Flag.DISABLED))
        if f.enum is not None:
            return rng.choice(list(f.enum))
        return rng.getrandbits(8 * f.size)
    if f.kind is Kind.ADDR:
        if rng.random() < 0.7:
            return ipaddress.IPv4Address(rng.getrandbits(32))
        value = rng.getrandbits(128)
        return ipaddress.ip_address(value) if value >> 32 != 0xFFFF else ipaddress.IPv6Address(1)
    if f.kind is Kind.MAC:
        return rng.randbytes(6)
    if f.kind is Kind.OCTETS:
        return rng.randbytes(rng.randint(0, f.size) if f.variable else f.size)
    return random_block(f.block, rng)


def random_block(cls: type[Block], rng: random.Random) -> Block:
    values = {}
    for f in cls.all_fields():
        if f.name in ("msg_type", "msg_length"):
            continue
        values[f.name] = random_value(f, rng)
    if issubclass(cls, Message):
        values["vers_major"] = 1
    return cls(**values)


def leaf_values(block: Block, prefix: str = "") -> dict[str, object]:
    out = {}
    for f, _ in block.OFFSETS:
        value = getattr(block, f.name)
        if f.kind is Kind.BLOCK:
            out.update(leaf_values(value, f"{prefix}{f.name}."))
        elif not f.variable:
            out[f"{prefix}{f.name}"] = value
    return out


def as_int(value) -> int:
    if isinstance(value, ipaddress.IPv4Address):
        return 0xFFFF << 32 | int(value)
    if isinstance(value, ipaddress.IPv6Address):
        return int(value)
    if isinstance(value, bytes):
        return int.from_bytes(value, "big")
    return int(value)
