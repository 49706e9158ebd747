"""Reference DFS: the data path and flow lifecycle of the patent's figures
17-22, every emitted frame checked with scapy (re-dissected, checksums
recomputed, compared with the frame scapy builds from the expected fields)."""

import ipaddress
import random

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from twinplane.model.dfs import DfsConfig, PortRole, ReferenceDFS, VsEntry
from twinplane.model.flowkey import ACTION_WIDTH, KEY_WIDTH, pack_key, unpack_action
from twinplane.model.flowtable import FlowGeometry
from twinplane.model.scripted_cs import DfsHarness, ScriptedCS
from twinplane.protocol.codes import Bus, DeleteReason, ErrorCode, Flag
from twinplane.protocol.messages import (
    AddVs,
    DelVs,
    FlowSignature,
    SsmbDelete,
    SsmbDump,
    SsmbNewflow,
    SsmbQuery,
    SsmbReap,
    SsmbReply,
    SsmbReset,
    SsmbStats,
    SsmbTimeout,
    Translation,
    VirtualServer,
)

KEY = bytes(range(16))
DFS_MAC = "02:00:00:00:fe:01"
CLIENT_MAC = "02:00:00:00:00:aa"
ROUTER_MAC = "02:00:00:00:00:01"
NODE_MAC = "02:00:00:00:00:05"
VIP, NODE, CLIENT = "192.0.2.10", "10.1.0.5", "198.51.100.7"
EXT, INT = 0, 1
XLATE = Flag.TRANSLATE_ADDR | Flag.TRANSLATE_PORT


def mac(text):
    return bytes.fromhex(text.replace(":", ""))


def check(frame: bytes) -> Ether:
    """Re-dissect with scapy, recompute every checksum, demand the same bytes."""
    pkt = Ether(frame)
    again = pkt.copy()
    if IP in again:
        del again[IP].chksum
    if TCP in again:
        del again[TCP].chksum
    if UDP in again and again[UDP].chksum != 0:
        del again[UDP].chksum
    assert bytes(again) == frame, "checksums differ from scapy's"
    return pkt


def expect(pkt, *, src_mac, dst_mac, vlan=0, prio=0, **fields) -> bytes:
    """The frame scapy builds from ``pkt`` with the given header fields changed."""
    ip = pkt[IP].copy()
    l4 = ip[TCP] if TCP in ip else ip[UDP]
    for name, value in fields.items():
        setattr(ip if name in ("src", "dst") else l4, name, value)
    del ip.chksum
    if not (UDP in ip and ip[UDP].chksum == 0):
        del l4.chksum
    eth = Ether(src=src_mac, dst=dst_mac)
    return bytes(eth / Dot1Q(vlan=vlan, prio=prio) / ip if vlan else eth / ip)


def tcp(sport=40000, flags="S", seq=1000, ack=0, payload=b"", dst=VIP, dport=80, vlan=0):
    eth = Ether(src=CLIENT_MAC, dst=DFS_MAC)
    ip = IP(src=CLIENT, dst=dst, id=7, ttl=60) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack,
                                                     window=1000)
    pkt = (eth / Dot1Q(vlan=vlan) / ip if vlan else eth / ip) / (Raw(payload) if payload else b"")
    return Ether(bytes(pkt))


def from_node(sport=8080, dport=40000, flags="SA", seq=5000, ack=1001, payload=b"", src=NODE):
    pkt = Ether(src=NODE_MAC, dst=DFS_MAC) / IP(src=src, dst=CLIENT, id=9, ttl=64) / TCP(
        sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=2000) / (Raw(payload) if payload else b"")
    return Ether(bytes(pkt))


def translation(query, **kw):
    values = dict(node_addr=ipaddress.ip_address(NODE), node_port=8080, egress_port=INT, client_port=EXT,
                  node_mac=mac(NODE_MAC), client_mac=query.client_mac, vs_id=query.vs_id, node_id=3)
    values.update(kw)
    return Translation(**values)


def make(**config):
    cs = ScriptedCS(KEY, hello_interval_ms=60000)  # 3 intervals outlive most tests' clocks
    h = DfsHarness(ReferenceDFS(DfsConfig(key=KEY, dfs_mac=mac(DFS_MAC), **config)), cs)
    h.associate()
    for vs_id, protocol, port, flags in ((1, 6, 80, Flag.NONE), (2, 17, 53, Flag.NONE)):
        vs = VirtualServer(vs_id=vs_id, protocol=protocol, virt_addr=ipaddress.ip_address(VIP), virt_port=port)
        h.send(cs, Bus.CSMB, cs.encode(AddVs(vs=vs, flags=flags)))
    return h


