"""The compiled DFS (CXXRTL, sim/engine/) against the reference model: a
scripted CS brings it up through frames on the internal port, then two
flows (SYN, QUERY, REPLY, SYN-ACK, data, FIN both ways) go through both the
engine and ``ReferenceDFS`` with the same translations, and every data frame
that leaves the engine must be byte for byte the model's.

The first test to build the engine pays the cold compile (about a minute or
more on a loaded machine, see docs/simulation.md); later ones reuse it."""

from __future__ import annotations

import ipaddress

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from twinplane.model.dfs import DfsConfig, ReferenceDFS
from twinplane.model.scripted_cs import DfsHarness, ScriptedCS
from twinplane.protocol.codes import CSMB_UDP_PORT, SSMB_UDP_PORT, Bus, ErrorCode, Flag
from twinplane.protocol.messages import (
    AddVs,
    CsmbHello,
    SsmbDelete,
    SsmbQuery,
    SsmbReply,
    Translation,
    VirtualServer,
)
from twinplane.sim.engine import CompiledDFS, EngineConfig

KEY = bytes(range(16))
DFS_MAC, DFS_IP = "02:00:00:00:d0:f5", "10.100.0.1"
CS_MAC, CS_IP, CS_PORT = "02:00:00:00:c5:01", "10.100.0.2", 41000
NODE_MAC, NODE_IP = "02:00:00:00:01:aa", "10.1.0.1"
VIP = "10.0.0.100"


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


class EngineCS:
    """A scripted CS speaking to the engine's internal port (1) through frames."""

    def __init__(self, dfs: CompiledDFS):
        self.dfs = dfs
        self.cs = ScriptedCS(KEY, csmb_addr=(CS_IP, CS_PORT), ssmb_addr=(CS_IP, CS_PORT), hello_interval_ms=60000)
        self.out: dict[int, list[bytes]] = {0: [], 1: []}

    def send(self, bus: Bus, data: bytes) -> None:
        dport = CSMB_UDP_PORT if bus is Bus.CSMB else SSMB_UDP_PORT
        self.dfs.inject(1, bytes(Ether(src=CS_MAC, dst=DFS_MAC) / IP(src=CS_IP, dst=DFS_IP)
                                 / UDP(sport=CS_PORT, dport=dport) / data))

    def wait(self, port: int, limit: int = 100_000) -> bytes:
        start = self.dfs.cycle
        while not self.out[port] and self.dfs.cycle - start < limit:
            for tx in self.dfs.run(limit, until_frame=True):
                self.out[tx.port].append(tx.frame)
        assert self.out[port], f"no frame left port {port} in {limit} cycles"
        return self.out[port].pop(0)

    def bring_up(self) -> VirtualServer:
        """HELLO, challenge and one virtual server (VIP:80/TCP), through frames."""
        self.send(Bus.CSMB, self.cs.hello())
        (hello,) = self.messages()
        assert isinstance(hello, CsmbHello) and hello.error is ErrorCode.NONE
        self.send(Bus.CSMB, self.cs.auth_challenge())
        response, *_ = self.messages()
        self.cs.accept_auth(response)  # raises unless the gateware's proof verifies
        vs = VirtualServer(vs_id=1, protocol=6, virt_addr=ipaddress.ip_address(VIP), virt_port=80)
        self.send(Bus.CSMB, self.cs.encode(AddVs(vs=vs)))
        msgs = self.messages()
        while not hasattr(msgs[-1], "error") or type(msgs[-1]).__name__ == "SsmbReset":
            msgs = self.messages()  # a RESET on the SSMB may come first
        assert msgs[-1].error is ErrorCode.NONE
        return vs

    def messages(self) -> list:
        packet = Ether(self.wait(1))
        assert packet.dst == CS_MAC and packet[IP].dst == CS_IP and packet[UDP].dport == CS_PORT
        bus = Bus.CSMB if packet[UDP].sport == CSMB_UDP_PORT else Bus.SSMB
        return self.cs.decode(bus, bytes(packet[UDP].payload))


@pytest.fixture(scope="module")
def dfs():
    engine = CompiledDFS(EngineConfig())
    engine.configure(key=KEY, own_mac=DFS_MAC, own_ip=DFS_IP)
    yield engine
    engine.close()


