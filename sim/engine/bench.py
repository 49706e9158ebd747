"""``twinplane bench sim``: the compiled simulation of the whole DFS on this
machine.

* cycles_per_s: clock cycles per wall second while established traffic
  crosses both ports (idle_cycles_per_s: with nothing to do);
* packets_per_s: frames through the DFS per wall second (both directions,
  64-byte and 600-byte TCP segments of established flows, back to back);
* flow_setup_cycles: cycles from a new flow's SYN entering port 0 to the
  rewritten SYN leaving port 1, with a CS answering the QUERY over real
  loopback UDP through the message-port gateway -- the median over the
  flows (flow_setup_ms: the same in wall time).  The CS is the real
  :class:`CsDaemon` (host/cs/) on an asyncio loop, with the slow wall-clock
  timers a simulated DFS needs (:data:`.traffic.SIM_CS_TIMEOUTS`); the
  engine runs on a worker thread so the daemon answers while it runs.
"""

from __future__ import annotations

import statistics
import time

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from twinplane.protocol.codes import CSMB_UDP_PORT, SSMB_UDP_PORT

__all__ = ["run_bench"]

KEY = bytes(range(16))
DFS_MAC, DFS_IP = "02:00:00:00:fe:01", "10.77.1.1"
VIP, VPORT = "10.0.0.100", 80
NODES = [("10.1.0.1", "02:00:00:00:01:01"), ("10.1.0.2", "02:00:00:00:01:02")]


def _client(i: int, flags: str, payload: bytes = b"") -> bytes:
    return bytes(Ether(src=f"02:00:00:02:00:{i & 0xFF:02x}", dst=DFS_MAC)
                 / IP(src=f"10.2.{i >> 8}.{i & 0xFF}", dst=VIP) / TCP(sport=40000 + i, dport=VPORT, flags=flags)
                 / payload)


def run_bench(quick: bool = False) -> dict:
    import asyncio

    return asyncio.run(_bench(quick))


def _cs_config(gateway):
    from twinplane.host.cs.config import parse_config

    from .traffic import SIM_CS_TIMEOUTS

    return parse_config({
        "cs": {"ssmb_addr": "127.0.0.1", "ssmb_port": 0},
        "timeouts": SIM_CS_TIMEOUTS,
        "dfs": [{"name": "sim", "address": "127.0.0.1", "ssmb_port": gateway.address(SSMB_UDP_PORT)[1],
                 "csmb_port": gateway.address(CSMB_UDP_PORT)[1], "key": KEY.hex()}],
        "pool": [{"name": "web", "method": "round_robin", "node": [
            {"address": ip, "port": 8080, "mac": mac, "egress_port": 1} for ip, mac in NODES]}],
        "virtual_server": [{"id": 1, "address": VIP, "port": VPORT, "pool": "web"}],
    })


async def _bench(quick: bool) -> dict:
    import asyncio

    from twinplane.host.cs.daemon import CsDaemon
    from twinplane.sim.bridge.udp import GatewayConfig, UdpGateway

    from .build import EngineConfig
    from .compiled import CompiledDFS
    from .system import SimSystem

    config = EngineConfig()
    dfs = await asyncio.to_thread(CompiledDFS, config)
    dfs.configure(key=KEY, own_mac=DFS_MAC, own_ip=DFS_IP)
    system = SimSystem(dfs, chunk=64)
    gateway = UdpGateway(GatewayConfig(dfs_mac=DFS_MAC, dfs_ip=DFS_IP, buses={SSMB_UDP_PORT: 0, CSMB_UDP_PORT: 0},
                                       relay_announced=True))
    system.attach(1, gateway)
    system.log = []
    daemon = None

    async def run_until(predicate, timeout: float) -> bool:
        """Step the engine on a worker thread (so the daemon answers meanwhile) until ``predicate()``."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            await asyncio.to_thread(system.step)
        return True

    def tcp_out(port: int) -> list:
        return [tx for tx in system.log if tx.port == port and tx.frame[23] == 6]

    try:
        idle = 1000 if quick else 5000
        t = time.perf_counter()
        dfs.run(idle)
        idle_cycles_per_s = idle / (time.perf_counter() - t)
        daemon = CsDaemon(_cs_config(gateway), health=False)
        await daemon.start()
        peers = daemon.core.peers.values()
        if not await run_until(lambda: all(p.state == "up" and not p.pending for p in peers), 120):
            raise RuntimeError("the CS did not associate with the simulated DFS")
        # flow setups, one at a time; the CS picks the node, the SYN out tells which
        flows = 2 if quick else 5
        setup_cycles, setup_ms, node_of = [], [], {}
        for i in range(1, flows + 1):
            system.log.clear()
            start, t = dfs.cycle, time.perf_counter()
            system.inject(0, _client(i, "S"))
            if not await run_until(lambda: tcp_out(1), 120):
                raise RuntimeError(f"flow {i}: the SYN did not come out towards a node")
            tx = tcp_out(1)[0]
            setup_cycles.append(tx.cycle - start)
            setup_ms.append((time.perf_counter() - t) * 1000)
            syn = Ether(tx.frame)
            node_of[i] = (syn[IP].dst, syn.dst, syn[TCP].dport)
        # established traffic: both directions, back to back
        frames = []
        for i in range(1, flows + 1):
            node_ip, node_mac, node_port = node_of[i]
            for size in (0, 546) * (1 if quick else 3):
                frames.append((0, _client(i, "A", b"x" * size)))
                frames.append((1, bytes(Ether(src=node_mac, dst=DFS_MAC) / IP(src=node_ip, dst=f"10.2.0.{i}")
                                        / TCP(sport=node_port, dport=40000 + i, flags="A") / (b"y" * size))))
        system.log.clear()
        start_cycle, t = dfs.cycle, time.perf_counter()
        for port, frame in frames:
            system.inject(port, frame)
        done = await run_until(lambda: len(tcp_out(0)) + len(tcp_out(1)) >= len(frames), 300)
        wall = time.perf_counter() - t
        through = len(tcp_out(0)) + len(tcp_out(1))
        cycles = dfs.cycle - start_cycle
        counters = dfs.counters()
        cs_queries = daemon.core.counters["queries"]
    finally:
        if daemon is not None:
            await daemon.stop()
        gateway.close()
        dfs.close()
    return {
        "cycles_per_s": round(cycles / wall),
        "idle_cycles_per_s": round(idle_cycles_per_s),
        "packets_per_s": round(through / wall, 2),
        "packets": through,
        "all_packets_through": done,
        "traffic_cycles": cycles,
        "flow_setup_cycles": int(statistics.median(setup_cycles)),
        "flow_setup_cycles_all": setup_cycles,
        "flow_setup_ms": round(statistics.median(setup_ms), 2),
        "flows_installed": counters["flows_installed"],
        "cs_queries": cs_queries,
        "cs": "CsDaemon",
        "flow_table_entries": config.flow_entries,
        "gcc_opt": config.opt,
    }
