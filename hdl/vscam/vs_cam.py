# Virtual-server CAM: which virtual server a frame is for, one lookup a clock.
# Ref: the patent's virtual servers (match the destination address and port of
#      packets from the external network; WILDCARD_ADDR / WILDCARD_PORT /
#      NOARP_MODE); reference model: twinplane.model.vscam.VirtualServerTable.
"""The virtual-server table in registers, with a pipelined lookup and an ARP
lookup.

Precedence (best first; the lowest entry index wins a tie within a class):
exact address and port, WILDCARD_PORT (address equal), WILDCARD_ADDR (port
equal, address not *known*), both wildcards (address not known).  A known
address is the ``virt_addr`` of any valid entry without WILDCARD_ADDR, or
``local_addr`` (the DFS's own, 0 = none).  Protocol must be equal; an entry's
``vlan_id`` 0 matches any VLAN, else only that VLAN (the query's vlan_id is 0
for an untagged frame).  ARP: answer for an address that is the
``virt_addr`` of a valid entry without WILDCARD_ADDR or NOARP_MODE.

Writes come in the message port's ``vs_write_layout`` (IPv4 ``virt_addr`` in
the low 32 bits; an ``index`` beyond the table is ignored); ``the input streams
are always ready.  A lookup sees every write accepted up to and including its own
clock.

Pipeline of a lookup (``LATENCY`` = 5 clocks from query to result)::

    query reg -> per-entry compares (4 class bits, "known" bit)
              -> known = OR, lowest index per class
              -> class choice
              -> vs_id/flags read by index -> result reg

Why a delayed copy of vs_id/flags: the result reads them three clocks after
the compares; written three clocks later than the compared fields, they are
the values of the same table version, so a write racing a lookup never pairs
one entry's match with another entry's id.
"""

from amaranth import Array, Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from twinplane.protocol.codes import Flag

from ..msgport.session import vs_write_layout

__all__ = ["VirtualServerCAM", "vs_lookup_layout", "vs_result_layout"]

_MAX_ENTRIES = 256  # the write index is 8 bits


def vs_lookup_layout() -> data.StructLayout:
    return data.StructLayout({"dst_ip": 32, "dst_port": 16, "protocol": 8, "vlan_id": 12})


def vs_result_layout() -> data.StructLayout:
    return data.StructLayout({"valid": 1, "hit": 1, "vs_id": 16, "index": 8, "flags": 32})


def _lowest(m: Module, bits: list, name: str):
    """(any, index of the lowest set bit) of a list of 1-bit values."""
    index = Signal(8, name=f"{name}_index")
    for i in reversed(range(len(bits))):  # the last assignment wins: lowest index
        with m.If(bits[i]):
            m.d.comb += index.eq(i)
    return Cat(*bits).any(), index


