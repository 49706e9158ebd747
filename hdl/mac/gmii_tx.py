"""GMII transmitter: preamble/SFD, padding to 60 bytes, FCS, inter-frame gap.

# Ref: IEEE 802.3-2018 §3.1 (frame format), §3.2.9 (FCS), §4.4.2 (IPG), §35.2 (GMII)

A frame is taken from ``sink`` one byte per clock once its preamble is out;
the stream must not run dry mid-frame (feed it from a store-and-forward FIFO).
If it does, the byte goes out with ``tx_er`` so the far end discards the
frame, and the rest of the frame is consumed without transmitting.  All GMII
outputs are registered.

Only ``data_width=8`` is implemented; a 32/64-bit path needs a byte-lane
gearbox in front (or an XGMII encoder), a CRC over ``data_width`` bits with
partial-beat handling from ``nbytes``, and a deficit idle count for the gap.
"""

from amaranth import Module, Signal
from amaranth.lib import crc, wiring
from amaranth.lib.wiring import In, Out

from ..packet import packet_signature

__all__ = ["GMIITx"]

MIN_DATA = 60  # minimum frame without FCS


class GMIITx(wiring.Component):
    """GMII transmit path; ``ifg`` is the gap in byte times (>= 12).

    ``frame_done`` pulses once per frame sent, with ``frame_bytes`` the bytes
    taken from ``sink`` (padding and FCS excluded); ``underrun`` pulses for an
    aborted frame.
    """

    def __init__(self, data_width: int = 8, ifg: int = 12):
        if data_width != 8:
            raise ValueError(f"data_width {data_width!r}: only 8 is implemented")
        if not isinstance(ifg, int) or ifg < 12:
            raise ValueError(f"ifg must be an integer >= 12, not {ifg!r}")
        self._ifg = ifg
        super().__init__(
            {
                "sink": In(packet_signature(data_width)),
                "txd": Out(8),
                "tx_en": Out(1),
                "tx_er": Out(1),
                "frame_done": Out(1),
                "frame_bytes": Out(16),
                "underrun": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = fcs = crc.catalog.CRC32_ETHERNET(8).create()

        # Timing: the length decisions use a 6-bit down-counter (``short``),
        # not the 16-bit byte count, and the 16-bit count feeds only its own
        # register and frame_bytes.  Every decision that picks the next state
        # or fcs_byte is then a few LUTs deep from flops.
        cnt = Signal(range(max(self._ifg, 8)))
        count = Signal(16)  # bytes taken from sink so far
        short = Signal(range(MIN_DATA + 1))  # MIN_DATA minus the bytes sent so far, floored at 0
        fcs_byte = Signal(2)

        m.d.sync += [self.tx_en.eq(0), self.tx_er.eq(0), self.frame_done.eq(0), self.underrun.eq(0)]

        with m.FSM(name="tx"):
            with m.State("Idle"):
                with m.If(self.sink.valid):
                    m.d.sync += cnt.eq(0)
                    m.next = "Sending preamble"
            with m.State("Sending preamble"):
                m.d.sync += [self.tx_en.eq(1), self.txd.eq(0x55), cnt.eq(cnt + 1)]
                with m.If(cnt == 7):
                    m.d.sync += [self.txd.eq(0xD5), count.eq(0), short.eq(MIN_DATA)]
                    m.d.comb += fcs.start.eq(1)
                    m.next = "Sending data"
            with m.State("Sending data"):
                m.d.comb += [
                    self.sink.ready.eq(1),
                    fcs.data.eq(self.sink.payload.data),
                    fcs.valid.eq(self.sink.valid),
                ]
                # count steps every clock here, valid or not: a clock without
                # one ends the frame as an underrun, whose count is never
                # read, and its enable is then the state alone, not the
                # egress register's valid from across the die (16 endpoints
                # past 137.5 MHz in the 329f034 build, 7.66 ns).
                m.d.sync += [self.tx_en.eq(1), self.txd.eq(self.sink.payload.data), count.eq(count + 1)]
                with m.If(~self.sink.valid):
                    m.d.sync += [self.tx_er.eq(1), self.underrun.eq(1)]
                    m.next = "Discarding after underrun"
                with m.Else():
                    with m.If(short != 0):
                        m.d.sync += short.eq(short - 1)
                    with m.If(self.sink.payload.last):
                        m.d.sync += self.frame_bytes.eq(count + 1)
                        with m.If(short > 1):  # this byte is not yet the MIN_DATA-th
                            m.next = "Padding"
                        with m.Else():
                            m.d.sync += fcs_byte.eq(0)
                            m.next = "Sending FCS"
            with m.State("Padding"):
                m.d.comb += [fcs.data.eq(0), fcs.valid.eq(1)]
                m.d.sync += [self.tx_en.eq(1), self.txd.eq(0), short.eq(short - 1)]
                with m.If(short == 1):
                    m.d.sync += fcs_byte.eq(0)
                    m.next = "Sending FCS"
            with m.State("Sending FCS"):
                m.d.sync += [
                    self.tx_en.eq(1),
                    self.txd.eq(fcs.crc.word_select(fcs_byte, 8)),
                    fcs_byte.eq(fcs_byte + 1),
                ]
                with m.If(fcs_byte == 3):
                    m.d.sync += [cnt.eq(0), self.frame_done.eq(1)]
                    m.next = "Waiting out the gap"
            with m.State("Discarding after underrun"):
                m.d.comb += self.sink.ready.eq(1)
                with m.If(self.sink.valid & self.sink.payload.last):
                    m.d.sync += cnt.eq(0)
                    m.next = "Waiting out the gap"
            with m.State("Waiting out the gap"):
                # The Idle state adds one more byte time before the preamble.
                m.d.sync += cnt.eq(cnt + 1)
                with m.If(cnt == self._ifg - 2):
                    m.next = "Idle"
        return m
