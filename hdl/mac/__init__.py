"""Ethernet MAC (IEEE 802.3 GMII/RGMII, 8-bit): GMIIRx, GMIITx, GMIIMac
(with the store-and-forward receive FIFO and counters), RGMIIAdapter and the
board-level RGMIIMac."""

from .gmii_mac import COUNTERS, GMIIMac
from .gmii_rx import GMIIRx
from .gmii_tx import GMIITx
from .rgmii import RGMIIAdapter
from .rgmii_mac import RGMIIMac

__all__ = ["COUNTERS", "GMIIMac", "GMIIRx", "GMIITx", "RGMIIAdapter", "RGMIIMac"]
