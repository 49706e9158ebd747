"""The checksum model (twinplane.model.checksum) against full recomputation:
scapy's own checksums for NAT rewrites of TCP/UDP/IPv4 packets (a case matrix,
Hypothesis, the 0x0000/0xFFFF corners, UDP checksum 0), and exhaustive
single-word sweeps against a recomputation with internet_checksum."""

import ipaddress
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.packet import Raw
from scapy.utils import checksum as scapy_checksum

from twinplane.model.checksum import (
    checksum_update,
    checksum_update32,
    internet_checksum,
    ones_complement_sum,
    split32,
    udp_checksum_update,
    words16,
)


def _ip(addr: str) -> int:
    return int(ipaddress.IPv4Address(addr))


def build(proto, *, src, dst, sport, dport, seq=0, ack=0, payload=b"", udp_chksum=None) -> bytes:
    if proto is TCP:
        l4 = TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags="PA")
    else:
        l4 = UDP(sport=sport, dport=dport, chksum=udp_chksum)
    return bytes(IP(src=src, dst=dst, ttl=64, id=0x1234) / l4 / Raw(payload))


def nat_rewrite(frame: bytes, **fields) -> tuple[bytes, list[int], list[int], list[int], list[int]]:
    """Rewrite ``fields`` (src, dst, sport, dport, seq, ack) with scapy, which
    recomputes both checksums.  Returns the new packet and the changed words
    (old, new) covered by the IPv4 header checksum and by the L4 checksum."""
    old = IP(frame)
    new = IP(frame)
    l4 = TCP if old.haslayer(TCP) else UDP
    for name, value in fields.items():
        layer = new if name in ("src", "dst") else new[l4]
        setattr(layer, name, value)
    del new.chksum
    if l4 is TCP or old[UDP].chksum != 0:
        del new[l4].chksum
    rebuilt = bytes(new)

    def addr_words(p):
        return [*split32(_ip(p.src)), *split32(_ip(p.dst))]

    def l4_words(p):
        words = [p[l4].sport, p[l4].dport]
        if l4 is TCP:
            words += [*split32(p[TCP].seq), *split32(p[TCP].ack)]
        return words

    new = IP(rebuilt)
    return (
        rebuilt,
        addr_words(old),
        addr_words(new),
        addr_words(old) + l4_words(old),
        addr_words(new) + l4_words(new),
    )


def check_rewrite(frame: bytes, **fields):
    rebuilt, ip_old, ip_new, l4_old, l4_new = nat_rewrite(frame, **fields)
    old, new = IP(frame), IP(rebuilt)
    assert checksum_update(old.chksum, ip_old, ip_new) == new.chksum
    if old.haslayer(TCP):
        assert checksum_update(old[TCP].chksum, l4_old, l4_new) == new[TCP].chksum
    else:
        assert udp_checksum_update(old[UDP].chksum, l4_old, l4_new) == new[UDP].chksum
    return new


REWRITES = [
    {"dst": "10.0.0.7"},
    {"src": "192.168.200.1", "sport": 40000},
    {"dst": "10.1.2.3", "dport": 8080},
    {"src": "255.255.255.254", "dst": "0.0.0.1", "sport": 0, "dport": 65535},
    {"seq": 0xFFFF_FFFF, "ack": 0},
    {"src": "172.16.0.9", "dst": "10.9.8.7", "sport": 1, "dport": 2, "seq": 0x8000_0000, "ack": 0x7FFF_FFFF},
]


@pytest.mark.parametrize("proto", [TCP, UDP], ids=["tcp", "udp"])
@pytest.mark.parametrize("payload_len", [0, 1, 2, 7, 60])
@pytest.mark.parametrize("rewrite", REWRITES, ids=range(len(REWRITES)))
def test_nat_rewrite_matrix(proto, payload_len, rewrite):
    if proto is UDP and ("seq" in rewrite or "ack" in rewrite):
        rewrite = {k: v for k, v in rewrite.items() if k not in ("seq", "ack")}
    rng = random.Random(payload_len * 31 + len(rewrite))
    frame = build(
        proto,
        src="198.51.100.20",
        dst="203.0.113.5",
        sport=51234,
        dport=443,
        seq=rng.getrandbits(32),
        ack=rng.getrandbits(32),
        payload=rng.randbytes(payload_len),
    )
    check_rewrite(frame, **rewrite)


