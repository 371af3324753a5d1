#!/usr/bin/env bash
# draft_manifest.yml against a fresh fleet (scenario: see ./scenario): an output path that cannot
# be written fails before the golden device is touched (no event in the simulator's log); with a
# writable path the draft is written, names the manifest and the device's measurements, and the
# golden device ends in the TDISP state and trust level it was found at; without a path the
# draft goes under ./tdisp-reports in the directory ansible-playbook runs in.
set -euo pipefail
cd "$(dirname "$0")"
. ../../lib/fleet.sh
fleet_target draft_manifest
GOLDEN=(-e tdisp_golden_host=roll-1 -e tdisp_golden_bdf=0000:18:00.0 -e tdisp_manifest_name=golden-h100)
draft() { ansible-playbook -i "$INV" "$REPO/playbooks/draft_manifest.yml" "${GOLDEN[@]}" "$@"; }
golden_state() { sim_list | python3 -c '
import json, sys
for h in json.load(sys.stdin)["hosts"]:
    for d in h["devices"]:
        if h["name"] == "roll-1" and d["bdf"] == "0000:18:00.0":
            print(d["tdisp_state"], d["trust"], d["driver"], d["accepted"])'; }

before=$(golden_state)
echo "== an output path that cannot be written fails before the device is touched"
touch "$WORK/blocker"
s0=$(last_seq)
rc=0
draft -e tdisp_manifest_dest="$WORK/blocker/sub/golden.yml" >"$WORK/blocked.out" 2>&1 || rc=$?
cat "$WORK/blocked.out"
[ "$rc" -ne 0 ] || fail "the draft ran with an unwritable output path"
grep -q "cannot create a file next to" "$WORK/blocked.out" || fail "the refusal does not say why the path cannot be written"
ev=$("$TDISP_SIM" log --mount "$TDISP_SIM_MOUNT" --json --since "$s0")
[ -z "$ev" ] || fail "the golden device was touched before the output path was checked: $ev"

echo "== a draft into a named directory, the device returned to its state"
draft -e tdisp_report_dir="$WORK/reports"
python3 - "$WORK/reports/drafts/golden-h100.yml" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
m = doc["reference_manifests"]["golden-h100"]
assert m["measurements"] and all(e["digests"] for e in m["measurements"]), m
print("draft ok: %d measurement entries" % len(m["measurements"]))
PY
same "$(golden_state)" "$before" "the golden device's state after the draft"

echo "== without a directory the draft goes under ./tdisp-reports where ansible-playbook runs"
mkdir -p "$WORK/project"
(cd "$WORK/project" && draft)
[ -s "$WORK/project/tdisp-reports/drafts/golden-h100.yml" ] || fail "no draft under ./tdisp-reports"
same "$(golden_state)" "$before" "the golden device's state after the second draft"

echo "== the draft, put in a user's inventory, passes yamllint and ansible-lint (yaml[indentation] and the rest)"
mkdir -p "$WORK/project/inventory/group_vars/all"
cp "$WORK/project/tdisp-reports/drafts/golden-h100.yml" "$WORK/project/inventory/group_vars/all/golden-h100.yml"
# yamllint's default rules, with ansible-lint's line length (digests are one word each)
(cd "$WORK/project" && yamllint -s -d '{extends: default, rules: {line-length: {max: 160}}}' inventory) \
    || fail "the draft does not pass yamllint"
(cd "$WORK/project" && ansible-lint --offline --nocolor --profile production inventory/group_vars/all/golden-h100.yml) \
    || fail "the draft does not pass ansible-lint"
echo "draft_manifest: all checks passed"
