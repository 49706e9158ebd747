"""``CompiledDFS``: the whole DFS gateware (``DFSCore``) compiled with CXXRTL,
driven from Python through a pipe.

Ref: sim/engine/driver.py (the pipe protocol), docs/simulation.md.

Usage, in the spirit of :class:`twinplane.model.softdfs.SoftDFS`::

    dfs = CompiledDFS(EngineConfig(buckets=16))       # builds or reuses the binary
    dfs.configure(key=KEY, own_mac="02:00:00:00:d0:f5", own_ip="10.100.0.1")
    dfs.inject(0, frame)                              # queued on port 0's rx stream
    for out in dfs.run(5000):                         # 5000 clock cycles
        print(out.port, out.cycle, out.frame.hex())   # frames that left a tx stream
    dfs.counters()                                    # {"flows_installed": ..., "now": ...}
    dfs.close()

Frames go in one byte per cycle, back to back, in the order injected per
port; every tx stream is always ready.  ``run`` returns the frames that
finished leaving during those cycles (:class:`TxFrame`: port, frame, cycle
of the first byte, cycle of the last), also appended to :attr:`tx` (one
deque per port) for callers that pump queues as the demo does with SoftDFS.
Cycles count rising edges since reset (:attr:`cycle`).  The process holds
the model, so a ``CompiledDFS`` is cheap to run but is one simulated board:
make one per system.
"""

from __future__ import annotations

import ipaddress
import struct
import subprocess
from collections import deque
from typing import NamedTuple

from .build import EngineConfig, build_engine

__all__ = ["CompiledDFS", "TxFrame"]


class TxFrame(NamedTuple):
    port: int
    frame: bytes
    cycle: int
    """Cycle the first byte left."""
    end_cycle: int
    """Cycle the last byte left."""


def _read_exact(stream, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise RuntimeError("the compiled DFS exited")
    return data


class CompiledDFS:
    def __init__(self, config: EngineConfig | None = None, *, log=None):
        self.config = config or EngineConfig()
        binary, self.inputs, self.outputs = build_engine(self.config, log=log)
        self._proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self._in, self._out = self._proc.stdin, self._proc.stdout
        self.ports = self.config.ports
        self.tx: dict[int, deque[bytes]] = {i: deque() for i in range(self.ports)}
        self.cycle = 0
        self.busy = False
        self.frames_in = [0] * self.ports
        self.frames_out = [0] * self.ports

    # -- inputs
    def inject(self, port: int, frame: bytes) -> None:
        """Queue ``frame`` (Ethernet, no FCS) on port ``port``'s rx stream."""
        if not 0 <= port < self.ports:
            raise ValueError(f"port must be in 0..{self.ports - 1}, not {port!r}")
        if not frame:
            raise ValueError("frame must not be empty")
        self._in.write(b"I" + struct.pack("<BI", port, len(frame)) + bytes(frame))
        self.frames_in[port] += 1

    def set(self, name: str, value: int) -> None:
        """Drive the non-stream input ``name`` (see :attr:`inputs`) with ``value`` from the next cycle on."""
        if name not in self.inputs:
            raise ValueError(f"input must be one of {self.inputs}, not {name!r}")
        raw = value.to_bytes(16, "little")
        self._in.write(b"S" + struct.pack("<BB", self.inputs.index(name), len(raw)) + raw)

    def configure(self, *, key: bytes, own_mac: str | bytes, own_ip: str) -> None:
        """The configuration a board gets from its console: the SipHash key,
        the DFS's MAC and IPv4 address (the encodings ``sim/dfs/world.py`` uses)."""
        mac = bytes.fromhex(own_mac.replace(":", "")) if isinstance(own_mac, str) else bytes(own_mac)
        if len(key) != 16 or len(mac) != 6:
            raise ValueError(f"key must be 16 bytes and own_mac 6, not {key!r} and {own_mac!r}")
        self.set("key", int.from_bytes(key, "little"))
        self.set("own_mac", int.from_bytes(mac, "big"))
        self.set("own_ip", int(ipaddress.IPv4Address(own_ip)))

    # -- running
    def run(self, cycles: int, *, until_frame: bool = False) -> list[TxFrame]:
        """Run ``cycles`` clock cycles (fewer with ``until_frame``: stop after
        the first frame that leaves); the frames that left, in order."""
        if not isinstance(cycles, int) or cycles < 0:
            raise ValueError(f"cycles must be a non-negative integer, not {cycles!r}")
        self._in.write(b"R" + struct.pack("<QB", cycles, 1 if until_frame else 0))
        out: list[TxFrame] = []
        while True:
            op = _read_exact(self._out, 1)
            if op == b"F":
                port, start, end, length = struct.unpack("<BQQI", _read_exact(self._out, 21))
                frame = _read_exact(self._out, length)
                out.append(TxFrame(port, frame, start, end))
                self.tx[port].append(frame)
                self.frames_out[port] += 1
            elif op == b"D":
                self.cycle, busy = struct.unpack("<QB", _read_exact(self._out, 9))
                self.busy = bool(busy)
                return out
            else:
                raise RuntimeError(f"unexpected reply {op!r} from the compiled DFS")

    def counters(self) -> dict[str, int]:
        """Every non-stream output (the counters and ``now``) by name."""
        self._in.write(b"C")
        op, n = _read_exact(self._out, 2)
        if op != ord("C") or n != len(self.outputs):
            raise RuntimeError("unexpected counters reply from the compiled DFS")
        values = struct.unpack(f"<{n}Q", _read_exact(self._out, 8 * n))
        return dict(zip(self.outputs, values, strict=True))

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._in.write(b"Q")
                self._in.close()
            except OSError:
                pass
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> CompiledDFS:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
