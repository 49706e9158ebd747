"""The CS core (host/cs/core.py) against the reference DFS, both sans-I/O:
association, virtual servers pushed, a client's SYN queried, answered and
forwarded to a node, the node's answer sent back as the virtual server."""

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from twinplane.host.cs.config import parse_config
from twinplane.host.cs.core import ControlSegment
from twinplane.model.dfs import DfsConfig, PortRole, ReferenceDFS
from twinplane.protocol.codes import Bus

KEY = bytes(range(16))
DFS = {Bus.SSMB: ("127.0.0.1", 7000), Bus.CSMB: ("127.0.0.1", 7001)}
CS_SRC = {Bus.SSMB: ("127.0.0.1", 16350), Bus.CSMB: ("127.0.0.1", 40000)}
DFS_MAC = "02:00:00:00:fe:01"


def test_cs_core_drives_the_reference_dfs():
    cfg = parse_config({
        "cs": {"ssmb_addr": "127.0.0.1", "ssmb_port": 16350},
        "timeouts": {"flow_idle_s": 30, "hello_interval_ms": 1000},
        "dfs": [{"name": "d0", "address": "127.0.0.1", "ssmb_port": 7000, "csmb_port": 7001, "key": KEY.hex()}],
        "pool": [{"name": "p", "method": "round_robin", "node": [
            {"address": f"10.0.0.{i}", "port": 8080, "mac": f"02:00:00:00:00:0{i}", "egress_port": 1}
            for i in (1, 2)]}],
        "virtual_server": [{"id": 1, "address": "192.0.2.1", "port": 80, "pool": "p"}],
    })
    cs = ControlSegment(cfg)
    dfs = ReferenceDFS(DfsConfig(key=KEY, dfs_mac=bytes.fromhex(DFS_MAC.replace(":", "")),
                                 port_roles=(PortRole.EXTERNAL, PortRole.INTERNAL)))
    now = 0.0

    def pump():
        for _ in range(50):
            moved = False
            for bus, addr, data in cs.datagrams_to_send(now):
                assert addr == DFS[bus]
                dfs.receive_message(bus, data, CS_SRC[bus], now)
                moved = True
            for bus, addr, data in dfs.messages_to_send():
                assert addr == CS_SRC[bus]
                cs.receive_datagram(bus, data, DFS[bus], now)
                moved = True
            if not moved:
                return
        raise AssertionError("no quiescence")

    for _ in range(4):
        t = cs.get_timer()
        if t is not None and t <= now:
            cs.handle_timer(now)
        pump()
        now += 0.1
    assert dfs.counters["cs_authenticated"] == 1 and len(dfs.vss) == 1
    assert not [k for k in dfs.counters if k.startswith("invalid")]

    nodes = set()
    for sport in (1000, 1001):
        syn = Ether(src="02:00:00:00:00:aa", dst=DFS_MAC) / IP(src="198.51.100.7", dst="192.0.2.1") / TCP(
            sport=sport, dport=80, flags="S")
        assert dfs.receive_frame(0, bytes(syn), now) == []
        pump()
        ((port, frame),) = dfs.frames_to_send()
        out = Ether(frame)
        assert port == 1 and out[TCP].dport == 8080 and out[Ether].src == DFS_MAC
        nodes.add(out[IP].dst)
        back = Ether(src=out[Ether].dst, dst=DFS_MAC) / IP(src=out[IP].dst, dst="198.51.100.7") / TCP(
            sport=8080, dport=sport, flags="SA", ack=1)
        ((port, frame),) = dfs.receive_frame(1, bytes(back), now)
        ret = Ether(frame)
        assert port == 0 and (ret[IP].src, ret[TCP].sport) == ("192.0.2.1", 80)
        assert ret[Ether].dst == "02:00:00:00:00:aa"
    assert nodes == {"10.0.0.1", "10.0.0.2"}  # round robin
