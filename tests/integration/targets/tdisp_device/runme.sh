#!/usr/bin/env bash
# coco.tdisp.tdisp_device against the simulator (scenario: see ./scenario; host cvm-1).
# Run by the integration harness with INVENTORY, TDISP_SIM, TDISP_SIM_MOUNT, TDISP_SIM_RUN_DIR
# and ANSIBLE_CONFIG set, the simulator already started with that scenario.
set -euo pipefail
cd "$(dirname "$0")"
: "${INVENTORY:?}" "${TDISP_SIM:?}" "${TDISP_SIM_MOUNT:?}" "${ANSIBLE_CONFIG:?}"
HOST=cvm-1

. ../../lib/fleet.sh
writes() { sim_writes "$HOST"; }
fault() { "$TDISP_SIM" fault --mount "$TDISP_SIM_MOUNT" "$@"; }
play() { ansible-playbook -i "$INVENTORY" --limit "$HOST" "$@"; }

echo "== check mode reports changed and writes nothing"
w0=$(writes)
play converge.yml --check -e expect_changed=true
same "$(writes)" "$w0" "check mode wrote"
test ! -e "$TDISP_SIM_RUN_DIR/state/$HOST/ledger.json" || { echo "FAIL: check mode created the ledger" >&2; exit 1; }

echo "== apply converges"
play converge.yml -e expect_changed=true
w1=$(writes)
[ "$w1" -gt "$w0" ] || { echo "FAIL: apply wrote nothing" >&2; exit 1; }

echo "== a second run reports no change and writes nothing"
play converge.yml -e expect_changed=false
same "$(writes)" "$w1" "the idempotent run wrote"

echo "== --diff shows before and after; disruptive needs the opt-in"
play disrupt.yml --check --diff | tee "$TDISP_SIM_RUN_DIR/disrupt.out"
grep -q -- '-.*tdisp_state: run' "$TDISP_SIM_RUN_DIR/disrupt.out"
grep -q -- '+.*tdisp_state: unlocked' "$TDISP_SIM_RUN_DIR/disrupt.out"
same "$(writes)" "$w1" "disrupt.yml in check mode wrote"

echo "== a second run on the host fails at once, naming the holder; check mode too, and it writes nothing"
lockfile="$TDISP_SIM_RUN_DIR/state/$HOST/run.lock"
sleep 300 & holder=$!
printf '{"pid": %d, "run_id": "r-other", "started": "2026-12-04T19:30:00Z", "policy_version": "v9", "expires": 1}\n' "$holder" > "$lockfile"
w3=$(writes)
for mode in "" "--check"; do
    if out=$(play converge.yml -e expect_changed=false ${mode:+"$mode"} 2>&1); then
        kill "$holder"; echo "FAIL: a run went ahead while another held the host" >&2; exit 1
    fi
    grep -q "another run holds this host: pid $holder (run r-other, started 2026-12-04T19:30:00Z, policy v9)" <<<"$out" \
        || { kill "$holder"; echo "FAIL: the refusal does not name the holder: $out" >&2; exit 1; }
done
same "$(writes)" "$w3" "a refused run wrote"
kill "$holder"; wait "$holder" 2>/dev/null || true
echo "== the stale lock of a dead run is broken"
play converge.yml -e expect_changed=false
test ! -e "$lockfile" || { echo "FAIL: the run lock was not released" >&2; exit 1; }

echo "== the generation pin refuses accept after the evidence changed"
play pin.yml -e step=lock
gen=$(cat "$TDISP_SIM_RUN_DIR/pin.generation")
fault "$HOST" 0000:0c:00.0 generation
w2=$(writes)
play pin.yml -e step=accept -e pin="$gen" -e expect_failure=true
same "$(writes)" "$w2" "a refused accept wrote"
play pin.yml -e step=lock
play pin.yml -e step=accept -e pin="$(cat "$TDISP_SIM_RUN_DIR/pin.generation")" -e expect_failure=false

echo "== production paths: /sys replaced by the simulated host in a private mount namespace"
if unshare -m true 2>/dev/null; then
    unshare -m --propagation private sh -c \
        'mount --bind "$1/cvm-1/sys" /sys && exec ansible-playbook -i "$2" --limit cvm-1 production.yml' \
        sh "$TDISP_SIM_MOUNT" "$INVENTORY"
else
    echo "FAIL: unshare -m is not available (needs root)" >&2
    exit 1
fi
echo "tdisp_device: all steps passed"
