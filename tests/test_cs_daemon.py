"""The CS daemon over real loopback UDP against scripted DFSs, its control
socket (twinplane ctl), metrics endpoint, reload, and the command line."""

import asyncio
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
import uvloop

from twinplane.host.cs import ctl
from twinplane.host.cs.config import load_config
from twinplane.host.cs.daemon import CsDaemon, new_event_loop
from twinplane.host.cs.fakedfs import FakeDfs
from twinplane.protocol.codes import Bus, ErrorCode
from twinplane.protocol.messages import FlowSignature

KEY = bytes(range(16))
PY = sys.executable


class UdpDfs(asyncio.DatagramProtocol):
    """A FakeDfs behind two UDP sockets (SSMB and CSMB)."""

    def __init__(self, fake, bus):
        self.fake, self.bus = fake, bus
        self.peers = {}

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.peers[self.bus] = addr
        for bus, reply in self.fake.receive(self.bus, data):
            if bus is Bus.CSMB:
                self.transport.sendto(reply, addr)
            else:
                self.ssmb.transport.sendto(reply, self.fake.cs_ssmb)


async def start_dfs():
    loop = asyncio.get_running_loop()
    fake = FakeDfs(KEY)
    fake.cs_ssmb = None
    ssmb_t, ssmb = await loop.create_datagram_endpoint(lambda: UdpDfs(fake, Bus.SSMB), local_addr=("127.0.0.1", 0))
    csmb_t, csmb = await loop.create_datagram_endpoint(lambda: UdpDfs(fake, Bus.CSMB), local_addr=("127.0.0.1", 0))
    csmb.ssmb = ssmb
    ssmb.ssmb = ssmb
    orig = fake._csmb

    def csmb_hook(msg):  # learn where the CS wants SSMB (its HELLO)
        if msg.msg_type == 1:
            fake.cs_ssmb = (str(msg.ssmb_addr), msg.ssmb_port)
        return orig(msg)

    fake._csmb = csmb_hook
    return fake, ssmb, csmb


def write_config(tmp_path, dfss, extra="", pool_extra=""):
    text = f"""
[cs]
ssmb_addr = "127.0.0.1"
ssmb_port = 0
control_socket = "{tmp_path}/cs.sock"
{extra}
[timeouts]
hello_interval_ms = 200
flow_idle_s = 60
"""
    for i, (_, ssmb, csmb) in enumerate(dfss):
        text += f"""
[[dfs]]
name = "d{i}"
address = "127.0.0.1"
ssmb_port = {ssmb.transport.get_extra_info("sockname")[1]}
csmb_port = {csmb.transport.get_extra_info("sockname")[1]}
key = "{KEY.hex()}"
"""
    text += f"""
[[pool]]
name = "p"
method = "round_robin"
{pool_extra}
[[pool.node]]
address = "10.0.0.1"
port = 80
mac = "02:00:00:00:00:01"
[[pool.node]]
address = "10.0.0.2"
port = 80
mac = "02:00:00:00:00:02"
[[virtual_server]]
id = 1
address = "192.0.2.1"
port = 80
pool = "p"
"""
    path = tmp_path / "cs.toml"
    path.write_text(text)
    return path


async def wait_for(pred, timeout=5.0):
    for _ in range(int(timeout / 0.01)):
        if pred():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def flow(sport):
    return FlowSignature(src_addr=ipaddress.ip_address("198.51.100.1"), dst_addr=ipaddress.ip_address("192.0.2.1"),
                         src_port=sport, dst_port=80, protocol=6)


def free_tcp_port() -> int:
    # Another test run on the same machine must not collide with this one.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_event_loop_choice(monkeypatch):
    monkeypatch.delenv("TWINPLANE_LOOP", raising=False)
    loop = new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    monkeypatch.setenv("TWINPLANE_LOOP", "asyncio")
    loop = new_event_loop()
    try:
        assert isinstance(loop, asyncio.BaseEventLoop) and not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"])
