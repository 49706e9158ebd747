"""``twinplane console``: configure a board over its UART before any CS
talks to it, with the register protocol of ``hdl/uart/regmap.py``.

Commands (one per line, interactive or with ``-c``):
``ip A.B.C.D``, ``mac XX:XX:XX:XX:XX:XX``, ``cs-ip A.B.C.D``,
``cs-mac XX:..``, ``cs-port N``, ``key <32 hex digits>``, ``show`` (the
configuration, key excepted, and the counters), ``read ADDR``,
``write ADDR VALUE``, ``quit``.

:class:`RegisterClient` works on any object with pyserial's ``read(n)``/
``write(b)``/``reset_input_buffer()``, so it is tested against the simulated
gateware through a pty.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import sys

from twinplane.hdl.uart.regmap import (
    ACK,
    CONFIG_FIELDS,
    COUNTER_BASE,
    MAGIC,
    MAGIC_ADDR,
    N_COUNTERS,
    NAK,
    field_words,
)

__all__ = ["COMMANDS", "COUNTER_NAMES", "ConsoleError", "RegisterClient", "configure", "execute",
           "format_field", "parse_field", "run"]

COMMANDS = {"ip": "own_ip", "mac": "own_mac", "cs-ip": "cs_ip", "cs-mac": "cs_mac", "cs-port": "cs_port",
            "key": "key"}
# Register COUNTER_BASE + i (see boards/top.py and the core's documentation).
COUNTER_NAMES = ("core0", "core1", "core2", "core3", "core4", "core5", "core6", "core7",
                 "port0_tx_frames", "port0_tx_bytes", "port1_tx_frames", "port1_tx_bytes",
                 "spare12", "spare13", "spare14", "spare15")


class ConsoleError(Exception):
    pass


def parse_field(field: str, text: str) -> int:
    """Text (dotted quad, colon MAC, decimal port, 32 hex digits) -> integer."""
    text = text.strip()
    try:
        if field in ("own_ip", "cs_ip"):
            return int(ipaddress.IPv4Address(text))
        if field in ("own_mac", "cs_mac"):
            parts = text.replace("-", ":").split(":")
            if len(parts) != 6 or not all(len(p) == 2 for p in parts):
                raise ValueError(text)
            return int("".join(parts), 16)
        if field == "cs_port":
            port = int(text, 0)
            if not 0 <= port < 65536:
                raise ValueError(text)
            return port
        if field == "key":
            if len(text) != 32:
                raise ValueError(text)
            return int(text, 16)
    except ValueError:
        raise ConsoleError(f"bad value for {field}: {text!r}") from None
    raise ConsoleError(f"unknown field {field!r}")


def format_field(field: str, value: int) -> str:
    if field in ("own_ip", "cs_ip"):
        return str(ipaddress.IPv4Address(value))
    if field in ("own_mac", "cs_mac"):
        return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big"))
    return str(value)


class RegisterClient:
    """Reads and writes the board's 32-bit registers over a serial port."""

    def __init__(self, port):
        self.port = port

    def _read_exact(self, n: int) -> bytes:
        data = self.port.read(n)
        if len(data) != n:
            raise ConsoleError(f"board did not answer ({len(data)} of {n} bytes)")
        return data

    def read(self, addr: int) -> int:
        self.port.write(bytes([ord("R"), addr]))
        return int.from_bytes(self._read_exact(4), "big")

    def write(self, addr: int, value: int) -> None:
        self.port.write(bytes([ord("W"), addr]) + value.to_bytes(4, "big"))
        answer = self._read_exact(1)[0]
        if answer == NAK:
            raise ConsoleError(f"register 0x{addr:02x} is read-only")
        if answer != ACK:
            raise ConsoleError(f"unexpected answer 0x{answer:02x} to a write")

    def check(self) -> None:
        magic = self.read(MAGIC_ADDR)
        if magic != MAGIC:
            raise ConsoleError(f"not a twinplane board (magic 0x{magic:08x})")

    def set_field(self, field: str, value: int) -> None:
        for addr, word in field_words(field, value):
            self.write(addr, word)

    def get_field(self, field: str) -> int:
        addr, bits, readable = CONFIG_FIELDS[field]
        if not readable:
            raise ConsoleError(f"{field} is write-only")
        value = 0
        for i in range((bits + 31) // 32):
            value = (value << 32) | self.read(addr + i)
        return value


def execute(client: RegisterClient, line: str) -> str:
    """Run one console command; return what to print."""
    words = shlex.split(line)
    if not words:
        return ""
    cmd, args = words[0], words[1:]
    if cmd in COMMANDS:
        if len(args) != 1:
            raise ConsoleError(f"usage: {cmd} VALUE")
        field = COMMANDS[cmd]
        client.set_field(field, parse_field(field, args[0]))
        return "ok"
    if cmd == "show":
        lines = [f"{name} {format_field(field, client.get_field(field))}"
                 for name, field in COMMANDS.items() if CONFIG_FIELDS[field][2]]
        lines += [f"{name} {client.read(COUNTER_BASE + i)}" for i, name in enumerate(COUNTER_NAMES[:N_COUNTERS])]
        return "\n".join(lines)
    if cmd == "read" and len(args) == 1:
        return f"0x{client.read(int(args[0], 0)):08x}"
    if cmd == "write" and len(args) == 2:
        client.write(int(args[0], 0), int(args[1], 0))
        return "ok"
    raise ConsoleError(f"unknown command {line!r}; commands: {', '.join(COMMANDS)}, show, read, write, quit")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True, help="serial device, e.g. /dev/ttyUSB0")
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("-c", "--command", action="append", help="run this command and exit (repeatable)")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for each answer")


def run(args: argparse.Namespace) -> int:
    import serial

    with serial.Serial(args.port, args.baud, timeout=args.timeout) as port:
        port.reset_input_buffer()
        client = RegisterClient(port)
        try:
            client.check()
        except ConsoleError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        lines = args.command if args.command else None
        status = 0
        while True:
            if lines is not None:
                if not lines:
                    break
                line = lines.pop(0)
            else:
                try:
                    line = input("twinplane> ")
                except EOFError:
                    break
            if line.strip() in ("quit", "exit"):
                break
            try:
                text = execute(client, line)
                if text:
                    print(text)
            except ConsoleError as exc:
                print(f"error: {exc}", file=sys.stderr)
                status = 1
        return status
