"""The whole system with real Linux TCP: kernel HTTP clients and servers in
network namespaces, their TAP interfaces wired to the ports of the compiled
DFS gateware (``CompiledDFS``), and real CS daemons (``CsDaemon``) that
reach its message port over real UDP through the gateway.  Used by
tests/test_e2e_*.py and ``twinplane demo --tap``.

Ref: docs/simulation.md ("End-to-end: kernel TCP through the gateware");
sim/bridge/tap.py (TAP devices, namespaces), sim/bridge/udp.py (the
message-port gateway), docs/redundancy.md (several CSs per DFS).

One :class:`DfsSite` is one simulated board and its two networks::

    client ns (10.0.0.2) ── TAP ── port 0 [ DFS gateware ] port 1 ─┬─ gateway(s) ── UDP ── CS daemon(s)
                                                                   └─ TapSwitch ─┬─ TAP ── node-a ns (10.1.0.1)
                                                                                 ├─ TAP ── node-b ns (10.1.0.2)
                                                                                 └─ TAP ── node-c ns (10.1.0.3)

* The engine runs on a thread of its own (:class:`EngineLoop`) in chunks
  of 32 cycles, at most twice the declared clock rate (``max_rate``);
  everything else that touches it (counters, a new endpoint, a reboot) is
  queued to that thread (:meth:`EngineLoop.call`).
* The nodes share the internal port through :class:`TapSwitch`, a switch
  in Python (by destination MAC, broadcasts to all), so the gateware's
  per-node MAC rewrite decides which namespace gets a frame.
* Each CS gets a gateway of its own on every site (a *virtual CS* address
  10.77.1.100 + n), so the DFS sees distinct CSs exactly as on a network:
  two CSs behind one address would share a CSMB slot and its replay window.
* The client reaches the virtual server on-link (the DFS answers ARP for
  it); the nodes route back through the DFS's address (ARP answered by the
  gateware too).  MTU 576 in the namespaces keeps frames short for the
  engine (~2,000-5,000 cycles/s: a byte per cycle per port).
* The CSs run in this process's asyncio loop with timers scaled to the
  engine (:data:`E2E_CS_TIMEOUTS`); the DFS is told it runs at 2 kHz
  (``EngineConfig``), so its ticks stay near wall seconds.

:class:`MessageLog` wraps each gateway and decodes every SSMB message both
ways (QUERY, REPLY, DELETE with its reason, STATS, DUMP END with the DFS's
count, RESET, NEWFLOW), so a test can see what crossed the message port.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import itertools
import json
import os
import queue
import struct
import subprocess
import sys
import threading
import time
from collections import Counter

from twinplane.protocol.codec import Codec, DecodeError
from twinplane.protocol.codes import CSMB_UDP_PORT, SSMB_UDP_PORT, Bus

from .hosts import CLIENT, SERVER

__all__ = ["DfsSite", "E2E_CS_TIMEOUTS", "EngineLoop", "LoopThread", "MessageLog", "TapSwitch", "World", "cs_config"]

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
DFS_MAC = "02:00:00:00:fe:01"
DFS_IP = "10.1.0.254"
VIP, VPORT = "10.0.0.100", 80
#: A second virtual server on the same address with a short idle timeout (the reaping check).
IDLE_VPORT = 81
CLIENT_IP, CLIENT_MAC = "10.0.0.2", "02:00:00:02:00:01"
NODES = [("node-a", "10.1.0.1", "02:00:00:00:01:01"), ("node-b", "10.1.0.2", "02:00:00:00:01:02"),
         ("node-c", "10.1.0.3", "02:00:00:00:01:03")]
NODE_PORT = 8080
CS_NET = "10.77.1.0"  #: the gateways' virtual CSs are 10.77.1.100 + n
_SITES = itertools.count()

#: ``[timeouts]`` of a CS talking to the engine: a message costs 0.1-0.5 s of wall time here, the
#: CS's handshake (~4 messages) must fit one HELLO interval, CSMB requests are retransmitted after
#: 10 s.  The DFS forgets a CS after 3 intervals of its own (simulated) time, which
#: ``DfsSite.max_rate`` keeps at least half as long as the wall clock's.
E2E_CS_TIMEOUTS = {"hello_interval_ms": 4_000, "flow_idle_s": 600, "csmb_retransmit_s": 10,
                   "csmb_retransmit_max_s": 30, "reap_retry_s": 2}


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip()}")


class TapSwitch:
    """Endpoint: several TAPs on one port, switched by destination MAC
    (unknown unicast is not taken; broadcast and multicast go to all)."""

    def __init__(self, taps: dict[str, object]):
        self.taps = {_mac(mac): tap for mac, tap in taps.items()}
        self.frames = Counter()  # frames delivered per MAC

    def poll(self) -> list[bytes]:
        return [frame for tap in self.taps.values() for frame in tap.read_all()]

    def deliver(self, frame: bytes) -> bool:
        dst = bytes(frame[:6])
        tap = self.taps.get(dst)
        if tap is not None:
            tap.write(frame)
            self.frames[dst] += 1
            return True
        if dst[0] & 1:
            for tap in self.taps.values():
                tap.write(frame)
            return True
        return False


class EngineLoop:
    """Steps a :class:`SimSystem` on a thread of its own until stopped;
    :meth:`call` runs a function there between two chunks."""

    def __init__(self, system):
        self.system = system
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self.busy_s = 0.0
        self._thread = threading.Thread(target=self._run, name="dfs-engine", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                while True:
                    try:
                        fn, future = self._calls.get_nowait()
                    except queue.Empty:
                        break
                    if future.set_running_or_notify_cancel():
                        try:
                            future.set_result(fn())
                        except BaseException as error:  # noqa: BLE001 - handed to the caller
                            future.set_exception(error)
                t, napped = time.perf_counter(), self.system.throttled_s
                self.system.step()
                self.busy_s += time.perf_counter() - t - (self.system.throttled_s - napped)
        except BaseException as error:  # noqa: BLE001 - reported by call() and stop()
            self.error = error
            while True:
                try:
                    _, future = self._calls.get_nowait()
                except queue.Empty:
                    break
                future.set_exception(RuntimeError(f"the engine loop stopped: {error!r}"))

    def call(self, fn) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        if self.error is not None or not self._thread.is_alive():
            future.set_exception(RuntimeError(f"the engine loop is not running ({self.error!r})"))
        else:
            self._calls.put((fn, future))
        return future

    async def acall(self, fn):
        return await asyncio.wrap_future(self.call(fn))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)


class MessageLog:
    """Endpoint wrapper around a :class:`UdpGateway`: decodes the SSMB
    messages that cross it, ``(direction, cycle, message)`` in :attr:`messages`
    (direction ``"to_cs"`` or ``"to_dfs"``)."""

    def __init__(self, gateway, key: bytes, site):
        self.gateway = gateway
        self.codec = Codec(key)
        self.site = site
        self.messages: list[tuple[str, int, object]] = []

    def _decode(self, frame: bytes, direction: str, **ports) -> None:
        if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            return
        ihl = (frame[14] & 0x0F) * 4
        udp = frame[14 + ihl:]
        src, dst, length = struct.unpack("!HHH", udp[:6])
        if ("dport" in ports and dst != ports["dport"]) or ("sport" in ports and src != ports["sport"]):
            return
        try:
            for msg in self.codec.decode(Bus.SSMB, udp[8:length]):
                self.messages.append((direction, self.site.dfs.cycle, msg))
        except DecodeError:
            pass  # a datagram on the SSMB port that does not decode (damaged or forged): not logged

    def poll(self) -> list[bytes]:
        frames = self.gateway.poll()
        for frame in frames:
            self._decode(frame, "to_dfs", dport=SSMB_UDP_PORT)
        return frames

    def deliver(self, frame: bytes) -> bool:
        taken = self.gateway.deliver(frame)
        if taken:
            self._decode(frame, "to_cs", sport=SSMB_UDP_PORT)
        return taken

    def queried(self) -> set[tuple[bytes, int, bytes, int]]:
        """The flows (client address and port, virtual server address and port) this CS was asked about."""
        return {(m.flow.src_addr, m.flow.src_port, m.flow.dst_addr, m.flow.dst_port)
                for d, _, m in self.messages if d == "to_cs" and type(m).__name__ == "SsmbQuery"}

    def of_type(self, name: str, direction: str | None = None) -> list:
        return [m for d, _, m in self.messages if type(m).__name__ == name and direction in (None, d)]


class DfsSite:
    """One simulated DFS with a client namespace and three node namespaces
    (see the module docstring).  ``index`` names it ``dfs<index>``."""

    def __init__(self, index: int, config, *, tag: str | None = None, mtu: int = 576, chunk: int = 32,
                 pcap_dir: str | None = None, log=None):
        if not isinstance(mtu, int) or not 68 <= mtu <= 1500:
            raise ValueError(f"mtu must be 68..1500, not {mtu!r}")
        self.index = index
        self.name = f"dfs{index}"
        self.config = config
        # Unique per site in this machine: two worlds in one process must not share names.
        self.tag = tag or f"{os.getpid() % 1000}{next(_SITES) % 100}"
        self.mtu = mtu
        self.chunk = chunk
        self.pcap_dir = pcap_dir
        # The DFS's timers (CS expiry after 3 HELLO intervals, idle timeouts) run on simulated
        # ticks, its peers' on the wall clock: never more than twice as fast as the wall clock.
        self.max_rate = 2 * config.clk_hz
        self.say = log or (lambda text: None)
        self.dfs = self.system = self.loop = self.switch = None
        self.taps: list = []
        self.topo = None
        self.client_ns = None
        self.node_ns: dict[str, str] = {}
        self.servers: dict[str, subprocess.Popen] = {}
        self.client = None
        self.gateways: list = []  # MessageLog per CS, by CS index
        self.reboots = 0
        self._closers: list = []

    # -- bring-up ------------------------------------------------------------------------------------
    def _open_engine(self):
        from .compiled import CompiledDFS

        dfs = CompiledDFS(self.config, log=self.say)
        dfs.configure(key=KEY, own_mac=DFS_MAC, own_ip=DFS_IP)
        # Messages only from the virtual CSs' network (where every gateway puts its CS).
        dfs.set("cs_net", int(ipaddress.IPv4Address(CS_NET)))
        dfs.set("cs_prefix", 24)
        return dfs

    async def start(self) -> None:
        from twinplane.sim.bridge.bridge import TapEndpoint
        from twinplane.sim.bridge.pcap import PcapRecorder
        from twinplane.sim.bridge.tap import NamespaceTopology, TapInterface

        from .system import SimSystem

        self.dfs = await asyncio.to_thread(self._open_engine)
        pcap = PcapRecorder(self.pcap_dir, ports=self.config.ports) if self.pcap_dir else None
        if pcap is not None:
            self._closers.append(pcap.close)
        self.system = SimSystem(self.dfs, chunk=self.chunk, pcap=pcap, max_rate=self.max_rate)
        self.topo = NamespaceTopology(prefix=f"tpe{self.tag}x")
        prefix = f"tpe{self.tag}{self.index}"
        client_tap = TapInterface(f"{prefix}c")
        self.taps.append(client_tap)
        self.client_ns = self.topo.attach(client_tap.name, f"{CLIENT_IP}/24", mac=CLIENT_MAC)
        _run("ip", "-n", self.client_ns, "link", "set", client_tap.name, "mtu", str(self.mtu))
        node_taps = {}
        for i, (name, ip, mac) in enumerate(NODES):
            tap = TapInterface(f"{prefix}n{i}")
            self.taps.append(tap)
            ns = self.topo.attach(tap.name, f"{ip}/24", mac=mac)
            _run("ip", "-n", ns, "link", "set", tap.name, "mtu", str(self.mtu))
            _run("ip", "-n", ns, "route", "add", "default", "via", DFS_IP, "dev", tap.name, "onlink")
            self.node_ns[name] = ns
            node_taps[mac] = tap
        self.system.attach(0, TapEndpoint(client_tap))
        self.switch = TapSwitch(node_taps)
        self.system.attach(1, self.switch)
        for name in self.node_ns:
            await self.start_server(name)
        self.client = self.topo.exec(self.client_ns, sys.executable, "-c", CLIENT, VIP, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.loop = EngineLoop(self.system)
        self.loop.start()

    async def start_server(self, name: str) -> None:
        server = self.topo.exec(self.node_ns[name], sys.executable, "-c", SERVER, name, str(NODE_PORT),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = await asyncio.to_thread(server.stdout.readline)
        if line.strip() != b"READY":
            raise RuntimeError(f"the HTTP server of {name} did not start: {server.stderr.read().decode()}")
        self.servers[name] = server

    def stop_server(self, name: str) -> None:
        server = self.servers.pop(name)
        server.kill()
        server.wait()

    def add_gateway(self, cs_index: int):
        """A gateway (virtual CS 10.77.1.100 + ``cs_index``) on the internal port; its host sockets."""
        from twinplane.sim.bridge.udp import GatewayConfig, UdpGateway

        gateway = UdpGateway(GatewayConfig(
            dfs_mac=DFS_MAC, dfs_ip=DFS_IP, cs_mac=f"02:00:00:77:01:{0x64 + cs_index:02x}",
            cs_ip=f"10.77.1.{100 + cs_index}", buses={SSMB_UDP_PORT: 0, CSMB_UDP_PORT: 0}, relay_announced=True))
        log = MessageLog(gateway, KEY, self)
        while len(self.gateways) <= cs_index:
            self.gateways.append(None)
        self.gateways[cs_index] = log
        # Message-port traffic first, the nodes after: the endpoints of a port are asked in order.
        self.loop.call(lambda: self.system.endpoints[1].insert(0, log)).result(timeout=30)
        return gateway.address(SSMB_UDP_PORT)[1], gateway.address(CSMB_UDP_PORT)[1]

    # -- looking at it -------------------------------------------------------------------------------
    async def counters(self) -> dict:
        return await self.loop.acall(self.dfs.counters)

    def queried(self) -> set:
        """Every flow this DFS sent a QUERY for (a QUERY asked again after a timeout counts once)."""
        return set().union(*(g.queried() for g in self.gateways if g is not None))

    def node_snmp(self, name: str) -> dict:
        """TCP counters of node ``name``'s namespace (``InCsumErrors``: segments its kernel refused)."""
        out = subprocess.run(["ip", "netns", "exec", self.node_ns[name], "cat", "/proc/net/snmp"],
                             capture_output=True, text=True, check=True).stdout.split("\n")
        tcp = [line.split()[1:] for line in out if line.startswith("Tcp:")]
        return {f"Tcp.{k}": int(v) for k, v in zip(*tcp, strict=True)} if len(tcp) == 2 else {}

    def messages(self, name: str, direction: str | None = None) -> list:
        return [m for g in self.gateways if g is not None for m in g.of_type(name, direction)]

    async def ask(self, **cmd) -> dict:
        """One command to the client process (see sim/engine/hosts.py); its answer."""
        def exchange():
            self.client.stdin.write(json.dumps(cmd).encode() + b"\n")
            self.client.stdin.flush()
            line = self.client.stdout.readline()
            if not line:
                raise RuntimeError(f"the client exited: {self.client.stderr.read().decode()}")
            return json.loads(line)

        return await asyncio.to_thread(exchange)

    async def reboot(self) -> None:
        """The board restarts: a fresh engine (empty tables, a new nonce) on the same wires."""
        def swap():
            old = self.dfs
            self.dfs = self._open_engine()
            self.system.replace_engine(self.dfs)
            old.close()

        await self.loop.acall(swap)
        self.reboots += 1

    async def close(self) -> None:
        if self.loop is not None:
            self.loop.stop()
        if self.client is not None and self.client.poll() is None:
            self.client.kill()
            self.client.wait()
        for name in list(self.servers):
            self.stop_server(name)
        for log in self.gateways:
            if log is not None:
                log.gateway.close()
        if self.topo is not None:
            self.topo.close()
        for tap in self.taps:
            tap.close()
        if self.dfs is not None:
            self.dfs.close()
        for close in self._closers:
            close()


