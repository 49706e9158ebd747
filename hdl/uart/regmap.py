"""The board configuration registers and the byte protocol that reaches them
over the UART, declared once for the gateware and the host.

Protocol (8N1 bytes, 115200 baud by default; registers are 32 bits, sent
most significant byte first):

- read:  host sends ``'R' addr``; the board answers the 4 bytes of the value.
- write: host sends ``'W' addr b3 b2 b1 b0``; the board answers ``ACK`` (0x06),
  or ``NAK`` (0x15) when the register is read-only.
- Any other first byte is ignored, and a frame left incomplete for
  ``RESYNC_BITS`` bit-times is forgotten, so a host can always resynchronise
  by waiting.

Writes land immediately in the configuration the core sees (``CONFIG_LAYOUT``).
The key is write-only: it reads back as 0, so a UART cable does not leak it.
"""

from __future__ import annotations

from amaranth.lib import data

__all__ = [
    "ACK",
    "CONFIG_FIELDS",
    "CONFIG_LAYOUT",
    "COUNTER_BASE",
    "MAGIC",
    "MAGIC_ADDR",
    "NAK",
    "N_COUNTERS",
    "RESYNC_BITS",
    "config_words",
    "field_words",
]

ACK = 0x06
NAK = 0x15
MAGIC_ADDR = 0x00
MAGIC = 0x54575031  # "TWP1": register map version 1
RESYNC_BITS = 40
COUNTER_BASE = 0x20
N_COUNTERS = 16

# What a board needs before any CS talks to it.
CONFIG_LAYOUT = data.StructLayout({
    "own_ip": 32,    # this DFS's message-port IPv4 address
    "own_mac": 48,   # its MAC address
    "cs_ip": 32,     # the control segment's IPv4 address (with the build's cs_prefix: its network)
    "cs_mac": 48,    # the control segment's MAC address (or its next hop)
    "cs_port": 16,   # the control segment's UDP port
    "key": 128,      # message authentication key (SipHash key)
})

# field -> (first register address, bits, readable).  Multi-word fields are
# stored most significant word first at increasing addresses.
CONFIG_FIELDS: dict[str, tuple[int, int, bool]] = {
    "own_ip": (0x01, 32, True),
    "own_mac": (0x02, 48, True),
    "cs_ip": (0x04, 32, True),
    "cs_mac": (0x05, 48, True),
    "cs_port": (0x07, 16, True),
    "key": (0x08, 128, False),
}


def field_words(field: str, value: int) -> list[tuple[int, int]]:
    """``[(address, 32-bit word), ...]`` that write ``value`` into ``field``."""
    if field not in CONFIG_FIELDS:
        raise ValueError(f"unknown config field {field!r}")
    addr, bits, _ = CONFIG_FIELDS[field]
    if not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise ValueError(f"{field} must be an integer of {bits} bits, not {value!r}")
    n = (bits + 31) // 32
    return [(addr + i, (value >> (32 * (n - 1 - i))) & 0xFFFFFFFF) for i in range(n)]


def config_words(config: dict[str, int]) -> dict[int, int]:
    """Register address -> initial word for a whole configuration."""
    words: dict[int, int] = {}
    for field, value in config.items():
        words.update(field_words(field, value))
    return words
