"""Load-balancing decisions: which node of a pool gets a new flow.

# Ref: Maglev, Eisenbud et al., NSDI 2016, §3.4 (lookup table population);
#      BIG-IP load balancing methods (round robin, ratio, least connections,
#      fastest, observed); nginx smooth weighted round robin for ratios.

A node is *eligible* when it is up (health), not in maintenance, not disabled
by the operator and its weight is non-zero (weight 0 drains: its flows stay,
new ones go elsewhere).  No eligible node -> NOTAVAIL; eligible nodes but all
at their connection limit -> CONNLIMIT.

Observed (our formula, BIG-IP's idea): the candidates are ranked by their
current connection count; a node's dynamic ratio is
``weight * (1 + number of candidates with strictly more connections)``, so the
node with the fewest connections gets the largest ratio and ties share one.
The ratios drive the same smooth weighted round robin as ``ratio``.
"""

from __future__ import annotations

import ipaddress
import struct

import siphashc

from twinplane.protocol.codes import ErrorCode
from twinplane.protocol.wire import encode_addr

from .config import NodeConfig, PoolConfig

__all__ = ["Node", "Pool", "maglev_table", "maglev_permutation"]

_HASH_KEY = b"twinplane-maglev"  # 16 bytes: fixed so tables agree across restarts


