"""The whole DFS gateware with redundant CSs (docs/redundancy.md, "In the
gateware"), in Amaranth's simulator: scripted CSs speak to ``DFSCore``
through frames on its internal port.

* CS expiry (change 5): ``DFSCore`` counts the message port's milliseconds
  on its own timebase, so a CS silent for 3 HELLO intervals loses its slot.
* Replication of REPLY/NEWFLOW (change 6): the flow controller says after
  each install attempt whether it installed the flow; the message port
  copies an installed one, re-stamped, to every other authenticated CS, as
  the reference DFS does (``ReferenceDFS._replicate``); a refused one is
  not copied.
"""

from __future__ import annotations

from scapy.layers.inet import IP, TCP

from twinplane.hdl.dfs.top import DFSCore
from twinplane.protocol.codes import ErrorCode, Role
from twinplane.protocol.messages import CsmbHello, SsmbHello, SsmbNewflow, SsmbQuery, SsmbReply
from twinplane.sim.dfs.world import (
    CLIENT_IP,
    GEOMETRY,
    NODE_IP,
    ScriptedCs,
    bring_up_cs,
    client_frame,
    reply_to,
    run_world,
)

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


async def active_and_standby(w):
    """CS 1 active at epoch 1 with VIP:80/tcp, CS 2 standby."""
    active = ScriptedCs(w, 1, cs_id=1, epoch=1)
    standby = ScriptedCs(w, 2, cs_id=2)
    await bring_up_cs(active)
    await bring_up_cs(standby, Role.STANDBY, add_vs=False)
    return active, standby


def test_an_installed_reply_is_copied_to_the_standby_a_refused_one_is_not():
    async def script(w):
        active, standby = await active_and_standby(w)
        await w.send(0, client_frame(CLIENT_IP, 40001, "S"))
        ((cs, query),) = await w.cs_messages(1)
        assert cs is active and isinstance(query, SsmbQuery)
        reply = reply_to(query)
        await active.send(reply)
        # The SYN leaves towards the node; the standby gets the REPLY.
        packets = await w.wait(1, 2)
        (to_node,) = [p for p in packets if p[IP].dst == NODE_IP]
        assert to_node[TCP].flags == "S" and to_node[TCP].sport == 40001
        (copy_packet,) = [p for p in packets if p[IP].dst == standby.ip]
        w.out[1].append(bytes(copy_packet))
        ((cs, copy),) = await w.cs_messages(1)
        assert cs is standby and isinstance(copy, SsmbReply)
        assert copy.session == standby.session and copy.epoch == 1  # re-stamped for the standby
        for field in ("serial", "error", "flags", "flow", "xlate"):
            assert getattr(copy, field) == getattr(reply, field), field

        # A refused flow (NOTAVAIL) is not copied, and its SYN goes nowhere.
        await w.send(0, client_frame(CLIENT_IP, 40002, "S"))
        ((cs, query),) = await w.cs_messages(1)
        assert cs is active and query.flow.src_port == 40002
        await active.send(reply_to(query, error=ErrorCode.NOTAVAIL))
        await w.quiet(1, 3000)
        assert not w.out[0]

        # A NEWFLOW (a flow the active installs on its own) is copied too.
        newflow = reply_to(query)
        newflow = SsmbNewflow(serial=newflow.serial, flags=newflow.flags, flow=newflow.flow, xlate=newflow.xlate)
        await active.send(newflow)
        ((cs, copy),) = await w.cs_messages(1)
        assert cs is standby and isinstance(copy, SsmbNewflow) and copy.flow == newflow.flow

    run_world(small_dfs(), script)
