"""Simulation bridge end to end on a two-port loopback under Icarus: pcap
round trip, UDP message-port gateway with a real socket, TAP + namespaces."""

import os
import sys

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import PcapReader, PcapWriter

from twinplane.sim.bridge.loopback import CrossLoopback
from twinplane.sim.bridge.pcap import read_frames
from twinplane.sim.bridge.tap import need_root
from twinplane.sim.runner import run_cocotb

MODULE = "twinplane.sim.bridge.tb_bridge"


def run(testcase, build, extra=None):
    run_cocotb(CrossLoopback(), toplevel="bridge_loopback", test_module=MODULE,
               build_name=build, testcase=testcase,
               extra_env={"BRIDGE_PYTHON": sys.executable, **(extra or {})})


def test_pcap_round_trip(tmp_path):
    frames = [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.77.0.1", dst="10.77.0.2")
              / UDP(sport=1000 + i, dport=53) / (b"x" * (i * 37 % 300)) for i in range(12)]
    writer = PcapWriter(str(tmp_path / "in.pcap"), linktype=1)
    for f in frames:
        writer.write(f)
    writer.close()
    out = tmp_path / "out"
    run("test_pcap", "bridge_e2e", {"BRIDGE_PCAP_IN": str(tmp_path / "in.pcap"), "BRIDGE_PCAP_OUT": str(out)})
    assert read_frames(out / "port1_tx.pcap") == [bytes(f) for f in frames]
    assert read_frames(out / "port0_rx.pcap") == [bytes(f) for f in frames]
    assert read_frames(out / "port0_tx.pcap") == [] and read_frames(out / "port1_rx.pcap") == []
    with PcapReader(str(out / "port1_tx.pcap")) as reader:
        times = [p.time for p in reader]
    # Simulated time, nanosecond resolution, strictly increasing, all within the run.
    assert all(a < b for a, b in zip(times, times[1:], strict=False)) and 0 < times[-1] < 1e-3


def test_udp_gateway_cocotb():
    run("test_udp_gateway", "bridge_e2e")


def test_tap_namespaces():
    reason = need_root()
    if reason:
        print(f"skipped: {reason}")
        pytest.skip(reason)
    run("test_tap_namespaces", "bridge_e2e")
    assert not any(line.startswith(f"tpsim{os.getpid()}") for line in os.popen("ip netns list"))