class Node:
    """Runtime state of one pool member."""

    __slots__ = (
        "node_id", "pool", "address", "port", "mac", "egress_port", "weight", "connection_limit",
        "maintenance", "disabled", "up", "response_time", "connections", "swrr_current",
        "packed", "total_flows", "packets_in", "bytes_in", "packets_out", "bytes_out", "health_changes", "removed",
    )

    def __init__(self, node_id: int, pool: str, cfg: NodeConfig):
        self.node_id = node_id
        self.pool = pool
        self.connections = 0
        self.swrr_current = 0.0
        self.up = True
        self.disabled = False
        self.removed = False  #: gone from the configuration: drains
        self.response_time: float | None = None
        self.total_flows = self.packets_in = self.bytes_in = self.packets_out = self.bytes_out = 0
        self.health_changes = 0
        self.apply(cfg)

    def apply(self, cfg: NodeConfig) -> None:
        self.address = ipaddress.ip_address(cfg.address)
        self.packed = encode_addr(self.address)
        self.port = cfg.port
        self.mac = cfg.mac
        self.egress_port = cfg.egress_port
        self.weight = cfg.weight
        self.connection_limit = cfg.connection_limit
        self.maintenance = cfg.maintenance

    @property
    def name(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def eligible(self) -> bool:
        return self.up and not self.maintenance and not self.disabled and not self.removed and self.weight > 0

    @property
    def full(self) -> bool:
        return 0 < self.connection_limit <= self.connections

    @property
    def state(self) -> str:
        if self.removed:
            return "removed"
        if self.disabled:
            return "disabled"
        if self.maintenance:
            return "maintenance"
        if not self.up:
            return "down"
        return "draining" if self.weight == 0 else "up"


def maglev_permutation(name: bytes, size: int) -> tuple[int, int]:
    """(offset, skip) of a node's preference list (paper §3.4: two hashes)."""
    h = siphashc.siphash(_HASH_KEY, name)
    offset = (h & 0xFFFFFFFF) % size
    skip = ((h >> 32) % (size - 1)) + 1
    return offset, skip


def maglev_table(nodes: list[tuple[bytes, int]], size: int) -> list[int]:
    """Populate the lookup table: ``nodes`` is [(name, weight)]; the result
    holds node indexes.  Weights by proportional turns: each round every node
    earns weight/max_weight turns and fills one slot per whole turn."""
    if not nodes:
        return []
    perms = [maglev_permutation(name, size) for name, _ in nodes]
    top = max(w for _, w in nodes)
    credit = [0.0] * len(nodes)
    nxt = [0] * len(nodes)
    table = [-1] * size
    filled = 0
    while True:
        for i, (_, weight) in enumerate(nodes):
            credit[i] += weight / top
            offset, skip = perms[i]
            while credit[i] >= 1.0:
                credit[i] -= 1.0
                c = (offset + nxt[i] * skip) % size
                while table[c] >= 0:
                    nxt[i] += 1
                    c = (offset + nxt[i] * skip) % size
                table[c] = i
                nxt[i] += 1
                filled += 1
                if filled == size:
                    return table


def flow_hash(src_addr, src_port: int, dst_addr, dst_port: int, protocol: int) -> int:
    """Maglev's flow hash over the 5-tuple; addresses as their 16 wire bytes
    (or ipaddress objects, converted to them)."""
    if not isinstance(src_addr, bytes):
        src_addr = encode_addr(src_addr)
    if not isinstance(dst_addr, bytes):
        dst_addr = encode_addr(dst_addr)
    data = src_addr + dst_addr + struct.pack("!HHB", src_port, dst_port, protocol)
    return siphashc.siphash(_HASH_KEY, data)


class Pool:
    """A pool of nodes and its balancing method."""

    def __init__(self, cfg: PoolConfig, next_id):
        self.name = cfg.name
        self.nodes: list[Node] = []
        self._next_id = next_id
        #: index of the last node chosen by the rotating methods (public:
        #: the CS's QUERY loop inlines round robin, core.ControlSegment._queries)
        self.rr = -1
        self._maglev_key: tuple | None = None
        self._maglev: list[int] = []
        self._maglev_nodes: list[Node] = []
        self.persist: dict[object, tuple[Node, float]] = {}
        self.apply(cfg)

    def apply(self, cfg: PoolConfig) -> None:
        """(Re)configure; nodes keep their state (connections) by address:port,
        nodes no longer listed are marked removed and drain."""
        self.method = cfg.method
        self.persistence_s = cfg.persistence_s
        self.monitor = cfg.monitor
        self.maglev_size = cfg.maglev_size
        by_key = {(str(n.address), n.port): n for n in self.nodes}
        keep: list[Node] = []
        for ncfg in cfg.nodes:
            node = by_key.pop((str(ipaddress.ip_address(ncfg.address)), ncfg.port), None)
            if node is None:
                node = Node(self._next_id(), self.name, ncfg)
            else:
                node.apply(ncfg)
                node.removed = False
            keep.append(node)
        for node in by_key.values():
            if node.connections > 0:
                node.removed = True
                keep.append(node)
        self.nodes = keep
        self._maglev_key = None

    def forget_removed(self) -> list[Node]:
        """Drop removed nodes that have drained; return them."""
        gone = [n for n in self.nodes if n.removed and n.connections <= 0]
        if gone:
            self.nodes = [n for n in self.nodes if n not in gone]
        return gone

    # -- decisions ------------------------------------------------------------
    def select(self, src_addr, src_port: int, dst_addr, dst_port: int, protocol: int,
               now: float) -> tuple[ErrorCode, Node | None]:
        # One pass (no property calls): this runs for every QUERY.
        candidates = []
        eligible = 0
        for n in self.nodes:
            if n.up and n.weight > 0 and not (n.maintenance or n.disabled or n.removed):
                eligible += 1
                if not 0 < n.connection_limit <= n.connections:
                    candidates.append(n)
        if not eligible:
            return ErrorCode.NOTAVAIL, None
        if self.persistence_s > 0:
            entry = self.persist.get(src_addr)
            if entry is not None:
                node, expires = entry
                if expires > now and node.eligible and not node.full:
                    self.persist[src_addr] = (node, now + self.persistence_s)
                    return ErrorCode.NONE, node
        if not candidates:
            return ErrorCode.CONNLIMIT, None
        method = self.method
        if method == "round_robin":
            node = self._round_robin(candidates)
        elif method == "ratio":
            node = self._swrr(candidates, [n.weight for n in candidates])
        elif method == "least_connections":
            node = self._least(candidates, lambda n: n.connections)
        elif method == "fastest":
            # Unmeasured nodes first (they need a measurement), then the
            # fastest; equal times fall back to fewer connections.
            node = self._least(candidates, lambda n: (n.response_time or 0.0, n.connections))
        elif method == "observed":
            counts = sorted(n.connections for n in candidates)
            ratios = []
            for n in candidates:
                more = len(counts) - _bisect_right(counts, n.connections)
                ratios.append(n.weight * (1 + more))
            node = self._swrr(candidates, ratios)
        else:  # maglev
            node = self._maglev_pick(flow_hash(src_addr, src_port, dst_addr, dst_port, protocol))
            if node is None:
                return ErrorCode.CONNLIMIT, None
        if self.persistence_s > 0:
            self.persist[src_addr] = (node, now + self.persistence_s)
        return ErrorCode.NONE, node

    def _round_robin(self, candidates: list[Node]) -> Node:
        # Cycle over the pool's order, skipping nodes that are not candidates.
        nodes = self.nodes
        size = len(nodes)
        if len(candidates) == size:
            self.rr = (self.rr + 1) % size
            return nodes[self.rr]
        ids = {id(n) for n in candidates}
        for step in range(1, size + 1):
            index = (self.rr + step) % size
            if id(nodes[index]) in ids:
                self.rr = index
                return nodes[index]
        raise AssertionError("no candidate")

    def _least(self, candidates: list[Node], key) -> Node:
        # Ties rotate in round-robin order so equal nodes share the load.
        index = {id(n): i for i, n in enumerate(self.nodes)}
        size = len(self.nodes)
        best = min(candidates, key=lambda n: (key(n), (index[id(n)] - self.rr - 1) % size))
        self.rr = index[id(best)]
        return best

    @staticmethod
    def _swrr(candidates: list[Node], weights: list[float]) -> Node:
        # nginx smooth weighted round robin: exact proportions, evenly spread.
        total = 0.0
        best = None
        for node, w in zip(candidates, weights, strict=True):
            node.swrr_current += w
            total += w
            if best is None or node.swrr_current > best.swrr_current:
                best = node
        best.swrr_current -= total
        return best

    def maglev_nodes(self) -> tuple[list[int], list[Node]]:
        eligible = [n for n in self.nodes if n.eligible]
        key = tuple((n.node_id, n.weight) for n in eligible)
        if key != self._maglev_key:
            names = [(f"{n.address}:{n.port}".encode(), n.weight) for n in eligible]
            self._maglev = maglev_table(names, self.maglev_size)
            self._maglev_nodes = eligible
            self._maglev_key = key
        return self._maglev, self._maglev_nodes

    def _maglev_pick(self, h: int) -> Node | None:
        table, nodes = self.maglev_nodes()
        size = len(table)
        slot = h % size
        # A full node passes the flow to the next slot's node (bounded walk).
        for step in range(size):
            node = nodes[table[(slot + step) % size]]
            if not node.full:
                return node
            if step > 4 * len(nodes) and all(n.full for n in nodes):
                return None
        return None

    def expire_persistence(self, now: float) -> None:
        for key in [k for k, (_, exp) in self.persist.items() if exp <= now]:
            del self.persist[key]


def _bisect_right(values: list[int], x: int) -> int:
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if x < values[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo
