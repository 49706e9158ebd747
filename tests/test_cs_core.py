"""The sans-I/O CS core against scripted DFSs (host/cs/fakedfs.py): the
association handshake, CSMB reliability, decisions over SSMB and the flow
lifecycle.  No sockets, no sleeping: time is a number."""

import copy
import dataclasses
import ipaddress

import pytest

from twinplane.host.cs.config import parse_config
from twinplane.host.cs.core import ControlSegment
from twinplane.host.cs.core import _key as table_key
from twinplane.host.cs.fakedfs import FakeDfs
from twinplane.protocol.codec import Codec, ReplayWindow
from twinplane.protocol.codes import Bus, CsmbType, ErrorCode, Flag
from twinplane.protocol.messages import FlowSignature, SsmbQuery
from twinplane.protocol.wire import DecodeError

KEYS = [bytes(range(16)), bytes(range(16, 32))]


def base_config(**over):
    data = {
        "cs": {"ssmb_addr": "127.0.0.1", "ssmb_port": 16350},
        "timeouts": {"flow_idle_s": 30, "reap_retry_s": 2, "hello_interval_ms": 1000,
                     "csmb_retransmit_s": 0.5, "csmb_retransmit_max_s": 4},
        "dfs": [{"name": f"d{i}", "address": "127.0.0.1", "ssmb_port": 7000 + 2 * i,
                 "csmb_port": 7001 + 2 * i, "key": k.hex()} for i, k in enumerate(KEYS)],
        "pool": [{"name": "p", "method": "round_robin", "node": [
            {"address": f"10.0.0.{i}", "port": 8080, "mac": f"02:00:00:00:00:0{i}", "egress_port": i,
             "connection_limit": 100} for i in (1, 2, 3)]}],
        "virtual_server": [{"id": 1, "address": "192.0.2.1", "port": 80, "pool": "p"},
                           {"id": 2, "address": "192.0.2.2", "port": 80, "pool": "p", "enabled": False}],
    }
    for key, value in over.items():
        data[key] = value
    return parse_config(data)


class Net:
    """The CS and its scripted DFSs with a lossless (or lossy) wire."""

    def __init__(self, config=None, versions=None, dfs_versions=None):
        self.cfg = config or base_config()
        self.cs = ControlSegment(self.cfg, versions=versions)
        self.dfs = {d.name: FakeDfs(d.key, **({"versions": dfs_versions} if dfs_versions else {}))
                    for d in self.cfg.dfss}
        self.addrs = {d.name: {Bus.SSMB: (d.address, d.ssmb_port), Bus.CSMB: (d.address, d.csmb_port)}
                      for d in self.cfg.dfss}
        self.now = 0.0
        self.drop = None  # predicate(bus, data) -> True to lose a datagram
        self.sent: list = []

    def pump(self):
        for _ in range(50):
            out = self.cs.datagrams_to_send(self.now)
            if not out:
                return
            for bus, addr, data in out:
                self.sent.append((bus, addr, data))
                if self.drop and self.drop(bus, data):
                    continue
                name = next(n for n, a in self.addrs.items() if a[bus] == addr)
                for rbus, reply in self.dfs[name].receive(bus, data):
                    self.cs.receive_datagram(rbus, reply, self.addrs[name][rbus], self.now)
        raise AssertionError("no quiescence")

    def advance(self, to):
        while True:
            t = self.cs.get_timer()
            if t is None or t > to:
                break
            self.now = max(self.now, t)
            self.cs.handle_timer(self.now)
            self.pump()
        self.now = to

    def inject(self, name, bus, *msgs):
        self.cs.receive_datagram(bus, self.dfs[name].encode(*msgs), self.addrs[name][bus], self.now)
        self.pump()

    def up(self):
        self.advance(0.0)
        assert all(p.state == "up" for p in self.cs.peers.values())


