"""``twinplane bench cs``: flow setups per second through one CS daemon
process over loopback UDP, against a stdlib-asyncio echo of the same size.

* setups_per_s: QUERY in, REPLY out, authenticated (SipHash tags, sessions,
  replay windows) and batched (16 QUERYs per datagram, replies batched by
  the daemon), through a CS daemon in its own process; the load generator
  (this process) plays the DFS: it runs the real handshake, then keeps a
  window of datagrams in flight and counts REPLY messages by walking their
  msg_length fields.
* echo_per_s: the same generator against a minimal asyncio UDP server in its
  own process that answers each datagram with REPLY-sized bytes in the same
  datagram sizes, without decoding (the cost of Python UDP I/O alone).
* ratio = setups_per_s / echo_per_s.
* setups_per_s_at_1m_flows: the same as setups_per_s with 1M flows
  pre-loaded in the CS's flow table.
* cpu_us_per_setup, echo_cpu_us_per_reply: CPU time (user + system, from
  /proc; None elsewhere) the daemon and the echo process spent per message
  during the timed run, and cpu_ratio = echo / daemon.  On a shared machine
  the per-second figures depend on who else runs; these do much less, so
  they tell what the daemon itself costs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import multiprocessing
import os
import socket
import struct
import time

import siphashc

from twinplane.protocol.codes import Bus
from twinplane.protocol.messages import FlowSignature, SsmbReply, Translation

__all__ = ["run_bench"]

KEY = bytes(range(16))
BATCH = 16  # QUERYs per datagram (16 x 88 bytes = 1408 <= MAX_DATAGRAM)
QUERY_SIZE = 88
WINDOW = 6  # datagrams in flight


def _config_dict(dfs_ssmb: int, dfs_csmb: int) -> dict:
    return {
        "cs": {"ssmb_addr": "127.0.0.1", "ssmb_port": 0},
        "timeouts": {"flow_idle_s": 3600, "hello_interval_ms": 60000, "csmb_retransmit_s": 1.0},
        "dfs": [{"name": "bench", "address": "127.0.0.1", "ssmb_port": dfs_ssmb, "csmb_port": dfs_csmb,
                 "key": KEY.hex()}],
        "pool": [{"name": "p", "method": "round_robin", "node": [
            {"address": f"10.0.0.{i}", "port": 8080, "mac": f"02:00:00:00:00:0{i}", "egress_port": 1}
            for i in range(1, 5)]}],
        "virtual_server": [{"id": 1, "address": "192.0.2.1", "port": 80, "pool": "p"}],
    }


def _daemon_process(config: dict, preload: int, ready, command) -> None:
    from .config import parse_config
    from .daemon import CsDaemon, run_loop

    async def main():
        import gc

        loop = asyncio.get_running_loop()
        daemon = CsDaemon(parse_config(config), health=False)
        await daemon.start()
        ready.put("started")
        if preload:
            # Only after the handshake: at association the CS asks the DFS
            # for its flows and forgets those the DFS does not report, which
            # the generator (no flow table) would do for every preloaded one.
            await loop.run_in_executor(None, command.get)
            daemon.core.preload_flows("bench", preload, now=loop.time())
            gc.freeze()
            ready.put(len(daemon.core.flows.flows))
        await asyncio.Event().wait()

    run_loop(main())  # the daemon's own event loop (uvloop when installed), as `twinplane cs` runs


def _echo_process(reply_sizes: list[int], ready) -> None:
    template = _reply_template()

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            n = len(data) // QUERY_SIZE
            sendto = self.transport.sendto
            while n > 0:
                k = min(n, 9)
                sendto(template[: k * len(template) // 9], addr)
                n -= k

    async def main():
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        ready.put(transport.get_extra_info("sockname")[1])
        await asyncio.Event().wait()

    asyncio.run(main())


def _reply_template() -> bytes:
    from twinplane.protocol.codec import Codec

    codec = Codec(KEY)
    msg = SsmbReply(flow=FlowSignature(), xlate=Translation())
    return codec.encode(msg) * 9


def _count_messages(data: bytes) -> int:
    n = offset = 0
    size = len(data)
    while offset + 6 <= size:
        length = (data[offset + 4] << 8) | data[offset + 5]
        if length == 0:
            break
        offset += length
        n += 1
    return n


class _Generator:
    """The DFS side: handshake through FakeDfs, then pre-built QUERYs."""

    def __init__(self):
        from .fakedfs import FakeDfs

        self.fake = FakeDfs(KEY)
        self.ssmb = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.csmb = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (self.ssmb, self.csmb):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.bind(("127.0.0.1", 0))
        self.cs_ssmb = None

    def ports(self) -> tuple[int, int]:
        return self.ssmb.getsockname()[1], self.csmb.getsockname()[1]

    def handshake(self, timeout: float = 20.0) -> None:
        self.csmb.settimeout(0.2)
        self.ssmb.settimeout(0.01)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data, addr = self.csmb.recvfrom(65536)
            except TimeoutError:
                data = None
            if data:
                for msg in self.fake.codec.iter_decode(Bus.CSMB, data):
                    if getattr(msg, "msg_type", None) == 1:
                        self.cs_ssmb = (str(msg.ssmb_addr), msg.ssmb_port)
                for bus, reply in self.fake.receive(Bus.CSMB, data):
                    (self.csmb.sendto(reply, addr) if bus is Bus.CSMB else self.ssmb.sendto(reply, self.cs_ssmb))
            try:
                data, _ = self.ssmb.recvfrom(65536)
                for _bus, reply in self.fake.receive(Bus.SSMB, data):
                    self.ssmb.sendto(reply, self.cs_ssmb)
            except TimeoutError:
                pass
            if self.fake.session and 1 in self.fake.vss and any(m.msg_type == 6 for m in self.fake.received
                                                                 if m.BUS is Bus.CSMB):
                return
        raise RuntimeError("bench: the CS did not associate")

    def build(self, count: int, base: int) -> list[bytes]:
        """``count`` QUERYs (unique flows) in datagrams of BATCH, with the
        session and increasing seq; built by patching one encoded template
        (source address, serial, seq) and re-tagging, to stay cheap."""
        fake = self.fake
        template = bytearray(fake.codec.encode(fake.query(FlowSignature(
            src_addr=ipaddress.ip_address("10.128.0.0"), dst_addr=ipaddress.ip_address("192.0.2.1"),
            src_port=40000, dst_port=80, protocol=6), 1)))
        template[16:20] = fake.session.to_bytes(4, "big")
        seq = fake.seq
        out, current = [], []
        prefix = bytes([Bus.SSMB])
        for i in range(count):
            seq += 1
            n = base + i
            struct.pack_into("!I", template, 12, n + 1)  # serial
            struct.pack_into("!I", template, 20, seq)
            struct.pack_into("!I", template, 24 + 12, 0x0A800000 + n)  # IPv4-mapped source address
            body = bytes(template[:-8])
            current.append(body + siphashc.siphash(KEY, prefix + body).to_bytes(8, "little"))
            if len(current) == BATCH:
                out.append(b"".join(current))
                current = []
        if current:
            out.append(b"".join(current))
        fake.seq = seq
        return out

    def drive(self, datagrams: list[bytes], target, expect: int) -> tuple[float, int]:
        """Send with WINDOW datagrams in flight; return (seconds, replies)."""
        sock = self.ssmb
        sock.settimeout(1.0)
        sent = got = 0
        outstanding = 0
        index = 0
        start = time.perf_counter()
        while index < len(datagrams) and index < WINDOW:
            sock.sendto(datagrams[index], target)
            outstanding += len(datagrams[index]) // QUERY_SIZE
            index += 1
        while got < expect:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break  # losses: stop counting here
            n = _count_messages(data)
            got += n
            outstanding -= n
            while index < len(datagrams) and outstanding <= (WINDOW - 1) * BATCH:
                sock.sendto(datagrams[index], target)
                outstanding += len(datagrams[index]) // QUERY_SIZE
                index += 1
        elapsed = time.perf_counter() - start
        sent = index
        del sent
        return elapsed, got

    def close(self):
        self.ssmb.close()
        self.csmb.close()


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_us_per(pid: int, before: float | None, count: int) -> float | None:
    after = _cpu_seconds(pid)
    if before is None or after is None or not count:
        return None
    return round((after - before) / count * 1e6, 2)


def _measure_cs(count: int, preload: int) -> tuple[float, int, float | None]:
    ctx = multiprocessing.get_context("spawn")
    gen = _Generator()
    ready, command = ctx.Queue(), ctx.Queue()
    proc = ctx.Process(target=_daemon_process, args=(_config_dict(*gen.ports()), preload, ready, command),
                       daemon=True)
    proc.start()
    try:
        ready.get(timeout=120)
        gen.handshake()
        if preload:
            command.put("preload")
            held = ready.get(timeout=600)
            if held < preload:
                raise RuntimeError(f"bench: the CS holds {held} flows after preloading {preload}")
        warm = gen.build(BATCH * 20, base=10_000_000)
        gen.drive(warm, gen.cs_ssmb, len(warm) * BATCH)
        datagrams = gen.build(count, base=0)
        cpu = _cpu_seconds(proc.pid)
        elapsed, got = gen.drive(datagrams, gen.cs_ssmb, count)
        return got / elapsed, count - got, _cpu_us_per(proc.pid, cpu, got)
    finally:
        proc.kill()
        proc.join()
        gen.close()


def _measure_echo(count: int) -> tuple[float, float | None]:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    proc = ctx.Process(target=_echo_process, args=([], ready), daemon=True)
    proc.start()
    gen = _Generator()
    try:
        port = ready.get(timeout=60)
        gen.fake.session = 1
        datagrams = gen.build(count, base=0)
        gen.drive(datagrams[:50], ("127.0.0.1", port), 50 * BATCH)
        cpu = _cpu_seconds(proc.pid)
        elapsed, got = gen.drive(datagrams, ("127.0.0.1", port), count)
        return got / elapsed, _cpu_us_per(proc.pid, cpu, got)
    finally:
        proc.kill()
        proc.join()
        gen.close()


def run_bench(quick: bool = False, count: int | None = None, preload: int | None = None) -> dict:
    """Figures for ``twinplane bench cs`` (see the module docstring)."""
    count = count or (4000 if quick else 40000)
    preload = preload if preload is not None else (100_000 if quick else 1_000_000)
    echo, echo_cpu = _measure_echo(count * 4)
    setups, lost, cpu = _measure_cs(count, 0)
    setups_1m, lost_1m, cpu_1m = _measure_cs(count, preload)
    return {
        "setups_per_s": round(setups),
        "echo_per_s": round(echo),
        "ratio": round(setups / echo, 3),
        "setups_per_s_at_1m_flows": round(setups_1m),
        "cpu_us_per_setup": cpu,
        "cpu_us_per_setup_at_1m_flows": cpu_1m,
        "echo_cpu_us_per_reply": echo_cpu,
        "cpu_ratio": round(echo_cpu / cpu, 3) if cpu and echo_cpu else None,
        "preloaded_flows": preload,
        "queries": count,
        "lost": lost + lost_1m,
        "batch": BATCH,
        "window_datagrams": WINDOW,
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run_bench(quick=True)))
