"""``twinplane demo``: a complete system on one machine, no board and no root.

The CS daemon (:class:`CsDaemon`) and a DFS exchange real SSMB/CSMB datagrams
over loopback UDP; synthetic clients on the DFS's external port open TCP
connections to a virtual server, send a request, read the answer and close
(some reset), and three synthetic servers on the internal port answer.

The DFS is the gateware itself, ``DFSCore`` compiled with CXXRTL
(sim/engine/, docs/simulation.md): frames go through the simulated ports byte
by byte, and its message port reaches the CS through the UDP gateway exactly
as a board's would.  The first run compiles the gateware (a few minutes,
cached in ``sim_build/engine``); the engine runs about a thousand clock
cycles per second, so the traffic is sized to its measured speed.  With
``--model`` the DFS is the reference model behind UDP sockets
(:class:`SoftDFS`): no compile, a hundred times more traffic in seconds.

With ``--tap`` (root) the hosts are real: kernel HTTP clients and three
kernel HTTP servers in network namespaces, wired to the compiled gateware
through TAP interfaces (:mod:`twinplane.sim.engine.netns`, the harness of
tests/test_e2e_*.py).

The demo checks what a user would: every client got its answer from the
virtual server's address, connections were spread over the nodes, every flow
left both the DFS's and the CS's tables, nothing was dropped or refused.  It
exits 0 only if every check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import random
import shutil
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["configure", "run", "run_demo", "run_gateware_demo", "run_tap_demo"]

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
DFS_MAC = "02:00:00:00:fe:01"
DFS_IP = "10.77.1.1"
VIP, VPORT = "10.0.0.100", 80
NODES = [("node-a", "10.1.0.1", "02:00:00:00:01:01"), ("node-b", "10.1.0.2", "02:00:00:00:01:02"),
         ("node-c", "10.1.0.3", "02:00:00:00:01:03")]
#: Engine cycles one connection costs, one at a time (measured: ~2,070 for SYN, QUERY/REPLY,
#: 8 segments, DELETE), used to size the traffic to the engine's speed.
CYCLES_PER_CONNECTION = 2_100


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tap", action="store_true",
                        help="real Linux TCP: HTTP clients and three HTTP servers in network namespaces, wired "
                             "to the compiled gateware through TAP interfaces (root; sim/engine/netns.py)")
    parser.add_argument("--hold", type=float, default=0.0,
                        help="with --tap: keep the system up this many seconds after the checks (try "
                             "ip netns exec <client namespace> curl http://10.0.0.100/)")
    parser.add_argument("--model", action="store_true",
                        help="run the DFS reference model instead of the compiled gateware (fast, no compile)")
    parser.add_argument("--clients", type=int, default=None,
                        help="connections to open (default: sized to the engine's speed; 90 with --model)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="connections open at once (default 4 on the gateware, see docs/simulation.md; "
                             "15 with --model)")
    parser.add_argument("--reset-share", type=float, default=0.1, help="share of clients that reset (default 0.1)")
    parser.add_argument("--method", default="round_robin", help="the pool's balancing method")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the traffic")
    parser.add_argument("--time-limit", type=float, default=60.0,
                        help="seconds the run may take, compile excluded (default 60)")
    parser.add_argument("--opt", default="-O1", choices=("-O0", "-O1", "-O2"),
                        help="g++ optimisation of the gateware build (default -O1)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def run(args: argparse.Namespace) -> int:
    if args.tap:
        from twinplane.sim.bridge.tap import need_root

        why = need_root()
        if why or shutil.which("g++") is None:
            print(f"twinplane demo --tap: {why or 'the gateware is compiled with g++, which is missing'}",
                  file=sys.stderr)
            return 2
        from twinplane.sim.engine import EngineConfig

        summary = asyncio.run(
            run_tap_demo(clients=args.clients or 12, concurrency=args.concurrency or 2, method=args.method,
                         time_limit=args.time_limit, config=EngineConfig(opt=args.opt), hold=args.hold,
                         log=lambda text: print(text, file=sys.stderr, flush=True))
        )
    elif args.model:
        summary = asyncio.run(
            run_demo(clients=args.clients or 90, concurrency=args.concurrency or 15, reset_share=args.reset_share,
                     method=args.method, seed=args.seed, time_limit=args.time_limit)
        )
    else:
        if shutil.which("g++") is None:
            print("twinplane demo: the gateware is compiled with g++, which is missing "
                  "(apt-get install -y g++); or run the reference model: twinplane demo --model", file=sys.stderr)
            return 2
        from twinplane.sim.engine import EngineConfig

        summary = asyncio.run(
            run_gateware_demo(clients=args.clients, concurrency=args.concurrency or 4,
                              reset_share=args.reset_share, method=args.method, seed=args.seed,
                              time_limit=args.time_limit, config=EngineConfig(opt=args.opt),
                              log=lambda text: print(text, file=sys.stderr, flush=True))
        )
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        _print_summary(summary)
    return 0 if all(ok for _, ok, _ in summary["checks"]) else 1


def _cs_config(dfs_ports: tuple[int, int], method: str, timeouts: dict):
    from twinplane.host.cs.config import parse_config

    return parse_config({
        "cs": {"ssmb_addr": "127.0.0.1", "ssmb_port": 0},
        "timeouts": timeouts,
        "dfs": [{"name": "dfs0", "address": "127.0.0.1", "ssmb_port": dfs_ports[0], "csmb_port": dfs_ports[1],
                 "key": KEY.hex()}],
        "pool": [{"name": "web", "method": method, "node": [
            {"address": ip, "port": 8080, "mac": mac, "egress_port": 1} for _, ip, mac in NODES]}],
        "virtual_server": [{"id": 1, "address": VIP, "port": VPORT, "pool": "web"}],
    })


def _make_clients(n: int, reset_share: float, rng: random.Random) -> list:
    from twinplane.model.hosts import TcpClient

    return [TcpClient(f"02:00:00:02:{i >> 8:02x}:{i & 0xFF:02x}", str(ipaddress.IPv4Address("10.2.0.0") + 1 + i),
                      40000 + rng.randrange(20000), DFS_MAC, VIP, VPORT, abort=rng.random() < reset_share,
                      isn=rng.getrandbits(32))
            for i in range(n)]


def _client_checks(all_clients: list, servers: list, method: str) -> tuple[list, dict]:
    from twinplane.model.hosts import ClientState

    aborting = [c for c in all_clients if c.abort]
    finishing = [c for c in all_clients if not c.abort]
    problems = [p for c in all_clients for p in c.problems] + [p for s in servers for p in s.problems]
    # Connections each node accepted (resetting clients' too: they reset after the SYN-ACK).
    per_node = {s.name: s.accepted for s in servers}
    spread = max(per_node.values()) - min(per_node.values()) if per_node else 0
    checks = [
        ("every closing client got its answer from the virtual server's address",
         all(c.state is ClientState.DONE and b"served by" in c.answer for c in finishing),
         f"{sum(c.state is ClientState.DONE for c in finishing)}/{len(finishing)}"),
        ("every resetting client reset", all(c.state is ClientState.RESET for c in aborting),
         f"{sum(c.state is ClientState.RESET for c in aborting)}/{len(aborting)}"),
        ("no host saw a wrong address, port or checksum", not problems, "; ".join(problems[:3])),
        (f"connections spread over the nodes ({method})", all(per_node.values()) and
         (method != "round_robin" or spread <= 1), json.dumps(per_node)),
    ]
    return checks, per_node


@dataclass
class _Network:
    """The wires around the reference model: frames out of its ports reach
    the hosts, frames from the hosts go in."""

    soft: object
    clients: dict = field(default_factory=dict)  # ip -> TcpClient
    servers: dict = field(default_factory=dict)  # ip -> TcpServer
    frames: Counter = field(default_factory=Counter)

    def send(self, port: int, frames: list[bytes]) -> None:
        for frame in frames:
            self.frames[f"into port {port}"] += 1
            self.soft.inject(port, frame)

    async def pump(self, port: int) -> None:
        hosts = self.clients if port == 0 else self.servers
        while True:
            frame = await self.soft.tx[port].get()
            self.frames[f"out of port {port}"] += 1
            if len(frame) < 34 or frame[12:14] != b"\x08\x00":
                continue  # ARP replies and the like: nothing for the synthetic hosts
            host = hosts.get(str(ipaddress.IPv4Address(frame[30:34])))
            if host is not None:
                self.send(port, host.receive(frame))


async def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


async def run_demo(*, clients: int = 90, concurrency: int = 15, reset_share: float = 0.1,
                   method: str = "round_robin", seed: int = 1, time_limit: float = 60.0) -> dict:
    """The demo with the reference model as the DFS (``--model``)."""
    from twinplane.host.cs.daemon import CsDaemon
    from twinplane.model.dfs import DfsConfig
    from twinplane.model.hosts import ClientState, TcpServer
    from twinplane.model.softdfs import SoftDFS
    from twinplane.protocol.codes import Bus

    if clients < 1 or concurrency < 1:
        raise ValueError(f"clients and concurrency must be positive, not {clients!r} and {concurrency!r}")
    rng = random.Random(seed)
    started = time.monotonic()
    soft = SoftDFS(DfsConfig(key=KEY, dfs_mac=bytes.fromhex(DFS_MAC.replace(":", "")), ssmb_port=0, csmb_port=0))
    await soft.start()
    config = _cs_config((soft.ports[Bus.SSMB], soft.ports[Bus.CSMB]), method,
                        {"hello_interval_ms": 1000, "flow_idle_s": 60, "csmb_retransmit_s": 0.5})
    daemon = CsDaemon(config, health=False)
    await daemon.start()
    core = daemon.core
    net = _Network(soft)
    for name, ip, mac in NODES:
        net.servers[ip] = TcpServer(mac, ip, 8080, name, DFS_MAC)
    pumps = [asyncio.create_task(net.pump(port)) for port in (0, 1)]
    all_clients = _make_clients(clients, reset_share, rng)
    try:
        associated = await _wait_for(lambda: 1 in soft.dfs.vss and all(not p.pending for p in core.peers.values()),
                                     10.0)
        setup_s = time.monotonic() - started
        pending = list(reversed(all_clients))
        running: list = []
        deadline = started + time_limit
        while (pending or running) and time.monotonic() < deadline:
            running = [c for c in running if c.state in (ClientState.SYN_SENT, ClientState.WAITING_FOR_ANSWER,
                                                          ClientState.CLOSING)]
            while pending and len(running) < concurrency:
                client = pending.pop()
                net.clients[client.ip] = client
                net.send(0, client.start())
                running.append(client)
            await asyncio.sleep(0.01)
        traffic_s = time.monotonic() - started - setup_s
        # Every flow should now leave both tables (TCP close / RST at the DFS, DELETE at the CS).
        drained = await _wait_for(lambda: not soft.dfs.flows and not core.flows, 5.0)
        dfs_counters = dict(soft.dfs.counters)
        cs_counters = dict(core.counters)
        nodes = core.view_nodes()
    finally:
        for task in pumps:
            task.cancel()
        await daemon.stop()
        await soft.close()

    client_checks, per_node = _client_checks(all_clients, list(net.servers.values()), method)
    invalid = {k: v for k, v in dfs_counters.items() if k.startswith("invalid")}
    drops = {k: v for k, v in dfs_counters.items() if k.startswith("drop_")}
    checks = [
        ("the CS associated with the DFS and pushed the virtual server", associated, ""),
        *client_checks,
        ("every flow left the DFS's and the CS's tables", drained,
         f"DFS {len(soft.dfs.flows)}, CS {len(core.flows)} left"),
        ("no message was refused as invalid", not invalid, json.dumps(invalid)),
    ]
    return {
        "dfs": "reference model (SoftDFS)",
        "clients": clients,
        "client_states": dict(Counter(c.state.value for c in all_clients)),
        "served_by_node": per_node,
        "cs_node_view": [{k: n[k] for k in ("address", "connections", "flows") if k in n} for n in nodes],
        "frames": dict(net.frames),
        "forwarded": {"by the DFS": dfs_counters.get("tx_forward", 0) + dfs_counters.get("tx_return", 0),
                      "first packets held for a QUERY to the CS": dfs_counters.get("queries", 0)},
        "drops": drops,
        "dfs_counters": dfs_counters,
        "cs_counters": cs_counters,
        "setup_s": round(setup_s, 3),
        "traffic_s": round(traffic_s, 3),
        "checks": [(name, bool(ok), detail) for name, ok, detail in checks],
    }


def _miss_drops(counters: dict) -> dict:
    """The gateware's miss-path losses, by what a user would call them."""
    return {
        "miss path: no free slot": counters.get("miss_dropped_no_slot", 0),
        "miss path: the flow's held frames were full": counters.get("miss_dropped_queue_full", 0),
        "miss path: no REPLY in time (flows given up)": counters.get("miss_timeouts", 0),
        "miss path: held frames of refused or given-up flows": counters.get("miss_frames_dropped", 0),
    }