def test_config_checks():
    with pytest.raises(ValueError, match="buckets must be a power of two, not 24"):
        EngineConfig(buckets=24)
    with pytest.raises(ValueError, match="opt must be -O0, -O1 or -O2, not '-O3'"):
        EngineConfig(opt="-O3")
    with pytest.raises(ValueError, match="ports must be 1 or 2, not 3"):
        EngineConfig(ports=3)


def test_flows_match_the_reference_model(dfs):
    e = EngineCS(dfs)
    # ARP for the DFS's own address
    dfs.inject(1, bytes(Ether(src=CS_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc=CS_IP, pdst=DFS_IP,
                                                                        hwsrc=CS_MAC)))
    arp = Ether(e.wait(1))
    assert arp[ARP].op == 2 and arp[ARP].hwsrc == DFS_MAC and arp[ARP].psrc == DFS_IP

    vs = e.bring_up()

    # the model, brought up the same way
    cs = ScriptedCS(KEY, csmb_addr=(CS_IP, CS_PORT), ssmb_addr=(CS_IP, CS_PORT), hello_interval_ms=60000)
    h = DfsHarness(ReferenceDFS(DfsConfig(key=KEY, dfs_mac=mac(DFS_MAC), dfs_addr=DFS_IP)), cs)
    h.associate()
    h.send(cs, Bus.CSMB, cs.encode(AddVs(vs=vs)))

    def both(port: int, frame: bytes, *, answer_port: int | None) -> None:
        """The frame into both; the engine's output must equal the model's."""
        dfs.inject(port, frame)
        expected = h.frame(port, frame)
        if answer_port is None:
            return
        assert [p for p, _ in expected] == [answer_port]
        got = e.wait(answer_port)
        assert got == expected[0][1], f"engine {Ether(got)!r}\nmodel  {Ether(expected[0][1])!r}"

    for n, (client, sport) in enumerate((("10.2.0.1", 40001), ("10.2.7.9", 51234))):
        client_mac = f"02:00:00:00:02:{n:02x}"

        def from_client(flags, payload=b"", seq=1000, ack=0, client=client, sport=sport, client_mac=client_mac):
            return bytes(Ether(src=client_mac, dst=DFS_MAC) / IP(src=client, dst=VIP, id=7, ttl=60)
                         / TCP(sport=sport, dport=80, flags=flags, seq=seq, ack=ack, window=1000)
                         / (Raw(payload) if payload else b""))

        def from_node(flags, payload=b"", seq=5000, ack=1001, client=client, sport=sport, n=n):
            return bytes(Ether(src=NODE_MAC, dst=DFS_MAC) / IP(src=NODE_IP, dst=client, id=9, ttl=64)
                         / TCP(sport=8080 + n, dport=sport, flags=flags, seq=seq, ack=ack, window=2000)
                         / (Raw(payload) if payload else b""))

        syn = from_client("S")
        both(0, syn, answer_port=None)
        (query,) = e.messages()
        (model_query,) = h.flush()
        assert isinstance(query, SsmbQuery) and isinstance(model_query, SsmbQuery)
        assert (query.flow, query.client_mac, query.vs_id) == (model_query.flow, model_query.client_mac, 1)

        def reply_for(q, n=n):
            xlate = Translation(node_addr=ipaddress.ip_address(NODE_IP), node_port=8080 + n, egress_port=1,
                                client_port=0, node_mac=mac(NODE_MAC), client_mac=q.client_mac, vs_id=1,
                                node_id=2 + n)
            return SsmbReply(serial=q.serial, flags=Flag.TRANSLATE_ADDR | Flag.TRANSLATE_PORT, flow=q.flow,
                             xlate=xlate)

        e.send(Bus.SSMB, e.cs.encode(reply_for(query)))
        h.send(cs, Bus.SSMB, cs.encode(reply_for(model_query)))
        (released,) = h.frames
        h.frames = []
        assert e.wait(1) == released[1], "the released SYN differs from the model's"
        both(1, from_node("SA"), answer_port=0)
        both(0, from_client("A", seq=1001, ack=5001), answer_port=1)
        both(0, from_client("PA", b"GET / HTTP/1.0\r\n\r\n", seq=1001, ack=5001), answer_port=1)
        both(1, from_node("PA", b"HTTP/1.0 200 OK\r\n\r\nhello", seq=5001, ack=1019), answer_port=0)
        both(0, from_client("FA", seq=1019, ack=5025), answer_port=1)
        both(1, from_node("FA", seq=5025, ack=1020), answer_port=0)
        delete = [m for m in e.messages() if isinstance(m, SsmbDelete)]
        assert delete and delete[0].serial == query.serial
        assert (delete[0].stats.packets_in, delete[0].stats.packets_out) == (4, 3)
    counters = dfs.counters()
    assert counters["flows_installed"] == 2 and counters["msg_rx_bad_tag"] == 0


