"""``twinplane bench dfs``: the whole DFS gateware in Amaranth's simulator.

* ``established_ratio``: minimum-size frames of an established flow offered on
  both ports at once at 1 GbE line rate (one 60-byte frame every 84 clocks:
  64 bytes with FCS + 8 preamble + 12 gap), forwarded / offered;
* ``latency_cycles``: first byte in to first byte out for such a frame (the
  DFS is store and forward: the frame is in the buffer before it leaves);
* ``flood_established_loss``: the client side carries established frames
  and SYNs of new flows alternately at line rate (a SYN flood on the same
  link); established frames lost, in both directions;
* ``occupancy_at_first_failure``, ``flow_entries``: from the flow table's
  bench (bit-exact model of the default geometry).

Counts of frames and clocks, so the figures hold on any machine.
"""

from __future__ import annotations

__all__ = ["run_bench"]

_WIRE_CYCLES = 84  # 1 GbE: a 60-byte frame (64 with FCS) + preamble + gap, one byte a clock


def run_bench(quick: bool = False) -> dict:
    from twinplane.hdl.dfs.top import DFSCore
    from twinplane.sim.flowtable.bench import run_bench as flowtable_bench

    from .world import CLIENT_IP, GEOMETRY, bring_up, client_frame, node_frame, open_flow, run_world

    frames = 12 if quick else 40
    dut = DFSCore(geometry=GEOMETRY, tick_cycles=1000, frame_buffer_bytes=2048)

    async def script(w):
        await bring_up(w)
        await open_flow(w, CLIENT_IP, 40001)
        await w.send(1, node_frame(CLIENT_IP, 40001, "SA"))
        await w.wait(0)
        out_before = {p: len(w.out[p]) for p in (0, 1)}

        # established traffic on both ports at once
        starts = {0: [], 1: []}
        for _ in range(frames):
            begin = w.cycle
            starts[0].append(begin)
            starts[1].append(begin)
            # the two ports' bytes go in together: interleave clocks port by port
            await _send_both(w, client_frame(CLIENT_IP, 40001), node_frame(CLIENT_IP, 40001))
            while w.cycle - begin < _WIRE_CYCLES:
                await w.ctx.tick()
        for _ in range(400):
            await w.ctx.tick()
        forwarded = {p: len(w.out[p]) - out_before[p] for p in (0, 1)}
        latency = w.out_started[1][out_before[1]] - starts[0][0] if forwarded[1] else None

        # the same, while new flows flood the client side
        out_before = {p: len(w.out[p]) for p in (0, 1)}
        established_offered = 0
        for n in range(frames):
            begin = w.cycle
            await _send_both(w, client_frame(CLIENT_IP, 40001), node_frame(CLIENT_IP, 40001))
            established_offered += 1
            while w.cycle - begin < _WIRE_CYCLES:
                await w.ctx.tick()
            begin = w.cycle
            await w.send(0, client_frame(f"10.3.{n >> 8}.{n & 0xFF}", 50000 + n, "S"))
            while w.cycle - begin < _WIRE_CYCLES:
                await w.ctx.tick()
        for _ in range(400):
            await w.ctx.tick()
        # established frames out: to the node on port 1 (queries go there too: count only TCP to the node)
        to_node = sum(1 for f in w.out[1][out_before[1]:] if f[23] == 6)
        to_client = len(w.out[0]) - out_before[0]
        return {
            "offered": frames,
            "forwarded": forwarded,
            "latency_cycles": latency,
            "flood_offered": established_offered,
            "flood_out": {"to_node": to_node, "to_client": to_client},
        }

    result = run_world(dut, script)
    table = flowtable_bench()
    offered = 2 * result["offered"]
    return {
        "established_ratio": round(sum(result["forwarded"].values()) / offered, 4),
        "established_offered": offered,
        "latency_cycles": result["latency_cycles"],
        "flood_established_loss": 2 * result["flood_offered"] - sum(result["flood_out"].values()),
        "flood_established_offered": 2 * result["flood_offered"],
        "occupancy_at_first_failure": table["occupancy_at_first_failure"],
        "flow_entries": table["flow_entries"],
        "simulated_flow_entries": GEOMETRY.entries,
        "engine": "Amaranth simulator, DFSCore with a small flow table (the default geometry's figures "
        "come from its bit-exact model)",
    }


async def _send_both(w, frame0: bytes, frame1: bytes) -> None:
    """Offer a frame on each port in the same clocks (both rx streams at once)."""
    ctx, dut = w.ctx, w.dut
    sent = [0, 0]
    frames = (frame0, frame1)
    while sent[0] < len(frame0) or sent[1] < len(frame1):
        for p in (0, 1):
            if sent[p] < len(frames[p]):
                i = sent[p]
                ctx.set(dut.rx[p].valid, 1)
                ctx.set(dut.rx[p].payload, {"data": frames[p][i], "first": i == 0, "last": i == len(frames[p]) - 1})
            else:
                ctx.set(dut.rx[p].valid, 0)
        ready = [ctx.get(dut.rx[p].ready) for p in (0, 1)]
        await ctx.tick()
        for p in (0, 1):
            if sent[p] < len(frames[p]) and ready[p]:
                sent[p] += 1
    for p in (0, 1):
        ctx.set(dut.rx[p].valid, 0)
