"""The one protocol declaration and everything made from it agree: host codec,
Amaranth layouts, scapy layers and docs/protocol.md; bad input raises only
DecodeError naming the field."""

from __future__ import annotations

import dataclasses
import ipaddress
import random

import pytest
import siphashc
from amaranth import Module, Signal
from amaranth.lib import data
from amaranth.sim import Simulator

from twinplane.protocol import docgen
from twinplane.protocol.codec import MAX_DATAGRAM, Codec, DecodeError, ReplayWindow, auth_response, session_id
from twinplane.protocol.codes import Bus, ErrorCode, SsmbType
from twinplane.protocol.layouts import field_bit_offsets, message_layout
from twinplane.protocol.messages import (
    ALL_MESSAGES,
    HEADER_SIZE,
    TAG_SIZE,
    Block,
    Message,
    SsmbAppQuery,
    SsmbQuery,
    SsmbReply,
)
from twinplane.protocol.samples import as_int, leaf_values, random_block
from twinplane.protocol.siphash import siphash24
from twinplane.protocol.wire import Kind

KEY = bytes(range(16))


def leaf_byte_offsets(cls: type[Block], base: int = 0, prefix: str = "") -> dict[str, tuple[int, int]]:
    out = {}
    for f, offset in cls.OFFSETS:
        if f.kind is Kind.BLOCK:
            out.update(leaf_byte_offsets(f.block, base + offset, f"{prefix}{f.name}."))
        elif not f.variable:
            out[f"{prefix}{f.name}"] = (base + offset, f.size)
    return out


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=lambda c: c.__name__)
def test_round_trip_on_host(cls):
    rng = random.Random(cls.__name__)
    codec = Codec(KEY)
    for _ in range(50):
        msg = random_block(cls, rng)
        wire = codec.encode(msg)
        assert len(wire) == msg.msg_length <= MAX_DATAGRAM
        assert codec.decode(cls.BUS, wire) == [msg]


def test_batches_split_at_datagram_limit_and_keep_order():
    rng = random.Random(1)
    codec = Codec(KEY)
    msgs = [random_block(rng.choice([SsmbQuery, SsmbReply]), rng) for _ in range(100)]
    datagrams = codec.encode_batch(msgs)
    assert all(len(d) <= MAX_DATAGRAM for d in datagrams)
    assert len(datagrams) < len(msgs)  # batched, not one per datagram
    assert [m for d in datagrams for m in codec.decode(Bus.SSMB, d)] == msgs


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=lambda c: c.__name__)
def test_layout_offsets_match_codec_offsets(cls):
    """A field at byte offset o, size n of an L-byte message sits at bit
    8*(L-o-n) of the layout: the byte order rule of layouts.py."""
    fixed = HEADER_SIZE + sum(f.size for f in cls.BODY if not f.variable)
    assert message_layout(cls).size == 8 * fixed
    bits = field_bit_offsets(cls)
    byte_offsets = leaf_byte_offsets(cls)
    assert set(bits) == set(byte_offsets)
    for name, (offset, size) in byte_offsets.items():
        assert bits[name] == (8 * (fixed - offset - size), 8 * size), name


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=lambda c: c.__name__)
def test_scapy_dissects_every_field(cls):
    from scapy.layers.inet import IP, UDP
    from scapy.packet import Raw

    from twinplane.protocol.codes import CSMB_UDP_PORT, SSMB_UDP_PORT
    from twinplane.protocol.scapy_layers import BODY_LAYERS, CSMB, SSMB

    rng = random.Random(cls.__name__ + "scapy")
    codec = Codec(KEY)
    msgs = [random_block(cls, rng) for _ in range(3)]
    payload = b"".join(codec.encode(m) for m in msgs)
    port = SSMB_UDP_PORT if cls.BUS is Bus.SSMB else CSMB_UDP_PORT
    packet = IP(bytes(IP() / UDP(sport=40000, dport=port) / payload))
    layer = packet[UDP].payload
    for msg in msgs:
        assert isinstance(layer, SSMB if cls.BUS is Bus.SSMB else CSMB)
        body = layer.payload
        assert isinstance(body, BODY_LAYERS[(cls.BUS, int(cls.TYPE))])
        for name, value in leaf_values(msg).items():
            scapy_name = name.replace(".", "_")
            got = layer.getfieldval(scapy_name) if scapy_name in layer.fields else body.getfieldval(scapy_name)
            if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
                got = ipaddress.ip_address(got)
                value = ipaddress.IPv6Address(as_int(value))
            elif isinstance(value, bytes) and isinstance(got, str):
                got = bytes.fromhex(got.replace(":", ""))
            assert as_int(got) == as_int(value), scapy_name
        if cls.BODY and cls.BODY[-1].variable:
            assert body.getfieldval(cls.BODY[-1].name) == getattr(msg, cls.BODY[-1].name)
        assert body.tag == codec.encode(msg)[-TAG_SIZE:]
        layer = body.payload
    assert isinstance(layer, Raw | type(layer)) and not bytes(layer)