def _stats(values: list[int]) -> dict:
    if not values:
        return {"count": 0}
    return {"count": len(values), "median": int(statistics.median(values)), "min": min(values), "max": max(values)}


async def run_gateware_demo(*, clients: int | None = None, concurrency: int = 1, reset_share: float = 0.1,
                            method: str = "round_robin", seed: int = 1, time_limit: float = 60.0,
                            config=None, chunk: int = 64, log=None) -> dict:
    """The demo with the compiled gateware as the DFS.  ``clients=None``
    sizes the traffic to the engine speed measured during the bring-up so the
    run fits ``time_limit`` (compile excluded); ``log(str)`` hears about the
    compile and the phases."""
    from twinplane.host.cs.daemon import CsDaemon
    from twinplane.model.hosts import TcpServer
    from twinplane.protocol.codes import CSMB_UDP_PORT, SSMB_UDP_PORT
    from twinplane.sim.bridge.udp import GatewayConfig, UdpGateway
    from twinplane.sim.engine import EngineConfig, SimSystem
    from twinplane.sim.engine.traffic import SIM_CS_TIMEOUTS, ClientSide, ServerSide, SetupProbe

    if (clients is not None and clients < 1) or concurrency < 1:
        raise ValueError(f"clients and concurrency must be positive, not {clients!r} and {concurrency!r}")
    say = log or (lambda text: None)
    rng = random.Random(seed)
    config = config or EngineConfig()
    t0 = time.monotonic()
    say(f"twinplane demo: the DFS gateware compiled with CXXRTL ({config.flow_entries} flow entries, g++ "
        f"{config.opt}); the first run compiles it (2-8 minutes, cached in sim_build/engine)")
    dfs = await _open_engine(config, say)
    compile_s = time.monotonic() - t0
    started = time.monotonic()
    engine_s = 0.0
    gateway = daemon = None
    try:
        dfs.configure(key=KEY, own_mac=DFS_MAC, own_ip=DFS_IP)
        # The gateware's timers run on simulated cycles: at most twice its
        # declared clock, so the CS (HELLO every 20 s) is never taken for dead
        # by a DFS that runs ahead on a fast machine.
        system = SimSystem(dfs, chunk=chunk, max_rate=2 * config.clk_hz)
        gateway = UdpGateway(GatewayConfig(dfs_mac=DFS_MAC, dfs_ip=DFS_IP,
                                           buses={SSMB_UDP_PORT: 0, CSMB_UDP_PORT: 0}, relay_announced=True))
        servers = [TcpServer(mac, ip, 8080, name, DFS_MAC) for name, ip, mac in NODES]
        client_side = ClientSide(system, [], concurrency=concurrency, syn_in_flight=min(concurrency, 4))
        probe = SetupProbe(system, KEY, client_side)
        probe.attach_gateway(1, gateway)  # message-port traffic first, the nodes' frames after
        system.attach(1, ServerSide(servers))
        system.attach(0, client_side)
        cs_config = _cs_config((gateway.address(SSMB_UDP_PORT)[1], gateway.address(CSMB_UDP_PORT)[1]), method,
                               SIM_CS_TIMEOUTS)
        daemon = CsDaemon(cs_config, health=False)
        await daemon.start()
        core = daemon.core

        def step() -> float:
            t = time.perf_counter()
            probe.observe(system.step())
            return time.perf_counter() - t

        async def run_until(predicate, deadline: float) -> bool:
            nonlocal engine_s
            while not predicate():
                if time.monotonic() > deadline:
                    return False
                engine_s += await asyncio.to_thread(step)
            return True

        say("bring-up: HELLO, authentication, the virtual server (real UDP between the CS and the gateware)")
        associated = await run_until(lambda: all(p.state == "up" and not p.pending for p in core.peers.values()),
                                     started + min(30.0, time_limit / 2))
        setup_s = time.monotonic() - started
        bring_up_cycles = dfs.cycle
        speed = bring_up_cycles / max(engine_s, 1e-6)
        left_s = time_limit - setup_s - 8.0  # keep room for the drain (close linger + DELETE)
        if clients is None:
            clients = max(6, min(200, int(left_s * 0.7 * speed / CYCLES_PER_CONNECTION)))
        say(f"bring-up took {setup_s:.1f} s ({bring_up_cycles} cycles, {speed:.0f} cycles/s); "
            f"{clients} connections, {concurrency} at once")
        all_clients = _make_clients(clients, reset_share, rng)
        client_side.clients = all_clients
        client_side.pending = list(reversed(all_clients))
        traffic_start, engine_before = dfs.cycle, engine_s
        await run_until(lambda: client_side.finished, started + time_limit - 6.0)
        traffic_s = time.monotonic() - started - setup_s
        traffic_cycles = dfs.cycle - traffic_start
        traffic_engine_s = engine_s - engine_before
        # Every flow should now leave both tables: the DFS deletes a closed flow after its linger
        # and reports it in a DELETE; the CS forgets it then.
        counters: dict = {}

        def drained() -> bool:
            counters.update(dfs.counters())
            return counters["deletes_sent"] >= counters["flows_installed"] and not core.flows

        emptied = await run_until(drained, started + time_limit)
        counters.update(dfs.counters())
        cs_counters = dict(core.counters)
        nodes = core.view_nodes()
        cs_flows_left = len(core.flows)
    finally:
        if daemon is not None:
            await daemon.stop()
        if gateway is not None:
            gateway.close()
        dfs.close()

    client_checks, per_node = _client_checks(all_clients, servers, method)
    drops = {
        **_miss_drops(counters),
        "message port: bad tag": counters.get("msg_rx_bad_tag", 0),
        "gateway: not for the CS": gateway.core.dropped,
        "nobody to take the frame": sum(len(v) for v in system.unclaimed.values()),
    }
    queries = counters.get("queries_sent", 0)
    forwarded = sum(probe.forwarded.values())
    checks = [
        ("the CS associated with the DFS and pushed the virtual server", associated, ""),
        *client_checks,
        ("every connection's first packet went to the CS once, the rest in hardware",
         queries == clients and counters.get("flows_installed", 0) == clients,
         f"{queries} QUERYs, {counters.get('flows_installed', 0)} flows installed for {clients} connections"),
        ("every flow left the DFS's and the CS's tables", emptied,
         (f"{counters.get('deletes_sent', 0)} DELETEs for {counters.get('flows_installed', 0)} flows, "
          f"CS {cs_flows_left} left")),
        ("nothing was dropped", not any(drops.values()), json.dumps({k: v for k, v in drops.items() if v})),
    ]
    return {
        "dfs": f"gateware (DFSCore compiled with CXXRTL, g++ {config.opt})",
        "clients": clients,
        "concurrency": concurrency,
        "client_states": dict(Counter(c.state.value for c in all_clients)),
        "served_by_node": per_node,
        "cs_node_view": [{k: n[k] for k in ("address", "connections", "flows") if k in n} for n in nodes],
        "frames": {f"into port {p}": dfs.frames_in[p] for p in range(dfs.ports)}
                  | {f"out of port {p}": dfs.frames_out[p] for p in range(dfs.ports)},
        "forwarded": {"TCP segments forwarded by the gateware": forwarded,
                      "of which first packets released after a QUERY to the CS": queries,
                      "forwarded in hardware without the CS": forwarded - queries},
        "messages_to_cs": dict(probe.messages_out),
        "query_reply_cycles": _stats(probe.round_trips),
        "flow_setup_cycles": _stats(probe.setup_cycles),
        "drops": drops,
        "dfs_counters": counters,
        "cs_counters": cs_counters,
        "engine": {"compile_or_load_s": round(compile_s, 1), "cycles": dfs.cycle,
                   "cycles_per_s": round(traffic_cycles / max(traffic_engine_s, 1e-6)),
                   "bring_up_cycles_per_s": round(speed), "chunk": chunk},
        "setup_s": round(setup_s, 3),
        "traffic_s": round(traffic_s, 3),
        "checks": [(name, bool(ok), detail) for name, ok, detail in checks],
    }


