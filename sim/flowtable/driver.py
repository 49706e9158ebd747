"""Amaranth-simulator drivers for :class:`twinplane.hdl.flowtable.FlowTable`.

Each coroutine takes the testbench context ``ctx`` and the table ``dut``; they
follow the stream rules (valid held until the transfer).
"""

from twinplane.model.flowtable import FlowOp

__all__ = ["command", "lookup_burst", "rsp_fields", "touch_burst"]

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


async def lookup_burst(ctx, dut, keys) -> list[tuple[int, int, int, int]]:
    """Look up ``keys``, each offered as soon as the table takes one (``ready``);
    returns (key, hit, handle, action) per result.

    Also checks that each result comes exactly ``dut.latency`` clocks after its
    lookup's transfer, in order, and no result comes at any other time.
    """
    results, taken, queue = [], [], list(keys)
    cycle = 0
    while queue or len(results) < len(keys):
        ctx.set(dut.lookup.valid, bool(queue))
        ctx.set(dut.lookup.payload.key, queue[0] if queue else 0)
        due = [k for c, k in taken[len(results):] if cycle - c == dut.latency]
        if ctx.get(dut.result.valid):
            r = ctx.get(dut.result.payload)
            assert due and int(r.key) == due[0], "result out of order or early"
            results.append((int(r.key), int(r.hit), int(r.handle), int(r.action)))
        else:
            assert not due, f"no result in cycle {cycle}"
        if queue and ctx.get(dut.lookup.ready):
            taken.append((cycle, queue.pop(0)))
        await ctx.tick()
        cycle += 1
        assert cycle < 100 * (len(keys) + 1) * dut.latency, "lookups not taken"
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
