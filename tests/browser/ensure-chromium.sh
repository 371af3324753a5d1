#!/usr/bin/env bash
# Make sure Debian's Chromium is installed for the browser test of the HTML report
# (tests/browser/test_html_report.py). Prints the path of the browser; one-line error otherwise.
set -euo pipefail
for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; exit 0; fi
done
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: chromium is not installed and cannot be installed here (needs root and apt-get): apt-get install -y chromium" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends chromium >/tmp/ensure-chromium.log 2>&1; then
    apt-get update -q >>/tmp/ensure-chromium.log 2>&1 || true
    apt-get install -y -q --no-install-recommends chromium >>/tmp/ensure-chromium.log 2>&1 \
        || { echo "ensure-chromium: apt-get install chromium failed (see /tmp/ensure-chromium.log)" >&2; exit 1; }
fi
command -v chromium
