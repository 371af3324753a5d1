#!/usr/bin/env bash
# audit.yml against a partly rolled-out fleet (scenario: see ./scenario): the hosts the rollout
# reached are compliant, the untouched ones drift (not_accepted), and after a GPU falls out of
# RUN the audit reports that device (trust_reset / evidence_changed). The audit writes nothing.
set -euo pipefail
cd "$(dirname "$0")"
. ../../lib/fleet.sh
fleet_target audit

# Events since SEQ that a read-only run must not cause (anything but evidence reads).
changes_since() {
    "$TDISP_SIM" log --mount "$TDISP_SIM_MOUNT" --json --since "$1" | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line) if line.strip() else {}
    if e and e["event"] != "evidence_read":
        print(json.dumps(e))'
}
# Run audit.yml into its own report directory; print the report's path.
audit() {
    local dir=$WORK/$1
    ansible-playbook -i "$INV" "$REPO/playbooks/audit.yml" -e tdisp_report_dir="$dir" >"$dir.out" 2>&1 \
        || { cat "$dir.out"; fail "audit.yml failed"; }
    cat "$dir.out" >&2
    local files=("$dir"/audit-*.json)
    if [ "${#files[@]}" -ne 1 ] || [ ! -f "${files[0]}" ]; then fail "expected one audit report in $dir: ${files[*]}"; fi
    echo "${files[0]}"
}

echo "== partial rollout: roll-1 and roll-2 only"
ansible-playbook -i "$INV" "$REPO/playbooks/rollout.yml" -e tdisp_report_dir="$WORK/rollout" \
    -e tdisp_rollout_hosts=roll-1:roll-2 -e '{"tdisp_rollout_waves": ["100%"]}'

echo "== audit: two compliant hosts, two that drift (not accepted)"
s1=$(last_seq)
report=$(audit audit1)
c=$(changes_since "$s1")
[ -z "$c" ] || fail "the audit changed the simulated fleet: $c"
python3 - "$report" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
assert rep["kind"] == "audit" and rep["policy_versions"] == ["2026.11.1"], (rep["kind"], rep["policy_versions"])
assert rep["hosts"] == {"expected": 4, "audited": 4, "compliant": 2, "with_drift": 2, "not_audited": []}, rep["hosts"]
per = {h["host"]: h for h in rep["per_host"]}
for name in ("roll-1", "roll-2"):
    assert (per[name]["compliant"], per[name]["drift"], per[name]["applied_policy_version"]) == (True, 0, "2026.11.1"), per[name]
for name in ("roll-3", "roll-4"):
    assert per[name]["compliant"] is False and per[name]["applied_policy_version"] is None, per[name]
tee = ["0000:0c:00.0", "0000:18:00.0", "0000:2a:00.0", "0000:5e:00.0"]
virtio = ["0000:00:03.0", "0000:00:04.0"]
drift = {}
for f in rep["drift"]:
    drift.setdefault((f["host"], f["kind"]), []).append(f["bdf"])
assert {h for h, _ in drift} == {"roll-3", "roll-4"}, sorted(drift)
for name in ("roll-3", "roll-4"):
    assert sorted(drift[(name, "not_accepted")]) == tee, (name, drift.get((name, "not_accepted")))
    # virtio left at adversary while the policy says normal
    assert sorted(drift[(name, "wrong_trust_level")]) == virtio, (name, drift.get((name, "wrong_trust_level")))
assert set(k for _, k in drift) == {"not_accepted", "wrong_trust_level"}, sorted(drift)
acc = rep["accepted_devices"]
assert sorted((a["host"], a["bdf"]) for a in acc) == sorted((h, b) for h in ("roll-1", "roll-2") for b in tee), acc
assert all(a["compliant"] and a["verdict"] == "affirming" and a["policy_version"] == "2026.11.1" for a in acc), acc
rules = {a["bdf"]: a["rule"] for a in acc}
assert rules == {"0000:0c:00.0": "cx7-tcb", "0000:18:00.0": "h100-tcb", "0000:2a:00.0": "h100-tcb", "0000:5e:00.0": "nvme-tcb"}, rules
print("audit 1 ok")
PY

echo "== a GPU of roll-1 falls out of RUN: the audit reports it"
"$TDISP_SIM" fault --mount "$TDISP_SIM_MOUNT" roll-1 0000:18:00.0 error
s2=$(last_seq)
report=$(audit audit2)
c=$(changes_since "$s2")
[ -z "$c" ] || fail "the audit changed the simulated fleet: $c"
python3 - "$report" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
per = {h["host"]: h for h in rep["per_host"]}
assert (per["roll-1"]["compliant"], per["roll-2"]["compliant"]) == (False, True), (per["roll-1"], per["roll-2"])
mine = [f for f in rep["drift"] if f["host"] == "roll-1"]
assert mine and {f["bdf"] for f in mine} == {"0000:18:00.0"}, mine
kinds = {f["kind"] for f in mine}
# it left RUN: its trust was reset and its evidence generation moved (and so it is no longer accepted)
assert kinds & {"trust_reset", "evidence_changed"} and kinds <= {"trust_reset", "evidence_changed", "not_accepted"}, mine
assert all(f["rule"] == "h100-tcb" and f["policy_version"] == "2026.11.1" and f["reason"] for f in mine), mine
assert ("roll-1", "0000:18:00.0") not in [(a["host"], a["bdf"]) for a in rep["accepted_devices"] if a["compliant"]]
assert rep["hosts"]["compliant"] == 1 and rep["hosts"]["with_drift"] == 3, rep["hosts"]
print("audit 2 ok: roll-1 0000:18:00.0 drifts (%s)" % ", ".join(sorted(kinds)))
PY
echo "audit: all checks passed"
