# The reference DFS's CSMB side: association handshake, VS and CONFIG requests.
# Ref: /tmp/handshake.txt steps 1-7 and 9; the patent's HELLO version
#      negotiation (VERS_NEW / VERS_OBSOLETE).
"""CSMB half of :class:`twinplane.model.dfs.ReferenceDFS` (a mixin).  One
:class:`_Peer` per CS, keyed by the CSMB source address; the decisions are
listed in :mod:`twinplane.model.dfs`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from twinplane.protocol.codec import DecodeError, ReplayWindow, auth_response, session_id
from twinplane.protocol.codes import SUPPORTED_VERSIONS, Bus, ConfigItem, CsmbType, ErrorCode, Flag, Role
from twinplane.protocol.messages import (
    AddVs,
    Config,
    CsmbAck,
    CsmbAuthChallenge,
    CsmbAuthResponse,
    CsmbHello,
    DelVs,
    Message,
    SsmbReset,
    VirtualServer,
    VsList,
)
from twinplane.protocol.wire import decode_addr

__all__ = ["RESET_REASON_NO_FLOWS", "Address", "CsmbSide", "VsEntry"]

Address = tuple[str, int]

#: SsmbReset.reason of the RESET a DFS sends a newly authenticated CS while it holds no flow.
RESET_REASON_NO_FLOWS = 1
#: An address field the DFS leaves unset (its HELLO's ssmb_standby_addr).
_UNSET_ADDR = ipaddress.IPv6Address(0)


@dataclass
class VsEntry:
    vs: VirtualServer
    flags: Flag
    #: the gateware's CAM slot: an ADD_VS of a new vs_id takes the lowest free
    #: one, of a known vs_id its own (hdl/msgport/session.py); the lowest slot
    #: wins a tie between equally specific matches
    slot: int = 0


@dataclass
class _Peer:
    """One CS association (keyed by the CSMB source address)."""

    csmb_addr: Address
    nonce: bytes
    cs_id: int = 0
    role: Role = Role.ACTIVE
    ssmb_addr: Address = ("0.0.0.0", 0)
    hello_interval_s: float = 1.0
    last_hello: float = 0.0
    session: int = 0
    negotiated: bool = False
    authenticated: bool = False
    # Re-authenticating to become active (a takeover under way): new flows
    # wait for it as they would for an authenticated CS.
    taking_over: bool = False
    reset_sent: bool = False
    epoch: int = 0
    seq: int = 0
    windows: dict = field(default_factory=dict)

    def window(self, session: int) -> ReplayWindow:
        """The replay window of this CS's messages in ``session``: one for
        both buses, as the CS counts ``seq`` across both (and the gateware
        keeps one window per CS slot)."""
        return self.windows.setdefault(session, ReplayWindow())


class CsmbSide:
    """Mixin: the DFS side of the CSMB conversation."""

    # -- CSMB (the DFS side of the handshake) -------------------------------------------------------
    def _csmb(self, msg: Message, src: Address, now: float) -> None:
        peer = self.peers.get(src)
        if isinstance(msg, CsmbHello):
            self._hello(msg, src, peer, now)
            return
        if peer is None:
            self._count("invalid_no_association")
            self._notauth(msg, src, None, now)
            return
        try:
            peer.window(msg.session).check(msg.seq)
        except DecodeError:
            self._count("invalid_replay")
            return
        if isinstance(msg, CsmbAuthChallenge):
            if not peer.negotiated:
                self._count("invalid_not_negotiated")
                return
            if msg.session != 0:
                self._count("invalid_session")
                return
            peer.session = session_id(self.config.key, msg.challenge, peer.nonce)
            peer.authenticated, peer.taking_over = True, False
            peer.epoch = 0
            self._adopt_epoch(peer, msg.epoch)
            reply = CsmbAuthResponse(challenge=msg.challenge,
                                     response=auth_response(self.config.key, msg.challenge, peer.nonce),
                                     session=peer.session)
            self._count("cs_authenticated")
            self._send(peer, Bus.CSMB, reply)
            if not peer.reset_sent and not self.flows:
                # Handshake: "a RESET from the DFS (after its restart) tells the CS its
                # flows are gone" -- sent once per association, only while we hold none.
                peer.reset_sent = True
                self._send(peer, Bus.SSMB, SsmbReset(reason=RESET_REASON_NO_FLOWS))
            return
        if not isinstance(msg, AddVs | DelVs | VsList | Config):
            self._count("invalid_unexpected_type")
            return
        if not peer.authenticated or msg.session != peer.session:
            self._count("invalid_session")
            self._notauth(msg, src, peer, now)
            return
        self._adopt_epoch(peer, msg.epoch)
        if not isinstance(msg, VsList) and (not self.is_active(peer) or msg.epoch < self.epoch):
            # Fencing (docs/redundancy.md): only the active set changes state.
            self._count("invalid_stale_epoch")
            self._ack(peer, msg, ErrorCode.STALE_EPOCH)
            return
        error = ErrorCode.NONE
        if isinstance(msg, AddVs):
            error = self._add_vs(msg)
        elif isinstance(msg, DelVs):
            if self.vss.pop(msg.vs.vs_id, None) is not None:
                self._count("vs_deleted")
        elif isinstance(msg, VsList):
            entries = sorted(self.vss.values(), key=lambda e: e.vs.vs_id)
            for index, entry in enumerate(entries):
                self._send(peer, Bus.CSMB, VsList(vs=entry.vs, flags=entry.flags, list_index=index,
                                                  list_count=len(entries)))
        else:
            error = self._config(msg)
        self._ack(peer, msg, error)

    def _notauth(self, msg: Message, src: Address, peer: _Peer | None, now: float) -> None:
        if not isinstance(msg, AddVs | DelVs | VsList | Config):
            return
        if peer is None:
            # Remembered (not negotiated) so that our seq keeps counting for this CS.
            peer = self.peers[src] = _Peer(csmb_addr=src, nonce=self.config.randbytes(8), last_hello=now)
        ack = CsmbAck(acked_type=CsmbType(msg.msg_type), acked_serial=msg.serial_global, error=ErrorCode.NOTAUTH)
        self._send(peer, Bus.CSMB, ack)

    def _ack(self, peer: _Peer, msg: Message, error: ErrorCode) -> None:
        self._send(peer, Bus.CSMB, CsmbAck(acked_type=CsmbType(msg.msg_type), acked_serial=msg.serial_global,
                                           error=error))

    def _adopt_epoch(self, peer: _Peer, epoch: int) -> None:
        """Only an ACTIVE-role CS raises the DFS's epoch; a standby changes nothing."""
        peer.epoch = max(peer.epoch, epoch)
        if peer.role is Role.ACTIVE:
            self.epoch = max(self.epoch, epoch)

    def _hello(self, msg: CsmbHello, src: Address, peer: _Peer | None, now: float) -> None:
        offered = (msg.csmb_vers_major, msg.csmb_vers_minor)
        lowest, highest = min(SUPPORTED_VERSIONS), max(SUPPORTED_VERSIONS)
        if peer is not None:
            try:
                peer.window(msg.session).check(msg.seq)
            except DecodeError:
                self._count("invalid_replay")
                return
        if offered in SUPPORTED_VERSIONS:
            error, version = ErrorCode.NONE, offered
        elif offered > highest:
            error, version = ErrorCode.VERS_NEW, highest
            self._count("hello_vers_new")
        elif offered < lowest:
            error, version = ErrorCode.VERS_OBSOLETE, lowest
            self._count("hello_vers_obsolete")
        else:  # a gap in what we support: offer the highest below it
            error, version = ErrorCode.VERS_NEW, max(v for v in SUPPORTED_VERSIONS if v < offered)
            self._count("hello_vers_new")
        if peer is None:
            # Kept even when the negotiation fails so that our seq keeps counting.
            peer = self.peers[src] = _Peer(csmb_addr=src, nonce=self.config.randbytes(8), last_hello=now)
            peer.window(msg.session).check(msg.seq)
        if error is ErrorCode.NONE:
            if not peer.negotiated:
                self._count("cs_associated")
            peer.negotiated = True
            role = Role(msg.role)
            if role is Role.ACTIVE and peer.role is not Role.ACTIVE and peer.authenticated:
                # Becoming active takes a fresh authentication (docs/redundancy.md).
                peer.authenticated, peer.taking_over = False, True
                self._count("cs_reauth_for_active")
            peer.cs_id, peer.role = msg.cs_id, role
            peer.ssmb_addr = (str(msg.ssmb_addr), msg.ssmb_port)
            peer.hello_interval_s = max(msg.hello_interval_ms, 1) / 1000
            peer.last_hello = now
            if peer.authenticated and msg.session == peer.session:
                self._adopt_epoch(peer, msg.epoch)
        reply = CsmbHello(error=error, flags=Flag.ACTIVE_CS if self.active_set() else Flag.NONE,
                          csmb_vers_major=version[0], csmb_vers_minor=version[1],
                          ssmb_vers_major=version[0], ssmb_vers_minor=version[1], role=Role.ACTIVE, cs_id=0,
                          hello_interval_ms=msg.hello_interval_ms, nonce=peer.nonce,
                          ssmb_addr=self.config.dfs_addr, ssmb_port=self.config.ssmb_port,
                          ssmb_standby_addr=_UNSET_ADDR,  # all zero on the wire
                          session=peer.session if peer.authenticated else 0)
        self._send(peer, Bus.CSMB, reply)

    def _add_vs(self, msg: AddVs) -> ErrorCode:
        vs = msg.vs
        flags = Flag(msg.flags)
        if vs.protocol not in (6, 17) or (not flags & Flag.WILDCARD_ADDR and vs.virt_addr.version != 4):
            self._count("vs_badconfig")
            return ErrorCode.BADCONFIG
        old = self.vss.get(vs.vs_id)
        if old is not None:
            slot = old.slot
        else:
            used = {e.slot for e in self.vss.values()}
            slot = next((i for i in range(self.config.vs_entries) if i not in used), None)
            if slot is None:
                self._count("vs_table_full")
                return ErrorCode.BADCONFIG
        self.vss[vs.vs_id] = VsEntry(vs, flags, slot)
        self._count("vs_added")
        return ErrorCode.NONE

    def _config(self, msg: Config) -> ErrorCode:
        value = msg.value
        try:
            if msg.item is ConfigItem.DFS_ADDR:
                address = decode_addr(value)
                if address.version != 4:
                    return ErrorCode.BADCONFIG
                self.config.dfs_addr = address
            elif msg.item is ConfigItem.DFS_MAC:
                self.config.dfs_mac = value[10:]
            elif msg.item is ConfigItem.IDLE_TIMEOUT_S:
                seconds = int.from_bytes(value, "big")
                if seconds == 0:
                    return ErrorCode.BADCONFIG
                self.idle_timeout_s = float(seconds)
            else:
                self.extra_config[msg.item] = value
        except ValueError:
            return ErrorCode.BADCONFIG
        self._count("config_applied")
        return ErrorCode.NONE
