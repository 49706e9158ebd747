"""Reference model of the MAC receive verdicts (what GMIIRx must do)."""

import zlib

__all__ = ["fcs_ok", "rx_verdict"]

PREAMBLE = 0x55
SFD = 0xD5


def fcs_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and zlib.crc32(frame[:-4]) == int.from_bytes(frame[-4:], "little")


def rx_verdict(wire: bytes, error: bool = False, max_frame: int = 1518):
    """What the receiver makes of one rx_dv burst ``wire`` (preamble included).

    Returns None (no SFD: ignored, not counted) or (kind, payload) with kind
    one of "good", "fcs", "runt", "oversize"; payload is the frame without FCS.
    """
    if not wire or wire[0] != PREAMBLE:
        return None
    i = 0
    while i < len(wire) and wire[i] == PREAMBLE:
        i += 1
    if i == len(wire) or wire[i] != SFD:
        return None
    frame = wire[i + 1 :]
    payload = frame[:-4]
    if len(frame) < 64:
        return "runt", payload
    if len(frame) > max_frame:
        return "oversize", payload
    if error or not fcs_ok(frame):
        return "fcs", payload
    return "good", payload
