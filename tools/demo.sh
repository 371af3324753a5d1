#!/usr/bin/env bash
# make demo: start the mixed-fleet simulation (40 confidential VMs with planted problems), roll
# the policy out in canary waves, audit the fleet, print a summary, stop the simulator.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
demo="$top/build/demo"
mount="$demo/mnt"
reports="$demo/reports"
sim="$top/.venv/bin/tdisp-sim"
export ANSIBLE_CONFIG="$top/ansible.cfg" TDISP_SIM_MOUNT="$mount" PATH="$top/.venv/bin:$PATH"

"$sim" stop --mount "$mount" >/dev/null 2>&1 || true
rm -rf "$demo"
mkdir -p "$mount" "$reports"
trap '"$sim" stop --mount "$mount" >/dev/null 2>&1 || true' EXIT

echo "== 1. start the simulated fleet: mixed-fleet (planted: tampered GPU firmware on mixed-005, a NIC"
echo "      certificate under the wrong root on mixed-006, a GPU that drops out of RUN right after"
echo "      accept on mixed-007, a GPU missing on mixed-008)"
"$sim" start --scenario mixed-fleet --mount "$mount"

echo
echo "== 2. the plan: rollout.yml --check (nothing is written)"
start=$(date +%s)
ansible-playbook -i inventories/simulator.py playbooks/rollout.yml --check \
    -e tdisp_rollout_hosts=canary -e tdisp_report_dir="$reports" >"$demo/rollout-check.log" 2>&1 \
    || { tail -30 "$demo/rollout-check.log"; exit 1; }
echo "   ok ($(( $(date +%s) - start ))s): plan of the canaries in $reports/rollout-2026.11.1-check.json"

echo
echo "== 3. roll policy 2026.11.1 out: canaries (mixed-001..003), then wave1 (004..020), then wave2 (021..040)"
start=$(date +%s)
set +e
ANSIBLE_CALLBACK_RESULT_FORMAT=json ansible-playbook -i inventories/simulator.py playbooks/rollout.yml \
    -e tdisp_rollout_hosts=canary:wave1:wave2 -e '{"tdisp_rollout_waves": [3, 17, 20]}' \
    -e tdisp_report_dir="$reports" >"$demo/rollout.log" 2>&1
rc=$?
set -e
echo "   ansible-playbook exited $rc after $(( $(date +%s) - start ))s (log: $demo/rollout.log)"
# each wave's one-line gate (the "Show the wave's gate" task)
grep -E '^ *"msg": "the wave of' "$demo/rollout.log" | sed -e 's/^ *"msg": "//' -e 's/",\?$//' -e 's/^/   /' | cut -c1-400 || true

echo
echo "== 4. audit the whole fleet (read-only)"
start=$(date +%s)
ansible-playbook -i inventories/simulator.py playbooks/audit.yml -e tdisp_report_dir="$reports" >"$demo/audit.log" 2>&1 \
    || { tail -30 "$demo/audit.log"; exit 1; }
echo "   ok ($(( $(date +%s) - start ))s)"

echo
echo "== 5. summary"
# The collection's fleet summary (the one the playbooks end with), from the two reports.
PYTHONPATH="$top/build/collections" "$top/.venv/bin/python" "$top/tools/demo_summary.py" "$reports"