@pytest.fixture
def h():
    return make()


def query_of(h, pkt, port=EXT):
    assert h.frame(port, bytes(pkt)) == []
    (query,) = h.flush()
    assert isinstance(query, SsmbQuery)
    return query


def reply(h, query, flags=XLATE, error=ErrorCode.NONE, **kw):
    cs = h.css[0]
    msg = SsmbReply(serial=query.serial, flow=query.flow, xlate=translation(query, **kw), flags=flags, error=error)
    out = h.send(cs, Bus.SSMB, cs.encode(msg))
    frames, h.frames = h.frames, []
    return out, frames


def open_flow(h, flags=XLATE, sport=40000, **kw):
    syn = tcp(sport=sport)
    query = query_of(h, syn)
    _, frames = reply(h, query, flags=flags, **kw)
    assert len(frames) == 1
    return query, syn, frames[0]


# -- new flow (figures 20, 21) -------------------------------------------------------------------


def test_new_flow_query_hold_reply_release(h):
    syn = tcp()
    query = query_of(h, syn)
    assert query.flow == FlowSignature(src_addr=ipaddress.ip_address(CLIENT), dst_addr=ipaddress.ip_address(VIP),
                                       src_port=40000, dst_port=80, protocol=6, ingress_port=EXT)
    assert query.client_mac == mac(CLIENT_MAC) and query.vs_id == 1 and query.tcp_flags == 0x02
    # The client retransmits its SYN: held too, no second QUERY.
    syn2 = tcp(seq=1000, payload=b"")
    syn2[IP].id = 8
    del syn2[IP].chksum
    syn2 = Ether(bytes(syn2))
    assert h.frame(EXT, bytes(syn2)) == [] and h.flush() == []
    assert h.dfs.counters["held"] == 2
    out, frames = reply(h, query)
    assert out == []
    assert [port for port, _ in frames] == [INT, INT]
    for (_, frame), pkt in zip(frames, (syn, syn2), strict=True):
        check(frame)
        assert frame == expect(pkt, src_mac=DFS_MAC, dst_mac=NODE_MAC, dst=NODE, dport=8080)
    assert h.dfs.counters["flows_installed"] == 1 and not h.dfs.pending


@pytest.mark.parametrize("error", [ErrorCode.NOTAVAIL, ErrorCode.CONNLIMIT, ErrorCode.UNKNOWN])
def test_reply_error_drops_held(h, error):
    query = query_of(h, tcp())
    h.frame(EXT, bytes(tcp()))
    out, frames = reply(h, query, error=error)
    assert frames == [] and out == []
    assert h.dfs.counters[f"drop_reply_{error.name.lower()}"] == 2
    assert not h.dfs.pending and not h.dfs.flows
    # The next SYN queries again.
    assert isinstance(query_of(h, tcp()), SsmbQuery)


def test_pending_bounds_and_timeout():
    h = make(max_pending=2, max_held_per_flow=2, max_held_total=3, pending_timeout_s=0.5)
    query_of(h, tcp(sport=1))
    h.frame(EXT, bytes(tcp(sport=1)))
    h.frame(EXT, bytes(tcp(sport=1)))  # third packet of one pending flow
    assert h.dfs.counters["drop_held_flow_full"] == 1
    query_of(h, tcp(sport=2))  # 3 held in total now
    h.frame(EXT, bytes(tcp(sport=2)))
    assert h.dfs.counters["drop_held_total_full"] == 1
    h.frame(EXT, bytes(tcp(sport=3)))  # a third pending flow
    assert h.dfs.counters["drop_pending_full"] == 1 and h.flush() == []
    h.now = 0.6
    h.dfs.poll(h.now)
    assert h.dfs.counters["drop_pending_timeout"] == 3 and not h.dfs.pending
    query_of(h, tcp(sport=3))


