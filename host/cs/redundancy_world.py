# A sans-I/O world for redundant control segments: one reference DFS, several
# CS cores and synthetic TCP hosts, wired in memory with time passed in.
# Ref: docs/redundancy.md (roles, epochs, replication, takeover, fencing).
"""``RedundancyWorld``: the reference DFS (:class:`twinplane.model.dfs.ReferenceDFS`),
N :class:`ControlSegment` cores and the synthetic hosts of
:mod:`twinplane.model.hosts`, exchanging real encoded datagrams and frames in
memory.  Nothing sleeps: :meth:`advance` steps a number.

A CS can be killed (:meth:`kill`: it stops sending, receiving and running its
timers, as after ``kill -9``), cut off (:attr:`cut`: its datagrams are lost
both ways, it keeps running: a partition) or restarted (:meth:`restart`: a new
core from the same configuration).  :meth:`reset_dfs` replaces the DFS by a
fresh one (a data-plane restart).  A client opened with ``hold=True`` stops
after the handshake: its request is kept back until :meth:`release`, so the
connection is *established* across whatever happens in between.
"""

from __future__ import annotations

import ipaddress
import random

from twinplane.model.dfs import DfsConfig, ReferenceDFS
from twinplane.model.hosts import ClientState, TcpClient, TcpServer, parse_tcp_frame
from twinplane.protocol.codes import Bus

from .config import CsConfig, parse_config
from .core import ControlSegment

__all__ = ["DFS_ADDR", "KEY", "RedundancyWorld", "cs_config", "cs_config_data"]

KEY = bytes(range(16))
DFS_ADDR = {Bus.SSMB: ("127.0.0.1", 7000), Bus.CSMB: ("127.0.0.1", 7001)}
DFS_MAC = "02:00:00:00:fe:01"
VIP, VPORT = "10.0.0.100", 80
NODES = [("node-a", "10.1.0.1", "02:00:00:00:01:01"), ("node-b", "10.1.0.2", "02:00:00:00:01:02"),
         ("node-c", "10.1.0.3", "02:00:00:00:01:03")]
_CS_SSMB_PORT, _CS_CSMB_PORT = 9000, 9001


def cs_config(index: int, role: str, **knobs) -> CsConfig:
    """The checked configuration of CS ``index`` (cs_id index + 1) in a redundant pair."""
    return parse_config(cs_config_data(index, role, **knobs))


def cs_config_data(index: int, role: str, *, epoch: int = 1, hello_ms: int = 100, dfs=DFS_ADDR,
                   ssmb_addr: str | None = None, ssmb_port: int = _CS_SSMB_PORT) -> dict:
    """The TOML document (as a dict) of CS ``index``'s configuration."""
    return {
        "cs": {"cs_id": index + 1, "epoch": epoch, "ssmb_addr": ssmb_addr or f"127.0.1.{index + 1}",
               "ssmb_port": ssmb_port},
        "timeouts": {"hello_interval_ms": hello_ms, "flow_idle_s": 60, "csmb_retransmit_s": 0.2},
        "redundancy": {"role": role},
        "dfs": [{"name": "dfs0", "address": dfs[Bus.SSMB][0], "ssmb_port": dfs[Bus.SSMB][1],
                 "csmb_port": dfs[Bus.CSMB][1], "key": KEY.hex()}],
        "pool": [{"name": "web", "method": "round_robin", "node": [
            {"address": ip, "port": 8080, "mac": mac, "egress_port": 1} for _, ip, mac in NODES]}],
        "virtual_server": [{"id": 1, "address": VIP, "port": VPORT, "pool": "web"}],
    }


