"""The SipHash-2-4 core under cocotb and Icarus (sim/crypto/siphash_tb.py)."""

from twinplane.hdl.crypto.siphash import SipHash24
from twinplane.sim.runner import run_cocotb


def test_siphash_cocotb():
    run_cocotb(
        SipHash24(),
        toplevel="siphash24",
        test_module="twinplane.sim.crypto.siphash_tb",
        build_name="siphash24",
    )
