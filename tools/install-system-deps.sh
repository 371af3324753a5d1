#!/usr/bin/env bash
# Install the Debian packages the project needs that pip cannot bring: fuse3 (fusermount3, for
# the FUSE simulator) and shellcheck (ansible-test sanity runs it only where it is installed, so
# it is installed everywhere: the same sanity on every machine). Used by .ci/run and by make demo / make test, so that a fresh machine
# needs nothing by hand. A no-op when they are there; needs root (or sudo) otherwise.
set -euo pipefail
command -v fusermount3 >/dev/null 2>&1 && command -v shellcheck >/dev/null 2>&1 && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: fusermount3 or shellcheck is missing and this is not a Debian system: install fuse3 and shellcheck" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
sudo_=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-system-deps: apt-get install fuse3 shellcheck needs root" >&2; exit 1; }
    sudo_=sudo
fi
echo "install-system-deps: installing Debian's fuse3 and shellcheck"
# Quietly; the package lists may be stale or missing on a fresh machine: update once and retry.
$sudo_ apt-get install -y -q fuse3 shellcheck >/dev/null 2>&1 \
    || { $sudo_ apt-get update -q >/dev/null && $sudo_ apt-get install -y -q fuse3 shellcheck >/dev/null; }
command -v fusermount3 >/dev/null 2>&1 || { echo "install-system-deps: fuse3 did not install fusermount3" >&2; exit 1; }
command -v shellcheck >/dev/null 2>&1 || { echo "install-system-deps: shellcheck did not install" >&2; exit 1; }