def flow(sport=1000, client="198.51.100.1", vs="192.0.2.1", port=80, ingress=3):
    return FlowSignature(src_addr=ipaddress.ip_address(client), dst_addr=ipaddress.ip_address(vs),
                         src_port=sport, dst_port=port, protocol=6, ingress_port=ingress)


def test_association_and_vs_push():
    net = Net()
    net.up()
    for name, dfs in net.dfs.items():
        peer = net.cs.peers[name]
        assert set(dfs.vss) == {1, 2}
        assert peer.pending == {}
        assert peer.session == dfs.session != 0
        types = [m.msg_type for m in dfs.received]
        assert types[:2] == [CsmbType.HELLO, CsmbType.AUTH_CHALLENGE]  # challenge before anything else
        assert CsmbType.VS_LIST in types
        hello = dfs.received[0]
        assert hello.session == 0 and len(hello.nonce) == 8 and hello.ssmb_port == 16350


def test_query_reply_translation_and_round_robin():
    net = Net()
    net.up()
    dfs = net.dfs["d0"]
    nodes = []
    for sport in range(1000, 1006):
        net.inject("d0", Bus.SSMB, dfs.query(flow(sport), vs_id=1, client_mac=b"\x02\xaa\0\0\0\x07"))
        reply = dfs.replies[-1]
        assert reply.error == ErrorCode.NONE and reply.serial == dfs.serial
        assert reply.flags == Flag.TRANSLATE_ADDR | Flag.TRANSLATE_PORT
        x = reply.xlate
        assert (x.client_mac, x.client_port, x.vs_id, x.node_port) == (b"\x02\xaa\0\0\0\x07", 3, 1, 8080)
        assert x.node_mac == bytes([2, 0, 0, 0, 0, x.egress_port]) and x.idle_timeout_s == 30
        assert str(x.node_addr) == f"10.0.0.{x.egress_port}"
        nodes.append(x.node_id)
    assert nodes == [1, 2, 3, 1, 2, 3]
    assert len(net.cs.flows) == 6
    # the same QUERY again (REPLY lost): the same answer, no new flow
    net.inject("d0", Bus.SSMB, dfs.query(flow(1000), vs_id=1))
    assert dfs.replies[-1].xlate.node_id == 1 and len(net.cs.flows) == 6


def test_unknown_and_notavail():
    net = Net()
    net.up()
    dfs = net.dfs["d1"]
    net.inject("d1", Bus.SSMB, dfs.query(flow(vs="192.0.2.99"), vs_id=99))
    assert dfs.replies[-1].error == ErrorCode.UNKNOWN
    net.inject("d1", Bus.SSMB, dfs.query(flow(vs="192.0.2.2"), vs_id=2))
    assert dfs.replies[-1].error == ErrorCode.NOTAVAIL
    for node in net.cs.nodes.values():
        node.up = False
    net.inject("d1", Bus.SSMB, dfs.query(flow(), vs_id=1))
    assert dfs.replies[-1].error == ErrorCode.NOTAVAIL
    assert net.cs.counters["replies_notavail"] == 2 and net.cs.counters["replies_unknown"] == 1
    assert len(net.cs.flows) == 0


def test_batching_both_ways():
    net = Net()
    net.up()
    dfs = net.dfs["d0"]
    net.sent.clear()
    net.inject("d0", Bus.SSMB, *[dfs.query(flow(s), vs_id=1) for s in range(5)])
    ssmb = [d for b, _, d in net.sent if b is Bus.SSMB]
    assert len(ssmb) == 1 and len(dfs.replies) == 5
    assert len(Codec(KEYS[0]).decode(Bus.SSMB, ssmb[0])) == 5
    net.sent.clear()
    net.inject("d0", Bus.SSMB, *[dfs.query(flow(s), vs_id=1) for s in range(10, 30)])
    ssmb = [d for b, _, d in net.sent if b is Bus.SSMB]
    assert 1 < len(ssmb) < 20 and all(len(d) <= 1472 for d in ssmb) and len(dfs.replies) == 25


