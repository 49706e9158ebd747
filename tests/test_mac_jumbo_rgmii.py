"""Jumbo frames through GMIIMac, and the RGMII MAC against RgmiiSource/RgmiiSink
(sim/mac/gmii_tb.py under cocotb and Icarus)."""

from twinplane.hdl.mac.gmii_mac import GMIIMac
from twinplane.hdl.mac.rgmii_mac import RGMIIMac
from twinplane.sim.runner import run_cocotb


def test_mac_gmii_jumbo():
    run_cocotb(
        GMIIMac(max_frame=9018, rx_domain="sync"),
        toplevel="gmii_mac",
        test_module="twinplane.sim.mac.gmii_tb",
        build_name="gmii_mac_w8_jumbo",
        testcase="test_bad_frames",
        extra_env={"MAC_MAX_FRAME": "9018", "MAC_CASES": "25"},
    )


def test_mac_rgmii_bad_frames():
    """The same traffic through RGMIIMac in sim mode (DDR modelled with
    rising/falling-edge registers), against RgmiiSource/RgmiiSink."""
    run_cocotb(
        RGMIIMac("sim"),
        toplevel="rgmii_mac",
        test_module="twinplane.sim.mac.gmii_tb",
        build_name="rgmii_mac_w8_sim",
        testcase="test_bad_frames",
        extra_env={"MAC_PHY": "rgmii", "MAC_CASES": "40"},
    )
