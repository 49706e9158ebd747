"""Header parser: packet stream in, one ParsedFrame record per frame out."""

from .layout import ParsedFrame, unpack_parsed_frame
from .parser import HeaderParser

__all__ = ["HeaderParser", "ParsedFrame", "unpack_parsed_frame"]