def test_reply_without_pending_installs_and_newflow(h):
    query = query_of(h, tcp())
    h.now = 2.0
    h.dfs.poll(h.now)  # the pending flow expired
    _, frames = reply(h, query)
    assert frames == [] and h.dfs.counters["flows_installed"] == 1
    cs = h.css[0]
    sig = FlowSignature(src_addr=ipaddress.ip_address(CLIENT), dst_addr=ipaddress.ip_address(VIP), src_port=41000,
                        dst_port=80, protocol=6)
    fake = SsmbQuery(flow=sig, client_mac=mac(CLIENT_MAC), vs_id=1)
    h.send(cs, Bus.SSMB, cs.encode(SsmbNewflow(serial=77, flow=sig, xlate=translation(fake), flags=XLATE)))
    data = tcp(sport=41000, flags="A", seq=5, ack=6, payload=b"x")
    ((port, frame),) = h.frame(EXT, bytes(data))
    assert frame == expect(data, src_mac=DFS_MAC, dst_mac=NODE_MAC, dst=NODE, dport=8080)


# -- known and return flows (figure 17) --------------------------------------------------------------


@pytest.mark.parametrize("flags", [XLATE, Flag.TRANSLATE_ADDR, XLATE | Flag.ADD_TCP_OFFSETS])
def test_known_and_return_flow_rewrite(h, flags):
    seq_off, ack_off = 0xFFFFFF00, 0x12345
    query, syn, _ = open_flow(h, flags=flags, seq_offset=seq_off, ack_offset=ack_off)
    node_port = 8080 if flags & Flag.TRANSLATE_PORT else 80
    offs = flags & Flag.ADD_TCP_OFFSETS
    synack = from_node(sport=node_port, seq=5000 + (ack_off if offs else 0), ack=(1001 + (seq_off if offs else 0))
                       & 0xFFFFFFFF)
    ((port, frame),) = h.frame(INT, bytes(synack))
    assert port == EXT
    check(frame)
    assert frame == expect(synack, src_mac=DFS_MAC, dst_mac=CLIENT_MAC, src=VIP, sport=80, seq=5000, ack=1001)
    data = tcp(flags="PA", seq=1001, ack=5001, payload=b"GET / HTTP/1.0\r\n\r\n")
    ((port, frame),) = h.frame(EXT, bytes(data))
    assert port == INT
    check(frame)
    assert frame == expect(data, src_mac=DFS_MAC, dst_mac=NODE_MAC, dst=NODE, dport=node_port,
                           seq=(1001 + (seq_off if offs else 0)) & 0xFFFFFFFF,
                           ack=(5001 + (ack_off if offs else 0)) & 0xFFFFFFFF)


def test_table_actions_say_what_the_model_does(h):
    query, _, _ = open_flow(h, flags=XLATE | Flag.ADD_TCP_OFFSETS, seq_offset=10, ack_offset=20, node_vlan=30)
    flow = next(iter(h.dfs.flows.values()))
    inbound = unpack_action(h.dfs.table.action[flow.in_handle])
    assert inbound == dict(egress_port=INT, rewrite_source=0, translate_addr=1, translate_port=1,
                           new_ip=int(ipaddress.ip_address(NODE)), new_port=8080,
                           eth_dst=int.from_bytes(mac(NODE_MAC), "big"), vlan_rewrite=1, vlan_id=30,
                           add_offsets=1, seq_delta=10, ack_delta=20)
    ret = unpack_action(h.dfs.table.action[flow.out_handle])
    assert ret == dict(egress_port=EXT, rewrite_source=1, translate_addr=1, translate_port=1,
                       new_ip=int(ipaddress.ip_address(VIP)), new_port=80,
                       eth_dst=int.from_bytes(mac(CLIENT_MAC), "big"), vlan_rewrite=0, vlan_id=0,
                       add_offsets=1, seq_delta=2**32 - 20, ack_delta=2**32 - 10)


def test_random_payloads_rewrite_checksums(h):
    rng = random.Random(5)
    open_flow(h, flags=XLATE | Flag.ADD_TCP_OFFSETS, seq_offset=rng.getrandbits(32), ack_offset=rng.getrandbits(32))
    for _ in range(50):
        payload = rng.randbytes(rng.randint(0, 200))
        if rng.random() < 0.5:
            pkt = tcp(flags="PA", seq=rng.getrandbits(32), ack=rng.getrandbits(32), payload=payload)
            port = EXT
        else:
            pkt = from_node(flags="PA", seq=rng.getrandbits(32), ack=rng.getrandbits(32), payload=payload)
            port = INT
        ((_, frame),) = h.frame(port, bytes(pkt))
        out = check(frame)
        assert bytes(out[TCP].payload) == payload and out[IP].ttl == pkt[IP].ttl  # TTL not decremented


