"""Hashed exact-match flow table (see :mod:`twinplane.model.flowtable`)."""

from .h3 import h3_index, h3_restore
from .table import FlowTable

__all__ = ["FlowTable", "h3_index", "h3_restore"]
