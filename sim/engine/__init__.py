"""The compiled simulation engine of the whole DFS (CXXRTL), its bridge to
TAP/pcap/UDP (``twinplane sim``) and its benchmark (``twinplane bench sim``)."""

from .build import EngineConfig, build_engine
from .compiled import CompiledDFS, TxFrame
from .system import SimSystem

__all__ = ["CompiledDFS", "EngineConfig", "SimSystem", "TxFrame", "build_engine"]