def _mixed_run(dfs):
    """Messages for one datagram: QUERYs good and bad, a repeat, a DELETE."""
    q1 = dfs.encode(dfs.query(flow(1), vs_id=1))
    bad_tag = bytearray(dfs.encode(dfs.query(flow(2), vs_id=1)))
    bad_tag[-1] ^= 1
    return [q1, bytes(bad_tag), q1,  # the second q1 is a replay
            dfs.encode(dfs.query(flow(3, vs="192.0.2.9"), vs_id=9)),  # no such VS
            dfs.encode(dfs.query(flow(4, vs="192.0.2.2"), vs_id=2)),  # disabled VS
            dfs.encode(dfs.query(flow(5), vs_id=1)),
            dfs.encode(dfs.query(flow(1), vs_id=1)),  # asked again: the same answer
            dfs.encode(dfs.delete(flow(5))),
            dfs.encode(dfs.query(flow(6), vs_id=1))]


@pytest.mark.parametrize("method,persistence_s", [("round_robin", 0), ("round_robin", 60), ("ratio", 0),
                                                   ("least_connections", 0), ("maglev", 0)])
def test_query_run_in_one_datagram_equals_one_at_a_time(method, persistence_s):
    # The QUERY loop (core.ControlSegment._queries) keeps the replay window,
    # counters and histogram in locals across a datagram and inlines round
    # robin: it must end where the codec path (decode, _on_ssmb, _query,
    # Pool.select), one message at a time, ends.
    def config():
        pool = {"name": "p", "method": method, "persistence_s": persistence_s, "node": [
            {"address": f"10.0.0.{i}", "port": 8080, "mac": f"02:00:00:00:00:0{i}", "egress_port": i,
             "weight": i, "connection_limit": 100} for i in (1, 2, 3)]}
        if method == "maglev":
            pool["maglev_size"] = 251
        return base_config(pool=[pool])

    together, apart = Net(config()), Net(config())
    for net in (together, apart):
        net.up()
        dfs = net.dfs["d0"]
        dfs.replies.clear()
        addr = net.addrs["d0"][Bus.SSMB]
        parts = _mixed_run(dfs)
        if net is together:
            net.cs.receive_datagram(Bus.SSMB, b"".join(parts), addr, net.now)
        else:
            peer = net.cs.peers["d0"]
            for data in parts:
                for item in peer.codec.iter_decode(Bus.SSMB, data):
                    if isinstance(item, DecodeError):
                        net.cs._ignored(peer, item.field)
                    else:
                        net.cs._on_ssmb(peer, item, net.now)
        net.pump()
    views = []
    for net in (together, apart):
        cs, dfs = net.cs, net.dfs["d0"]
        c = cs.counters
        assert (c["queries"], c["replies_none"], c["replies_unknown"], c["replies_notavail"]) == (6, 4, 1, 1)
        assert (c["ignored_tag"], c["ignored_replay"], c["deletes_fin"]) == (1, 1, 1)
        assert sum(cs.latency) == 5  # decisions: not the repeated QUERY
        assert cs.latency_sum > 0 and cs.vs_stats[1]["flows"] == 3
        assert sorted(f.key[2] for f in cs.flows.flows.values()) == [1, 6]
        assert sum(n.connections for n in cs.nodes.values()) == 2
        replies = dfs.replies
        assert [r.seq for r in replies] == sorted(r.seq for r in replies)
        assert replies[4].xlate == replies[0].xlate and replies[0].flow.src_port == replies[4].flow.src_port == 1
        views.append([(r.error, r.serial, r.flags, r.flow, r.xlate) for r in replies])
    assert views[0] == views[1]