class VirtualServerCAM(wiring.Component):
    """``entries`` virtual servers (>= 16) in registers.

    Members: ``write`` (in stream, vs_write_layout); ``local_addr`` (in, 32);
    ``lookup`` (in stream, vs_lookup_layout) -> ``result`` (out,
    vs_result_layout with a ``valid`` bit, ``LATENCY`` clocks after the
    query); ``arp`` (in stream, ``addr``) -> ``arp_result`` (out, ``valid``,
    ``answer_arp``, ``ARP_LATENCY`` clocks later).  The input streams are
    always ready; the results are a pipeline without back-pressure."""

    LATENCY = 5
    ARP_LATENCY = 3

    def __init__(self, entries: int = 16):
        if not isinstance(entries, int) or isinstance(entries, bool):
            raise TypeError(f"entries must be an integer, not {entries!r}")
        if not 16 <= entries <= _MAX_ENTRIES:
            raise ValueError(f"entries must be from 16 to {_MAX_ENTRIES}, not {entries!r}")
        self.entries = entries
        super().__init__(
            {
                "write": In(stream.Signature(vs_write_layout())),
                "local_addr": In(32),
                "lookup": In(stream.Signature(vs_lookup_layout())),
                "result": Out(vs_result_layout()),
                "arp": In(stream.Signature(data.StructLayout({"addr": 32}))),
                "arp_result": Out(data.StructLayout({"valid": 1, "answer_arp": 1})),
            }
        )

    def elaborate(self, platform):
        m = Module()
        n = self.entries
        m.d.comb += [self.write.ready.eq(1), self.lookup.ready.eq(1), self.arp.ready.eq(1)]
        match_layout = data.StructLayout(
            {"valid": 1, "protocol": 8, "addr": 32, "port": 16, "vlan_id": 12,
             "wild_addr": 1, "wild_port": 1, "noarp": 1}
        )
        payload_layout = data.StructLayout({"vs_id": 16, "flags": 3})
        match = [Signal(match_layout, name=f"match{i}") for i in range(n)]
        payload = Array(Signal(payload_layout, name=f"payload{i}") for i in range(n))

        # ---- writes: compared fields now, vs_id/flags three clocks later ------------
        w = self.write.payload
        flags = w.flags
        w_flags = Cat((flags & Flag.WILDCARD_ADDR) != 0, (flags & Flag.WILDCARD_PORT) != 0,
                      (flags & Flag.NOARP_MODE) != 0)
        for i in range(n):
            with m.If(self.write.valid & (w.index == i)):
                m.d.sync += match[i].eq(Cat(w.valid, w.vs.protocol, w.vs.virt_addr[:32], w.vs.virt_port,
                                            w.vs.vlan_id[:12], w_flags))
        delayed = [(Signal(name=f"pw_valid{k}"), Signal(8, name=f"pw_index{k}"),
                    Signal(payload_layout, name=f"pw_payload{k}")) for k in range(3)]
        m.d.sync += [delayed[0][0].eq(self.write.valid), delayed[0][1].eq(w.index),
                     delayed[0][2].vs_id.eq(w.vs.vs_id), delayed[0][2].flags.eq(w_flags)]
        for k in range(1, 3):
            m.d.sync += [a.eq(b) for a, b in zip(delayed[k], delayed[k - 1], strict=True)]
        pw_valid, pw_index, pw_payload = delayed[2]
        for i in range(n):
            with m.If(pw_valid & (pw_index == i)):
                m.d.sync += payload[i].eq(pw_payload)

        # ---- lookup stage 0: the query register -------------------------------------
        q = Signal(vs_lookup_layout())
        q_valid = Signal()
        m.d.sync += [q.eq(self.lookup.payload), q_valid.eq(self.lookup.valid)]

        # ---- stage 1: every entry compared --------------------------------------------
        classes = [[Signal(name=f"class{c}_{i}") for i in range(n)] for c in range(4)]
        known_vec = [Signal(name=f"known{i}") for i in range(n)]
        local_hit = Signal()
        s1_valid = Signal()
        m.d.sync += [s1_valid.eq(q_valid), local_hit.eq((self.local_addr != 0) & (self.local_addr == q.dst_ip))]
        for i, e in enumerate(match):
            base = e.valid & (e.protocol == q.protocol) & ((e.vlan_id == 0) | (e.vlan_id == q.vlan_id))
            addr_eq = e.addr == q.dst_ip
            port_eq = e.port == q.dst_port
            m.d.sync += [
                classes[0][i].eq(base & ~e.wild_addr & ~e.wild_port & addr_eq & port_eq),
                classes[1][i].eq(base & ~e.wild_addr & e.wild_port & addr_eq),
                classes[2][i].eq(base & e.wild_addr & ~e.wild_port & port_eq),
                classes[3][i].eq(base & e.wild_addr & e.wild_port),
                known_vec[i].eq(e.valid & ~e.wild_addr & addr_eq),
            ]

        # ---- stage 2: known address, lowest index per class ---------------------------
        s2_valid = Signal()
        known = Signal()
        any_c = [Signal(name=f"any{c}") for c in range(4)]
        idx_c = [Signal(8, name=f"idx{c}") for c in range(4)]
        m.d.sync += [s2_valid.eq(s1_valid), known.eq(Cat(*known_vec).any() | local_hit)]
        for c in range(4):
            hit_any, index = _lowest(m, classes[c], f"class{c}")
            m.d.sync += [any_c[c].eq(hit_any), idx_c[c].eq(index)]

        # ---- stage 3: the best class ----------------------------------------------------
        s3_valid = Signal()
        hit = Signal()
        index = Signal(8)
        m.d.sync += [s3_valid.eq(s2_valid), hit.eq(0), index.eq(0)]
        with m.If(any_c[0]):
            m.d.sync += [hit.eq(1), index.eq(idx_c[0])]
        with m.Elif(any_c[1]):
            m.d.sync += [hit.eq(1), index.eq(idx_c[1])]
        with m.Elif(any_c[2] & ~known):
            m.d.sync += [hit.eq(1), index.eq(idx_c[2])]
        with m.Elif(any_c[3] & ~known):
            m.d.sync += [hit.eq(1), index.eq(idx_c[3])]

        # ---- stage 4: vs_id and flags of the winner -------------------------------------
        chosen = payload[index[: max(1, (n - 1).bit_length())]]
        r = self.result
        m.d.sync += [r.valid.eq(s3_valid), r.hit.eq(hit), r.index.eq(index)]
        with m.If(hit):
            m.d.sync += [
                r.vs_id.eq(chosen.vs_id),
                r.flags.eq(Cat(Const(0, 7), chosen.flags)),  # WILDCARD_ADDR is bit 7, then 8, 9
            ]
        with m.Else():
            m.d.sync += [r.vs_id.eq(0), r.flags.eq(0)]

        # ---- ARP: register, compare, OR (it sees the writes a lookup would) ----------------
        arp_addr = Signal(32)
        arp_q_valid = Signal()
        m.d.sync += [arp_addr.eq(self.arp.payload.addr), arp_q_valid.eq(self.arp.valid)]
        arp_vec = [Signal(name=f"arp{i}") for i in range(n)]
        arp_valid = Signal()
        m.d.sync += arp_valid.eq(arp_q_valid)
        for i, e in enumerate(match):
            m.d.sync += arp_vec[i].eq(e.valid & ~e.wild_addr & ~e.noarp & (e.addr == arp_addr))
        m.d.sync += [self.arp_result.valid.eq(arp_valid), self.arp_result.answer_arp.eq(Cat(*arp_vec).any())]
        return m
