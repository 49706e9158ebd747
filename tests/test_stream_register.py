"""The stream registers (hdl/stream/): every beat through in order, none
lost or doubled, under random valid and ready; valid never follows the
consumer's ready in the same clock.  SkidBuffer and PipelineRegister: a
beat a clock.  StreamRegister: a beat every two clocks, and its ready does
not follow the consumer's either (nor SkidBuffer's)."""


import pytest

from twinplane.hdl.packet import packet_signature
from twinplane.hdl.stream.register import PipelineRegister, StreamRegister
from twinplane.hdl.stream.skid import SkidBuffer
from twinplane.sim.streams import random_handshakes


def run(seed, p_valid, p_ready, n=300, kind=StreamRegister):
    # valid is registered; StreamRegister's sink.ready is too (and SkidBuffer's).
    return random_handshakes(kind(packet_signature(8)), seed, p_valid, p_ready, n,
                             ready_registered=kind is not PipelineRegister)


@pytest.mark.parametrize("seed,p_valid,p_ready", [(1, 0.5, 0.5), (2, 1.0, 0.3), (3, 0.3, 1.0), (4, 0.9, 0.9)])
@pytest.mark.parametrize("kind", [SkidBuffer, PipelineRegister, StreamRegister])
def test_in_order_under_random_handshakes(seed, p_valid, p_ready, kind):
    run(seed, p_valid, p_ready, kind=kind)


@pytest.mark.parametrize("seed,p_valid,p_ready", [(7, 0.5, 0.5), (8, 1.0, 0.3), (9, 0.9, 0.9)])
def test_payload_in_groups_under_random_handshakes(seed, p_valid, p_ready):
    # copies=3: the 10-bit payload in groups of 3, 3 and 4 bits, each under its own "full" flop
    random_handshakes(StreamRegister(packet_signature(8), copies=3), seed, p_valid, p_ready, 300,
                      ready_registered=True)


def test_rejects_more_copies_than_bits():
    with pytest.raises(ValueError, match="copies must be between 1 and the payload's width \\(10\\), not 11"):
        StreamRegister(packet_signature(8), copies=11)


def test_half_rate():
    # Both sides always willing: a beat every two clocks.
    cycles = run(5, 1.0, 1.0, n=200)
    assert 2 * 200 - 2 <= cycles <= 2 * 200 + 2


@pytest.mark.parametrize("kind", [SkidBuffer, PipelineRegister])
def test_full_rate(kind):
    # Both sides always willing: a beat a clock, one clock of latency.
    assert run(6, 1.0, 1.0, n=200, kind=kind) <= 200 + 2


@pytest.mark.parametrize("kind", [SkidBuffer, PipelineRegister, StreamRegister])
def test_rejects_a_shape(kind):
    with pytest.raises(TypeError, match="signature must be a stream.Signature"):
        kind(8)
