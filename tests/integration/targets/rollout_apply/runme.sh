#!/usr/bin/env bash
# rollout.yml for real against a fresh simulated fleet (scenario: see ./scenario): it converges
# (every TDISP device in RUN at trust tcb, virtio at normal, the report says converged), a
# second run changes nothing (changed=0 for every host, no write in the simulator's log), and
# after a device fell out of RUN the rollout refuses to re-accept it silently, and with the
# disruptive opt-in re-accepts it and --diff shows before and after. A normal run prints no
# deprecation warning.
set -euo pipefail
cd "$(dirname "$0")"
. ../../lib/fleet.sh
fleet_target rollout_apply
HOSTS="roll-1 roll-2 roll-3 roll-4"

# The write events since SEQ, one "host path=value result" line each.
writes_since() {
    "$TDISP_SIM" log --mount "$TDISP_SIM_MOUNT" --json --since "$1" | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line) if line.strip() else {}
    if e.get("event") == "write":
        print(e.get("host"), "%s=%s" % (e.get("path"), e.get("value")), e.get("result"))'
}
# PLAY RECAP of a saved run: "host changed failed" per host.
recap() {
    python3 - "$1" <<'PY'
import re, sys
for m in re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", open(sys.argv[1]).read(), re.M):
    print(*m)
PY
}
rollout() { ansible-playbook -i "$INV" "$REPO/playbooks/rollout.yml" -e tdisp_report_dir="$WORK/reports" "$@"; }

# The fleet as the simulator sees it: every expected TDISP device in RUN at trust 3, accepted,
# locked by tsm0, its driver bound again; virtio-net and virtio-blk unlocked at trust 2.
check_converged() {
    "$TDISP_SIM" list --mount "$TDISP_SIM_MOUNT" --json | python3 -c '
import json, sys
fleet = json.load(sys.stdin)
tee = {"0000:18:00.0": "nvidia", "0000:2a:00.0": "nvidia", "0000:0c:00.0": "mlx5_core", "0000:5e:00.0": "nvme"}
virtio = {"0000:00:03.0", "0000:00:04.0"}
names = sorted(h["name"] for h in fleet["hosts"])
assert names == ["roll-1", "roll-2", "roll-3", "roll-4"], names
for h in fleet["hosts"]:
    devs = {d["bdf"]: d for d in h["devices"]}
    assert set(devs) == set(tee) | virtio, (h["name"], sorted(devs))
    for bdf, drv in tee.items():
        d = devs[bdf]
        got = (d["tdisp_state"], d["accepted"], d["lock_holder"], d["trust"], d["driver"])
        assert got == ("run", True, "tsm0", 3, drv), "%s %s: %s" % (h["name"], bdf, got)
    for bdf in virtio:
        d = devs[bdf]
        got = (d["tdisp_state"], d["trust"], d["driver"])
        assert got == ("unlocked", 2, "virtio-pci"), "%s %s: %s" % (h["name"], bdf, got)
print("converged: 4 hosts, 4 devices in RUN at tcb and 2 virtio at normal each")'
}

echo "== first run converges the fleet, canary first"
s0=$(last_seq)
rollout -e '{"tdisp_rollout_waves": [1, 2, "100%"]}' 2>&1 | tee "$WORK/run1.out"
# a normal run prints no deprecation (INJECT_FACTS_AS_VARS: the summaries are read from ansible_facts)
if grep -i "deprecat" "$WORK/run1.out"; then fail "the rollout printed a deprecation warning (above)"; fi
check_converged
python3 - "$WORK/reports/rollout-2026.11.1.json" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
assert rep["check_mode"] is False and rep["not_reached"] == [], (rep["check_mode"], rep["not_reached"])
hosts = {h["host"]: h for h in rep["hosts"]}
assert sorted(hosts) == ["roll-1", "roll-2", "roll-3", "roll-4"], sorted(hosts)
for name, h in sorted(hosts.items()):
    assert h["converged"] is True and h["failed"] is False and h["changed"] is True, (name, h["converged"], h["failure"])
    assert h["counts"]["pending"] == 0 and h["contraindicated"] == 0 and h["refused"] == [], (name, h["counts"])
    assert h["counts"]["verdicts"] == {"affirming": 4}, (name, h["counts"]["verdicts"])
    trust = {d["bdf"]: (d["rule"], d["trust"], d["tdisp_state"]) for d in h["devices"]}
    assert trust == {"0000:18:00.0": ("h100-tcb", "tcb", "run"), "0000:2a:00.0": ("h100-tcb", "tcb", "run"),
                     "0000:0c:00.0": ("cx7-tcb", "tcb", "run"), "0000:5e:00.0": ("nvme-tcb", "tcb", "run"),
                     "0000:00:03.0": ("virtio-shared", "normal", "unlocked"),
                     "0000:00:04.0": ("virtio-shared", "normal", "unlocked")}, (name, trust)
    for d in h["devices"]:
        if d["trust"] == "tcb":
            assert d["verdict"]["status"] == "affirming" and d["verdict"]["reasons"] == [], (name, d["bdf"], d["verdict"])
