"""Connects the DUT's ports (sim/bridge/ports.py) to the outside world:
endpoints such as TAP interfaces or the UDP message-port gateway, and an
optional pcap record of every port.

An endpoint is any object with

* ``poll() -> list[bytes]``: frames that arrived from outside and go into the
  port (called every ``poll_ns`` of simulated time; must not block), and
* ``deliver(frame) -> bool``: offered each frame leaving the port; True if it
  took the frame.  Endpoints of a port are asked in attach order, so a
  specific one (the UDP gateway) goes before a catch-all (a TAP).

Frames no endpoint takes are kept in :attr:`Bridge.unclaimed`.
"""

from __future__ import annotations

from collections import defaultdict

import cocotb
from cocotb.triggers import Timer
from cocotb.utils import get_sim_time

from .pcap import PcapRecorder
from .ports import Port

__all__ = ["Bridge", "TapEndpoint"]


class TapEndpoint:
    """A :class:`~.tap.TapInterface` as a bridge endpoint (takes every frame)."""

    def __init__(self, tap):
        self.tap = tap

    def poll(self) -> list[bytes]:
        return self.tap.read_all()

    def deliver(self, frame: bytes) -> bool:
        self.tap.write(frame)
        return True


class Bridge:
    def __init__(self, ports: list[Port], clock, *, poll_ns: int = 2048,
                 pcap: PcapRecorder | None = None):
        if not isinstance(poll_ns, int) or poll_ns < 1:
            raise ValueError(f"poll_ns must be a positive integer, not {poll_ns!r}")
        self.ports = ports
        self.clock = clock
        self.poll_ns = poll_ns
        self.pcap = pcap
        self.endpoints: dict[int, list] = defaultdict(list)
        self.unclaimed: dict[int, list[bytes]] = defaultdict(list)
        self._tasks = []

    def attach(self, index: int, endpoint) -> None:
        if not 0 <= index < len(self.ports):
            raise ValueError(f"port index must be in 0..{len(self.ports) - 1}, not {index!r}")
        self.endpoints[index].append(endpoint)

    def start(self) -> None:
        self._tasks.append(cocotb.start_soon(self._poll()))
        for port in self.ports:
            self._tasks.append(cocotb.start_soon(self._egress(port)))

    def inject(self, index: int, frame: bytes) -> None:
        if self.pcap:
            self.pcap.record(index, "rx", frame, int(get_sim_time("ns")))
        self.ports[index].source.send_nowait(frame)

    async def _poll(self) -> None:
        while True:
            # A Timer costs one wake-up per poll; ClockCycles would wake
            # Python on every clock edge in between.
            await Timer(self.poll_ns, unit="ns")
            for index, endpoints in self.endpoints.items():
                for endpoint in endpoints:
                    for frame in endpoint.poll():
                        self.inject(index, frame)

    async def _egress(self, port: Port) -> None:
        while True:
            frame = await port.sink.recv()
            if self.pcap:
                self.pcap.record(port.index, "tx", frame, int(get_sim_time("ns")))
            for endpoint in self.endpoints.get(port.index, ()):
                if endpoint.deliver(frame):
                    break
            else:
                self.unclaimed[port.index].append(frame)
