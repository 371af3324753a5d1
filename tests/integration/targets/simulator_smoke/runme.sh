#!/usr/bin/env bash
# Smoke test of the integration runner: every simulated host answers through Ansible, and its
# sysfs root is the simulator's (the devsec TSM of devsec-sample reads "devsec").
set -euo pipefail

out=$(ansible -i "$INVENTORY" all -m ansible.builtin.command -a 'cat {{ tdisp_sysfs_root }}/class/tsm/tsm1/pci_mode')
echo "$out"
grep -q 'sample-cvm | CHANGED | rc=0' <<<"$out"
grep -qx 'devsec' <<<"$out"

# The same host through the dynamic inventory script, against this target's mount.
inv=$(mktemp)
trap 'rm -f "$inv"' EXIT
ansible-inventory -i ../../../../inventories/simulator.py --list >"$inv"
python3 - "$inv" "$TDISP_SIM_MOUNT" <<'PY'
import json, sys
inv = json.load(open(sys.argv[1]))
hv = inv["_meta"]["hostvars"]["sample-cvm"]
assert hv["tdisp_sysfs_root"] == sys.argv[2] + "/sample-cvm/sys", hv
assert hv["ansible_connection"] == "local", hv
PY
echo "simulator_smoke: ok"