def test_docs_are_generated_from_the_declaration():
    assert docgen.DOC_PATH.read_text() == docgen.render(), "docs/protocol.md is stale: run `twinplane docs`"
    text = docgen.render()
    for cls in ALL_MESSAGES:
        assert f"`{cls.__name__}`, msg_type {int(cls.TYPE)}" in text
        for name, (offset, size) in leaf_byte_offsets(cls).items():
            if "." in name or offset >= HEADER_SIZE:
                assert f"| {offset} | {size} | `{name}` |" in text, (cls.__name__, name)


@pytest.mark.parametrize("cls", [SsmbQuery, SsmbReply], ids=lambda c: c.__name__)
def test_gateware_layout_round_trip(cls):
    """Host bytes -> gateware fields -> host bytes, through Amaranth's simulator:
    bytes shifted in most significant first are viewed through the layout, and a
    view filled in gateware shifted out gives the host's bytes."""
    rng = random.Random(7)
    codec = Codec(KEY)
    msgs = [random_block(cls, rng) for _ in range(3)]
    layout = message_layout(cls)
    nbytes = layout.size // 8

    m = Module()
    byte_in = Signal(8)
    shift = Signal()
    register = Signal(layout.size)
    with m.If(shift):
        m.d.sync += register.eq((register << 8) | byte_in)
    view = data.View(layout, register)
    # Transmit side: a view filled field by field, loaded into a shift
    # register and shifted out most significant byte first.
    tx_view = Signal(layout)
    tx_shift = Signal(layout.size)
    load = Signal()
    with m.If(load):
        m.d.sync += tx_shift.eq(tx_view)
    with m.Else():
        m.d.sync += tx_shift.eq(tx_shift << 8)
    tx_byte = tx_shift[-8:]

    def get(ctx, root, dotted):
        for part in dotted.split("."):
            root = getattr(root, part)
        return ctx.get(root.as_value() if hasattr(root, "as_value") else root)

    async def bench(ctx):
        for msg in msgs:
            wire = codec.encode(msg)[: nbytes]
            ctx.set(shift, 1)
            for byte in wire:
                ctx.set(byte_in, byte)
                await ctx.tick()
            ctx.set(shift, 0)
            for name, value in leaf_values(msg).items():
                assert get(ctx, view, name) == as_int(value), name
            # and back out: fill the transmit view field by field
            for name, value in leaf_values(msg).items():
                target = tx_view
                for part in name.split("."):
                    target = getattr(target, part)
                ctx.set(target, as_int(value))
            ctx.set(load, 1)
            await ctx.tick()
            ctx.set(load, 0)
            out = bytearray()
            for _ in range(nbytes):
                out.append(ctx.get(tx_byte))
                await ctx.tick()
            assert bytes(out) == wire

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_decode_errors_name_field_and_problem():
    codec = Codec(KEY)
    wire = codec.encode(SsmbQuery(seq=1))

    def problem(data, bus=Bus.SSMB):
        with pytest.raises(DecodeError) as info:
            codec.decode(bus, data)
        return info.value

    assert problem(wire[:20]).field == "header"
    assert "truncated" in str(problem(wire[:20]))
    assert problem(wire[:-1]).field == "msg_length"
    assert "length mismatch" in str(problem(wire[:-1]))
    bad_type = bytearray(wire)
    bad_type[2] = 200
    assert problem(bytes(bad_type)).field == "msg_type"
    assert "unknown type 200" in str(problem(bytes(bad_type)))
    bad_version = bytearray(wire)
    bad_version[0] = 9
    assert "bad version 9" in str(problem(bytes(bad_version)))
    forged = bytearray(wire)
    forged[40] ^= 1
    assert problem(bytes(forged)).field == "tag"
    assert "bad tag" in str(problem(bytes(forged)))
    assert problem(wire, bus=Bus.CSMB).field == "tag"  # domain-separated by bus
    assert "bad tag" in str(problem(Codec(bytes(16)).encode(SsmbQuery(seq=1))))
    # A body that does not match its type's length: re-tag a short QUERY.
    short = bytearray(wire[: HEADER_SIZE + 10])
    short[4:6] = (len(short) + TAG_SIZE).to_bytes(2, "big")
    short = bytes(short) + codec.tag(Bus.SSMB, bytes(short))
    err = problem(short)
    assert err.field == "SsmbQuery" and "truncated" in err.problem


