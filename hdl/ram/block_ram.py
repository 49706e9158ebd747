"""Block RAM with a registered read: one write port, one read port whose data
arrives two clocks after its address, through the RAM's own output register.

Ref: Lattice FPGA-TN-02204 (ECP5 and ECP5-5G Memory Usage Guide), DP16KD:
data widths 1/2/4/9/18 use address bits [13:0]/[13:1]/[13:2]/[13:3]/[13:4]
(x18: ADA[1:0] are the write byte enables); with ``REGMODE="OUTREG"`` the
array's read (clock enable CE) is followed by an output register (OCE).

Why: in nextpnr's speed-6 ECP5 model a DP16KD read without its output
register has ~5.8 ns clock-to-out, most of a 137.5 MHz clock, so whatever
flop takes the data had to sit right next to the EBR.  Yosys' memory
mapping never uses the output register, so on ECP5 (the platform's
``family`` is "ecp5") the RAM is DP16KD columns instantiated with
``REGMODE_B="OUTREG"``; elsewhere (simulation, other FPGAs, memories under
512 entries, or with a non-zero ``init``) it is a ``lib.memory.Memory`` read
port and a register: the same two clocks in both.

Read port: ``read.en`` is the first stage (the array reads ``read.addr``),
``read.out_en`` the second (the output register loads what the first
read); ``read.data`` is the output register.  Hold both high for a plain
two-clock pipeline; drive them separately for a stall-able prefetch
(PacketFIFO).  The read is not transparent: a read of an entry written in
the same clock gives the old or the new word, as the hardware pleases
(don't).  The write port writes ``write.data`` at ``write.addr`` where
``write.en`` is set; with ``granularity`` set, ``write.en`` has one bit per
``granularity`` bits of the word.
"""

from amaranth import C, Cat, ClockSignal, Instance, Module, Signal
from amaranth.hdl import Shape
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["BlockRAM", "ECP5Netlist", "dp16kd_columns"]

#: DP16KD data widths and the depth each gives (x18 needs its byte enables).
_DP16KD_MODES = ((18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))
_DP16KD_ADDR_SHIFT = {1: 0, 2: 1, 4: 2, 9: 3, 18: 4}
#: Below this depth a block RAM of its own is a waste; Yosys may map the
#: ``Memory`` to LUT RAM (and the register after it is an ordinary flop).
_DP16KD_MIN_DEPTH = 512


class ECP5Netlist:
    """A stand-in platform for converting a design without a board
    (``rtlil.convert(top, platform=ECP5Netlist())``): blocks that look at
    ``platform.family`` build what they build on an ECP5 board."""

    family = "ecp5"


def _dp16kd_mode(depth: int) -> int | None:
    """The widest DP16KD mode that holds ``depth`` entries, or None."""
    for width, most in _DP16KD_MODES:
        if depth <= most:
            return width
    return None


