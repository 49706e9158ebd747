"""Place and route one gateware block alone on an ECP5 (out of context), for
timing work: the block's inputs come from a shift register fed by one pin,
its outputs are folded by a registered two-level XOR into one pin, so every
port is driven from and lands in a flop, as inside the DFS, and a block with
hundreds of port bits still fits the package's pins.

Ref: docs/boards.md ("The DFS on the boards"); the same wrapper idea as
sim/parser/pnr.py.

Run: ``python -m twinplane.boards.block_pnr flowtable [--flows N] [--device 25k --speed 6]``;
``--in-dfs`` leaves out the outputs the board's DFS does not use (its
counters the console does not show: Yosys removes their logic in the board
build, so a block's count is then its share of the DFS); ``--synth-only``
stops after Yosys and prints its cell counts (seconds to minutes, not the
place and route's many minutes).
"""


import argparse
import json
from pathlib import Path

from amaranth import Cat, ClockDomain, ClockSignal, DomainRenamer, Module, ResetSignal, Signal
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from twinplane.hdl.ram import ECP5Netlist

from .global_reset import global_net

__all__ = ["BlockBench", "block_pnr", "BLOCKS"]


def _flat(sig, prefix=""):
    """(name, flow, value) for every port member of a component's signature."""
    for path, member, value in sig.signature.flatten(sig):
        yield ".".join(str(p) for p in path), member.flow, value


