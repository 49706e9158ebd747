"""SoftDFS over real UDP on 127.0.0.1: the handshake with a scripted CS, a
virtual server, then a new flow's QUERY/REPLY and the released frame."""

import asyncio
import ipaddress

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from twinplane.model.dfs import DfsConfig
from twinplane.model.scripted_cs import ScriptedCS
from twinplane.model.softdfs import SoftDFS
from twinplane.protocol.codes import Bus, CsmbType, ErrorCode, Flag
from twinplane.protocol.messages import (
    AddVs,
    CsmbAck,
    CsmbAuthResponse,
    CsmbHello,
    SsmbQuery,
    SsmbReply,
    SsmbReset,
    Translation,
    VirtualServer,
)

KEY = bytes(range(16, 32))


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self):
        self.queue = asyncio.Queue()

    def datagram_received(self, data, addr):
        self.queue.put_nowait((data, addr))


async def _endpoint():
    loop = asyncio.get_running_loop()
    transport, inbox = await loop.create_datagram_endpoint(_Inbox, local_addr=("127.0.0.1", 0))
    return transport, inbox


async def _scenario():
    config = DfsConfig(key=KEY, ssmb_port=0, csmb_port=0)
    async with SoftDFS(config) as soft:
        csmb, csmb_in = await _endpoint()
        ssmb, ssmb_in = await _endpoint()
        cs = ScriptedCS(KEY, csmb_addr=csmb.get_extra_info("sockname")[:2],
                        ssmb_addr=ssmb.get_extra_info("sockname")[:2])
        dfs_csmb = ("127.0.0.1", soft.ports[Bus.CSMB])
        dfs_ssmb = ("127.0.0.1", soft.ports[Bus.SSMB])

        async def ask(transport, inbox, bus, data, dst):
            transport.sendto(data, dst)
            reply, addr = await asyncio.wait_for(inbox.queue.get(), 5)
            assert addr[1] == dst[1]  # answered from the port it was sent to
            return cs.decode(bus, reply)

        (hello,) = await ask(csmb, csmb_in, Bus.CSMB, cs.hello(), dfs_csmb)
        assert isinstance(hello, CsmbHello) and hello.error is ErrorCode.NONE
        assert hello.ssmb_port == soft.ports[Bus.SSMB] != 0
        (resp,) = await ask(csmb, csmb_in, Bus.CSMB, cs.auth_challenge(), dfs_csmb)
        assert isinstance(resp, CsmbAuthResponse)
        cs.accept_auth(resp)
        vs = VirtualServer(vs_id=1, protocol=6, virt_addr=ipaddress.ip_address("192.0.2.10"), virt_port=80)
        (ack,) = await ask(csmb, csmb_in, Bus.CSMB, cs.encode(AddVs(vs=vs)), dfs_csmb)
        assert isinstance(ack, CsmbAck) and ack.acked_type is CsmbType.ADD_VS and ack.error is ErrorCode.NONE

        syn = bytes(Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:fe:01") / IP(src="198.51.100.7", dst="192.0.2.10")
                    / TCP(sport=1234, dport=80, flags="S"))
        data, _ = await asyncio.wait_for(ssmb_in.queue.get(), 5)
        (reset,) = cs.decode(Bus.SSMB, data)  # the fresh DFS holds no flow
        assert isinstance(reset, SsmbReset) and reset.session == cs.session
        soft.inject(0, syn)
        data, _ = await asyncio.wait_for(ssmb_in.queue.get(), 5)
        (query,) = cs.decode(Bus.SSMB, data)
        assert isinstance(query, SsmbQuery) and query.session == cs.session
        xlate = Translation(node_addr=ipaddress.ip_address("10.1.0.5"), node_port=8080, egress_port=1, client_port=0,
                            node_mac=bytes.fromhex("020000000005"), client_mac=query.client_mac)
        ssmb.sendto(cs.encode(SsmbReply(serial=query.serial, flow=query.flow, xlate=xlate,
                                        flags=Flag.TRANSLATE_ADDR | Flag.TRANSLATE_PORT)), dfs_ssmb)
        frame = await asyncio.wait_for(soft.tx[1].get(), 5)
        out = Ether(frame)
        assert (out[IP].dst, out[TCP].dport) == ("10.1.0.5", 8080)
        csmb.close()
        ssmb.close()
        return soft.dfs.counters


def test_softdfs_handshake_and_flow_over_udp():
    counters = asyncio.run(_scenario())
    assert counters["cs_authenticated"] == 1 and counters["flows_installed"] == 1
    assert not any(name.startswith("invalid") for name in counters)
