"""GMII Ethernet MAC: receiver + store-and-forward FIFO + transmitter + counters.

# Ref: IEEE 802.3-2018 §3, §4, §35 (GMII); counters after RFC 2819 etherStats

Clocking: the receiver runs in ``rx_domain`` (the PHY's receive clock), the
received frames leave ``source`` in ``core_domain`` through a
:class:`PacketFIFO` that crosses clocks when the two names differ; frames to
send enter ``sink`` and go out in ``tx_domain`` (GMII ``GTX_CLK`` = that
domain's clock).  The default is ``rx_domain="rx"`` and everything else in
``"sync"``; pass ``rx_domain="sync"`` when the PHY's receive clock is the core
clock (as in simulation), which makes the FIFO single-clock.

The FIFO is what lets a bad frame vanish: a frame is written while it is
received and committed only if its FCS, ``rx_er`` and length checks pass.

Counters (32 bits, wrapping; receive counters in ``rx_domain``, transmit ones
in ``tx_domain``): ``rx_frames``/``rx_bytes`` count frames delivered and their
bytes (FCS excluded); ``rx_fcs_errors`` (also frames with ``rx_er``),
``rx_runts`` (< 64 bytes incl. FCS), ``rx_oversize`` (> ``max_frame``) and
``rx_drops`` (good frames lost because the FIFO was full) count dropped
frames; ``tx_frames``/``tx_bytes`` count frames sent and their bytes from
``sink`` (padding and FCS excluded).
"""

from amaranth import DomainRenamer, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..packet import packet_signature
from ..stream.packet_fifo import PacketFIFO
from .gmii_rx import GMIIRx
from .gmii_tx import GMIITx

__all__ = ["COUNTERS", "GMIIMac"]

COUNTERS = (
    "rx_frames",
    "rx_bytes",
    "rx_fcs_errors",
    "rx_runts",
    "rx_oversize",
    "rx_drops",
    "tx_frames",
    "tx_bytes",
)


class GMIIMac(wiring.Component):
    """``GMIIMac(data_width=8, max_frame=1518, rx_fifo_depth=None, ...)``.

    ``max_frame`` is the largest frame accepted, FCS included (1518, or 9018
    for jumbo frames); ``rx_fifo_depth`` defaults to twice that rounded up to
    a power of two, so one frame can be read while the next is received.
    """

    def __init__(
        self,
        data_width: int = 8,
        max_frame: int = 1518,
        rx_fifo_depth: int | None = None,
        *,
        rx_domain: str = "rx",
        core_domain: str = "sync",
        tx_domain: str = "sync",
        ifg: int = 12,
    ):
        if data_width != 8:
            raise ValueError(f"data_width {data_width!r}: only 8 is implemented")
        if rx_fifo_depth is None:
            rx_fifo_depth = 1 << (2 * max_frame - 1).bit_length()
        if not isinstance(rx_fifo_depth, int) or rx_fifo_depth < max_frame:
            raise ValueError(f"rx_fifo_depth must hold one max_frame ({max_frame!r}), not {rx_fifo_depth!r}")
        self._rx = GMIIRx(data_width, max_frame)
        self._tx = GMIITx(data_width, ifg)
        self._fifo = PacketFIFO(data_width, rx_fifo_depth, w_domain=rx_domain, r_domain=core_domain)
        self._rx_domain = rx_domain
        self._tx_domain = tx_domain
        super().__init__(
            {
                "rxd": In(8),
                "rx_dv": In(1),
                "rx_er": In(1),
                "txd": Out(8),
                "tx_en": Out(1),
                "tx_er": Out(1),
                "source": Out(packet_signature(data_width)),
                "sink": In(packet_signature(data_width)),
                **{name: Out(32) for name in COUNTERS},
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = DomainRenamer(self._rx_domain)(self._rx)
        m.submodules.tx = tx = DomainRenamer(self._tx_domain)(self._tx)
        m.submodules.fifo = fifo = self._fifo
        rxd = m.d[self._rx_domain]
        txd = m.d[self._tx_domain]

        m.d.comb += [
            self._rx.rxd.eq(self.rxd),
            self._rx.rx_dv.eq(self.rx_dv),
            self._rx.rx_er.eq(self.rx_er),
            self.txd.eq(self._tx.txd),
            self.tx_en.eq(self._tx.tx_en),
            self.tx_er.eq(self._tx.tx_er),
            fifo.commit.eq(rx.commit),
            fifo.drop.eq(rx.drop),
        ]
        wiring.connect(m, rx=rx.source, fifo=fifo.sink)
        wiring.connect(m, fifo=fifo.source, outside=wiring.flipped(self.source))
        wiring.connect(m, outside=wiring.flipped(self.sink), tx=tx.sink)

        # The FIFO confirms a commit one clock after the frame's end, while
        # the length latched here is still that frame's.
        last_len = Signal.like(rx.frame_len)
        with m.If(rx.frame_end):
            rxd += last_len.eq(rx.frame_len)
            with m.If(rx.fcs_error):
                rxd += self.rx_fcs_errors.eq(self.rx_fcs_errors + 1)
            with m.If(rx.runt):
                rxd += self.rx_runts.eq(self.rx_runts + 1)
            with m.If(rx.oversize):
                rxd += self.rx_oversize.eq(self.rx_oversize + 1)
        with m.If(fifo.committed):
            rxd += [self.rx_frames.eq(self.rx_frames + 1), self.rx_bytes.eq(self.rx_bytes + last_len - 4)]
        with m.If(fifo.overflow):
            rxd += self.rx_drops.eq(self.rx_drops + 1)
        with m.If(tx.frame_done):
            txd += [self.tx_frames.eq(self.tx_frames + 1), self.tx_bytes.eq(self.tx_bytes + tx.frame_bytes)]
        return m