@pytest.mark.parametrize("udp_chksum", [None, 0])
def test_udp_flow(h, udp_chksum):
    pkt = Ether(src=CLIENT_MAC, dst=DFS_MAC) / IP(src=CLIENT, dst=VIP) / UDP(sport=5353, dport=53) / Raw(b"q" * 13)
    if udp_chksum is not None:
        pkt[UDP].chksum = udp_chksum
    pkt = Ether(bytes(pkt))
    query = query_of(h, pkt)
    assert query.vs_id == 2 and query.tcp_flags == 0
    _, ((port, frame),) = reply(h, query, node_port=5300)
    check(frame)
    assert frame == expect(pkt, src_mac=DFS_MAC, dst_mac=NODE_MAC, dst=NODE, dport=5300)
    assert (Ether(frame)[UDP].chksum == 0) == (udp_chksum == 0)


def test_vlan_tags_in_and_out(h):
    syn = tcp(vlan=10)
    query = query_of(h, syn)
    assert query.flow.vlan_valid == 1 and query.flow.vlan_id == 10
    _, ((_, frame),) = reply(h, query, node_vlan=20, client_vlan=0)
    check(frame)
    assert frame == expect(syn, src_mac=DFS_MAC, dst_mac=NODE_MAC, vlan=20, dst=NODE, dport=8080)
    ((_, frame),) = h.frame(INT, bytes(from_node()))
    assert frame == expect(from_node(), src_mac=DFS_MAC, dst_mac=CLIENT_MAC, src=VIP, sport=80)
    # Length-preserving, as the gateware: an untagged frame is never tagged.
    syn = tcp(sport=40001)
    _, ((_, frame),) = reply(h, query_of(h, syn), node_vlan=20)
    assert frame == expect(syn, src_mac=DFS_MAC, dst_mac=NODE_MAC, dst=NODE, dport=8080)


# -- what is not a flow ---------------------------------------------------------------------------


def test_unknown_traffic_dropped_and_counted(h):
    assert h.frame(EXT, bytes(tcp(dport=81))) == []  # no VS
    assert h.frame(EXT, bytes(tcp(flags="A"))) == []  # not a SYN
    assert h.frame(INT, bytes(from_node())) == []  # internal, no flow
    bad = bytearray(bytes(tcp()))
    bad[24] ^= 0xFF  # IPv4 header checksum
    assert h.frame(EXT, bytes(bad)) == []
    assert h.frame(EXT, bytes(tcp())[:30]) == []
    c = h.dfs.counters
    assert (c["drop_no_flow_external"], c["drop_tcp_not_syn"], c["drop_no_flow_internal"],
            c["drop_malformed_bad_ip_checksum"], c["drop_malformed_truncated_l3"]) == (1, 1, 1, 1, 1)
    assert h.flush() == []


def test_no_active_cs_drops_new_flows():
    h = DfsHarness(ReferenceDFS(DfsConfig(key=KEY)))
    h.dfs.vss[1] = VsEntry(VirtualServer(vs_id=1, protocol=6, virt_addr=ipaddress.ip_address(VIP), virt_port=80),
                           Flag.NONE)
    assert h.frame(EXT, bytes(tcp())) == [] and h.dfs.counters["drop_no_cs"] == 1


