"""The message-port gateway core (sim/bridge/udp.py) without sockets, checked
with scapy as an independent encoder/decoder."""

import random

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from twinplane.sim.bridge.udp import GatewayConfig, GatewayCore, mac_bytes

DFS_MAC, DFS_IP = "02:00:00:77:00:01", "10.77.1.1"
CS_MAC, CS_IP = "02:00:00:77:01:64", "10.77.1.100"
REAL_CS = ("127.0.0.1", 40000)


def core(**kwargs):
    return GatewayCore(GatewayConfig(dfs_mac=DFS_MAC, dfs_ip=DFS_IP, **kwargs))


@pytest.mark.parametrize("kwargs, message", [
    ({"dfs_mac": "02:00:00:77:00"}, "not a MAC address: '02:00:00:77:00'"),
    ({"dfs_ip": "10.77.1"}, "dfs_ip must be an IPv4 address, not '10.77.1'"),
    ({"cs_ip": "::1"}, "cs_ip must be an IPv4 address, not '::1'"),
    ({"buses": {6340: 70000}}, "UDP port must be in 0..65535, not 70000"),
])
def test_config_checks(kwargs, message):
    args = {"dfs_mac": DFS_MAC, "dfs_ip": DFS_IP, **kwargs}
    with pytest.raises(ValueError, match=message):
        GatewayConfig(**args)


def test_unknown_bus():
    with pytest.raises(ValueError, match="dfs_port must be one of \\[6340, 6341\\], not 53"):
        core().from_cs(53, b"x", REAL_CS)


@pytest.mark.parametrize("checksum", [False, True])
@pytest.mark.parametrize("bus", [6340, 6341])
def test_wrap(bus, checksum):
    rng = random.Random(bus + checksum)
    c = core(udp_checksum=checksum)
    for size in [0, 1, 17, 18, 19, 100, 1472, *(rng.randrange(1473) for _ in range(20))]:
        payload = rng.randbytes(size)
        frame = c.from_cs(bus, payload, REAL_CS)
        p = Ether(frame)
        assert len(frame) == max(60, 42 + size)
        assert (p.dst, p.src, p[IP].src, p[IP].dst) == (DFS_MAC, CS_MAC, CS_IP, DFS_IP)
        assert (p[UDP].sport, p[UDP].dport, p[UDP].len) == (bus, bus, 8 + size)
        assert p[IP].len == 28 + size and p[IP].flags == "DF"
        assert (p[Raw].load if size else b"") == payload
        # scapy recomputes both checksums from scratch (pseudo header included).
        q = Ether(frame)
        del q[IP].chksum
        del q[UDP].chksum
        q = Ether(bytes(q))
        assert q[IP].chksum == p[IP].chksum
        assert p[UDP].chksum == (q[UDP].chksum if checksum else 0)
    assert c.cs_address == {bus: REAL_CS}


def reply(dport, payload, *, dst_mac=CS_MAC, dst_ip=CS_IP, pad=0):
    return bytes(Ether(dst=dst_mac, src=DFS_MAC) / IP(src=DFS_IP, dst=dst_ip)
                 / UDP(sport=dport, dport=dport) / payload) + b"\0" * pad


def test_unwrap():
    c = core()
    # Nobody has spoken on a bus yet: taken (it is for the virtual CS) but dropped.
    assert c.from_dfs(reply(6340, b"early")) == (True, [], [])
    assert c.dropped == 1
    c.from_cs(6340, b"hi", REAL_CS)
    c.from_cs(6341, b"hi", ("127.0.0.1", 40001))
    assert c.from_dfs(reply(6340, b"abc", pad=20)) == (True, [(6340, b"abc", REAL_CS)], [])
    assert c.from_dfs(reply(6341, b"x" * 999)) == (True, [(6341, b"x" * 999, ("127.0.0.1", 40001))], [])
    # UDP to the virtual CS on another port: taken and dropped.
    assert c.from_dfs(reply(7, b"echo")) == (True, [], [])
    # Not for the virtual CS: left for other endpoints.
    assert c.from_dfs(reply(6340, b"abc", dst_ip="10.77.1.2")) == (False, [], [])
    assert c.from_dfs(reply(6340, b"abc", dst_mac="02:00:00:00:00:09")) == (False, [], [])
    assert c.from_dfs(b"\x01" * 10) == (False, [], [])
    assert (c.unwrapped, c.dropped) == (2, 2)


def test_arp():
    c = core()
    ask = bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=DFS_MAC) / ARP(op=1, hwsrc=DFS_MAC, psrc=DFS_IP, pdst=CS_IP))
    taken, datagrams, frames = c.from_dfs(ask)
    assert taken and datagrams == [] and len(frames) == 1 and len(frames[0]) == 60
    r = Ether(frames[0])
    assert (r.dst, r.src, r[ARP].op, r[ARP].hwsrc, r[ARP].psrc, r[ARP].hwdst, r[ARP].pdst) == (
        DFS_MAC, CS_MAC, 2, CS_MAC, CS_IP, DFS_MAC, DFS_IP)
    other = bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=DFS_MAC) / ARP(op=1, hwsrc=DFS_MAC, psrc=DFS_IP,
                                                                 pdst="10.77.1.7"))
    assert c.from_dfs(other) == (False, [], [])
    assert c.arp_replies == 1
    assert mac_bytes(CS_MAC) == bytes.fromhex("020000770164")