def test_replay_window():
    window = ReplayWindow()
    for seq in (1, 2, 5, 4, 100, 40):
        window.check(seq)
    for seq in (1, 2, 5, 100, 0, 30):
        with pytest.raises(DecodeError, match="replayed") as info:
            window.check(seq)
        assert info.value.field == "seq"
    window.check(99)


def test_bad_message_in_a_batch_skips_only_that_message():
    codec = Codec(KEY)
    good = [codec.encode(SsmbQuery(seq=n, serial=n)) for n in range(1, 4)]
    forged = bytearray(good[1])
    forged[30] ^= 0xFF
    results = list(codec.iter_decode(Bus.SSMB, good[0] + bytes(forged) + good[2]))
    assert [type(r).__name__ for r in results] == ["SsmbQuery", "DecodeError", "SsmbQuery"]
    assert results[1].field == "tag"


def test_fuzz_only_decode_errors():
    """10,000 random and 10,000 mutated byte strings: nothing but DecodeError."""
    rng = random.Random(2024)
    codec = Codec(KEY)
    valid = [codec.encode(random_block(cls, rng)) for cls in ALL_MESSAGES]
    inputs = [rng.randbytes(rng.randint(0, 300)) for _ in range(10_000)]
    for _ in range(10_000):
        wire = bytearray(rng.choice(valid) + (rng.choice(valid) if rng.random() < 0.3 else b""))
        for _ in range(rng.randint(1, 4)):
            action = rng.randrange(4)
            if action == 0 and wire:
                wire[rng.randrange(len(wire))] = rng.getrandbits(8)
            elif action == 1:
                wire = wire[: rng.randint(0, len(wire))]
            elif action == 2:
                wire += rng.randbytes(rng.randint(1, 20))
            elif action == 3 and len(wire) > 6:
                wire[4:6] = rng.getrandbits(16).to_bytes(2, "big")
        inputs.append(bytes(wire))
    errors = 0
    for data_ in inputs:
        for bus in Bus:
            try:
                codec.decode(bus, data_)
            except DecodeError:
                errors += 1
            for item in codec.iter_decode(bus, data_):
                assert isinstance(item, Message | DecodeError)
    assert errors > len(inputs)  # nearly everything is refused on at least one bus


def test_siphash_reference_matches_c_implementation_and_paper():
    # Aumasson & Bernstein 2012, Appendix A: key 00..0f, message 00..0e.
    assert siphash24(KEY, bytes(range(15))) == 0xA129CA6149BE45E5
    assert siphash24(KEY, b"") == 0x726FDB47DD0E0E31
    rng = random.Random(3)
    for length in range(0, 80):
        key, msg = rng.randbytes(16), rng.randbytes(length)
        assert siphash24(key, msg) == siphashc.siphash(key, msg)


def test_auth_helpers():
    challenge, nonce = b"c" * 8, b"n" * 8
    assert auth_response(KEY, challenge, nonce) == siphash24(KEY, b"twinplane-auth" + challenge + nonce).to_bytes(
        8, "little"
    )
    assert session_id(KEY, challenge, nonce) != session_id(KEY, challenge, b"m" * 8)
    with pytest.raises(ValueError, match="16 bytes"):
        Codec(b"short")


def test_message_declaration_rules():
    assert {m.TYPE for m in ALL_MESSAGES if m.BUS is Bus.SSMB} == set(SsmbType)
    assert max(m.wire_size() for m in ALL_MESSAGES) <= MAX_DATAGRAM
    assert SsmbAppQuery.BODY[-1].variable
    msg = SsmbQuery(error=ErrorCode.CONNLIMIT)
    assert msg.msg_type == SsmbType.QUERY
    with pytest.raises(ValueError, match="does not fit"):
        dataclasses.replace(msg, vs_id=1 << 16).pack()
