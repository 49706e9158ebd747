"""Block RAM with a registered read: one write port, one read port whose data
arrives two clocks after its address, through the RAM's own output register.

Ref: Lattice FPGA-TN-02204 (ECP5 and ECP5-5G Memory Usage Guide), DP16KD:
data widths 1/2/4/9/18 use address bits [13:0]/[13:1]/[13:2]/[13:3]/[13:4]
(x18: ADA[1:0] are the write byte enables); with ``REGMODE="OUTREG"`` the
array's read (clock enable CE) is followed by an output register (OCE).
PDPW16KD, the 36-bit pseudo-dual-port mode (512 words): a DP16KD with
``DATA_WIDTH_A/B = 36``, written through port A (DIA the low, DIB the high
18 bits, ADA[3:0] the four 9-bit byte enables, ADA[13:5] the address), read
through port B (ADB[13:5]; DOA the low, DOB the high half), both halves'
output registers on (``REGMODE_A/B = "OUTREG"``), as Yosys's
``brams_map_16kd.v`` and nextpnr's PDPW16KD packing lay it out.

Why: in nextpnr's speed-6 ECP5 model a DP16KD read without its output
register has ~5.8 ns clock-to-out, most of a 137.5 MHz clock, so whatever
flop takes the data had to sit right next to the EBR.  Yosys' memory
mapping never uses the output register, so on ECP5 (the platform's
``family`` is "ecp5") the RAM is DP16KD columns instantiated with
``REGMODE_B="OUTREG"``; elsewhere (simulation, other FPGAs, memories under
512 entries, or with a non-zero ``init``) it is a ``lib.memory.Memory`` read
port and a register: the same two clocks in both.

Columns: in the modes with 9-bit bytes (x9, x18, x36) each write granule is
padded to whole bytes and the granules are packed side by side, a column's
byte enables taken from the granules its bytes belong to, so two 109-bit
slots take 26 bytes: 7 columns x36 at 512 words (14 as one x18 column set
per granule), 13 x18 at 1024.  A 512-word RAM wider than 18 bits uses the
x36 mode.

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

#: DP16KD data widths and the depth each gives (x18 needs its byte enables);
#: x36 is the pseudo-dual-port mode (PDPW16KD).
_DP16KD_MODES = ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))
_DP16KD_ADDR_SHIFT = {1: 0, 2: 1, 4: 2, 9: 3, 18: 4, 36: 5}
#: Below this depth a block RAM of its own is a waste; Yosys may map the
#: ``Memory`` to LUT RAM (and the register after it is an ordinary flop).
_DP16KD_MIN_DEPTH = 512
_BYTE = 9


class ECP5Netlist:
    """A stand-in platform for converting a design without a board
    (``rtlil.convert(top, platform=ECP5Netlist())``): blocks that look at
    ``platform.family`` build what they build on an ECP5 board."""

    family = "ecp5"


def _dp16kd_mode(width: int, depth: int) -> int | None:
    """The DP16KD mode for a ``width`` x ``depth`` RAM, or None: the widest
    that holds ``depth`` entries, x36 only where one x18 column is too narrow."""
    for mode, most in _DP16KD_MODES:
        if depth <= most and not (mode == 36 and width <= 18):
            return mode
    return None


def _dp16kd_layout(width: int, depth: int, granularity: int | None):
    """(mode, columns): each column a list of (word bit, column bit, granule)
    for the bits it holds, and per column byte the granule that enables it
    (None: a padding byte).  Empty if the RAM is not built from DP16KD."""
    mode = _dp16kd_mode(width, depth)
    if mode is None or depth < _DP16KD_MIN_DEPTH:
        return mode, []
    g = granularity or width
    columns = []
    if mode % _BYTE:
        # x1/x2/x4 have no byte enables: columns within one granule.
        for gi, base in enumerate(range(0, width, g)):
            for lo in range(base, base + g, mode):
                hi = min(base + g, lo + mode)
                columns.append(([(lo + i, i, gi) for i in range(hi - lo)], [gi]))
        return mode, columns
    # Granules padded to whole bytes, packed; a byte belongs to one granule.
    gp = -(-g // _BYTE) * _BYTE
    total = width // g * gp
    for start in range(0, total, mode):
        bits, bytes_ = [], []
        for b in range(start, start + mode, _BYTE):
            bytes_.append(b // gp if b < total else None)
        for i in range(mode):
            packed = start + i
            gi, off = divmod(packed, gp)
            if packed < total and off < g:
                bits.append((gi * g + off, i, gi))
        columns.append((bits, bytes_))
    return mode, columns


def dp16kd_columns(width: int, depth: int, granularity: int | None = None) -> int:
    """How many DP16KD a ``width`` x ``depth`` :class:`BlockRAM` takes on ECP5
    (0: it is not built from DP16KD)."""
    return len(_dp16kd_layout(width, depth, granularity)[1])


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
        """DP16KD columns (see "Columns" above): port A writes, port B reads
        through its output register (``REGMODE_B="OUTREG"``, loaded by OCEB;
        in x36 mode both halves' registers, OCEA driven alike)."""
        width, abits = self._width, max(1, (self._depth - 1).bit_length())
        mode, columns = _dp16kd_layout(width, self._depth, self._granularity)
        shift = _DP16KD_ADDR_SHIFT[mode]
        w_word = Signal(width)
        m.d.comb += w_word.eq(self.write.data)
        adb = Cat(C(0, shift), self.read.addr, C(0, 14 - shift - abits))

        def granule_en(gi):
            return self.write.en[gi] if self._granularity else self.write.en[0]

        for k, (bits, bytes_) in enumerate(columns):
            # Byte enables (x18: ADA[1:0], x36: ADA[3:0]); a padding byte is
            # never written.
            be = [granule_en(gi) if gi is not None else C(0, 1) for gi in bytes_]
            col_en = Signal(name=f"ebr{k}_en")
            m.d.comb += col_en.eq(Cat(*be).any())
            if mode in (18, 36):
                low = Cat(*be, C(0, shift - len(be)))
            else:
                low = C(0, shift)
            ada = Cat(low, self.write.addr, C(0, 14 - shift - abits))
            di = [C(0, 1)] * mode
            do = Signal(mode, name=f"ebr{k}_do")
            for word_bit, col_bit, _gi in bits:
                di[col_bit] = w_word[word_bit]
                m.d.comb += r_word[word_bit].eq(do[col_bit])
            di += [C(0, 1)] * (36 - mode)
            if mode == 36:  # DIA/DOA the low half, DIB/DOB the high half
                dia, dib = di[:18], di[18:]
                doa, dob = do[:18], do[18:]
                regmode_a, oce_a = "OUTREG", self.read.out_en
                ports_a = {f"o_DOA{i}": doa[i] for i in range(18)}
            else:
                dia, dib = di[:18], [C(0, 1)] * 18
                dob = do
                regmode_a, oce_a = "NOREG", C(1, 1)
                ports_a = {}
            m.submodules[f"ebr{k}"] = Instance(
                "DP16KD",
                p_DATA_WIDTH_A=mode, p_DATA_WIDTH_B=mode,
                p_REGMODE_A=regmode_a, p_REGMODE_B="OUTREG",
                p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC",
                p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
                p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL", p_GSR="DISABLED",
                i_CLKA=ClockSignal(self._w_domain), i_CEA=col_en, i_OCEA=oce_a, i_WEA=col_en,
                i_RSTA=C(0, 1), i_CSA0=C(0, 1), i_CSA1=C(0, 1), i_CSA2=C(0, 1),
                **{f"i_ADA{i}": ada[i] for i in range(14)},
                **{f"i_DIA{i}": dia[i] for i in range(18)},
                i_CLKB=ClockSignal(self._r_domain), i_CEB=self.read.en, i_OCEB=self.read.out_en,
                i_WEB=C(0, 1), i_RSTB=C(0, 1), i_CSB0=C(0, 1), i_CSB1=C(0, 1), i_CSB2=C(0, 1),
                **{f"i_ADB{i}": adb[i] for i in range(14)},
                **{f"i_DIB{i}": dib[i] for i in range(18)},
                **{f"o_DOB{i}": dob[i] for i in range(len(dob))},
                **ports_a,
            )
