#!/usr/bin/env bash
# Fault matrix, finding 4: two rollout.yml runs on the same host. The first holds the host's run
# lock across its module runs; the second, started while the first is in the middle of the
# host's acceptance (the simulator stalls right after the GPU's lock), fails at once with the
# one-line "another run holds this host: pid ..., (run ..., started ..., policy ...)" and writes
# nothing; the first converges, no write fails (no ENODEV from two runs unbinding one driver), the
# ledger keeps every record, the lock is released, and a third run changes nothing.
set -euo pipefail
cd "$(dirname "$0")"
. ../../lib/fleet.sh
. ../../lib/fault_matrix.sh
fm_target fault_matrix_lock
# The static inventory beside the fleet's group_vars: the dynamic one asks the simulator, which the stall holds.
mkdir -p "$WORK/inv"
cp "$INVENTORY" "$WORK/inv/hosts.yml"
ln -sfn "$REPO/inventories/group_vars" "$WORK/inv/group_vars"
rollout() { ansible-playbook -i "$WORK/inv/hosts.yml" "$REPO/playbooks/rollout.yml" -e '{"tdisp_rollout_waves": ["100%"]}' "$@"; }

s0=$(last_seq)
echo armed >"$ARM/lock-stall"
rollout -e tdisp_report_dir="$WORK/first" >"$WORK/first.out" 2>&1 &
first=$!
for _ in $(seq 1 300); do [ -e "$ARM/lock-stall" ] || break; sleep 0.1; done
[ ! -e "$ARM/lock-stall" ] || fail "the first run never locked the GPU"
$FM count faults_tried
t0=$(date +%s)
rc=0; rollout -e tdisp_report_dir="$WORK/second" >"$WORK/second.out" 2>&1 || rc=$?
t1=$(date +%s)
rc1=0; wait "$first" || rc1=$?
cat "$WORK/second.out"
[ "$rc" -ne 0 ] || fail "the second run passed while the first held the host"
grep -Eq "another run holds this host: pid [0-9]+ \(run acc-[0-9]+-[0-9TZ]+-[0-9a-f]+, started [0-9T:Z-]+, policy 2026\.11\.1\)" \
    "$WORK/second.out" || fail "the second run's error does not name the holder"
[ $((t1 - t0)) -lt 60 ] || fail "the second run took $((t1 - t0)) s to fail"
[ "$rc1" -eq 0 ] || { cat "$WORK/first.out"; fail "the first run failed"; }
"$TDISP_SIM" log --mount "$TDISP_SIM_MOUNT" --json --since "$s0" | python3 -c '
import json, sys
bad = [e for e in map(json.loads, filter(str.strip, sys.stdin)) if e.get("event") == "write" and e.get("result") not in (None, "ok", 0)]
assert not bad, bad
print("no write failed")'
$FM converged || fail "the first run did not converge the host"
$FM invariant || { $FM count wrong_acceptances; fail "a wrong acceptance"; }
$FM lost || { $FM count records_lost; fail "a record lost"; }
$FM silent "$WORK/first/rollout-2026.11.1.json" || { $FM count silent_oks; fail "a silent ok"; }
python3 - "$WORK/second/rollout-2026.11.1.json" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
(h,) = rep["hosts"]
assert h["failed"] and not h["converged"] and "another run holds this host" in h["failure"], h
assert h["module_calls"] == ["tdisp_device_info"], h["module_calls"]   # refused at its first call: nothing written
PY
[ ! -e "$TDISP_SIM_RUN_DIR/state/l-1/run.lock" ] || fail "the first run did not release the host's run lock"

echo "== a third run changes nothing"
s1=$(last_seq)
rollout -e tdisp_report_dir="$WORK/third" >"$WORK/third.out" 2>&1 || { cat "$WORK/third.out"; fail "the third run failed"; }
"$TDISP_SIM" log --mount "$TDISP_SIM_MOUNT" --json --since "$s1" | grep -q '"event":"write"' && fail "the third run wrote"
$FM count reruns_converged
cat "$WORK/counts.json"; echo
echo "fault_matrix_lock: all checks passed"
