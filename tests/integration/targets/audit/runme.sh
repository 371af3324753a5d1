#!/usr/bin/env bash
# audit.yml against a partly rolled-out fleet (scenario: see ./scenario): the hosts the rollout
# reached are compliant, the untouched ones drift (not_accepted), and after a GPU falls out of
# RUN the audit reports that device (trust_reset / evidence_changed). The audit writes nothing.
set -euo pipefail
cd "$(dirname "$0")"
. ../../lib/fleet.sh
fleet_target audit
# The tests read the play output: one JSON result per task, never wrapped.
export ANSIBLE_CALLBACK_RESULT_FORMAT=json

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

# no_warnings LOG: fail on any deprecation or other warning in a normal run's output.
no_warnings() {
    if grep -nE '\[(DEPRECATION )?WARNING\]' "$1"; then fail "warnings in a normal run ($1)"; fi
}
# custom_stats LOG: the CUSTOM STATS block of ANSIBLE_SHOW_CUSTOM_STATS=true, as JSON.
custom_stats() {
    python3 - "$1" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
block = text[text.index("CUSTOM STATS"):]
block = block[block.index("RUN:") + 4:]
print(json.dumps(json.JSONDecoder().raw_decode(block.strip())[0]))  # JSON (ANSIBLE_CALLBACK_RESULT_FORMAT=json) on one line
PY
}

echo "== partial rollout: roll-1 and roll-2 only, in two waves, every variable as the text an AWX/AAP survey sends"
ANSIBLE_SHOW_CUSTOM_STATS=true ansible-playbook -i "$INV" "$REPO/playbooks/rollout.yml" -e tdisp_report_dir="$WORK/rollout" \
    -e tdisp_rollout_hosts=roll-1:roll-2 -e 'tdisp_rollout_waves=1,100%' -e tdisp_rollout_gate_require_expected=yes \
    -e tdisp_rollout_gate_max_contraindicated=0 -e tdisp_report_formats=json,html >"$WORK/rollout.out" 2>&1 \
    || { cat "$WORK/rollout.out"; fail "rollout.yml failed"; }
cat "$WORK/rollout.out"
no_warnings "$WORK/rollout.out"
for h in roll-1 roll-2; do
    grep -qE "\"msg\": \"$h: accepted 4 at tcb, 2 at other levels \(normal 2\), converged\"" "$WORK/rollout.out" \
        || fail "no one-line result for $h"
done
[ "$(grep -c '"msg": "the wave of 1 host(s) passed its gate; ' "$WORK/rollout.out")" = 2 ] || fail "not two one-line wave gates"
grep -q 'Rollout of policy 2026.11.1:' "$WORK/rollout.out" || fail "no fleet summary at the end of the rollout"
grep -q 'hosts: 2 converged, 0 failed, of 2 reached; 0 not reached' "$WORK/rollout.out" || fail "the fleet summary's counts"
{ [ -f "$WORK/rollout/rollout-2026.11.1.html" ] && [ ! -f "$WORK/rollout/rollout-2026.11.1.md" ]; } || fail "formats from a text list"
custom_stats "$WORK/rollout.out" | python3 -c '
import json, sys
s = json.load(sys.stdin)["tdisp_rollout_stats"]
c = s["counts"]
assert (c["hosts_reached"], c["hosts_converged"], c["devices_tcb"], c["devices_rejected"]) == (2, 2, 8, 0), c
assert s["passed"] is True and [w["passed"] for w in s["waves"]] == [True, True], s
assert s["reports"]["json"].endswith("rollout-2026.11.1.json") and "html" in s["reports"], s["reports"]
print("rollout stats ok")'

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

echo "== the audit's output: a line per host, the fleet summary, set_stats, no warning"
out=$WORK/audit1.out
no_warnings "$out"
grep -qE '"msg": "roll-3: 6 device\(s\), 0 accepted at tcb \(adversary 6\), DRIFT: 6 finding\(s\) \(not_accepted 4, wrong_trust_level 2\)' "$out" \
    || fail "no one-line drift result for roll-3"
grep -qE '"msg": "roll-1: 6 device\(s\), 4 accepted at tcb \(normal 2, tcb 4\), compliant with policy 2026.11.1"' "$out" \
    || fail "no one-line result for roll-1"
grep -q 'hosts: 4 audited, 2 compliant, 2 with drift, 0 not audited' "$out" || fail "no fleet summary"

echo "== tdisp_audit_fail_on_drift (survey text): the hosts with drift fail, after the report; junit shows them"
mkdir -p "$WORK/drift" "$WORK/junit"
rc=0
ANSIBLE_SHOW_CUSTOM_STATS=true ANSIBLE_CALLBACKS_ENABLED=junit JUNIT_OUTPUT_DIR="$WORK/junit" JUNIT_TASK_CLASS=yes \
    ansible-playbook -i "$INV" "$REPO/playbooks/audit.yml" -e tdisp_report_dir="$WORK/drift" -e tdisp_audit_fail_on_drift=yes \
    >"$WORK/drift.out" 2>&1 || rc=$?
cat "$WORK/drift.out"
[ "$rc" = 2 ] || fail "audit.yml with drift and tdisp_audit_fail_on_drift=yes exited $rc, not 2"
ls "$WORK"/drift/audit-*.json >/dev/null || fail "no report written before the hosts failed"
grep -qE 'fatal: \[roll-3\]: FAILED! => .*"msg": "roll-3: .*DRIFT' "$WORK/drift.out" || fail "roll-3 does not fail in one line"
if grep -qE 'fatal: \[roll-[12]\]' "$WORK/drift.out"; then fail "a compliant host failed"; fi
python3 - "$WORK/junit" <<'PY'
import glob, sys
import xml.etree.ElementTree as ET
failed = set()
files = glob.glob(sys.argv[1] + "/audit-*.xml")
assert files, "no junit file in %s" % sys.argv[1]
for path in files:
    for case in ET.parse(path).getroot().iter("testcase"):
        # ansible-core 2.19+ records every failed task as a JUnit <error> (older ones as <failure>)
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            host = case.get("name").split("] ", 1)[0].lstrip("[")
            assert "DRIFT" in bad.get("message") and host in bad.get("message"), bad.get("message")
            failed.add(host)
assert failed == {"roll-3", "roll-4"}, failed
print("junit ok: failures for", sorted(failed))
PY
custom_stats "$WORK/drift.out" | python3 -c '
import json, sys
s = json.load(sys.stdin)["tdisp_audit_stats"]
c = s["counts"]
assert (c["hosts_audited"], c["hosts_compliant"], c["hosts_with_drift"], c["devices_accepted"], c["drift"]) == (4, 2, 2, 8, 12), c
assert s["passed"] is False and s["findings"]["not_accepted"] == 8 and s["reports"]["json"].endswith(".json"), s
print("audit stats ok")'

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
