"""Gateware layouts of the flow key and action, from the one declaration in
:mod:`twinplane.model.flowkey` (packed least significant field first, as
Amaranth lays out structs)."""

from amaranth.lib import data

from twinplane.model.flowkey import ACTION_FIELDS, KEY_FIELDS

__all__ = ["FlowAction", "FlowKey"]

FlowKey = data.StructLayout(dict(KEY_FIELDS))
FlowAction = data.StructLayout(dict(ACTION_FIELDS))
