"""Health monitors against real local TCP and HTTP servers going up and down."""

import asyncio
import socket

from twinplane.host.cs.config import parse_config
from twinplane.host.cs.core import ControlSegment
from twinplane.host.cs.health import HealthManager, http_probe, tcp_probe


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_core(kind, ports, body=""):
    return ControlSegment(parse_config({
        "dfs": [{"address": "127.0.0.1", "key": "00" * 16}],
        "monitor": [{"name": "m", "type": kind, "interval_s": 0.05, "timeout_s": 0.5, "up": 2, "down": 2,
                     "path": "/health", "status": 200, "body": body}],
        "pool": [{"name": "p", "method": "fastest", "monitor": "m", "node": [
            {"address": "127.0.0.1", "port": p, "mac": "02:00:00:00:00:01"} for p in ports]}],
    }))


async def http_server(port, status=200, body=b"all ok"):
    async def handle(reader, writer):
        request = await reader.readuntil(b"\r\n\r\n")
        code = status if request.startswith(b"GET /health ") else 404
        writer.write(b"HTTP/1.0 %d X\r\nContent-Length: %d\r\n\r\n" % (code, len(body)) + body)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


async def wait_for(pred, timeout=5.0):
    for _ in range(int(timeout / 0.02)):
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


def test_tcp_monitor_down_and_up():
    async def main():
        up_port, down_port = free_port(), free_port()
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", up_port)
        assert await tcp_probe("127.0.0.1", up_port, 1.0) is not None
        assert await tcp_probe("127.0.0.1", down_port, 1.0) is None
        core = make_core("tcp", [up_port, down_port])
        health = HealthManager(core)
        health.sync()
        a, b = core.pools["p"].nodes
        await wait_for(lambda: not b.up)
        assert a.up and a.response_time is not None and core.counters["health_changes"] == 1
        server.close()
        await server.wait_closed()
        await wait_for(lambda: not a.up)
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", down_port)
        await wait_for(lambda: b.up)
        assert not a.up and core.counters["health_changes"] == 3
        health.stop()
        server.close()

    asyncio.run(main())


def test_http_monitor_status_and_body():
    async def main():
        good, bad_status, bad_body = free_port(), free_port(), free_port()
        servers = [await http_server(good), await http_server(bad_status, status=503),
                   await http_server(bad_body, body=b"nope")]
        core = make_core("http", [good, bad_status, bad_body], body="ok")
        mon = core.config.monitors["m"]
        assert await http_probe("127.0.0.1", good, mon) is not None
        assert await http_probe("127.0.0.1", bad_status, mon) is None
        assert await http_probe("127.0.0.1", bad_body, mon) is None
        health = HealthManager(core)
        health.sync()
        n_good, n_status, n_body = core.pools["p"].nodes
        await wait_for(lambda: not n_status.up and not n_body.up)
        assert n_good.up
        # a down node gets no new flows
        import ipaddress

        for sport in range(10):
            error, node = core.pools["p"].select(ipaddress.ip_address("198.51.100.1"), sport,
                                                 ipaddress.ip_address("192.0.2.1"), 80, 6, 0.0)
            assert node is n_good
        servers[0].close()
        await servers[0].wait_closed()
        await wait_for(lambda: not n_good.up)
        error, node = core.pools["p"].select(ipaddress.ip_address("198.51.100.1"), 1,
                                             ipaddress.ip_address("192.0.2.1"), 80, 6, 0.0)
        assert node is None and error.name == "NOTAVAIL"
        health.stop()
        for s in servers[1:]:
            s.close()

    asyncio.run(main())