class RedundancyWorld:
    def __init__(self, roles=("active", "standby"), *, epochs=None, hello_ms: int = 100, seed: int = 1):
        self.rng = random.Random(seed)
        self.hello_ms = hello_ms
        self.now = 0.0
        self.configs = [cs_config(i, role, epoch=(epochs or [1] * len(roles))[i], hello_ms=hello_ms)
                        for i, role in enumerate(roles)]
        self.dfs = self._new_dfs()
        self.cs: list[ControlSegment | None] = [self._new_cs(i) for i in range(len(roles))]
        self.cut = [False] * len(roles)
        self.servers = {ip: TcpServer(mac, ip, 8080, name, DFS_MAC) for name, ip, mac in NODES}
        self.clients: dict[str, TcpClient] = {}
        self.holding: set[str] = set()
        self.held: dict[str, list[bytes]] = {}
        self._n = 0

    def _new_dfs(self) -> ReferenceDFS:
        return ReferenceDFS(DfsConfig(key=KEY, dfs_mac=bytes.fromhex(DFS_MAC.replace(":", "")),
                                      ssmb_port=DFS_ADDR[Bus.SSMB][1], csmb_port=DFS_ADDR[Bus.CSMB][1],
                                      randbytes=self.rng.randbytes))

    def _new_cs(self, i: int) -> ControlSegment:
        return ControlSegment(self.configs[i], random_bytes=self.rng.randbytes)

    # -- chaos ---------------------------------------------------------------------------------------
    def kill(self, i: int) -> None:
        self.cs[i] = None

    def restart(self, i: int) -> None:
        self.cs[i] = self._new_cs(i)

    def reset_dfs(self) -> None:
        self.dfs = self._new_dfs()

    # -- the wire ------------------------------------------------------------------------------------
    @staticmethod
    def _src(i: int, bus: Bus) -> tuple[str, int]:
        return (f"127.0.1.{i + 1}", _CS_SSMB_PORT if bus is Bus.SSMB else _CS_CSMB_PORT)

    def _frames(self, port: int, frames: list[bytes]) -> None:
        queue = [(port, f) for f in frames]
        while queue:
            port, frame = queue.pop(0)
            for out_port, out in self.dfs.receive_frame(port, frame, self.now):
                queue += [(out_port, f) for f in self._host(out_port, out)]
            queue += [(p, f) for p, f in self.dfs.frames_to_send() for f in self._host(p, f)]

    def _host(self, port: int, frame: bytes) -> list[bytes]:
        """A frame out of DFS port ``port`` reaches its host; what the host answers (going back in)."""
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            return []
        dst = str(ipaddress.IPv4Address(frame[30:34]))
        if port == 1:
            server = self.servers.get(dst)
            return server.receive(frame) if server else []
        client = self.clients.get(dst)
        if client is None:
            return []
        out = client.receive(frame)
        if dst in self.holding:
            seg = [parse_tcp_frame(f) for f in out]
            keep = [f for f, s in zip(out, seg, strict=True) if s is not None and s.payload]
            if keep:
                self.held[dst] = keep
                self.holding.discard(dst)
            out = [f for f in out if f not in keep]
        return out

    def pump(self) -> None:
        for _ in range(100):
            moved = False
            for i, cs in enumerate(self.cs):
                if cs is None:
                    continue
                for bus, _addr, data in cs.datagrams_to_send(self.now):
                    moved = True
                    if not self.cut[i]:
                        self.dfs.receive_message(bus, data, self._src(i, bus), self.now)
            frames = self.dfs.frames_to_send()
            for port, frame in frames:
                moved = True
                self._frames(port, self._host(port, frame))
            for bus, dst, data in self.dfs.messages_to_send():
                moved = True
                i = int(dst[0].rsplit(".", 1)[1]) - 1
                if 0 <= i < len(self.cs) and self.cs[i] is not None and not self.cut[i]:
                    self.cs[i].receive_datagram(bus, data, DFS_ADDR[bus], self.now)
            if not moved:
                return
        raise AssertionError("the world does not settle")

    def advance(self, seconds: float, step: float = 0.005) -> None:
        end = self.now + seconds
        while self.now < end - 1e-12:
            self.now = min(self.now + step, end)
            for cs in self.cs:
                if cs is not None:
                    t = cs.get_timer()
                    if t is not None and t <= self.now:
                        cs.handle_timer(self.now)
            self.dfs.poll(self.now)
            self.pump()

    def until(self, predicate, limit: float, step: float = 0.005) -> float | None:
        """Advance until ``predicate()``; the time it took, or None after ``limit`` seconds."""
        start = self.now
        while self.now - start < limit:
            if predicate():
                return self.now - start
            self.advance(step, step)
        return self.now - start if predicate() else None

    # -- traffic -------------------------------------------------------------------------------------
    def open(self, *, hold: bool = False) -> TcpClient:
        """A new client connection (SYN sent now)."""
        self._n += 1
        n = self._n
        ip = str(ipaddress.IPv4Address("10.2.0.0") + n)
        client = TcpClient(f"02:00:00:02:{n >> 8:02x}:{n & 0xFF:02x}", ip, 40000 + n, DFS_MAC, VIP, VPORT,
                           isn=self.rng.getrandbits(32))
        self.clients[ip] = client
        if hold:
            self.holding.add(ip)
        self._frames(0, client.start())
        self.pump()
        return client

    def release(self) -> None:
        """Send the requests of the held (established) connections."""
        held, self.held = self.held, {}
        for frames in held.values():
            self._frames(0, frames)
        self.pump()

    @staticmethod
    def established(client: TcpClient) -> bool:
        return client.state is ClientState.WAITING_FOR_ANSWER

    @staticmethod
    def done(client: TcpClient) -> bool:
        return client.state is ClientState.DONE and b"served by" in client.answer
