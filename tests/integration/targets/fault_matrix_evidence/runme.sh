#!/usr/bin/env bash
# Fault matrix, findings 1, 2, 5 and the identity half of 9, one host each in one rollout
# (scenario: ./scenario.yml):
#   e-1  the evidence generation moves right after accept: the GPU is not left at tcb, the report
#        says evidence_changed, the gate fails;
#   e-2  garbage reading 3 on the GPU's trust, no acceptance record: unexplained_state in the
#        rollout (no write to the GPU) and in the audit, never compliant;
#   e-3  the GPU falls into ERROR right after it is locked: taken back through unlock -> lock ->
#        verify -> accept, and the host's other device reaches its level whatever happens;
#   e-4  a garbled vendor on the GPU: unknown_identity, never the default rule, the gate fails.
# Every step asserts the simulator's truth; once the faults are gone a re-run converges all four.
set -euo pipefail
cd "$(dirname "$0")"
. ../../lib/fleet.sh
. ../../lib/fault_matrix.sh
fm_target fault_matrix_evidence
GPU=0000:18:00.0
rollout() { ansible-playbook -i "$INV" "$REPO/playbooks/rollout.yml" -e '{"tdisp_rollout_waves": ["100%"]}' "$@"; }
gpu_writes_since() {  # gpu_writes_since SEQ HOST: the writes to the GPU's attributes or to its driver's bind files
    "$TDISP_SIM" log --mount "$TDISP_SIM_MOUNT" --json --since "$1" --host "$2" | python3 -c '
import json, sys
n = 0
for line in sys.stdin:
    e = json.loads(line) if line.strip() else {}
    if e.get("event") == "write" and ("'$GPU'" in str(e.get("path")) or "'$GPU'" in str(e.get("value"))):
        n += 1
print(n)'
}

"$TDISP_SIM" fault --mount "$TDISP_SIM_MOUNT" e-2 $GPU garbage trust 330a
"$TDISP_SIM" fault --mount "$TDISP_SIM_MOUNT" e-4 $GPU garbage vendor 307831300a6465  # "0x10\nde"
$FM count faults_tried 4

echo "== one rollout over the four hosts"
s0=$(last_seq)
rc=0; rollout -e tdisp_report_dir="$WORK/run1" >"$WORK/run1.out" 2>&1 || rc=$?
cat "$WORK/run1.out"
[ "$rc" -ne 0 ] || fail "the gate passed a wave with an evidence change, an unexplained tcb and an unknown identity"
$FM invariant || { $FM count wrong_acceptances; fail "a wrong acceptance"; }
$FM silent "$WORK/run1/rollout-2026.11.1.json" || { $FM count silent_oks; fail "a silent ok"; }
[ "$(gpu_writes_since "$s0" e-2)" = 0 ] || fail "the rollout wrote to e-2's GPU, whose tcb nobody explained"
[ "$(gpu_writes_since "$s0" e-4)" = 0 ] || fail "the rollout wrote to e-4's GPU, whose identity is unknown"
python3 - "$WORK/run1/rollout-2026.11.1.json" "$WORK/run1.out" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
out = open(sys.argv[2]).read()
hosts = {h["host"]: h for h in rep["hosts"]}
def dev(host, bdf="0000:18:00.0"):
    return next(d for d in hosts[host]["devices"] if d["bdf"] == bdf)
def kinds(host):
    return sorted(r.get("kind") for r in hosts[host]["refused"])
assert not hosts["e-1"]["converged"] and dev("e-1").get("evidence_changed") is True, (hosts["e-1"]["refused"], dev("e-1"))
assert "evidence_changed" in kinds("e-1"), kinds("e-1")
assert not hosts["e-2"]["converged"] and dev("e-2")["action"] == "unexplained_state", dev("e-2")
assert not hosts["e-4"]["converged"] and dev("e-4")["action"] == "unknown_identity", dev("e-4")
assert "unexplained_state" in kinds("e-2") and "unknown_identity" in kinds("e-4"), (kinds("e-2"), kinds("e-4"))
assert "maximum recursion" not in out and "unexplained_state" in out, "the gate's line does not name the drift"
# the healthy device of every host reached its level, whatever happened to the GPU
for host in hosts:
    assert dev(host, "0000:00:03.0").get("converged") is not False, (host, dev(host, "0000:00:03.0"))
print("report: e-1 evidence_changed, e-2 unexplained_state, e-4 unknown_identity; e-3 %s" % (
    "converged" if hosts["e-3"]["converged"] else "not converged: %s" % hosts["e-3"]["failure"]))
PY
"$TDISP_SIM" list --mount "$TDISP_SIM_MOUNT" --json | python3 -c '
import json, sys
fleet = {h["name"]: {d["bdf"]: d for d in h["devices"]} for h in json.load(sys.stdin)["hosts"]}
for name, devs in fleet.items():
    assert devs["0000:00:03.0"]["trust"] == 2, (name, devs["0000:00:03.0"])   # finding 5: the healthy device is not held back
assert fleet["e-1"]["0000:18:00.0"]["trust"] != 3, fleet["e-1"]["0000:18:00.0"]  # finding 1
gpu3 = fleet["e-3"]["0000:18:00.0"]
assert gpu3["tdisp_state"] in ("run", "locked", "unlocked") and gpu3["tdisp_state"] != "error", gpu3  # finding 5: not wedged
print("simulator: e-1 GPU at trust %s, e-3 GPU %s at trust %s, virtio at normal everywhere"
      % (fleet["e-1"]["0000:18:00.0"]["trust"], gpu3["tdisp_state"], gpu3["trust"]))'

echo "== the audit: e-2 unexplained_state, e-4 unknown_identity, neither compliant"
ansible-playbook -i "$INV" "$REPO/playbooks/audit.yml" -e tdisp_report_dir="$WORK/audit1" >"$WORK/audit1.out" 2>&1 \
    || { cat "$WORK/audit1.out"; fail "audit.yml failed"; }
python3 - "$WORK"/audit1/audit-*.json <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
per = {h["host"]: h for h in rep["per_host"]}
kinds = {}
for f in rep["drift"]:
    kinds.setdefault((f["host"], f["bdf"]), set()).add(f["kind"])
assert "unexplained_state" in kinds.get(("e-2", "0000:18:00.0"), ()), kinds
assert "unknown_identity" in kinds.get(("e-4", "0000:18:00.0"), ()), kinds
assert not per["e-2"]["compliant"] and not per["e-4"]["compliant"], per
print("audit: %s" % sorted((h, sorted(k)) for (h, _b), k in kinds.items()))
PY

echo "== the faults are gone: a re-run (disruption allowed, for e-1's GPU left in RUN unexplained) converges all four"
"$TDISP_SIM" fault --mount "$TDISP_SIM_MOUNT" e-2 $GPU garbage trust clear
"$TDISP_SIM" fault --mount "$TDISP_SIM_MOUNT" e-4 $GPU garbage vendor clear
rollout -e tdisp_report_dir="$WORK/run2" -e tdisp_acceptance_allow_disruptive=true >"$WORK/run2.out" 2>&1 \
    || { cat "$WORK/run2.out"; fail "the re-run failed"; }
$FM converged || fail "the re-run did not converge"
$FM invariant || { $FM count wrong_acceptances; fail "a wrong acceptance after the re-run"; }
$FM silent "$WORK/run2/rollout-2026.11.1.json" || { $FM count silent_oks; fail "a silent ok after the re-run"; }
$FM count reruns_converged 4
cat "$WORK/counts.json"; echo
echo "fault_matrix_evidence: all checks passed"
