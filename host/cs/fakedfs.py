"""A scripted DFS peer for tests and the benchmark: the DFS side of the
association handshake (/tmp/handshake.txt) and just enough SSMB to drive the
CS.  Sans-I/O like the CS core: ``receive(bus, data) -> [(bus, data)]``.

This is not the reference DFS model (twinplane.model.dfs); it answers the
way the contract says and lets a test break the rules on purpose.
"""

from __future__ import annotations

import os

from twinplane.protocol.codec import Codec, ReplayWindow, auth_response, session_id
from twinplane.protocol.codes import SUPPORTED_VERSIONS, Bus, CsmbType, DeleteReason, ErrorCode, SsmbType
from twinplane.protocol.messages import (
    CsmbAck,
    CsmbAuthResponse,
    CsmbHello,
    FlowSignature,
    FlowStats,
    SsmbDelete,
    SsmbDump,
    SsmbQuery,
    SsmbReset,
    SsmbStats,
    VsList,
)
from twinplane.protocol.wire import DecodeError

__all__ = ["FakeDfs"]


class FakeDfs:
    def __init__(self, key: bytes, versions=SUPPORTED_VERSIONS):
        self.codec = Codec(key)
        self.key = key
        self.versions = sorted(versions)
        self.restart()
        self.alive_flows: set = set()  #: flow keys that answer REAP with CONNALIVE

    def restart(self) -> None:
        self.nonce = os.urandom(8)
        self.session = 0
        self.seq = 0  # one counter for both buses, as the gateware's
        self.window = ReplayWindow()
        self.vss: dict[int, object] = {}
        self.received: list = []
        self.reaps: list = []
        self.replies: list = []
        self.resets = 0
        self.serial = 0

    def _out(self, msg) -> bytes:
        self.seq += 1
        msg.seq = self.seq
        if msg.error != ErrorCode.NOTAUTH:
            msg.session = self.session
        return self.codec.encode(msg)

    def receive(self, bus: Bus, data: bytes) -> list[tuple[Bus, bytes]]:
        out: list[tuple[Bus, bytes]] = []
        for msg in self.codec.iter_decode(bus, data):
            if isinstance(msg, DecodeError):
                continue
            self.received.append(msg)
            if bus is Bus.CSMB:
                out.extend((Bus.CSMB, d) for d in self._csmb(msg))
            else:
                out.extend((Bus.SSMB, d) for d in self._ssmb(msg))
        return out

    def _csmb(self, msg) -> list[bytes]:
        t = msg.msg_type
        if t == CsmbType.HELLO:
            if msg.session == 0 and self.session != 0:  # a fresh association
                self.nonce = os.urandom(8)
                self.session = 0
            offered = (msg.csmb_vers_major, msg.csmb_vers_minor)
            if offered > self.versions[-1]:
                v, err = self.versions[-1], ErrorCode.VERS_NEW
            elif offered < self.versions[0]:
                v, err = self.versions[0], ErrorCode.VERS_OBSOLETE
            else:
                v, err = offered, ErrorCode.NONE
            return [self._out(CsmbHello(error=err, csmb_vers_major=v[0], csmb_vers_minor=v[1], ssmb_vers_major=v[0],
                                        ssmb_vers_minor=v[1], nonce=self.nonce))]
        if t == CsmbType.AUTH_CHALLENGE:
            self.session = session_id(self.key, msg.challenge, self.nonce)
            self.window = ReplayWindow()
            return [self._out(CsmbAuthResponse(challenge=msg.challenge,
                                               response=auth_response(self.key, msg.challenge, self.nonce)))]
        if self.session == 0 or msg.session != self.session:
            return [self._out(CsmbAck(error=ErrorCode.NOTAUTH, acked_type=t, acked_serial=msg.serial_global))]
        out = []
        if t == CsmbType.ADD_VS:
            self.vss[msg.vs.vs_id] = msg.vs
        elif t == CsmbType.DEL_VS:
            self.vss.pop(msg.vs.vs_id, None)
        elif t == CsmbType.VS_LIST:
            for i, vs in enumerate(self.vss.values()):
                out.append(self._out(VsList(vs=vs, list_index=i, list_count=len(self.vss))))
        out.append(self._out(CsmbAck(acked_type=t, acked_serial=msg.serial_global)))
        return out

    def _ssmb(self, msg) -> list[bytes]:
        if self.session == 0 or msg.session != self.session:
            return []
        t = msg.msg_type
        if t == SsmbType.REPLY:
            self.replies.append(msg)
        elif t == SsmbType.REAP:
            self.reaps.append(msg)
            key = _key(msg.flow)
            if key in self.alive_flows:
                return [self._out(SsmbStats(error=ErrorCode.CONNALIVE, serial=msg.serial, flow=msg.flow,
                                            stats=FlowStats(idle_ms=10)))]
            return [self._out(SsmbDelete(serial=msg.serial, flow=msg.flow,
                                         stats=FlowStats(reason=DeleteReason.REAP, packets_in=3, bytes_in=300)))]
        elif t == SsmbType.RESET:
            self.resets += 1
            return [self._out(SsmbReset())]
        elif t == SsmbType.DUMP:
            return [self._out(SsmbDump(count=0))]
        return []

    # -- messages the DFS originates --------------------------------------------------------------
    def query(self, flow: FlowSignature, vs_id: int, client_mac: bytes = b"\x02\0\0\0\0\x01") -> SsmbQuery:
        self.serial += 1
        return SsmbQuery(serial=self.serial, flow=flow, vs_id=vs_id, client_mac=client_mac)

    def delete(self, flow: FlowSignature, **stats) -> SsmbDelete:
        return SsmbDelete(flow=flow, stats=FlowStats(reason=DeleteReason.FIN, **stats))

    def encode(self, *msgs) -> bytes:
        data = b""
        for msg in msgs:
            data += self._out(msg)
        return data


def _key(flow) -> tuple:
    return (flow.src_addr, flow.dst_addr, flow.src_port, flow.dst_port, flow.protocol, flow.vlan_id)