def dp16kd_columns(width: int, depth: int, granularity: int | None = None) -> int:
    """How many DP16KD a ``width`` x ``depth`` :class:`BlockRAM` takes on ECP5
    (0: it is not built from DP16KD)."""
    mode = _dp16kd_mode(depth)
    if mode is None or depth < _DP16KD_MIN_DEPTH:
        return 0
    g = granularity or width
    return (width // g) * -(-g // mode)


class BlockRAM(wiring.Component):
    """``BlockRAM(shape, depth, *, init=(), granularity=None, w_domain="sync", r_domain="sync")``.

    * ``write``: ``addr``, ``data`` (``shape``), ``en`` (1 bit, or
      ``width // granularity`` bits).
    * ``read``: ``addr``, ``en`` (the array reads), ``out_en`` (the output
      register loads), ``data`` out (``shape``, two clocks after ``addr``).
    """

    def __init__(self, shape, depth: int, *, init=(), granularity: int | None = None,
                 w_domain: str = "sync", r_domain: str = "sync"):
        try:
            width = Shape.cast(shape).width
        except TypeError as e:
            raise TypeError(f"shape must be a shape-castable, not {shape!r}") from e
        if width < 1:
            raise ValueError(f"shape must be at least one bit wide, not {shape!r}")
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 2:
            raise ValueError(f"depth must be an integer >= 2, not {depth!r}")
        if granularity is not None and (not isinstance(granularity, int) or granularity < 1
                                        or width % granularity):
            raise ValueError(f"granularity must divide the width {width}, not {granularity!r}")
        init = list(init)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in init):
            raise TypeError(f"init must be integers (the words' bits), not {init!r}")
        if len(init) > depth:
            raise ValueError(f"init has {len(init)} entries, more than depth {depth!r}")
        for name, dom in (("w_domain", w_domain), ("r_domain", r_domain)):
            if not isinstance(dom, str):
                raise TypeError(f"{name} must be a domain name, not {dom!r}")
        self._shape = shape
        self._width = width
        self._depth = depth
        self._init = init
        self._granularity = granularity
        self._w_domain = w_domain
        self._r_domain = r_domain
        abits = max(1, (depth - 1).bit_length())
        en_width = width // granularity if granularity else 1
        super().__init__({
            "write": In(wiring.Signature({"addr": Out(abits), "data": Out(shape), "en": Out(en_width)})),
            "read": In(wiring.Signature({"addr": Out(abits), "en": Out(1), "out_en": Out(1),
                                         "data": In(shape)})),
        })

    @property
    def depth(self) -> int:
        return self._depth

    def uses_dp16kd(self, platform) -> bool:
        """Whether this RAM is built from DP16KD columns for ``platform``."""
        return (getattr(platform, "family", None) == "ecp5"
                and dp16kd_columns(self._width, self._depth, self._granularity) > 0
                and not any(self._init))

    def elaborate(self, platform):
        m = Module()
        r_word = Signal(self._width, reset_less=True)  # the output register
        m.d.comb += self.read.data.eq(r_word)
        if self.uses_dp16kd(platform):
            self._dp16kd(m, r_word)
            return m
        m.submodules.mem = mem = Memory(shape=self._width, depth=self._depth,
                                        init=self._init)
        wport = mem.write_port(domain=self._w_domain, granularity=self._granularity)
        rport = mem.read_port(domain=self._r_domain, transparent_for=())
        m.d.comb += [wport.addr.eq(self.write.addr), wport.en.eq(self.write.en),
                     wport.data.eq(self.write.data),
                     rport.addr.eq(self.read.addr), rport.en.eq(self.read.en)]
        with m.If(self.read.out_en):
            m.d[self._r_domain] += r_word.eq(rport.data)
        return m

    def _dp16kd(self, m, r_word):
        """DP16KD columns of the widest mode the depth allows, each within
        one write granule: port A writes, port B reads through its output
        register (``REGMODE_B="OUTREG"``, loaded by OCEB)."""
        width, abits = self._width, max(1, (self._depth - 1).bit_length())
        mode = _dp16kd_mode(self._depth)
        shift = _DP16KD_ADDR_SHIFT[mode]
        g = self._granularity or width
        w_word = Signal(width)
        m.d.comb += w_word.eq(self.write.data)
        # x18 puts the write byte enables on ADA[1:0]; both bytes are written.
        ada = Cat(C(0b11 if mode == 18 else 0, shift), self.write.addr, C(0, 14 - shift - abits))
        adb = Cat(C(0, shift), self.read.addr, C(0, 14 - shift - abits))
        k = 0
        for gi, base in enumerate(range(0, width, g)):
            w_en = self.write.en[gi] if self._granularity else self.write.en
            for lo in range(base, base + g, mode):
                hi = min(base + g, lo + mode)
                do = Signal(18, name=f"ebr{k}_do")
                m.d.comb += r_word[lo:hi].eq(do[:hi - lo])
                m.submodules[f"ebr{k}"] = Instance(
                    "DP16KD",
                    p_DATA_WIDTH_A=mode, p_DATA_WIDTH_B=mode,
                    p_REGMODE_A="NOREG", p_REGMODE_B="OUTREG",
                    p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC",
                    p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
                    p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL", p_GSR="DISABLED",
                    i_CLKA=ClockSignal(self._w_domain), i_CEA=w_en, i_OCEA=C(1, 1), i_WEA=w_en,
                    i_RSTA=C(0, 1), i_CSA0=C(0, 1), i_CSA1=C(0, 1), i_CSA2=C(0, 1),
                    **{f"i_ADA{i}": ada[i] for i in range(14)},
                    **{f"i_DIA{i}": (w_word[lo + i] if i < hi - lo else C(0, 1)) for i in range(18)},
                    i_CLKB=ClockSignal(self._r_domain), i_CEB=self.read.en, i_OCEB=self.read.out_en,
                    i_WEB=C(0, 1), i_RSTB=C(0, 1), i_CSB0=C(0, 1), i_CSB1=C(0, 1), i_CSB2=C(0, 1),
                    **{f"i_ADB{i}": adb[i] for i in range(14)},
                    **{f"i_DIB{i}": C(0, 1) for i in range(18)},
                    **{f"o_DOB{i}": do[i] for i in range(18)},
                )
                k += 1
