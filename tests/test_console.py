"""``twinplane console`` against the simulated register console: pyserial
opens the slave side of a pty, the testbench bridges the master side to the
gateware UART pins bit by bit (Amaranth simulator), and the results are
checked against a Python model of the register file."""

import os
import random
import select
import threading
import time

import pytest
import serial
from amaranth.sim import Simulator

from twinplane.hdl.uart.console import RegisterConsole
from twinplane.hdl.uart.regmap import CONFIG_FIELDS, COUNTER_BASE, MAGIC, N_COUNTERS
from twinplane.host.console import (
    COUNTER_NAMES,
    ConsoleError,
    RegisterClient,
    execute,
    format_field,
    parse_field,
)

DIVISOR = 6
SESSION_SECONDS = 120  # wall clock: the host side runs at the pace of a loaded machine


class UartBridge:
    """Byte-level bridge between a pty master fd and the DUT's UART pins."""

    def __init__(self, fd, divisor):
        self.fd = fd
        self.divisor = divisor
        self.to_dut: list[int] = []  # line levels still to drive, one per cycle
        self.rx_state = None         # (cycle count into frame, bits) while decoding
        self.rx_bits: list[int] = []
        self.count = 0

    def poll_host(self):
        try:
            data = os.read(self.fd, 256)
        except BlockingIOError:
            return
        for byte in data:
            bits = [0] + [(byte >> i) & 1 for i in range(8)] + [1]
            for b in bits:
                self.to_dut += [b] * self.divisor

    def idle(self):
        return not self.to_dut and self.rx_state is None

    def wait_for_host(self, seconds):
        # Block on the pty instead of spinning: the spinning simulator would
        # hold the GIL and starve the host thread it is waiting for.
        select.select([self.fd], [], [], seconds)

    def drive_level(self):
        return self.to_dut.pop(0) if self.to_dut else 1

    def sample(self, level):
        # Decode the DUT's TX line: find a start edge, sample mid-bit.
        if self.rx_state is None:
            if level == 0:
                self.rx_state = 0
                self.rx_bits = []
            return
        self.rx_state += 1
        if self.rx_state > self.divisor and self.rx_state % self.divisor == self.divisor // 2:
            self.rx_bits.append(level)
            if len(self.rx_bits) == 9:  # 8 data bits + stop
                assert self.rx_bits[8] == 1, "DUT sent a frame without a stop bit"
                byte = sum(b << i for i, b in enumerate(self.rx_bits[:8]))
                os.write(self.fd, bytes([byte]))
                self.rx_state = None


def run_session(script, *, config=None, counters=None, pre_bytes=b"", by_path=False):
    """Run ``script(client) -> result`` (or ``script(tty_path)`` with ``by_path``)
    in a thread against the simulated board.
    Returns (result, final config field values read from the gateware)."""
    dut = RegisterConsole(DIVISOR, config)
    master, slave = os.openpty()
    os.set_blocking(master, False)
    port = None if by_path else serial.Serial(os.ttyname(slave), 115200, timeout=30)
    outcome = {}

    def host():
        try:
            if by_path:
                outcome["result"] = script(os.ttyname(slave))
                return
            if pre_bytes:
                port.write(pre_bytes)
            outcome["result"] = script(RegisterClient(port))
        except BaseException as exc:  # re-raised on the test's thread
            outcome["error"] = exc
        finally:
            outcome["done"] = True

    bridge = UartBridge(master, DIVISOR)

    async def testbench(ctx):
        for i, value in enumerate(counters or []):
            ctx.set(dut.counters[i], value)
        thread = threading.Thread(target=host, daemon=True)
        thread.start()
        cycles = 0
        deadline = time.monotonic() + SESSION_SECONDS
        while not outcome.get("done"):
            if cycles % DIVISOR == 0:
                if cycles % 256 == 0 and bridge.idle():
                    bridge.wait_for_host(0.002)
                bridge.poll_host()
            ctx.set(dut.rx, bridge.drive_level())
            await ctx.tick()
            bridge.sample(ctx.get(dut.tx))
            cycles += 1
            if cycles % 4096 == 0:
                assert time.monotonic() < deadline, f"session did not finish in {SESSION_SECONDS} s"
        thread.join()
        outcome["config"] = {field: ctx.get(getattr(dut.config, field)) for field in CONFIG_FIELDS}

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    try:
        sim.run()
    finally:
        if port is not None:
            port.close()
        os.close(master)
        os.close(slave)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"], outcome["config"]


