"""Configuration of the CS daemon, read from TOML (tomllib).

Every problem is reported as one :class:`ConfigError` naming the file, the
field (a dotted path such as ``pool[0].node[1].mac``) and the problem, before
the daemon starts anything.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "METHODS",
    "VS_CLASSES",
    "CsConfig",
    "CsSettings",
    "ConfigError",
    "DfsConfig",
    "MonitorConfig",
    "NodeConfig",
    "PoolConfig",
    "Redundancy",
    "Timeouts",
    "VsConfig",
    "load_config",
    "parse_config",
]

#: Balancing methods a pool may name.
METHODS = ("round_robin", "ratio", "least_connections", "fastest", "observed", "maglev")
#: Virtual server classes: the DFS-assisted L4 class is supported, the proxy
#: classes (patent figure 13) are refused.
VS_CLASSES = ("l4",)
_PROXY_CLASSES = ("ssl", "cookie", "http", "raw")
_PROTOCOLS = {"tcp": 6, "udp": 17}


class ConfigError(ValueError):
    """An invalid configuration: which file, which field, what is wrong."""

    def __init__(self, path: str | Path, field: str, problem: str):
        super().__init__(f"{path}: {field}: {problem}")
        self.path = str(path)
        self.field = field
        self.problem = problem


@dataclass
class DfsConfig:
    name: str
    address: str
    ssmb_port: int = 6340
    csmb_port: int = 6341
    key: bytes = bytes(16)


@dataclass
class NodeConfig:
    address: str
    port: int
    mac: bytes
    egress_port: int = 0
    weight: int = 1
    connection_limit: int = 0  #: 0: no limit
    maintenance: bool = False


@dataclass
class MonitorConfig:
    name: str
    type: str  #: "tcp" or "http"
    interval_s: float = 5.0
    timeout_s: float = 2.0
    up: int = 2  #: consecutive successes that mark a node up
    down: int = 3  #: consecutive failures that mark a node down
    path: str = "/"
    status: int = 200
    body: str = ""  #: substring the HTTP body must contain ("" = any)


@dataclass
class PoolConfig:
    name: str
    method: str = "round_robin"
    persistence_s: float = 0.0  #: source-address persistence (0: off)
    monitor: str = ""
    maglev_size: int = 65537
    nodes: list[NodeConfig] = field(default_factory=list)


@dataclass
class VsConfig:
    vs_id: int
    address: str
    port: int
    protocol: int
    pool: str
    enabled: bool = True
    idle_timeout_s: int = 0  #: 0: the [timeouts] flow_idle_s


@dataclass
class Timeouts:
    flow_idle_s: float = 300.0  #: CS idle timer before it REAPs a flow
    reap_retry_s: float = 2.0  #: REAP retransmitted while unanswered
    csmb_retransmit_s: float = 0.5  #: first CSMB retransmission; doubles
    csmb_retransmit_max_s: float = 8.0
    hello_interval_ms: int = 1000


@dataclass
class CsSettings:
    cs_id: int = 1
    ssmb_addr: str = "127.0.0.1"  #: where DFSs send SSMB (the CS binds it)
    ssmb_port: int = 6350
    csmb_port: int = 0  #: local CSMB source port (0: any)
    epoch: int = 0
    control_socket: str = ""  #: unix socket of ``twinplane ctl`` ("" = off)
    metrics_port: int = 0  #: Prometheus endpoint (0 = off)
    metrics_addr: str = "127.0.0.1"


@dataclass
class Redundancy:
    """Redundant CSs (docs/redundancy.md).  The HELLO interval is ``[timeouts] hello_interval_ms``."""

    role: str = "active"  #: the role this CS starts in: "active" or "standby"
    #: the other CSs' SSMB addresses ("addr:port"), advertised as HELLO ssmb_standby_addr with REDUNDANT
    peers: tuple[str, ...] = ()
    #: a standby that never saw an active CS at a DFS takes over after this many HELLO intervals
    takeover_grace_hellos: int = 3


@dataclass
class CsConfig:
    path: str
    cs: CsSettings
    timeouts: Timeouts
    dfss: list[DfsConfig]
    pools: dict[str, PoolConfig]
    vss: dict[int, VsConfig]
    monitors: dict[str, MonitorConfig]
    redundancy: Redundancy = field(default_factory=Redundancy)


class _Reader:
    def __init__(self, path: str | Path):
        self.path = path

    def err(self, where: str, problem: str) -> ConfigError:
        return ConfigError(self.path, where, problem)

    def table(self, data: Any, where: str) -> dict:
        if not isinstance(data, dict):
            raise self.err(where, f"must be a table, not {data!r}")
        return data

    def tables(self, data: dict, key: str) -> list[dict]:
        value = data.get(key, [])
        if not isinstance(value, list):
            raise self.err(key, f"must be an array of tables ([[{key}]]), not {value!r}")
        return [self.table(v, f"{key}[{i}]") for i, v in enumerate(value)]

    def check_keys(self, data: dict, where: str, allowed: set[str]) -> None:
        for key in data:
            if key not in allowed:
                raise self.err(f"{where}.{key}" if where else key, "unknown field")

    def get(self, data: dict, where: str, key: str, kind: type | tuple, default: Any = ...) -> Any:
        if key not in data:
            if default is ...:
                raise self.err(f"{where}.{key}", "missing")
            return default
        value = data[key]
        if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else ()):
            raise self.err(f"{where}.{key}", f"must be {_kind_name(kind)}, not {value!r}")
        if not isinstance(value, kind):
            raise self.err(f"{where}.{key}", f"must be {_kind_name(kind)}, not {value!r}")
        return value

    def int_in(self, data: dict, where: str, key: str, lo: int, hi: int, default: Any = ...) -> int:
        value = self.get(data, where, key, int, default)
        if not lo <= value <= hi:
            raise self.err(f"{where}.{key}", f"must be in {lo}..{hi}, not {value!r}")
        return value

    def num(self, data: dict, where: str, key: str, default: Any = ..., *, positive: bool = True) -> float:
        value = float(self.get(data, where, key, (int, float), default))
        if positive and value <= 0 or value < 0:
            raise self.err(f"{where}.{key}", f"must be {'positive' if positive else 'non-negative'}, not {value!r}")
        return value

    def address(self, data: dict, where: str, key: str, default: Any = ...) -> str:
        value = self.get(data, where, key, str, default)
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise self.err(f"{where}.{key}", f"not an IP address: {value!r}") from None
        return value


def _kind_name(kind: type | tuple) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _parse_mac(text: str) -> bytes:
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(text)
    return bytes(int(p, 16) for p in parts)


def load_config(path: str | Path) -> CsConfig:
    """Read and check ``path``; raise :class:`ConfigError`."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as error:
        raise ConfigError(path, "(file)", f"cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(path, "(syntax)", str(error)) from None
    return parse_config(data, path)


def parse_config(data: dict, path: str | Path = "<config>") -> CsConfig:
    """Check an already parsed TOML document (see :func:`load_config`)."""
    r = _Reader(path)
    r.check_keys(data, "", {"cs", "timeouts", "dfs", "pool", "virtual_server", "monitor", "redundancy"})

    c = r.table(data.get("cs", {}), "cs")
    r.check_keys(c, "cs", {"cs_id", "ssmb_addr", "ssmb_port", "csmb_port", "epoch", "control_socket",
                           "metrics_port", "metrics_addr"})
    cs = CsSettings(
        cs_id=r.int_in(c, "cs", "cs_id", 0, 255, 1),
        ssmb_addr=r.address(c, "cs", "ssmb_addr", "127.0.0.1"),
        ssmb_port=r.int_in(c, "cs", "ssmb_port", 0, 65535, 6350),
        csmb_port=r.int_in(c, "cs", "csmb_port", 0, 65535, 0),
        epoch=r.int_in(c, "cs", "epoch", 0, 65535, 0),
        control_socket=r.get(c, "cs", "control_socket", str, ""),
        metrics_port=r.int_in(c, "cs", "metrics_port", 0, 65535, 0),
        metrics_addr=r.address(c, "cs", "metrics_addr", "127.0.0.1"),
    )

    t = r.table(data.get("timeouts", {}), "timeouts")
    r.check_keys(t, "timeouts", {"flow_idle_s", "reap_retry_s", "csmb_retransmit_s", "csmb_retransmit_max_s",
                                 "hello_interval_ms"})
    timeouts = Timeouts(
        flow_idle_s=r.num(t, "timeouts", "flow_idle_s", 300.0),
        reap_retry_s=r.num(t, "timeouts", "reap_retry_s", 2.0),
        csmb_retransmit_s=r.num(t, "timeouts", "csmb_retransmit_s", 0.5),
        csmb_retransmit_max_s=r.num(t, "timeouts", "csmb_retransmit_max_s", 8.0),
        hello_interval_ms=r.int_in(t, "timeouts", "hello_interval_ms", 10, 65535, 1000),
    )

    red = r.table(data.get("redundancy", {}), "redundancy")
    r.check_keys(red, "redundancy", {"role", "peers", "takeover_grace_hellos"})
    role = r.get(red, "redundancy", "role", str, "active")
    if role not in ("active", "standby"):
        raise r.err("redundancy.role", f"must be 'active' or 'standby', not {role!r}")
    peers = r.get(red, "redundancy", "peers", list, [])
    for i, peer in enumerate(peers):
        host, _, port = str(peer).rpartition(":")
        try:
            ipaddress.ip_address(host)
            if not 0 < int(port) < 65536:
                raise ValueError(port)
        except ValueError:
            raise r.err(f"redundancy.peers[{i}]", f"not an address:port: {peer!r}") from None
    redundancy = Redundancy(role=role, peers=tuple(peers),
                            takeover_grace_hellos=r.int_in(red, "redundancy", "takeover_grace_hellos", 1, 100, 3))

    dfss: list[DfsConfig] = []
    for i, d in enumerate(r.tables(data, "dfs")):
        w = f"dfs[{i}]"
        r.check_keys(d, w, {"name", "address", "ssmb_port", "csmb_port", "key"})
        key_text = r.get(d, w, "key", str)
        try:
            key = bytes.fromhex(key_text)
        except ValueError:
            key = b""
        if len(key) != 16 or len(key_text) != 32:
            raise r.err(f"{w}.key", f"must be 32 hex digits (16 bytes), not {key_text!r}")
        dfs = DfsConfig(
            name=r.get(d, w, "name", str, f"dfs{i}"),
            address=r.address(d, w, "address"),
            ssmb_port=r.int_in(d, w, "ssmb_port", 1, 65535, 6340),
            csmb_port=r.int_in(d, w, "csmb_port", 1, 65535, 6341),
            key=key,
        )
        if any(x.name == dfs.name for x in dfss):
            raise r.err(f"{w}.name", f"duplicate DFS name {dfs.name!r}")
        dfss.append(dfs)
    if not dfss:
        raise r.err("dfs", "at least one [[dfs]] is needed")

    monitors: dict[str, MonitorConfig] = {}
    for i, m in enumerate(r.tables(data, "monitor")):
        w = f"monitor[{i}]"
        r.check_keys(m, w, {"name", "type", "interval_s", "timeout_s", "up", "down", "path", "status", "body"})
        kind = r.get(m, w, "type", str)
        if kind not in ("tcp", "http"):
            raise r.err(f"{w}.type", f"must be 'tcp' or 'http', not {kind!r}")
        mon = MonitorConfig(
            name=r.get(m, w, "name", str),
            type=kind,
            interval_s=r.num(m, w, "interval_s", 5.0),
            timeout_s=r.num(m, w, "timeout_s", 2.0),
            up=r.int_in(m, w, "up", 1, 100, 2),
            down=r.int_in(m, w, "down", 1, 100, 3),
            path=r.get(m, w, "path", str, "/"),
            status=r.int_in(m, w, "status", 100, 599, 200),
            body=r.get(m, w, "body", str, ""),
        )
        if mon.name in monitors:
            raise r.err(f"{w}.name", f"duplicate monitor name {mon.name!r}")
        monitors[mon.name] = mon

    pools: dict[str, PoolConfig] = {}
    for i, p in enumerate(r.tables(data, "pool")):
        w = f"pool[{i}]"
        r.check_keys(p, w, {"name", "method", "persistence_s", "monitor", "maglev_size", "node"})
        pool = PoolConfig(
            name=r.get(p, w, "name", str),
            method=r.get(p, w, "method", str, "round_robin"),
            persistence_s=r.num(p, w, "persistence_s", 0.0, positive=False),
            monitor=r.get(p, w, "monitor", str, ""),
            maglev_size=r.int_in(p, w, "maglev_size", 3, 1 << 20, 65537),
        )
        if pool.method not in METHODS:
            raise r.err(f"{w}.method", f"unknown method {pool.method!r} (one of {', '.join(METHODS)})")
        if pool.monitor and pool.monitor not in monitors:
            raise r.err(f"{w}.monitor", f"no [[monitor]] named {pool.monitor!r}")
        if pool.method == "maglev" and not _is_prime(pool.maglev_size):
            raise r.err(f"{w}.maglev_size", f"must be prime, not {pool.maglev_size!r}")
        if pool.name in pools:
            raise r.err(f"{w}.name", f"duplicate pool name {pool.name!r}")
        seen = set()
        for j, n in enumerate(r.tables(p, "node")):
            nw = f"{w}.node[{j}]"
            r.check_keys(n, nw, {"address", "port", "mac", "egress_port", "weight", "connection_limit",
                                 "maintenance"})
            mac_text = r.get(n, nw, "mac", str)
            try:
                mac = _parse_mac(mac_text)
            except ValueError:
                raise r.err(f"{nw}.mac", f"not a MAC address (aa:bb:cc:dd:ee:ff): {mac_text!r}") from None
            node = NodeConfig(
                address=r.address(n, nw, "address"),
                port=r.int_in(n, nw, "port", 1, 65535),
                mac=mac,
                egress_port=r.int_in(n, nw, "egress_port", 0, 255, 0),
                weight=r.int_in(n, nw, "weight", 0, 65535, 1),
                connection_limit=r.int_in(n, nw, "connection_limit", 0, 1 << 32, 0),
                maintenance=r.get(n, nw, "maintenance", bool, False),
            )
            if (node.address, node.port) in seen:
                raise r.err(nw, f"duplicate node {node.address}:{node.port}")
            seen.add((node.address, node.port))
            pool.nodes.append(node)
        pools[pool.name] = pool

    vss: dict[int, VsConfig] = {}
    for i, v in enumerate(r.tables(data, "virtual_server")):
        w = f"virtual_server[{i}]"
        r.check_keys(v, w, {"id", "address", "port", "protocol", "class", "pool", "enabled", "idle_timeout_s"})
        cls = r.get(v, w, "class", str, "l4")
        if cls in _PROXY_CLASSES:
            raise r.err(f"{w}.class", f"proxy class {cls!r} is not supported yet (only 'l4')")
        if cls not in VS_CLASSES:
            raise r.err(f"{w}.class", f"unknown class {cls!r} (only 'l4')")
        proto = r.get(v, w, "protocol", str, "tcp")
        if proto not in _PROTOCOLS:
            raise r.err(f"{w}.protocol", f"must be 'tcp' or 'udp', not {proto!r}")
        vs = VsConfig(
            vs_id=r.int_in(v, w, "id", 1, 65535),
            address=r.address(v, w, "address"),
            port=r.int_in(v, w, "port", 1, 65535),
            protocol=_PROTOCOLS[proto],
            pool=r.get(v, w, "pool", str),
            enabled=r.get(v, w, "enabled", bool, True),
            idle_timeout_s=r.int_in(v, w, "idle_timeout_s", 0, 65535, 0),
        )
        if vs.pool not in pools:
            raise r.err(f"{w}.pool", f"no [[pool]] named {vs.pool!r}")
        if vs.vs_id in vss:
            raise r.err(f"{w}.id", f"duplicate virtual server id {vs.vs_id}")
        for other in vss.values():
            if (other.address, other.port, other.protocol) == (vs.address, vs.port, vs.protocol):
                raise r.err(w, f"same address, port and protocol as virtual server {other.vs_id}")
        vss[vs.vs_id] = vs

    return CsConfig(str(path), cs, timeouts, dfss, pools, vss, monitors, redundancy)


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True
