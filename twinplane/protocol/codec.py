"""Encoding, decoding and authentication of SSMB/CSMB datagrams.

# Ref: SipHash-2-4 (Aumasson & Bernstein 2012); replay window after RFC 4303 §3.4.3.

Authentication (docs/protocol.md has the rationale):

* every message ends in an 8-byte tag: the SipHash-2-4 output bytes under the
  16-byte shared key over the bus number (one byte, 0 SSMB / 1 CSMB) followed
  by the message's header and body;
* the header's ``session`` binds a message to one authenticated association:
  session = low 32 bits of SipHash(key, "twinplane-session" | challenge |
  responder nonce), where the challenge is the CS's fresh AUTH_CHALLENGE and
  the nonce the DFS's fresh HELLO nonce, so an old message (of an old session)
  is never accepted in a new one;
* ``seq`` counts the sender's messages in a session; the receiver keeps a
  64-message sliding window and refuses anything seen or older.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import siphashc

from .codes import SUPPORTED_VERSIONS, Bus, CsmbType, SsmbType
from .messages import HEADER_SIZE, MESSAGES_BY_TYPE, TAG_SIZE, Message
from .wire import DecodeError

__all__ = [
    "AUTH_LABEL",
    "MAX_DATAGRAM",
    "SESSION_LABEL",
    "Codec",
    "DecodeError",
    "ReplayWindow",
    "auth_response",
    "session_id",
]

#: Largest UDP payload in one 1500-byte IPv4 frame without fragmentation.
MAX_DATAGRAM = 1500 - 20 - 8

#: What SipHash proves or derives with the shared key, ahead of challenge | nonce
#: (the gateware's session engine hashes the same bytes).
AUTH_LABEL = b"twinplane-auth"
SESSION_LABEL = b"twinplane-session"
_SUPPORTED_MAJORS = frozenset(major for major, _ in SUPPORTED_VERSIONS)
_BUS_PREFIX = {Bus.SSMB: bytes([Bus.SSMB]), Bus.CSMB: bytes([Bus.CSMB])}
_HELLO_TYPES = {Bus.SSMB: int(SsmbType.HELLO), Bus.CSMB: int(CsmbType.HELLO)}


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != 16:
        raise ValueError(f"the shared key must be 16 bytes, not {key!r}")
    return bytes(key)


def auth_response(key: bytes, challenge: bytes, nonce: bytes) -> bytes:
    """The AUTH_RESPONSE proof: SipHash(key, label | challenge | nonce)."""
    return siphashc.siphash(_check_key(key), AUTH_LABEL + challenge + nonce).to_bytes(8, "little")


def session_id(key: bytes, challenge: bytes, nonce: bytes) -> int:
    """The session number both sides derive after a successful exchange."""
    return siphashc.siphash(_check_key(key), SESSION_LABEL + challenge + nonce) & 0xFFFFFFFF or 1


class ReplayWindow:
    """Sliding window of the last 64 sequence numbers accepted in a session."""

    SIZE = 64

    def __init__(self) -> None:
        self.highest = 0
        self.bitmap = 0  # bit i: highest - i was accepted

    def check(self, seq: int) -> None:
        """Accept ``seq`` or raise :class:`DecodeError` (replayed / too old)."""
        if seq == 0:
            raise DecodeError("seq", "replayed: 0 is never a valid sequence number")
        if seq > self.highest:
            shift = seq - self.highest
            self.bitmap = ((self.bitmap << shift) | 1) & ((1 << self.SIZE) - 1) if shift < self.SIZE else 1
            self.highest = seq
            return
        offset = self.highest - seq
        if offset >= self.SIZE:
            raise DecodeError("seq", f"replayed: {seq} is older than the window ({self.highest})")
        if self.bitmap >> offset & 1:
            raise DecodeError("seq", f"replayed: {seq} was already accepted")
        self.bitmap |= 1 << offset


class Codec:
    """Packs and unpacks messages of one association under its shared key."""

    def __init__(self, key: bytes):
        self.key = _check_key(key)

    def tag(self, bus: Bus, data: bytes) -> bytes:
        """The tag of a message's header and body.  The bus number is hashed
        first so a message of one bus is never valid on the other."""
        return siphashc.siphash(self.key, _BUS_PREFIX[bus] + data).to_bytes(TAG_SIZE, "little")

    def encode(self, msg: Message) -> bytes:
        """One message with its length and tag filled in."""
        msg.msg_length = 0
        body = msg.pack()
        msg.msg_length = len(body) + TAG_SIZE
        data = body[:4] + msg.msg_length.to_bytes(2, "big") + body[6:]
        return data + self.tag(msg.BUS, data)

    def encode_batch(self, msgs: Iterable[Message], limit: int = MAX_DATAGRAM) -> list[bytes]:
        """Pack messages into as few datagrams of at most ``limit`` bytes as
        possible, keeping their order."""
        datagrams: list[bytes] = []
        current = b""
        for msg in msgs:
            data = self.encode(msg)
            if current and len(current) + len(data) > limit:
                datagrams.append(current)
                current = b""
            current += data
        if current:
            datagrams.append(current)
        return datagrams

    def decode_one(self, bus: Bus, data: bytes | memoryview, offset: int = 0) -> tuple[Message, int]:
        """Decode the message at ``offset``; return it and the next offset.

        Raises :class:`DecodeError` naming the field and the problem.  After a
        ``msg_length`` error the rest of the datagram cannot be walked.
        """
        remaining = len(data) - offset
        if remaining < HEADER_SIZE + TAG_SIZE:
            raise DecodeError("header", f"truncated: {remaining} bytes, need at least {HEADER_SIZE + TAG_SIZE}")
        length = int.from_bytes(data[offset + 4 : offset + 6], "big")
        if length < HEADER_SIZE + TAG_SIZE or length > remaining:
            raise DecodeError("msg_length", f"length mismatch: says {length}, {remaining} bytes remain")
        msg_type = data[offset + 2]
        cls = MESSAGES_BY_TYPE.get((bus, msg_type))
        if cls is None:
            raise DecodeError("msg_type", f"unknown type {msg_type} on {bus.name}")
        vers_major = data[offset]
        if vers_major not in _SUPPORTED_MAJORS and msg_type != _HELLO_TYPES[bus]:
            raise DecodeError("vers_major", f"bad version {vers_major}")
        end = offset + length
        signed = bytes(data[offset : end - TAG_SIZE])
        if self.tag(bus, signed) != bytes(data[end - TAG_SIZE : end]):
            raise DecodeError("tag", f"bad tag on {cls.__name__}")
        msg = cls.unpack(signed)
        return msg, end

    def decode(self, bus: Bus, data: bytes | memoryview) -> list[Message]:
        """Every message of a datagram; the first bad one raises."""
        return [m for m in self.iter_decode(bus, data, raise_errors=True)]  # type: ignore[misc]

    def iter_decode(
        self, bus: Bus, data: bytes | memoryview, *, raise_errors: bool = False
    ) -> Iterator[Message | DecodeError]:
        """Yield each message of a batch, or a :class:`DecodeError` for a bad
        one.  A bad tag or body skips only that message; a bad length ends the
        datagram (nothing after it can be trusted to be framed)."""
        offset = 0
        while offset < len(data):
            try:
                msg, offset = self.decode_one(bus, data, offset)
            except DecodeError as error:
                if raise_errors:
                    raise
                yield error
                if error.field in ("header", "msg_length"):
                    return
                offset += int.from_bytes(data[offset + 4 : offset + 6], "big")
                continue
            yield msg
