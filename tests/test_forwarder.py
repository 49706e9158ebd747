"""The forwarder's per-frame decisions, with the real flow table and miss path:
hits are rewritten (decision + frame), FIN/RST reported, new flows to a
virtual server held and queried, frames of a pending flow held behind it,
message-port datagrams cut to their UDP payload, ARP answered, the rest
dropped and counted."""

from __future__ import annotations

import ipaddress

from amaranth import Module
from amaranth.lib.wiring import connect
from amaranth.sim import Simulator
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

from twinplane.hdl.dfs.flow_control import query_layout
from twinplane.hdl.dfs.forwarder import Forwarder, FrameKind
from twinplane.hdl.dfs.table_clients import LookupSharer
from twinplane.hdl.flowtable import FlowTable
from twinplane.hdl.miss.miss_path import MissPath
from twinplane.model.flowkey import ACTION_WIDTH, KEY_WIDTH, pack_action, pack_key, unpack_action
from twinplane.model.flowtable import FlowGeometry, FlowOp
from twinplane.sim.streams import put_frame

GEOMETRY = FlowGeometry(key_width=KEY_WIDTH, action_width=ACTION_WIDTH, buckets=4, ways=2, tables=2)
DFS_IP = "10.100.0.1"
VIP = "10.0.0.100"


def info_of(frame: bytes, released: bool = False) -> dict:
    """What the DFS top derives from the parser's record, here from scapy."""
    p = Ether(frame)
    info = {"released": int(released), "eth_src": int(p.src.replace(":", ""), 16), "kind": FrameKind.DROP}
    if ARP in p:
        info.update(kind=FrameKind.ARP, arp_request=int(p[ARP].op == 1),
                    src_ip=int(ipaddress.IPv4Address(p[ARP].psrc)), dst_ip=int(ipaddress.IPv4Address(p[ARP].pdst)))
    elif IP in p:
        ip = p[IP]
        info.update(kind=FrameKind.FLOW, src_ip=int(ipaddress.IPv4Address(ip.src)),
                    dst_ip=int(ipaddress.IPv4Address(ip.dst)), protocol=ip.proto, tos=ip.tos,
                    l3_offset=14, l4_offset=14 + 4 * ip.ihl, ip_length=ip.len, ip_end=14 + ip.len)
        if TCP in p:
            info.update(src_port=p[TCP].sport, dst_port=p[TCP].dport, tcp_flags=int(p[TCP].flags))
        elif UDP in p:
            info.update(src_port=p[UDP].sport, dst_port=p[UDP].dport)
    return info


def tcp(src, sport, dst, dport, flags="A", payload=b""):
    return bytes(Ether(src="02:00:00:00:00:0c", dst="02:00:00:00:d0:f5") / IP(src=src, dst=dst)
                 / TCP(sport=sport, dport=dport, flags=flags) / payload)


def key_of(src, sport, dst, dport, inbound=1):
    return pack_key(src_ip=int(ipaddress.IPv4Address(src)), dst_ip=int(ipaddress.IPv4Address(dst)),
                    src_port=sport, dst_port=dport, protocol=6, inbound=inbound)


