"""twinplane: a server array controller split into an FPGA data flow segment
(DFS, Amaranth gateware) and a Python control segment (CS).

Package map (one folder per concern):

* ``twinplane.protocol`` -- SSMB/CSMB wire format, declared once (host codec,
  gateware layouts, scapy layers and docs all come from it).
* ``twinplane.model``    -- pure-Python reference models (the DFS oracle).
* ``twinplane.hdl``      -- gateware (folder ``hdl/``).
* ``twinplane.host``     -- control segment daemon and host tools (``host/``).
* ``twinplane.sim``      -- cocotb testbenches and simulation harnesses (``sim/``).
* ``twinplane.boards``   -- board top levels and bitstream builds (``boards/``).
"""

__version__ = "0.1.0"