def test_overlapping_setups_outlast_no_timeout():
    # Six new flows at once, each QUERY answered the moment it leaves: the
    # gateware's own work (QUERY out, REPLY in, two inserts, release) runs
    # one flow after the other, ~380 clocks each, so the last SYNs leave
    # well over one declared second (clk_hz cycles) after they came in.  The build's miss
    # timeout must outlast that, or the flow is installed and its SYN lost
    # (the gateware demo's lost connections, found 2026-11-27).
    config = EngineConfig()
    with CompiledDFS(config) as engine:
        engine.configure(key=KEY, own_mac=DFS_MAC, own_ip=DFS_IP)
        e = EngineCS(engine)
        e.bring_up()
        clients = [(f"10.2.0.{10 + i}", 41000 + i) for i in range(6)]
        start = engine.cycle
        for i, (client, sport) in enumerate(clients):
            engine.inject(0, bytes(Ether(src=f"02:00:00:00:02:{i:02x}", dst=DFS_MAC) / IP(src=client, dst=VIP)
                                   / TCP(sport=sport, dport=80, flags="S", seq=1000 + i)))
        answered, released = 0, []
        while len(released) < len(clients):
            packet = Ether(e.wait(1, limit=20_000))
            if UDP in packet:
                for query in e.cs.decode(Bus.SSMB, bytes(packet[UDP].payload)):
                    assert isinstance(query, SsmbQuery)
                    xlate = Translation(node_addr=ipaddress.ip_address(NODE_IP), node_port=8080, egress_port=1,
                                        client_port=0, node_mac=mac(NODE_MAC), client_mac=query.client_mac,
                                        vs_id=1, node_id=1)
                    e.send(Bus.SSMB, e.cs.encode(SsmbReply(serial=query.serial, flow=query.flow, xlate=xlate,
                                                           flags=Flag.TRANSLATE_ADDR | Flag.TRANSLATE_PORT)))
                    answered += 1
            else:
                assert packet[IP].dst == NODE_IP and packet[TCP].flags == "S"
                released.append((packet[IP].src, packet[TCP].sport))
        assert answered == 6 and sorted(released) == clients
        assert engine.cycle - start > 1.5 * config.clk_hz, "the setups no longer outlast a declared second: moot"
        counters = engine.counters()
        assert counters["miss_timeouts"] == 0 and counters["miss_frames_dropped"] == 0
        assert counters["flows_installed"] == 6


def _sim_args(tmp_path, **overrides):
    from twinplane.cli import build_parser

    args = build_parser().parse_args(["sim", "--ssmb-port", "0", "--csmb-port", "0", "--dfs-ip", DFS_IP,
                                      "--dfs-mac", DFS_MAC, "--key", KEY.hex()])
    for name, value in overrides.items():
        setattr(args, name, value)
    return args