def test_vs_match_priority(h):
    cs = h.css[0]
    for vs_id, addr, port, flags in ((10, "0.0.0.0", 0, Flag.WILDCARD_ADDR | Flag.WILDCARD_PORT),
                                     (11, "0.0.0.0", 80, Flag.WILDCARD_ADDR),
                                     (12, VIP, 0, Flag.WILDCARD_PORT)):
        vs = VirtualServer(vs_id=vs_id, protocol=6, virt_addr=ipaddress.ip_address(addr), virt_port=port)
        h.send(cs, Bus.CSMB, cs.encode(AddVs(vs=vs, flags=flags)))
    cases = [(VIP, 80, 1), (VIP, 81, 12), ("192.0.2.99", 80, 11), ("192.0.2.99", 81, 10)]
    for sport, (dst, dport, vs_id) in enumerate(cases, 1):
        assert query_of(h, tcp(sport=sport, dst=dst, dport=dport)).vs_id == vs_id
    # A wildcard-address VS takes no address another VS owns (the patent's "known" addresses).
    vs = VirtualServer(vs_id=13, protocol=6, virt_addr=ipaddress.ip_address("192.0.2.30"), virt_port=443)
    h.send(cs, Bus.CSMB, cs.encode(AddVs(vs=vs)))
    assert h.frame(EXT, bytes(tcp(sport=9, dst="192.0.2.30", dport=80))) == [] and h.flush() == []
    assert h.dfs.counters["drop_no_flow_external"] == 1
    # DISABLED: configured, takes no new flows.
    vs = VirtualServer(vs_id=1, protocol=6, virt_addr=ipaddress.ip_address(VIP), virt_port=80)
    h.send(cs, Bus.CSMB, cs.encode(AddVs(vs=vs, flags=Flag.DISABLED)))
    assert query_of(h, tcp(sport=10)).vs_id == 12


def test_arp_replies(h):
    cs = h.css[0]
    vs = VirtualServer(vs_id=5, protocol=6, virt_addr=ipaddress.ip_address("192.0.2.20"), virt_port=80)
    h.send(cs, Bus.CSMB, cs.encode(AddVs(vs=vs, flags=Flag.NOARP_MODE)))

    def who_has(target, port, vlan=0):
        arp = ARP(op=1, hwsrc=ROUTER_MAC, psrc="192.0.2.1", pdst=target)
        eth = Ether(src=ROUTER_MAC, dst="ff:ff:ff:ff:ff:ff")
        return h.frame(port, bytes(eth / Dot1Q(vlan=vlan) / arp if vlan else eth / arp))

    ((port, frame),) = who_has(VIP, EXT)
    assert port == EXT
    assert frame == bytes(Ether(src=DFS_MAC, dst=ROUTER_MAC) / ARP(
        op=2, hwsrc=DFS_MAC, psrc=VIP, hwdst=ROUTER_MAC, pdst="192.0.2.1")).ljust(60, b"\0")
    ((_, frame),) = who_has(VIP, EXT, vlan=7)
    assert Ether(frame)[Dot1Q].vlan == 7 and Ether(frame)[ARP].psrc == VIP
    ((_, frame),) = who_has(str(h.dfs.config.dfs_addr), INT)
    assert Ether(frame)[ARP].psrc == str(h.dfs.config.dfs_addr) and Ether(frame)[ARP].hwsrc == DFS_MAC
    assert who_has("192.0.2.20", EXT) == []  # NOARP_MODE
    assert who_has("192.0.2.30", EXT) == []  # nobody's
    assert who_has(VIP, INT) == []  # VS addresses live on the external side
    assert h.dfs.counters["drop_arp_not_ours"] == 3
    # NOARP_MODE still accepts flows for the address.
    assert query_of(h, tcp(dst="192.0.2.20")).vs_id == 5


# -- TCP close (figure 22) ---------------------------------------------------------------------------


def deletes(msgs):
    return [m for m in msgs if isinstance(m, SsmbDelete)]


def test_tcp_close_fin_both_ways_then_linger(h):
    query, _, _ = open_flow(h, flags=XLATE | Flag.ADD_TCP_OFFSETS, seq_offset=100, ack_offset=200)
    linger = h.dfs.config.close_linger_ticks * h.dfs.config.tick_s
    h.frame(INT, bytes(from_node(seq=5200, ack=1101)))  # SYN-ACK in node space
    h.frame(EXT, bytes(tcp(flags="A", seq=1001, ack=5001)))
    assert len(h.frame(EXT, bytes(tcp(flags="FA", seq=1001, ack=5001, payload=b"bye")))) == 1
    h.frame(INT, bytes(from_node(flags="A", seq=5201, ack=1105)))
    h.frame(INT, bytes(from_node(flags="PA", seq=5201, ack=1105, payload=b"more")))  # half-closed: still flows
    h.now += 10 * linger
    h.dfs.poll(h.now)
    assert h.flush() == [] and len(h.dfs.flows) == 2  # one FIN alone never deletes
    h.frame(INT, bytes(from_node(flags="FA", seq=5205, ack=1105)))
    ((_, last),) = h.frame(EXT, bytes(tcp(flags="A", seq=1005, ack=5006)))  # the last ACK is forwarded
    check(last)
    # the node's FIN again (as if the ACK were lost downstream) still passes while the flow lingers
    h.now += linger / 2
    h.dfs.poll(h.now)
    assert h.flush() == [] and len(h.frame(INT, bytes(from_node(flags="FA", seq=5205, ack=1105)))) == 1
    h.now += linger - h.dfs.config.tick_s
    h.dfs.poll(h.now)
    assert h.flush() == []  # not idle for the whole linger yet
    h.now += 2 * h.dfs.config.tick_s
    h.dfs.poll(h.now)
    (delete,) = h.flush()
    assert delete.stats.reason is DeleteReason.FIN and delete.serial == query.serial
    assert (delete.stats.packets_in, delete.stats.packets_out) == (4, 5)
    assert delete.stats.tcp_state == 3 and delete.stats.node_id == 3 and delete.flow == query.flow
    assert not h.dfs.flows and h.dfs.table.count == 0


