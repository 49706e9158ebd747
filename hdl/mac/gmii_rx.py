"""GMII receiver: preamble/SFD search, FCS check and strip, length checks.

# Ref: IEEE 802.3-2018 §3.1 (frame format), §3.2.9 (FCS), §35.2 (GMII)

Bytes arrive one per clock with ``rx_dv``; nothing here can pause the wire,
so ``source.ready`` is ignored: connect ``source``/``commit``/``drop`` to a
:class:`~twinplane.hdl.stream.packet_fifo.PacketFIFO`, whose sink is always
ready.  Each frame is written as it arrives (FCS excluded) and judged on its
last byte: ``commit`` if the FCS matched, no ``rx_er`` was seen and its length
(FCS included) is within 64..``max_frame``; otherwise it is dropped whole.

The FCS is stripped with a 4-byte delay line plus one held byte: a byte is
written only once 4 newer ones exist, and the newest such byte is held back
until either another byte arrives (it was not the last) or ``rx_dv`` falls
(it was, so it goes out with ``last`` and the verdict).

Only ``data_width=8`` is implemented.  A 32/64-bit path needs a byte-lane
gearbox after this 8-bit core (or an XGMII receiver with start lanes on 0/4),
a CRC over ``data_width`` bits with a per-lane residue check for the last
beat, and ``nbytes`` on the last transfer.
"""

from amaranth import Module, ResetInserter, Signal
from amaranth.lib import crc, wiring
from amaranth.lib.wiring import In, Out

from ..packet import packet_signature

__all__ = ["GMIIRx"]

PREAMBLE = 0x55
SFD = 0xD5
MIN_FRAME = 64


class GMIIRx(wiring.Component):
    """GMII receive path.

    Status outputs pulse ``frame_end`` for one clock at the end of every frame
    that got past its SFD, with ``frame_len`` (bytes incl. FCS, saturating at
    ``max_frame + 1``) and the reasons it failed (``fcs_error`` also covers
    ``rx_er``; a runt with a bad FCS counts as a runt).
    """

    def __init__(self, data_width: int = 8, max_frame: int = 1518):
        if data_width != 8:
            raise ValueError(f"data_width {data_width!r}: only 8 is implemented")
        if not isinstance(max_frame, int) or max_frame < MIN_FRAME:
            raise ValueError(f"max_frame must be an integer >= {MIN_FRAME}, not {max_frame!r}")
        self._max_frame = max_frame
        super().__init__(
            {
                "rxd": In(8),
                "rx_dv": In(1),
                "rx_er": In(1),
                "source": Out(packet_signature(data_width)),
                "commit": Out(1),
                "drop": Out(1),
                "frame_end": Out(1),
                "frame_len": Out(range(max_frame + 2)),
                "good": Out(1),
                "fcs_error": Out(1),
                "runt": Out(1),
                "oversize": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        # The CRC restarts by a reset of its own (its register's LSR), not its
        # ``start``: that is a mux in front of its XOR network (5 levels from
        # the state into the CRC register).
        crc_restart = Signal()
        m.submodules.crc = fcs = ResetInserter(crc_restart)(crc.catalog.CRC32_ETHERNET(8).create())

        # Register the GMII inputs once: they come straight from pins.
        rxd = Signal(8)
        rx_dv = Signal()
        rx_er = Signal()
        m.d.sync += [rxd.eq(self.rxd), rx_dv.eq(self.rx_dv), rx_er.eq(self.rx_er)]

        delay = Signal(32)  # the 4 newest bytes, oldest in [0:8]
        fill = Signal(range(5))
        held = Signal(8)
        held_valid = Signal()
        first = Signal()
        count = Signal(range(self._max_frame + 2))
        count_full = Signal()  # count == max_frame + 1
        saw_er = Signal()
        runt_q, oversize_q, bad_fcs_q = Signal(), Signal(), Signal()  # the frame's end, judged

        m.d.comb += [fcs.data.eq(rxd)]
        m.d.sync += [
            self.source.valid.eq(0),
            self.commit.eq(0),
            self.drop.eq(0),
            self.frame_end.eq(0),
        ]

        with m.FSM(name="rx"):
            with m.State("Waiting for preamble"):
                with m.If(rx_dv):
                    with m.If(rxd == PREAMBLE):
                        m.next = "In preamble"
                    with m.Else():
                        m.next = "Discarding until idle"
            with m.State("In preamble"):
                # The frame's state is cleared on every preamble byte, not
                # only on the SFD: its reset is then the state's decode
                # alone (the SFD's compare ran on into the counter's reset,
                # 5 levels on the 25F).  "Receiving frame" is entered only
                # from here.
                m.d.comb += crc_restart.eq(1)
                m.d.sync += [fill.eq(0), held_valid.eq(0), first.eq(1), count.eq(0), saw_er.eq(0),
                             count_full.eq(0)]
                with m.If(~rx_dv):
                    m.next = "Waiting for preamble"
                with m.Elif(rxd == SFD):
                    m.next = "Receiving frame"
                with m.Elif(rxd != PREAMBLE):
                    m.next = "Discarding until idle"
            with m.State("Receiving frame"):
                with m.If(rx_dv):
                    m.d.comb += fcs.valid.eq(1)
                    m.d.sync += delay.eq((delay >> 8) | (rxd << 24))
                    # ``count`` stops at max_frame + 1; ``count_full`` says it
                    # got there (a flop: the compare was in front of the
                    # counter's enable).
                    with m.If(~count_full):
                        m.d.sync += [count.eq(count + 1), count_full.eq(count == self._max_frame)]
                    with m.If(rx_er):
                        m.d.sync += saw_er.eq(1)
                    with m.If(fill != 4):
                        m.d.sync += fill.eq(fill + 1)
                    with m.Else():
                        m.d.sync += [held.eq(delay[:8]), held_valid.eq(1)]
                        with m.If(held_valid):
                            m.d.sync += [
                                self.source.valid.eq(1),
                                self.source.payload.data.eq(held),
                                self.source.payload.first.eq(first),
                                self.source.payload.last.eq(0),
                                first.eq(0),
                            ]
                with m.Else():
                    # rx_dv fell: the CRC register now covers every byte.
                    # Judged into flops here, acted on a clock later: the
                    # CRC's 32-bit match, the length compares and their AND
                    # ran on into ``commit`` (5 levels).  The gap after a
                    # frame is far longer than that clock.
                    m.d.sync += [runt_q.eq(count < MIN_FRAME), oversize_q.eq(count_full),
                                 bad_fcs_q.eq(~fcs.match_detected | saw_er)]
                    m.next = "Ending the frame"
            with m.State("Ending the frame"):
                good = ~runt_q & ~oversize_q & ~bad_fcs_q
                m.d.sync += [
                    self.frame_end.eq(1),
                    self.frame_len.eq(count),
                    self.good.eq(good),
                    self.runt.eq(runt_q),
                    self.oversize.eq(oversize_q),
                    self.fcs_error.eq(bad_fcs_q & ~runt_q & ~oversize_q),
                ]
                with m.If(held_valid):
                    m.d.sync += [
                        self.source.valid.eq(1),
                        self.source.payload.data.eq(held),
                        self.source.payload.first.eq(first),
                        self.source.payload.last.eq(1),
                        self.commit.eq(good),
                    ]
                with m.Else():
                    m.d.sync += self.drop.eq(1)
                m.next = "Waiting for preamble"
            with m.State("Discarding until idle"):
                with m.If(~rx_dv):
                    m.next = "Waiting for preamble"
        return m
