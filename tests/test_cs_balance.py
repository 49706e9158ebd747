"""Load-balancing decisions of the CS (host/cs/balance.py), without sockets."""

import ipaddress
import random
from collections import Counter

import pytest

from twinplane.host.cs.balance import Pool, flow_hash, maglev_permutation, maglev_table
from twinplane.host.cs.config import NodeConfig, PoolConfig
from twinplane.protocol.codes import ErrorCode

VS = ipaddress.ip_address("192.0.2.1")


def make_pool(method, weights=(1, 1, 1), limits=None, persistence_s=0.0, maglev_size=5003):
    nodes = [NodeConfig(address=f"10.0.0.{i + 1}", port=80, mac=bytes(6), weight=w,
                        connection_limit=(limits[i] if limits else 0)) for i, w in enumerate(weights)]
    ids = iter(range(1, 1000))
    return Pool(PoolConfig(name="p", method=method, persistence_s=persistence_s, maglev_size=maglev_size,
                           nodes=nodes), lambda: next(ids))


def pick(pool, client=1, sport=1000, now=0.0, connect=False):
    error, node = pool.select(ipaddress.ip_address(f"198.51.100.{client}"), sport, VS, 80, 6, now)
    if connect and node is not None:
        node.connections += 1
    return error, node


def names(pool, n, **kw):
    out = []
    for i in range(n):
        error, node = pick(pool, sport=1000 + i, **kw)
        assert error == ErrorCode.NONE
        out.append(node.node_id)
    return out


def test_round_robin_exact_sequence():
    pool = make_pool("round_robin")
    assert names(pool, 7) == [1, 2, 3, 1, 2, 3, 1]
    pool.nodes[1].up = False  # node 2 down: skipped, the cycle goes on
    assert names(pool, 4) == [3, 1, 3, 1]
    pool.nodes[1].up = True
    assert names(pool, 3) == [2, 3, 1]


def test_ratio_exact_proportions():
    pool = make_pool("ratio", weights=(1, 2, 3))
    seq = names(pool, 600)
    assert Counter(seq) == {1: 100, 2: 200, 3: 300}
    # smooth: the heaviest node never gets more than 2 in a row at 1:2:3
    assert max(len(run) for run in "".join(map(str, seq)).replace("1", " ").replace("2", " ").split()) <= 2


def test_least_connections_balances():
    pool = make_pool("least_connections", weights=(1, 1, 1, 1))
    pool.nodes[0].connections = 10
    seq = names(pool, 30, connect=True)
    assert 1 not in seq  # the loaded node waits until the others catch up
    assert [n.connections for n in pool.nodes] == [10, 10, 10, 10]
    rng = random.Random(1)
    for _ in range(2000):  # random churn, then refill: least connections levels the counts
        node = rng.choice(pool.nodes)
        if node.connections and rng.random() < 0.6:
            node.connections -= 1
        else:
            pick(pool, connect=True)
    counts = [n.connections for n in pool.nodes]
    for _ in range(sum(max(counts) - c for c in counts)):
        pick(pool, connect=True)
    assert [n.connections for n in pool.nodes] == [max(counts)] * 4


def test_fastest_prefers_lowest_response_time():
    pool = make_pool("fastest")
    for node, rt in zip(pool.nodes, (0.030, 0.005, 0.020), strict=True):
        node.response_time = rt
    assert set(names(pool, 5)) == {2}
    pool.nodes[1].up = False
    assert set(names(pool, 5)) == {3}


def test_observed_ratio_from_connection_ranks():
    pool = make_pool("observed")
    for node, c in zip(pool.nodes, (0, 5, 10), strict=True):
        node.connections = c
    # ratios weight * (1 + nodes with more connections): 3, 2, 1
    assert Counter(names(pool, 600)) == {1: 300, 2: 200, 3: 100}
    pool.nodes[2].connections = 0  # ties share a rank: 2, 1, 2
    assert Counter(names(pool, 500)) == {1: 200, 2: 100, 3: 200}


def reference_maglev(names_, size):
    """Eisenbud et al. 2016, Pseudocode 1 (equal weights)."""
    perms = [maglev_permutation(n, size) for n in names_]
    nxt = [0] * len(names_)
    entry = [-1] * size
    n = 0
    while True:
        for i in range(len(names_)):
            offset, skip = perms[i]
            c = (offset + nxt[i] * skip) % size
            while entry[c] >= 0:
                nxt[i] += 1
                c = (offset + nxt[i] * skip) % size
            entry[c] = i
            nxt[i] += 1
            n += 1
            if n == size:
                return entry


def test_maglev_matches_paper_and_lookup():
    pool = make_pool("maglev", weights=(1, 1, 1, 1), maglev_size=5003)
    node_names = [f"{n.address}:{n.port}".encode() for n in pool.nodes]
    table = reference_maglev(node_names, 5003)
    assert maglev_table([(n, 1) for n in node_names], 5003) == table
    for sport in range(1000, 1200):
        error, node = pick(pool, sport=sport)
        src = ipaddress.ip_address("198.51.100.1")
        assert node is pool.nodes[table[flow_hash(src, sport, VS, 80, 6) % 5003]]
    # consistent: the same flow maps to the same node every time
    assert [pick(pool, sport=5)[1] for _ in range(3)] == [pick(pool, sport=5)[1]] * 3


def test_maglev_weights_and_minimal_disruption():
    size = 65537
    nodes = [(f"10.0.0.{i}:80".encode(), w) for i, w in enumerate((1, 2, 3, 2, 2))]
    table = maglev_table(nodes, size)
    counts = Counter(table)
    total_w = sum(w for _, w in nodes)
    for i, (_, w) in enumerate(nodes):
        assert abs(counts[i] / size - w / total_w) < 0.01
    # remove node 4: entries of the others mostly stay
    smaller = maglev_table(nodes[:4], size)
    moved = sum(1 for a, b in zip(table, smaller, strict=True) if a != 4 and a != b)
    assert moved / size < 0.08


def test_persistence_holds_and_expires():
    pool = make_pool("round_robin", persistence_s=10.0)
    first = pick(pool, client=7, now=0.0)[1]
    assert all(pick(pool, client=7, sport=2000 + i, now=i)[1] is first for i in range(5))
    other = pick(pool, client=8, now=5.0)[1]
    assert other is not first
    assert pick(pool, client=7, now=100.0)[1] is not first or len(pool.nodes) == 1
    first2 = pick(pool, client=9, now=200.0)[1]
    first2.up = False  # a down node breaks persistence
    assert pick(pool, client=9, now=201.0)[1] is not first2


@pytest.mark.parametrize("method", ["round_robin", "ratio", "least_connections", "fastest", "observed", "maglev"])
def test_connlimit_notavail_and_drain(method):
    pool = make_pool(method, weights=(1, 1), limits=(1, 1))
    got = {pick(pool, sport=s, connect=True)[1].node_id for s in (1, 2)}
    assert got == {1, 2}
    assert pick(pool, sport=3) == (ErrorCode.CONNLIMIT, None)
    pool.nodes[0].connections = 0
    pool.nodes[0].weight = 0  # drained: keeps nothing new even with room
    assert pick(pool, sport=4) == (ErrorCode.CONNLIMIT, None)
    pool.nodes[1].connections = 0
    assert {pick(pool, sport=s)[1].node_id for s in range(5, 40)} == {2}
    pool.nodes[1].maintenance = True
    assert pick(pool, sport=41) == (ErrorCode.NOTAVAIL, None)
    pool.nodes[1].maintenance = False
    pool.nodes[1].up = False
    assert pick(pool, sport=42) == (ErrorCode.NOTAVAIL, None)
