"""802.1Q VLANs as ports: one physical port carrying several logical ones
(the ECPIX-5's single port carries the external and the internal network)."""

from .merge import VlanMerge
from .split import VlanSplit

__all__ = ["VlanMerge", "VlanSplit", "check_vids"]


def check_vids(vids) -> tuple[int, ...]:
    """``vids`` as a tuple of distinct 802.1Q VLAN ids (1..4094), or ValueError."""
    vids = tuple(vids) if isinstance(vids, tuple | list) else vids
    if not isinstance(vids, tuple) or not vids:
        raise ValueError(f"vids must be a non-empty tuple of VLAN ids, not {vids!r}")
    for vid in vids:
        if not isinstance(vid, int) or isinstance(vid, bool) or not 1 <= vid <= 4094:
            raise ValueError(f"a VLAN id must be an integer 1..4094, not {vid!r}")
    if len(set(vids)) != len(vids):
        raise ValueError(f"VLAN ids must be distinct, not {vids!r}")
    return vids
