#!/usr/bin/env bash
# coco.tdisp.tdisp_device_info against the simulator (scenario single-cvm, host cvm-1): read-only,
# check-mode safe, and each simulator fault changes what it reports.
# Run by the integration harness with INVENTORY, TDISP_SIM, TDISP_SIM_MOUNT, TDISP_SIM_RUN_DIR
# and ANSIBLE_CONFIG set, the simulator already started with that scenario.
set -euo pipefail
cd "$(dirname "$0")"
: "${INVENTORY:?}" "${TDISP_SIM:?}" "${TDISP_SIM_MOUNT:?}" "${TDISP_SIM_RUN_DIR:?}" "${ANSIBLE_CONFIG:?}"
HOST=cvm-1

. ../../lib/fleet.sh
writes() { sim_writes "$HOST"; }
fault() { "$TDISP_SIM" fault --mount "$TDISP_SIM_MOUNT" "$HOST" "$@"; }
play() { ansible-playbook -i "$INVENTORY" --limit "$HOST" "$@"; }

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
