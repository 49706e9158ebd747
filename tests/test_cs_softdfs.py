"""The CS daemon against the reference DFS behind real UDP sockets (SoftDFS)
on 127.0.0.1: association, virtual servers pushed, a client SYN placed on a
node and rewritten, the flow's end accounted, a DFS restart re-pushed."""

import asyncio

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from twinplane.host.cs.config import parse_config
from twinplane.host.cs.daemon import CsDaemon
from twinplane.model.dfs import DfsConfig
from twinplane.model.softdfs import SoftDFS
from twinplane.protocol.codes import Bus

KEY = bytes(range(32, 48))


def cs_config(softs):
    return parse_config({
        "cs": {"ssmb_addr": "127.0.0.1", "ssmb_port": 0},
        "timeouts": {"hello_interval_ms": 100, "flow_idle_s": 60, "csmb_retransmit_s": 0.2},
        "dfs": [{"name": f"d{i}", "address": "127.0.0.1", "ssmb_port": s.ports[Bus.SSMB],
                 "csmb_port": s.ports[Bus.CSMB], "key": KEY.hex()} for i, s in enumerate(softs)],
        "pool": [{"name": "p", "method": "round_robin", "node": [
            {"address": f"10.1.0.{i}", "port": 8080, "mac": f"02:00:00:00:00:0{i}", "egress_port": 1}
            for i in (5, 6)]}],
        "virtual_server": [{"id": 7, "address": "192.0.2.10", "port": 80, "pool": "p"}],
    })


def syn(sport, flags="S"):
    return bytes(Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:fe:01") /
                 IP(src="198.51.100.7", dst="192.0.2.10") / TCP(sport=sport, dport=80, flags=flags))


async def wait_for(pred, timeout=10.0):
    for _ in range(int(timeout / 0.02)):
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def scenario():
    softs = [SoftDFS(DfsConfig(key=KEY, ssmb_port=0, csmb_port=0)) for _ in range(2)]
    for s in softs:
        await s.start()
    daemon = CsDaemon(cs_config(softs), health=False)
    await daemon.start()
    core = daemon.core
    try:
        await wait_for(lambda: all(p.state == "up" for p in core.peers.values()))
        await wait_for(lambda: all(7 in s.dfs.vss for s in softs) and all(not p.pending for p in core.peers.values()))
        soft = softs[0]
        seen = []
        for sport in (1000, 1001):
            soft.inject(0, syn(sport))
            frame = Ether(await asyncio.wait_for(soft.tx[1].get(), 5))
            seen.append((frame[IP].dst, frame[TCP].dport, frame.dst))
        assert seen == [("10.1.0.5", 8080, "02:00:00:00:00:05"), ("10.1.0.6", 8080, "02:00:00:00:00:06")]
        assert [n["connections"] for n in core.view_nodes()] == [1, 1]
        # the client resets flow 1000: the DFS deletes it and tells the CS
        soft.inject(0, syn(1000, "R"))
        await wait_for(lambda: core.counters["deletes_rst"] == 1)
        assert [n["connections"] for n in core.view_nodes()] == [0, 1]
        assert core.nodes[1].packets_in >= 2
        # the second DFS restarts on the same ports: the CS re-associates and re-pushes
        old = softs[1]
        ports = old.ports
        await old.close()
        await asyncio.sleep(0.1)  # the transports release their sockets a loop turn later
        fresh = SoftDFS(DfsConfig(key=KEY, ssmb_port=ports[Bus.SSMB], csmb_port=ports[Bus.CSMB]))
        await fresh.start()
        softs[1] = fresh
        await wait_for(lambda: 7 in fresh.dfs.vss and core.peers["d1"].associations == 2)
        fresh.inject(0, syn(2000))
        frame = Ether(await asyncio.wait_for(fresh.tx[1].get(), 5))
        assert frame[IP].dst in ("10.1.0.5", "10.1.0.6")
        counters = [dict(s.dfs.counters) for s in softs]
    finally:
        await daemon.stop()
        for s in softs:
            await s.close()
    return counters, dict(core.counters)


def test_cs_daemon_with_softdfs_over_udp():
    counters, cs_counters = asyncio.run(scenario())
    assert counters[0]["cs_authenticated"] == 1 and counters[1]["cs_authenticated"] == 1
    assert not any(k.startswith("invalid") for c in counters for k in c), counters
    assert not any(k.startswith("ignored") for k in cs_counters), cs_counters
