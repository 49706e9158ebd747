"""ChecksumUpdate (hdl/rewrite/checksum.py) in Amaranth's simulator against
the model (twinplane.model.checksum) and against scapy's recomputed checksums
for NAT rewrites; every pipeline depth; an exhaustive single-word sweep."""

import gc
import ipaddress
import random
import warnings

import pytest
from amaranth import Module, Signal, UnusedElaboratable
from amaranth.sim import Simulator
from scapy.layers.inet import IP, TCP, UDP
from scapy.packet import Raw

from twinplane.hdl.rewrite.checksum import ChecksumUpdate, checksum_update_value
from twinplane.model.checksum import checksum_update, internet_checksum, split32, udp_checksum_update

CORNER_WORDS = [0x0000, 0x0001, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF]


def run_vectors(dut: ChecksumUpdate, vectors):
    """Feed one vector (old_ck, olds, news, udp) per clock; return the outputs
    in order, checking out_valid follows valid ``latency`` clocks later."""
    results = []

    async def bench(ctx):
        pending = []
        for i in range(len(vectors) + dut.latency + 1):
            if i < len(vectors):
                old_ck, olds, news, udp = vectors[i]
                ctx.set(dut.valid, 1)
                ctx.set(dut.old_checksum, old_ck)
                ctx.set(dut.old_words, olds)
                ctx.set(dut.new_words, news)
                ctx.set(dut.udp, udp)
            else:
                ctx.set(dut.valid, 0)
            pending.append(i < len(vectors))
            # Output of the vector fed ``latency`` clocks ago.
            j = i - dut.latency
            if j >= 0:
                assert ctx.get(dut.out_valid) == pending[j]
                if pending[j]:
                    results.append(ctx.get(dut.new_checksum))
            if dut.latency:
                await ctx.tick()
            else:
                await ctx.delay(1e-8)  # combinational: no clock domain

    sim = Simulator(dut)
    if dut.latency:
        sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def model(old_ck, olds, news, udp):
    return (udp_checksum_update if udp else checksum_update)(old_ck, olds, news)


def random_vectors(words, count, rng):
    vectors = []
    for _ in range(count):
        pick = (lambda: rng.choice(CORNER_WORDS)) if rng.random() < 0.4 else (lambda: rng.getrandbits(16))
        olds = [pick() for _ in range(words)]
        news = [pick() for _ in range(words)]
        old_ck = pick()
        vectors.append((old_ck, olds, news, rng.random() < 0.5))
    return vectors


def _all_stages(words):
    return range(ChecksumUpdate.levels_for(words))


@pytest.mark.parametrize("words,stages", [(w, s) for w in (1, 2, 6) for s in _all_stages(w)])
def test_random_and_corners_against_model(words, stages):
    rng = random.Random(words * 100 + stages)
    vectors = random_vectors(words, 300, rng)
    # Every combination of corner values for one word, both UDP modes.
    vectors += [
        (ck, [m] * 1 + [0] * (words - 1), [m2] * 1 + [0] * (words - 1), udp)
        for ck in CORNER_WORDS
        for m in CORNER_WORDS
        for m2 in CORNER_WORDS
        for udp in (0, 1)
    ]
    dut = ChecksumUpdate(words, stages=stages)
    assert dut.latency == stages
    got = run_vectors(dut, vectors)
    assert got == [model(*v) for v in vectors]


def test_exhaustive_single_new_word():
    """All 65536 replacement values of one word, from a checksum whose
    updates pass through 0x0000 (and, with udp, the 0 -> 0xFFFF rule)."""
    old_ck, old_word = 0xDD2F, 0x5555  # RFC 1624 §4's example
    vectors = [(old_ck, [old_word], [w], int(w % 2 == 0)) for w in range(65536)]
    vectors.append((old_ck, [old_word], [0x3285], 1))  # the one update to 0, as UDP
    got = run_vectors(ChecksumUpdate(1, stages=1), vectors)
    expected = [model(*v) for v in vectors]
    assert got == expected
    assert 0x0000 in expected and 0xFFFF in expected


