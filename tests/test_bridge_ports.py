"""Bridge port drivers (sim/bridge/ports.py) on a two-port loopback under Icarus."""

import re

import pytest

from twinplane.hdl.packet import packet_signature
from twinplane.sim.bridge.loopback import CrossLoopback
from twinplane.sim.bridge.ports import payload_bits
from twinplane.sim.runner import BUILD_ROOT, run_cocotb, write_verilog


def test_payload_bits_match_verilog():
    """The flat payload vector as Amaranth writes it: data 0..7, first 8, last 9."""
    assert packet_signature(8).members["payload"].shape.size == 10
    text = write_verilog(CrossLoopback(), "bridge_loopback", BUILD_ROOT / "bridge_bits").read_text()
    found = {}
    for field, hi, lo in re.findall(r"assign \\rx__0__payload\.(\w+)\s*= rx__0__payload\[(\d+)(?::(\d+))?\]",
                                    text):
        found[field] = int(lo or hi)
    assert found == dict(zip(("data", "first", "last"), payload_bits(8), strict=True))


@pytest.mark.filterwarnings("ignore:.*created but never used")
@pytest.mark.parametrize("kwargs, message", [
    ({"depth": 1}, "depth must be an integer >= 2, not 1"),
    ({"ports": 3}, "ports must be 2, not 3"),
])
def test_loopback_checks(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CrossLoopback(**kwargs)


def test_ports_cocotb():
    run_cocotb(CrossLoopback(), toplevel="bridge_loopback",
               test_module="twinplane.sim.bridge.tb_ports", build_name="bridge_ports")
