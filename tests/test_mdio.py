"""MDIO master and PHY set-up (hdl/mdio/) against a clause-22 PHY model in
Amaranth's simulator: the model decodes what the master puts on MDIO at each
rising edge of MDC and answers reads the way a PHY does (a bit after each
rising edge), with a register file paged by register 22 as Marvell PHYs
have it."""

import random

import pytest
from amaranth.sim import Simulator

from twinplane.boards.bridge import L2Bridge
from twinplane.boards.registry import KSZ9031_RX_DELAY, get_board
from twinplane.boards.top import BoardTop
from twinplane.hdl.mdio import MDIOMaster, PHYInit, PhyOp


class PhyModel:
    """One PHY at ``address`` on the bus: registers by (page, reg), reg 22 the page."""

    def __init__(self, address: int, regs: dict | None = None):
        self.address = address
        self.regs = dict(regs or {})
        self.page = 0
        self.bits: list[int] = []
        self.pos = None  # bits since the start of frame ("01" after >= 32 ones)
        self.drive = None  # what this PHY puts on MDIO for the next bit (None: nothing)
        self.frame = {}
        self.writes: list[tuple[int, int, int]] = []

    def read(self, reg):
        return self.page if reg == 22 else self.regs.get((self.page if reg != 0 else 0, reg), 0)

    def rising_edge(self, line: int):
        """MDIO as sampled at a rising edge of MDC; sets ``drive`` for the next bit."""
        if self.pos is None:
            self.bits.append(line)
            if len(self.bits) >= 34 and self.bits[-2:] == [0, 1] and all(self.bits[-34:-2]):
                self.pos, self.frame, self.bits = 0, {"bits": []}, []
            return
        f = self.frame
        f["bits"].append(line)
        p = self.pos
        self.pos += 1
        if p == 11:  # OP, PHYAD, REGAD complete
            b = f["bits"]
            f["op"], f["phy"], f["reg"] = b[0] * 2 + b[1], int("".join(map(str, b[2:7])), 2), int(
                "".join(map(str, b[7:12])), 2)
            f["mine"] = f["phy"] == self.address
            if f["op"] == 0b10 and f["mine"]:
                f["answer"] = self.read(f["reg"])
        if f.get("op") == 0b10 and f["mine"]:
            # TA: Z then 0 (driven for position 13); data bits for positions 14..29.
            nxt = p + 1
            if nxt == 13:
                self.drive = 0
            elif 14 <= nxt <= 29:
                self.drive = (f["answer"] >> (29 - nxt)) & 1
            else:
                self.drive = None
        if p == 29:
            if f["op"] == 0b01 and f["mine"]:
                value = int("".join(map(str, f["bits"][14:30])), 2)
                self.writes.append((self.page, f["reg"], value))
                if f["reg"] == 22:
                    self.page = value
                else:
                    self.regs[(self.page if f["reg"] != 0 else 0, f["reg"])] = value
            self.pos, self.drive = None, None


def bus_process(dut, phys, periods: list):
    """Drives ``mdio_i`` from the PHYs (pull-up: 1 unless one drives 0) and
    feeds each PHY the line at every rising edge of MDC; records MDC periods."""
    async def process(ctx):
        last_mdc, since = 0, 0
        async for _, _, mdc, oe, o in ctx.tick().sample(dut.mdc, dut.mdio_oe, dut.mdio_o):
            since += 1
            drives = [p.drive for p in phys if p.drive is not None]
            line = o if oe else (min(drives) if drives else 1)
            if oe and drives:
                raise AssertionError("bus contention: master and PHY both drive MDIO")
            if mdc and not last_mdc:
                periods.append(since)
                since = 0
                for p in phys:
                    p.rising_edge(line)
            last_mdc = mdc
            drives = [p.drive for p in phys if p.drive is not None]
            ctx.set(dut.mdio_i, min(drives) if drives else 1)
    return process


def run(dut, bench, phys, periods):
    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_process(bus_process(dut, phys, periods))
    sim.add_testbench(bench)
    sim.run()


def test_checks():
    with pytest.raises(ValueError, match="divisor must be an integer >= 2, not 1"):
        MDIOMaster(1)
    with pytest.raises(ValueError, match="at least one"):
        PHYInit([])
    with pytest.raises(ValueError, match="reg 0..31"):
        PHYInit([(32, 0)])
    with pytest.raises(ValueError, match="start_delay"):
        PHYInit([(0, 0)], start_delay=0)


