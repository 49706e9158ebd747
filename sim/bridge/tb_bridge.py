"""cocotb tests of the bridge on CrossLoopback (port 0 <-> port 1): pcap in
and out, the UDP message-port gateway with a real host socket, and TAP
interfaces in network namespaces with real Linux traffic.

Parameters come from the pytest side in environment variables (BRIDGE_*).
"""

import os
import socket
import subprocess
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, Timer
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from .bridge import Bridge, TapEndpoint
from .pcap import PcapRecorder, read_frames
from .ports import discover_ports
from .tap import NamespaceTopology, TapInterface
from .udp import GatewayConfig, UdpGateway

__all__ = ["Collector", "EchoDfs"]

DFS_MAC = "02:00:00:77:00:01"
DFS_IP = "10.77.1.1"


async def setup(dut, **kwargs):
    Clock(dut.clk, 8, unit="ns", impl="gpi").start()
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    ports = discover_ports(dut, dut.clk)
    bridge = Bridge(ports, dut.clk, poll_ns=512, **kwargs)
    return bridge


async def run_until(dut, done, *, cycles, step=100):
    for _ in range(cycles // step):
        if done():
            return
        await Timer(step * 8, unit="ns")
    assert done(), "timed out"


class Collector:
    """Endpoint that keeps every frame and injects nothing."""

    def __init__(self):
        self.frames = []

    def poll(self):
        return []

    def deliver(self, frame):
        self.frames.append(frame)
        return True


class EchoDfs(Collector):
    """Plays the DFS on the far side of the loopback: answers each UDP frame
    from the virtual CS with the payload reversed, built with scapy (not with
    the gateway's own code)."""

    def __init__(self):
        super().__init__()
        self.out = [bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=DFS_MAC)
                          / ARP(op=1, hwsrc=DFS_MAC, psrc=DFS_IP, pdst="10.77.1.100"))]

    def poll(self):
        out, self.out = self.out, []
        return out

    def deliver(self, frame):
        super().deliver(frame)
        p = Ether(frame)
        if UDP in p:
            self.out.append(bytes(Ether(dst=p.src, src=DFS_MAC) / IP(src=DFS_IP, dst=p[IP].src)
                                  / UDP(sport=p[UDP].dport, dport=p[UDP].sport, chksum=0)
                                  / p[Raw].load[::-1]))
        return True


@cocotb.test()
async def test_pcap(dut):
    """Frames from a pcap go into port 0; what leaves port 1 is recorded."""
    recorder = PcapRecorder(os.environ["BRIDGE_PCAP_OUT"], ports=2)
    bridge = await setup(dut, pcap=recorder)
    sink = Collector()
    bridge.attach(1, sink)
    bridge.start()
    frames = read_frames(os.environ["BRIDGE_PCAP_IN"])
    for f in frames:
        bridge.inject(0, f)
    await run_until(dut, lambda: len(sink.frames) == len(frames), cycles=20000)
    recorder.close()
    assert sink.frames == frames


@cocotb.test()
async def test_udp_gateway(dut):
    """A real UDP client reaches the simulated port through the gateway and
    gets the (simulated) DFS's answer back as a datagram; ARP is answered."""
    gateway = UdpGateway(GatewayConfig(dfs_mac=DFS_MAC, dfs_ip=DFS_IP, buses={6340: 0, 6341: 0}))
    bridge = await setup(dut)
    dfs = EchoDfs()
    bridge.attach(1, gateway)
    bridge.attach(0, dfs)
    bridge.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.setblocking(False)
    sent = {6340: b"SSMB hello", 6341: b"CSMB hello, a bit longer than the other one" * 3}
    for port, payload in sent.items():
        client.sendto(payload, gateway.address(port))
    got = {}

    def done():
        try:
            data, addr = client.recvfrom(65535)
        except BlockingIOError:
            return len(got) == len(sent)
        got[addr] = data
        return len(got) == len(sent)

    await run_until(dut, done, cycles=30000)
    expected = {gateway.address(p): sent[p][::-1] for p in sent}
    client.close()
    gateway.close()
    assert got == expected, got
    # What the DFS saw: one ARP reply and the wrapped datagrams.
    seen = [Ether(f) for f in dfs.frames]
    arps = [p for p in seen if ARP in p]
    assert len(arps) == 1 and len(seen) == 3
    arp = arps[0]
    assert arp[ARP].op == 2 and arp[ARP].hwsrc == "02:00:00:77:01:64" and arp[ARP].psrc == "10.77.1.100"
    assert arp[ARP].pdst == DFS_IP and arp.dst == DFS_MAC
    udp_frames = [p for p in seen if UDP in p]
    assert sorted(p[Raw].load for p in udp_frames) == sorted(sent.values())
    for p in udp_frames:
        assert p.dst == DFS_MAC and p.src == "02:00:00:77:01:64"
        assert p[IP].src == "10.77.1.100" and p[IP].dst == DFS_IP and p[IP].ttl == 64
        assert p[UDP].sport == p[UDP].dport in sent and p[UDP].chksum == 0
        assert len(bytes(p)) >= 60
        ip = p[IP].copy()
        del ip.chksum
        assert IP(bytes(ip)).chksum == p[IP].chksum
    assert bridge.unclaimed[0] == [] and bridge.unclaimed[1] == []
    assert gateway.core.arp_replies == 1 and gateway.core.unwrapped == 2 and gateway.core.dropped == 0


@cocotb.test()
async def test_tap_namespaces(dut):
    """A UDP request from namespace A crosses the simulated wire (with ARP)
    to namespace B and the answer comes back."""
    tag = os.getpid() % 100000
    tap_a, tap_b = TapInterface(f"tpa{tag}"), TapInterface(f"tpb{tag}")
    topo = NamespaceTopology()
    try:
        ns_a = topo.attach(tap_a.name, "10.77.0.1/24")
        ns_b = topo.attach(tap_b.name, "10.77.0.2/24")
        bridge = await setup(dut)
        bridge.attach(0, TapEndpoint(tap_a))
        bridge.attach(1, TapEndpoint(tap_b))
        bridge.start()
        python = os.environ["BRIDGE_PYTHON"]
        server = topo.exec(ns_b, python, "-c",
                           "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
                           "s.bind(('10.77.0.2', 7777)); s.settimeout(60); d, a = s.recvfrom(2048);"
                           "s.sendto(d.upper(), a)",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.5)  # let the server bind before the first datagram
        client = topo.exec(ns_a, python, "-c",
                           "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
                           "s.settimeout(60); s.sendto(b'across the simulated wire', ('10.77.0.2', 7777));"
                           "print(s.recvfrom(2048)[0].decode())",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        await run_until(dut, lambda: client.poll() is not None, cycles=2_000_000, step=500)
        out, err = client.communicate()
        server.wait(5)
        assert client.returncode == 0, err
        assert out.strip() == "ACROSS THE SIMULATED WIRE"
        # ARP request and reply crossed too, so the kernel resolved through the DUT.
        assert tap_a.frames_out >= 2 and tap_b.frames_out >= 2
    finally:
        topo.close()
        tap_a.close()
        tap_b.close()
