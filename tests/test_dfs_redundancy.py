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
* Pending flows across a takeover (change 8): a pending flow whose QUERY
  went to a CS that left the active set is asked again, with its serial, of
  the new active CS; a new flow that arrives while CSs are associated but
  none is active waits, unasked, and is asked once one is; with no CS at
  all it is dropped.  The reference DFS does the same
  (``ReferenceDFS._reroute_pending``, ``query_waiting_for_active_cs``,
  ``drop_no_cs``).  In active/active only the flows of the CS that left
  are asked again.
"""

from __future__ import annotations

from scapy.layers.inet import IP, TCP

from twinplane.hdl.dfs.top import DFSCore
from twinplane.protocol.codec import session_id
from twinplane.protocol.codes import ErrorCode, Role
from twinplane.protocol.messages import (
    CsmbAuthChallenge,
    CsmbAuthResponse,
    CsmbHello,
    SsmbHello,
    SsmbNewflow,
    SsmbQuery,
    SsmbReply,
)
from twinplane.sim.dfs.world import (
    CLIENT_IP,
    GEOMETRY,
    KEY,
    NODE_IP,
    ModelMirror,
    ScriptedCs,
    bring_up_cs,
    client_frame,
    reply_to,
    run_world,
)

TICK_CYCLES = 64  # with clk_hz = 64 kHz: one millisecond a tick


def small_dfs(**kwargs) -> DFSCore:
    return DFSCore(geometry=GEOMETRY, tick_cycles=TICK_CYCLES, clk_hz=64_000,
                   frame_buffer_bytes=2048, **kwargs)


def ms(count: int) -> int:
    return count * TICK_CYCLES


def test_a_silent_cs_expires_after_three_hello_intervals():
    async def script(w):
        cs = ScriptedCs(w, 1, cs_id=1)
        # 20 ms: at this test's 64 kHz clock a message takes a few ms to be
        # received, hashed and answered, and an authentication ~5 ms, so a
        # shorter interval leaves the bring-up little of its 3 intervals.
        await bring_up_cs(cs, hello_interval_ms=20, add_vs=False)
        # HELLO every interval for 5 intervals: the slot (and its nonce) stays.
        for _ in range(5):
            await w.ctx.tick().repeat(ms(20))
            await cs.send(cs.hello(Role.ACTIVE, 20))
            ((_, answer),) = await w.cs_messages(1)
            assert isinstance(answer, CsmbHello) and answer.nonce == cs.nonce
        await cs.send(SsmbHello(nonce=b"cs-nonce"))
        ((_, answer),) = await w.cs_messages(1)
        assert isinstance(answer, SsmbHello)  # the session is alive
        # Silent for more than 3 intervals: forgotten.
        await w.ctx.tick().repeat(ms(70))
        await cs.send(SsmbHello(nonce=b"cs-nonce"))
        await w.quiet(1, 600)  # no session any more: no answer
        await cs.send(cs.hello(Role.ACTIVE, 20))
        ((_, answer),) = await w.cs_messages(1)
        assert isinstance(answer, CsmbHello) and answer.nonce != cs.nonce  # a new slot, a new nonce

    run_world(small_dfs(), script)


def agree(w, *, serials_in_any_order: bool = False) -> None:
    """The gateware sent the CSs what the reference DFS sent them since the
    last check (recipient, type, serial, error, session, flow).

    ``serials_in_any_order``: new QUERYs asked together (flows that waited
    for an active CS) take the next serials in the order the miss path's
    round robin queues them, which the model does not follow: the same
    messages and the same serials, but which flow got which is not compared."""
    seen, expected = sorted(w.seen), w.mirror.messages()
    if serials_in_any_order:
        assert sorted(m[2] for m in seen) == sorted(m[2] for m in expected)
        seen, expected = (sorted(m[:2] + m[3:] for m in ms) for ms in (seen, expected))
    assert seen == expected
    w.seen.clear()


async def active_and_standby(w):
    """CS 1 active at epoch 1 with VIP:80/tcp, CS 2 standby."""
    active = ScriptedCs(w, 1, cs_id=1, epoch=1)
    standby = ScriptedCs(w, 2, cs_id=2)
    await bring_up_cs(active)
    await bring_up_cs(standby, Role.STANDBY, add_vs=False)
    return active, standby


def test_an_installed_reply_is_copied_to_the_standby_a_refused_one_is_not():
    async def script(w):
        ModelMirror(w, TICK_CYCLES)
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
        agree(w)
        assert w.mirror.frames() == [(1, bytes(to_node))]

        # A refused flow (NOTAVAIL) is not copied, and its SYN goes nowhere.
        await w.send(0, client_frame(CLIENT_IP, 40002, "S"))
        ((cs, query),) = await w.cs_messages(1)
        assert cs is active and query.flow.src_port == 40002
        await active.send(reply_to(query, error=ErrorCode.NOTAVAIL))
        await w.quiet(1, 3000)
        assert not w.out[0]
        agree(w)
        assert w.mirror.frames() == []

        # A NEWFLOW (a flow the active installs on its own) is copied too.
        newflow = reply_to(query)
        newflow = SsmbNewflow(serial=newflow.serial, flags=newflow.flags, flow=newflow.flow, xlate=newflow.xlate)
        await active.send(newflow)
        ((cs, copy),) = await w.cs_messages(1)
        assert cs is standby and isinstance(copy, SsmbNewflow) and copy.flow == newflow.flow
        agree(w)

    run_world(small_dfs(), script)


def test_pending_flows_are_asked_again_of_the_cs_that_takes_over():
    async def script(w):
        ModelMirror(w, TICK_CYCLES)
        active = ScriptedCs(w, 1, cs_id=1, epoch=1)
        standby = ScriptedCs(w, 2, cs_id=2)
        await bring_up_cs(active, hello_interval_ms=30)
        await bring_up_cs(standby, Role.STANDBY, add_vs=False)
        # A SYN whose QUERY goes to the active CS, which then falls silent.
        await w.send(0, client_frame(CLIENT_IP, 40001, "S"))
        ((cs, first),) = await w.cs_messages(1)
        assert cs is active and isinstance(first, SsmbQuery)
        await w.ctx.tick().repeat(ms(90))  # 3 intervals: the active CS is forgotten
        # A SYN while the standby is associated but no CS is active: it waits, unasked.
        await w.send(0, client_frame(CLIENT_IP, 40002, "S"))
        await w.quiet(1, 2000)
        agree(w)
        assert w.mirror.model.counters["query_waiting_for_active_cs"] == 1
        # The standby takes over: HELLO as ACTIVE ends its session, the
        # challenge at epoch 2 puts it in the active set.
        standby.epoch = 2
        await standby.send(standby.hello(Role.ACTIVE))
        ((_, answer),) = await w.cs_messages(1)
        assert isinstance(answer, CsmbHello)
        standby.session = 0
        # A SYN in the round trip of the re-authentication: no CS at all is
        # authenticated now, but one is taking over, so it waits too (the
        # chaos run over real sockets once lost a connection here).
        await w.send(0, client_frame(CLIENT_IP, 40003, "S"))
        await w.quiet(1, 2000)
        agree(w)
        assert w.mirror.model.counters["query_waiting_for_active_cs"] == 2
        assert w.mirror.model.counters["drop_no_cs"] == 0
        await standby.send(CsmbAuthChallenge(challenge=b"takeover"))
        ((_, response),) = await w.cs_messages(1)
        assert isinstance(response, CsmbAuthResponse)
        standby.session = session_id(KEY, b"takeover", answer.nonce)
        # The pending flows are asked of the new active CS: the first again,
        # with its serial; the others for the first time, with the next ones.
        got = await w.cs_messages(3)
        assert all(cs is standby and isinstance(q, SsmbQuery) and q.session == standby.session for cs, q in got)
        by_port = {q.flow.src_port: q for _, q in got}
        assert sorted(by_port) == [40001, 40002, 40003]
        assert by_port[40001].serial == first.serial and by_port[40001].flow == first.flow
        # (serials are given as the waiting flows are asked, in slot order)
        assert {by_port[40002].serial, by_port[40003].serial} == {first.serial + 1, first.serial + 2}
        agree(w, serials_in_any_order=True)
        assert w.mirror.model.counters["queries_rerouted"] == 3
        # Its REPLYs release the SYNs.
        for port in (40001, 40002, 40003):
            await standby.send(reply_to(by_port[port]))
        at_node = await w.wait(1, 3)
        assert sorted(p[TCP].sport for p in at_node) == [40001, 40002, 40003]
        assert all(p[IP].dst == NODE_IP and p[TCP].flags == "S" for p in at_node)
        await w.quiet(1, 1000)  # nothing asked twice
        agree(w)
        assert w.mirror.frames() == sorted((1, bytes(p)) for p in at_node)

    run_world(small_dfs(), script)


def test_a_new_flow_without_any_cs_is_dropped():
    async def script(w):
        ModelMirror(w, TICK_CYCLES)
        cs = ScriptedCs(w, 1, cs_id=1, epoch=1)
        await bring_up_cs(cs, hello_interval_ms=10)  # 1 ms = 64 clocks here: room for the handshake
        await w.ctx.tick().repeat(ms(40))  # forgotten (3 intervals): no CS at all
        await w.send(0, client_frame(CLIENT_IP, 40001, "S"))
        await w.quiet(1, 1000)
        # The CS comes back: nothing was kept for it to be asked about.
        await bring_up_cs(cs, add_vs=False)
        await w.quiet(1, 2000)
        assert not w.out[0]
        agree(w)
        assert w.mirror.model.counters["drop_no_cs"] == 1

    run_world(small_dfs(), script)


def test_active_active_only_the_flows_of_the_cs_that_left_are_asked_again():
    async def script(w):
        ModelMirror(w, TICK_CYCLES)
        first = ScriptedCs(w, 1, cs_id=1, epoch=1)
        second = ScriptedCs(w, 2, cs_id=2, epoch=1)
        await bring_up_cs(first, hello_interval_ms=40)
        await bring_up_cs(second, add_vs=False)
        ports = range(40001, 40007)
        for port in ports:
            await w.send(0, client_frame(CLIENT_IP, port, "S"))
        asked = await w.cs_messages(len(ports))
        owners = {q.flow.src_port: cs for cs, q in asked}
        assert set(owners.values()) == {first, second}  # the CRC split used both
        agree(w)
        await w.ctx.tick().repeat(ms(130))  # the first CS falls silent and is forgotten
        mine = sorted(port for port, cs in owners.items() if cs is first)
        again = await w.cs_messages(len(mine))
        assert all(cs is second for cs, _ in again)
        assert sorted(q.flow.src_port for _, q in again) == mine
        await w.quiet(1, 1500)  # the second CS's own flows are not asked twice
        agree(w)

    run_world(small_dfs(), script)