def test_tcp_half_close_kept_and_rst_deletes(h):
    open_flow(h)
    h.frame(EXT, bytes(tcp(flags="FA", seq=1001, ack=5001)))
    h.frame(INT, bytes(from_node(flags="A", seq=5001, ack=1002)))
    h.now = 100.0
    h.dfs.poll(h.now)
    assert h.flush() == [] and h.dfs.flows
    assert len(h.frame(INT, bytes(from_node(flags="R", seq=5001, ack=0)))) == 1
    assert h.flush() == [] and h.dfs.flows  # deleted after the linger, not at once
    h.now += (h.dfs.config.close_linger_ticks + 1) * h.dfs.config.tick_s
    h.dfs.poll(h.now)
    (delete,) = h.flush()
    assert delete.stats.reason is DeleteReason.RST and delete.stats.tcp_state == 1 | 4
    assert not h.dfs.flows


# -- lifecycle: overflow, idle, REAP, TIMEOUT, RESET, DUMP ---------------------------------------------


def test_overflow_evicts_oldest_candidate_and_reports():
    geometry = FlowGeometry(key_width=KEY_WIDTH, action_width=ACTION_WIDTH, buckets=2, ways=1, tables=2)
    h = make(geometry=geometry, tick_s=1.0)
    queries = {}
    for sport in range(1, 40):
        h.now = float(sport)
        table = h.dfs.table
        query = query_of(h, tcp(sport=sport))
        full = table.count == geometry.entries
        if full:  # what the table must evict: the oldest candidate of the inbound key
            key = pack_key(src_ip=int(ipaddress.ip_address(CLIENT)), dst_ip=int(ipaddress.ip_address(VIP)),
                           src_port=sport, dst_port=80, protocol=6, inbound=1)
            cands = [table.slots[t][table.bucket_of(t, key)][0].handle for t in range(2)]
            oldest = max(cands, key=lambda hd: (h.now - table.last_seen[hd]) % 65536)
            victim = h.dfs.flows[oldest]
        out, _ = reply(h, query)
        queries[sport] = query
        if full:
            dels = deletes(out)
            assert dels and dels[0].stats.reason is DeleteReason.OVERFLOW
            assert dels[0].serial == victim.serial and dels[0].flow == victim.sig
            assert dels[0].stats.packets_in == 1
        assert len({id(f) for f in h.dfs.flows.values()}) * 2 == len(h.dfs.flows) == table.count
    assert h.dfs.counters["flows_deleted_overflow"] >= 1


def test_idle_timeout(h):
    open_flow(h, idle_timeout_s=10)
    h.now = 9.9
    h.dfs.poll(h.now)
    assert h.flush() == []
    h.now = 10.0
    h.dfs.poll(h.now)
    (delete,) = h.flush()
    assert delete.stats.reason is DeleteReason.IDLE and delete.stats.idle_ms == 10000
    h.frame(EXT, bytes(tcp()))  # the config default (300 s) applies with idle_timeout_s 0
    _, _ = reply(h, h.flush()[0])
    h.now = 10.0 + 150
    cs = h.css[0]
    h.send(cs, Bus.CSMB, cs.hello())  # keep the CS association alive
    h.now = 10.0 + 299.9
    h.dfs.poll(h.now)
    assert h.flush() == []
    h.now = 10.0 + 300
    h.dfs.poll(h.now)
    assert deletes(h.flush())[0].stats.reason is DeleteReason.IDLE


