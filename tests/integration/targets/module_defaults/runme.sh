#!/usr/bin/env bash
# module_defaults for group/coco.tdisp.tdisp (meta/runtime.yml action_groups): the paths of a
# simulated host set once for the group reach every module of it (scenario single-cvm, host cvm-1).
# Run by the integration harness with INVENTORY, TDISP_SIM, TDISP_SIM_MOUNT, TDISP_SIM_RUN_DIR
# and ANSIBLE_CONFIG set, the simulator already started with that scenario.
set -euo pipefail
cd "$(dirname "$0")"
: "${INVENTORY:?}" "${TDISP_SIM:?}" "${TDISP_SIM_MOUNT:?}" "${TDISP_SIM_RUN_DIR:?}" "${ANSIBLE_CONFIG:?}"
HOST=cvm-1

. ../../lib/fleet.sh

echo "== converge with module_defaults only"
w0=$(sim_writes "$HOST")
ansible-playbook -i "$INVENTORY" --limit "$HOST" converge.yml
[ "$(sim_writes "$HOST")" -gt "$w0" ] || fail "nothing was written to the simulated host"

echo "== the simulator's own state agrees"
sim_list | python3 -c '
import json, sys
host = next(h for h in json.load(sys.stdin)["hosts"] if h["name"] == "cvm-1")
dev = {d["bdf"]: d for d in host["devices"]}
nic, gpu = dev["0000:0c:00.0"], dev["0000:18:00.0"]
assert nic["tdisp_state"] == "locked" and nic["lock_holder"] == "tsm0" and nic["driver"] is None, nic
assert gpu["trust"] == 2, gpu
'

echo "== the ledger is under the state_dir given as a default"
python3 -c '
import json, sys
ledger = json.load(open(sys.argv[1]))
assert ledger["devices"]["0000:0c:00.0"]["unbound_driver"] == "mlx5_core", ledger
' "$TDISP_SIM_RUN_DIR/state/$HOST/ledger.json"
echo "module_defaults: all steps passed"
