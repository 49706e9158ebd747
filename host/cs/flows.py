"""The CS's own flow table with idle timers (patent figures 19 and 22).

A dict keyed by (DFS name, flow signature tuple) holds the flows; the timers
are one binary heap of (deadline, tiebreak, key) with lazy deletion: a flow
whose deadline changed simply pushes a new entry, and a popped entry counts
only if the flow still exists with that deadline.  Stale entries are purged
by rebuilding the heap when they outnumber the live flows, so memory stays
O(flows) and every operation O(log n) at a million flows.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator

__all__ = ["Flow", "FlowTable", "flow_key"]


def flow_key(flow) -> tuple:
    """The signature tuple a flow is keyed by (direction of origin)."""
    return (flow.src_addr, flow.dst_addr, flow.src_port, flow.dst_port, flow.protocol, flow.vlan_id)


class Flow:
    __slots__ = ("dfs", "key", "flow", "vs_id", "node", "serial", "deadline", "reaping", "created",
                 "idle_s", "client_mac", "translation")

    def __init__(self, dfs: str, key: tuple, flow, vs_id: int, node, serial: int, now: float,
                 idle_s: float, translation=None):
        self.dfs = dfs
        self.key = key
        self.flow = flow
        self.vs_id = vs_id
        self.node = node
        self.serial = serial
        self.created = now
        self.idle_s = idle_s
        self.deadline = now + idle_s
        self.reaping = 0  #: REAPs sent and unanswered
        self.translation = translation


class FlowTable:
    """``flows`` and ``heap``/``tie`` are public because the CS's QUERY loop
    (core.ControlSegment._queries) inlines :meth:`add` (a method call per
    flow setup is measurable there)."""

    def __init__(self) -> None:
        self.flows: dict[tuple[str, tuple], Flow] = {}
        self.heap: list[tuple[float, int, tuple[str, tuple]]] = []
        self.tie = itertools.count()

    def __len__(self) -> int:
        return len(self.flows)

    def get(self, dfs: str, key: tuple) -> Flow | None:
        return self.flows.get((dfs, key))

    def add(self, flow: Flow) -> None:
        k = (flow.dfs, flow.key)
        self.flows[k] = flow
        heapq.heappush(self.heap, (flow.deadline, next(self.tie), k))

    def remove(self, dfs: str, key: tuple) -> Flow | None:
        return self.flows.pop((dfs, key), None)

    def set_deadline(self, flow: Flow, deadline: float) -> None:
        flow.deadline = deadline
        heapq.heappush(self.heap, (deadline, next(self.tie), (flow.dfs, flow.key)))
        if len(self.heap) > 2 * len(self.flows) + 1024:
            self._compact()

    def _compact(self) -> None:
        self.heap = [(f.deadline, next(self.tie), k) for k, f in self.flows.items()]
        heapq.heapify(self.heap)

    def next_deadline(self) -> float | None:
        heap = self.heap
        while heap:
            deadline, _, k = heap[0]
            flow = self.flows.get(k)
            if flow is not None and flow.deadline == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def expired(self, now: float) -> Iterator[Flow]:
        """Pop and yield every flow whose deadline is <= now.  The caller sets
        a new deadline (or removes the flow) for each."""
        heap = self.heap
        while heap and heap[0][0] <= now:
            deadline, _, k = heapq.heappop(heap)
            flow = self.flows.get(k)
            if flow is not None and flow.deadline == deadline:
                yield flow

    def of_dfs(self, dfs: str) -> list[Flow]:
        return [f for f in self.flows.values() if f.dfs == dfs]
