"""``twinplane demo``: a complete system on one machine, no board and no root.

The CS daemon and a DFS exchange real SSMB/CSMB datagrams over loopback UDP;
synthetic clients on the DFS's external port open TCP connections to a
virtual server, send a request, read the answer and close (some reset), and
three synthetic servers on the internal port answer.  The DFS here is the
reference model behind UDP sockets (:class:`SoftDFS`); the gateware DFS in
simulation takes its place in ``twinplane sim``.

The demo checks what a user would: every client got its answer from the
virtual server's address, connections were spread over the nodes, every flow
left both the DFS's and the CS's tables, nothing was refused as invalid.  It
exits 0 only if every check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["configure", "run", "run_demo"]

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
DFS_MAC = "02:00:00:00:fe:01"
VIP, VPORT = "10.0.0.100", 80
NODES = [("node-a", "10.1.0.1", "02:00:00:00:01:01"), ("node-b", "10.1.0.2", "02:00:00:00:01:02"),
         ("node-c", "10.1.0.3", "02:00:00:00:01:03")]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=90, help="connections to open (default 90)")
    parser.add_argument("--concurrency", type=int, default=15, help="connections open at once (default 15)")
    parser.add_argument("--reset-share", type=float, default=0.1, help="share of clients that reset (default 0.1)")
    parser.add_argument("--method", default="round_robin", help="the pool's balancing method")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the traffic")
    parser.add_argument("--time-limit", type=float, default=60.0, help="give up after this many seconds")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def run(args: argparse.Namespace) -> int:
    summary = asyncio.run(
        run_demo(clients=args.clients, concurrency=args.concurrency, reset_share=args.reset_share,
                 method=args.method, seed=args.seed, time_limit=args.time_limit)
    )
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        _print_summary(summary)
    return 0 if all(ok for _, ok, _ in summary["checks"]) else 1


@dataclass
class _Network:
    """The wires around the DFS: frames out of its ports reach the hosts,
    frames from the hosts go in."""

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
    from twinplane.host.cs.config import parse_config
    from twinplane.host.cs.daemon import CsDaemon
    from twinplane.model.dfs import DfsConfig
    from twinplane.model.hosts import ClientState, TcpClient, TcpServer
    from twinplane.model.softdfs import SoftDFS
    from twinplane.protocol.codes import Bus

    if clients < 1 or concurrency < 1:
        raise ValueError(f"clients and concurrency must be positive, not {clients!r} and {concurrency!r}")
    rng = random.Random(seed)
    started = time.monotonic()
    soft = SoftDFS(DfsConfig(key=KEY, dfs_mac=bytes.fromhex(DFS_MAC.replace(":", "")), ssmb_port=0, csmb_port=0))
    await soft.start()
    config = parse_config({
        "cs": {"ssmb_addr": "127.0.0.1", "ssmb_port": 0},
        "timeouts": {"hello_interval_ms": 200, "flow_idle_s": 60, "csmb_retransmit_s": 0.2},
        "dfs": [{"name": "dfs0", "address": "127.0.0.1", "ssmb_port": soft.ports[Bus.SSMB],
                 "csmb_port": soft.ports[Bus.CSMB], "key": KEY.hex()}],
        "pool": [{"name": "web", "method": method, "node": [
            {"address": ip, "port": 8080, "mac": mac, "egress_port": 1} for _, ip, mac in NODES]}],
        "virtual_server": [{"id": 1, "address": VIP, "port": VPORT, "pool": "web"}],
    })
    daemon = CsDaemon(config, health=False)
    await daemon.start()
    core = daemon.core
    net = _Network(soft)
    for name, ip, mac in NODES:
        net.servers[ip] = TcpServer(mac, ip, 8080, name, DFS_MAC)
    pumps = [asyncio.create_task(net.pump(port)) for port in (0, 1)]
    all_clients = []
    try:
        associated = await _wait_for(lambda: 1 in soft.dfs.vss and all(not p.pending for p in core.peers.values()),
                                     10.0)
        setup_s = time.monotonic() - started
        for n in range(clients):
            ip = str(ipaddress.IPv4Address("10.2.0.0") + 1 + n)
            client = TcpClient(f"02:00:00:02:{n >> 8:02x}:{n & 0xFF:02x}", ip, 40000 + rng.randrange(20000),
                               DFS_MAC, VIP, VPORT, abort=rng.random() < reset_share, isn=rng.getrandbits(32))
            all_clients.append(client)
        pending = list(all_clients)
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

    states = Counter(c.state.value for c in all_clients)
    aborting = [c for c in all_clients if c.abort]
    finishing = [c for c in all_clients if not c.abort]
    problems = [p for c in all_clients for p in c.problems] + [p for s in net.servers.values() for p in s.problems]
    invalid = {k: v for k, v in dfs_counters.items() if k.startswith("invalid")}
    # Connections each node accepted (resetting clients' too: they reset after the SYN-ACK).
    per_node = {net.servers[ip].name: net.servers[ip].accepted for _, ip, _ in NODES}
    spread = max(per_node.values()) - min(per_node.values()) if per_node else 0
    checks = [
        ("the CS associated with the DFS and pushed the virtual server", associated, ""),
        ("every closing client got its answer from the virtual server's address",
         all(c.state is ClientState.DONE and b"served by" in c.answer for c in finishing),
         f"{sum(c.state is ClientState.DONE for c in finishing)}/{len(finishing)}"),
        ("every resetting client reset", all(c.state is ClientState.RESET for c in aborting),
         f"{sum(c.state is ClientState.RESET for c in aborting)}/{len(aborting)}"),
        ("no host saw a wrong address, port or checksum", not problems, "; ".join(problems[:3])),
        (f"connections spread over the nodes ({method})", all(per_node.values()) and
         (method != "round_robin" or spread <= 1), json.dumps(per_node)),
        ("every flow left the DFS's and the CS's tables", drained,
         f"DFS {len(soft.dfs.flows)}, CS {len(core.flows)} left"),
        ("no message was refused as invalid", not invalid, json.dumps(invalid)),
    ]
    return {
        "clients": clients,
        "client_states": dict(states),
        "served_by_node": per_node,
        "cs_node_view": [{k: n[k] for k in ("address", "connections", "packets_in", "packets_out") if k in n}
                         for n in nodes],
        "frames": dict(net.frames),
        "dfs_counters": dfs_counters,
        "cs_counters": cs_counters,
        "setup_s": round(setup_s, 3),
        "traffic_s": round(traffic_s, 3),
        "checks": [(name, bool(ok), detail) for name, ok, detail in checks],
    }


def _print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]twinplane demo[/]: {summary['clients']} connections to {VIP}:{VPORT} through the DFS "
                  f"(setup {summary['setup_s']} s, traffic {summary['traffic_s']} s)")
    table = Table(title="flows per node")
    table.add_column("node")
    table.add_column("connections", justify="right")
    for name, count in summary["served_by_node"].items():
        table.add_row(name, str(count))
    console.print(table)
    table = Table(title="DFS and CS counters")
    table.add_column("counter")
    table.add_column("value", justify="right")
    for key, value in sorted(summary["frames"].items()):
        table.add_row(f"frames {key}", str(value))
    for key, value in sorted(summary["dfs_counters"].items()):
        table.add_row(f"DFS {key}", str(value))
    for key, value in sorted(summary["cs_counters"].items()):
        table.add_row(f"CS {key}", str(value))
    console.print(table)
    for name, ok, detail in summary["checks"]:
        mark = "[green]PASS[/]" if ok else "[red]FAIL[/]"
        console.print(f"{mark} {name}" + (f" ({detail})" if detail else ""))