print("report: every host converged")
PY
writes_since "$s0" >"$WORK/run1.writes"
for h in $HOSTS; do
    grep -q "^$h " "$WORK/run1.writes" || fail "$h saw no write in the first run"
    [ -s "$TDISP_SIM_RUN_DIR/state/$h/ledger.json" ] || fail "$h has no ledger after the first run"
done

echo "== a second run changes nothing"
s1=$(last_seq)
rollout -e '{"tdisp_rollout_waves": [1, 2, "100%"]}' | tee "$WORK/run2.out"
recap "$WORK/run2.out" >"$WORK/run2.recap"
cat "$WORK/run2.recap"
[ "$(grep -c '^roll-' "$WORK/run2.recap")" -eq 4 ] || fail "the recap does not list the 4 hosts"
if grep -v '^roll-[0-9] 0 0$' "$WORK/run2.recap"; then fail "the second run changed or failed a host (above)"; fi
w=$(writes_since "$s1")
[ -z "$w" ] || fail "the second run wrote: $w"
python3 - "$WORK/reports/rollout-2026.11.1.json" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
bad = [(h["host"], h["changed"], h["converged"]) for h in rep["hosts"] if h["changed"] or not h["converged"]]
assert len(rep["hosts"]) == 4 and not bad, bad
PY
check_converged

echo "== a GPU falls out of RUN: not re-accepted without the disruptive opt-in"
"$TDISP_SIM" fault --mount "$TDISP_SIM_MOUNT" roll-2 0000:18:00.0 error
s2=$(last_seq)
rc=0
rollout -e tdisp_rollout_hosts=roll-2 -e '{"tdisp_rollout_waves": ["100%"]}' >"$WORK/refused.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || { cat "$WORK/refused.out"; fail "the rollout passed with a device that left RUN"; }
grep -q "0000:18:00.0 reads accepted, but its evidence changed since it was accepted" "$WORK/refused.out" \
    || { cat "$WORK/refused.out"; fail "no refusal naming the device that left RUN"; }
w=$(writes_since "$s2")
[ -z "$w" ] || fail "the refused run wrote: $w"

echo "== with allow_disruptive the device is re-accepted through lock, verify, accept; --diff shows it"
rollout --diff -e tdisp_rollout_hosts=roll-2 -e tdisp_acceptance_allow_disruptive=true \
    -e '{"tdisp_rollout_waves": ["100%"]}' | tee "$WORK/diff.out"
python3 - "$WORK/diff.out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
assert text.count("--- before") >= 3 and text.count("+++ after") >= 3, "fewer than 3 diffs (lock, accept, trust)"
minus = [l.split(":", 1)[1].strip() for l in text.splitlines() if re.match(r"^-\s+tdisp_state:", l)]
plus = [l.split(":", 1)[1].strip() for l in text.splitlines() if re.match(r"^\+\s+tdisp_state:", l)]
assert ("run", "locked") in list(zip(minus, plus)) and ("locked", "run") in list(zip(minus, plus)), (minus, plus)
levels = list(zip([l.split(":", 1)[1].strip() for l in text.splitlines() if re.match(r"^-\s+trust_level:", l)],
                  [l.split(":", 1)[1].strip() for l in text.splitlines() if re.match(r"^\+\s+trust_level:", l)]))
assert levels == [("blocked", "tcb")], levels
assert "bdf: '0000:18:00.0'" in text, "the diff does not name the device"
PY
recap "$WORK/diff.out" >"$WORK/diff.recap"
grep -Eqx 'roll-2 [1-9][0-9]* 0' "$WORK/diff.recap" || fail "the re-accepting run reported no change (or a failure) on roll-2"
writes_since "$s2" >"$WORK/reaccept.writes"
grep -q '0000:18:00.0' "$WORK/reaccept.writes" || fail "the re-accept wrote nothing for 0000:18:00.0"
if grep -v '0000:18:00.0' "$WORK/reaccept.writes"; then fail "the re-accept wrote to other devices (above)"; fi
check_converged
echo "rollout_apply: all checks passed"
