"""``twinplane bench NAME --json`` leaves exactly one JSON object on stdout,
whatever the benchmark's simulators and toolchains print meanwhile."""

import argparse
import json
import subprocess
import sys

from twinplane import bench


def test_json_stdout_holds_only_the_figures(capfd, monkeypatch):
    def noisy(quick: bool = False) -> dict:
        print("a log line from Python")
        subprocess.run([sys.executable, "-c", "print('a log line from a subprocess')"], check=True)
        return {"ratio": 1.0, "quick": quick}

    monkeypatch.setitem(bench.BENCHMARKS, "noisy", (__name__, "noisy", "test"))
    monkeypatch.setitem(globals(), "noisy", noisy)
    assert bench.run(argparse.Namespace(name="noisy", json=True, quick=True)) == 0
    out, err = capfd.readouterr()
    assert json.loads(out) == {"quick": True, "ratio": 1.0}
    assert "a log line from Python" in err and "a log line from a subprocess" in err
    print("after")  # stdout is back
    assert capfd.readouterr().out == "after\n"
