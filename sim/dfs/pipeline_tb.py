"""cocotb: the whole DFS pipeline on the wire (MAC -> parser -> flow table ->
rewriter -> MAC, ``sim/dfs/gmii_dfs.py``) against the reference model on
random traffic, with cocotbext-eth's GMII models at both ports.

# Ref: docs/dfs.md ("Scoreboard"); sim/dfs/scoreboard.py (the traffic and
#      the comparison, shared with the run in Amaranth's simulator)

The scoreboard of sim/dfs/scoreboard.py drives this world unchanged: it
sees a ``World`` whose frames go out through a GMII source and come back
through a GMII sink, and a ``ctx`` whose ``tick`` is a clock edge.  What the
wire adds is checked here: every frame leaving the DFS carries a good FCS
and a full preamble; frames shorter than 60 bytes are padded with zeros (by
the sending NIC's rule on the way in, so the model gets the padded frame
too; by our MAC on the way out, so the model's short frames are compared
padded); and frames the wire spoils (bad FCS, runts) vanish in the MAC,
counted there, without the model ever seeing them.

Environment: ``DFS_SEED``, ``DFS_STEPS``, ``DFS_GEOMETRY`` (buckets,ways,tables).
"""

from __future__ import annotations

import logging
import os
import random
import zlib
from types import SimpleNamespace

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.utils import get_sim_time
from cocotbext.eth import GmiiFrame, GmiiSink, GmiiSource

from twinplane.hdl.dfs.top import _COUNTERS
from twinplane.model.flowkey import ACTION_WIDTH, KEY_WIDTH
from twinplane.model.flowtable import FlowGeometry

from .scoreboard import Scoreboard
from .world import DFS_IP, DFS_MAC, KEY, World

__all__ = ["WireScoreboard", "WireWorld"]

PERIOD_NS = 8
MIN_FRAME = 60  # bytes before the FCS (IEEE 802.3-2018 §3.2.8: 64 with it)
PREAMBLE = b"\x55" * 7 + b"\xd5"
#: Clocks a frame spends in the two MACs beyond its own length (preamble,
#: store-and-forward receive FIFO, FCS, gap): added to each step's room so a
#: step still fits inside one tick of the gateware's clock.
MAC_MARGIN = 200


def _padded(frame: bytes) -> bytes:
    return frame + bytes(MIN_FRAME - len(frame)) if len(frame) < MIN_FRAME else frame


class _Ctx:
    """The two calls of Amaranth's testbench context the scoreboard makes,
    on cocotb: ``tick()`` is a rising edge, ``get(name)`` reads a port."""

    def __init__(self, dut):
        self.dut = dut

    def tick(self):
        return RisingEdge(self.dut.clk)

    def get(self, name: str) -> int:
        return int(getattr(self.dut, name).value)


