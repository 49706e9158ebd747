"""Reference DFS: the CSMB handshake (/tmp/handshake.txt), VS configuration,
invalid messages, several CSs."""

import ipaddress

import pytest

from twinplane.model.dfs import DfsConfig, ReferenceDFS
from twinplane.model.scripted_cs import DfsHarness, ScriptedCS
from twinplane.protocol.codec import auth_response, session_id
from twinplane.protocol.codes import Bus, ConfigItem, CsmbType, ErrorCode, Flag, Role
from twinplane.protocol.messages import (
    AddVs,
    Config,
    CsmbAck,
    CsmbAuthResponse,
    CsmbHello,
    DelVs,
    SsmbDump,
    SsmbReset,
    VirtualServer,
    VsList,
)

KEY = bytes(range(16))


def vs(vs_id=1, addr="192.0.2.10", port=80, protocol=6):
    return VirtualServer(vs_id=vs_id, protocol=protocol, virt_addr=ipaddress.ip_address(addr), virt_port=port)


@pytest.fixture
def h():
    return DfsHarness(ReferenceDFS(DfsConfig(key=KEY)), ScriptedCS(KEY))


def test_handshake_steps(h):
    cs = h.css[0]
    (hello,) = h.send(cs, Bus.CSMB, cs.hello(interval_ms=500))
    assert isinstance(hello, CsmbHello) and hello.error is ErrorCode.NONE
    assert (hello.csmb_vers_major, hello.csmb_vers_minor) == (1, 0)
    assert len(hello.nonce) == 8 and hello.session == 0 and hello.ssmb_port == 6340
    assert hello.ssmb_addr == h.dfs.config.dfs_addr
    resp, reset = h.send(cs, Bus.CSMB, cs.auth_challenge())
    assert isinstance(resp, CsmbAuthResponse)
    # A fresh DFS tells the CS its flows are gone, on the SSMB, in the new session.
    assert isinstance(reset, SsmbReset) and reset.session == resp.session
    assert h.inbox[-1][1] is Bus.SSMB
    assert resp.response == auth_response(KEY, cs.challenge, hello.nonce)
    assert resp.session == session_id(KEY, cs.challenge, hello.nonce)
    cs.accept_auth(resp)
    # Every later DFS message carries the session; the HELLO answer keeps the nonce.
    (hello2,) = h.send(cs, Bus.CSMB, cs.hello())
    assert hello2.nonce == hello.nonce and hello2.session == cs.session
    assert h.dfs.counters["cs_authenticated"] == 1


def test_vs_requests_acked(h):
    h.associate()
    cs = h.css[0]
    acks = h.send(cs, Bus.CSMB, cs.encode(AddVs(vs=vs(1))))
    assert acks == [CsmbAck(acked_type=CsmbType.ADD_VS, acked_serial=cs.serial_global, **_hdr(acks[0]))]
    h.send(cs, Bus.CSMB, cs.encode(AddVs(vs=vs(2, port=443), flags=Flag.NOARP_MODE)))
    # Idempotent: the same vs_id replaces.
    h.send(cs, Bus.CSMB, cs.encode(AddVs(vs=vs(2, port=8443))))
    out = h.send(cs, Bus.CSMB, cs.encode(VsList()))
    assert [type(m) for m in out] == [VsList, VsList, CsmbAck]
    assert [(m.vs.vs_id, m.vs.virt_port, m.list_index, m.list_count) for m in out[:2]] == [
        (1, 80, 0, 2), (2, 8443, 1, 2)]
    assert out[2].acked_type is CsmbType.VS_LIST and out[2].error is ErrorCode.NONE
    (ack,) = h.send(cs, Bus.CSMB, cs.encode(DelVs(vs=vs(1))))
    assert ack.error is ErrorCode.NONE and set(h.dfs.vss) == {2}
    (ack,) = h.send(cs, Bus.CSMB, cs.encode(AddVs(vs=vs(3, protocol=1))))
    assert ack.error is ErrorCode.BADCONFIG and 3 not in h.dfs.vss


def _hdr(msg):
    return {k: getattr(msg, k) for k in ("msg_length", "seq", "session", "serial_global", "serial_bytype", "epoch")}


def test_config_items(h):
    h.associate()
    cs = h.css[0]
    value = bytes(10) + b"\xff\xff" + bytes([10, 9, 8, 7])
    (ack,) = h.send(cs, Bus.CSMB, cs.encode(Config(item=ConfigItem.DFS_ADDR, value=value)))
    assert ack.error is ErrorCode.NONE and str(h.dfs.config.dfs_addr) == "10.9.8.7"
    (ack,) = h.send(cs, Bus.CSMB, cs.encode(Config(item=ConfigItem.IDLE_TIMEOUT_S, value=(42).to_bytes(16, "big"))))
    assert ack.error is ErrorCode.NONE and h.dfs.idle_timeout_s == 42
    (ack,) = h.send(cs, Bus.CSMB, cs.encode(Config(item=ConfigItem.IDLE_TIMEOUT_S, value=bytes(16))))
    assert ack.error is ErrorCode.BADCONFIG
    mac = bytes.fromhex("0200000000ee")
    (ack,) = h.send(cs, Bus.CSMB, cs.encode(Config(item=ConfigItem.DFS_MAC, value=bytes(10) + mac)))
    assert h.dfs.config.dfs_mac == mac


@pytest.mark.parametrize("offer,error", [((2, 0), ErrorCode.VERS_NEW), ((1, 7), ErrorCode.VERS_NEW),
                                         ((0, 9), ErrorCode.VERS_OBSOLETE)])
