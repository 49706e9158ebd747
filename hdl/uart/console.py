"""Register console: the byte protocol of :mod:`.regmap` over a UART, holding
the board's configuration (``config``) and exposing the core's counters.

# Ref: regmap.py (the protocol is declared there, shared with host/console.py)

Why registers and not a text console in gateware: parsing text (numbers,
dotted quads, hex) costs LUTs and bugs on the FPGA, while the host already
has Python; ``twinplane console`` turns ``ip 10.100.0.1`` into register
writes.  Configuration values chosen at build time are the registers' reset
values, so a board works without any console session.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..onehot import Loads, OneHotFSM, onehot_mux
from .regmap import (
    ACK,
    CONFIG_FIELDS,
    CONFIG_LAYOUT,
    COUNTER_BASE,
    MAGIC,
    MAGIC_ADDR,
    N_COUNTERS,
    NAK,
    RESYNC_BITS,
    config_words,
)
from .rx import UARTRx
from .tx import UARTTx, check_divisor

__all__ = ["RegisterConsole"]


class RegisterConsole(wiring.Component):
    """``RegisterConsole(divisor=1085, config=None)``.

    ``config`` maps :data:`CONFIG_LAYOUT` field names to build-time values.
    Members: ``rx``/``tx`` (UART pins), ``config`` (out, the live
    configuration), ``counters`` (in, ``N_COUNTERS`` x 32 bits, read at
    ``COUNTER_BASE + i``).
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    config: Out(CONFIG_LAYOUT)
    counters: In(data.ArrayLayout(32, N_COUNTERS))

    def __init__(self, divisor: int = 1085, config: dict | None = None):
        self._divisor = check_divisor(divisor)
        config = dict(config or {})
        for name in config:
            if name not in CONFIG_FIELDS:
                raise ValueError(f"unknown config field {name!r}")
        self._init_words = config_words(config)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = urx = UARTRx(self._divisor)
        m.submodules.uart_tx = utx = UARTTx(self._divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]

        # One 32-bit register per configuration word.
        regs: dict[int, Signal] = {}
        for field, (addr, bits, _) in CONFIG_FIELDS.items():
            n = (bits + 31) // 32
            parts = []
            for i in range(n):
                a = addr + i
                width = bits - 32 * (n - 1 - i) if i == 0 and bits % 32 else 32
                regs[a] = Signal(width, name=f"reg_{field}_{i}", init=self._init_words.get(a, 0))
                parts.append(regs[a])
            # Words are stored most significant first; Cat wants LSB first.
            m.d.comb += getattr(self.config, field).eq(Cat(*reversed(parts)))
        readable = {a for f, (addr, bits, rd) in CONFIG_FIELDS.items() if rd
                    for a in range(addr, addr + (bits + 31) // 32)}

        cmd_write = Signal()
        addr = Signal(8)
        value = Signal(32)
        count = Signal(range(5))
        idle = Signal(range(RESYNC_BITS * self._divisor + 1))

        # Mid-frame idle timer: a frame left incomplete is forgotten.
        byte_in = urx.source.valid & urx.source.ready
        with m.If(byte_in):
            m.d.sync += idle.eq(RESYNC_BITS * self._divisor)
        with m.Elif(idle != 0):
            m.d.sync += idle.eq(idle - 1)
        # "idle is 0", a flop from idle's next value: the zero test of the
        # 17-bit timer ran into the states' flops, 5 levels.
        timed_out = Signal(init=1)
        m.d.sync += timed_out.eq(~byte_in & (idle <= 1))

        # Timing: the address is decoded a clock ahead into one-hot selects,
        # so each half of the read mux (configuration, counters) is an AND-OR
        # over flops into a register, then a 2:1 select; "Decoding the
        # address", "Selecting the register" and "Reading the register" give
        # it the three clocks.  (Decoding inside the mux's clock put the
        # Colorlight bridge build's sync clock at 137.46 MHz, 0.04 short.)
        cfg_sources = [(MAGIC_ADDR, Const(MAGIC, 32))] + [(a, reg) for a, reg in regs.items() if a in readable]
        cnt_sources = [(COUNTER_BASE + i, self.counters[i]) for i in range(N_COUNTERS)]
        cfg_sel = [Signal(name=f"cfg_sel_{a:02x}") for a, _ in cfg_sources]
        cnt_sel = [Signal(name=f"cnt_sel_{i}") for i in range(N_COUNTERS)]
        m.d.sync += [s.eq(addr == a) for s, (a, _) in zip(cfg_sel, cfg_sources, strict=True)]
        m.d.sync += [s.eq(addr == a) for s, (a, _) in zip(cnt_sel, cnt_sources, strict=True)]

        # The same for writes: a register's enable is "Writing" and its own
        # flop (the address compare in front of the 32-bit key words' enables
        # was 8.2 ns routed, 118 late endpoints in the 329f034 DFS build).
        wr_sel = {a: Signal(name=f"wr_sel_{a:02x}") for a in regs}
        m.d.sync += [s.eq(addr == a) for a, s in wr_sel.items()]
        # "The address is a writable register's" (ACK or NAK), a flop of its
        # own from a table of the addresses: the OR of the 34 selects ran
        # into ``value``, 5 levels.
        writable = Signal()
        m.d.sync += writable.eq(Const(sum(1 << a for a in regs), 256).bit_select(addr, 1))

        read_cfg_r, read_cnt_r, is_cnt_r = Signal(32), Signal(32), Signal()
        m.d.sync += [read_cfg_r.eq(onehot_mux(cfg_sel, [v for _, v in cfg_sources])), read_cnt_r.eq(onehot_mux(cnt_sel, [v for _, v in cnt_sources])),
                     is_cnt_r.eq(Cat(*cnt_sel).any())]

        read_value_r = Signal(32)
        m.d.sync += read_value_r.eq(Mux(is_cnt_r, read_cnt_r, read_cfg_r))

        # One flop a state, and ``value`` (written in four states) loaded as
        # an AND-OR of them: the binary state's decode and the priority chain
        # of the states' writes in front of its 32 flops were 7.79 ns routed
        # in the Colorlight DFS build (1d82fb4), past 137.5 MHz.
        to_value = Loads(m, value, and_or=True)
        # ``count`` so too (its four writers' priority chain behind the UART
        # handshakes was 5 levels from the receiver's valid and the
        # transmitter's bit count).
        to_count = Loads(m, count, and_or=True)
        with OneHotFSM(m, "Waiting for a command", name="console") as fsm:
            with fsm.state("Waiting for a command"):
                m.d.comb += urx.source.ready.eq(1)
                with m.If(urx.source.valid):
                    with m.If(urx.source.payload == ord("W")):
                        m.d.sync += cmd_write.eq(1)
                        fsm.goto("Receiving the address")
                    with m.Elif(urx.source.payload == ord("R")):
                        m.d.sync += cmd_write.eq(0)
                        fsm.goto("Receiving the address")
            with fsm.state("Receiving the address"):
                m.d.comb += urx.source.ready.eq(1)
                with m.If(urx.source.valid):
                    m.d.sync += addr.eq(urx.source.payload)
                    to_count(4)
                    with m.If(cmd_write):
                        fsm.goto("Receiving the value")
                    with m.Else():
                        fsm.goto("Decoding the address")
                with m.Elif(timed_out):
                    fsm.goto("Waiting for a command")
            with fsm.state("Receiving the value"):
                m.d.comb += urx.source.ready.eq(1)
                with m.If(urx.source.valid):
                    to_value(Cat(urx.source.payload, value[:24]))
                    to_count((count - 1)[:len(count)])
                    with m.If(count == 1):
                        fsm.goto("Writing")
                with m.Elif(timed_out):
                    fsm.goto("Waiting for a command")
            with fsm.state("Writing"):
                for a, reg in regs.items():
                    with m.If(wr_sel[a]):
                        m.d.sync += reg.eq(value)
                to_count(1)
                to_value(Cat(Const(0, 24), Mux(writable, ACK, NAK)[:8]))
                fsm.goto("Sending")
            with fsm.state("Decoding the address"):
                fsm.goto("Selecting the register")
            with fsm.state("Selecting the register"):
                fsm.goto("Reading the register")
            with fsm.state("Reading the register"):
                fsm.goto("Latching the value")
            with fsm.state("Latching the value"):
                to_value(read_value_r)
                fsm.goto("Sending")
            with fsm.state("Sending"):
                # Most significant byte first; ``count`` bytes left.
                m.d.comb += [utx.sink.valid.eq(1), utx.sink.payload.eq(value[24:])]
                with m.If(utx.sink.ready):
                    to_value(Cat(Const(0, 8), value[:24]))
                    to_count((count - 1)[:len(count)])
                    with m.If(count == 1):
                        fsm.goto("Waiting for a command")
        to_value.close()
        to_count.close()
        return m
