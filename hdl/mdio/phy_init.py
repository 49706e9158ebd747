"""PHY set-up at power-on over MDIO: find the PHYs on the bus, then write the
registers the board needs (e.g. the RGMII receive-clock delay).

# Ref: IEEE 802.3-2018 §22.2.4.3.1 (registers 2/3: PHY identifier; an absent
#      PHY reads all ones through the MDIO pull-up)

After ``start_delay`` clocks (the PHY's own reset and power-up), register 2
of every address 0..31 is read; an address that answers something other
than 0xFFFF or 0x0000 holds a PHY (``found``, a bit per address).  Then each
operation of ``ops`` runs on each PHY found, in order: ``(reg, value,
keep)`` writes ``value`` to ``reg``, or with ``keep`` non-zero reads ``reg``
first and writes ``(old & keep) | value`` (setting bits of a register whose
other bits must stay).  ``done`` rises when all is written.  Scanning
instead of fixing addresses keeps the board table free of PHY strap values
nobody here could check on hardware.
"""

from typing import NamedTuple

from amaranth import Array, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .master import MDIOMaster

__all__ = ["PHYInit", "PhyOp"]

_ID1 = 2  # PHY identifier register 1


class PhyOp(NamedTuple):
    reg: int
    value: int
    keep: int = 0  # bits of the old value to keep (0: a plain write)


class PHYInit(wiring.Component):
    """``PHYInit(ops, divisor=32, start_delay=1 << 21)``: pins ``mdc``,
    ``mdio_o``/``mdio_oe``/``mdio_i``; ``found`` (32 bits), ``done``."""

    def __init__(self, ops, *, divisor: int = 32, start_delay: int = 1 << 21):
        ops = tuple(PhyOp(*op) for op in ops)
        if not ops:
            raise ValueError("ops must name at least one register write")
        for op in ops:
            if not (0 <= op.reg < 32 and 0 <= op.value < 1 << 16 and 0 <= op.keep < 1 << 16):
                raise ValueError(f"a PHY operation needs reg 0..31 and 16-bit value/keep, not {op!r}")
        if not isinstance(start_delay, int) or start_delay < 1:
            raise ValueError(f"start_delay must be a positive integer, not {start_delay!r}")
        self.ops, self._start_delay = ops, start_delay
        self._master = MDIOMaster(divisor)
        super().__init__({
            "mdc": Out(1), "mdio_o": Out(1), "mdio_oe": Out(1), "mdio_i": In(1),
            "found": Out(32), "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.master = master = self._master
        m.d.comb += [self.mdc.eq(master.mdc), self.mdio_o.eq(master.mdio_o),
                     self.mdio_oe.eq(master.mdio_oe), master.mdio_i.eq(self.mdio_i)]
        ops = self.ops
        regs = Array(Const(op.reg, 5) for op in ops)
        values = Array(Const(op.value, 16) for op in ops)
        keeps = Array(Const(op.keep, 16) for op in ops)
        wait = Signal(range(self._start_delay + 1))
        phy = Signal(5)
        index = Signal(range(len(ops)))
        old = Signal(16)
        cmd = master.cmd.payload
        m.d.comb += master.rsp.ready.eq(1)

        with m.FSM():
            with m.State("Waiting for the PHYs"):
                m.d.sync += wait.eq(wait + 1)
                with m.If(wait == self._start_delay - 1):
                    m.next = "Asking an address"
            with m.State("Asking an address"):
                m.d.comb += [master.cmd.valid.eq(1), cmd.read.eq(1), cmd.phy.eq(phy), cmd.reg.eq(_ID1)]
                with m.If(master.cmd.ready):
                    m.next = "Hearing an address"
            with m.State("Hearing an address"):
                with m.If(master.rsp.valid):
                    present = (master.rsp.payload != 0xFFFF) & (master.rsp.payload != 0)
                    m.d.sync += [self.found.bit_select(phy, 1).eq(present), phy.eq(phy + 1)]
                    m.next = "Asking an address"
                    with m.If(phy == 31):
                        m.next = "Next PHY"
            with m.State("Next PHY"):
                # phy wrapped to 0: walk the addresses again, stopping at each one found.
                with m.If(self.found.bit_select(phy, 1)):
                    m.d.sync += index.eq(0)
                    m.next = "Reading"
                with m.Elif(phy == 31):
                    m.next = "Done"
                with m.Else():
                    m.d.sync += phy.eq(phy + 1)
            with m.State("Reading"):
                with m.If(keeps[index] == 0):  # a plain write: `old & keep` is 0
                    m.next = "Writing"
                with m.Else():
                    m.d.comb += [master.cmd.valid.eq(1), cmd.read.eq(1), cmd.phy.eq(phy), cmd.reg.eq(regs[index])]
                    with m.If(master.cmd.ready):
                        m.next = "Read"
            with m.State("Read"):
                with m.If(master.rsp.valid):
                    m.d.sync += old.eq(master.rsp.payload)
                    m.next = "Writing"
            with m.State("Writing"):
                m.d.comb += [master.cmd.valid.eq(1), cmd.phy.eq(phy), cmd.reg.eq(regs[index]),
                             cmd.data.eq((old & keeps[index]) | values[index])]
                with m.If(master.cmd.ready):
                    m.d.sync += index.eq(index + 1)
                    m.next = "Reading"
                    with m.If(index == len(ops) - 1):
                        m.next = "Done"
                        with m.If(phy != 31):
                            m.d.sync += phy.eq(phy + 1)
                            m.next = "Next PHY"
            with m.State("Done"):
                # The last write's frame may still be on the wire; it finishes by itself.
                m.d.comb += self.done.eq(~master.mdio_oe)
        return m
