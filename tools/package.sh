#!/usr/bin/env bash
# Build the collection tarball as Galaxy would get it: OUT/coco-tdisp-VERSION.tar.gz, plus
# OUT/coco-tdisp.tar.gz (the same file under a fixed name, for execution-environment.yml).
# OUT is the first argument, default build/package (callers that may run side by side pass
# their own). Prints the versioned path.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out=${1:-build/package}
mkdir -p "$out"
rm -f "$out"/coco-tdisp-*.tar.gz
"$top/.venv/bin/ansible-galaxy" collection build --force --output-path "$out" . >"$out/build.log" 2>&1 \
    || { cat "$out/build.log" >&2; exit 1; }
tarball=$(ls "$out"/coco-tdisp-*.tar.gz)
cp "$tarball" "$out/coco-tdisp.tar.gz"
case "$tarball" in /*) echo "$tarball" ;; *) echo "$top/$tarball" ;; esac
