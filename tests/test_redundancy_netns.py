"""Failover with real kernel TCP (docs/redundancy.md): a client and a server in
network namespaces, each behind a TAP device wired to a port of a SoftDFS;
two `twinplane cs` processes (active + standby, HELLO 100 ms).  Long-lived
TCP connections exchange data every 50 ms while the active CS is killed
with SIGKILL, or while the DFS loses its whole state (the active CS
re-installs the flows); none may break, and new connections keep being
served.  Needs root (TAP, namespaces): skipped with the reason otherwise."""

import asyncio
import json
import os
import signal
import subprocess
import sys

import pytest

from twinplane.host.cs.failover import _free_port, _wait_for, to_toml
from twinplane.host.cs.redundancy_world import DFS_MAC, KEY, NODES, VIP, VPORT, cs_config_data
from twinplane.model.dfs import DfsConfig, ReferenceDFS
from twinplane.model.softdfs import SoftDFS
from twinplane.protocol.codes import Bus, Role
from twinplane.sim.bridge.tap import NamespaceTopology, TapInterface, need_root

SERVER = """
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(64)
def serve(c):
    with c:
        while (data := c.recv(4096)):
            c.sendall(data)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

CLIENT = """
import json, socket, sys, time
vip, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def ask(c, text):
    c.sendall(text.encode() + b"\\n")
    got = b""
    while not got.endswith(b"\\n"):
        chunk = c.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        got += chunk
    assert got.decode().strip() == text, got
long = [socket.create_connection((vip, port), timeout=5) for _ in range(4)]
for i, c in enumerate(long):
    ask(c, f"hello {i}")
print("ESTABLISHED", flush=True)
errors, exchanges, new_ok, new_failed = [], 0, 0, 0
end = time.monotonic() + seconds
n = 0
while time.monotonic() < end:
    for i, c in enumerate(long):
        try:
            ask(c, f"ping {i} {n}")
            exchanges += 1
        except Exception as e:
            errors.append(f"{i}: {e!r}")
    try:
        with socket.create_connection((vip, port), timeout=3) as c:
            ask(c, f"new {n}")
        new_ok += 1
    except Exception:
        new_failed += 1
    n += 1
    time.sleep(0.05)
print(json.dumps({"errors": errors, "exchanges": exchanges, "new_ok": new_ok, "new_failed": new_failed}))
"""


async def _run(tmp_path, event: str) -> dict:
    name, node_ip, node_mac = NODES[0]
    soft = SoftDFS(DfsConfig(key=KEY, dfs_mac=bytes.fromhex(DFS_MAC.replace(":", "")), ssmb_port=0, csmb_port=0))
    await soft.start()
    loop = asyncio.get_running_loop()
    tag = os.getpid() % 10000
    taps = [TapInterface(f"tpfo{tag}c"), TapInterface(f"tpfo{tag}s")]
    topo = NamespaceTopology(prefix="tpfo")
    procs: list = []
    pumps: list = []
    try:
        client_ns = topo.attach(taps[0].name, "10.0.0.2/24", mac="02:00:00:02:00:01")
        server_ns = topo.attach(taps[1].name, f"{node_ip}/24", mac=node_mac)
        subprocess.run(["ip", "-n", server_ns, "route", "add", "default", "via", "10.1.0.254"], check=True)
        for port, tap in enumerate(taps):
            loop.add_reader(tap.fileno(), lambda port=port, tap=tap: [soft.inject(port, f) for f in tap.read_all()])

            async def pump(port=port, tap=tap):
                while True:
                    tap.write(await soft.tx[port].get())

            pumps.append(asyncio.create_task(pump()))
        dfs = {Bus.SSMB: ("127.0.0.1", soft.ports[Bus.SSMB]), Bus.CSMB: ("127.0.0.1", soft.ports[Bus.CSMB])}
        paths = []
        for i, role in enumerate(("active", "standby")):
            data = cs_config_data(i, role, hello_ms=100, dfs=dfs, ssmb_addr="127.0.0.1", ssmb_port=_free_port())
            data["pool"][0]["node"] = data["pool"][0]["node"][:1]
            paths.append(tmp_path / f"cs{i}.toml")
            paths[-1].write_text(to_toml(data))
        server = topo.exec(server_ns, sys.executable, "-c", SERVER)
        procs.append(server)
        css = []
        for i in range(2):
            log = open(tmp_path / f"cs{i}.log", "wb")  # noqa: SIM115
            css.append(subprocess.Popen([sys.executable, "-m", "twinplane.cli", "cs", "--config", str(paths[i])],
                                        stdout=log, stderr=log))
            procs.append(css[-1])
            want = (lambda: [p.cs_id for p in soft.dfs.active_set()] == [1]) if i == 0 else (
                lambda: any(p.authenticated and p.role is Role.STANDBY for p in soft.dfs.peers.values()))
            assert await _wait_for(want, 20.0) is not None, f"CS {i} did not come up"
        client = topo.exec(client_ns, sys.executable, "-c", CLIENT, VIP, str(VPORT), "4.0",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(client)
        line = await loop.run_in_executor(None, client.stdout.readline)
        assert line.strip() == b"ESTABLISHED", (line, client.stderr.read() if client.poll() is not None else "")
        await asyncio.sleep(1.0)
        if event == "active_killed":
            os.kill(css[0].pid, signal.SIGKILL)
            took = await _wait_for(lambda: [p.cs_id for p in soft.dfs.active_set()] == [2], 10.0)
        else:  # the DFS loses every flow; the active CS re-installs them
            established = len(soft.dfs._unique_flows())
            soft.dfs = ReferenceDFS(soft.dfs.config)
            took = await _wait_for(lambda: len(soft.dfs._unique_flows()) >= established, 10.0)
        out, err = await loop.run_in_executor(None, client.communicate)
        assert client.returncode == 0, err.decode()
        result = json.loads(out.decode().strip().splitlines()[-1])
        result["recovered_ms"] = None if took is None else round(took * 1000, 1)
        return result
    finally:
        for task in pumps:
            task.cancel()
        for tap in taps:
            if tap.fileno() >= 0:
                loop.remove_reader(tap.fileno())
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        topo.close()
        for tap in taps:
            tap.close()
        await soft.close()


@pytest.mark.parametrize("event", ["active_killed", "dfs_reset"])
def test_kernel_tcp_survives(event, tmp_path):
    why = need_root()
    if why:
        pytest.skip(why)
    result = asyncio.run(_run(tmp_path, event))
    print(result)
    assert result["recovered_ms"] is not None and result["recovered_ms"] < 1000, result
    assert not result["errors"] and result["exchanges"] > 40, result
    assert result["new_ok"] > 10 and result["new_failed"] == 0, result
