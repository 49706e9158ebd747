"""cocotb drivers for a DUT's packet-stream ports: frames from a queue go into
an ``rx`` stream, frames leaving a ``tx`` stream land in a queue.

Ref: Amaranth 0.5 ``amaranth.lib.stream`` (valid/ready rules); layout from
``twinplane.hdl.packet``.

Flattened names: Amaranth turns a stream member ``rx`` of shape
``packet_signature(8)`` into ``rx__payload`` (one 10-bit vector), ``rx__valid``
and ``rx__ready``; an ``.array(n)`` member becomes ``rx__0__payload``, ...
Inside the payload vector ``data`` is bits 0..7, ``first`` bit 8, ``last`` bit
9 (the offsets are taken from :func:`packet_layout`, and pinned by a test that
reads the generated Verilog).

Sampling rule (as cocotbext-axi does it): at ``RisingEdge(clk)`` the signals
still hold their pre-edge values, so ``valid and ready`` read there means a
transfer took place on this edge; values written then take effect after it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import cocotb
from cocotb.queue import Queue
from cocotb.triggers import ClockCycles, Event, FallingEdge, RisingEdge

from ...hdl.packet import packet_layout

__all__ = ["PacketSink", "PacketSource", "Port", "discover_ports", "payload_bits"]


def payload_bits(data_width: int = 8) -> tuple[int, int, int]:
    """Bit offsets of ``data``, ``first`` and ``last`` in the flat payload vector."""
    layout = packet_layout(data_width)
    return layout["data"].offset, layout["first"].offset, layout["last"].offset


_DATA, _FIRST, _LAST = payload_bits(8)


def _member(dut, prefix: str, name: str):
    try:
        return getattr(dut, f"{prefix}__{name}")
    except AttributeError:
        raise ValueError(f"DUT has no stream port {prefix!r} (missing {prefix}__{name})") from None


class PacketSource:
    """Drives stream ``prefix`` (an ``In`` port of the DUT) with whole frames.

    Frames are sent back to back (one byte per cycle while ``ready``) unless
    ``idle_cycles`` asks for a gap with ``valid`` low after each frame.
    """

    def __init__(self, dut, prefix: str, clock, *, idle_cycles: int = 0):
        if not isinstance(idle_cycles, int) or idle_cycles < 0:
            raise ValueError(f"idle_cycles must be a non-negative integer, not {idle_cycles!r}")
        self.prefix = prefix
        self.clock = clock
        self.valid = _member(dut, prefix, "valid")
        self.ready = _member(dut, prefix, "ready")
        self.payload = _member(dut, prefix, "payload")
        self.idle_cycles = idle_cycles
        self.queue: Queue[bytes] = Queue()
        self.frames = 0
        self.bytes = 0
        self._busy = False
        self._idle = Event()
        self._idle.set()
        self.valid.value = 0
        self.payload.value = 0
        self._task = cocotb.start_soon(self._run())

    async def send(self, frame: bytes) -> None:
        await self.queue.put(self._check(frame))

    def send_nowait(self, frame: bytes) -> None:
        self.queue.put_nowait(self._check(frame))

    def _check(self, frame) -> bytes:
        frame = bytes(frame)
        if not frame:
            raise ValueError("cannot send an empty frame")
        self._idle.clear()
        return frame

    def idle(self) -> bool:
        return not self._busy and self.queue.empty()

    async def wait_idle(self) -> None:
        while not self.idle():
            self._idle.clear()
            await self._idle.wait()

    async def _run(self) -> None:
        edge = RisingEdge(self.clock)
        valid, ready, payload = self.valid, self.ready, self.payload
        while True:
            if self.queue.empty():
                self._busy = False
                self._idle.set()
            waited = self.queue.empty()
            frame = await self.queue.get()
            self._busy = True
            if waited:
                # Woken by a put from anywhere (a Timer, another port): start
                # driving on a falling edge, clear of the next rising one.
                await FallingEdge(self.clock)
            end = len(frame) - 1
            valid.value = 1  # held through the frame: one write less per byte
            for i, byte in enumerate(frame):
                payload.value = byte << _DATA | (i == 0) << _FIRST | (i == end) << _LAST
                await edge
                while not int(ready.value):
                    await edge
            self.frames += 1
            self.bytes += len(frame)
            if self.idle_cycles or self.queue.empty():
                valid.value = 0
            if self.idle_cycles:
                await ClockCycles(self.clock, self.idle_cycles)


class PacketSink:
    """Collects frames from stream ``prefix`` (an ``Out`` port of the DUT).

    ``ready_probability`` < 1 applies random backpressure (to exercise the
    DUT's stream rules); frames go to :attr:`queue` as ``bytes``.  A transfer
    with ``first`` while a frame is open, or bytes before any ``first``, is
    counted in :attr:`errors` (the open frame is dropped).
    """

    def __init__(self, dut, prefix: str, clock, *, ready_probability: float = 1.0, seed: int = 0):
        if not 0 < ready_probability <= 1:
            raise ValueError(f"ready_probability must be in (0, 1], not {ready_probability!r}")
        self.prefix = prefix
        self.clock = clock
        self.valid = _member(dut, prefix, "valid")
        self.ready = _member(dut, prefix, "ready")
        self.payload = _member(dut, prefix, "payload")
        self.ready_probability = ready_probability
        self._random = random.Random(seed)
        self.queue: Queue[bytes] = Queue()
        self.frames = 0
        self.bytes = 0
        self.errors = 0
        self.ready.value = 1 if ready_probability == 1 else 0
        self._task = cocotb.start_soon(self._run())

    async def recv(self) -> bytes:
        return await self.queue.get()

    def recv_nowait(self) -> bytes:
        return self.queue.get_nowait()

    def empty(self) -> bool:
        return self.queue.empty()

    async def _run(self) -> None:
        edge = RisingEdge(self.clock)
        valid_rise = RisingEdge(self.valid)
        valid, ready, payload = self.valid, self.ready, self.payload
        always = self.ready_probability == 1
        ready_now = always
        frame: bytearray | None = None
        while True:
            await edge
            if not int(valid.value):
                if always:
                    # Nothing offered: sleep until valid rises instead of
                    # waking up every cycle (idle ports then cost nothing).
                    await valid_rise
                    continue
            elif ready_now:
                word = int(payload.value)
                if word >> _FIRST & 1:
                    if frame is not None:
                        self.errors += 1
                    frame = bytearray()
                elif frame is None:
                    self.errors += 1
                    frame = bytearray()
                frame.append(word >> _DATA & 0xFF)
                if word >> _LAST & 1:
                    self.frames += 1
                    self.bytes += len(frame)
                    self.queue.put_nowait(bytes(frame))
                    frame = None
            if not always:
                ready_now = self._random.random() < self.ready_probability
                ready.value = int(ready_now)


@dataclass
class Port:
    """One network port of the DUT: what goes in (``rx``) and what leaves (``tx``)."""

    index: int
    source: PacketSource
    sink: PacketSink


def discover_ports(dut, clock, *, rx: str = "rx", tx: str = "tx", idle_cycles: int = 0,
                   ready_probability: float = 1.0) -> list[Port]:
    """Find ports ``rx__0``/``tx__0``, ``rx__1``/``tx__1``, ... (an Amaranth
    ``.array``), or a single ``rx``/``tx`` pair; start a driver on each."""
    ports = []
    i = 0
    while hasattr(dut, f"{rx}__{i}__payload") and hasattr(dut, f"{tx}__{i}__payload"):
        ports.append(Port(i, PacketSource(dut, f"{rx}__{i}", clock, idle_cycles=idle_cycles),
                          PacketSink(dut, f"{tx}__{i}", clock, ready_probability=ready_probability,
                                     seed=i)))
        i += 1
    if not ports:
        ports.append(Port(0, PacketSource(dut, rx, clock, idle_cycles=idle_cycles),
                          PacketSink(dut, tx, clock, ready_probability=ready_probability)))
    return ports