async def run_tap_demo(*, clients: int = 12, concurrency: int = 2, method: str = "round_robin",
                       time_limit: float = 60.0, config=None, hold: float = 0.0, log=None) -> dict:
    """The demo with kernel TCP (``--tap``, root): a client namespace runs
    ``clients`` HTTP requests (``concurrency`` at once) to the virtual server
    through the compiled gateware, three node namespaces answer with
    ``python -m http.server``-style servers; the CS daemon is real and talks
    to the gateware over UDP.  The harness is tests/test_e2e_netns.py's
    (:mod:`twinplane.sim.engine.netns`)."""
    from twinplane.sim.engine import EngineConfig
    from twinplane.sim.engine.netns import NODES, World
    from twinplane.sim.engine.netns import VIP as TAP_VIP

    if clients < 1 or concurrency < 1:
        raise ValueError(f"clients and concurrency must be positive, not {clients!r} and {concurrency!r}")
    say = log or (lambda text: None)
    config = config or EngineConfig()
    t0 = time.monotonic()
    say(f"twinplane demo --tap: kernel TCP in network namespaces through the DFS gateware compiled with CXXRTL "
        f"({config.flow_entries} flow entries, g++ {config.opt}; the first run compiles it, 2-8 minutes)")
    world = World(config, method=method, log=say)
    try:
        await world.start()
        compile_s = time.monotonic() - t0
        site = world.sites[0]
        started = time.monotonic()
        await world.start_cs(0)
        say(f"namespaces: client {site.client_ns}, nodes " + ", ".join(f"{n} {ns}" for n, ns in site.node_ns.items()))
        associated = await world.wait_for(lambda: world.associated(0), min(60.0, time_limit))
        setup_s = time.monotonic() - started
        bring_up_speed = site.dfs.cycle / max(site.loop.busy_s, 1e-6)
        say(f"CS associated in {setup_s:.1f} s; {clients} HTTP requests to {TAP_VIP}, {concurrency} at once")
        core = world.css[0].core
        snmp_before = (await site.ask(op="snmp"))["snmp"]
        cycles, busy = site.dfs.cycle, site.loop.busy_s
        answer = await site.ask(op="get", n=clients, concurrency=concurrency, size=600, tag="demo",
                                timeout=max(10.0, time_limit - setup_s))
        traffic_s = time.monotonic() - started - setup_s
        speed = (site.dfs.cycle - cycles) / max(site.loop.busy_s - busy, 1e-6)
        emptied, dumped = await world.tables_empty(0, site, 30.0)
        counters = await site.counters()
        snmp = {k: v - snmp_before.get(k, 0) for k, v in answer["snmp"].items()}
        node_errors = {name: site.node_snmp(name).get("Tcp.InCsumErrors", 0) for name, _, _ in NODES}
        cs_counters = dict(core.counters)
        nodes = core.view_nodes()
        results = answer["results"]
        if hold > 0:
            say(f"holding for {hold:.0f} s: ip netns exec {site.client_ns} curl http://{TAP_VIP}/")
            await asyncio.sleep(hold)
    finally:
        await world.close()

    per_node = Counter(r["node"] for r in results if r["node"])
    failed = [r for r in results if r["error"]]
    spread = max(per_node.values()) - min(per_node.values()) if len(per_node) == len(NODES) else None
    times = [r["ms"] for r in results if not r["error"]]
    checks = [
        ("the CS associated with the DFS and pushed the virtual servers", associated, ""),
        ("every HTTP request got its answer, every byte checked", not failed,
         f"{len(results) - len(failed)}/{len(results)}" + (f"; {failed[0]['error']}" if failed else "")),
        (f"connections spread over the nodes ({method})",
         spread is not None and (method != "round_robin" or spread <= 1), json.dumps(dict(per_node))),
        ("no kernel saw a bad checksum (client and nodes)",
         snmp.get("Tcp.InCsumErrors", 0) == 0 and not any(node_errors.values()),
         json.dumps({"client": snmp.get("Tcp.InCsumErrors", 0), **node_errors})),
        ("every flow left the DFS's (DUMP) and the CS's tables", emptied,
         f"DFS DUMP reports {dumped}, CS holds {len(core.flows)}"),
    ]
    return {
        "dfs": f"gateware (DFSCore compiled with CXXRTL, g++ {config.opt}) with kernel TCP in network namespaces",
        "clients": clients,
        "concurrency": concurrency,
        "served_by_node": dict(per_node),
        "cs_node_view": [{k: n[k] for k in ("address", "connections", "flows") if k in n} for n in nodes],
        "frames": {f"into port {p}": site.dfs.frames_in[p] for p in range(site.dfs.ports)}
                  | {f"out of port {p}": site.dfs.frames_out[p] for p in range(site.dfs.ports)},
        "forwarded": {"first packets held for a QUERY to the CS": counters.get("queries_sent", 0),
                      "flows installed": counters.get("flows_installed", 0)},
        "request_ms": _stats(times),
        "tcp": {"client retransmitted segments": snmp.get("Tcp.RetransSegs", 0),
                "of which SYNs": snmp.get("TcpExt.TCPSynRetrans", 0)},
        "drops": {**_miss_drops(counters), "message port: bad tag": counters.get("msg_rx_bad_tag", 0)},
        "dfs_counters": counters,
        "cs_counters": cs_counters,
        "engine": {"compile_or_load_s": round(compile_s, 1), "cycles": site.dfs.cycle,
                   "cycles_per_s": round(speed), "bring_up_cycles_per_s": round(bring_up_speed),
                   "chunk": site.chunk},
        "setup_s": round(setup_s, 3),
        "traffic_s": round(traffic_s, 3),
        "checks": [(name, bool(ok), detail) for name, ok, detail in checks],
    }


