#!/usr/bin/env bash
# Fault matrix, findings 6 to 9 on one host (scenario: ./scenario.yml):
#   9  controller input: a typo in require.interface, a match nested 3000 deep and a bad rule key
#      are refused before any host is read, one line each naming the rule, never "maximum
#      recursion depth exceeded", never inside a filter-error wrapper; nothing is written;
#   8  tdisp_device state: run without generation, generation 2**70 and level "normal\n" are
#      refused before any write;
#   7  a plain copy of the host's tree as sysfs_root is refused (modules and rollout), its
#      "unbind" file is never written; rehearsal: true reads it and says so;
#   6  permanent EINTR on virtio's trust: bounded retries, a one-line error, the GPU still reaches
#      tcb; once the fault is cleared a re-run converges.
set -euo pipefail
cd "$(dirname "$0")"
. ../../lib/fleet.sh
. ../../lib/fault_matrix.sh
fm_target fault_matrix_target
GPU=0000:18:00.0; VIRTIO=0000:00:03.0
rollout() { ansible-playbook -i "$INV" "$REPO/playbooks/rollout.yml" -e '{"tdisp_rollout_waves": ["100%"]}' "$@"; }
writes_since() { "$TDISP_SIM" log --mount "$TDISP_SIM_MOUNT" --json --since "$1" | grep -c '"event":"write"' || true; }
module() {  # module NAME ARGS-JSON: run one collection module on t-1 against the simulator; output in $WORK/module.out
    ansible -i "$INV" t-1 -m "coco.tdisp.$1" -a "$2" >"$WORK/module.out" 2>&1
}

echo "== 9: policy input refused before any host is read, one line per problem"
python3 - "$WORK" <<'PY'
import json, os, sys
base = {"version": "2026.11.1", "default": "reject", "rules": [
    {"id": "h100-tcb", "vendor": "0x10de", "device": "0x2330", "require": {"manifest": "h100-96.00", "interface": {"no_fw_update": True}},
     "trust": "tcb"},
    {"id": "virtio-shared", "vendor": "0x1af4", "trust": "normal"}]}
def variant(name, change):
    pol = json.loads(json.dumps(base))
    change(pol)
    json.dump({"tdisp_policy": pol}, open(os.path.join(sys.argv[1], name + ".json"), "w"))
