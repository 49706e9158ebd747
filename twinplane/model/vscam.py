# Virtual-server table: the reference model of hdl/vscam/vs_cam.py.
# Ref: the patent's virtual servers ("the DFS attempts to match the destination
#      address and port number of packets received from the external network
#      to a virtual server"), WILDCARD_ADDR / WILDCARD_PORT / NOARP_MODE flags.
"""Which virtual server a frame is for, and whether to answer ARP for an address.

A valid entry is a candidate when its protocol equals the frame's and its
``vlan_id`` is 0 (any VLAN) or equals the frame's (0 for untagged).
Precedence, best first (the lowest entry index wins a tie in a class):

1. exact: no wildcard flag, address and port equal;
2. WILDCARD_PORT: address equal, any port;
3. WILDCARD_ADDR: port equal, and the address is *not known*;
4. both wildcards: the address is not known.

"Known" address (patent: a wildcard-address server takes any address "not
matching another virtual server or other known local address"): the
``virt_addr`` of any valid entry without WILDCARD_ADDR (whatever its
protocol, port or VLAN), or ``local_addr`` (the DFS's own address; 0 = none).

ARP: answer for ``addr`` when a valid entry without WILDCARD_ADDR or
NOARP_MODE has that ``virt_addr``.
"""

from __future__ import annotations

from dataclasses import dataclass

from twinplane.protocol.codes import Flag

__all__ = ["VirtualServerTable", "VsCamEntry", "VsMatch"]

#: the flags the table keeps (everything else in an ADD_VS header is ignored here)
CAM_FLAGS = Flag.WILDCARD_ADDR | Flag.WILDCARD_PORT | Flag.NOARP_MODE
__all__ += ["CAM_FLAGS"]


@dataclass(frozen=True)
class VsCamEntry:
    valid: bool = False
    vs_id: int = 0
    protocol: int = 0
    virt_addr: int = 0
    """IPv4 address as a 32-bit integer"""
    virt_port: int = 0
    flags: Flag = Flag.NONE
    vlan_id: int = 0
    """0: any VLAN (and untagged)"""


@dataclass(frozen=True)
class VsMatch:
    vs_id: int
    index: int
    flags: Flag


def _rank(flags: Flag) -> int:
    """0 exact, 1 WILDCARD_PORT, 2 WILDCARD_ADDR, 3 both."""
    return 2 * bool(flags & Flag.WILDCARD_ADDR) + bool(flags & Flag.WILDCARD_PORT)


class VirtualServerTable:
    """``entries`` slots, written by index as the message port does."""

    def __init__(self, entries: int = 16):
        if not isinstance(entries, int) or entries < 1:
            raise ValueError(f"entries must be a positive integer, not {entries!r}")
        self.entries = [VsCamEntry() for _ in range(entries)]

    def write(self, index: int, entry: VsCamEntry) -> None:
        if not 0 <= index < len(self.entries):
            raise ValueError(f"index must be in 0..{len(self.entries) - 1}, not {index!r}")
        self.entries[index] = VsCamEntry(entry.valid, entry.vs_id, entry.protocol, entry.virt_addr,
                                         entry.virt_port, Flag(entry.flags) & CAM_FLAGS, entry.vlan_id)

    def known(self, addr: int, local_addr: int = 0) -> bool:
        """The address belongs to a (non-wildcard-address) virtual server or the DFS."""
        if local_addr and addr == local_addr:
            return True
        return any(e.valid and not e.flags & Flag.WILDCARD_ADDR and e.virt_addr == addr for e in self.entries)

    def lookup(self, dst_ip: int, dst_port: int, protocol: int, vlan_id: int = 0,
               local_addr: int = 0) -> VsMatch | None:
        """The virtual server a frame to ``dst_ip:dst_port`` is for, or None."""
        best: tuple[int, int] | None = None
        known = None
        for i, e in enumerate(self.entries):
            if not e.valid or e.protocol != protocol or e.vlan_id not in (0, vlan_id):
                continue
            rank = _rank(e.flags)
            if not e.flags & Flag.WILDCARD_ADDR and e.virt_addr != dst_ip:
                continue
            if not e.flags & Flag.WILDCARD_PORT and e.virt_port != dst_port:
                continue
            if e.flags & Flag.WILDCARD_ADDR:
                if known is None:
                    known = self.known(dst_ip, local_addr)
                if known:
                    continue
            if best is None or rank < best[0]:
                best = (rank, i)
        if best is None:
            return None
        e = self.entries[best[1]]
        return VsMatch(e.vs_id, best[1], e.flags)

    def answer_arp(self, addr: int) -> bool:
        """The DFS answers ARP for ``addr`` on behalf of a virtual server."""
        return any(e.valid and not e.flags & (Flag.WILDCARD_ADDR | Flag.NOARP_MODE) and e.virt_addr == addr
                   for e in self.entries)
