"""The flow key and action pack the same way in Python and in the gateware layouts."""

import random

import pytest
from amaranth.lib import data

from twinplane.hdl.dfs.layouts import FlowAction, FlowKey
from twinplane.model.flowkey import (
    ACTION_FIELDS,
    ACTION_WIDTH,
    KEY_FIELDS,
    KEY_WIDTH,
    pack_action,
    pack_key,
    unpack_action,
    unpack_key,
)


@pytest.mark.parametrize(("layout", "fields", "pack", "unpack", "width"), [
    (FlowKey, KEY_FIELDS, pack_key, unpack_key, KEY_WIDTH),
    (FlowAction, ACTION_FIELDS, pack_action, unpack_action, ACTION_WIDTH),
])
def test_python_packing_is_the_layout(layout, fields, pack, unpack, width):
    assert layout.size == width
    rng = random.Random(width)
    for _ in range(100):
        values = {name: rng.getrandbits(bits) for name, bits in fields}
        word = pack(**values)
        assert unpack(word) == values
        const = data.Const(layout, word)
        assert {name: getattr(const, name) for name, _ in fields} == values


def test_pack_checks_fields():
    with pytest.raises(ValueError, match=r"key.protocol: 256 does not fit in 8 bits"):
        pack_key(protocol=256)
    with pytest.raises(ValueError, match="unknown fields"):
        pack_action(colour=1)
