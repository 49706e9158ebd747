"""Redundant control segments, sans-I/O (docs/redundancy.md): the reference DFS
and CS cores in one in-memory world (host/cs/redundancy_world.py), time passed
in.  Replication, takeover, split-brain fencing, rejoin catch-up, DFS restart
repopulation and the active/active split, with synthetic TCP connections that
stay established across each event."""

import ipaddress

import pytest

from twinplane.host.cs.config import ConfigError, parse_config
from twinplane.host.cs.core import _key as table_key
from twinplane.host.cs.redundancy_world import RedundancyWorld, cs_config, cs_config_data
from twinplane.protocol.codes import ErrorCode, Flag, Role
from twinplane.protocol.messages import CsmbHello, FlowSignature


def keys(cs):
    return set(cs.flows.flows)


def up(world):
    world.advance(0.5)
    assert all(cs.peers["dfs0"].state == "up" for cs in world.cs if cs is not None)


def test_standby_mirrors_the_active_flow_table():
    w = RedundancyWorld()
    up(w)
    active, standby = w.cs
    assert (active.role, standby.role) == (Role.ACTIVE, Role.STANDBY)
    assert [p.cs_id for p in w.dfs.active_set()] == [1]
    clients = [w.open(hold=True) for _ in range(6)]
    assert all(w.established(c) for c in clients)
    assert len(keys(active)) == 6 and keys(standby) == keys(active)
    # The same node for every flow on both (node ids agree: same configuration).
    for k, flow in active.flows.flows.items():
        assert standby.flows.flows[k].node.node_id == flow.node.node_id
    assert [n.connections for n in standby.nodes.values()] == [n.connections for n in active.nodes.values()]
    assert w.dfs.counters["replicated"] >= 6 and standby.counters["replicas"] == 6
    # A standby sends no state: no REAP, no VS push.
    assert standby.counters["reaps_sent"] == 0 and w.dfs.counters["invalid_stale_epoch"] == 0
    # DELETE (FIN both ways) reaches both.
    w.release()
    w.advance(3.0)
    assert all(w.done(c) for c in clients)
    assert not w.dfs.flows and not keys(active) and not keys(standby)


def test_takeover_after_the_active_falls_silent():
    w = RedundancyWorld(hello_ms=100)
    up(w)
    old = [w.open(hold=True) for _ in range(4)]
    w.kill(0)
    w.advance(0.05)
    mid = w.open()  # its QUERY goes to the dead active; re-asked of the new one
    took = w.until(lambda: w.cs[1].role is Role.ACTIVE and w.dfs.active_set(), 2.0)
    assert took is not None and took < 1.0, took
    standby = w.cs[1]
    assert standby.counters["takeovers"] == 1 and standby.epoch == 2 and w.dfs.epoch == 2
    assert [p.cs_id for p in w.dfs.active_set()] == [2]
    assert w.dfs.counters["cs_reauth_for_active"] == 1  # authenticated again before it was accepted
    # The new active's table and the DFS's agree (its DUMP was reconciled).
    w.advance(0.1)
    assert {k[1] for k in keys(standby)} == {table_key(f.sig) for f in w.dfs._unique_flows()}
    assert len(keys(standby)) == 5
    new = [w.open() for _ in range(3)]
    w.release()
    w.advance(3.0)
    assert all(w.done(c) for c in old + new + [mid])
    assert w.dfs.counters["queries_rerouted"] == 1
    assert not w.dfs.flows and not keys(standby)


def test_standby_without_any_active_takes_over_after_its_grace():
    w = RedundancyWorld(roles=("standby",))
    w.advance(0.25)
    assert w.cs[0].role is Role.STANDBY
    took = w.until(lambda: w.cs[0].role is Role.ACTIVE, 1.0)
    assert took is not None and w.cs[0].epoch == 2 and w.dfs.active_set()


def test_new_flow_waits_while_a_takeover_is_under_way():
    w = RedundancyWorld()
    up(w)
    w.kill(0)
    w.advance(0.11)  # the standby's last HELLO is now newer than the active's
    w.cut[1] = True  # ... and it does not hear of the active's death yet
    assert w.until(lambda: not w.dfs.active_set(), 1.0) is not None
    w.cut[1] = False
    assert w.cs[1].role is Role.STANDBY and w.dfs.peers
    early = w.open()  # a CS is there but none active: the flow waits, unasked
    assert w.dfs.pending and w.dfs.counters["query_waiting_for_active_cs"] == 1
    assert w.until(lambda: w.done(early), 1.0) is not None
    assert w.dfs.counters["queries_rerouted"] == 1 and w.cs[1].role is Role.ACTIVE


