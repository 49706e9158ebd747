"""HeaderParser on Icarus through cocotb (sim/parser/test_parser_cocotb.py)."""

from twinplane.hdl.parser import HeaderParser
from twinplane.sim.runner import run_cocotb


def test_parser_cocotb():
    run_cocotb(HeaderParser(), toplevel="header_parser", test_module="twinplane.sim.parser.test_parser_cocotb",
               build_name="header_parser_w8")
