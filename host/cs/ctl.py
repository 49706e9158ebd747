"""``twinplane ctl``: talk to a running CS over its unix control socket.

One JSON request line, one JSON answer line.  Tables by default (rich),
JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys

__all__ = ["configure", "request", "run"]

DEFAULT_SOCKET = "/tmp/twinplane-cs.sock"
_COLUMNS = {
    "vs": ["id", "address", "port", "protocol", "pool", "enabled", "flows", "bytes_in", "bytes_out"],
    "nodes": ["id", "pool", "address", "port", "state", "weight", "connections", "limit", "flows",
              "response_time"],
    "flows": ["dfs", "client", "vs", "node", "protocol", "reaping"],
    "dfs": ["name", "state", "session", "version", "associations", "pending", "ignored"],
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["vs", "nodes", "flows", "dfs", "drain", "enable", "disable", "reset", "reload"],
                        help="show vs/nodes/flows/dfs; drain/enable/disable NODE; reset DFS (forget its "
                        "flows, both sides); reload the configuration")
    parser.add_argument("node", nargs="?", help="node id, address:port or pool/address:port (reset: DFS name)")
    parser.add_argument("--socket", help=f"control socket (default: from --config, else {DEFAULT_SOCKET})")
    parser.add_argument("--config", help="the daemon's configuration, to find its control socket")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--limit", type=int, default=100, help="flows to show")


def request(path: str, message: dict, timeout: float = 5.0) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(json.dumps(message).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def run(args: argparse.Namespace) -> int:
    path = args.socket
    if path is None and args.config:
        from .config import ConfigError, load_config

        try:
            path = load_config(args.config).cs.control_socket
        except ConfigError as error:
            print(f"twinplane ctl: {error}", file=sys.stderr)
            return 2
    path = path or DEFAULT_SOCKET
    message: dict = {"cmd": args.what, "limit": args.limit}
    if args.what in ("drain", "enable", "disable"):
        if not args.node:
            print(f"twinplane ctl: {args.what} needs a NODE", file=sys.stderr)
            return 2
        message["node"] = args.node
    if args.what == "reset":
        if not args.node:
            print("twinplane ctl: reset needs a DFS name", file=sys.stderr)
            return 2
        message["dfs"] = args.node
    try:
        answer = request(path, message)
    except OSError as error:
        print(f"twinplane ctl: cannot reach the CS at {path}: {error}", file=sys.stderr)
        return 1
    if not answer.get("ok"):
        print(f"twinplane ctl: {answer.get('error')}", file=sys.stderr)
        return 1
    result = answer["result"]
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    rows = result if isinstance(result, list) else [result]
    columns = _COLUMNS.get(args.what) or (list(rows[0]) if rows else [])
    table = Table(title=f"twinplane ctl {args.what}")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c, "")) for c in columns))
    Console().print(table)
    return 0
