#!/usr/bin/env bash
# coco.tdisp.device_trust against the simulator: one CVM per trust ABI flavour (scenario
# trust-flavours: flav-trust, flav-policy, flav-module, flav-none).
# Run by the integration harness with INVENTORY, TDISP_SIM, TDISP_SIM_MOUNT, TDISP_SIM_RUN_DIR
# and ANSIBLE_CONFIG set, the simulator already started with that scenario.
set -euo pipefail
cd "$(dirname "$0")"
: "${INVENTORY:?}" "${TDISP_SIM:?}" "${TDISP_SIM_MOUNT:?}" "${ANSIBLE_CONFIG:?}"

. ../../lib/fleet.sh
writes() { sim_writes "$1"; }
fault() { "$TDISP_SIM" fault --mount "$TDISP_SIM_MOUNT" "$@"; }
play() { ansible-playbook -i "$INVENTORY" "$@"; }

echo "== flav-trust: tcb needs RUN; accept the GPU first"
play --limit flav-trust prepare-trust.yml

for host in flav-trust flav-policy flav-module; do
    echo "== $host: check mode reports changed and writes nothing"
    w0=$(writes "$host")
    play --limit "$host" "$host.yml" --check -e expect_changed=true
    same "$(writes "$host")" "$w0" "$host: check mode wrote"

    echo "== $host: apply converges"
    play --limit "$host" "$host.yml" --diff -e expect_changed=true | tee "$TDISP_SIM_RUN_DIR/$host.out"
    grep -q -- '^-.*trust_level: ' "$TDISP_SIM_RUN_DIR/$host.out"
    grep -q -- '^+.*trust_level: ' "$TDISP_SIM_RUN_DIR/$host.out"
    w1=$(writes "$host")
    [ "$w1" -gt "$w0" ] || { echo "FAIL: $host: apply wrote nothing" >&2; exit 1; }

    echo "== $host: a second run reports no change and writes nothing"
    play --limit "$host" "$host.yml" -e expect_changed=false
    same "$(writes "$host")" "$w1" "$host: the idempotent run wrote"
done

echo "== flav-none: no trust ABI, a clear error, nothing written"
w0=$(writes flav-none)
play --limit flav-none flav-none.yml
same "$(writes flav-none)" "$w0" "flav-none wrote"

echo "== flav-trust: the kernel resets trust when the device falls into ERROR; reported, not written back"
fault flav-trust 0000:18:00.0 error
w0=$(writes flav-trust)
play --limit flav-trust reset.yml
same "$(writes flav-trust)" "$w0" "the reset level was written back"
echo "device_trust: all steps passed"
