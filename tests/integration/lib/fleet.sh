# Shared by the integration targets (sourced by their runme.sh, after `cd` into the target): the
# environment the harness provides, a work directory (playbook targets), and the simulator queries.
# shellcheck shell=bash

# fleet_target NAME: check the harness's environment; set REPO, INV and WORK.
fleet_target() {
    : "${TDISP_SIM:?}" "${TDISP_SIM_MOUNT:?}" "${TDISP_SIM_RUN_DIR:?}" "${ANSIBLE_CONFIG:?}"
    REPO=$(cd ../../../.. && pwd)
    # inventories/simulator.py, so that inventories/group_vars apply (policy, manifests, expected devices)
    INV=$REPO/inventories/simulator.py
    WORK=$(dirname "$TDISP_SIM_MOUNT")/$1
    mkdir -p "$WORK"
    export TDISP_SIM_MOUNT TDISP_SIM_RUN_DIR REPO INV WORK
}

fail() { echo "FAIL: $*" >&2; exit 1; }

# The simulator's state of every host and device, as JSON.
sim_list() { "$TDISP_SIM" list --mount "$TDISP_SIM_MOUNT" --json; }

# The sequence number of the simulator's last logged event (0 when none).
last_seq() {
    "$TDISP_SIM" log --mount "$TDISP_SIM_MOUNT" --json | python3 -c '
import json, sys
print(max([json.loads(line)["seq"] for line in sys.stdin if line.strip()] or [0]))'
}

# sim_writes HOST: how many writes (failed ones included) the simulator has logged on HOST.
sim_writes() {
    "$TDISP_SIM" log --mount "$TDISP_SIM_MOUNT" --json --host "$1" | python3 -c '
import json, sys
print(sum(1 for line in sys.stdin if line.strip() and json.loads(line).get("event") == "write"))'
}

# same ACTUAL EXPECTED WHAT: fail naming WHAT unless ACTUAL equals EXPECTED.
same() { [ "$1" = "$2" ] || fail "$3 ($1 != $2)"; }