def random_config(rng):
    return {field: rng.getrandbits(bits) for field, (_, bits, _) in CONFIG_FIELDS.items()}


def test_show_reports_build_time_config_and_counters():
    rng = random.Random(1)
    config = random_config(rng)
    counters = [rng.getrandbits(32) for _ in range(N_COUNTERS)]

    def script(client):
        client.check()
        return execute(client, "show")

    text, live = run_session(script, config=config, counters=counters)
    lines = dict(line.split(" ", 1) for line in text.splitlines())
    for cmd, field in (("ip", "own_ip"), ("mac", "own_mac"), ("cs-ip", "cs_ip"), ("cs-mac", "cs_mac"),
                       ("cs-port", "cs_port")):
        assert lines[cmd] == format_field(field, config[field])
    assert "key" not in lines  # write-only
    for i, name in enumerate(COUNTER_NAMES):
        assert int(lines[name]) == counters[i]
    assert live == config


def test_commands_change_the_live_config():
    rng = random.Random(2)
    start = random_config(rng)
    ip, mac, key = "10.100.0.1", "02:54:57:50:00:01", f"{rng.getrandbits(128):032x}"
    cs_ip, cs_mac, cs_port = "10.100.0.254", "02:00:00:00:00:fe", "4791"

    def script(client):
        out = [execute(client, line) for line in (
            f"ip {ip}", f"mac {mac}", f"cs-ip {cs_ip}", f"cs-mac {cs_mac}", f"cs-port {cs_port}", f"key {key}")]
        with pytest.raises(ConsoleError, match="read-only"):
            client.write(COUNTER_BASE, 5)
        out.append(execute(client, "show"))
        out.append(f"{client.read(0):08x}")
        return out

    out, live = run_session(script, config=start)
    assert out[:6] == ["ok"] * 6
    assert out[-1] == f"{MAGIC:08x}"
    model = dict(start, own_ip=parse_field("own_ip", ip), own_mac=parse_field("own_mac", mac),
                 cs_ip=parse_field("cs_ip", cs_ip), cs_mac=parse_field("cs_mac", cs_mac),
                 cs_port=int(cs_port), key=int(key, 16))
    assert live == model
    assert f"ip {ip}" in out[6].splitlines() and f"mac {mac}" in out[6].splitlines()


def test_resync_after_an_incomplete_frame():
    # A write cut short ('W', address, 2 of 4 bytes): the console forgets it
    # after RESYNC_BITS bit-times, then answers normally.  Without the
    # resync the read's bytes would complete the write and the answer would
    # be one ACK byte, not the magic.

    def script(client):
        time.sleep(0.5)  # let the partial frame go out and the idle timer run
        return client.read(0)

    # The partial frame is sent before the script; the simulated idle time
    # passes while the host sleeps (the testbench keeps ticking).
    magic, _ = run_session(script, pre_bytes=b"W\x01\xaa\xbb")
    assert magic == MAGIC


def test_cli_console_subcommand(capsys):
    # The whole ``twinplane console`` command, opening the pty itself.
    from twinplane.cli import main

    def script(path):
        return main(["console", "--port", path, "--timeout", "30", "-c", "cs-port 4791", "-c", "show",
                     "-c", "bogus"])

    status, live = run_session(script, config={"cs_port": 1}, by_path=True)
    out, err = capsys.readouterr()
    assert status == 1 and "unknown command 'bogus'" in err  # the bad command is reported
    assert "cs-port 4791" in out.splitlines() and live["cs_port"] == 4791


def test_parse_field_errors():
    with pytest.raises(ConsoleError, match="bad value for own_ip: '10.0.0.256'"):
        parse_field("own_ip", "10.0.0.256")
    with pytest.raises(ConsoleError, match="bad value for key"):
        parse_field("key", "abc")
    assert parse_field("own_mac", "02:00:00:00:00:01") == 0x020000000001
