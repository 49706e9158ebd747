"""Memories with a registered read (see :mod:`.block_ram`)."""

from .block_ram import BlockRAM, ECP5Netlist, dp16kd_columns

__all__ = ["BlockRAM", "ECP5Netlist", "dp16kd_columns"]
