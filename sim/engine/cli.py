"""``twinplane sim``: the DFS gateware, compiled with CXXRTL, with its ports
bridged to the outside -- TAP interfaces, pcap files, and the message port on
real UDP sockets that a CS daemon reaches exactly as it reaches a board.

Ref: docs/simulation.md; sim/bridge/ (TAP, pcap and the UDP gateway reused).

Port 0 is external, port 1 internal.  The internal port's endpoints are the
UDP gateway first (message-port traffic), then the TAP if any.  With
``--pcap-in DIR`` the frames of ``DIR/port<i>_rx.pcap`` are fed into port
``i``; without TAP or ``--duration`` the run ends when they have all been
through and the DFS has been idle for ``--drain`` cycles.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["configure", "run", "open_system"]

DEFAULT_KEY = "000102030405060708090a0b0c0d0e0f"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tap", action="store_true", help="bridge each port to a TAP interface (needs root)")
    parser.add_argument("--tap-prefix", default="tpdfs", help="TAP names: <prefix>0, <prefix>1 (default tpdfs)")
    parser.add_argument("--pcap-in", metavar="DIR", help="feed DIR/port<i>_rx.pcap into port i")
    parser.add_argument("--pcap-out", metavar="DIR", help="record port<i>_rx.pcap / port<i>_tx.pcap in DIR")
    parser.add_argument("--key", default=DEFAULT_KEY, help="SipHash key, 32 hex digits")
    parser.add_argument("--dfs-mac", default="02:00:00:00:fe:01", help="the DFS's MAC")
    parser.add_argument("--dfs-ip", default="10.77.1.1", help="the DFS's IPv4 address on the internal side")
    parser.add_argument("--host", default="127.0.0.1", help="address of the message-port sockets")
    parser.add_argument("--ssmb-port", type=int, default=6340, help="host UDP port for the SSMB (0: any)")
    parser.add_argument("--csmb-port", type=int, default=6341, help="host UDP port for the CSMB (0: any)")
    parser.add_argument("--buckets", type=int, default=16, help="flow table buckets per table (default 16)")
    parser.add_argument("--tables", type=int, default=4, help="flow tables (default 4)")
    parser.add_argument("--ways", type=int, default=2, help="ways per bucket (default 2)")
    parser.add_argument("--clk-hz", type=int, default=2_000,
                        help="clock rate the gateware is told it runs at (default 2 kHz: DFS timers near wall time)")
    parser.add_argument("--opt", default="-O1", choices=("-O0", "-O1", "-O2"), help="g++ optimisation")
    parser.add_argument("--chunk", type=int, default=256, help="cycles run between endpoint polls (default 256)")
    parser.add_argument("--realtime", action="store_true",
                        help="do not run ahead of the wall clock at --clk-hz (saves CPU when idle)")
    parser.add_argument("--speed", type=float, default=2.0,
                        help="run at most this many times --clk-hz (default 2, as the demo: the gateware's "
                             "timers never run more than twice as fast as the wall-clock timers of the CSs "
                             "talking to it); 0: flat out.  A pcap-only run is always flat out")
    parser.add_argument("--duration", type=float, help="stop after this many wall seconds")
    parser.add_argument("--drain", type=int, default=5000, help="idle cycles that end a pcap-only run (default 5000)")


def _pcap_only(args: argparse.Namespace) -> bool:
    """Only pcap files feed the engine: the run ends by itself and nobody's timers run on the wall clock."""
    return bool(args.pcap_in) and not args.tap and args.duration is None


def open_system(args: argparse.Namespace, *, log=print):
    """The engine, its gateway, TAPs and recorder as ``args`` say; returns
    ``(system, gateway, closers)``."""
    from twinplane.sim.bridge.bridge import TapEndpoint
    from twinplane.sim.bridge.pcap import PcapRecorder
    from twinplane.sim.bridge.udp import GatewayConfig, UdpGateway

    from .build import EngineConfig
    from .compiled import CompiledDFS
    from .system import SimSystem

    if args.speed < 0:  # before anything is opened
        raise SystemExit(f"--speed must be 0 (flat out) or positive, not {args.speed!r}")
    config = EngineConfig(buckets=args.buckets, tables=args.tables, ways=args.ways, clk_hz=args.clk_hz,
                          opt=args.opt)
    dfs = CompiledDFS(config, log=log)
    closers = [dfs.close]
    dfs.configure(key=bytes.fromhex(args.key), own_mac=args.dfs_mac, own_ip=args.dfs_ip)
    pcap = PcapRecorder(args.pcap_out, ports=config.ports) if args.pcap_out else None
    if pcap:
        closers.append(pcap.close)
    # Nobody's wall-clock timers are involved when only pcap files are fed in.
    max_rate = None if _pcap_only(args) or args.speed == 0 else args.speed * config.clk_hz
    system = SimSystem(dfs, chunk=args.chunk, pcap=pcap, realtime=args.realtime, max_rate=max_rate)
    gateway = UdpGateway(GatewayConfig(dfs_mac=args.dfs_mac, dfs_ip=args.dfs_ip, host=args.host,
                                       buses={6340: args.ssmb_port, 6341: args.csmb_port}, relay_announced=True))
    closers.append(gateway.close)
    system.attach(config.ports - 1, gateway)
    if args.tap:
        from twinplane.sim.bridge.tap import TapInterface, need_root

        reason = need_root()
        if reason:
            raise SystemExit(f"--tap: {reason}")
        for port in range(config.ports):
            tap = TapInterface(f"{args.tap_prefix}{port}")
            closers.append(tap.close)
            subprocess.run(["ip", "link", "set", tap.name, "up"], check=False)
            system.attach(port, TapEndpoint(tap))
            log(f"port {port} <-> TAP {tap.name}")
    return system, gateway, closers


def run(args: argparse.Namespace) -> int:
    from twinplane.sim.bridge.pcap import read_frames

    system, gateway, closers = open_system(args, log=lambda text: print(text, file=sys.stderr, flush=True))
    try:
        ssmb, csmb = gateway.address(6340), gateway.address(6341)
        print(f"DFS {args.dfs_ip} ({args.dfs_mac}): SSMB at {ssmb[0]}:{ssmb[1]}, CSMB at {csmb[0]}:{csmb[1]}",
              file=sys.stderr, flush=True)
        fed = 0
        if args.pcap_in:
            for port in range(system.dfs.ports):
                path = Path(args.pcap_in) / f"port{port}_rx.pcap"
                if path.exists():
                    for frame in read_frames(path):
                        system.inject(port, frame)
                        fed += 1
        ends_by_itself = _pcap_only(args)
        started = time.monotonic()
        idle_since = None
        while True:
            system.step()
            if args.duration is not None and time.monotonic() - started >= args.duration:
                break
            if ends_by_itself:
                if system.dfs.busy:
                    idle_since = None
                elif idle_since is None:
                    idle_since = system.dfs.cycle
                elif system.dfs.cycle - idle_since >= args.drain:
                    break
    except KeyboardInterrupt:
        pass
    finally:
        for close in reversed(closers):
            close()
    dfs = system.dfs
    print(f"{dfs.cycle} cycles; frames in {dfs.frames_in}, out {dfs.frames_out}; "
          f"unclaimed {[len(system.unclaimed[p]) for p in range(dfs.ports)]}", file=sys.stderr)
    return 0
