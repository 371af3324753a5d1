#!/usr/bin/env bash
# Bad input fails on the controller before any host is touched (scenario: see ./scenario):
# the acceptance role's argument spec rejects wrong types (acceptance_force: [1],
# acceptance_critical_devices: 5), and an invalid policy (an unknown key; a tcb rule without
# require) fails in rollout.yml and in the role alone (acceptance.yml). After each refusal the
# simulator's log has no new event at all (no write, not even an evidence read) and no host
# ledger exists.
set -euo pipefail
cd "$(dirname "$0")"
. ../../lib/fleet.sh
fleet_target role_argspec

# refused NAME MESSAGE... -- PLAYBOOK ARGS...: the run must fail, print every MESSAGE, read no
# host and leave no trace on any host.
refused() {
    local name=$1; shift
    local want=()
    while [ "$1" != "--" ]; do want+=("$1"); shift; done
    shift
    echo "== $name"
    local s rc=0
    s=$(last_seq)
    ansible-playbook -i "$INV" "$@" >"$WORK/$name.out" 2>&1 || rc=$?
    cat "$WORK/$name.out"
    [ "$rc" -ne 0 ] || fail "$name: the run succeeded"
    for m in "${want[@]}"; do
        grep -qF -- "$m" "$WORK/$name.out" || fail "$name: the output does not say: $m"
    done
    # the run must stop before the first task that reads a host (its devices are unlocked, so a
    # read would leave no event in the simulator's log: look at the tasks that ran instead)
    if grep -F "Read the host's devices" "$WORK/$name.out"; then fail "$name: a host's devices were read"; fi
    local ev
    ev=$("$TDISP_SIM" log --mount "$TDISP_SIM_MOUNT" --json --since "$s")
    [ -z "$ev" ] || fail "$name: a host was touched: $ev"
    for d in "$TDISP_SIM_RUN_DIR"/state/*; do
        [ -z "$(ls -A "$d")" ] || fail "$name: a ledger was written in $d"
    done
}
# A copy of the fleet's policy with one change, as an extra-vars file.
policy_with() {
    python3 - "$REPO/inventories/group_vars/all/policy.yml" "$WORK/$1.json" "$2" <<'PY'
import json, sys, yaml
policy = yaml.safe_load(open(sys.argv[1]))["tdisp_policy"]
rules = {r["id"]: r for r in policy["rules"]}
if sys.argv[3] == "unknown-key":
    rules["h100-tcb"]["priority"] = 1          # not a rule key
elif sys.argv[3] == "tcb-without-require":
    del rules["cx7-tcb"]["require"]            # trust tcb with no evidence named
else:
    sys.exit("policy_with: unknown change %s" % sys.argv[3])
json.dump({"tdisp_policy": policy}, open(sys.argv[2], "w"))
PY
}
ROLE_PLAY=$PWD/acceptance.yml
ROLLOUT=$REPO/playbooks/rollout.yml

refused argspec-force "Validation of arguments failed" "argument 'acceptance_force' is of type list" \
    -- "$ROLE_PLAY" -e '{"acceptance_force": [1]}'

policy_with unknown-key unknown-key
refused policy-unknown-key "tdisp_policy.rules[0] (id h100-tcb): unknown key 'priority'" \
    -- "$ROLLOUT" -e @"$WORK/unknown-key.json"
refused role-policy-unknown-key "tdisp_policy.rules[0] (id h100-tcb): unknown key 'priority'" \
    -- "$ROLE_PLAY" -e @"$WORK/unknown-key.json"

policy_with tcb-without-require tcb-without-require
refused policy-tcb-without-require "tdisp_policy.rules[2] (id cx7-tcb).require.manifest: is required for trust tcb" \
    -- "$ROLLOUT" -e @"$WORK/tcb-without-require.json"
refused role-policy-tcb-without-require "tdisp_policy.rules[2] (id cx7-tcb).require.manifest: is required for trust tcb" \
    -- "$ROLE_PLAY" -e @"$WORK/tcb-without-require.json"

# A scalar where a list of device names belongs: the role's argument spec turns 5 into ["5"] for
# its own check but hands the role the int, so the role checks the type itself, on the
# controller, before any host is read.
refused argspec-critical-devices "must be a list of PCI device names" "acceptance_critical_devices" \
    -- "$ROLE_PLAY" -e '{"acceptance_critical_devices": 5}'
refused argspec-critical-devices-string "must be a list of PCI device names" "acceptance_critical_devices" \
    -- "$ROLE_PLAY" -e '{"acceptance_critical_devices": "0000:18:00.0"}'
echo "role_argspec: all checks passed"
