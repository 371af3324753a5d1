#!/usr/bin/env bash
# The compatibility controller: ansible-core 2.19 on Python 3.11 must keep working.
# Builds .venv-2.19 (pinned in requirements/controller-2.19.txt), then runs the controller-side
# unit tests and a real rollout + audit against a simulated fleet with that controller.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
py=""
for c in "$(command -v python3.11 2>/dev/null || true)" "$HOME"/.pyenv/versions/3.11*/bin/python3.11; do
    [ -n "$c" ] && [ -x "$c" ] && { py=$c; break; }
done
[ -n "$py" ] || { echo "compat: no Python 3.11 found (pyenv install 3.11); skipping is not allowed, install it" >&2; exit 1; }
venv=.venv-2.19
stamp="$venv/.tdisp-env-stamp"
want="$("$py" -c 'import sys; print(sys.version.splitlines()[0])') $(cat requirements/controller-2.19.txt requirements/test.txt | sha256sum | cut -c1-16)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "compat: creating $venv with $py"
    rm -rf "$venv"
    "$py" -m venv "$venv"
    mkdir -p build
    "$venv/bin/python" -m pip install -q -r requirements/controller-2.19.txt pytest==9.2.0 'hypothesis==6.170.17' >build/compat-env.log 2>&1 \
        || { tail -30 build/compat-env.log; exit 1; }
    echo "$want" > "$stamp"
fi
# The version from Python, not by cutting the first line of `ansible --version`: under pipefail a reader that closes the pipe early makes ansible exit 250 (BrokenPipe).
"$venv/bin/python" -c "import ansible.release as r; print(\"compat: ansible-core\", r.__version__)"

echo "compat: controller unit tests on $("$venv/bin/python" --version)"
PYTHONPATH=build/collections "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit/plugins/plugin_utils tests/unit/plugins/filter

echo "compat: rollout and audit of a simulated fleet with ansible-core 2.19"
work=$(mktemp -d /tmp/tdisp-compat.XXXXXX)
trap '"$top/.venv/bin/tdisp-sim" stop --mount "$work/mnt" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$work/mnt"
"$top/.venv/bin/tdisp-sim" start --scenario mixed-fleet --mount "$work/mnt" >/dev/null
export TDISP_SIM_MOUNT="$work/mnt" ANSIBLE_CONFIG="$top/ansible.cfg"
PATH="$top/$venv/bin:$PATH" ansible-playbook -i inventories/simulator.py playbooks/rollout.yml \
    -e tdisp_rollout_hosts=canary -e tdisp_report_dir="$work/reports" >"$work/rollout.log" 2>&1 || { tail -40 "$work/rollout.log"; exit 1; }
PATH="$top/$venv/bin:$PATH" ansible-playbook -i inventories/simulator.py playbooks/rollout.yml \
    -e tdisp_rollout_hosts=canary -e tdisp_report_dir="$work/reports" >"$work/rollout2.log" 2>&1 || { tail -40 "$work/rollout2.log"; exit 1; }
PATH="$top/$venv/bin:$PATH" ansible-playbook -i inventories/simulator.py playbooks/audit.yml \
    -e tdisp_audit_hosts=canary -e tdisp_report_dir="$work/reports" >"$work/audit.log" 2>&1 || { tail -40 "$work/audit.log"; exit 1; }
"$top/.venv/bin/python" - "$work" <<'PY'
import glob, json, re, sys
work = sys.argv[1]
recap = re.findall(r"^(mixed-\d+)\s*:.*changed=(\d+).*failed=(\d+)", open(work + "/rollout2.log").read(), re.M)
assert recap and all(c == "0" and f == "0" for _, c, f in recap), "second rollout is not a no-op: %s" % recap
audit = json.load(open(sorted(glob.glob(work + "/reports/audit-*.json"))[-1]))
assert audit["hosts"]["audited"] == 3 and audit["hosts"]["compliant"] == 3, audit["hosts"]
assert audit["devices"]["accepted"] == 12, audit["devices"]
print("compat: 3 canaries converged, second run changed nothing, audit 3/3 compliant, 12 devices accepted")
PY