def test_sim_command_pcap_in_to_pcap_out(tmp_path, capsys):
    from twinplane.sim.bridge.pcap import PcapRecorder, read_frames
    from twinplane.sim.engine import cli

    # ARP requests for the DFS's address into the internal port, one for a stranger too
    requests = [bytes(Ether(src=f"02:00:00:00:09:{i:02x}", dst="ff:ff:ff:ff:ff:ff")
                      / ARP(op=1, psrc=f"10.100.0.{10 + i}", pdst=DFS_IP if i != 2 else "10.100.0.99",
                            hwsrc=f"02:00:00:00:09:{i:02x}")) for i in range(4)]
    recorder = PcapRecorder(tmp_path / "in", ports=2, directions=("rx",))
    for i, frame in enumerate(requests):
        recorder.record(1, "rx", frame, i * 1000)
    recorder.close()
    args = _sim_args(tmp_path, pcap_in=str(tmp_path / "in"), pcap_out=str(tmp_path / "out"), drain=3000)
    assert cli.run(args) == 0
    assert read_frames(tmp_path / "out" / "port1_rx.pcap") == requests
    answers = [Ether(f) for f in read_frames(tmp_path / "out" / "port1_tx.pcap")]
    assert [(a[ARP].op, a[ARP].psrc, a[ARP].pdst, a.dst) for a in answers] == [
        (2, DFS_IP, f"10.100.0.{10 + i}", f"02:00:00:00:09:{i:02x}") for i in (0, 1, 3)]
    assert read_frames(tmp_path / "out" / "port0_tx.pcap") == []
    assert "cycles; frames in [0, 4], out [0, 3]" in capsys.readouterr().err


def test_sim_command_caps_its_speed_unless_only_pcap_files_feed_it(tmp_path):
    from twinplane.sim.engine import cli

    for overrides, rate in (({}, 2 * 2000), ({"speed": 1.5}, 1.5 * 2000), ({"speed": 0}, None),
                            ({"pcap_in": str(tmp_path)}, None), ({"realtime": True, "speed": 0}, 2000)):
        system, _, closers = cli.open_system(_sim_args(tmp_path, **overrides), log=lambda text: None)
        for close in reversed(closers):
            close()
        assert system.max_rate == rate, overrides
    with pytest.raises(SystemExit, match="--speed must be 0"):
        cli.open_system(_sim_args(tmp_path, speed=-1), log=lambda text: None)


def test_sim_command_gateway_answers_a_hello_from_a_real_socket(tmp_path):
    import socket
    import time

    from twinplane.sim.engine import cli

    system, gateway, closers = cli.open_system(_sim_args(tmp_path), log=lambda text: None)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    try:
        cs = ScriptedCS(KEY, csmb_addr=sock.getsockname(), ssmb_addr=sock.getsockname())
        sock.sendto(cs.hello(), gateway.address(CSMB_UDP_PORT))
        answer = None
        deadline = time.monotonic() + 60
        while answer is None and time.monotonic() < deadline:
            system.step()
            try:
                answer, source = sock.recvfrom(2048)
            except BlockingIOError:
                pass
        assert answer is not None, "no answer to the HELLO"
        assert source == gateway.address(CSMB_UDP_PORT)
        (hello,) = cs.decode(Bus.CSMB, answer)
        assert isinstance(hello, CsmbHello) and hello.error is ErrorCode.NONE
        assert gateway.core.wrapped == 1 and gateway.core.unwrapped == 1
    finally:
        sock.close()
        for close in reversed(closers):
            close()


def test_max_rate_holds_an_engine_far_faster_than_the_limit():
    """The throttle in ``SimSystem.step`` against an engine that costs no
    time at all: over ~0.3 s it must not run more than ``max_rate`` cycles a
    second (plus one chunk of slack).  The e2e tests' DFS timers rely on it:
    a 2 ms cap on each nap once let a fast engine run at 4x its limit and
    forget every CS between two HELLOs."""
    import time
    from types import SimpleNamespace

    from twinplane.sim.engine.system import SimSystem

    class InstantEngine:
        ports, config = 2, SimpleNamespace(clk_hz=2000)

        def __init__(self):
            self.cycle = 0
            self.tx = {0: [], 1: []}

        def run(self, cycles):
            self.cycle += cycles
            return []

    engine = InstantEngine()
    system = SimSystem(engine, chunk=32, max_rate=4000)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.3:
        system.step()
    elapsed = time.monotonic() - t0
    assert engine.cycle <= 4000 * elapsed + 32, (engine.cycle, elapsed)
    assert engine.cycle > 0
    # The naps are counted apart (the demo's engine speed leaves them out): here nearly all the time.
    assert 0.5 * elapsed < system.throttled_s <= elapsed, (system.throttled_s, elapsed)
