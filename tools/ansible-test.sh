#!/usr/bin/env bash
# Run ansible-test on a copy of the collection placed where ansible-test requires it
# (.../ansible_collections/coco/tdisp). ansible-test takes the physical working directory
# and does not descend into symlinked directories, so a synced copy is used rather than the
# symlink that build/collections holds for ansible.cfg.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dest="$top/build/ansible-test/ansible_collections/coco/tdisp"
rm -rf "$dest"
mkdir -p "$dest"
tar -C "$top" -c \
    --exclude ./.venv --exclude ./build --exclude ./.git --exclude ./tests/output \
    --exclude __pycache__ --exclude .pytest_cache --exclude .hypothesis \
    --exclude ./simulator --exclude ./bench --exclude ./tools --exclude ./.ci \
    . | tar -C "$dest" -x
# ansible-test finds the target Pythons (3.9 .. 3.14) as pythonX.Y on PATH: put pyenv's there.
for d in "$HOME"/.pyenv/versions/3.*/bin; do PATH="$PATH:$d"; done
export PATH="$top/.venv/bin:$PATH"
cd "$dest"
# ansible-test lists files through git, and the checkout ignores build/: give the copy its own
# repository so that the listing is this tree's.
git init -q . && git add -A
exec ansible-test "$@"
