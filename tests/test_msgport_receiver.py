"""The gateware message receiver accepts exactly the messages the host codec
accepts (of those a DFS receives), with the same fields, and counts the rest."""

from __future__ import annotations

import random

from amaranth.sim import Simulator

from twinplane.hdl.msgport.layout import DFS_RECEIVES
from twinplane.hdl.msgport.receiver import MessageReceiver
from twinplane.protocol.codec import Codec
from twinplane.protocol.codes import Bus
from twinplane.protocol.layouts import message_layout
from twinplane.protocol.messages import ALL_MESSAGES, HEADER_SIZE, TAG_SIZE, Message, SsmbQuery
from twinplane.protocol.samples import random_block
from twinplane.sim.streams import put_frame

KEY = bytes(range(16))


def run_receiver(datagrams: list[tuple[Bus, bytes]], key: bytes = KEY):
    dut = MessageReceiver()
    received: list[tuple[int, int, int, int]] = []
    counters = {}

    async def producer(ctx):
        ctx.set(dut.key, int.from_bytes(key, "little"))
        ctx.set(dut.source.ready, 1)
        for number, (bus, payload) in enumerate(datagrams):
            ctx.set(dut.bus, int(bus))
            ctx.set(dut.src_ip, 0x0A000000 + number)
            ctx.set(dut.src_port, 40000 + number)
            await put_frame(ctx, dut.sink, payload)
            if rng_gap := number % 3:
                await ctx.tick().repeat(rng_gap)
        await ctx.tick().repeat(400)  # the last message is hashed from the register
        for name in ("accepted", "bad_length", "truncated", "unexpected", "bad_version", "bad_tag"):
            counters[name] = ctx.get(getattr(dut, name))

    async def consumer(ctx):
        async for _, _, valid, payload in ctx.tick().sample(dut.source.valid, dut.source.payload):
            if valid:
                signed_bytes = payload.header.msg_length - TAG_SIZE
                assert payload.header.as_bits() == payload.raw >> 8 * (signed_bytes - HEADER_SIZE)
                received.append((payload.bus, payload.msg_type, payload.raw, payload.src_ip))

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(producer)
    sim.add_process(consumer)
    sim.run()
    return received, counters


def reference(datagrams: list[tuple[Bus, bytes]], key: bytes = KEY):
    codec = Codec(key)
    out = []
    for number, (bus, payload) in enumerate(datagrams):
        offset = 0
        for item in codec.iter_decode(bus, payload):
            if isinstance(item, Message) and type(item) in DFS_RECEIVES:
                signed = codec.encode(item)[:-TAG_SIZE]
                out.append((int(bus), int(item.TYPE), int.from_bytes(signed, "big"), 0x0A000000 + number))
            offset += 1
    return out


def test_every_message_a_dfs_receives_comes_out_with_its_fields():
    rng = random.Random(11)
    codec = Codec(KEY)
    datagrams = []
    for cls in DFS_RECEIVES:
        msgs = [random_block(cls, rng) for _ in range(2)]
        datagrams.append((cls.BUS, b"".join(codec.encode(m) for m in msgs)))
    received, counters = run_receiver(datagrams)
    assert received == reference(datagrams)
    assert counters["accepted"] == 2 * len(DFS_RECEIVES)
    # and the layout view of `raw` reads the same fields the host decoded
    for (bus, msg_type, raw, _), cls in zip(received[::2], DFS_RECEIVES, strict=True):
        assert message_layout(cls).size <= 8 * (cls.wire_size() - TAG_SIZE)
        assert raw.bit_length() <= message_layout(cls).size
        assert (bus, msg_type) == (int(cls.BUS), int(cls.TYPE))


def test_forged_truncated_and_unexpected_messages_are_counted_and_skipped():
    rng = random.Random(12)
    codec = Codec(KEY)
    good = [codec.encode(random_block(cls, rng)) for cls in DFS_RECEIVES[:4]]
    forged = bytearray(good[1])
    forged[HEADER_SIZE + 3] ^= 0x40
    wrong_key = Codec(bytes(16)).encode(random_block(DFS_RECEIVES[0], rng))
    query = codec.encode(SsmbQuery(seq=3))  # DFS -> CS only: unexpected at a DFS
    bad_version = bytearray(good[2])
    bad_version[0] = 7
    bad_version = bytes(bad_version[:-TAG_SIZE]) + codec.tag(Bus.SSMB, bytes(bad_version[:-TAG_SIZE]))
    datagrams = [
        (Bus.SSMB, good[0] + bytes(forged) + good[2]),
        (Bus.SSMB, wrong_key + good[3]),
        (Bus.SSMB, query + good[0]),
        (Bus.SSMB, good[1][:50]),  # cut inside the body
        (Bus.SSMB, good[1][:-3]),  # cut inside the tag
        (Bus.SSMB, good[0][:4] + b"\x00\x05" + good[0][6:] + good[3]),  # length out of range ends the datagram
        (Bus.SSMB, bad_version + good[3]),
        (Bus.CSMB, good[0]),  # an SSMB message on the CSMB port: bad tag (domain separation)
    ]
    received, counters = run_receiver(datagrams)
    assert received == reference(datagrams)
    assert counters == {
        "accepted": 5,
        "bad_tag": 3,
        "unexpected": 1,
        "truncated": 2,
        "bad_length": 1,
        "bad_version": 1,
    }


def test_random_mutations_match_the_host_codec():
    rng = random.Random(13)
    codec = Codec(KEY)
    candidates = [cls for cls in ALL_MESSAGES if not (cls.BODY and cls.BODY[-1].variable)]
    datagrams = []
    for _ in range(25):
        msgs = [random_block(rng.choice(candidates), rng) for _ in range(rng.randint(1, 3))]
        bus = rng.choice(list(Bus))
        payload = bytearray(b"".join(codec.encode(m) for m in msgs if m.BUS is bus) or codec.encode(msgs[0]))
        for _ in range(rng.randint(0, 2)):
            kind = rng.randrange(3)
            if kind == 0 and payload:
                payload[rng.randrange(len(payload))] ^= 1 << rng.randrange(8)
            elif kind == 1:
                payload = payload[: rng.randint(1, len(payload))]
            else:
                payload += rng.randbytes(rng.randint(1, 40))
        datagrams.append((bus, bytes(payload)))
    received, counters = run_receiver(datagrams)
    assert received == reference(datagrams)
    assert counters["accepted"] == len(received)


def test_a_length_with_its_high_byte_set_ends_the_datagram():
    # The receiver checks msg_length's high byte when byte 4 is taken and its
    # low byte at byte 5: a high byte of 1 over an in-range low byte is out
    # of range (256 + the real length), as the host codec says.
    rng = random.Random(14)
    codec = Codec(KEY)
    good = [codec.encode(random_block(cls, rng)) for cls in DFS_RECEIVES[:2]]
    long = good[0][:4] + bytes([1]) + good[0][5:]
    datagrams = [(Bus.SSMB, long + good[1]), (Bus.SSMB, good[1])]
    received, counters = run_receiver(datagrams)
    assert received == reference(datagrams)
    assert counters["bad_length"] == 1 and counters["accepted"] == 1
