#!/usr/bin/env bash
# coco.tdisp.tdisp_device_info against the simulator (scenario single-cvm, host cvm-1): read-only,
# check-mode safe, and each simulator fault changes what it reports.
# Run by the integration harness with INVENTORY, TDISP_SIM, TDISP_SIM_MOUNT, TDISP_SIM_RUN_DIR
# and ANSIBLE_CONFIG set, the simulator already started with that scenario.
set -euo pipefail
cd "$(dirname "$0")"
: "${INVENTORY:?}" "${TDISP_SIM:?}" "${TDISP_SIM_MOUNT:?}" "${TDISP_SIM_RUN_DIR:?}" "${ANSIBLE_CONFIG:?}"
PY=${PYTHON:-python3}
HOST=cvm-1

# The simulator's write events (failed ones included) on $HOST, from its log.
writes() {
    "$TDISP_SIM" log --mount "$TDISP_SIM_MOUNT" --json | "$PY" -c '
import json, sys
text = sys.stdin.read()
try:
    data = json.loads(text)
    events = data if isinstance(data, list) else data.get("events", [data])
except ValueError:
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
print(sum(1 for e in events if e.get("event") == "write" and e.get("host") == sys.argv[1]))' "$HOST"
}
fault() { "$TDISP_SIM" fault --mount "$TDISP_SIM_MOUNT" "$HOST" "$@"; }
play() { ansible-playbook -i "$INVENTORY" --limit "$HOST" "$@"; }
same() { [ "$1" = "$2" ] || { echo "FAIL: $3 ($1 != $2)" >&2; exit 1; }; }

echo "== prepare: GPU accepted at tcb, NIC locked and unbound"
play prepare.yml

echo "== baseline, in check mode and not: reads only"
w0=$(writes)
play observe.yml --check -e step=baseline
play observe.yml -e step=baseline
same "$(writes)" "$w0" "the info module wrote"

echo "== fault error: the GPU falls into TDISP ERROR"
fault 0000:18:00.0 error
play observe.yml -e step=error

echo "== fault generation: the NIC's evidence changes"
fault 0000:0c:00.0 generation
play observe.yml -e step=generation

echo "== fault rebind: the NIC's driver binds itself"
fault 0000:0c:00.0 rebind
play observe.yml -e step=rebind

echo "== fault garbage: tsm/lock of the GPU returns garbage"
fault 0000:18:00.0 garbage tsm/lock
play observe.yml -e step=garbage
fault 0000:18:00.0 garbage tsm/lock clear

echo "== fault remove: the NIC is hot-removed"
fault 0000:0c:00.0 remove
play observe.yml -e step=remove

echo "== fault tsm-remove: the guest TSM goes away"
fault - tsm-remove 0
play observe.yml -e step=tsm-remove
same "$(writes)" "$w0" "the info module wrote"
echo "tdisp_device_info: all steps passed"
