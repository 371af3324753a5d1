#!/usr/bin/env bash
# rollout.yml --check against a fresh simulated fleet (scenario: see ./scenario): exit 0, the
# report is the plan (lock_and_verify / set_trust, tcb_if_verified), nothing reaches the kernel
# (no write event, no state change in the simulator's log) and no host ledger is created.
set -euo pipefail
cd "$(dirname "$0")"
. ../../lib/fleet.sh
fleet_target rollout_check

sim_list >"$WORK/list-before.json"

echo "== rollout.yml --check (canary, then waves)"
ansible-playbook -i "$INV" "$REPO/playbooks/rollout.yml" --check \
    -e tdisp_report_dir="$WORK/reports" -e '{"tdisp_rollout_waves": [1, 2, "100%"]}' | tee "$WORK/check.out"

echo "== the report is the plan"
python3 - "$WORK/reports" <<'PY'
import json, os, sys
rdir = sys.argv[1]
files = sorted(os.listdir(rdir))
# the plan in the four default formats (tdisp_report_formats), and nothing else
assert files == ["rollout-2026.11.1-check" + s for s in (".html", ".json", ".junit.xml", ".md")], "report files: %s" % files
rep = json.load(open(os.path.join(rdir, "rollout-2026.11.1-check.json")))
assert rep["kind"] == "rollout" and rep["check_mode"] is True, rep
assert rep["policy_version"] == "2026.11.1", rep["policy_version"]
assert rep["not_reached"] == [], rep["not_reached"]
hosts = {h["host"]: h for h in rep["hosts"]}
assert sorted(hosts) == ["roll-1", "roll-2", "roll-3", "roll-4"], sorted(hosts)
want = {  # bdf -> (rule, action, trust, tdisp_state)
    "0000:18:00.0": ("h100-tcb", "lock_and_verify", "tcb_if_verified", "run"),
    "0000:2a:00.0": ("h100-tcb", "lock_and_verify", "tcb_if_verified", "run"),
    "0000:0c:00.0": ("cx7-tcb", "lock_and_verify", "tcb_if_verified", "run"),
    "0000:5e:00.0": ("nvme-tcb", "lock_and_verify", "tcb_if_verified", "run"),
    "0000:00:03.0": ("virtio-shared", "set_trust", "normal", "unlocked"),
    "0000:00:04.0": ("virtio-shared", "set_trust", "normal", "unlocked"),
}
for name, h in sorted(hosts.items()):
    assert h["check_mode"] is True and h["failed"] is False and h["failure"] is None, (name, h["failure"])
    assert h["policy_version"] == "2026.11.1", (name, h["policy_version"])
    assert h["contraindicated"] == 0 and h["refused"] == [] and h["preflight"] == [] and h["expected"] == [], name
    got = {d["bdf"]: (d["rule"], d["action"], d["trust"], d["tdisp_state"]) for d in h["devices"]}
    assert got == want, "%s plan: %s" % (name, got)
    for d in h["devices"]:
        assert d["before"] == {"tdisp_state": "unlocked", "trust_level": "adversary"}, (name, d["bdf"], d["before"])
        assert d["verdict"] is None, (name, d["bdf"], d["verdict"])  # nothing locked, so no evidence yet
    acts = h["counts"]["actions"]
    assert (acts["lock_and_verify"], acts["set_trust"], acts["accept"], acts["unlock"]) == (4, 2, 0, 0), (name, acts)
    assert h["counts"]["outcomes"] == {"tcb_if_verified": 4, "normal": 2}, (name, h["counts"]["outcomes"])
print("plan ok: 4 hosts, 4 devices to lock and verify, 2 to re-trust each")
PY

echo "== every host planned without failure (PLAY RECAP)"
python3 - "$WORK/check.out" <<'PY'
import re, sys
recap = {m[0]: (m[1], m[2]) for m in re.findall(r"^(roll-\d+)\s+:\s+ok=\d+\s+changed=\d+\s+unreachable=(\d+)\s+failed=(\d+)",
                                                  open(sys.argv[1]).read(), re.M)}
assert sorted(recap) == ["roll-1", "roll-2", "roll-3", "roll-4"], recap
bad = {h: v for h, v in recap.items() if v != ("0", "0")}
assert not bad, "unreachable/failed in the recap: %s" % bad
PY

echo "== the simulator saw no write and no state change"
"$TDISP_SIM" log --mount "$TDISP_SIM_MOUNT" --json >"$WORK/events.jsonl"
python3 - "$WORK/events.jsonl" <<'PY'
import json, sys
events = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
assert events and events[0]["event"] == "scenario_start", events[:1]
# life cycle and evidence reads are all a read-only run may leave in the log
allowed = {"scenario_start", "daemon_start", "mounted", "evidence_read"}
other = [e for e in events if e["event"] not in allowed]
assert not other, "check mode left events in the simulator: %s" % other[:5]
PY
sim_list >"$WORK/list-after.json"
cmp -s "$WORK/list-before.json" "$WORK/list-after.json" || fail "the fleet's devices changed in check mode"

echo "== no host ledger was created"
for d in "$TDISP_SIM_RUN_DIR"/state/roll-*; do
    [ -d "$d" ] || fail "no state dir $d"
    [ -z "$(ls -A "$d")" ] || fail "check mode wrote into the ledger dir $d: $(ls -A "$d")"
done
[ "$(find "$TDISP_SIM_RUN_DIR"/state -mindepth 1 -maxdepth 1 -name 'roll-*' | wc -l)" -eq 4 ] || fail "expected 4 host state dirs"
echo "rollout_check: all checks passed"
