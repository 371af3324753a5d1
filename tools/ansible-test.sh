#!/usr/bin/env bash
# Run ansible-test on a copy of the collection placed where ansible-test requires it
# (.../ansible_collections/coco/tdisp). ansible-test takes the physical working directory
# and does not descend into symlinked directories, so a copy is used rather than the symlink
# that build/collections holds for ansible.cfg. Each run gets its own copy, so that runs side
# by side do not disturb each other; the copy is removed afterwards, and its tests/output
# (junit, coverage) is kept in tests/output of the checkout.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
run="$top/build/ansible-test/run-$$"
dest="$run/ansible_collections/coco/tdisp"
trap 'rm -rf "$run"' EXIT
mkdir -p "$dest"
tar -C "$top" -c \
    --exclude ./.venv --exclude ./build --exclude ./.git --exclude ./tests/output \
    --exclude __pycache__ --exclude .pytest_cache --exclude .hypothesis \
    --exclude ./simulator --exclude ./bench --exclude ./tools --exclude ./.ci \
    . | tar -C "$dest" -x
# ansible-test finds the target Pythons (3.9 .. 3.14) as pythonX.Y on PATH: put pyenv's real
# interpreters there, ahead of pyenv's shims (a shim's interpreter path is not stable).
pyenv_bins=""
for d in "$HOME"/.pyenv/versions/3.*/bin; do [ -d "$d" ] && pyenv_bins="$pyenv_bins:$d"; done
export PATH="$top/.venv/bin$pyenv_bins:$PATH"
cd "$dest"
# ansible-test lists files through git, and the checkout ignores build/: give the copy its own
# repository so that the listing is this tree's.
git init -q . && git add -A
rc=0
ansible-test "$@" || rc=$?
if [ -d tests/output ]; then
    mkdir -p "$top/tests/output"
    cp -a tests/output/. "$top/tests/output/"
fi
exit $rc