async def _open_engine(config, say):
    """``CompiledDFS(config)`` on a worker thread, saying every 15 s how long the compile has taken."""
    from twinplane.sim.engine import CompiledDFS

    task = asyncio.ensure_future(asyncio.to_thread(CompiledDFS, config, log=say))
    t0 = time.monotonic()
    while True:
        done, _ = await asyncio.wait({task}, timeout=15.0)
        if done:
            return task.result()
        say(f"  ... compiling the gateware, {time.monotonic() - t0:.0f} s so far")


def _print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]twinplane demo[/]: {summary['clients']} connections to {VIP}:{VPORT} through the DFS = "
                  f"{summary['dfs']} (bring-up {summary['setup_s']} s, traffic {summary['traffic_s']} s)")
    if "engine" in summary:
        e = summary["engine"]
        console.print(f"engine: {e['cycles']} cycles simulated, {e['cycles_per_s']} cycles/s with traffic "
                      f"({e['bring_up_cycles_per_s']} during bring-up); compile or load {e['compile_or_load_s']} s")
    table = Table(title="flows per node")
    table.add_column("node")
    table.add_column("connections", justify="right")
    for name, count in summary["served_by_node"].items():
        table.add_row(name, str(count))
    console.print(table)
    table = Table(title="traffic")
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in summary["frames"].items():
        table.add_row(f"frames {key}", str(value))
    for key, value in summary["forwarded"].items():
        table.add_row(key, str(value))
    for key, value in summary.get("messages_to_cs", {}).items():
        table.add_row(f"message to the CS: {key}", str(value))
    for name in ("query_reply_cycles", "flow_setup_cycles"):
        if name in summary:
            s = summary[name]
            text = f"median {s['median']}, min {s['min']}, max {s['max']} ({s['count']})" if s["count"] else "-"
            table.add_row(name.replace("_", " ").replace("query reply", "QUERY -> REPLY"), text)
    for key, value in summary.get("tcp", {}).items():
        table.add_row(f"kernel TCP: {key}", str(value))
    if summary.get("request_ms", {}).get("count"):
        s = summary["request_ms"]
        table.add_row("HTTP request (ms)", f"median {s['median']}, min {s['min']}, max {s['max']} ({s['count']})")
    for key, value in summary["drops"].items():
        table.add_row(f"drops: {key}", str(value))
    console.print(table)
    table = Table(title="DFS and CS counters")
    table.add_column("counter")
    table.add_column("value", justify="right")
    for key, value in sorted(summary["dfs_counters"].items()):
        table.add_row(f"DFS {key}", str(value))
    for key, value in sorted(summary["cs_counters"].items()):
        table.add_row(f"CS {key}", str(value))
    console.print(table)
    for name, ok, detail in summary["checks"]:
        mark = "[green]PASS[/]" if ok else "[red]FAIL[/]"
        console.print(f"{mark} {name}" + (f" ({detail})" if detail else ""))
