#!/usr/bin/env bash
# Fault matrix, finding 3 (and the stale half of 4): ansible-playbook killed (SIGKILL or SIGINT to
# its process group and its workers) right after each step of a GPU's acceptance: unbind, lock, accept, bind
# (the rebind after accept), the trust raise, and the kernel validate the module asks right after the
# controller verified the evidence (before accept); twelve kill points, one host each (scenario:
# ./scenario.yml, whose triggers carry out the kill the test arms). After every kill the
# simulator's truth: no device at tcb unless in RUN at the generation of a committed record (0
# wrong acceptances), no device in RUN whose acceptance the ledger lost (0 records lost). A re-run
# without the dead run's id is refused naming the holder; the re-run that breaks the dead run's
# lock converges every host, the report says so truthfully (0 silent oks), and an evidence change
# afterwards is flagged by the audit on a host that was killed as on one that was not.
set -euo pipefail
cd "$(dirname "$0")"
. ../../lib/fleet.sh
. ../../lib/fault_matrix.sh
fm_target fault_matrix_kill
rollout() { ansible-playbook -i "$INV" "$REPO/playbooks/rollout.yml" -e '{"tdisp_rollout_waves": ["100%"]}' "$@"; }

i=0
for point in unbind-KILL lock-KILL validate-KILL accept-KILL bind-KILL trust-KILL unbind-INT lock-INT validate-INT accept-INT bind-INT trust-INT; do
    i=$((i + 1)); host=k-$i
    echo "== kill point $point on $host"
    setsid ansible-playbook -i "$INV" "$REPO/playbooks/rollout.yml" -e '{"tdisp_rollout_waves": ["100%"]}' \
        -e tdisp_rollout_hosts="$host" -e tdisp_report_dir="$WORK/killed-$i" >"$WORK/killed-$i.out" 2>&1 &
    pid=$!
    echo "$pid" >"$ARM/$point"   # armed: the trigger of this step kills process group $pid, once
    rc=0; wait "$pid" || rc=$?
    [ ! -e "$ARM/$point" ] || { rm -f "$ARM/$point"; cat "$WORK/killed-$i.out"; fail "$point was never reached on $host (rc $rc)"; }
    [ "$rc" -ne 0 ] || fail "the run killed at $point exited 0"
    $FM count faults_tried
    $FM invariant "$host" || { $FM count wrong_acceptances; fail "a wrong acceptance after the kill at $point"; }
    $FM lost "$host" || { $FM count records_lost; fail "a record lost after the kill at $point"; }
done

echo "== a re-run that does not name the dead run is refused at once, naming the holder"
holder=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TDISP_SIM_RUN_DIR/state/k-4/run.lock")
rc=0; rollout -e tdisp_rollout_hosts=k-4 -e tdisp_report_dir="$WORK/refused" >"$WORK/refused.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a re-run while the dead run's lease lasts passed"
grep -q "another run holds this host: pid [0-9]* (run $holder, started [0-9T:Z-]*, policy 2026.11.1)" "$WORK/refused.out" \
    || { cat "$WORK/refused.out"; fail "the refusal does not name the holder"; }

echo "== the re-run breaks the dead runs' locks and converges every host"
python3 - "$TDISP_SIM_RUN_DIR/state" >"$WORK/breaks.json" <<'PY'
import json, os, sys
breaks = {}
for host in sorted(os.listdir(sys.argv[1])):
    path = os.path.join(sys.argv[1], host, "run.lock")
    if os.path.exists(path):
        breaks[host] = json.load(open(path))["run_id"]
print(json.dumps({"fm_breaks": breaks, "tdisp_acceptance_break_run": "{{ fm_breaks[inventory_hostname] | default(none) }}"}))
PY
rollout -e "@$WORK/breaks.json" -e tdisp_report_dir="$WORK/rerun" >"$WORK/rerun.out" 2>&1 || { cat "$WORK/rerun.out"; fail "the re-run failed"; }
$FM converged || fail "the re-run did not converge every host"
$FM count reruns_converged 12
$FM invariant || { $FM count wrong_acceptances; fail "a wrong acceptance after the re-run"; }
$FM silent "$WORK/rerun/rollout-2026.11.1.json" || { $FM count silent_oks; fail "the report says ok where the simulator does not"; }
for h in k-1 k-2 k-3 k-4 k-5 k-6 k-7 k-8 k-9 k-10 k-11 k-12; do
    [ ! -e "$TDISP_SIM_RUN_DIR/state/$h/run.lock" ] || fail "$h: the run lock was not released"
done

echo "== an evidence change after the recovery is flagged on a killed host (k-4, killed right after accept) as on any other"
"$TDISP_SIM" fault --mount "$TDISP_SIM_MOUNT" k-4 0000:18:00.0 generation
ansible-playbook -i "$INV" "$REPO/playbooks/audit.yml" -e tdisp_report_dir="$WORK/audit" >"$WORK/audit.out" 2>&1 \
    || { cat "$WORK/audit.out"; fail "audit.yml failed"; }
python3 - "$WORK"/audit/audit-*.json <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
per = {h["host"]: h for h in rep["per_host"]}
assert per["k-4"]["compliant"] is False, per["k-4"]
kinds = {f["kind"] for f in rep["drift"] if f["host"] == "k-4"}
assert kinds & {"evidence_changed", "unexplained_state", "trust_reset", "not_accepted"}, kinds
assert all(per["k-%d" % i]["compliant"] for i in range(1, 13) if i != 4), [h for h in rep["per_host"] if not h["compliant"]]
print("audit: k-4 drifts (%s), the other eleven are compliant" % ", ".join(sorted(kinds)))
PY
cat "$WORK/counts.json"; echo
python3 - "$WORK/counts.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
assert c.get("faults_tried") == 12 and c.get("reruns_converged") == 12, c
assert not c.get("wrong_acceptances") and not c.get("records_lost") and not c.get("silent_oks"), c
PY
echo "fault_matrix_kill: all checks passed"
