"""Prometheus exposition of the CS core's state (prometheus-client).

A custom collector reads the core when scraped, so the decision path pays
nothing for metrics; the HTTP server runs in prometheus-client's thread.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from .core import LATENCY_BUCKETS

__all__ = ["CsCollector", "serve_metrics"]


class CsCollector:
    def __init__(self, core):
        self.core = core

    def collect(self):
        core = self.core
        counters = dict(core.counters)
        yield CounterMetricFamily("twinplane_cs_queries", "QUERY messages decided", value=counters.get("queries", 0))
        replies = CounterMetricFamily("twinplane_cs_replies", "REPLY messages by error code", labels=["error"])
        for key, value in counters.items():
            if key.startswith("replies_"):
                replies.add_metric([key[len("replies_"):]], value)
        yield replies
        ignored = CounterMetricFamily("twinplane_cs_ignored", "messages ignored, by reason", labels=["reason"])
        for key, value in counters.items():
            if key.startswith("ignored_"):
                ignored.add_metric([key[len("ignored_"):]], value)
        yield ignored
        events = CounterMetricFamily("twinplane_cs_events", "other CS events", labels=["event"])
        for key, value in counters.items():
            if not key.startswith(("replies_", "ignored_")) and key != "queries":
                events.add_metric([key], value)
        yield events
        buckets, total = [], 0
        for bound, count in zip(LATENCY_BUCKETS, list(core.latency), strict=True):
            total += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), total))
        yield HistogramMetricFamily("twinplane_cs_decision_seconds", "QUERY decision latency",
                                    buckets=buckets, sum_value=core.latency_sum)
        yield GaugeMetricFamily("twinplane_cs_flows", "flows in the CS table", value=len(core.flows))
        conns = GaugeMetricFamily("twinplane_cs_node_connections", "current connections per node",
                                  labels=["pool", "node"])
        state = GaugeMetricFamily("twinplane_cs_node_up", "1 if the node takes new flows", labels=["pool", "node"])
        for pool in list(core.pools.values()):
            for node in list(pool.nodes):
                conns.add_metric([pool.name, node.name], node.connections)
                state.add_metric([pool.name, node.name], 1 if node.eligible else 0)
        yield conns
        yield state
        dfs = GaugeMetricFamily("twinplane_cs_dfs_up", "1 if the DFS association is up", labels=["dfs", "state"])
        for peer in list(core.peers.values()):
            dfs.add_metric([peer.name, peer.state], 1 if peer.state == "up" else 0)
        yield dfs


def serve_metrics(core, port: int, addr: str = "127.0.0.1"):
    """Start the endpoint; returns (registry, server or None)."""
    registry = CollectorRegistry()
    registry.register(CsCollector(core))
    result = start_http_server(port, addr=addr, registry=registry)
    return registry, result
