#!/usr/bin/env bash
# A halted rollout (scenario rollout-canary-tampered: the canary roll-1's GPU 0000:18:00.0
# measures tampered firmware). The canary's gate stops the rollout before wave 1: exit non-zero,
# the later waves' hosts see nothing, the report lists them under not_reached and names the
# contraindicated device and why. A re-run without the canary continues with the other hosts.
# Then an older policy must not overwrite the newer one a host records.
set -euo pipefail
cd "$(dirname "$0")"
. ../../lib/fleet.sh
fleet_target rollout_halt

# Events since SEQ as "host event path=value result" lines (write events carry path and value).
events_since() {
    "$TDISP_SIM" log --mount "$TDISP_SIM_MOUNT" --json --since "$1" | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line) if line.strip() else {}
    if e.get("host"):
        print(e["host"], e["event"], "%s=%s" % (e.get("path"), e.get("value")), e.get("result"))'
}
rollout() { ansible-playbook -i "$INV" "$REPO/playbooks/rollout.yml" -e tdisp_report_dir="$WORK/reports" "$@"; }
# "host tdisp_state trust" of every device, for comparisons.
states() {
    "$TDISP_SIM" list --mount "$TDISP_SIM_MOUNT" --json | python3 -c '
import json, sys
for h in json.load(sys.stdin)["hosts"]:
    for d in h["devices"]:
        print(h["name"], d["bdf"], d["tdisp_state"], d["trust"], d["driver"], d["generation"])'
}

states >"$WORK/states0"
echo "== the canary's tampered GPU halts the rollout before wave 1"
s0=$(last_seq)
rc=0
rollout -e '{"tdisp_rollout_waves": [1, 1, "100%"]}' >"$WORK/halt.out" 2>&1 || rc=$?
cat "$WORK/halt.out"
[ "$rc" -ne 0 ] || fail "the rollout exited 0 although the canary's gate failed"
grep -q "the wave of 1 host(s) failed its gate; the rollout stops here: roll-1 0000:18:00.0: contraindicated evidence" \
    "$WORK/halt.out" || fail "the gate message does not name the canary's contraindicated GPU"
events_since "$s0" >"$WORK/halt.events"
grep -q '^roll-1 write ' "$WORK/halt.events" || fail "the canary saw no write"
if grep -E '^roll-[234] ' "$WORK/halt.events"; then fail "hosts of the later waves were touched (above)"; fi
states | grep -v '^roll-1 ' >"$WORK/states1"
grep -v '^roll-1 ' "$WORK/states0" | cmp -s - "$WORK/states1" || fail "devices of the later waves changed"
python3 - "$WORK/reports/rollout-2026.11.1.json" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
assert rep["check_mode"] is False, rep["check_mode"]
assert sorted(rep["not_reached"]) == ["roll-2", "roll-3", "roll-4"], rep["not_reached"]
assert [h["host"] for h in rep["hosts"]] == ["roll-1"], [h["host"] for h in rep["hosts"]]
h = rep["hosts"][0]
assert h["contraindicated"] == 1 and h["counts"]["verdicts"] == {"affirming": 3, "contraindicated": 1}, h["counts"]
bad = [d for d in h["devices"] if (d["verdict"] or {}).get("status") == "contraindicated"]
assert [d["bdf"] for d in bad] == ["0000:18:00.0"], [d["bdf"] for d in bad]
d = bad[0]
assert (d["rule"], d["verdict"]["manifest"], d["action"], d["trust"], d["tdisp_state"]) == \
    ("h100-tcb", "h100-96.00", "unlock", "blocked", "unlocked"), d
assert any(r.startswith("measurements: index 2: digest sha384:") and r.endswith("is not allowed by manifest h100-96.00")
           for r in d["verdict"]["reasons"]), d["verdict"]["reasons"]
assert len(h["gate_notes"]) == 1 and h["gate_notes"][0].startswith(
    "roll-1 0000:18:00.0: contraindicated evidence against h100-96.00 (rule h100-tcb): measurements: index 2"), h["gate_notes"]
print("report: halted after the canary; not reached: roll-2, roll-3, roll-4")
PY
# The canary's tampered GPU was locked to read its evidence, then returned unlocked at blocked.
states >"$WORK/states-halted"
grep -q '^roll-1 0000:18:00.0 unlocked 0 ' "$WORK/states-halted" || fail "the tampered GPU is not unlocked at trust 0"

echo "== the re-run without the canary continues with the later waves"
s1=$(last_seq)
rollout -e 'tdisp_rollout_hosts=all:!roll-1' -e '{"tdisp_rollout_waves": [1, "100%"]}' | tee "$WORK/rerun.out"
events_since "$s1" | grep -E '^roll-1 ' && fail "the re-run touched the excluded canary"
python3 - "$WORK/reports/rollout-2026.11.1.json" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
assert rep["not_reached"] == [], rep["not_reached"]
hosts = {h["host"]: h for h in rep["hosts"]}
assert sorted(hosts) == ["roll-2", "roll-3", "roll-4"], sorted(hosts)
bad = {n: (h["converged"], h["contraindicated"], h["failure"]) for n, h in hosts.items()
       if not h["converged"] or h["contraindicated"] or h["failed"]}
assert not bad, bad
PY
states | python3 -c '
import sys
rows = [l.split() for l in sys.stdin if not l.startswith("roll-1 ")]
tee = {"0000:18:00.0", "0000:2a:00.0", "0000:0c:00.0", "0000:5e:00.0"}
bad = [r for r in rows if (r[1] in tee and r[2:4] != ["run", "3"]) or (r[1] not in tee and r[2:4] != ["unlocked", "2"])]
assert len(rows) == 18 and not bad, bad'

echo "== an older policy cannot overwrite the newer one a host runs"
python3 - "$REPO/inventories/group_vars/all/policy.yml" "$WORK/older-policy.json" <<'PY'
import json, sys, yaml
policy = yaml.safe_load(open(sys.argv[1]))["tdisp_policy"]
assert policy["version"] == "2026.11.1", policy["version"]
policy["version"] = "2026.10.1"
json.dump({"tdisp_policy": policy}, open(sys.argv[2], "w"))
PY
cp "$TDISP_SIM_RUN_DIR/state/roll-2/ledger.json" "$WORK/ledger-roll-2.before"
s2=$(last_seq)
rc=0
rollout -e @"$WORK/older-policy.json" -e tdisp_rollout_hosts=roll-2 -e '{"tdisp_rollout_waves": ["100%"]}' \
    >"$WORK/older.out" 2>&1 || rc=$?
cat "$WORK/older.out"
[ "$rc" -ne 0 ] || fail "the older policy was applied"
grep -q "roll-2 runs policy 2026.11.1, newer than 2026.10.1" "$WORK/older.out" || fail "no refusal naming the newer policy"
w=$(events_since "$s2" | grep ' write ' || true)
[ -z "$w" ] || fail "the refused older policy wrote: $w"
cmp -s "$TDISP_SIM_RUN_DIR/state/roll-2/ledger.json" "$WORK/ledger-roll-2.before" || fail "roll-2's ledger changed"
python3 - "$WORK/reports/rollout-2026.10.1.json" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
h, = rep["hosts"]
assert h["host"] == "roll-2" and h["failed"] is True and h["converged"] is False, h
assert "newer than 2026.10.1" in h["failure"], h["failure"]
PY
echo "rollout_halt: all checks passed"