class BlockBench(wiring.Component):
    """``BlockBench(block, leave_out=())``: ``block``'s inputs from a shift
    chain, its outputs folded, but for those named in ``leave_out`` (left
    unconnected, as the DFS leaves them)."""

    din: In(1)
    dout: Out(1)

    def __init__(self, block: wiring.Component, leave_out=()):
        if not isinstance(block, wiring.Component):
            raise TypeError(f"block must be a wiring.Component, not {block!r}")
        names = {name for name, flow, _ in _flat(block) if flow == Out}
        unknown = sorted(set(leave_out) - names)
        if unknown:
            raise ValueError(f"leave_out names no output of {type(block).__name__}: {unknown!r}")
        self._block = block
        self._leave_out = frozenset(leave_out)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        # The block's reset as the board builds it (boards/pll.py): registered,
        # then on a global network; the bench's own registers have none.
        m.domains.core = ClockDomain("core")
        reset = Signal(reset_less=True)
        m.d.sync += reset.eq(ResetSignal("sync"))
        m.d.comb += [ClockSignal("core").eq(ClockSignal("sync")),
                     ResetSignal("core").eq(global_net(m, reset, platform, name="core_reset"))]
        m.submodules.block = DomainRenamer({"sync": "core"})(self._block)
        ins, outs = [], []
        for name, flow, value in _flat(self._block):
            value = value.as_value() if hasattr(value, "as_value") else value
            if flow == In:
                ins.append(value)
            elif name not in self._leave_out:
                outs.append(value)
        width_in = sum(len(v) for v in ins)
        chain = Signal(width_in, reset_less=True)
        m.d.sync += chain.eq(Cat(self.din, chain[:-1]))
        pos = 0
        for v in ins:
            m.d.comb += v.eq(chain[pos:pos + len(v)])
            pos += len(v)
        record = Cat(*outs)
        groups = Signal((len(record) + 15) // 16, reset_less=True)
        m.d.sync += groups.eq(Cat(record[i:i + 16].xor() for i in range(0, len(record), 16)))
        fold = Signal(reset_less=True)
        m.d.sync += fold.eq(groups.xor())
        m.d.comb += self.dout.eq(fold)
        return m


def _geometry(flows: int):
    """The flow-table geometry ``twinplane build --flows`` makes (boards/dfs_core.py)."""
    from twinplane.boards.dfs_core import TABLES, WAYS
    from twinplane.hdl.dfs.top import DEFAULT_GEOMETRY

    buckets = 1 << ((flows // (TABLES * WAYS)).bit_length() - 1)
    return DEFAULT_GEOMETRY.__class__(
        key_width=DEFAULT_GEOMETRY.key_width, action_width=DEFAULT_GEOMETRY.action_width,
        buckets=buckets, ways=WAYS, tables=TABLES, ts_width=DEFAULT_GEOMETRY.ts_width)


def _flowtable(flows: int):
    from twinplane.hdl.flowtable import FlowTable

    return FlowTable(_geometry(flows))


def _dfs(flows: int):
    from twinplane.boards.dfs_core import board_core

    return board_core(2, flows)


def _msgport(flows: int):
    from twinplane.hdl.msgport.port import MessagePort

    return MessagePort(cs_slots=2, vs_entries=16, ms_per_tick=134, install_verdicts=True)


def _miss(flows: int):
    from twinplane.hdl.dfs.flow_control import query_layout
    from twinplane.hdl.miss.miss_path import MissPath
    from twinplane.model.flowkey import KEY_WIDTH

    return MissPath(key_width=KEY_WIDTH, query_shape=query_layout(), cs_slots=2)


def _flow_control(flows: int):
    from twinplane.hdl.dfs.flow_control import FlowController

    return FlowController(_geometry(flows), ms_per_tick=134, install_verdicts=True)


def _forwarder(flows: int):
    from twinplane.hdl.dfs.forwarder import Forwarder

    return Forwarder(_geometry(flows), external=True, port=0)


def _parser(flows: int):
    from twinplane.hdl.dfs.adapters import ParserAdapter

    return ParserAdapter()


def _rewriter(flows: int):
    from twinplane.hdl.rewrite.command_rewriter import CommandRewriter

    return CommandRewriter(held_eth_src=True)  # as the DFS builds it


def _arp(flows: int):
    from twinplane.hdl.arp.responder import ArpResponder

    return ArpResponder()


def _vscam(flows: int):
    from twinplane.hdl.dfs.adapters import CamAdapter

    return CamAdapter(vs_entries=16)


#: Every block of the DFS by name (the DFS's own arguments, docs/boards.md).
BLOCKS = {"flowtable": _flowtable, "dfs": _dfs, "msgport": _msgport, "miss": _miss,
          "flow_control": _flow_control, "forwarder": _forwarder, "parser": _parser,
          "rewriter": _rewriter, "arp": _arp, "vscam": _vscam}

#: Each of ``DFSCore``'s counters and the block output it is wired from
#: (hdl/dfs/top.py; the forwarder's on the internal port).
_CORE_COUNTER_SOURCES = {
    "flows_installed": ("flow_control", "flows_installed"),
    "queries_sent": ("flow_control", "queries_sent"),
    "deletes_sent": ("flow_control", "deletes_sent"),
    "evictions": ("flow_control", "evictions"),
    "miss_dropped_no_slot": ("miss", "dropped_no_slot"),
    "miss_dropped_queue_full": ("miss", "dropped_queue_full"),
    "miss_timeouts": ("miss", "timeouts"),
    "miss_frames_dropped": ("miss", "frames_dropped_refused"),
    "msg_rx_accepted": ("msgport", "rx_accepted"),
    "msg_rx_bad_tag": ("msgport", "rx_bad_tag"),
    "msg_rx_not_cs": ("forwarder", "dropped_not_cs"),
}


def dfs_unused(name: str) -> frozenset:
    """Outputs of block ``name`` that the board's DFS (boards/dfs_core.py)
    leaves unconnected: its counters but those wired to the first
    ``CORE_COUNTERS`` of ``DFSCore``'s, which are all the console shows."""
    from twinplane.boards.core import CORE_COUNTERS
    from twinplane.hdl.dfs import flow_control, forwarder
    from twinplane.hdl.dfs.top import _COUNTERS as CORE
    from twinplane.hdl.miss import miss_path
    from twinplane.hdl.msgport import port

    assert set(_CORE_COUNTER_SOURCES) == set(CORE), "DFSCore's counters changed: update _CORE_COUNTER_SOURCES"
    counters = {"msgport": port.COUNTERS, "forwarder": forwarder._COUNTERS,
                "flow_control": flow_control._COUNTERS, "miss": miss_path._COUNTERS, "arp": ("replies",)}
    shown = {_CORE_COUNTER_SOURCES[core] for core in CORE[:CORE_COUNTERS]}
    return frozenset(c for c in counters.get(name, ()) if (name, c) not in shown)


_DEVICES = {"25k": ("CABGA256", 6), "um-45k": ("CABGA381", 8), "45k": ("CABGA381", 8)}


def bench_rtlil(name, *, flows=1024, in_dfs=False) -> str:
    """Block ``name`` in :class:`BlockBench` as RTLIL, elaborated as for an
    ECP5 board (blocks that look at ``platform.family`` instantiate DP16KD
    with its output register, hdl/ram/block_ram.py; the board build gets the
    same netlist from its real platform).  ``in_dfs``: without the outputs
    the DFS leaves unconnected (:func:`dfs_unused`)."""
    if name not in BLOCKS:
        raise ValueError(f"unknown block {name!r}; one of {sorted(BLOCKS)}")
    leave_out = dfs_unused(name) if in_dfs else ()
    return rtlil.convert(BlockBench(BLOCKS[name](flows), leave_out), name="bench", emit_src=False,
                         platform=ECP5Netlist())


def block_synth(name, *, flows=1024, workdir="build/block", in_dfs=False) -> dict:
    """Yosys only: block ``name``'s cells (:func:`twinplane.boards.pnr.synth_counts`)."""
    from twinplane.boards.pnr import synth_counts

    return synth_counts(bench_rtlil(name, flows=flows, in_dfs=in_dfs), "bench", workdir=workdir)


def block_pnr(name, *, flows=1024, device="25k", speed=None,
              seed=1, workdir="build/block", router=None, in_dfs=False) -> dict:
    """Synthesise, place and route block ``name`` inside :class:`BlockBench`."""
    from twinplane.boards.pnr import place_and_route

    if device not in _DEVICES:
        raise ValueError(f"unknown device {device!r}; one of {sorted(_DEVICES)}")
    package, default_speed = _DEVICES[device]
    text = bench_rtlil(name, flows=flows, in_dfs=in_dfs)
    return place_and_route(text, "bench", device=device, package=package, speed=speed or default_speed,
                           seed=seed, workdir=workdir, frontend="rtlil", router=router)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("block", choices=sorted(BLOCKS))
    p.add_argument("--flows", type=int, default=1024)
    p.add_argument("--device", default="25k", choices=sorted(_DEVICES))
    p.add_argument("--speed", type=int)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=None)
    p.add_argument("--router", choices=("router1", "router2"), help="nextpnr's router (default: its own)")
    p.add_argument("--in-dfs", action="store_true", help="leave out the outputs the board's DFS does not use")
    p.add_argument("--synth-only", action="store_true", help="Yosys only: print its cell counts")
    a = p.parse_args(argv)
    out = Path(a.out or f"build/block_{a.block}_{a.device}")
    if a.synth_only:
        result = block_synth(a.block, flows=a.flows, workdir=out, in_dfs=a.in_dfs)
    else:
        result = block_pnr(a.block, flows=a.flows, device=a.device, speed=a.speed, seed=a.seed,
                           workdir=out, router=a.router, in_dfs=a.in_dfs)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
