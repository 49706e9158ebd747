#!/usr/bin/env bash
# Sets up (or refreshes) .venv/ and runs the main job or the tests.
#   ./bootstrap.sh demo [args]   -> twinplane demo
#   ./bootstrap.sh test [args]   -> python -m pytest
#   ./bootstrap.sh run CMD...    -> any command inside the environment
set -euo pipefail
cd "$(dirname "$0")"

need_root_cmd() {
    if [ "$(id -u)" = 0 ]; then
        return 0
    fi
    echo "bootstrap: $1 is missing; install it with:" >&2
    echo "    sudo $2" >&2
    exit 1
}

# Icarus Verilog runs the cocotb testbenches and the simulated DFS.
if ! command -v iverilog >/dev/null 2>&1; then
    need_root_cmd "Icarus Verilog" "apt-get install -y iverilog"
    echo "bootstrap: installing Icarus Verilog" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog >&2
fi

# g++ compiles the DFS gateware (CXXRTL) that the demo and the engine tests run.
if ! command -v g++ >/dev/null 2>&1; then
    need_root_cmd "g++" "apt-get install -y g++"
    echo "bootstrap: installing g++" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >&2
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv" >&2
    if ! "$PY" -m venv .venv; then
        need_root_cmd "python3-venv" "apt-get install -y python3-venv"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
        "$PY" -m venv .venv
    fi
fi

# Reinstall only when the dependency declaration changed since the last install.
stamp=.venv/.twinplane-installed
want=$(cat pyproject.toml setup.py | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "bootstrap: installing twinplane and its dependencies into .venv" >&2
    .venv/bin/python -m pip install -q --upgrade pip "setuptools>=69" >&2
    .venv/bin/python -m pip install -q -e ".[test,build]" >&2
    echo "$want" > "$stamp"
fi

cmd=${1:-}
shift || true
case "$cmd" in
    demo) exec .venv/bin/twinplane demo "$@" ;;
    test) exec .venv/bin/python -m pytest "$@" ;;
    run)  exec "$@" ;;
    *) echo "usage: $0 demo|test|run [args...]" >&2; exit 2 ;;
esac
