# The fault-matrix targets' set-up (sourced after fleet.sh, in the target directory).
# shellcheck shell=bash

# fm_target NAME: fleet_target NAME, then FM (the simulator-truth checks of fault_matrix.py), ARM
# (where this simulator's kill and stall faults are armed; removed on exit) and fresh counters.
fm_target() {
    fleet_target "$1"
    FM="python3 $REPO/tests/integration/lib/fault_matrix.py"
    ARM=${TMPDIR:-/tmp}/tdisp-sim-arm-$(cat "$TDISP_SIM_RUN_DIR/pid")
    mkdir -p "$ARM"
    rm -f "$WORK/counts.json"
    trap 'rm -rf "$ARM"' EXIT
    export FM ARM
}
