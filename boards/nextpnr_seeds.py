"""nextpnr with a stall watch: a run whose log stops growing is stopped and
the next placement seed is tried.

nextpnr's placers can get stuck in their strict legalisation on a dense
design (HeAP on the Colorlight's DFS from the fifteenth session, the static
placer on some netlists and seeds since): the process runs at full CPU and
writes nothing, for hours.  Every other phase logs at least every few
seconds to a minute (placer iterations, the annealer's, the router's every
1000 nets), so a log that has not grown for ``stall`` seconds means stuck.

The board build's script calls ``$NEXTPNR_ECP5 ... --seed N ... --log F``;
``twinplane build`` points ``NEXTPNR_ECP5`` at a small script that runs
this module with the real tool, so the script itself is unchanged::

    python -m twinplane.boards.nextpnr_seeds --nextpnr PATH --seeds 1,2,3 \\
        --stall 600 --record attempts.json -- ARGS...

``ARGS`` are nextpnr's, with ``--seed`` and ``--log``; each attempt replaces
the seed.  ``--record`` gets one entry per attempt (seed, outcome, seconds).
The exit status is nextpnr's for the attempt that finished, 1 when every
seed stalled.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["DEFAULT_STALL_SECONDS", "run_with_seeds", "wrapper_script"]

#: Silence that counts as stuck.  Every phase that works logs well within
#: it (docs/boards.md, "Placers").
DEFAULT_STALL_SECONDS = 600.0


def _with_seed(args: list[str], seed: int) -> list[str]:
    if "--seed" not in args:
        return [*args, "--seed", str(seed)]
    i = args.index("--seed")
    return [*args[:i + 1], str(seed), *args[i + 2:]]


def _log_path(args: list[str], cwd: Path) -> Path:
    if "--log" not in args:
        raise ValueError("nextpnr's arguments need --log FILE: the stall watch reads it")
    return cwd / args[args.index("--log") + 1]


def run_with_seeds(nextpnr: list[str], args: list[str], seeds: list[int], *, stall: float,
                   record: Path | None = None, cwd: Path | None = None, poll: float = 1.0) -> int:
    """Run ``nextpnr + args`` with each of ``seeds`` until one finishes
    without its log stalling for ``stall`` seconds; its exit status, or 1."""
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    if stall <= 0:
        raise ValueError(f"stall must be a positive number of seconds, not {stall!r}")
    cwd = Path(cwd or os.getcwd())
    log = _log_path(args, cwd)
    attempts: list[dict] = []

    def save():
        if record is not None:
            record.write_text(json.dumps(attempts, indent=2) + "\n")

    for seed in seeds:
        log.unlink(missing_ok=True)
        t0 = time.monotonic()
        proc = subprocess.Popen([*nextpnr, *_with_seed(args, seed)], cwd=cwd)
        size, grew = -1, t0
        while proc.poll() is None:
            time.sleep(poll)
            now = time.monotonic()
            current = log.stat().st_size if log.exists() else 0
            if current != size:
                size, grew = current, now
            elif now - grew > stall:
                proc.kill()
                proc.wait()
                attempts.append({"seed": seed, "outcome": "stalled", "seconds": round(now - t0, 1),
                                 "silent_seconds": round(now - grew, 1)})
                print(f"nextpnr: no log output for {now - grew:.0f} s with --seed {seed} "
                      f"(stuck, most likely in strict legalisation): stopped", file=sys.stderr)
                save()
                break
        else:
            attempts.append({"seed": seed, "outcome": "finished", "returncode": proc.returncode,
                             "seconds": round(time.monotonic() - t0, 1)})
            save()
            return proc.returncode
    print(f"nextpnr stalled with every seed tried ({', '.join(map(str, seeds))})", file=sys.stderr)
    return 1


def wrapper_script(path: Path, nextpnr: str, seeds: list[int], stall: float, record: str) -> Path:
    """An executable ``path`` that runs nextpnr through this module (what
    ``NEXTPNR_ECP5`` is set to for a board build)."""
    seed_list = ",".join(str(s) for s in seeds)
    path.write_text("#!/bin/sh\n"
                    f'exec "{sys.executable}" -m twinplane.boards.nextpnr_seeds --nextpnr "{nextpnr}" '
                    f'--seeds {seed_list} --stall {stall} --record "{record}" -- "$@"\n')
    path.chmod(0o755)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m twinplane.boards.nextpnr_seeds", description=__doc__.split("\n\n")[0])
    p.add_argument("--nextpnr", required=True, help="the nextpnr-ecp5 command")
    p.add_argument("--seeds", required=True, help="comma-separated placement seeds, tried in order")
    p.add_argument("--stall", type=float, default=DEFAULT_STALL_SECONDS,
                   help="seconds without log output that count as stuck")
    p.add_argument("--record", help="JSON file for the attempts")
    p.add_argument("args", nargs=argparse.REMAINDER, help="-- then nextpnr's own arguments")
    a = p.parse_args(argv)
    args = a.args[1:] if a.args[:1] == ["--"] else a.args
    seeds = [int(s) for s in a.seeds.split(",")]
    return run_with_seeds([a.nextpnr], args, seeds, stall=a.stall, record=Path(a.record) if a.record else None)


if __name__ == "__main__":
    raise SystemExit(main())
