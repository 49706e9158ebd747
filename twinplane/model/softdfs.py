# A software DFS: the reference model behind real UDP sockets.
# Ref: /tmp/handshake.txt (SSMB/CSMB over UDP); the sans-I/O core + thin
#      asyncio adapter split of aioquic.
"""``SoftDFS``: :class:`ReferenceDFS` reachable over UDP, so a CS daemon talks
to it exactly as to a board.

* It binds the SSMB and CSMB sockets on ``host`` at the config's ports (0:
  any free port; the bound ports are written back into the config so the
  HELLO answer advertises the right SSMB port).
* Ethernet frames enter with :meth:`inject` (port, bytes) and leave on
  :attr:`tx`, one ``asyncio.Queue`` of frames per network port; the demo or a
  TAP bridge pumps them.
* The model's timers run from one loop timer armed at its next deadline
  (at most ``max_sleep`` seconds away), re-armed after every event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from twinplane.protocol.codes import Bus

from .dfs import DfsConfig, ReferenceDFS

__all__ = ["SoftDFS"]


class _BusProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SoftDFS, bus: Bus):
        self.owner, self.bus = owner, bus

    def datagram_received(self, data: bytes, addr) -> None:
        self.owner._datagram(self.bus, data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        self.owner.dfs.counters["udp_errors"] += 1


class SoftDFS:
    def __init__(self, config: DfsConfig, *, host: str = "127.0.0.1", clock: Callable[[], float] = time.monotonic,
                 max_sleep: float = 0.5):
        self.dfs = ReferenceDFS(config)
        self.host = host
        self.clock = clock
        self.max_sleep = max_sleep
        self.tx: dict[int, asyncio.Queue[bytes]] = {i: asyncio.Queue() for i in range(len(config.port_roles))}
        self._transports: dict[Bus, asyncio.DatagramTransport] = {}
        self._handle: asyncio.TimerHandle | None = None

    @property
    def ports(self) -> dict[Bus, int]:
        return {Bus.SSMB: self.dfs.config.ssmb_port, Bus.CSMB: self.dfs.config.csmb_port}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for bus, attr in ((Bus.SSMB, "ssmb_port"), (Bus.CSMB, "csmb_port")):
            transport, _ = await loop.create_datagram_endpoint(
                lambda bus=bus: _BusProtocol(self, bus), local_addr=(self.host, getattr(self.dfs.config, attr)))
            self._transports[bus] = transport
            setattr(self.dfs.config, attr, transport.get_extra_info("sockname")[1])
        self._schedule()

    async def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()

    async def __aenter__(self) -> SoftDFS:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def inject(self, port: int, frame: bytes) -> None:
        """A frame received on network ``port``."""
        for out_port, out in self.dfs.receive_frame(port, frame, self.clock()):
            self.tx[out_port].put_nowait(out)
        self._flush()

    def _datagram(self, bus: Bus, data: bytes, src: tuple[str, int]) -> None:
        self.dfs.receive_message(bus, data, src, self.clock())
        self._flush()

    def _flush(self) -> None:
        for port, frame in self.dfs.frames_to_send():
            self.tx[port].put_nowait(frame)
        for bus, dst, data in self.dfs.messages_to_send():
            transport = self._transports.get(bus)
            if transport is None:
                self.dfs.counters["tx_unsent_closed"] += 1
                continue
            transport.sendto(data, dst)
        self._schedule()  # a new flow or peer may have an earlier deadline

    def _schedule(self) -> None:
        """(Re)arm the one timer at the model's next deadline (at most ``max_sleep`` away)."""
        if self._handle is not None:
            self._handle.cancel()
        if not self._transports:
            return
        deadline = self.dfs.next_timer()
        delay = self.max_sleep if deadline is None else min(max(deadline - self.clock(), 0.0), self.max_sleep)
        self._handle = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._handle = None
        self.dfs.poll(self.clock())
        self._flush()