def test_version_negotiation(h, offer, error):
    cs = h.css[0]
    (hello,) = h.send(cs, Bus.CSMB, cs.hello(offer))
    assert hello.error is error
    assert (hello.csmb_vers_major, hello.csmb_vers_minor) == (1, 0)
    assert not any(p.negotiated for p in h.dfs.peers.values())  # no association yet
    (ignored,) = h.send(cs, Bus.CSMB, cs.encode(AddVs(vs=vs())))
    assert ignored.error is ErrorCode.NOTAUTH
    # The CS retries with a version the DFS supports.
    h.associate()
    assert [p.negotiated and p.authenticated for p in h.dfs.peers.values()] == [True]


def test_requests_before_auth_get_notauth(h):
    cs = h.css[0]
    (ack,) = h.send(cs, Bus.CSMB, cs.encode(AddVs(vs=vs())))  # no association at all
    assert ack.error is ErrorCode.NOTAUTH and ack.acked_type is CsmbType.ADD_VS
    h.send(cs, Bus.CSMB, cs.hello())
    (ack,) = h.send(cs, Bus.CSMB, cs.encode(Config(item=ConfigItem.IDLE_TIMEOUT_S, value=bytes(16))))
    assert ack.error is ErrorCode.NOTAUTH and not h.dfs.vss


def test_dfs_restart_seen_by_cs(h):
    h.associate()
    cs = h.css[0]
    old_nonce = cs.dfs_nonce
    h.dfs = ReferenceDFS(DfsConfig(key=KEY))  # restart: no session, a new nonce
    cs.window = type(cs.window)()  # the CS resets its window for the new DFS association
    (ack,) = h.send(cs, Bus.CSMB, cs.encode(AddVs(vs=vs())))
    assert ack.error is ErrorCode.NOTAUTH
    (hello,) = h.send(cs, Bus.CSMB, cs.hello())
    assert hello.nonce != old_nonce and hello.session == 0
    h.associate()
    (ack,) = h.send(cs, Bus.CSMB, cs.encode(AddVs(vs=vs())))
    assert ack.error is ErrorCode.NONE


def test_invalid_messages_counted_and_ignored(h):
    h.associate()
    cs = h.css[0]
    data = bytearray(cs.encode(AddVs(vs=vs())))
    data[30] ^= 1
    assert h.send(cs, Bus.CSMB, bytes(data)) == []
    assert h.dfs.counters["invalid_tag"] == 1
    good = cs.encode(AddVs(vs=vs()))
    assert len(h.send(cs, Bus.CSMB, good)) == 1
    assert h.send(cs, Bus.CSMB, good) == []  # replay
    assert h.dfs.counters["invalid_replay"] == 1
    assert h.send(cs, Bus.CSMB, good[:20]) == []  # truncated
    assert h.dfs.counters["invalid_header"] == 1
    assert h.send(cs, Bus.CSMB, good[:-3]) == []  # truncated tail: msg_length says more
    assert h.dfs.counters["invalid_msg_length"] == 1
    # SSMB with a session that is not the current one.
    assert h.send(cs, Bus.SSMB, cs.encode(SsmbDump(), session=cs.session ^ 1)) == []
    assert h.dfs.counters["invalid_session"] == 1
    # The wrong bus: a CSMB message on the SSMB port fails its tag (the bus is hashed).
    assert h.send(cs, Bus.SSMB, cs.encode(AddVs(vs=vs()))) == []
    assert h.dfs.counters["invalid_tag"] == 2
    assert len(h.dfs.vss) == 1


def test_stale_epoch_and_active_cs():
    cs1 = ScriptedCS(KEY, cs_id=1, csmb_addr=("10.1.0.1", 1), ssmb_addr=("10.1.0.1", 2))
    cs2 = ScriptedCS(KEY, cs_id=2, epoch=3, csmb_addr=("10.1.0.2", 1), ssmb_addr=("10.1.0.2", 2))
    cs3 = ScriptedCS(KEY, cs_id=0, role=Role.STANDBY, epoch=3, csmb_addr=("10.1.0.3", 1),
                     ssmb_addr=("10.1.0.3", 2))
    h = DfsHarness(ReferenceDFS(DfsConfig(key=KEY)), cs1, cs2, cs3)
    h.associate(cs1)
    assert h.dfs.active_cs().cs_id == 1
    h.associate(cs3)
    assert h.dfs.active_cs().cs_id == 1  # a standby is never active
    h.associate(cs2)
    assert h.dfs.active_cs().cs_id == 2  # higher epoch wins over lower cs_id
    (ack,) = h.send(cs1, Bus.CSMB, cs1.encode(AddVs(vs=vs())))
    assert ack.error is ErrorCode.STALE_EPOCH and not h.dfs.vss
    assert h.dfs.counters["invalid_stale_epoch"] == 1
    (ack,) = h.send(cs2, Bus.CSMB, cs2.encode(AddVs(vs=vs())))
    assert ack.error is ErrorCode.NONE and ack.epoch == 3


def test_cs_expires_after_three_missed_hellos(h):
    h.associate()
    cs = h.css[0]
    h.now = 2.9
    h.dfs.poll(h.now)
    assert h.dfs.peers
    h.send(cs, Bus.CSMB, cs.hello())
    h.now = 2.9 + 3.01
    h.dfs.poll(h.now)
    assert not h.dfs.peers and h.dfs.counters["cs_expired"] == 1


def test_config_checks():
    with pytest.raises(ValueError, match="key must be 16 bytes"):
        DfsConfig(key=b"short")
    with pytest.raises(ValueError, match="max_pending must be a positive integer, not 0"):
        DfsConfig(key=KEY, max_pending=0)
    with pytest.raises(TypeError, match="config must be a DfsConfig"):
        ReferenceDFS({"key": KEY})
