"""``twinplane program``: load a built bitstream with openFPGALoader (see build.py)."""

from .build import configure_program as configure
from .build import run_program as run

__all__ = ["configure", "run"]
