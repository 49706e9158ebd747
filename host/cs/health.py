"""Health monitors: TCP connect and HTTP GET probes per pool node (asyncio).

A node goes down after ``down`` consecutive failed probes and up again after
``up`` consecutive successes; each change is logged and counted by the core
(:meth:`ControlSegment.set_health`).  Successful probes feed the node's
response time (the ``fastest`` method).
"""

from __future__ import annotations

import asyncio
import logging
import time

from .config import MonitorConfig

__all__ = ["HealthManager", "http_probe", "tcp_probe"]

log = logging.getLogger("twinplane.cs.health")


async def tcp_probe(host: str, port: int, timeout: float) -> float | None:
    """Seconds to connect, or None on failure."""
    start = time.perf_counter()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (TimeoutError, OSError):
        return None
    elapsed = time.perf_counter() - start
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return elapsed


async def http_probe(host: str, port: int, mon: MonitorConfig) -> float | None:
    """Seconds for a GET whose status (and body, if asked) match, or None."""
    start = time.perf_counter()

    async def get() -> bool:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            host_header = f"[{host}]" if ":" in host else host
            writer.write(f"GET {mon.path} HTTP/1.0\r\nHost: {host_header}\r\nUser-Agent: twinplane-cs\r\n"
                         "Connection: close\r\n\r\n".encode())
            await writer.drain()
            data = await reader.read(1 << 16)
            while len(data) < (1 << 16):
                more = await reader.read(1 << 16)
                if not more:
                    break
                data += more
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) < 2 or not parts[1].isdigit() or int(parts[1]) != mon.status:
            return False
        return not mon.body or mon.body.encode() in body

    try:
        ok = await asyncio.wait_for(get(), mon.timeout_s)
    except (TimeoutError, OSError, ValueError):
        return None
    return time.perf_counter() - start if ok else None


class HealthManager:
    """Runs one probe task per monitored node of the core's pools."""

    def __init__(self, core):
        self.core = core
        self.tasks: dict[tuple[str, int], asyncio.Task] = {}
        self.probes = 0

    def sync(self) -> None:
        """Start tasks for monitored nodes, stop those no longer monitored."""
        wanted = {}
        for pool in self.core.pools.values():
            mon = self.core.config.monitors.get(pool.monitor) if pool.monitor else None
            if mon is None:
                continue
            for node in pool.nodes:
                if not node.removed:
                    wanted[(pool.name, node.node_id)] = (node, mon)
        for key in list(self.tasks):
            if key not in wanted or self.tasks[key].get_name() != repr(wanted[key][1]):
                self.tasks.pop(key).cancel()
        for key, (node, mon) in wanted.items():
            if key not in self.tasks:
                self.tasks[key] = asyncio.get_running_loop().create_task(self._run(node, mon), name=repr(mon))

    async def _run(self, node, mon: MonitorConfig) -> None:
        good = bad = 0
        host = str(node.address)
        while True:
            if mon.type == "tcp":
                rtt = await tcp_probe(host, node.port, mon.timeout_s)
            else:
                rtt = await http_probe(host, node.port, mon)
            self.probes += 1
            if rtt is None:
                good, bad = 0, bad + 1
                if bad >= mon.down and node.up:
                    self.core.set_health(node, False)
            else:
                good, bad = good + 1, 0
                self.core.set_health(node, node.up or good >= mon.up, rtt)
            await asyncio.sleep(mon.interval_s)

    def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        self.tasks.clear()
