"""``twinplane cs``: the CS daemon, a thin asyncio adapter over the sans-I/O
core (:mod:`twinplane.host.cs.core`).

Two UDP sockets (SSMB at cs.ssmb_addr:ssmb_port, where the DFSs send; CSMB
from any port), one timer (``call_at`` on the core's next deadline, re-armed
only when that deadline moves), and a flush of everything the core wants to
send once per loop iteration, so messages that become ready together leave
batched.  SIGHUP reloads the configuration (flows stay; a removed node
drains), SIGTERM/SIGINT stop.

The event loop is uvloop's when it is installed (a dependency; its UDP
transport reads every pending datagram per wake-up in C, so one flush
answers several; docs/cs.md, Benchmark) and asyncio's otherwise, or when
``TWINPLANE_LOOP=asyncio`` is set.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys

from twinplane.protocol.codes import Bus

__all__ = ["CsDaemon", "configure", "new_event_loop", "run", "run_loop"]

log = logging.getLogger("twinplane.cs")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop if it is installed and not refused by
    ``TWINPLANE_LOOP=asyncio``, else asyncio's default one."""
    if os.environ.get("TWINPLANE_LOOP", "") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_loop(main):
    """``asyncio.run(main)`` on :func:`new_event_loop`'s loop."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, daemon: CsDaemon, bus: Bus):
        self.daemon = daemon
        self.bus = bus

    def datagram_received(self, data: bytes, addr) -> None:
        daemon = self.daemon
        daemon.core.receive_datagram(self.bus, data, addr, daemon.loop.time())
        daemon.kick()

    def error_received(self, exc: Exception) -> None:
        self.daemon.core.counters["socket_errors"] += 1


class CsDaemon:
    """The CS behind real sockets.  ``config`` is a checked CsConfig."""

    def __init__(self, config, *, config_path: str | None = None, health: bool = True, **core_kwargs):
        from .core import ControlSegment

        self.config = config
        self.config_path = config_path
        self.core = ControlSegment(config, **core_kwargs)
        self.health_enabled = health
        self.health = None
        self.transports: dict[Bus, asyncio.DatagramTransport] = {}
        self._flush_pending = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None  #: the deadline self._timer is armed for
        self._control = None
        self.metrics = None

    async def start(self) -> None:
        # Flow records live long: move what exists out of the collector's
        # sight and collect young objects less often, so a table of a
        # million flows does not cost full collections on the decision path.
        gc.freeze()
        gc.set_threshold(50_000, 50, 1000)
        self.loop = asyncio.get_running_loop()
        cs = self.config.cs
        ssmb, _ = await self.loop.create_datagram_endpoint(lambda: _Udp(self, Bus.SSMB),
                                                           local_addr=(cs.ssmb_addr, cs.ssmb_port))
        csmb, _ = await self.loop.create_datagram_endpoint(lambda: _Udp(self, Bus.CSMB),
                                                           local_addr=(cs.ssmb_addr, cs.csmb_port))
        self.transports = {Bus.SSMB: ssmb, Bus.CSMB: csmb}
        cs.ssmb_port = ssmb.get_extra_info("sockname")[1]  # the port HELLO announces
        self.ssmb_port = cs.ssmb_port
        if self.health_enabled:
            from .health import HealthManager

            self.health = HealthManager(self.core)
            self.health.sync()
        if cs.control_socket:
            self._control = await asyncio.start_unix_server(self._on_control, path=cs.control_socket)
        if cs.metrics_port:
            from .metrics import serve_metrics

            self.metrics = serve_metrics(self.core, cs.metrics_port, cs.metrics_addr)
        log.info("CS %d: SSMB on %s:%d, %d DFS(s), %d virtual server(s)", cs.cs_id, cs.ssmb_addr, cs.ssmb_port,
                 len(self.config.dfss), len(self.config.vss))
        self.kick()

    def kick(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        core = self.core
        now = self.loop.time()
        timer = core.get_timer()
        if timer is not None and timer <= now:
            core.handle_timer(now)
            timer = core.get_timer()
        transports = self.transports
        for bus, addr, data in core.datagrams_to_send(now):
            transports[bus].sendto(data, addr)
        # Re-arm only when the deadline moved: most flushes (a batch of
        # decisions) leave it where it was.
        if timer != self._timer_at or self._timer is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._timer_at = timer
            if timer is not None:
                self._timer = self.loop.call_at(max(timer, now), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.core.handle_timer(self.loop.time())
        self._flush()

    def reload(self) -> bool:
        """Re-read the configuration file; a bad one is logged and ignored."""
        from .config import ConfigError, load_config

        try:
            config = load_config(self.config_path)
        except ConfigError as error:
            log.error("reload refused: %s", error)
            return False
        config.cs.ssmb_port = self.config.cs.ssmb_port
        self.config = config
        self.core.reconfigure(config, self.loop.time())
        if self.health is not None:
            self.health.sync()
        log.info("configuration reloaded from %s", self.config_path)
        self.kick()
        return True

    # -- control socket (twinplane ctl) ---------------------------------------------------------
    async def _on_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            try:
                answer = {"ok": True, "result": self.control(json.loads(line))}
            except (KeyError, ValueError) as error:
                answer = {"ok": False, "error": str(error.args[0] if error.args else error)}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        finally:
            writer.close()

    def control(self, request: dict):
        cmd = request.get("cmd")
        core = self.core
        if cmd == "vs":
            return core.view_vss()
        if cmd == "nodes":
            return core.view_nodes()
        if cmd == "flows":
            return core.view_flows(int(request.get("limit", 100)))
        if cmd == "dfs":
            return core.view_dfss()
        if cmd in ("drain", "enable", "disable"):
            node = core.set_node(str(request["node"]), cmd)
            self.kick()
            return {"node": node.name, "pool": node.pool, "state": node.state, "weight": node.weight}
        if cmd == "reset":
            name = str(request["dfs"])
            if name not in core.peers:
                raise KeyError(f"no DFS {name!r}")
            core.reset_dfs(name, self.loop.time())
            self.kick()
            return {"dfs": name, "flows": len(core.flows)}
        if cmd == "reload":
            return {"reloaded": self.reload()}
        raise ValueError(f"unknown command {cmd!r}")

    async def stop(self) -> None:
        if self.health is not None:
            self.health.stop()
        if self._timer is not None:
            self._timer.cancel()
        for t in self.transports.values():
            t.close()
        if self._control is not None:
            self._control.close()
            import os

            try:
                os.unlink(self.config.cs.control_socket)
            except OSError:
                pass
        if self.metrics is not None and isinstance(self.metrics[1], tuple):
            self.metrics[1][0].shutdown()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="TOML configuration (see examples/cs.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


async def _main(daemon: CsDaemon) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, daemon.reload)
    await daemon.start()
    await stop.wait()
    log.info("stopping")
    await daemon.stop()


def run(args: argparse.Namespace) -> int:
    from .config import ConfigError, load_config

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"twinplane cs: invalid configuration: {error}", file=sys.stderr)
        return 2
    daemon = CsDaemon(config, config_path=args.config)
    run_loop(_main(daemon))
    return 0
