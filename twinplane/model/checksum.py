# Internet checksum and its incremental update: the reference model of
# hdl/rewrite/checksum.py.
# Ref: RFC 1071 (computation), RFC 1624 §3 eqn. 3 (incremental update),
#      RFC 768 (UDP: 0 means "no checksum"; a computed 0 is sent as 0xFFFF).
"""The Internet checksum and its incremental update after a field rewrite.

All values are 16-bit words in network order (a word is
``int.from_bytes(data[i:i+2], "big")``).

Why eqn. 3, ``HC' = ~(~HC + ~m + m')``, and not eqn. 2 (``HC - ~m - m'``):
one's-complement addition with end-around carry never yields 0x0000 unless
every operand is 0x0000, so a sum over data that is not all zeros lies in
1..0xFFFF, exactly as a full recomputation's sum does; the updated checksum
is therefore bit-identical to a recomputation, including the case where the
new checksum is 0x0000 (sum 0xFFFF).  Eqn. 2 can produce 0xFFFF there.

UDP (RFC 768): a checksum of 0 means the sender did not compute one and must
stay 0 after a rewrite; a computed checksum of 0 is transmitted as 0xFFFF.
Both are the same number in one's complement, so the update works on a
transmitted 0xFFFF unchanged and only the output needs the 0 -> 0xFFFF rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "checksum_update",
    "checksum_update32",
    "internet_checksum",
    "ones_complement_add",
    "ones_complement_sum",
    "split32",
    "udp_checksum_update",
    "words16",
]

_MASK16 = 0xFFFF


def _check_word(name: str, value: int) -> None:
    if not isinstance(value, int) or not 0 <= value <= _MASK16:
        raise ValueError(f"{name} must be a 16-bit unsigned integer, not {value!r}")


def ones_complement_add(a: int, b: int) -> int:
    """16-bit one's-complement sum with end-around carry."""
    s = a + b
    return (s & _MASK16) + (s >> 16)


def ones_complement_sum(words: Iterable[int]) -> int:
    """End-around-carry sum of 16-bit words (0 only if every word is 0)."""
    total = sum(words)
    while total >> 16:
        total = (total & _MASK16) + (total >> 16)
    return total


def words16(data: bytes) -> list[int]:
    """Big-endian 16-bit words of ``data``; an odd tail is padded with a zero byte."""
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def internet_checksum(data: bytes) -> int:
    """RFC 1071 checksum of ``data`` (the field itself taken as zero by the caller)."""
    return ~ones_complement_sum(words16(data)) & _MASK16


def checksum_update(old_checksum: int, old_words: Sequence[int], new_words: Sequence[int]) -> int:
    """RFC 1624 eqn. 3 for any number of changed words: the checksum after
    each ``old_words[i]`` of the covered data became ``new_words[i]``."""
    _check_word("old_checksum", old_checksum)
    if len(old_words) != len(new_words):
        raise ValueError(
            f"old_words and new_words differ in length: {len(old_words)!r} != {len(new_words)!r}"
        )
    terms = [~old_checksum & _MASK16]
    for i, (old, new) in enumerate(zip(old_words, new_words, strict=True)):
        _check_word(f"old_words[{i}]", old)
        _check_word(f"new_words[{i}]", new)
        terms += [~old & _MASK16, new]
    return ~ones_complement_sum(terms) & _MASK16


def udp_checksum_update(old_checksum: int, old_words: Sequence[int], new_words: Sequence[int]) -> int:
    """:func:`checksum_update` with the RFC 768 rules: 0 (no checksum) stays
    0, and a result of 0 is transmitted as 0xFFFF."""
    if old_checksum == 0:
        _check_word("old_checksum", old_checksum)
        return 0
    return checksum_update(old_checksum, old_words, new_words) or _MASK16


def split32(value: int) -> tuple[int, int]:
    """A 32-bit field (address, sequence number) as its (high, low) words."""
    if not isinstance(value, int) or not 0 <= value <= 0xFFFF_FFFF:
        raise ValueError(f"value must be a 32-bit unsigned integer, not {value!r}")
    return value >> 16, value & _MASK16


def checksum_update32(old_checksum: int, old_value: int, new_value: int, *, udp: bool = False) -> int:
    """Update after one 32-bit field changed (e.g. an IPv4 address, in both
    the IPv4 header checksum and the TCP/UDP pseudo-header)."""
    update = udp_checksum_update if udp else checksum_update
    return update(old_checksum, split32(old_value), split32(new_value))
