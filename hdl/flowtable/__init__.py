"""Hashed exact-match flow table (see :mod:`twinplane.model.flowtable`)."""

from .h3 import h3_index, h3_restore
from .table import FlowTable, command_layout, response_layout

__all__ = ["FlowTable", "command_layout", "h3_index", "h3_restore", "response_layout"]