def test_combinational_function():
    m = Module()
    old_ck = Signal(16)
    olds = [Signal(16) for _ in range(3)]
    news = [Signal(16) for _ in range(3)]
    out = Signal(16)
    m.d.comb += out.eq(checksum_update_value(m, old_ck, olds, news))
    rng = random.Random(5)
    vectors = random_vectors(3, 200, rng)

    async def bench(ctx):
        for ck, o, n, _ in vectors:
            ctx.set(old_ck, ck)
            for s, v in zip(olds + news, o + n, strict=True):
                ctx.set(s, v)
            assert ctx.get(out) == checksum_update(ck, o, n)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def _nat_vectors(words, rng):
    """(vector, expected) pairs from scapy: a packet, a NAT rewrite of up to
    ``words`` changed words, scapy's recomputed checksums."""
    cases = []
    for n in range(40):
        tcp = n % 2 == 0
        src, dst = (str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(2))
        sport, dport = rng.getrandbits(16), rng.getrandbits(16)
        if tcp:
            l4 = TCP(sport=sport, dport=dport, seq=rng.getrandbits(32), ack=rng.getrandbits(32))
        else:
            l4 = UDP(sport=sport, dport=dport, chksum=0 if n % 10 == 1 else None)
        old = IP(bytes(IP(src=src, dst=dst) / l4 / Raw(rng.randbytes(rng.randrange(20)))))
        new = old.copy()
        layer = new[TCP] if tcp else new[UDP]
        # Destination NAT (or source NAT), plus a sequence offset on TCP.
        if n % 4 < 2:
            new.dst = str(ipaddress.IPv4Address(rng.getrandbits(32)))
            layer.dport = rng.getrandbits(16)
        else:
            new.src = str(ipaddress.IPv4Address(rng.getrandbits(32)))
            layer.sport = rng.getrandbits(16)
        if tcp and words >= 5:
            layer.seq = rng.getrandbits(32)
        del new.chksum
        if tcp or old[UDP].chksum:
            del layer.chksum
        new = IP(bytes(new))

        def addr(p):
            return [*split32(int(ipaddress.IPv4Address(p.src))), *split32(int(ipaddress.IPv4Address(p.dst)))]

        def l4w(p, tcp=tcp):
            p4 = p[TCP] if tcp else p[UDP]
            return [p4.sport, p4.dport] + ([*split32(p4.seq)] if tcp and words >= 5 else [])

        changed = [(o, w) for o, w in zip(addr(old) + l4w(old), addr(new) + l4w(new), strict=True) if o != w]
        assert len(changed) <= words
        pad = [(0, 0)] * (words - len(changed))
        olds = [o for o, _ in changed + pad]
        news = [w for _, w in changed + pad]
        ck_old = old[TCP].chksum if tcp else old[UDP].chksum
        ck_new = new[TCP].chksum if tcp else new[UDP].chksum
        cases.append(((ck_old, olds, news, int(not tcp)), ck_new))
        # The IPv4 header checksum: only the address words changed.
        ip_changed = [(o, w) for o, w in zip(addr(old), addr(new), strict=True) if o != w]
        ip_pad = [(0, 0)] * (words - len(ip_changed))
        cases.append(
            (
                (old.chksum, [o for o, _ in ip_changed + ip_pad], [w for _, w in ip_changed + ip_pad], 0),
                new.chksum,
            )
        )
    return cases


@pytest.mark.parametrize("words,stages", [(6, 0), (6, 4), (4, 1)])
def test_nat_rewrites_against_scapy(words, stages):
    cases = _nat_vectors(words, random.Random(words + stages))
    got = run_vectors(ChecksumUpdate(words, stages=stages), [v for v, _ in cases])
    assert got == [expected for _, expected in cases]


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"words": 0}, ValueError, "words must be between 1 and 1024, not 0"),
        ({"words": "6"}, TypeError, "words must be an int, not '6'"),
        ({"words": 6, "stages": 5}, ValueError, "stages must be between 0 and 4 for 6 words, not 5"),
        ({"words": 6, "stages": -1}, ValueError, "stages must be between 0 and 4 for 6 words, not -1"),
        ({"words": 6, "stages": 1.0}, TypeError, "stages must be an int, not 1.0"),
    ],
)
def test_constructor_checks(kwargs, error, message):
    # The half-built object is dropped here, inside the filter, not at exit.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(error, match=message) as excinfo:
            ChecksumUpdate(**kwargs)
        del excinfo
        gc.collect()


@pytest.mark.parametrize("l4", [TCP, UDP], ids=["tcp", "udp"])
def test_rewrite_to_the_zero_corner_against_scapy(l4):
    """A destination-port rewrite whose new sum is 0xFFFF: scapy sends 0x0000
    for TCP and 0xFFFF for UDP (RFC 768); the gateware must agree, and must
    also get back from a transmitted 0xFFFF."""
    old = IP(bytes(IP(src="10.0.0.1", dst="10.0.0.2") / l4(sport=1000, dport=2000) / Raw(b"corner")))
    seg = bytearray(bytes(old[l4]))
    ck_at = 16 if l4 is TCP else 6
    seg[ck_at : ck_at + 2] = b"\0\0"
    pseudo = bytes(old)[12:20] + bytes([0, old.proto]) + len(seg).to_bytes(2, "big")
    port = next(
        p
        for p in range(65536)
        if internet_checksum(pseudo + bytes(seg[:2]) + p.to_bytes(2, "big") + seg[4:]) == 0
    )
    new = old.copy()
    new[l4].dport = port
    del new[l4].chksum
    new = IP(bytes(new))
    udp = int(l4 is UDP)
    vectors = [
        (old[l4].chksum, [2000], [port], udp),  # into the corner
        (new[l4].chksum, [port], [2000], udp),  # and back out of it
    ]
    got = run_vectors(ChecksumUpdate(1, stages=2), vectors)
    assert got == [new[l4].chksum, old[l4].chksum]
    assert got[0] == (0xFFFF if udp else 0x0000)
