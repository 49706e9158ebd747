"""The programs that run inside the network namespaces of the end-to-end
world (sim/engine/netns.py): an HTTP server per node and one HTTP client
process per client namespace, both on the kernel's own TCP.

Ref: RFC 9112 (HTTP/1.1: Content-Length framing, ``Connection: close``);
Linux ``/proc/net/snmp`` and ``/proc/net/netstat`` (per network namespace:
``Tcp: RetransSegs InCsumErrors``, ``TcpExt: TCPSynRetrans``).

Each response body is the node's name on a line, then ``size`` bytes that
both sides derive from the request path (SHA-256 of the path, repeated), so
the client checks every byte that crossed the simulated DFS twice (request
in, answer out, each rewritten by the gateware and checksum-checked by the
receiving kernel).

The client reads one JSON command per line on stdin and answers one JSON
line on stdout:

* ``{"op": "get", "n": N, "concurrency": C, "size": S, "port": P, "tag": T}``:
  N connections (at most C at once), each one request with ``Connection:
  close``; answers ``{"results": [{"node", "error", "ms"}...], "snmp": {...}}``;
* ``{"op": "open", "n": K, "port": P}``: K keep-alive connections, one
  request each, kept; answers the nodes;
* ``{"op": "ping", "timeout": T}``: one more request on every kept connection
  (each may take T seconds);
* ``{"op": "close"}`` / ``{"op": "abort"}``: close the kept connections with a
  FIN / an RST;
* ``{"op": "snmp"}``: the namespace's TCP counters.
"""

from __future__ import annotations

__all__ = ["CLIENT", "SERVER"]

_BODY = '''
import hashlib
def body(path, size):
    seed = hashlib.sha256(path.encode()).digest()
    return (seed * (size // 32 + 1))[:size]
def size_of(path):
    for part in path.partition("?")[2].split("&"):
        if part.startswith("size="):
            return int(part[5:])
    return 0
'''

SERVER = _BODY + '''
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
name = sys.argv[1]
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        payload = f"{name}\\n".encode() + body(self.path, size_of(self.path))
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Node", name)
        self.end_headers()
        self.wfile.write(payload)
    def log_message(self, *args):
        pass
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.allow_reuse_address = True
server = ThreadingHTTPServer(("0.0.0.0", int(sys.argv[2])), Handler)
print("READY", flush=True)
server.serve_forever()
'''

CLIENT = _BODY + '''
import http.client, json, socket, struct, sys, time
from concurrent.futures import ThreadPoolExecutor
vip = sys.argv[1]
def snmp():
    out = {}
    for path in ("/proc/net/snmp", "/proc/net/netstat"):
        lines = open(path).read().split("\\n")
        for head, values in zip(lines[0::2], lines[1::2]):
            if not head:
                continue
            proto = head.split(":")[0]
            for k, v in zip(head.split()[1:], values.split()[1:]):
                if (proto, k) in (("Tcp", "RetransSegs"), ("Tcp", "InCsumErrors"), ("TcpExt", "TCPSynRetrans"),
                                  ("Ip", "InHdrErrors"), ("Tcp", "InErrs")):
                    out[f"{proto}.{k}"] = int(v)
    return out
def ask(conn, path, close):
    conn.request("GET", path, headers={"Connection": "close"} if close else {})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise ValueError(f"status {r.status}")
    name, _, rest = data.partition(b"\\n")
    if rest != body(path, size_of(path)):
        raise ValueError(f"body of {len(rest)} bytes differs from the {size_of(path)} expected")
    return name.decode()
def one(job):
    port, path, timeout = job
    t = time.monotonic()
    conn = http.client.HTTPConnection(vip, port, timeout=timeout)
    try:
        node, error = ask(conn, path, True), None
    except Exception as e:
        node, error = None, repr(e)
    finally:
        conn.close()
    return {"node": node, "error": error, "ms": round((time.monotonic() - t) * 1000)}
held = []
for line in sys.stdin:
    cmd = json.loads(line)
    op = cmd["op"]
    port = cmd.get("port", 80)
    timeout = cmd.get("timeout", 30)
    if op == "get":
        jobs = [(port, f"/{cmd.get('tag', 'get')}/{i}?size={cmd.get('size', 200)}", timeout) for i in range(cmd["n"])]
        with ThreadPoolExecutor(cmd.get("concurrency", 1)) as pool:
            answer = {"results": list(pool.map(one, jobs))}
    elif op == "open":
        nodes = []
        for i in range(cmd["n"]):
            conn = http.client.HTTPConnection(vip, port, timeout=timeout)
            try:
                nodes.append(ask(conn, f"/open/{len(held)}?size={cmd.get('size', 100)}", False))
                held.append(conn)
            except Exception as e:
                nodes.append(repr(e))
        answer = {"nodes": nodes}
    elif op == "ping":
        nodes = []
        for i, conn in enumerate(held):
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            try:
                nodes.append(ask(conn, f"/ping/{i}/{time.monotonic_ns()}?size={cmd.get('size', 300)}", False))
            except Exception as e:
                nodes.append(repr(e))
        answer = {"nodes": nodes}
    elif op in ("close", "abort"):
        for conn in held:
            if op == "abort" and conn.sock is not None:
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        answer = {"closed": len(held)}
        held = []
    else:
        answer = {}
    answer["snmp"] = snmp()
    print(json.dumps(answer), flush=True)
'''