def run(frames, *, external=True, installed=(), virtual_servers=(VIP,)):
    fwd = Forwarder(GEOMETRY, external=external, port=0 if external else 1)
    ft = FlowTable(GEOMETRY)
    miss = MissPath(key_width=KEY_WIDTH, query_shape=query_layout(), slots=2, slot_bytes=256)
    # The table's answer is a pulse; the sharer holds it until taken, as in the DFS.
    lookups = LookupSharer(GEOMETRY, 1)
    m = Module()
    m.submodules += [fwd, ft, miss, lookups]
    connect(m, fwd.lookup, lookups.lookups[0])
    connect(m, lookups.table_lookup, ft.lookup)
    connect(m, ft.result, lookups.table_result)
    connect(m, lookups.results[0], fwd.result)
    connect(m, fwd.touch, ft.touch)
    connect(m, fwd.hold, miss.hold)
    connect(m, fwd.hold_frame, miss.sink)
    m.d.comb += [fwd.probe_hit.eq(miss.probe_hit), fwd.probe_state.eq(miss.probe_state),
                 miss.probe_key.eq(fwd.probe_key)]
    out = {"forward": [], "decisions": [], "message": [], "arp": [], "events": [], "queries": [], "taken": 0,
           "message_bytes": 0}

    async def bench(ctx):
        ctx.set(fwd.dfs_ip, int(ipaddress.IPv4Address(DFS_IP)))
        for port in (fwd.forward_frame, fwd.message_frame):
            ctx.set(port.ready, 1)
        for s in (fwd.arp_request, fwd.tcp_event, miss.query):
            ctx.set(s.ready, 1)
        for key, action in installed:
            ctx.set(ft.cmd.valid, 1)
            ctx.set(ft.cmd.payload, {"op": FlowOp.INSERT, "key": key, "action": action, "handle": 0, "now": 0})
            await ctx.tick().until(ft.cmd.ready)
            ctx.set(ft.cmd.valid, 0)
            ctx.set(ft.rsp.ready, 1)
            await ctx.tick().until(ft.rsp.valid)
        for frame, released in frames:
            # The record stays offered until taken, after the frame's last byte.
            ctx.set(fwd.meta.valid, 1)
            ctx.set(fwd.meta.payload, info_of(frame, released))
            await put_frame(ctx, fwd.frame, frame)
            await ctx.tick().until(fwd.meta.ready)
            ctx.set(fwd.meta.valid, 0)
        await ctx.tick().repeat(50)
        out["counters"] = {n: ctx.get(getattr(fwd, n)) for n in (
            "frames", "forwarded", "held", "to_message_port", "arp_answered", "dropped_no_flow", "dropped_malformed")}
        out["miss_held"] = ctx.get(miss.frames_held)

    async def vs_cam(ctx):
        async for _, _, valid, q in ctx.tick().sample(fwd.vs_query.valid, fwd.vs_query.payload):
            if valid:
                addr = str(ipaddress.IPv4Address(q.dst_ip))
                ctx.set(fwd.vs_query.ready, 0)
                ctx.set(fwd.vs_answer.valid, 1)
                hit = addr in virtual_servers and (q.dst_port in (0, 80))
                ctx.set(fwd.vs_answer.payload, {"hit": hit, "vs_id": 7, "answer_arp": addr in virtual_servers})
            else:
                ctx.set(fwd.vs_query.ready, 1)
                ctx.set(fwd.vs_answer.valid, 0)

    async def rewriter(ctx):
        """Takes a decision as the DFS's rewriter does: once its frame's first
        byte has come (the forwarder offers it while the bytes go out)."""
        started, waiting = False, 0
        async for _, _, fv, fr, fp, dv in ctx.tick().sample(
                fwd.forward_frame.valid, fwd.forward_frame.ready, fwd.forward_frame.payload, fwd.decision.valid):
            waiting = waiting + 1 if dv and not started else 0
            assert waiting < 100, "a decision offered without its frame's bytes"
            if fv and fr and fp.first:
                assert dv, "a forwarded frame's bytes without its decision"
                started = True
            elif dv and started:
                started = False
                ctx.set(fwd.decision.ready, 1)
                continue
            ctx.set(fwd.decision.ready, 0)

    async def monitor(ctx):
        streams = {"forward": fwd.forward_frame, "message": fwd.message_frame}
        partial = {name: bytearray() for name in streams}
        frame_done = False
        async for sampled in ctx.tick().sample(
            *(x for s in streams.values() for x in (s.valid, s.ready, s.payload)),
            fwd.decision.valid & fwd.decision.ready, fwd.decision.payload, fwd.arp_request.valid, fwd.arp_request.payload,
            fwd.tcp_event.valid, fwd.tcp_event.payload, miss.query.valid, miss.query.payload,
            fwd.meta.valid, fwd.meta.ready, fwd.result.valid, fwd.result.ready,
            fwd.frame.valid, fwd.frame.ready, fwd.frame.payload,
        ):
            values = sampled[2:]
            # The record and the table's answer are read in place: taken only
            # the clock after the frame's last byte.
            mv, mr, rv, rr, fv, fr, fp = values[14:]
            assert not (mv and mr) or frame_done, "meta taken before the clock after the last byte"
            assert not (rv and rr) or frame_done, "result taken before the clock after the last byte"
            frame_done = fv and fr and fp.last
            out["taken"] += bool(mv and mr)
            for k, name in enumerate(streams):
                valid, ready, payload = values[3 * k : 3 * k + 3]
                if valid and ready:
                    out["message_bytes"] += name == "message"
                    partial[name].append(payload.data)
                    if payload.last:
                        out[name].append(bytes(partial[name]))
                        partial[name] = bytearray()
            dv, dp, av, ap, ev, ep, qv, qp = values[6:14]
            if dv:
                out["decisions"].append(unpack_action(dp.action.as_bits()))
            if av:
                out["arp"].append((ap.requester_ip, ap.target_ip))
            if ev:
                out["events"].append((ep.fin, ep.rst))
            if qv:
                out["queries"].append(qp.query.vs_id)

    sim = Simulator(m)
    sim.add_clock(8e-9)
    sim.add_testbench(bench)
    sim.add_process(vs_cam)
    sim.add_process(rewriter)
    sim.add_process(monitor)
    sim.run()
    assert out["taken"] == len(frames)  # each record taken once
    return out