def test_replies_leave_before_what_is_numbered_later():
    # REPLYs are numbered when decided; a HELLO due in the same flush is
    # numbered after them and must leave after them, or a DFS whose window
    # is 64 wide would take the older REPLYs for replays.
    net = Net()
    net.up()
    dfs = net.dfs["d0"]
    addr = net.addrs["d0"][Bus.SSMB]
    for chunk in range(5):
        net.cs.receive_datagram(Bus.SSMB, dfs.encode(*[dfs.query(flow(16 * chunk + i), vs_id=1) for i in range(16)]),
                                addr, net.now)
    net.now = net.cs.get_timer()
    net.cs.handle_timer(net.now)  # HELLOs are due
    codec = Codec(KEYS[0])
    sent = [(bus, msg) for bus, to, data in net.cs.datagrams_to_send(net.now) if to in net.addrs["d0"].values()
            for msg in codec.decode(bus, data)]
    assert [bus for bus, _ in sent] == [Bus.SSMB] * 80 + [Bus.CSMB]
    assert sent[-1][1].msg_type == CsmbType.HELLO
    window = ReplayWindow()
    for _, msg in sent:
        window.check(msg.seq)  # raises on a replay
    assert [msg.seq for _, msg in sent] == sorted(msg.seq for _, msg in sent)


def test_delete_accounting_and_connlimit():
    cfg = base_config()
    for n in cfg.pools["p"].nodes:
        n.connection_limit = 1
    net = Net(cfg)
    net.up()
    dfs = net.dfs["d0"]
    for s in range(4):
        net.inject("d0", Bus.SSMB, dfs.query(flow(s), vs_id=1))
    assert [r.error for r in dfs.replies] == [ErrorCode.NONE] * 3 + [ErrorCode.CONNLIMIT]
    node = net.cs.nodes[dfs.replies[0].xlate.node_id]
    net.inject("d0", Bus.SSMB, dfs.delete(flow(0), packets_in=5, bytes_in=500, packets_out=4, bytes_out=4000))
    assert node.connections == 0 and (node.packets_in, node.bytes_in, node.bytes_out) == (5, 500, 4000)
    assert net.cs.vs_stats[1]["bytes_out"] == 4000 and len(net.cs.flows) == 2
    net.inject("d0", Bus.SSMB, dfs.query(flow(9), vs_id=1))
    assert dfs.replies[-1].error == ErrorCode.NONE and dfs.replies[-1].xlate.node_id == node.node_id


def test_reap_alive_then_dead():
    net = Net()
    net.up()
    dfs = net.dfs["d0"]
    net.inject("d0", Bus.SSMB, dfs.query(flow(1), vs_id=1))
    net.inject("d0", Bus.SSMB, dfs.query(flow(2), vs_id=1))
    dfs.alive_flows.add((flow(1).src_addr, flow(1).dst_addr, 1, 80, 6, 0))
    net.advance(29.0)
    assert dfs.reaps == []
    net.advance(31.0)
    assert sorted(r.flow.src_port for r in dfs.reaps) == [1, 2]
    assert all(r.idle_ms == 30000 for r in dfs.reaps)
    assert len(net.cs.flows) == 1  # flow 2 was deleted (REAP), flow 1 alive
    alive = net.cs.flows.get("d0", table_key(flow(1)))
    assert alive is not None and alive.reaping == 0 and alive.deadline > 31.0
    assert net.cs.counters["reaps_alive"] == 1 and net.cs.counters["deletes_reap"] == 1
    dfs.alive_flows.clear()
    net.advance(80.0)
    assert len(net.cs.flows) == 0 and all(n.connections == 0 for n in net.cs.nodes.values())


def test_reap_kept_until_answer():
    net = Net()
    net.up()
    dfs = net.dfs["d0"]
    net.inject("d0", Bus.SSMB, dfs.query(flow(1), vs_id=1))
    net.drop = lambda bus, data: bus is Bus.SSMB  # REAPs are lost
    net.advance(36.5)
    assert len(net.cs.flows) == 1 and net.cs.counters["reaps_sent"] >= 3  # retried every reap_retry_s


