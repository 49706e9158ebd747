"""The stall watch around nextpnr (boards/nextpnr_seeds.py), with a stand-in
for nextpnr that logs like it and gets stuck on the seeds it is told to."""

import json
import stat
import subprocess
import sys
import textwrap

import pytest

from twinplane.boards.nextpnr_seeds import run_with_seeds, wrapper_script

# Logs a line, then either finishes (writing the seed it ran with) or, for a
# seed in STUCK, goes silent as nextpnr does in strict legalisation.
FAKE = textwrap.dedent("""\
    import sys, time
    args = sys.argv[1:]
    seed = int(args[args.index("--seed") + 1])
    log = open(args[args.index("--log") + 1], "w")
    log.write("Info: Running Static placer...\\n"); log.flush()
    if seed in {stuck}:
        log.write("Info: Strict legalising 24481 cells...\\n"); log.flush()
        time.sleep(60)
    for i in range(3):
        time.sleep(0.1)
        log.write(f"Info: iter {{i}}\\n"); log.flush()
    open("ran_with_seed", "w").write(str(seed))
    sys.exit({code})
""")


def fake_nextpnr(tmp_path, stuck=(), code=0):
    script = tmp_path / "fake_nextpnr.py"
    script.write_text(FAKE.format(stuck=set(stuck) or "set()", code=code))
    return [sys.executable, str(script)]


ARGS = ["--placer", "static", "--seed", "1", "--log", "out.tim", "--json", "x.json"]


def test_a_stuck_seed_is_stopped_and_the_next_one_tried(tmp_path):
    record = tmp_path / "attempts.json"
    code = run_with_seeds(fake_nextpnr(tmp_path, stuck=(1, 2)), ARGS, [1, 2, 3], stall=1.0,
                          record=record, cwd=tmp_path, poll=0.1)
    assert code == 0
    assert (tmp_path / "ran_with_seed").read_text() == "3"
    attempts = json.loads(record.read_text())
    assert [(a["seed"], a["outcome"]) for a in attempts] == [(1, "stalled"), (2, "stalled"), (3, "finished")]
    assert all(a["silent_seconds"] >= 1.0 for a in attempts[:2])
    # Each stalled run was stopped soon after its log went quiet, not after the minute it sleeps.
    assert all(a["seconds"] < 20 for a in attempts)


def test_a_run_that_logs_is_left_alone_and_its_status_passed_on(tmp_path):
    record = tmp_path / "attempts.json"
    code = run_with_seeds(fake_nextpnr(tmp_path, code=3), ARGS, [7, 8], stall=1.0, record=record,
                          cwd=tmp_path, poll=0.05)
    assert code == 3
    assert json.loads(record.read_text()) == [
        {"seed": 7, "outcome": "finished", "returncode": 3, "seconds": pytest.approx(0.5, abs=5)}]


def test_every_seed_stuck(tmp_path, capsys):
    record = tmp_path / "attempts.json"
    assert run_with_seeds(fake_nextpnr(tmp_path, stuck=(4, 5)), ARGS, [4, 5], stall=0.5, record=record,
                          cwd=tmp_path, poll=0.1) == 1
    assert [a["outcome"] for a in json.loads(record.read_text())] == ["stalled", "stalled"]
    assert "stalled with every seed tried (4, 5)" in capsys.readouterr().err


def test_the_wrapper_script_is_what_the_build_script_calls(tmp_path):
    # As the board build's script calls $NEXTPNR_ECP5: one executable path, nextpnr's arguments.
    fake = fake_nextpnr(tmp_path, stuck=(1,))
    real = tmp_path / "nextpnr"
    real.write_text(f'#!/bin/sh\nexec "{fake[0]}" "{fake[1]}" "$@"\n')
    real.chmod(real.stat().st_mode | stat.S_IEXEC)
    wrapper = wrapper_script(tmp_path / "wrap.sh", str(real), [1, 2], 1.0, str(tmp_path / "attempts.json"))
    done = subprocess.run([str(wrapper), *ARGS], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ran_with_seed").read_text() == "2"
    assert "no log output" in done.stderr


@pytest.mark.parametrize(("args", "seeds", "stall", "message"), [
    (["--seed", "1"], [1], 1.0, "need --log FILE"),
    (ARGS, [], 1.0, "at least one seed"),
    (ARGS, [1], 0, "positive number of seconds"),
])
def test_bad_arguments(tmp_path, args, seeds, stall, message):
    with pytest.raises(ValueError, match=message):
        run_with_seeds(["true"], args, seeds, stall=stall, cwd=tmp_path)