_addr = st.integers(0, 0xFFFF_FFFF).map(lambda v: str(ipaddress.IPv4Address(v)))
_port = st.integers(0, 0xFFFF)
_u32 = st.integers(0, 0xFFFF_FFFF)


@settings(max_examples=300, deadline=None)
@given(
    tcp=st.booleans(),
    before=st.tuples(_addr, _addr, _port, _port, _u32, _u32),
    after=st.tuples(_addr, _addr, _port, _port, _u32, _u32),
    change=st.lists(st.booleans(), min_size=6, max_size=6),
    payload=st.binary(max_size=40),
)
def test_nat_rewrite_property(tcp, before, after, change, payload):
    names = ["src", "dst", "sport", "dport", "seq", "ack"]
    frame = build(
        TCP if tcp else UDP,
        **dict(zip(names, before, strict=True)),
        payload=payload,
    )
    fields = {
        n: v for n, v, c in zip(names, after, change, strict=True) if c and (tcp or n not in ("seq", "ack"))
    }
    check_rewrite(frame, **fields)


def _find_port_for_l4_sum(frame: bytes, target: int) -> int:
    """A destination port that makes the L4 checksum as computed (before the
    UDP 0 -> 0xFFFF rule) equal ``target``: full recomputation with the
    pseudo-header, independent of checksum_update."""
    ip = IP(frame)
    l4 = TCP if ip.haslayer(TCP) else UDP
    seg = bytearray(bytes(ip[l4]))
    seg[16 if l4 is TCP else 6 : (18 if l4 is TCP else 8)] = b"\0\0"
    pseudo = bytes(IP(frame))[12:20] + bytes([0, ip.proto]) + len(seg).to_bytes(2, "big")
    for port in range(65536):
        seg[2:4] = port.to_bytes(2, "big")
        if internet_checksum(pseudo + bytes(seg)) == target:
            return port
    raise AssertionError(f"no port gives L4 checksum {target:#06x}")


def test_tcp_new_checksum_0000():
    frame = build(TCP, src="10.0.0.1", dst="10.0.0.2", sport=1000, dport=2000, seq=5, ack=6, payload=b"xyz")
    port = _find_port_for_l4_sum(frame, 0x0000)
    new = check_rewrite(frame, dport=port)
    assert new[TCP].chksum == 0x0000


def test_udp_computed_zero_sent_as_ffff_and_updated_from_ffff():
    frame = build(UDP, src="10.0.0.1", dst="10.0.0.2", sport=1000, dport=2000, payload=b"hello")
    port = _find_port_for_l4_sum(frame, 0x0000)
    new = check_rewrite(frame, dport=port)
    assert new[UDP].chksum == 0xFFFF
    # And from the transmitted 0xFFFF onwards, back to an ordinary value.
    back = check_rewrite(bytes(new), dport=2000)
    assert back[UDP].chksum == IP(frame)[UDP].chksum


def test_udp_checksum_zero_stays_zero():
    frame = build(UDP, src="10.0.0.1", dst="10.0.0.2", sport=1000, dport=2000, payload=b"abc", udp_chksum=0)
    rebuilt, _, _, l4_old, l4_new = nat_rewrite(frame, src="192.0.2.1", sport=3333)
    assert IP(rebuilt)[UDP].chksum == 0
    assert l4_old != l4_new
    assert udp_checksum_update(0, l4_old, l4_new) == 0


def test_ipv4_header_checksum_0000():
    # Search the destination's low word for a header whose checksum is 0x0000.
    frame = bytearray(build(TCP, src="10.0.0.1", dst="10.0.0.2", sport=1, dport=2))
    header = bytearray(frame[:20])
    header[10:12] = b"\0\0"
    for low in range(65536):
        header[18:20] = low.to_bytes(2, "big")
        if internet_checksum(bytes(header)) == 0:
            break
    dst = str(ipaddress.IPv4Address(bytes(header[16:20])))
    new = check_rewrite(bytes(frame), dst=dst)
    assert new.chksum == 0x0000