def test_dfs_restart_repushes_vss_and_repopulates_flows():
    net = Net()
    net.up()
    dfs = net.dfs["d0"]
    net.inject("d0", Bus.SSMB, dfs.query(flow(1), vs_id=1))
    old_session = net.cs.peers["d0"].session
    dfs.restart()
    assert dfs.vss == {}
    net.advance(1.5)  # the next HELLO answer carries a new nonce
    peer = net.cs.peers["d0"]
    assert peer.state == "up" and peer.session != old_session and peer.session == dfs.session
    assert set(dfs.vss) == {1, 2} and peer.associations == 2
    # docs/redundancy.md: the restarted DFS reported no flow in its DUMP, so
    # the active CS keeps the flow and installs it again with NEWFLOW.
    assert net.cs.flows.get("d0", table_key(flow(1))) is not None
    assert net.cs.counters["flows_repopulated"] == 1
    assert sum(n.connections for n in net.cs.nodes.values()) == 1
    newflows = [m for bus, _, data in net.sent if bus is Bus.SSMB
                for m in Codec(KEYS[0]).iter_decode(Bus.SSMB, data) if getattr(m, "msg_type", 0) == 5]
    assert [m.flow for m in newflows] == [flow(1)]


def test_notauth_ack_triggers_reassociation():
    net = Net()
    net.up()
    dfs = net.dfs["d1"]
    dfs.restart()
    cfg = copy.deepcopy(net.cfg)
    cfg.vss[3] = dataclasses.replace(cfg.vss[1], vs_id=3, port=81)
    net.cs.reconfigure(cfg, net.now)
    net.pump()
    assert net.cs.peers["d1"].state == "up" and set(dfs.vss) == {1, 2, 3}
    assert net.cs.counters["acks_notauth"] >= 1 and net.cs.peers["d1"].associations == 2


def test_csmb_retransmission_same_serial_new_seq():
    net = Net()
    lost = []

    def drop(bus, data):
        msgs = [m for m in Codec(KEYS[0]).iter_decode(bus, data) if not isinstance(m, Exception)]
        if any(m.msg_type == CsmbType.ADD_VS and m.vs.vs_id == 1 for m in msgs) and not lost:
            lost.extend(msgs)
            return True
        return False

    net.drop = drop
    net.advance(0.0)
    peer = net.cs.peers["d0"]
    lost_requests = len(peer.pending)
    assert lost_requests >= 1 and 1 not in net.dfs["d0"].vss
    net.advance(0.6)
    assert peer.pending == {} and 1 in net.dfs["d0"].vss
    again = [m for m in net.dfs["d0"].received if m.msg_type == CsmbType.ADD_VS and m.vs.vs_id == 1]
    first = next(m for m in lost if m.msg_type == CsmbType.ADD_VS)
    assert again[0].serial_global == first.serial_global and again[0].seq > first.seq
    assert net.cs.counters["csmb_retransmits"] == lost_requests


def test_version_fallback_and_give_up():
    net = Net(versions=((2, 0), (1, 0)))
    net.up()
    assert all(p.version == (1, 0) for p in net.cs.peers.values())
    assert net.cs.counters["hello_vers_new"] == 2
    net = Net(versions=((2, 0),), dfs_versions=((1, 0),))
    net.advance(0.0)
    assert all(p.state == "gave_up" for p in net.cs.peers.values())
    net = Net(versions=((1, 0),), dfs_versions=((3, 0),))
    net.advance(0.0)
    assert all(p.state == "gave_up" for p in net.cs.peers.values())
    assert net.cs.counters["hello_vers_obsolete"] == 2