def test_master_writes_and_reads_back():
    dut = MDIOMaster(divisor=3)
    phys = [PhyModel(5), PhyModel(9)]
    r = random.Random(1)
    periods = []
    expected = {}

    async def command(ctx, **fields):
        ctx.set(dut.cmd.valid, 1)
        ctx.set(dut.cmd.payload, {"read": 0, "data": 0, **fields})
        await ctx.tick().until(dut.cmd.ready)
        ctx.set(dut.cmd.valid, 0)
        if fields.get("read"):
            ctx.set(dut.rsp.ready, 1)
            payload, = await ctx.tick().sample(dut.rsp.payload).until(dut.rsp.valid)
            ctx.set(dut.rsp.ready, 0)
            return payload
        while ctx.get(dut.mdio_oe) or ctx.get(dut.cmd.ready) == 0:
            await ctx.tick()

    async def bench(ctx):
        for _ in range(12):
            phy, reg, value = r.choice([5, 9, 17]), r.choice([0, 4, 9, 16]), r.getrandbits(16)
            await command(ctx, phy=phy, reg=reg, data=value)
            expected[(phy, reg)] = value
        for (phy, reg), value in expected.items():
            got = await command(ctx, read=1, phy=phy, reg=reg)
            assert got == (value if phy in (5, 9) else 0xFFFF), (phy, reg)

    run(dut, bench, phys, periods)
    for p in phys:
        assert {(0, reg): v for (phy, reg), v in expected.items() if phy == p.address}.items() <= p.regs.items()
    assert min(periods[1:]) == 6  # 2 x divisor clocks a bit, every bit


def test_phy_init_finds_the_phys_and_sets_the_rgmii_delay():
    """The Versa's 88E1512 sequence: page 2, register 21 bit 5 (RX clock
    delay) set without touching the others, page 0, soft reset."""
    ops = [PhyOp(22, 2), PhyOp(21, 0x0020, keep=0xFFFF), PhyOp(22, 0), PhyOp(0, 0x8000, keep=0xFFFF)]
    dut = PHYInit(ops, divisor=2, start_delay=50)
    present = {1: 0x0141, 7: 0x0022}  # OUI words (register 2) of two PHYs
    phys = [PhyModel(a, {(0, 2): oui, (2, 21): 0x1046, (0, 0): 0x1140}) for a, oui in present.items()]
    periods = []

    async def bench(ctx):
        for _ in range(200_000):
            await ctx.tick()
            if ctx.get(dut.done):
                break
        assert ctx.get(dut.done)
        assert ctx.get(dut.found) == (1 << 1) | (1 << 7)

    run(dut, bench, phys, periods)
    for p in phys:
        assert p.regs[(2, 21)] == 0x1066 and p.regs[(0, 0)] == 0x9140 and p.page == 0
        assert p.writes == [(0, 22, 2), (2, 21, 0x1066), (2, 22, 0), (0, 0, 0x9140)]


def test_ksz9031_sequence_writes_the_pad_skews_through_mmd_registers():
    dut = PHYInit(KSZ9031_RX_DELAY, divisor=2, start_delay=10)
    phy = PhyModel(3, {(0, 2): 0x0022})

    async def bench(ctx):
        await ctx.tick().until(dut.done)

    run(dut, bench, [phy], [])
    # MMD access: 13 = function|devad, 14 = register, then 13 = data, 14 = value.
    assert [(reg, value) for _, reg, value in phy.writes] == [
        (13, 0x0002), (14, 8), (13, 0x4002), (14, 0x01FF),
        (13, 0x0002), (14, 5), (13, 0x4002), (14, 0x0000),
        (13, 0x0002), (14, 4), (13, 0x4002), (14, 0x0007)]


@pytest.mark.parametrize("board", ["versa-ecp5", "ecpix5"])
def test_boards_with_phy_init_drive_mdio(board):
    spec = get_board(board)
    assert spec.phy_init
    plan = spec.platform().prepare(BoardTop(spec, L2Bridge(len(spec.roles))), name="top")
    assert "phy_init0" in plan.files["top.il"]
