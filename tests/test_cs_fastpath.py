"""The CS's fast QUERY/REPLY packing gives exactly the codec's bytes."""

import random

from twinplane.host.cs import fastpath
from twinplane.protocol.codec import Codec
from twinplane.protocol.codes import Bus, ErrorCode, Flag
from twinplane.protocol.messages import FlowSignature, SsmbQuery, SsmbReply, Translation
from twinplane.protocol.samples import random_block
from twinplane.protocol.wire import encode_addr


def test_query_layout_matches_codec():
    rng = random.Random(7)
    codec = Codec(bytes(range(16)))
    for _ in range(200):
        msg = random_block(SsmbQuery, rng)
        data = codec.encode(msg)
        assert len(data) == fastpath.QUERY_SIZE
        fields = fastpath.QUERY.unpack_from(data)
        assert fields[2] == fastpath.QUERY_TYPE and fields[7:10] == (msg.serial, msg.session, msg.seq)
        assert fields[10] == msg.flow.pack() and fields[11] == msg.client_mac and fields[12] == msg.vs_id
        f = fastpath.FLOW.unpack(fields[10])
        assert (f[0], f[1], f[2], f[3], f[4], f[8], f[9]) == (
            encode_addr(msg.flow.src_addr), encode_addr(msg.flow.dst_addr), msg.flow.src_port, msg.flow.dst_port,
            msg.flow.protocol, msg.flow.vlan_id, msg.flow.ingress_port)


def test_reply_bytes_match_codec():
    rng = random.Random(8)
    codec = Codec(bytes(range(16)))
    for _ in range(200):
        flow = random_block(FlowSignature, rng)
        x = random_block(Translation, rng)
        raw = fastpath.pack_xlate(encode_addr(x.node_addr), x.node_port, x.egress_port, x.client_port, x.node_mac,
                                  x.client_mac, x.idle_timeout_s, x.vs_id, x.node_id)
        expected_x = Translation(node_addr=x.node_addr, node_port=x.node_port, egress_port=x.egress_port,
                                 client_port=x.client_port, node_mac=x.node_mac, client_mac=x.client_mac,
                                 idle_timeout_s=x.idle_timeout_s, vs_id=x.vs_id, node_id=x.node_id)
        assert raw == expected_x.pack()
        serial, session, seq, epoch = (rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(32),
                                       rng.getrandbits(16))
        flags = int(Flag.TRANSLATE_ADDR | Flag.TRANSLATE_PORT)
        head = fastpath.HEADER.pack(1, 0, fastpath.REPLY_TYPE, 0, fastpath.REPLY_SIZE, epoch, flags, serial,
                                    session, seq)
        data = head + flow.pack() + raw
        data += codec.tag(Bus.SSMB, data)
        msg = SsmbReply(error=ErrorCode.NONE, epoch=epoch, flags=Flag(flags), serial=serial, session=session,
                        seq=seq, flow=flow, xlate=expected_x)
        assert data == codec.encode(msg)
    assert fastpath.EMPTY_XLATE == Translation().pack()


def test_decision_structs_match_codec():
    # What the QUERY loop reads in one call and writes in one call
    # (QUERY_FIELDS, REPLY_HEAD + REPLY_PREFIXED_HEADED, XLATE_CLIENT_MAC)
    # against the codec's own encoding.
    rng = random.Random(9)
    codec = Codec(bytes(range(16)))
    for _ in range(200):
        msg = random_block(SsmbQuery, rng)
        data = codec.encode(msg)
        f = msg.flow
        assert fastpath.QUERY_FIELDS.unpack_from(data) == (
            msg.serial, msg.session, msg.seq, encode_addr(f.src_addr), encode_addr(f.dst_addr), f.src_port,
            f.dst_port, f.protocol, f.vlan_id, f.ingress_port, msg.client_mac, msg.vs_id)
        x = random_block(Translation, rng)
        raw = x.pack()
        assert raw[fastpath.XLATE_CLIENT_MAC:fastpath.XLATE_CLIENT_MAC + 6] == x.client_mac
        error, epoch, flags = rng.getrandbits(8), rng.getrandbits(16), rng.getrandbits(32)
        serial, session, seq = rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(32)
        full = fastpath.REPLY_PREFIXED.pack(Bus.SSMB, 1, 0, fastpath.REPLY_TYPE, error, fastpath.REPLY_SIZE, epoch,
                                            flags, serial, session, seq, f.pack(), raw)
        head = fastpath.REPLY_HEAD.pack(Bus.SSMB, 1, 0, fastpath.REPLY_TYPE, error, fastpath.REPLY_SIZE, epoch, flags)
        assert fastpath.REPLY_PREFIXED_HEADED.pack(head, serial, session, seq, f.pack(), raw) == full
        reply = SsmbReply(error=error, epoch=epoch, flags=flags, serial=serial, session=session, seq=seq, flow=f,
                          xlate=x)
        assert full[1:] + codec.tag(Bus.SSMB, full[1:]) == codec.encode(reply)
