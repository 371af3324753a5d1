#!/usr/bin/env bash
# The playbook variables as an AWX/AAP survey sends them (scenario: see ./scenario): text lists,
# "yes"/"true", numbers as text are taken; a value in no form a variable takes fails in one line
# that names the variable, before any host is touched, and never as an ansible-core crash.
set -euo pipefail
cd "$(dirname "$0")"
. ../../lib/fleet.sh
fleet_target surveys

# refused PLAYBOOK WHAT EXPECTED ARGS...: the run fails naming EXPECTED, with no traceback, and no host is read.
refused() {
    local playbook=$1 what=$2 expected=$3 rc=0 out=$WORK/refused.out s
    shift 3
    s=$(last_seq)
    ansible-playbook -i "$INV" "$REPO/playbooks/$playbook" -e tdisp_report_dir="$WORK/reports" "$@" >"$out" 2>&1 || rc=$?
    cat "$out"
    [ "$rc" != 0 ] || fail "$what: $playbook did not refuse it"
    grep -qF -- "$expected" "$out" || fail "$what: the error does not say: $expected"
    if grep -qE 'Unexpected Exception|Traceback' "$out"; then fail "$what: ansible-core crashed"; fi
    [ -z "$("$TDISP_SIM" log --mount "$TDISP_SIM_MOUNT" --json --since "$s")" ] || fail "$what: a host was touched"
    [ ! -e "$WORK/reports" ] || fail "$what: a report was written"
    echo "ok: $what"
}

refused rollout.yml "waves as words" "tdisp_rollout_waves: 'one,all' is not a list of batch sizes" -e 'tdisp_rollout_waves=one,all'
refused rollout.yml "a wave of 0" "tdisp_rollout_waves: '0,100%' is not a list of batch sizes" -e 'tdisp_rollout_waves=0,100%'
refused rollout.yml "a wave over 100%" "is not a list of batch sizes" -e '{"tdisp_rollout_waves": "[1, \"150%\"]"}'
refused rollout.yml "a boolean that is not one" "tdisp_rollout_gate_require_expected: 'maybe' is not a boolean" \
    -e tdisp_rollout_gate_require_expected=maybe
refused rollout.yml "a count that is not a number" "tdisp_rollout_gate_max_contraindicated: 'two' is not a whole number" \
    -e tdisp_rollout_gate_max_contraindicated=two
refused rollout.yml "an unknown report format" "tdisp_report_formats: 'pdf' not one of json, markdown, junit, html" \
    -e tdisp_report_formats=json,pdf
refused audit.yml "fail on drift that is not a boolean" "tdisp_audit_fail_on_drift: 'perhaps' is not a boolean" \
    -e tdisp_audit_fail_on_drift=perhaps
refused revoke.yml "a revocation batch as words" "tdisp_revoke_batch: 'half' is not one batch size" \
    -e tdisp_revoke_batch=half -e "tdisp_revoke_match=vendor == '0x10de'" -e tdisp_revoke_confirm=REVOKE

echo "== a YAML list as text (as AWX passes a survey answer): the plan in two waves"
ansible-playbook -i "$INV" "$REPO/playbooks/rollout.yml" --check -e tdisp_report_dir="$WORK/plan" \
    -e tdisp_rollout_hosts=roll-1:roll-2 -e '{"tdisp_rollout_waves": "[1, 100%]"}' -e tdisp_rollout_gate_require_expected=true \
    -e tdisp_rollout_gate_max_contraindicated=0 -e tdisp_report_formats='["json"]'
python3 - "$WORK/plan/rollout-2026.11.1-check.json" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
assert [w["hosts"] for w in rep["waves"]] == [["roll-1"], ["roll-2"]], rep["waves"]
print("plan ok: waves", [w["hosts"] for w in rep["waves"]])
PY
echo "surveys: all checks passed"
