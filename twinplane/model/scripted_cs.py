# A tiny scripted CS for tests of the reference DFS and the soft DFS.
# Ref: /tmp/handshake.txt (the CS<->DFS association handshake), docs/protocol.md.
"""``ScriptedCS``: builds the CS's side of the SSMB/CSMB conversation as
datagrams (sequence numbers, session, epoch, CSMB serials filled in) and
decodes the DFS's answers, checking their replay window.  Sans-I/O: the
caller carries the bytes (to :class:`ReferenceDFS` directly or over UDP)."""

from __future__ import annotations

import ipaddress
import os

from twinplane.protocol.codec import Codec, ReplayWindow, auth_response
from twinplane.protocol.codes import PROTOCOL_VERSION, Bus, ErrorCode, Role
from twinplane.protocol.messages import (
    CsmbAuthChallenge,
    CsmbAuthResponse,
    CsmbHello,
    CsmbMessage,
    Message,
)

__all__ = ["ScriptedCS"]


class ScriptedCS:
    def __init__(self, key: bytes, *, cs_id: int = 1, role: Role = Role.ACTIVE, epoch: int = 0,
                 csmb_addr: tuple[str, int] = ("10.1.0.1", 40000),
                 ssmb_addr: tuple[str, int] = ("10.1.0.1", 40001), hello_interval_ms: int = 1000):
        self.key = key
        self.codec = Codec(key)
        self.cs_id, self.role, self.epoch = cs_id, role, epoch
        self.hello_interval_ms = hello_interval_ms
        self.csmb_addr, self.ssmb_addr = csmb_addr, ssmb_addr
        self.seq = 0
        self.session = 0
        self.serial_global = 0
        self.dfs_nonce: bytes | None = None
        self.challenge = b""
        self.window = ReplayWindow()

    def encode(self, msg: Message, *, session: int | None = None, seq: int | None = None) -> bytes:
        """One message as a datagram, with the CS's header fields filled in."""
        self.seq += 1
        msg.seq = self.seq if seq is None else seq
        msg.session = self.session if session is None else session
        msg.epoch = self.epoch
        if isinstance(msg, CsmbMessage):
            self.serial_global = (self.serial_global + 1) & 0xFFFF
            msg.serial_global = self.serial_global
        return self.codec.encode(msg)

    def hello(self, version: tuple[int, int] = PROTOCOL_VERSION, *, interval_ms: int | None = None) -> bytes:
        return self.encode(CsmbHello(
            nonce=os.urandom(8), role=self.role, cs_id=self.cs_id, csmb_vers_major=version[0],
            csmb_vers_minor=version[1], ssmb_vers_major=version[0], ssmb_vers_minor=version[1],
            hello_interval_ms=self.hello_interval_ms if interval_ms is None else interval_ms, ssmb_addr=ipaddress.ip_address(self.ssmb_addr[0]),
            ssmb_port=self.ssmb_addr[1]))

    def auth_challenge(self) -> bytes:
        self.challenge = os.urandom(8)
        return self.encode(CsmbAuthChallenge(challenge=self.challenge), session=0)

    def decode(self, bus: Bus, data: bytes) -> list[Message]:
        """Decode a DFS datagram and check sequence numbers against replay."""
        msgs = self.codec.decode(bus, data)
        for msg in msgs:
            self.window.check(msg.seq)
            if isinstance(msg, CsmbHello) and msg.error is ErrorCode.NONE:
                self.dfs_nonce = msg.nonce
        return msgs

    def accept_auth(self, msg: CsmbAuthResponse) -> None:
        """Verify the DFS's proof and adopt the session (step 4)."""
        if self.dfs_nonce is None or msg.challenge != self.challenge:
            raise ValueError(f"unexpected auth response {msg!r}")
        if msg.response != auth_response(self.key, self.challenge, self.dfs_nonce):
            raise ValueError("the DFS's auth response does not verify")
        self.session = msg.session


class DfsHarness:
    """A :class:`ReferenceDFS` driven by one or more :class:`ScriptedCS` without
    sockets: every answer of the DFS is decoded by the CS it is addressed to."""

    def __init__(self, dfs, *css: ScriptedCS):
        self.dfs = dfs
        self.css = list(css)
        self.now = 0.0
        self.inbox: list[tuple[ScriptedCS, Bus, Message]] = []
        self.frames: list[tuple[int, bytes]] = []

    def _cs_for(self, bus: Bus, dst: tuple[str, int]) -> ScriptedCS:
        for cs in self.css:
            if dst == (cs.csmb_addr if bus is Bus.CSMB else cs.ssmb_addr):
                return cs
        raise LookupError(f"no scripted CS at {dst!r} on {bus.name}")

    def flush(self) -> list[Message]:
        """Decode everything the DFS wants to send; return the messages."""
        out = []
        for bus, dst, data in self.dfs.messages_to_send():
            cs = self._cs_for(bus, dst)
            for msg in cs.decode(bus, data):
                self.inbox.append((cs, bus, msg))
                out.append(msg)
        self.frames += self.dfs.frames_to_send()
        return out

    def send(self, cs: ScriptedCS, bus: Bus, data: bytes) -> list[Message]:
        src = cs.csmb_addr if bus is Bus.CSMB else cs.ssmb_addr
        self.dfs.receive_message(bus, data, src, self.now)
        return self.flush()

    def associate(self, cs: ScriptedCS | None = None) -> None:
        """Steps 1-4 of the handshake; raises if any answer is wrong."""
        cs = cs or self.css[0]
        (hello,) = self.send(cs, Bus.CSMB, cs.hello())
        if not isinstance(hello, CsmbHello) or hello.error is not ErrorCode.NONE:
            raise ValueError(f"bad HELLO answer {hello!r}")
        response, *rest = self.send(cs, Bus.CSMB, cs.auth_challenge())
        cs.accept_auth(response)
        # A DFS holding no flow follows up with RESET on the SSMB.
        if [type(m).__name__ for m in rest] not in ([], ["SsmbReset"]):
            raise ValueError(f"unexpected messages after the auth response: {rest!r}")

    def frame(self, port: int, frame: bytes) -> list[tuple[int, bytes]]:
        return self.dfs.receive_frame(port, bytes(frame), self.now)