variant("typo", lambda p: p["rules"][0]["require"]["interface"].update(no_fw_updat=True))
variant("deep", lambda p: p["rules"][1].update(vendor=None, match="(" * 3000 + "vendor == '0x1af4'" + ")" * 3000) or p["rules"][1].pop("vendor"))
variant("key", lambda p: p["rules"][1].update(trsut="normal"))
PY
s0=$(last_seq)
for case in typo:"rules[0] (id h100-tcb).require.interface: unknown key 'no_fw_updat'; did you mean no_fw_update" \
            deep:"rules[1] (id virtio-shared).match: is 6018 characters long" \
            key:"rules[1] (id virtio-shared): unknown key 'trsut'"; do
    name=${case%%:*}; want=${case#*:}
    rc=0; rollout -e "@$WORK/$name.json" -e tdisp_report_dir="$WORK/p-$name" >"$WORK/p-$name.out" 2>&1 || rc=$?
    $FM count faults_tried
    [ "$rc" -ne 0 ] || fail "policy $name was accepted"
    grep -qF "$want" "$WORK/p-$name.out" || { cat "$WORK/p-$name.out"; fail "policy $name: no line '$want'"; }
    if grep -qiE "recursion|Traceback|filter|template error|policy_validate" "$WORK/p-$name.out"; then
        cat "$WORK/p-$name.out"; fail "policy $name: the error is wrapped or not one line"
    fi
    grep -q "Roll the policy out in waves" "$WORK/p-$name.out" && fail "policy $name: a host was reached"
done
[ "$(writes_since "$s0")" = 0 ] || fail "a refused policy wrote"
$FM count silent_oks 0

echo "== 8: module input checked before any write"
s1=$(last_seq)
common='"sysfs_root": "{{ tdisp_sysfs_root }}", "state_dir": "{{ tdisp_state_dir }}", "evidence_endpoint": "{{ tdisp_evidence_endpoint }}"'
for bad in '{"bdf": "'$GPU'", "state": "run"}' '{"bdf": "'$GPU'", "state": "run", "generation": 1180591620717411303424}'; do
    rc=0; module tdisp_device '{"devices": ['"$bad"'], "unbind_driver": true, '"$common"'}' || rc=$?
    $FM count faults_tried
    [ "$rc" -ne 0 ] || { cat "$WORK/module.out"; fail "tdisp_device took $bad"; }
done
rc=0; module device_trust '{"devices": [{"bdf": "'$VIRTIO'", "level": "normal\n"}], "sysfs_root": "{{ tdisp_sysfs_root }}", "state_dir": "{{ tdisp_state_dir }}"}' || rc=$?
$FM count faults_tried
[ "$rc" -ne 0 ] || { cat "$WORK/module.out"; fail "device_trust took level 'normal\\n'"; }
[ "$(writes_since "$s1")" = 0 ] || fail "refused module input wrote"

echo "== 7: a plain directory as sysfs_root is refused; rehearsal: true reads it and says so"
plain=$WORK/plain-sys
rm -rf "$plain"; cp -r "$TDISP_SIM_MOUNT/t-1/sys" "$plain" 2>/dev/null || true
unbind=$plain/bus/pci/drivers/nvidia/unbind
# write-only attributes (unbind, bind) do not copy: a plain tree has them as empty files
[ -f "$unbind" ] || { mkdir -p "$(dirname "$unbind")"; : >"$unbind"; }
before=$(md5sum <"$unbind")
rc=0; module tdisp_device_info '{"all_devices": true, "sysfs_root": "'"$plain"'"}' || rc=$?
$FM count faults_tried
if [ "$rc" -eq 0 ] || ! grep -q "sysfs_root $plain is on a .* filesystem, not sysfs" "$WORK/module.out"; then
    cat "$WORK/module.out"; fail "tdisp_device_info believed a plain tree"
fi
module tdisp_device_info '{"all_devices": true, "rehearsal": true, "sysfs_root": "'"$plain"'"}' || { cat "$WORK/module.out"; fail "rehearsal read failed"; }
grep -Eq '"?rehearsal"?: true' "$WORK/module.out" || { cat "$WORK/module.out"; fail "a rehearsal read does not say so"; }
rc=0; rollout -e tdisp_sysfs_root="$plain" -e tdisp_report_dir="$WORK/plain" >"$WORK/plain.out" 2>&1 || rc=$?
if [ "$rc" -eq 0 ] || ! grep -q "not sysfs" "$WORK/plain.out"; then
    cat "$WORK/plain.out"; fail "a rollout into a plain tree was not refused"
fi
[ "$(md5sum <"$unbind")" = "$before" ] || fail "the rollout wrote into the plain tree's unbind file"
$FM silent "$WORK/plain/rollout-2026.11.1.json" || { $FM count silent_oks; fail "a silent ok"; }

echo "== 6: permanent EINTR on virtio's trust: bounded, one line, the GPU still reaches tcb"
"$TDISP_SIM" fault --mount "$TDISP_SIM_MOUNT" t-1 $VIRTIO write-errno trust EINTR all
$FM count faults_tried
s2=$(last_seq)
t0=$(date +%s)
rc=0; rollout -e tdisp_report_dir="$WORK/eintr" >"$WORK/eintr.out" 2>&1 || rc=$?
t1=$(date +%s)
[ "$rc" -ne 0 ] || fail "the rollout passed with virtio's trust failing"
[ $((t1 - t0)) -lt 120 ] || fail "the bounded retries took $((t1 - t0)) s"
n=$("$TDISP_SIM" log --mount "$TDISP_SIM_MOUNT" --json --since "$s2" | grep '"event":"write"' | grep -c "$VIRTIO/trust" || true)
if [ "$n" -lt 1 ] || [ "$n" -gt 10 ]; then fail "$n writes to virtio's trust (bounded retries expected)"; fi
grep -q "EINTR" "$WORK/eintr.out" || { cat "$WORK/eintr.out"; fail "the error does not name EINTR"; }
$FM invariant || { $FM count wrong_acceptances; fail "a wrong acceptance"; }
$FM silent "$WORK/eintr/rollout-2026.11.1.json" || { $FM count silent_oks; fail "a silent ok"; }
"$TDISP_SIM" list --mount "$TDISP_SIM_MOUNT" --json | python3 -c '
import json, sys
devs = {d["bdf"]: d for d in json.load(sys.stdin)["hosts"][0]["devices"]}
gpu = devs["0000:18:00.0"]
assert (gpu["tdisp_state"], gpu["trust"]) == ("run", 3), gpu   # one device failing does not hold the other back
print("GPU in RUN at tcb although virtio failed")'
sleep 1
"$TDISP_SIM" fault --mount "$TDISP_SIM_MOUNT" t-1 $VIRTIO write-errno trust clear
rollout -e tdisp_report_dir="$WORK/rerun" >"$WORK/rerun.out" 2>&1 || { cat "$WORK/rerun.out"; fail "the re-run failed"; }
$FM converged || fail "the re-run did not converge"
$FM count reruns_converged
cat "$WORK/counts.json"; echo
echo "fault_matrix_target: all checks passed"
