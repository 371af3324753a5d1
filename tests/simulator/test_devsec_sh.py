"""tools/testing/devsec/devsec.sh (intel-staging/tdx @ f7ab81ec), every step, in both module orders,
run by bash on a real FUSE mount of the devsec-fresh scenario (issue 14 §2). Here, not in simulator/, because
its device-evidence dump is the collection's netlink client."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tdisp_sim.tests import test_fuse
from tdisp_sim.tests.test_fuse import TDISP_SIM, sim

mounted = test_fuse.mounted  # the fixture


# tools/testing/devsec/devsec.sh (intel-staging/tdx @ f7ab81ec), step by step: modprobe is
# `tdisp-sim fault HOST - modprobe ...`, the device-evidence dump is the collection's netlink client
# on the host's evidence socket, paths are relative to the host's sysfs root. Both ORDERs run.
DEVSEC_SH = r"""
set -e
root=$1; sim=$2; mount=$3; dump=$4
cd "$root"
modprobe() { "$sim" fault --mount "$mount" sample-cvm - modprobe "$@" >/dev/null; }
setup_modules() {
    if [ "$ORDER" = bus ]; then modprobe devsec_bus; modprobe devsec_link_tsm; modprobe devsec_tsm
    else modprobe devsec_tsm; modprobe devsec_link_tsm; modprobe devsec_bus; fi
}
teardown_modules() {
    if [ "$ORDER" = bus ]; then modprobe -r devsec_tsm; modprobe -r devsec_link_tsm; modprobe -r devsec_bus
    else modprobe -r devsec_bus; modprobe -r devsec_link_tsm; modprobe -r devsec_tsm; fi
}
PCI_DEVS="bus/pci/devices/10000:01:00.0 bus/pci/devices/10001:03:00.0"
pci_dev=bus/pci/devices/10000:01:00.0
fn_dev=bus/pci/devices/10000:01:00.1
devsec_pci=bus/pci/drivers/devsec_pci
bridge_of() { dirname $(dirname $(readlink -f $1)); }
validate_disconnected() {
    [ -z "$(cat $pci_dev/tsm/dsm)" ] && [ -z "$(cat $pci_dev/tsm/bound)" ]
    for a in dsm bound connect disconnect; do [ ! -e $fn_dev/tsm/$a ]; done
}
check_evidence() {
    for blob in cert0 cert1 cert2 cert3 cert4 cert5 cert6 cert7 vca measurements report; do
        case $blob in cert0) expect=16777216;; measurements) expect=4096;; *) expect=0;; esac
        [ "$("$dump" $(basename $1) $blob)" = $expect ] || { echo "evidence $blob" >&2; exit 1; }
    done
}
devsec_test() {
    teardown_modules
    setup_modules
    tsm_devsec=; tsm_link=
    for tsm in class/tsm/tsm*; do
        mode=$(cat $tsm/pci_mode)
        [ "$mode" = devsec ] && tsm_devsec=$tsm
        [ "$mode" = link ] && tsm_link=$tsm
    done
    [ -n "$tsm_devsec" ] && [ -n "$tsm_link" ]
    echo "$ORDER: $(basename $tsm_link) link, $(basename $tsm_devsec) devsec"
    dd if=/dev/zero of=bus/faux/devices/devsec_link_tsm/certs bs=16777216 count=1 2>/dev/null
    dd if=/dev/zero of=bus/faux/devices/devsec_link_tsm/transcript bs=4096 count=1 2>/dev/null
    for d in $PCI_DEVS; do [ -e $d ] && [ -e $d/tsm ]; done
    # ide_multi_test
    for d in $PCI_DEVS; do basename $tsm_link > $d/tsm/connect; done
    for d in $PCI_DEVS; do
        hbp=$(bridge_of $d); hb=$(basename $hbp)
        [ -e $hbp/stream0.0.0 ] && [ -e $tsm_link/$hb/stream0.0.0 ]
        [ "$(readlink -f $tsm_link/$hb/stream0.0.0)" = "$(readlink -f $d)" ]
    done
    for d in $PCI_DEVS; do basename $tsm_link > $d/tsm/disconnect; done
    # ide_test 0
    host_bridge=$(bridge_of $pci_dev); hb=$(basename $host_bridge)
    [ "$(cat $host_bridge/available_secure_streams)" = 4 ]
    validate_disconnected
    basename $tsm_link > $pci_dev/tsm/connect
    [ "$(cat $host_bridge/available_secure_streams)" = 3 ]
    [ "$(cat $pci_dev/tsm/connect)" = "$(basename $tsm_link)" ]
    [ -e $host_bridge/stream0.0.0 ] && [ -e $tsm_link/$hb/stream0.0.0 ]
    [ "$(cat $pci_dev/tsm/dsm)" = 10000:01:00.0 ] && [ "$(cat $fn_dev/tsm/dsm)" = 10000:01:00.0 ]
    check_evidence $pci_dev
    basename $pci_dev > $tsm_link/device/tsm_bind
    [ "$(cat $pci_dev/tsm/bound)" = "$(basename $tsm_link)" ]
    basename $fn_dev > $tsm_link/device/tsm_bind
    [ "$(cat $fn_dev/tsm/bound)" = "$(basename $tsm_link)" ]
    basename $pci_dev > $tsm_link/device/tsm_unbind
    [ -z "$(cat $pci_dev/tsm/bound)" ]
    basename $fn_dev > $tsm_link/device/tsm_unbind
    [ -z "$(cat $fn_dev/tsm/bound)" ]
    basename $pci_dev > $tsm_link/device/tsm_bind
    basename $fn_dev > $tsm_link/device/tsm_bind
    basename $tsm_link > $pci_dev/tsm/disconnect
    [ "$(cat $host_bridge/available_secure_streams)" = 4 ]
    validate_disconnected
    [ -z "$(cat $pci_dev/tsm/connect)" ] && [ ! -e $host_bridge/stream0.0.0 ] && [ ! -e $tsm_link/$hb/stream0.0.0 ]
    # tdisp_test 0
    echo devsec_pci > $pci_dev/driver_override
    modprobe devsec_pci trust=none
    [ ! -e $pci_dev/driver ]
    modprobe -r devsec_pci
    modprobe devsec_pci trust=auto
    echo $(basename $pci_dev) 2>&1 > $devsec_pci/bind | grep -q "Device or resource busy"
    basename $pci_dev > $devsec_pci/unbind
    basename $tsm_devsec > $pci_dev/tsm/lock
    echo 1 > $pci_dev/tsm/accept
    basename $tsm_devsec > $pci_dev/tsm/unlock
    modprobe -r devsec_pci
    # reconnect 0, then the bus goes with teardown_modules
    basename $tsm_link > $pci_dev/tsm/connect
    [ "$(cat $pci_dev/tsm/connect)" = "$(basename $tsm_link)" ]
    [ -e $host_bridge/stream0.0.0 ] && [ -e $tsm_link/$hb/stream0.0.0 ]
    teardown_modules
    [ ! -e $pci_dev ] && [ ! -e $host_bridge ] && [ -z "$(ls class/tsm)" ]
}
ORDER=bus; devsec_test
ORDER=tsm; devsec_test
echo done
"""

DUMP_PY = r"""
import sys
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.netlink import EvidenceClient
with EvidenceClient(sys.argv[1], timeout=30.0) as c:
    print(len(c.read(sys.argv[2], [sys.argv[3]])["objects"].get(sys.argv[3], b"")))
"""


def test_devsec_sh_walk_over_mount(mounted, tmp_path):
    """Every step of tools/testing/devsec/devsec.sh, in both module orders, by a shell on the mount."""
    m = mounted("devsec-fresh")
    hv = json.loads(sim("inventory", "--mount", m.mount).stdout)["_meta"]["hostvars"]["sample-cvm"]
    dump = tmp_path / "device-evidence-dump"
    path = os.pathsep.join(os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)
    dump.write_text("#!/bin/sh\nPYTHONPATH='%s' exec %s -c '%s' %s \"$@\"\n"
                    % (path, sys.executable, DUMP_PY, hv["tdisp_evidence_endpoint"]))
    dump.chmod(0o755)
    p = subprocess.run(["bash", "-c", DEVSEC_SH, "devsec.sh", str(m.root("sample-cvm")), TDISP_SIM, m.mount, str(dump)],
                       capture_output=True, text=True, timeout=300, check=False)
    assert (p.returncode, p.stdout) == (0, "bus: tsm0 link, tsm1 devsec\ntsm: tsm1 link, tsm0 devsec\ndone\n"), p.stderr
