# Chaos runs of a redundant CS pair: real CS daemon processes, a SoftDFS and
# synthetic TCP hosts over loopback UDP; `twinplane bench failover`.
# Ref: docs/redundancy.md (takeover, fencing, rejoin, DFS restart repopulation).
"""``run_failover(scenario)``: two ``twinplane cs`` processes (one active, one
standby, HELLO every ``hello_ms``) and a :class:`SoftDFS` in this process, with
synthetic TCP clients and servers (:mod:`twinplane.model.hosts`) on its ports.

Before the event, ``established`` connections are opened and stopped after the
handshake (their request is held back), so they are established through it;
new connections are opened every ``1 / new_rate_hz`` s during the whole run.
Scenarios:

* ``active_killed``: ``kill -9`` of the active CS process;
* ``standby_killed``: ``kill -9`` of the standby;
* ``both_killed``: both killed, then both started again;
* ``dfs_reset``: the DFS loses its whole state (a fresh model behind the same
  sockets) while the connections are open.

Then the held requests go out; an established connection is *lost* when it
does not complete.  ``takeover_ms`` is from the kill to the moment the DFS
has an active CS again (the standby authenticated at a newer epoch);
``recovery_ms`` is the same for the other scenarios (the DFS's flows back,
or an active CS back).  A new connection *failed during takeover* if it was
opened between the event and the recovery and did not complete (the
synthetic clients do not retransmit a SYN the DFS dropped for want of a CS).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import sys
import tempfile
import time

from twinplane.model.dfs import DfsConfig, ReferenceDFS
from twinplane.model.hosts import ClientState, TcpClient, TcpServer, parse_tcp_frame
from twinplane.model.softdfs import SoftDFS
from twinplane.protocol.codes import Bus, Role

from .redundancy_world import DFS_MAC, KEY, NODES, VIP, VPORT, cs_config_data

__all__ = ["SCENARIOS", "run_bench", "run_failover", "to_toml"]

SCENARIOS = ("active_killed", "standby_killed", "both_killed", "dfs_reset")


def to_toml(data: dict) -> str:
    """The small TOML subset the CS configuration needs (tables, arrays of tables, scalars, string lists)."""

    def scalar(value) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        if isinstance(value, str):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(value, list | tuple):
            return "[" + ", ".join(scalar(v) for v in value) + "]"
        raise TypeError(f"cannot write {value!r} as TOML")

    def table(prefix: str, body: dict, header: str) -> list[str]:
        lines = [header] if header else []
        nested = []
        for key, value in body.items():
            if isinstance(value, dict):
                nested += table(f"{prefix}{key}.", value, f"[{prefix}{key}]")
            elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                for item in value:
                    nested += table(f"{prefix}{key}.", item, f"[[{prefix}{key}]]")
            else:
                lines.append(f"{key} = {scalar(value)}")
        return lines + nested

    return "\n".join(table("", data, "")) + "\n"


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Hosts:
    """The wires around the SoftDFS: clients on port 0, servers on port 1."""

    def __init__(self, soft: SoftDFS):
        self.soft = soft
        self.servers = {ip: TcpServer(mac, ip, 8080, name, DFS_MAC) for name, ip, mac in NODES}
        self.clients: dict[str, TcpClient] = {}
        self.holding: set[str] = set()
        self.held: dict[str, list[bytes]] = {}
        self.opened: list[tuple[float, TcpClient]] = []
        self._n = 0

    def open(self, *, hold: bool = False) -> TcpClient:
        self._n += 1
        n = self._n
        ip = str(ipaddress.IPv4Address("10.2.0.0") + n)
        client = TcpClient(f"02:00:00:02:{n >> 8:02x}:{n & 0xFF:02x}", ip, 20000 + n % 40000, DFS_MAC, VIP, VPORT,
                           isn=n * 7919)
        self.clients[ip] = client
        if hold:
            self.holding.add(ip)
        self.opened.append((time.monotonic(), client))
        self.send(0, client.start())
        return client

    def send(self, port: int, frames: list[bytes]) -> None:
        for frame in frames:
            self.soft.inject(port, frame)

    def release(self) -> None:
        held, self.held = self.held, {}
        for frames in held.values():
            self.send(0, frames)

    async def pump(self, port: int) -> None:
        while True:
            frame = await self.soft.tx[port].get()
            if len(frame) < 34 or frame[12:14] != b"\x08\x00":
                continue
            dst = str(ipaddress.IPv4Address(frame[30:34]))
            host = (self.servers if port == 1 else self.clients).get(dst)
            if host is None:
                continue
            out = host.receive(frame)
            if port == 0 and dst in self.holding:
                keep = [f for f in out if (s := parse_tcp_frame(f)) is not None and s.payload]
                if keep:
                    self.held[dst] = keep
                    self.holding.discard(dst)
                out = [f for f in out if f not in keep]
            self.send(port, out)


async def _wait_for(predicate, timeout: float, step: float = 0.005) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        await asyncio.sleep(step)
    return None


def _done(client: TcpClient) -> bool:
    return client.state is ClientState.DONE and b"served by" in client.answer


async def run_failover(scenario: str = "active_killed", *, hello_ms: int = 100, established: int = 8,
                       new_rate_hz: float = 50.0, settle_s: float = 1.0, workdir: str | None = None) -> dict:
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}, not {scenario!r}")
    soft = SoftDFS(DfsConfig(key=KEY, dfs_mac=bytes.fromhex(DFS_MAC.replace(":", "")), ssmb_port=0, csmb_port=0))
    await soft.start()
    dfs_addr = {Bus.SSMB: ("127.0.0.1", soft.ports[Bus.SSMB]), Bus.CSMB: ("127.0.0.1", soft.ports[Bus.CSMB])}
    tmp = tempfile.TemporaryDirectory(prefix="twinplane-failover-") if workdir is None else None
    folder = workdir or tmp.name
    paths = []
    for i, role in enumerate(("active", "standby")):
        data = cs_config_data(i, role, hello_ms=hello_ms, dfs=dfs_addr, ssmb_addr="127.0.0.1",
                              ssmb_port=_free_port())
        path = os.path.join(folder, f"cs{i}.toml")
        with open(path, "w") as f:
            f.write(to_toml(data))
        paths.append(path)
    procs: list[asyncio.subprocess.Process | None] = [None, None]
    logs = [open(os.path.join(folder, f"cs{i}.log"), "ab") for i in range(2)]  # noqa: SIM115

    async def start(i: int) -> None:
        procs[i] = await asyncio.create_subprocess_exec(sys.executable, "-m", "twinplane.cli", "cs", "--config",
                                                        paths[i], stdout=logs[i], stderr=logs[i])

    def kill(i: int) -> None:
        os.kill(procs[i].pid, signal.SIGKILL)  # kill -9: no goodbye, no flush

    def active_ids() -> list[int]:
        return [p.cs_id for p in soft.dfs.active_set()]

    def standby_up() -> bool:
        return any(p.authenticated and p.role is Role.STANDBY for p in soft.dfs.peers.values())

    hosts = _Hosts(soft)
    pumps = [asyncio.create_task(hosts.pump(port)) for port in (0, 1)]
    result: dict = {"scenario": scenario, "hello_ms": hello_ms, "established": established}
    try:
        # The active first: a standby alone takes over after its grace period.
        await start(0)
        ready = await _wait_for(lambda: active_ids() == [1] and 1 in soft.dfs.vss, 20.0)
        await start(1)
        ready = ready is not None and await _wait_for(lambda: active_ids() == [1] and standby_up(), 20.0)
        if ready is None or ready is False:
            raise RuntimeError(f"the CS pair did not come up (logs in {folder})")
        held = [hosts.open(hold=True) for _ in range(established)]
        if await _wait_for(lambda: len(hosts.held) == established, 5.0) is None:
            raise RuntimeError("the established connections did not come up")
        await asyncio.sleep(0.1)  # the replicas reach the standby

        stop = asyncio.Event()

        async def generate() -> None:
            while not stop.is_set():
                hosts.open()
                await asyncio.sleep(1 / new_rate_hz)

        generator = asyncio.create_task(generate())
        await asyncio.sleep(0.2)
        event_at = time.monotonic()
        # A short connection still exchanging when the event strikes belongs to
        # the event, not to the traffic before it: a segment of it may be in
        # the DFS that is lost, and the synthetic hosts never retransmit.
        in_flight = {id(c) for _, c in hosts.opened
                     if c.state in (ClientState.SYN_SENT, ClientState.WAITING_FOR_ANSWER, ClientState.CLOSING)}
        epoch_before = soft.dfs.epoch
        if scenario == "active_killed":
            kill(0)
            took = await _wait_for(lambda: active_ids() == [2] and soft.dfs.epoch > epoch_before, 10.0)
        elif scenario == "standby_killed":
            kill(1)
            await asyncio.sleep(4 * hello_ms / 1000)
            took = 0.0 if active_ids() == [1] else None
        elif scenario == "both_killed":
            kill(0)
            kill(1)
            await _wait_for(lambda: not soft.dfs.peers, 5.0)
            await start(0)
            await start(1)
            took = await _wait_for(lambda: bool(active_ids()), 20.0)
            await _wait_for(standby_up, 20.0)
        else:
            soft.dfs = ReferenceDFS(soft.dfs.config)
            took = await _wait_for(lambda: len(soft.dfs._unique_flows()) >= established and bool(active_ids()), 10.0)
        recovered_at = time.monotonic()
        await asyncio.sleep(settle_s)
        stop.set()
        await generator
        hosts.release()
        await _wait_for(lambda: all(_done(c) for _, c in hosts.opened), 3.0)
        during = [c for t, c in hosts.opened if (event_at <= t <= recovered_at or id(c) in in_flight)
                  and c not in held]
        after = [c for t, c in hosts.opened if t > recovered_at + 2 * hello_ms / 1000 and c not in held]
        before = [c for t, c in hosts.opened if t < event_at and id(c) not in in_flight and c not in held]
        result.update({
            "takeover_ms" if scenario == "active_killed" else "recovery_ms":
                None if took is None else round(took * 1000, 1),
            "established_lost": sum(not _done(c) for c in held),
            "new_flows_failed_during_takeover": sum(not _done(c) for c in during),
            "new_flows_during_takeover": len(during),
            "new_flows_failed_after_takeover": sum(not _done(c) for c in after),
            "new_flows_after_takeover": len(after),
            "new_flows_failed_before": sum(not _done(c) for c in before),
            "active_cs": active_ids(),
            "dfs_epoch": soft.dfs.epoch,
            "dfs_counters": {k: v for k, v in soft.dfs.counters.items()
                             if k.startswith(("invalid", "drop", "cs_", "replicated", "flows_"))},
        })
    finally:
        for task in pumps:
            task.cancel()
        for proc in procs:
            if proc is not None and proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 5.0)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        for log in logs:
            log.close()
        await soft.close()
        if tmp is not None:
            tmp.cleanup()
    return result


def run_bench(quick: bool = False) -> dict:
    """``twinplane bench failover``: kill -9 of the active CS (the headline
    figures), then the other scenarios (``--quick``: the first only)."""
    runs = [asyncio.run(run_failover(s)) for s in (SCENARIOS[:1] if quick else SCENARIOS)]
    head = runs[0]
    return {
        "takeover_ms": head["takeover_ms"],
        "established_lost": head["established_lost"],
        "new_flows_failed_during_takeover": head["new_flows_failed_during_takeover"],
        "new_flows_failed_after_takeover": head["new_flows_failed_after_takeover"],
        "hello_ms": head["hello_ms"],
        "scenarios": {r["scenario"]: {k: v for k, v in r.items() if k not in ("scenario", "dfs_counters")}
                      for r in runs},
    }
