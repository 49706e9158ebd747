"""HeldCoreMessage: a core message held as its bytes, offered as the session
engine takes one -- the narrow from_core fields come from the header (and a
QUERY's flow), the read port answers every word a clock after its index (0
while not enabled), and the stream's handshake passes through."""

from __future__ import annotations

import ipaddress

from amaranth.sim import Simulator

from twinplane.hdl.msgport.held import HeldCoreMessage
from twinplane.hdl.msgport.layout import MAX_SENT_BYTES
from twinplane.protocol.codec import Codec
from twinplane.protocol.codes import ErrorCode
from twinplane.protocol.messages import TAG_SIZE, FlowSignature, SsmbQuery, SsmbStats

CODEC = Codec(bytes(16))


def test_fields_and_words():
    flow = FlowSignature(src_addr=ipaddress.IPv4Address("10.2.0.1"), dst_addr=ipaddress.IPv4Address("10.0.0.100"),
                         src_port=40001, dst_port=80, protocol=6, tos=0x10)
    query = SsmbQuery(serial=77, vs_id=7, flow=flow, session=0x1234_5678)
    stats = SsmbStats(serial=9, error=ErrorCode.CONNALIVE)
    dut = HeldCoreMessage()

    async def bench(ctx):
        for msg in (query, stats):
            signed = CODEC.encode(msg)[:-TAG_SIZE]
            ctx.set(dut.sink.valid, 1)
            ctx.set(dut.sink.payload, {"length": len(signed),
                                       "raw": int.from_bytes(signed, "big") << 8 * (MAX_SENT_BYTES - len(signed))})
            await ctx.tick()
            out = ctx.get(dut.source.payload)
            assert ctx.get(dut.source.valid) and not ctx.get(dut.sink.ready)
            assert (out.length, out.msg_type, out.error, out.session) == (len(signed), msg.TYPE, msg.error,
                                                                          msg.session)
            if isinstance(msg, SsmbQuery):
                assert (out.flow.src_addr & 0xFFFF_FFFF, out.flow.dst_addr & 0xFFFF_FFFF, out.flow.src_port,
                        out.flow.dst_port, out.flow.protocol, out.flow.tos) == (
                    int(flow.src_addr), int(flow.dst_addr), 40001, 80, 6, 0x10)
            # Not read (en low): 0.
            ctx.set(dut.read.index, 0)
            ctx.set(dut.read.word_at, 1)
            await ctx.tick()
            assert ctx.get(dut.read.word) == 0
            # Every byte, word by word, last first: the word a clock after its
            # index (registered: the next index asked meanwhile changes nothing).
            ctx.set(dut.read.en, 1)
            read = bytearray(8 * ((len(signed) + 7) // 8))
            words = list(reversed(range(len(read) // 8)))
            for w, after in zip(words, words[1:] + [0], strict=True):
                ctx.set(dut.read.index, 8 * w + (w % 8))  # any byte of the word names it
                ctx.set(dut.read.word_at, 1 << w)
                await ctx.tick()
                ctx.set(dut.read.index, 8 * after)
                ctx.set(dut.read.word_at, 1 << after)
                read[8 * w : 8 * w + 8] = ctx.get(dut.read.word).to_bytes(8, "little")
            assert bytes(read[: len(signed)]) == signed
            ctx.set(dut.read.en, 0)
            ctx.set(dut.source.ready, 1)
            assert ctx.get(dut.sink.ready)
            await ctx.tick()
            ctx.set(dut.source.ready, 0)
            ctx.set(dut.sink.valid, 0)
            assert not ctx.get(dut.source.valid)

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(bench)
    sim.run()
