"""PHY management over MDIO (IEEE 802.3 clause 22)."""

from .master import MDIOMaster, mdio_command_layout
from .phy_init import PHYInit, PhyOp

__all__ = ["MDIOMaster", "PHYInit", "PhyOp", "mdio_command_layout"]
