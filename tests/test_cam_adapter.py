"""The DFS's virtual-server matching: exact beats wildcard port beats wildcard
address beats both; VLAN-bound entries; ARP only for real virtual addresses
without NOARP_MODE; checked against a Python statement of the same rules on
random tables."""

import ipaddress
import random

from amaranth.sim import Simulator

from twinplane.hdl.dfs.adapters import CamAdapter
from twinplane.protocol.codes import Flag


def reference(entries, dst_ip, dst_port, protocol, vlan):
    for level in range(4):
        for e in entries:
            if e is None or e["protocol"] != protocol or e["vlan"] not in (0, vlan):
                continue
            wa, wp = bool(e["flags"] & Flag.WILDCARD_ADDR), bool(e["flags"] & Flag.WILDCARD_PORT)
            ok = [not wa and not wp and e["ip"] == dst_ip and e["port"] == dst_port,
                  not wa and wp and e["ip"] == dst_ip, wa and not wp and e["port"] == dst_port, wa and wp][level]
            if ok:
                return e["vs_id"]
    return None


def test_random_tables_match_the_rules():
    rng = random.Random(8)
    n = 8
    dut = CamAdapter(vs_entries=n)
    addrs = [int(ipaddress.IPv4Address(f"10.0.0.{k}")) for k in (1, 2, 3)]

    async def bench(ctx):
        ctx.set(dut.answer.ready, 1)
        for trial in range(12):
            entries = [None] * n
            for i in range(n):
                if rng.random() < 0.7:
                    flags = rng.choice([0, Flag.WILDCARD_PORT, Flag.WILDCARD_ADDR, Flag.WILDCARD_ADDR | Flag.WILDCARD_PORT,
                                        Flag.NOARP_MODE])
                    entries[i] = {"vs_id": 100 * trial + i, "protocol": rng.choice([6, 17]), "ip": rng.choice(addrs),
                                  "port": rng.choice([80, 443]), "flags": int(flags), "vlan": rng.choice([0, 0, 5])}
                e = entries[i] or {"vs_id": 0, "protocol": 0, "ip": 0, "port": 0, "flags": 0, "vlan": 0}
                ctx.set(dut.write.valid, 1)
                ctx.set(dut.write.payload, {"index": i, "valid": entries[i] is not None, "flags": e["flags"],
                                            "vs": {"vs_id": e["vs_id"], "protocol": e["protocol"],
                                                   "virt_addr": 0xFFFF << 32 | e["ip"], "virt_port": e["port"],
                                                   "vlan_id": e["vlan"]}})
                await ctx.tick()
            ctx.set(dut.write.valid, 0)
            for _ in range(20):
                ip, port, proto, vlan = rng.choice(addrs), rng.choice([80, 443]), rng.choice([6, 17]), rng.choice([0, 5])
                ctx.set(dut.query.valid, 1)
                ctx.set(dut.query.payload, {"dst_ip": ip, "dst_port": port, "protocol": proto, "vlan_id": vlan})
                await ctx.tick().until(dut.query.ready)
                ctx.set(dut.query.valid, 0)
                await ctx.tick().until(dut.answer.valid)
                answer = ctx.get(dut.answer.payload)
                expected = reference(entries, ip, port, proto, vlan)
                assert (answer.hit, answer.vs_id if answer.hit else None) == (expected is not None, expected)
                arp = any(e and e["ip"] == ip and not e["flags"] & (Flag.WILDCARD_ADDR | Flag.NOARP_MODE)
                          for e in entries)
                assert answer.answer_arp == arp

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(bench)
    sim.run()