class WireWorld(World):
    """``World`` with GMII on the wire: ``send`` hands the frame to a GMII
    source and returns once it has been sent; a receiver per port fills
    ``out`` with each frame the DFS sent (FCS checked and stripped)."""

    def __init__(self, dut, ports: int = 2):
        # ``self.dut`` holds port names, which ``_Ctx.get`` reads.
        names = SimpleNamespace(now="now", **{name: name for name in _COUNTERS})
        super().__init__(_Ctx(dut), names)
        self.handle = dut
        self.sources = [GmiiSource(getattr(dut, f"p{i}_rxd"), getattr(dut, f"p{i}_rx_er"),
                                   getattr(dut, f"p{i}_rx_dv"), dut.clk, dut.rst) for i in range(ports)]
        self.sinks = [GmiiSink(getattr(dut, f"p{i}_txd"), getattr(dut, f"p{i}_tx_er"),
                               getattr(dut, f"p{i}_tx_en"), dut.clk, dut.rst) for i in range(ports)]
        for model in self.sources + self.sinks:
            model.log.setLevel(logging.WARNING)
        self.receivers = [cocotb.start_soon(self._receive(i)) for i in range(ports)]

    @property
    def cycle(self) -> int:
        return get_sim_time("ns") // PERIOD_NS

    @cycle.setter
    def cycle(self, value: int) -> None:  # World.__init__ sets it; time is the simulator's
        pass

    async def send(self, port: int, frame: bytes) -> None:
        await self.sources[port].send(GmiiFrame.from_payload(frame))  # pads to 60 bytes, adds the FCS
        await self.sources[port].wait()

    async def send_spoiled(self, port: int, frame: bytes, how: str) -> None:
        """A frame the wire spoils: ``"fcs"`` (one FCS bit flipped) or ``"runt"``
        (cut below 64 bytes, with a valid FCS over what is left)."""
        body = _padded(frame)
        if how == "fcs":
            fcs = bytearray(zlib.crc32(body).to_bytes(4, "little"))
            fcs[0] ^= 0x01
            raw = body + bytes(fcs)
        elif how == "runt":
            body = body[:40]
            raw = body + zlib.crc32(body).to_bytes(4, "little")
        else:
            raise ValueError(f"how must be 'fcs' or 'runt', not {how!r}")
        await self.sources[port].send(GmiiFrame.from_raw_payload(raw))
        await self.sources[port].wait()

    async def _receive(self, port: int):
        while True:
            frame = await self.sinks[port].recv()
            data = bytes(frame.data)
            # GmiiSink misses a burst's first byte (see sim/mac/sweep_tb.py).
            assert data[:7] == PREAMBLE[1:], f"port {port}: preamble {data[:8].hex()}"
            assert frame.check_fcs(), f"port {port}: bad FCS on {data.hex()}"
            assert not any(frame.error or []), f"port {port}: tx_er during a frame"
            self.out[port].append(bytes(frame.get_payload()))


class WireScoreboard(Scoreboard):
    """The scoreboard with the wire's padding applied on both sides."""

    async def room(self, cycles: int = 1200):
        await super().room(cycles + MAC_MARGIN)

    async def frame(self, port: int, frame: bytes):
        await super().frame(port, _padded(frame))

    def _collect(self):
        # The model's short frames leave our MAC padded with zeros.
        for port, frames in self.expected.items():
            self.expected[port] = [_padded(f) for f in frames]
        super()._collect()

    async def spoiled(self, how: str):
        """A client frame spoiled on the wire: the MAC drops and counts it;
        nothing reaches the model, so nothing may leave the gateware."""
        flow_frame = bytes(self.client_packet(self.rng.choice(self.flows), "S")) if self.flows else bytes(64)
        await self.room(len(flow_frame) + 600)
        await self.w.send_spoiled(0, flow_frame, how)
        await self.settle()


@cocotb.test()
async def pipeline_scoreboard(dut):
    seed = int(os.environ.get("DFS_SEED", "11"))
    steps = int(os.environ.get("DFS_STEPS", "40"))
    buckets, ways, tables = (int(x) for x in os.environ.get("DFS_GEOMETRY", "4,1,2").split(","))
    geometry = FlowGeometry(key_width=KEY_WIDTH, action_width=ACTION_WIDTH, buckets=buckets, ways=ways,
                            tables=tables)
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    dut.key.value = int.from_bytes(KEY, "little")
    dut.own_mac.value = int(DFS_MAC.replace(":", ""), 16)
    dut.own_ip.value = int.from_bytes(bytes(int(x) for x in DFS_IP.split(".")), "big")
    for i in range(2):
        getattr(dut, f"p{i}_rxd").value = 0
        getattr(dut, f"p{i}_rx_dv").value = 0
        getattr(dut, f"p{i}_rx_er").value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)

    world = WireWorld(dut)
    rng = random.Random(seed)
    board = WireScoreboard(world, rng, geometry)
    await board.bring_up()
    spoiled = {"fcs": 0, "runt": 0}
    for _ in range(steps):
        if rng.random() < 0.1:
            how = rng.choice(tuple(spoiled))
            spoiled[how] += 1
            await board.spoiled(how)
        else:
            await board.step()
    result = await board.finish()
    result.update({f"spoiled_{k}": v for k, v in spoiled.items()})
    assert int(dut.p0_rx_fcs_errors.value) == spoiled["fcs"], "MAC: FCS errors counted"
    assert int(dut.p0_rx_runts.value) == spoiled["runt"], "MAC: runts counted"
    assert result["frames"] > steps // 3 and result["messages"] > steps // 3, result
    dut._log.info("pipeline scoreboard seed %d, %d steps: %r", seed, steps, result)
