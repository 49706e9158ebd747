"""The whole DFS gateware with redundant CSs (docs/redundancy.md, "In the
gateware"), in Amaranth's simulator: scripted CSs speak to ``DFSCore``
through frames on its internal port.

* CS expiry (change 5): ``DFSCore`` counts the message port's milliseconds
  on its own timebase, so a CS silent for 3 HELLO intervals loses its slot.
"""

from __future__ import annotations

from twinplane.hdl.dfs.top import DFSCore
from twinplane.protocol.codes import Role
from twinplane.protocol.messages import CsmbHello, SsmbHello
from twinplane.sim.dfs.world import GEOMETRY, ScriptedCs, bring_up_cs, run_world

TICK_CYCLES = 64  # with clk_hz = 64 kHz: one millisecond a tick


def small_dfs(**kwargs) -> DFSCore:
    return DFSCore(geometry=GEOMETRY, tick_cycles=TICK_CYCLES, clk_hz=64_000, miss_slot_bytes=512,
                   frame_buffer_bytes=2048, **kwargs)


def ms(count: int) -> int:
    return count * TICK_CYCLES


def test_a_silent_cs_expires_after_three_hello_intervals():
    async def script(w):
        cs = ScriptedCs(w, 1, cs_id=1)
        await bring_up_cs(cs, hello_interval_ms=10, add_vs=False)
        # HELLO every interval for 5 intervals: the slot (and its nonce) stays.
        for _ in range(5):
            await w.ctx.tick().repeat(ms(10))
            await cs.send(cs.hello(Role.ACTIVE, 10))
            ((_, answer),) = await w.cs_messages(1)
            assert isinstance(answer, CsmbHello) and answer.nonce == cs.nonce
        await cs.send(SsmbHello(nonce=b"cs-nonce"))
        ((_, answer),) = await w.cs_messages(1)
        assert isinstance(answer, SsmbHello)  # the session is alive
        # Silent for more than 3 intervals: forgotten.
        await w.ctx.tick().repeat(ms(35))
        await cs.send(SsmbHello(nonce=b"cs-nonce"))
        await w.quiet(1, 600)  # no session any more: no answer
        await cs.send(cs.hello(Role.ACTIVE, 10))
        ((_, answer),) = await w.cs_messages(1)
        assert isinstance(answer, CsmbHello) and answer.nonce != cs.nonce  # a new slot, a new nonce

    run_world(small_dfs(), script)