def test_daemon_loopback_two_dfss_ctl_metrics_reload(tmp_path, loop_factory):
    metrics_port = free_tcp_port()

    async def main():
        dfss = [await start_dfs() for _ in range(2)]
        path = write_config(tmp_path, dfss, extra=f"metrics_port = {metrics_port}")
        daemon = CsDaemon(load_config(path), config_path=str(path))
        await daemon.start()
        try:
            await wait_for(lambda: all(p.state == "up" for p in daemon.core.peers.values()))
            for fake, ssmb, _ in dfss:
                assert set(fake.vss) == {1}
                ssmb.transport.sendto(fake.encode(*[fake.query(flow(s), 1) for s in range(4)]), fake.cs_ssmb)
            await wait_for(lambda: all(len(f.replies) == 4 for f, _, _ in dfss))
            for fake, _, _ in dfss:
                assert [r.xlate.node_id for r in fake.replies] == [1, 2, 1, 2] or \
                    sorted(r.xlate.node_id for r in fake.replies) == [1, 1, 2, 2]
                assert all(r.error == ErrorCode.NONE for r in fake.replies)
            sock = str(tmp_path / "cs.sock")
            nodes = (await asyncio.to_thread(ctl.request, sock, {"cmd": "nodes"}))["result"]
            assert [n["connections"] for n in nodes] == [4, 4]
            answer = await asyncio.to_thread(ctl.request, sock, {"cmd": "drain", "node": "p/10.0.0.1:80"})
            assert answer["result"]["state"] == "draining"
            bad = await asyncio.to_thread(ctl.request, sock, {"cmd": "drain", "node": "nope"})
            assert not bad["ok"] and "no node" in bad["error"]
            dfs_view = (await asyncio.to_thread(ctl.request, sock, {"cmd": "dfs"}))["result"]
            assert [d["state"] for d in dfs_view] == ["up", "up"]
            flows = (await asyncio.to_thread(ctl.request, sock, {"cmd": "flows"}))["result"]
            assert len(flows) == 8
            reset = await asyncio.to_thread(ctl.request, sock, {"cmd": "reset", "dfs": "d0"})
            assert reset["ok"] and reset["result"]["flows"] == 4
            await wait_for(lambda: dfss[0][0].resets == 1)
            text = await asyncio.to_thread(
                lambda: urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode())
            assert "twinplane_cs_queries_total 8.0" in text
            assert 'twinplane_cs_replies_total{error="none"} 8.0' in text
            assert 'twinplane_cs_node_connections{node="10.0.0.2:80",pool="p"} 2.0' in text
            assert "twinplane_cs_decision_seconds_count 8.0" in text
            # reload: a second VS appears on both DFSs, flows stay
            path.write_text(path.read_text() + '\n[[virtual_server]]\nid = 2\naddress = "192.0.2.2"\n'
                            'port = 443\npool = "p"\n')
            assert daemon.reload()
            await wait_for(lambda: all(set(f.vss) == {1, 2} for f, _, _ in dfss))
            assert len(daemon.core.flows) == 4
            path.write_text("[cs\n")
            assert not daemon.reload()  # a bad file is refused, the old one stays
        finally:
            await daemon.stop()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())


def test_cli_invalid_config_and_sigterm(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[dfs]]\naddress = "127.0.0.1"\nkey = "00"\n')
    proc = subprocess.run([PY, "-m", "twinplane.cli", "cs", "--config", str(bad)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert f"{bad}: dfs[0].key: must be 32 hex digits" in proc.stderr

    async def dfs_ports():
        return [await start_dfs()]

    loop = asyncio.new_event_loop()
    dfss = loop.run_until_complete(dfs_ports())
    path = write_config(tmp_path, dfss)
    proc = subprocess.Popen([PY, "-m", "twinplane.cli", "cs", "--config", str(path)], stderr=subprocess.PIPE,
                            text=True)
    try:
        fake = dfss[0][0]
        loop.run_until_complete(asyncio.sleep(0))
        for _ in range(300):
            loop.run_until_complete(asyncio.sleep(0.05))
            if fake.session and fake.vss:
                break
        assert fake.vss.keys() == {1}
        out = subprocess.run([PY, "-m", "twinplane.cli", "ctl", "--config", str(path), "--json", "vs"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)[0]["address"] == "192.0.2.1"
        table = subprocess.run([PY, "-m", "twinplane.cli", "ctl", "--config", str(path), "nodes"],
                               capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
        assert "10.0.0.2" in table.stdout and "state" in table.stdout
        os.kill(proc.pid, signal.SIGHUP)
        loop.run_until_complete(asyncio.sleep(0.3))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        err = proc.stderr.read()
        assert "configuration reloaded" in err and "stopping" in err
        assert not os.path.exists(tmp_path / "cs.sock")
    finally:
        if proc.poll() is None:
            proc.kill()
        loop.close()