def cs_config(sites: list[tuple[str, int, int]], *, cs_id: int = 1, epoch: int = 0, role: str = "active",
              method: str = "round_robin", timeouts: dict | None = None, idle_timeout_s: int = 3):
    """A checked CS configuration: one ``[[dfs]]`` per ``(name, ssmb_port, csmb_port)`` gateway,
    the three nodes in one pool, the virtual server :data:`VIP`:80 and a second one on port
    :data:`IDLE_VPORT` whose flows are reaped after ``idle_timeout_s``."""
    from twinplane.host.cs.config import parse_config

    return parse_config({
        "cs": {"cs_id": cs_id, "epoch": epoch, "ssmb_addr": "127.0.0.1", "ssmb_port": 0},
        "timeouts": dict(timeouts or E2E_CS_TIMEOUTS),
        "redundancy": {"role": role},
        "dfs": [{"name": name, "address": "127.0.0.1", "ssmb_port": ssmb, "csmb_port": csmb, "key": KEY.hex()}
                for name, ssmb, csmb in sites],
        "pool": [{"name": "web", "method": method, "node": [
            {"address": ip, "port": NODE_PORT, "mac": mac, "egress_port": 1} for _, ip, mac in NODES]}],
        "virtual_server": [{"id": 1, "address": VIP, "port": VPORT, "pool": "web"},
                           {"id": 2, "address": VIP, "port": IDLE_VPORT, "pool": "web",
                            "idle_timeout_s": idle_timeout_s}],
    })