def test_malformed_and_unauthenticated_ignored_and_counted():
    net = Net()
    net.up()
    dfs = net.dfs["d0"]
    addr = net.addrs["d0"][Bus.SSMB]
    net.cs.receive_datagram(Bus.SSMB, b"\x01\x02garbage", addr, 0.0)
    assert net.cs.counters["ignored_header"] == 1
    wrong = Codec(bytes(16)).encode(SsmbQuery(session=dfs.session, seq=999, flow=flow(), vs_id=1))
    net.cs.receive_datagram(Bus.SSMB, wrong, addr, 0.0)
    assert net.cs.counters["ignored_tag"] == 1
    stale = dfs.codec.encode(SsmbQuery(session=dfs.session ^ 1, seq=1000, flow=flow(), vs_id=1))
    net.cs.receive_datagram(Bus.SSMB, stale, addr, 0.0)
    assert net.cs.counters["ignored_session"] == 1
    q = dfs.encode(dfs.query(flow(7), vs_id=1))
    net.cs.receive_datagram(Bus.SSMB, q, addr, 0.0)
    net.cs.receive_datagram(Bus.SSMB, q, addr, 0.0)  # replayed
    assert net.cs.counters["ignored_replay"] == 1 and net.cs.counters["queries"] == 1
    net.cs.receive_datagram(Bus.SSMB, q, ("127.0.0.9", 1), 0.0)
    assert net.cs.counters["ignored_unknown_peer"] == 1
    net.pump()
    assert len(dfs.replies) == 1


def test_unauthenticated_ssmb_before_association():
    net = Net()
    dfs = net.dfs["d0"]
    dfs.session = 0
    net.cs.receive_datagram(Bus.SSMB, dfs.encode(dfs.query(flow(), vs_id=1)), net.addrs["d0"][Bus.SSMB], 0.0)
    assert net.cs.counters["ignored_session"] == 1 and net.cs.counters["queries"] == 0


def test_missed_hellos_mark_dfs_lost():
    net = Net()
    net.up()
    net.drop = lambda bus, data: True
    net.advance(4.5)
    assert net.cs.counters["dfs_lost"] == 2
    net.drop = None
    net.advance(7.0)
    assert all(p.state == "up" for p in net.cs.peers.values())


def test_dfs_reset_forgets_its_flows_only():
    net = Net()
    net.up()
    for name in ("d0", "d1"):
        net.inject(name, Bus.SSMB, net.dfs[name].query(flow(1), vs_id=1))
    from twinplane.protocol.messages import SsmbReset

    net.inject("d0", Bus.SSMB, SsmbReset())
    assert [f.dfs for f in net.cs.flows.flows.values()] == ["d1"]
    net.cs.reset_dfs("d1", net.now)
    net.pump()
    assert len(net.cs.flows) == 0 and net.dfs["d1"].resets == 1


def test_reload_drains_removed_node_and_updates_vss():
    net = Net()
    net.up()
    dfs = net.dfs["d0"]
    for s in range(3):
        net.inject("d0", Bus.SSMB, dfs.query(flow(s), vs_id=1))
    cfg = copy.deepcopy(net.cfg)
    removed = cfg.pools["p"].nodes.pop(2)  # 10.0.0.3 leaves
    del cfg.vss[2]
    net.cs.reconfigure(cfg, net.now)
    net.pump()
    assert set(dfs.vss) == {1}
    gone = next(n for n in net.cs.nodes.values() if str(n.address) == removed.address)
    assert gone.state == "removed" and gone.connections == 1 and len(net.cs.flows) == 3
    for s in range(3, 9):
        net.inject("d0", Bus.SSMB, dfs.query(flow(s), vs_id=1))
        assert dfs.replies[-1].xlate.node_id != gone.node_id
    net.inject("d0", Bus.SSMB, dfs.delete(flow(2)))
    assert gone.node_id not in net.cs.nodes


@pytest.mark.parametrize("action, state", [("drain", "draining"), ("disable", "disabled")])
def test_operator_actions(action, state):
    net = Net()
    net.up()
    node = net.cs.set_node("p/10.0.0.1:8080", action)
    assert node.state == state
    dfs = net.dfs["d0"]
    for s in range(6):
        net.inject("d0", Bus.SSMB, dfs.query(flow(s), vs_id=1))
    assert {r.xlate.node_id for r in dfs.replies} == {2, 3}
    net.cs.set_node(str(node.node_id), "enable")
    assert node.state == "up" and node.weight == 1

