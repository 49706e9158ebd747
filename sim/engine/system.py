"""The compiled DFS with its ports bridged to the outside: endpoints polled
between chunks of a few thousand cycles, an optional pcap record per port.

Ref: sim/bridge/bridge.py (the same endpoint contract: ``poll() ->
list[bytes]`` must not block, ``deliver(frame) -> bool`` True = taken;
endpoints of a port asked in attach order), docs/simulation.md.

Per step: every endpoint is polled and its frames are injected, the engine
runs ``chunk`` cycles, and each frame that left a port is offered to that
port's endpoints.  With ``realtime`` the loop does not let the simulation
run ahead of the wall clock at the build's declared ``clk_hz`` (it sleeps
instead), so the DFS's timers run at wall speed whenever the engine is fast
enough; ``max_rate`` (cycles per wall second) sets another limit, e.g.
twice ``clk_hz`` so the DFS's timers never run more than twice as fast as
the wall clock that its peers' timers follow; without either the
simulation runs flat out.  pcap timestamps are
simulated time at the boards' 125 MHz (8 ns per cycle).
"""

from __future__ import annotations

import time
from collections import defaultdict

from .compiled import CompiledDFS, TxFrame

__all__ = ["SimSystem"]

NS_PER_CYCLE = 8


class SimSystem:
    def __init__(self, dfs: CompiledDFS, *, chunk: int = 256, pcap=None, realtime: bool = False,
                 max_rate: float | None = None):
        if not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk must be a positive integer, not {chunk!r}")
        if max_rate is not None and not max_rate > 0:
            raise ValueError(f"max_rate must be positive cycles per second, not {max_rate!r}")
        self.dfs = dfs
        self.chunk = chunk
        self.pcap = pcap
        self.realtime = realtime
        self.max_rate = dfs.config.clk_hz if realtime else max_rate
        self.endpoints: dict[int, list] = defaultdict(list)
        self.unclaimed: dict[int, list[bytes]] = defaultdict(list)
        self.log: list[TxFrame] | None = None  # set to a list to keep every frame that left
        self._t0 = time.monotonic()
        self._c0 = dfs.cycle
        self.throttled_s = 0.0  # wall seconds slept to hold max_rate (not the engine's work)

    def replace_engine(self, dfs: CompiledDFS) -> None:
        """Go on with another engine (a board that restarted) on the same endpoints."""
        self.dfs = dfs
        self._c0, self._t0 = dfs.cycle, time.monotonic()

    def attach(self, port: int, endpoint) -> None:
        if not 0 <= port < self.dfs.ports:
            raise ValueError(f"port must be in 0..{self.dfs.ports - 1}, not {port!r}")
        self.endpoints[port].append(endpoint)

    def inject(self, port: int, frame: bytes) -> None:
        if self.pcap is not None:
            self.pcap.record(port, "rx", frame, self.dfs.cycle * NS_PER_CYCLE)
        self.dfs.inject(port, frame)

    def step(self, cycles: int | None = None) -> list[TxFrame]:
        """Poll, run ``cycles`` (default :attr:`chunk`), deliver; the frames that left."""
        for port, endpoints in list(self.endpoints.items()):
            for endpoint in endpoints:
                for frame in endpoint.poll():
                    self.inject(port, frame)
        out = self.dfs.run(self.chunk if cycles is None else cycles)
        for tx in out:
            self.dfs.tx[tx.port].clear()  # delivered here; the engine's queue is for direct users
            if self.pcap is not None:
                self.pcap.record(tx.port, "tx", tx.frame, tx.cycle * NS_PER_CYCLE)
            if self.log is not None:
                self.log.append(tx)
            for endpoint in self.endpoints.get(tx.port, ()):
                if endpoint.deliver(tx.frame):
                    break
            else:
                self.unclaimed[tx.port].append(tx.frame)
        if self.max_rate is not None:
            now = time.monotonic()
            ahead = (self.dfs.cycle - self._c0) / self.max_rate - (now - self._t0)
            if ahead > 0:
                # The whole lead: a shorter nap lets an engine faster than the limit
                # outrun it (a 2 ms cap let a 15k cycles/s engine run at 4x clk_hz).
                time.sleep(ahead)
                self.throttled_s += ahead
            elif ahead < -0.5:  # fell behind: no burst to catch up later, at most half a second of credit
                self._c0, self._t0 = self.dfs.cycle, now - 0.5
        return out

    def run_until(self, predicate, *, timeout: float, cycles: int | None = None) -> bool:
        """Step until ``predicate()`` holds, ``timeout`` wall seconds pass or
        ``cycles`` more cycles ran; whether the predicate held."""
        deadline = time.monotonic() + timeout
        stop = None if cycles is None else self.dfs.cycle + cycles
        while not predicate():
            if time.monotonic() > deadline or (stop is not None and self.dfs.cycle >= stop):
                return predicate()
            self.step()
        return True