class World:
    """DFS sites and CS daemons in this process's event loop.

    ``await World(config, sites=2).start()``; :meth:`start_cs` starts CS
    number ``i`` (a gateway of its own on every site); :meth:`stop_cs` stops
    it (its sockets close: the DFS hears nothing more from it)."""

    def __init__(self, config, *, sites: int = 1, method: str = "round_robin", mtu: int = 576,
                 timeouts: dict | None = None, pcap_dir: str | None = None, log=None):
        self.config = config
        self.timeouts = dict(timeouts or E2E_CS_TIMEOUTS)
        self.method = method
        self.say = log or (lambda text: None)
        self.sites = [DfsSite(i, config, mtu=mtu, log=self.say,
                              pcap_dir=None if pcap_dir is None else os.path.join(pcap_dir, f"dfs{i}"))
                      for i in range(sites)]
        self.css: dict[int, object] = {}
        self._gateway_count = 0

    async def start(self) -> World:
        for site in self.sites:
            if site.pcap_dir:
                os.makedirs(site.pcap_dir, exist_ok=True)
            await site.start()
        return self

    async def start_cs(self, i: int, *, cs_id: int | None = None, epoch: int = 0, role: str = "active",
                       timeouts: dict | None = None):
        """CS ``i`` on fresh gateways (a new virtual CS address per start, as a
        restarted process sends from a new address); waits for nothing."""
        from twinplane.host.cs.daemon import CsDaemon

        n = self._gateway_count
        self._gateway_count += 1
        ports = [(site.name, *site.add_gateway(n)) for site in self.sites]
        daemon = CsDaemon(cs_config(ports, cs_id=cs_id or i + 1, epoch=epoch, role=role, method=self.method,
                                    timeouts=timeouts or self.timeouts), health=False)
        await daemon.start()
        self.css[i] = daemon
        return daemon

    async def stop_cs(self, i: int) -> None:
        await self.css.pop(i).stop()

    def associated(self, i: int) -> bool:
        core = self.css[i].core
        return all(p.state == "up" and not p.pending and p.dump_at is None for p in core.peers.values())

    async def wait_for(self, predicate, timeout: float, *, poll: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return True
            for site in self.sites:
                if site.loop.error is not None:
                    raise RuntimeError(f"{site.name}'s engine loop stopped") from site.loop.error
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(poll)

    async def dump(self, i: int, site: DfsSite, timeout: float = 30.0) -> int | None:
        """Ask the DFS for every flow through CS ``i`` (SSMB DUMP, as the CS
        does after each association, reconciled the same way); the count the
        DFS gives in its DUMP END, or None if none came."""
        from twinplane.protocol.messages import SsmbDump

        core = self.css[i].core
        peer = core.peers[site.name]
        before = len(site.messages("SsmbDump", "to_cs"))
        now = self.css[i].loop.time()
        peer.dump_at, peer.dumped = now, set()
        peer.dump_known = {f.key for f in core.flows.of_dfs(site.name)}
        core._ssmb(peer, SsmbDump())  # what ControlSegment._associated sends
        self.css[i].kick()
        if not await self.wait_for(lambda: len(site.messages("SsmbDump", "to_cs")) > before, timeout):
            return None
        return site.messages("SsmbDump", "to_cs")[-1].count

    def cs_flows(self, i: int, site: DfsSite | None = None) -> int:
        core = self.css[i].core
        return len(core.flows) if site is None else len(core.flows.of_dfs(site.name))

    async def tables_empty(self, i: int, site: DfsSite, timeout: float) -> tuple[bool, int | None]:
        """Wait until CS ``i`` holds no flow of ``site`` and the DFS's DUMP
        reports none; (whether both emptied, the last DUMP count)."""
        deadline = time.monotonic() + timeout
        count = None
        while time.monotonic() < deadline:
            if self.cs_flows(i, site) == 0:
                count = await self.dump(i, site, timeout=max(deadline - time.monotonic(), 1.0))
                if count == 0 and self.cs_flows(i, site) == 0:
                    return True, 0
            await asyncio.sleep(0.5)
        return False, count

    async def close(self) -> None:
        for i in list(self.css):
            await self.stop_cs(i)
        for site in self.sites:
            await site.close()




class LoopThread:
    """An asyncio event loop running on a thread of its own, with the
    :class:`World` it holds (:attr:`world`), so the CS daemons keep
    answering while the caller (a test) waits between two checks;
    :meth:`run` runs a coroutine there from any other thread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="cs-loop", daemon=True)
        self.thread.start()
        self.world: World | None = None

    def run(self, coro, timeout: float = 300):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start_world(self, *, sites: int = 1, css: tuple[dict, ...] = ({},), timeout: float = 90) -> World:
        """A :class:`World` on the default ``EngineConfig()`` (the compile the
        demo and the engine tests share), held in :attr:`world`, with CS ``i``
        started by ``start_cs(i, **css[i])`` and associated before the next."""
        from .build import EngineConfig

        async def up():
            world = self.world = await World(EngineConfig(), sites=sites).start()
            for i, kwargs in enumerate(css):
                await world.start_cs(i, **kwargs)
                if not await world.wait_for(lambda i=i: world.associated(i), timeout):
                    raise AssertionError(f"CS {i} ({kwargs or 'default'}) did not associate with every DFS")
            return world

        return self.run(up())

    def close(self) -> None:
        if self.world is not None:
            self.run(self.world.close(), 120)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
