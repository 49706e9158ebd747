"""GMIIMac receive errors under cocotb and Icarus (sim/mac/gmii_tb.py):
bad FCS, runts, oversize, rx_er, cut-off frames, random bytes, one and two clocks."""

from twinplane.hdl.mac.gmii_mac import GMIIMac
from twinplane.sim.runner import run_cocotb


def test_mac_gmii_bad_frames():
    run_cocotb(
        GMIIMac(rx_domain="sync"),
        toplevel="gmii_mac",
        test_module="twinplane.sim.mac.gmii_tb",
        build_name="gmii_mac_w8",
        testcase="test_bad_frames",
        extra_env={"MAC_CASES": "150"},
    )


def test_mac_gmii_bad_frames_two_clocks():
    run_cocotb(
        GMIIMac(),
        toplevel="gmii_mac",
        test_module="twinplane.sim.mac.gmii_tb",
        build_name="gmii_mac_w8_cdc",
        testcase="test_bad_frames",
        extra_env={"MAC_RX_CLOCK": "rx_clk", "MAC_CASES": "80"},
    )