def test_standby_death_changes_nothing():
    w = RedundancyWorld()
    up(w)
    old = w.open(hold=True)
    w.kill(1)
    w.advance(1.0)
    assert w.cs[0].role is Role.ACTIVE and w.cs[0].counters["takeovers"] == 0
    new = w.open()
    w.release()
    w.advance(2.0)
    assert w.done(old) and w.done(new)


def test_split_brain_is_fenced_by_the_epoch():
    w = RedundancyWorld()
    up(w)
    old = w.open(hold=True)
    # A partition: the DFS stops hearing the active, which keeps running.
    w.cut[0] = True
    assert w.until(lambda: w.cs[1].role is Role.ACTIVE and w.dfs.active_set(), 2.0) is not None
    assert w.cs[0].role is Role.ACTIVE  # it still believes it is active
    w.cut[0] = False
    stale_before = w.dfs.counters["invalid_stale_epoch"]
    # Both now talk to the DFS as ACTIVE: only epoch 2 may program it; the
    # HELLO answer (epoch 2, ACTIVE_CS) makes the old active step down.
    raw = w.cs[0].peers["dfs0"]
    w.advance(0.5)
    assert w.cs[0].role is Role.STANDBY and w.cs[0].epoch == 2 and w.cs[0].counters["demotions"] == 1
    assert [p.cs_id for p in w.dfs.active_set()] == [2]
    assert raw.state == "up"
    # Still believing it is active at epoch 1 (forced back), it answers a QUERY:
    # the REPLY is refused at the DFS and never reaches the table.
    w.cs[0].epoch = 1
    w.cs[0].role = Role.ACTIVE
    sig = FlowSignature(src_addr=ipaddress.ip_address("10.9.9.9"), dst_addr=ipaddress.ip_address("10.0.0.100"),
                        src_port=1, dst_port=80, protocol=6)
    w.cs[0]._query(raw, 77, sig.pack(), bytes(6), 1, w.now)
    w.pump()
    assert w.dfs.counters["invalid_stale_epoch"] > stale_before
    assert w.dfs._find(sig) is None
    w.advance(0.5)
    assert w.cs[0].role is Role.STANDBY  # fenced again by the HELLO answer
    w.release()
    w.advance(2.0)
    assert w.done(old)


def test_rejoining_cs_catches_up_and_stays_standby():
    w = RedundancyWorld()
    up(w)
    w.kill(0)
    assert w.until(lambda: w.cs[1].role is Role.ACTIVE and w.dfs.active_set(), 2.0) is not None
    clients = [w.open(hold=True) for _ in range(5)]
    w.restart(0)  # configured "active" at epoch 1: the DFS is at 2 with an active CS
    w.advance(0.6)
    rejoined = w.cs[0]
    assert rejoined.role is Role.STANDBY and rejoined.epoch == 2
    assert keys(rejoined) == keys(w.cs[1]) and len(keys(rejoined)) == 5
    assert rejoined.counters["flows_adopted"] == 5
    # Both directions: it can take over again, with the state it caught up.
    w.kill(1)
    assert w.until(lambda: w.cs[0].role is Role.ACTIVE and w.dfs.active_set(), 2.0) is not None
    assert w.cs[0].epoch == 3
    w.release()
    w.advance(2.0)
    assert all(w.done(c) for c in clients)


def test_both_die_and_restart():
    w = RedundancyWorld()
    up(w)
    clients = [w.open(hold=True) for _ in range(3)]
    w.kill(0)
    w.kill(1)
    w.advance(0.5)
    assert not w.dfs.peers and not w.dfs.active_set()
    w.restart(0)
    w.restart(1)
    w.advance(1.0)
    assert [cs.role for cs in w.cs] == [Role.ACTIVE, Role.STANDBY]
    assert all(len(keys(cs)) == 3 for cs in w.cs)
    new = w.open()
    w.release()
    w.advance(2.0)
    assert all(w.done(c) for c in clients + [new])


