"""A read pointer's "caught up with the write side" from flops.

A FIFO's read side asks every clock whether its pointer has reached the
end the write side published (``ptr == end``), and that answer gates the
read that steps the pointer.  Compared in the same clock, the pointer's
compare runs on into the read's enables (5-7 levels on the 25F).  Here both
outcomes of this clock's step are compared a clock ahead, into flops: the
pointer as it stands (``ptr``) and as it will be if it steps (``ptr1``,
``ptr + 1`` held in a register of its own, so no adder is in front of the
compare), and the step that happened picks one.  ``end`` is therefore seen
a clock late, which only holds a read back a clock: the write side only
moves ``end`` forward.  The compares are LUT4 trees on ECP5
(hdl/lut4.py: ABC chained them to 4-5 levels).

Used by :class:`~twinplane.hdl.stream.block_fifo.BlockFIFO`,
:class:`~twinplane.hdl.stream.packet_fifo.PacketFIFO` and the miss path's
reader (hdl/miss).
"""

from amaranth import Module, Mux, Signal, Value

from ..lut4 import lut_eq

__all__ = ["equal_ahead"]


def equal_ahead(m: Module, domain: str, name: str, ptr: Value, ptr1: Value, end: Value, step: Value, *,
                instance: bool) -> Value:
    """``ptr == end`` as of this clock, from three flops of ``domain``:
    ``{name}_same`` (``ptr == end`` a clock ago), ``{name}_next``
    (``ptr1 == end`` a clock ago) and ``{name}_stepped`` (``step`` a clock
    ago: the pointer moved to ``ptr1``).  ``step`` may depend on the result.
    ``instance``: the compares as LUT4 instances (:func:`~twinplane.hdl.lut4.builds_lut4s`)."""
    same = Signal(name=f"{name}_same", init=1)  # the pointers start equal
    after_step = Signal(name=f"{name}_next")
    stepped = Signal(name=f"{name}_stepped")
    m.d[domain] += [same.eq(lut_eq(m, f"{name}_same_eq", ptr, end, instance=instance)),
                    after_step.eq(lut_eq(m, f"{name}_next_eq", ptr1, end, instance=instance)),
                    stepped.eq(step)]
    return Mux(stepped, after_step, same)