@pytest.mark.parametrize("kind,reason", [(SsmbReap, DeleteReason.REAP), (SsmbTimeout, DeleteReason.TIMEOUT)])
def test_reap_and_timeout(h, kind, reason):
    query, _, _ = open_flow(h)
    cs = h.css[0]
    h.now = 5.0
    (alive,) = h.send(cs, Bus.SSMB, cs.encode(kind(serial=query.serial, flow=query.flow, idle_ms=6000)))
    assert isinstance(alive, SsmbStats) and alive.error is ErrorCode.CONNALIVE
    assert alive.stats.packets_in == 1 and alive.stats.idle_ms == 5000 and h.dfs.flows
    (dead,) = h.send(cs, Bus.SSMB, cs.encode(kind(serial=query.serial, flow=query.flow, idle_ms=5000)))
    assert isinstance(dead, SsmbDelete) and dead.stats.reason is reason and not h.dfs.flows
    (unknown,) = h.send(cs, Bus.SSMB, cs.encode(kind(serial=9, flow=query.flow, idle_ms=1)))
    assert isinstance(unknown, SsmbDelete) and unknown.serial == 9 and h.dfs.counters["reap_unknown"] == 1


def test_reset_and_dump(h):
    cs = h.css[0]
    q1, _, _ = open_flow(h, sport=1)
    q2, _, _ = open_flow(h, sport=2)
    query_of(h, tcp(sport=3))  # pending
    out = h.send(cs, Bus.SSMB, cs.encode(SsmbDump()))
    assert [type(m) for m in out] == [SsmbStats, SsmbStats, SsmbDump]
    assert [m.serial for m in out[:2]] == [q1.serial, q2.serial] and out[2].count == 2
    assert out[2].flags & Flag.END and all(m.error is ErrorCode.NONE for m in out)
    out = h.send(cs, Bus.SSMB, cs.encode(SsmbReset()))
    assert [type(m) for m in out] == [SsmbReset]
    assert not h.dfs.flows and not h.dfs.pending and h.dfs.table.count == 0
    assert h.dfs.counters["flows_deleted_reset"] == 2
    assert h.frame(EXT, bytes(tcp(sport=1, flags="A", seq=1001, ack=5001))) == []
    out = h.send(cs, Bus.SSMB, cs.encode(SsmbDump()))
    assert out[0].count == 0


def test_cs_delete(h):
    query, _, _ = open_flow(h)
    cs = h.css[0]
    (answer,) = h.send(cs, Bus.SSMB, cs.encode(SsmbDelete(serial=query.serial, flow=query.flow)))
    assert answer.stats.reason is DeleteReason.CS_DELETE and not h.dfs.flows


def test_port_roles_checked():
    with pytest.raises(ValueError, match="at most 4 ports"):
        DfsConfig(key=KEY, port_roles=(PortRole.EXTERNAL,) * 5)
    dfs = ReferenceDFS(DfsConfig(key=KEY, port_roles=(PortRole.EXTERNAL,)))
    with pytest.raises(ValueError, match=r"port must be in range\(1\), not 1"):
        dfs.receive_frame(1, b"", 0.0)


def test_held_udp_datagrams_released_in_order(h):
    pkts = [Ether(bytes(Ether(src=CLIENT_MAC, dst=DFS_MAC) / IP(src=CLIENT, dst=VIP, id=i) / UDP(sport=999, dport=53)
                        / Raw(bytes([i]) * (i + 1)))) for i in range(5)]
    query = query_of(h, pkts[0])
    for pkt in pkts[1:]:
        assert h.frame(EXT, bytes(pkt)) == []
    assert h.flush() == []
    _, frames = reply(h, query, node_port=5300)
    assert [f for _, f in frames] == [expect(p, src_mac=DFS_MAC, dst_mac=NODE_MAC, dst=NODE, dport=5300)
                                      for p in pkts]
    assert h.dfs._held_total == 0