def test_exhaustive_single_word_ipv4_header():
    """Every value of one header word: incremental == full recomputation
    (this sweep passes through the sums 0xFFFF and 0xFFFE, i.e. checksums
    0x0000 and 0x0001)."""
    header = bytearray(bytes(IP(src="198.51.100.20", dst="203.0.113.5", ttl=17, id=99) / TCP())[:20])
    old_ck = int.from_bytes(header[10:12], "big")
    assert old_ck == internet_checksum(bytes(header[:10] + b"\0\0" + header[12:]))
    old_word = int.from_bytes(header[18:20], "big")
    header[10:12] = b"\0\0"
    seen = set()
    for new_word in range(65536):
        header[18:20] = new_word.to_bytes(2, "big")
        full = internet_checksum(bytes(header))
        assert checksum_update(old_ck, [old_word], [new_word]) == full
        seen.add(full)
    assert 0x0000 in seen and 0xFFFF not in seen


def test_exhaustive_single_word_udp_rules():
    """Every value of the UDP source port, with the RFC 768 output rule."""
    frame = build(UDP, src="10.1.1.1", dst="10.2.2.2", sport=5353, dport=53, payload=b"\x01\x02\x03")
    ip = IP(frame)
    seg = bytearray(bytes(ip[UDP]))
    old_ck = int.from_bytes(seg[6:8], "big")
    seg[6:8] = b"\0\0"
    pseudo = bytes(frame[12:20]) + bytes([0, 17]) + len(seg).to_bytes(2, "big")
    sent_ffff = 0
    for port in range(65536):
        seg[0:2] = port.to_bytes(2, "big")
        full = internet_checksum(pseudo + bytes(seg)) or 0xFFFF
        sent_ffff += full == 0xFFFF
        assert udp_checksum_update(old_ck, [5353], [port]) == full
    assert sent_ffff == 1


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=1, max_size=64))
def test_internet_checksum_matches_scapy(data):
    assert internet_checksum(data) == scapy_checksum(data)


@settings(max_examples=300, deadline=None)
@given(
    data=st.lists(st.integers(0, 0xFFFF), min_size=2, max_size=30).filter(any),
    idx=st.lists(st.integers(0, 29), min_size=1, max_size=6, unique=True),
    new=st.lists(st.integers(0, 0xFFFF), min_size=6, max_size=6),
)
def test_multiword_update_equals_recompute(data, idx, new):
    idx = [i for i in idx if i < len(data)] or [0]
    old_ck = ~ones_complement_sum(data) & 0xFFFF
    changed = list(data)
    for i, v in zip(idx, new, strict=False):
        changed[i] = v
    if not any(changed):
        return  # all-zero data has no ordinary checksum representation (sum 0x0000)
    assert checksum_update(old_ck, [data[i] for i in idx], [changed[i] for i in idx]) == (
        ~ones_complement_sum(changed) & 0xFFFF
    )


def test_helpers():
    assert split32(0x0A000001) == (0x0A00, 0x0001)
    assert words16(b"\x12\x34\x56") == [0x1234, 0x5600]
    # RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum to ddf2.
    assert ones_complement_sum(words16(bytes.fromhex("0001f203f4f5f6f7"))) == 0xDDF2
    # RFC 1624 §4 example: HC 0xDD2F, m 0x5555 -> m' 0x3285 gives 0x0000 by eqn. 3.
    assert checksum_update(0xDD2F, [0x5555], [0x3285]) == 0x0000
    # A 32-bit field change is the change of its two words.
    data = [0x4500, 0x0A00, 0x0001, 0xC0A8]
    changed = [0x4500, 0xC0A8, 0x0A0B, 0xC0A8]
    old_ck = ~ones_complement_sum(data) & 0xFFFF
    assert checksum_update32(old_ck, 0x0A000001, 0xC0A80A0B) == ~ones_complement_sum(changed) & 0xFFFF
    assert checksum_update32(0, 0x0A000001, 0xC0A80A0B, udp=True) == 0


@pytest.mark.parametrize(
    "call,message",
    [
        (
            lambda: checksum_update(0x10000, [1], [2]),
            "old_checksum must be a 16-bit unsigned integer, not 65536",
        ),
        (lambda: checksum_update(1, [1, 2], [2]), "old_words and new_words differ in length: 2 != 1"),
        (lambda: checksum_update(1, [-1], [2]), r"old_words\[0\] must be a 16-bit unsigned integer, not -1"),
        (lambda: split32(1 << 32), "value must be a 32-bit unsigned integer, not 4294967296"),
    ],
)
def test_argument_checks(call, message):
    with pytest.raises(ValueError, match=message):
        call()
