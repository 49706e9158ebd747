"""SipHash-2-4 (Aumasson & Bernstein, 2012), the message authentication tag of
SSMB and CSMB.

# Ref: J.-P. Aumasson, D. J. Bernstein, "SipHash: a fast short-input PRF", 2012,
#      reference implementation and test vectors (Appendix A).

Why SipHash-2-4: it is a keyed PRF designed for short inputs, built only from
64-bit additions, rotations and XORs -- in gateware one SipRound is four adders
and some wiring, so a message of n 8-byte words costs 2*(n+1)+4 rounds and a
pipelined or iterated core keeps up with the message rate of a 1 GbE port
with a few hundred LUTs.  HMAC-SHA256 would need a much larger core for no gain
at this tag length.  The 64-bit tag is a PRF output, not collision resistant;
it authenticates, with a per-key replay window on the serial numbers.
"""

from __future__ import annotations

__all__ = ["siphash24"]

_MASK = (1 << 64) - 1


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _MASK


def _round(v0: int, v1: int, v2: int, v3: int) -> tuple[int, int, int, int]:
    v0 = (v0 + v1) & _MASK
    v1 = _rotl(v1, 13) ^ v0
    v0 = _rotl(v0, 32)
    v2 = (v2 + v3) & _MASK
    v3 = _rotl(v3, 16) ^ v2
    v0 = (v0 + v3) & _MASK
    v3 = _rotl(v3, 21) ^ v0
    v2 = (v2 + v1) & _MASK
    v1 = _rotl(v1, 17) ^ v2
    v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def siphash24(key: bytes, message: bytes) -> int:
    """SipHash-2-4 of ``message`` under a 16-byte ``key``, as an integer (the
    reference's 8 output bytes read little-endian)."""
    if len(key) != 16:
        raise ValueError(f"SipHash key must be 16 bytes, not {len(key)}")
    k0 = int.from_bytes(key[:8], "little")
    k1 = int.from_bytes(key[8:], "little")
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    length = len(message)
    tail_start = length - (length % 8)
    for offset in range(0, tail_start, 8):
        m = int.from_bytes(message[offset : offset + 8], "little")
        v3 ^= m
        v0, v1, v2, v3 = _round(v0, v1, v2, v3)
        v0, v1, v2, v3 = _round(v0, v1, v2, v3)
        v0 ^= m
    last = ((length & 0xFF) << 56) | int.from_bytes(message[tail_start:], "little")
    v3 ^= last
    v0, v1, v2, v3 = _round(v0, v1, v2, v3)
    v0, v1, v2, v3 = _round(v0, v1, v2, v3)
    v0 ^= last
    v2 ^= 0xFF
    for _ in range(4):
        v0, v1, v2, v3 = _round(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3
