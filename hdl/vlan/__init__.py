"""802.1Q VLANs as ports: one physical port carrying several logical ones
(the ECPIX-5's single port carries the external and the internal network)."""

from .merge import VlanMerge
from .split import VlanSplit, check_vids

__all__ = ["VlanMerge", "VlanSplit", "check_vids"]
