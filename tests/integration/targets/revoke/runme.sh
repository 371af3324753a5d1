#!/usr/bin/env bash
# revoke.yml against a rolled-out fleet (scenario: see ./scenario): without the confirmation it
# fails before any host is touched; with it, every ConnectX NIC (vendor 0x15b3) ends unlocked at
# trust blocked on every host and nothing else changes; a leaked-firmware-digest expression
# selects only the devices whose measurement matches (the GPUs, not the NIC or the NVMe drive).
set -euo pipefail
cd "$(dirname "$0")"
. ../../lib/fleet.sh
fleet_target revoke

# Write events since SEQ: "host path=value result".
writes_since() {
    "$TDISP_SIM" log --mount "$TDISP_SIM_MOUNT" --json --since "$1" | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line) if line.strip() else {}
    if e.get("event") == "write":
        print(e["host"], "%s=%s" % (e.get("path"), e.get("value")), e.get("result"))'
}
revoke() { ansible-playbook -i "$INV" "$REPO/playbooks/revoke.yml" "$@"; }
# Compare two fleet listings: the devices named in $3 (comma-separated BDFs) must be unlocked,
# not accepted, at trust $4 on every host; every other device must be exactly as before.
check_revoked() {
    python3 - "$1" "$2" "$3" "$4" <<'PY'
import json, sys
before, after = (json.load(open(p)) for p in sys.argv[1:3])
targets, level = set(sys.argv[3].split(",")), int(sys.argv[4])
old = {(h["name"], d["bdf"]): d for h in before["hosts"] for d in h["devices"]}
new = {(h["name"], d["bdf"]): d for h in after["hosts"] for d in h["devices"]}
assert set(old) == set(new) and len(new) == 24, sorted(set(old) ^ set(new))
hit = 0
for key, d in sorted(new.items()):
    if key[1] in targets:
        hit += 1
        got = (d["tdisp_state"], d["accepted"], d["lock_holder"], d["trust"])
        assert got == ("unlocked", False, None, level), "%s %s: %s" % (key + (got,))
    else:
        keep = ("tdisp_state", "accepted", "lock_holder", "trust", "driver", "generation")
        assert [d[k] for k in keep] == [old[key][k] for k in keep], "%s %s changed: %s -> %s" % (
            key + ([old[key][k] for k in keep], [d[k] for k in keep]))
assert hit == 4 * len(targets), hit
PY
}
# The revoke report in $1, checked: every host reached, the given BDFs selected and unlocked on each.
check_report() {
    python3 - "$1" "$2" "$3" <<'PY'
import glob, json, os, sys
files = sorted(glob.glob(os.path.join(sys.argv[1], "revoke-*.json")))
assert len(files) == 1, files
rep = json.load(open(files[0]))
want = sorted(sys.argv[2].split(","))
assert (rep["kind"], rep["level"], rep["check_mode"], rep["not_reached"]) == ("revoke", sys.argv[3], False, []), rep
hosts = {h["host"]: h for h in rep["hosts"]}
assert sorted(hosts) == ["roll-1", "roll-2", "roll-3", "roll-4"], sorted(hosts)
for name, h in hosts.items():
    assert (sorted(h["devices"]), sorted(h["unlocked"])) == (want, want), (name, h)
    # "lowered": the trust writes the revoke made; unlocking already resets the integer trust file
    # to 0, so a revoke to blocked may have nothing left to write
    assert set(h["lowered"]) <= set(want), (name, h)
PY
}

echo "== roll the policy out (every TDISP device in RUN at tcb)"
ansible-playbook -i "$INV" "$REPO/playbooks/rollout.yml" -e tdisp_report_dir="$WORK/rollout" \
    -e '{"tdisp_rollout_waves": ["100%"]}'
sim_list >"$WORK/list0.json"

echo "== without tdisp_revoke_confirm=REVOKE nothing runs"
s0=$(last_seq)
rc=0
revoke -e "tdisp_revoke_match=\"vendor == '0x15b3'\"" -e tdisp_report_dir="$WORK/unconfirmed" >"$WORK/unconfirmed.out" 2>&1 || rc=$?
cat "$WORK/unconfirmed.out"
[ "$rc" -ne 0 ] || fail "revoke.yml ran without the confirmation"
grep -q "tdisp_revoke_confirm=REVOKE" "$WORK/unconfirmed.out" || fail "the refusal does not say how to confirm"
ev=$("$TDISP_SIM" log --mount "$TDISP_SIM_MOUNT" --json --since "$s0")
[ -z "$ev" ] || fail "the unconfirmed revoke reached the fleet: $ev"
[ ! -e "$WORK/unconfirmed" ] || fail "the unconfirmed revoke wrote a report"

echo "== revoke every ConnectX NIC (vendor 0x15b3) to blocked"
s1=$(last_seq)
revoke -e "tdisp_revoke_match=\"vendor == '0x15b3'\"" -e tdisp_revoke_level=blocked -e tdisp_revoke_confirm=REVOKE \
    -e tdisp_report_dir="$WORK/nic"
sim_list >"$WORK/list1.json"
check_revoked "$WORK/list0.json" "$WORK/list1.json" 0000:0c:00.0 0
check_report "$WORK/nic" 0000:0c:00.0 blocked
writes_since "$s1" >"$WORK/nic.writes"
for h in roll-1 roll-2 roll-3 roll-4; do grep -q "^$h .*0000:0c:00.0" "$WORK/nic.writes" || fail "no write for $h's NIC"; done
if grep -v '0000:0c:00.0' "$WORK/nic.writes"; then fail "the NIC revoke wrote to other devices (above)"; fi

echo "== revoke by a leaked firmware digest: the H100 mutable firmware (measurement index 2)"
python3 - "$REPO/inventories/group_vars/all/manifests.yml" "$WORK/leak.json" <<'PY'
import json, sys, yaml
manifest = yaml.safe_load(open(sys.argv[1]))["reference_manifests"]["h100-96.00"]
digest, = [m["digests"][0] for m in manifest["measurements"] if m["index"] == 2]
assert digest.startswith("sha384:"), digest
expr = "contains(evidence.measurements.blocks[?index == `2`].value || `[]`, '%s')" % digest.split(":", 1)[1]
json.dump({"tdisp_revoke_match": expr, "tdisp_revoke_level": "adversary", "tdisp_revoke_confirm": "REVOKE"},
          open(sys.argv[2], "w"))
PY
s2=$(last_seq)
revoke -e @"$WORK/leak.json" -e tdisp_report_dir="$WORK/leak"
sim_list >"$WORK/list2.json"
check_revoked "$WORK/list1.json" "$WORK/list2.json" 0000:18:00.0,0000:2a:00.0 1
check_report "$WORK/leak" 0000:18:00.0,0000:2a:00.0 adversary
if writes_since "$s2" | grep -Ev '0000:(18|2a):00.0'; then fail "the digest revoke wrote to other devices (above)"; fi
echo "revoke: all checks passed"