def test_random_traffic_invariants():
    """Random clients opening, talking, closing, resetting and idling on a
    small table: every emitted frame is valid for scapy, both entries of a
    flow live and die together, and every installed flow is reported gone."""
    rng = random.Random(11)
    geometry = FlowGeometry(key_width=KEY_WIDTH, action_width=ACTION_WIDTH, buckets=4, ways=1, tables=2)
    h = make(geometry=geometry, tick_s=0.5, idle_timeout_s=20.0)
    cs = h.css[0]
    open_ports: set[int] = set()
    for step in range(400):
        h.now = step * 0.25
        if step % 100 == 0:
            h.send(cs, Bus.CSMB, cs.hello())
        sport = rng.randrange(1000, 1040)
        kind = rng.random()
        if sport not in open_ports or kind < 0.1:
            h.frame(EXT, bytes(tcp(sport=sport)))
            for msg in h.flush():
                if isinstance(msg, SsmbQuery):
                    reply(h, msg, flags=XLATE | Flag.ADD_TCP_OFFSETS, seq_offset=rng.getrandbits(32))
                    open_ports.add(sport)
        elif kind < 0.8:
            pkt = (tcp(sport=sport, flags="PA", seq=rng.getrandbits(32), ack=rng.getrandbits(32), payload=b"d")
                   if rng.random() < 0.5 else from_node(dport=sport, flags="PA", payload=b"e"))
            for _, frame in h.frame(EXT if IP in pkt and pkt[IP].src == CLIENT else INT, bytes(pkt)):
                check(frame)
        else:
            for _, frame in h.frame(INT, bytes(from_node(dport=sport, flags="R"))):
                check(frame)
        h.dfs.poll(h.now)
        h.flush()
        flows = {id(f): f for f in h.dfs.flows.values()}
        assert len(h.dfs.flows) == 2 * len(flows) == h.dfs.table.count
        for f in flows.values():
            assert h.dfs.flows[f.in_handle] is f and h.dfs.flows[f.out_handle] is f
    installed = h.dfs.counters["flows_installed"]
    gone = sum(isinstance(m, SsmbDelete) for _, _, m in h.inbox)
    assert installed == gone + len({id(f) for f in h.dfs.flows.values()}) and gone > 0


def test_return_key_collision_deletes_the_older_flow(h):
    cs = h.css[0]
    vs = VirtualServer(vs_id=7, protocol=6, virt_addr=ipaddress.ip_address("192.0.2.77"), virt_port=80)
    h.send(cs, Bus.CSMB, cs.encode(AddVs(vs=vs)))
    first, _, _ = open_flow(h)
    query = query_of(h, tcp(dst="192.0.2.77"))
    out, frames = reply(h, query)  # same node:port and client:port -> same return key
    (delete,) = deletes(out)
    assert delete.serial == first.serial and delete.stats.reason is DeleteReason.OVERFLOW
    assert len(frames) == 1 and h.dfs.counters["return_key_collision"] == 1
    ((_, frame),) = h.frame(INT, bytes(from_node()))
    assert Ether(frame)[IP].src == "192.0.2.77"


def test_vs_tie_goes_to_the_lowest_cam_slot(h):
    """Two equally specific VSs: the one in the lower CAM slot wins, as in the
    gateware; a new vs_id takes the lowest free slot (freed by DEL_VS)."""
    cs = h.css[0]

    def add(vs_id, msg=AddVs):
        vs = VirtualServer(vs_id=vs_id, protocol=6, virt_addr=ipaddress.ip_address(VIP), virt_port=0)
        (ack,) = h.send(cs, Bus.CSMB, cs.encode(msg(vs=vs, flags=Flag.WILDCARD_PORT)))
        return ack.error

    assert add(30) is ErrorCode.NONE and add(20) is ErrorCode.NONE  # slots 2 and 3 (vs 1 and 2 hold 0, 1)
    assert query_of(h, tcp(sport=1, dport=81)).vs_id == 30  # not the lowest vs_id
    add(30, DelVs)
    add(25)  # takes slot 2 again
    assert query_of(h, tcp(sport=2, dport=81)).vs_id == 25
    assert {e.vs.vs_id: e.slot for e in h.dfs.vss.values()} == {1: 0, 2: 1, 25: 2, 20: 3}
    for vs_id in range(100, 100 + h.dfs.config.vs_entries - 4):
        assert add(vs_id) is ErrorCode.NONE
    assert add(99) is ErrorCode.BADCONFIG and add(20) is ErrorCode.NONE  # full; a known vs_id keeps its slot
