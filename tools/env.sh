#!/usr/bin/env bash
# Create or refresh the project's environment:
#   .venv/                                      controller virtualenv with pinned dependencies
#                                               (controller, simulator and test requirements)
#   build/collections/ansible_collections/coco/tdisp -> the checkout (for ansible.cfg)
# Idempotent: a second run only checks that the pins are installed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

pick_python() {
    # Controller Python: 3.13 from pyenv when present, else the newest >= 3.12 found,
    # else 3.11 (which pairs with ansible-core 2.19).
    if [ -n "${TDISP_PYTHON:-}" ]; then echo "$TDISP_PYTHON"; return; fi
    local c
    for c in "$HOME"/.pyenv/versions/3.13*/bin/python3.13; do
        [ -x "$c" ] && { echo "$c"; return; }
    done
    for v in 3.14 3.13 3.12; do
        c=$(command -v "python$v" 2>/dev/null || true)
        [ -n "$c" ] && { echo "$c"; return; }
        for c in "$HOME"/.pyenv/versions/"$v"*/bin/python"$v"; do
            [ -x "$c" ] && { echo "$c"; return; }
        done
    done
    for c in "$(command -v python3.11 2>/dev/null || true)" "$HOME"/.pyenv/versions/3.11*/bin/python3.11; do
        [ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return; }
    done
    echo "no Python >= 3.11 found; install one (pyenv install 3.13) or set TDISP_PYTHON" >&2
    return 1
}

py=$(pick_python)
minor=$("$py" -c 'import sys; print(sys.version_info[1])')
if [ "$minor" -ge 12 ]; then reqs=requirements/controller.txt; else reqs=requirements/controller-2.19.txt; fi

stamp=.venv/.tdisp-env-stamp
want="$("$py" -c 'import sys; print(sys.version.splitlines()[0])') $(cat "$reqs" requirements/simulator.txt requirements/test.txt simulator/pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "env: creating .venv with $py ($reqs)"
    rm -rf .venv
    "$py" -m venv .venv
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    mkdir -p build
    log=build/env.log
    : > "$log"
    # pip's output goes to build/env.log; shown only when an install fails.
    quiet() { "$@" >>"$log" 2>&1 || { tail -40 "$log" >&2; echo "env: failed: $*; full log in $log" >&2; return 1; }; }
    quiet .venv/bin/python -m pip install --upgrade pip
    quiet .venv/bin/python -m pip install -r "$reqs" -r requirements/simulator.txt -r requirements/test.txt
    quiet .venv/bin/python -m pip install --no-deps -e simulator
    echo "$want" > "$stamp"
fi

mkdir -p build/collections/ansible_collections/coco
ln -sfn ../../../.. build/collections/ansible_collections/coco/tdisp
# ansible-test downloads a pip bootstrap script that this network cannot reach; install a
# local stand-in (ensurepip, then pip install with the arguments it is given).
"$top/tools/install-get-pip.sh" "$top/.venv/bin/python"