def test_dfs_restart_is_repopulated_from_the_active_cs():
    w = RedundancyWorld()
    up(w)
    clients = [w.open(hold=True) for _ in range(5)]
    w.reset_dfs()
    assert not w.dfs.flows
    w.advance(1.0)
    assert w.cs[0].counters["flows_repopulated"] == 5
    assert len(w.dfs._unique_flows()) == 5
    assert keys(w.cs[1]) == keys(w.cs[0])  # the NEWFLOWs were replicated to the standby
    w.release()
    w.advance(2.0)
    assert all(w.done(c) for c in clients)


def test_active_active_splits_queries_and_survives_one():
    w = RedundancyWorld(roles=("active", "active"))
    up(w)
    assert [p.cs_id for p in w.dfs.active_set()] == [1, 2]
    clients = [w.open(hold=True) for _ in range(24)]
    share = [cs.counters["queries"] for cs in w.cs]
    assert sum(share) == 24 and min(share) >= 4, share
    assert keys(w.cs[0]) == keys(w.cs[1]) and len(keys(w.cs[0])) == 24
    w.kill(0)
    w.advance(0.5)
    assert [p.cs_id for p in w.dfs.active_set()] == [2]
    before = w.cs[1].counters["queries"]
    new = [w.open() for _ in range(6)]
    assert w.cs[1].counters["queries"] == before + 6
    w.release()
    w.advance(2.0)
    assert all(w.done(c) for c in clients + new)


def test_dfs_hello_answer_says_whether_an_active_cs_is_there():
    w = RedundancyWorld(roles=("standby",))
    w.advance(0.05)
    answers = []
    w.cs[0].receive_datagram = lambda bus, data, addr, now, f=w.cs[0].receive_datagram: (
        answers.extend(m for m in w.dfs.codec.iter_decode(bus, data) if isinstance(m, CsmbHello)),
        f(bus, data, addr, now))
    w.advance(0.2)
    assert answers and not any(m.flags & Flag.ACTIVE_CS for m in answers)
    w.advance(0.6)
    answers.clear()
    w.advance(0.2)
    assert answers and all(m.flags & Flag.ACTIVE_CS and m.error is ErrorCode.NONE for m in answers)


def test_redundancy_config_is_checked():
    assert cs_config(0, "standby").redundancy.role == "standby"

    def with_redundancy(red):
        return parse_config({**cs_config_data(0, "active"), "redundancy": red})

    with pytest.raises(ConfigError, match=r"redundancy.role: must be 'active' or 'standby', not 'master'"):
        with_redundancy({"role": "master"})
    with pytest.raises(ConfigError, match=r"redundancy.peers\[0\]: not an address:port: 'nowhere'"):
        with_redundancy({"peers": ["nowhere"]})
    with pytest.raises(ConfigError, match="redundancy.bogus: unknown field"):
        with_redundancy({"bogus": 1})
    cfg = with_redundancy({"peers": ["127.0.0.2:6350"], "takeover_grace_hellos": 5})
    assert cfg.redundancy.peers == ("127.0.0.2:6350",) and cfg.redundancy.takeover_grace_hellos == 5


def test_a_standby_that_believes_it_is_active_changes_nothing():
    w = RedundancyWorld()
    up(w)
    client = w.open(hold=True)
    rogue = w.cs[1]
    rogue.role = Role.ACTIVE  # a bug or a stale belief; the DFS still has it as STANDBY
    rogue.reset_dfs("dfs0", w.now)  # SSMB RESET: ignored by the DFS
    data = cs_config_data(1, "standby")
    data["virtual_server"][0]["port"] = 8080
    rogue.reconfigure(parse_config(data), now=w.now)  # CSMB ADD_VS: ACK STALE_EPOCH
    w.pump()
    assert w.dfs.counters["invalid_stale_epoch"] == 2
    assert len(w.dfs._unique_flows()) == 1 and w.dfs.vss[1].vs.virt_port == 80
    assert rogue.role is Role.STANDBY and rogue.counters["demotions"] == 1
    assert rogue.counters["acks_stale_epoch"] == 1
    w.release()
    w.advance(2.0)
    assert w.done(client)


def test_active_at_an_older_epoch_steps_down_on_the_hello_answer():
    w = RedundancyWorld(roles=("active", "active"), epochs=[1, 2])
    w.advance(0.6)
    assert [p.cs_id for p in w.dfs.active_set()] == [2] and w.dfs.epoch == 2
    assert w.cs[0].role is Role.STANDBY and w.cs[0].epoch == 2 and w.cs[0].counters["demotions"] == 1