def test_hits_misses_and_pending_flows():
    action = pack_action(egress_port=1, new_ip=int(ipaddress.IPv4Address("10.1.0.1")), new_port=8080,
                         translate_addr=1, translate_port=1, eth_dst=0x0200000001AA)
    known = tcp("10.2.0.1", 40001, VIP, 80)
    closing = tcp("10.2.0.1", 40001, VIP, 80, flags="FA")
    new_syn = tcp("10.2.0.2", 40002, VIP, 80, flags="S")
    new_again = tcp("10.2.0.2", 40002, VIP, 80, flags="S", payload=b"x")
    stray = tcp("10.2.0.3", 40003, "10.0.0.55", 80)  # no virtual server there
    out = run([(known, False), (closing, False), (new_syn, False), (new_again, False), (stray, False)],
              installed=[(key_of("10.2.0.1", 40001, VIP, 80), action)])
    assert out["forward"] == [known, closing]
    assert [d["new_port"] for d in out["decisions"]] == [8080, 8080]
    assert out["events"] == [(1, 0)]
    assert out["queries"] == [7]  # one QUERY for the new flow, its second frame joins it
    assert out["miss_held"] == 2
    assert out["counters"]["dropped_no_flow"] == 1 and out["counters"]["held"] == 2


def test_message_port_datagrams_arp_and_drops():
    datagram = bytes(Ether(src="02:00:00:00:c5:01", dst="02:00:00:00:d0:f5") / IP(src="10.100.0.2", dst=DFS_IP)
                     / UDP(sport=41000, dport=6341) / b"message bytes")
    arp = bytes(Ether(src="02:00:00:00:c5:01", dst="ff:ff:ff:ff:ff:ff")
                / ARP(op=1, psrc="10.100.0.2", pdst=DFS_IP, hwsrc="02:00:00:00:c5:01"))
    garbage = bytes(range(60))
    unknown = tcp("10.1.0.1", 8080, "10.2.0.9", 40009)
    out = run([(datagram, False), (arp, False), (garbage, False), (unknown, False)], external=False)
    assert out["message"] == [b"message bytes"]  # padding and headers cut
    assert out["arp"] == [(int(ipaddress.IPv4Address("10.100.0.2")), int(ipaddress.IPv4Address(DFS_IP)))]
    assert out["forward"] == []
    assert out["counters"]["dropped_malformed"] == 1 and out["counters"]["dropped_no_flow"] == 1

    # the same datagram on the external side never reaches the message port
    out = run([(datagram, False)], external=True)
    assert out["message"] == [] and out["counters"]["to_message_port"] == 0


def test_only_the_message_ports_two_udp_ports_reach_it():
    """SSMB's and CSMB's ports (6340, 6341) go to the message port; their
    neighbours and a port differing in a high bit do not (no flow: dropped)."""
    ports = (6339, 6340, 6341, 6342, 6343, 6340 ^ 0x400)

    def datagram(port):
        return bytes(Ether(src="02:00:00:00:c5:01", dst="02:00:00:00:d0:f5") / IP(src="10.100.0.2", dst=DFS_IP)
                     / UDP(sport=41000, dport=port) / f"to {port}".encode())

    out = run([(datagram(port), False) for port in ports], external=False)
    assert out["message"] == [b"to 6340", b"to 6341"]
    assert out["counters"]["to_message_port"] == 2 and out["counters"]["dropped_no_flow"] == len(ports) - 2


def test_message_port_payloads_of_zero_and_one_byte():
    def datagram(payload):  # padded to the minimum frame, as a MAC passes it on
        return bytes(Ether(src="02:00:00:00:c5:01", dst="02:00:00:00:d0:f5") / IP(src="10.100.0.2", dst=DFS_IP)
                     / UDP(sport=41000, dport=6341) / payload).ljust(60, b"\0")

    # back to back: an empty payload sends nothing, and each frame's bounds
    # (registered from its record) are its own, not the frame's before
    out = run([(datagram(b""), False), (datagram(b"m"), False), (datagram(b""), False),
               (datagram(b"message bytes"), False)], external=False)
    assert out["message"] == [b"m", b"message bytes"]
    assert out["message_bytes"] == 1 + len(b"message bytes")  # none of an empty payload's padding
    assert out["counters"]["to_message_port"] == 4


def test_released_frames_pass_and_arp_for_virtual_addresses():
    action = pack_action(egress_port=1, new_port=8080, translate_port=1)
    frame = tcp("10.2.0.1", 40001, VIP, 80)
    arp_vip = bytes(Ether(src="02:00:00:00:00:0c", dst="ff:ff:ff:ff:ff:ff")
                    / ARP(op=1, psrc="10.2.0.1", pdst=VIP, hwsrc="02:00:00:00:00:0c"))
    out = run([(frame, True), (arp_vip, False)], installed=[(key_of("10.2.0.1", 40001, VIP, 80), action)])
    assert out["forward"] == [frame]
    assert out["arp"] == [(int(ipaddress.IPv4Address("10.2.0.1")), int(ipaddress.IPv4Address(VIP)))]
