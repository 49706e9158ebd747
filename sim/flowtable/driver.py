"""Amaranth-simulator drivers for :class:`twinplane.hdl.flowtable.FlowTable`.

Each coroutine takes the testbench context ``ctx`` and the table ``dut``; they
follow the stream rules (valid held until the transfer).
"""

from twinplane.hdl.flowtable import FlowTable
from twinplane.model.flowtable import FlowOp

__all__ = ["LOOKUP_LATENCY", "command", "lookup_burst", "rsp_fields", "touch_burst"]

LOOKUP_LATENCY = FlowTable.latency

RSP_FIELDS = ("op", "status", "found", "handle", "key", "action", "packets", "bytes",
              "last_seen")


def rsp_fields(payload) -> dict:
    return {name: int(getattr(payload, name)) for name in RSP_FIELDS}


async def command(ctx, dut, op: FlowOp, *, key=0, action=0, handle=0, keep=0, now=0) -> dict:
    """Send one command and wait for its response; returns the response fields.
    ``keep`` (INSERT): never evict ``handle``."""
    p = dut.cmd.payload
    ctx.set(p.op, op)
    ctx.set(p.key, key)
    ctx.set(p.action, action)
    ctx.set(p.handle, handle)
    ctx.set(p.keep, keep)
    ctx.set(p.now, now)
    ctx.set(dut.cmd.valid, 1)
    await ctx.tick().until(dut.cmd.ready)
    ctx.set(dut.cmd.valid, 0)
    ctx.set(dut.rsp.ready, 1)
    while not ctx.get(dut.rsp.valid):
        await ctx.tick()
    rsp = rsp_fields(ctx.get(dut.rsp.payload))
    await ctx.tick()
    ctx.set(dut.rsp.ready, 0)
    return rsp


async def lookup_burst(ctx, dut, keys, *, latency=LOOKUP_LATENCY) -> list[tuple[int, int, int, int]]:
    """Look up ``keys`` one per clock; returns (key, hit, handle, action) per result.

    Also checks that results come back exactly ``latency`` clocks later, in order.
    """
    results = []
    pending = list(keys) + [None] * (latency + 1)
    for cycle, key in enumerate(pending):
        ctx.set(dut.lookup.valid, key is not None)
        ctx.set(dut.lookup.payload.key, key or 0)
        if ctx.get(dut.result.valid):
            r = ctx.get(dut.result.payload)
            results.append((int(r.key), int(r.hit), int(r.handle), int(r.action)))
            assert int(r.key) == keys[cycle - latency], "result out of order or late"
        else:
            assert not 0 <= cycle - latency < len(keys), f"no result in cycle {cycle}"
        await ctx.tick()
    ctx.set(dut.lookup.valid, 0)
    return results


async def touch_burst(ctx, dut, touches):
    """Apply (handle, nbytes, now) counter updates, one per clock."""
    for handle, nbytes, now in touches:
        ctx.set(dut.touch.valid, 1)
        ctx.set(dut.touch.payload.handle, handle)
        ctx.set(dut.touch.payload.nbytes, nbytes)
        ctx.set(dut.touch.payload.now, now)
        await ctx.tick()
    ctx.set(dut.touch.valid, 0)
    # Let the last write land before anyone reads the counters.
    await ctx.tick()
