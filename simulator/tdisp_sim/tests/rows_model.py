"""Conformance rows of the model's behaviour: kernel-abi.md §3 (the TDISP state machine and its
Linux view), §9 (the order of the kernel's checks: which errno wins), the driver core and sysfs
file semantics the collection relies on (§2 flows), and faults and triggers seen through the
model. Row format: rows.py."""

from __future__ import annotations

from tdisp_sim.kernel import ERROR, LOCKED, RUN, UNLOCKED

from .rows import ACCEPT, DELTA, DEV, LAST, LOCK, LS, OPEN, PIN, RES, SEQ, WN, F, Kind, R, W, X
from .simtest import FN1, GPU, GPU2, PF0, dpath

LOCK2 = dpath(GPU2, "tsm/lock")
UNLOCK2 = dpath(GPU2, "tsm/unlock")
ACCEPT2 = dpath(GPU2, "tsm/accept")
BIND2 = W("bus/pci/drivers/nvidia/bind", GPU2)
ERROR2 = F(GPU2, "error")
CONNECT = dpath(PF0, "tsm/connect")
CONNECTED = (W(CONNECT, "tsm0"),)
OVERRIDE2 = dpath(GPU2, "driver_override")

SSCANF_TSM = [("tsm1xyz", "ok"), ("tsm 1", "ok"), ("tsm01", "ok"), (" tsm1", "EINVAL"), ("tsm+1", "EINVAL"),
              ("tsm-1", "ENXIO")]
SYSFS_STREQ = [("tsm1", "ok"), ("tsm1\n", "ok"), ("tsm1\n\n", "EINVAL"), ("tsm1 ", "EINVAL"), ("tsm1x", "EINVAL")]
KSTRTOBOOL_PREFIX = ["Yes", "true", "1abc", "onward"]

ROWS = [
    # §3 transitions: UNLOCKED -lock-> LOCKED -accept-> RUN; unlock from each; ERROR from LOCKED or RUN
    ("3-unlocked-to-locked", "guest", LOCK(), DEV(GPU2, "tdisp"), LOCKED),
    ("3-locked-to-run", "guest", ACCEPT(), DEV(GPU2, "tdisp"), RUN),
    # START is rejected on a nonce mismatch; Linux pins the validated generation [errno inferred: EAGAIN]
    ("3-start-refused-generation-changed", "guest", LOCK() + (PIN(GPU2), F(GPU2, "generation")), W(ACCEPT2, "1"), "EAGAIN"),
    ("3-locked-to-unlocked", "guest", LOCK() + (W(UNLOCK2, "tsm1"),), DEV(GPU2, "tdisp"), UNLOCKED),
    ("3-run-to-unlocked", "guest", ACCEPT() + (W(UNLOCK2, "tsm1"),), DEV(GPU2, "tdisp"), UNLOCKED),
    ("3-locked-to-error", "guest", LOCK() + (ERROR2,), DEV(GPU2, "tdisp"), ERROR),
    ("3-run-to-error", "guest", ACCEPT() + (ERROR2,), DEV(GPU2, "tdisp"), ERROR),
    ("3-error-to-unlocked", "guest", ACCEPT() + (ERROR2, W(UNLOCK2, "tsm1")), DEV(GPU2, "tdisp"), UNLOCKED),
    ("3-unlocked-cannot-enter-error", "guest", (), F(GPU2, "error"), "EINVAL"),
    ("3-run-cannot-go-back-to-locked", "guest", ACCEPT(), W(LOCK2, "tsm1"), "EBUSY"),
    # START_INTERFACE is rejected unless CONFIG_LOCKED [errno inferred: EIO]
    ("3-start-rejected-unless-locked", "guest", LOCK() + (ERROR2,), W(ACCEPT2, "1"), "EIO"),
    # §3/§7.1 ERROR after RUN is not reflected in accept or lock; only the generation shows it
    ("3-error-invisible-accept", "guest", ACCEPT() + (ERROR2,), R(ACCEPT2), "1\n"),
    ("3-error-invisible-lock", "guest", ACCEPT() + (ERROR2,), R(LOCK2), "tsm1\n"),
    ("3-error-shows-in-generation", "guest", ACCEPT(), DELTA(DEV(GPU2, "generation"), ERROR2), 1),
    # §3 the Linux view of the states
    ("3-view-unlocked-lock-empty", "guest", (), R(LOCK2), "\n"),
    ("3-view-unlocked-state", "guest", (), DEV(GPU2, "tdisp"), UNLOCKED),
    ("3-view-locked-accept-0", "guest", LOCK(), R(ACCEPT2), "0\n"),
    ("3-view-locked-state", "guest", LOCK(), DEV(GPU2, "tdisp"), LOCKED),
    ("3-view-host-bound-hides-state", "sample", CONNECTED + (W("bus/faux/devices/devsec_link_tsm/tsm_bind", PF0),),
     R(dpath(PF0, "tsm/bound")), "tsm0\n"),
    # LOCK: the TSM gathers fresh evidence for the new session
    ("3-lock-bumps-generation", "guest", (), DELTA(DEV(GPU2, "generation"), W(LOCK2, "tsm1")), 1),

    # §9 lock: name (EINVAL), context (EBUSY), TSM mode (ENXIO), driver (EBUSY)
    ("9-lock-name-before-context", "guest", LOCK(), W(LOCK2, "bogus"), "EINVAL"),
    ("9-lock-context-before-tsm-mode", "guest", LOCK(), W(LOCK2, "tsm0"), "EBUSY"),
    ("9-lock-tsm-mode-before-driver", "guest", (), W(dpath(GPU, "tsm/lock"), "tsm0"), "ENXIO"),
    ("9-lock-name-before-driver", "guest", (), W(dpath(GPU, "tsm/lock"), "1"), "EINVAL"),
    # §9 unlock: not locked / not the holder (EINVAL) before driver (EBUSY)
    ("9-unlock-not-locked-before-driver", "guest", (), W(dpath(GPU, "tsm/unlock"), "tsm1"), "EINVAL"),
    ("9-unlock-name-before-driver", "guest", LOCK() + (BIND2,), W(UNLOCK2, "tsm0"), "EINVAL"),
    # §9 accept: value, locked (EINVAL), driver (EBUSY), already accepted (ok), run step (EIO)
    ("9-accept-false-before-driver", "guest", LOCK() + (BIND2,), W(ACCEPT2, "0"), "EINVAL"),
    ("9-accept-not-locked-before-driver", "guest", (), W(dpath(GPU, "tsm/accept"), "1"), "EINVAL"),
    ("9-accept-driver-before-accepted", "guest", ACCEPT() + (BIND2,), W(ACCEPT2, "1"), "EBUSY"),
    ("9-accept-accepted-before-run-step", "guest", ACCEPT() + (ERROR2,), W(ACCEPT2, "1"), "ok"),
    ("9-accept-run-step-last", "guest", LOCK() + (ERROR2,), W(ACCEPT2, "y"), "EIO"),
    # §9 connect: name (EINVAL), context (EBUSY), TSM mode (ENXIO), probe (ENXIO); then dependents
    ("9-connect-name-before-context", "sample", CONNECTED, W(CONNECT, "x"), "EINVAL"),
    ("9-connect-context-before-tsm-mode", "sample", (W(dpath(PF0, "tsm/lock"), "tsm1"),), W(CONNECT, "tsm1"), "EBUSY"),
    ("9-connect-tsm-mode-before-probe", "sample/no-doe", (), W(CONNECT, "tsm1"), "ENXIO"),
    ("9-connect-tsm-mode-before-probe-logged", "sample/no-doe", (W(CONNECT, "tsm1"),), LAST("write", "result"), "ENXIO"),
    ("9-connect-gives-dependents-context", "sample", CONNECTED, DEV(FN1, "link_dsm"), PF0),
    # §9 disconnect: not connected (ENXIO) before name (EINVAL); then dependents are cleared
    ("9-disconnect-not-connected-before-name", "sample", (), W(dpath(PF0, "tsm/disconnect"), "bogus"), "ENXIO"),
    ("9-disconnect-clears-dependents", "sample", CONNECTED + (W(dpath(PF0, "tsm/disconnect"), "tsm0"),),
     W(dpath(FN1, "tsm/lock"), "tsm1"), "ok"),
] + [
    # §9 sscanf("tsm%d"): trailing text and space before the number, not leading space or '+'
    ("9-sscanf-tsm-%r" % v, "guest", (), W(LOCK2, v), out) for v, out in SSCANF_TSM
] + [
    # §9 sysfs_streq: one trailing newline tolerated (unlock), nothing else
    ("9-sysfs-streq-%r" % v, "guest", LOCK(), W(UNLOCK2, v), out) for v, out in SYSFS_STREQ
] + [
    # §9 kstrtobool looks only at the first (one or two) characters
    ("9-kstrtobool-%r" % v, "guest", LOCK(), W(ACCEPT2, v), "ok") for v in KSTRTOBOOL_PREFIX
] + [
    # §9 consequence: with the driver rebound after accept, reading accept first sees 1
    ("9-accept-read-first", "guest", ACCEPT() + (BIND2,), R(ACCEPT2), "1\n"),

    # driver core (§2 flows): bind/unbind and the driver link
    ("drv-bind", "guest", (), W("bus/pci/drivers/nvidia/bind", GPU2 + "\n"), "ok"),
    ("drv-bind-driver-link", "guest", (W("bus/pci/drivers/nvidia/bind", GPU2 + "\n"),),
     RES(dpath(GPU2, "driver")), "bus/pci/drivers/nvidia"),
    ("drv-unbind", "guest", (), W("bus/pci/drivers/nvidia/unbind", GPU), "ok"),
    ("drv-unbind-driver-link-gone", "guest", (W("bus/pci/drivers/nvidia/unbind", GPU),), X(dpath(GPU, "driver")), False),
    ("drv-bind-already-bound", "guest", (), W("bus/pci/drivers/nvidia/bind", GPU), "EBUSY"),
    ("drv-bind-unknown-device", "guest", (), W("bus/pci/drivers/nvidia/bind", "0000:77:00.0"), "ENODEV"),
    ("drv-bind-no-match", "guest", (), W("bus/pci/drivers/virtio-pci/bind", GPU2), "ENODEV"),
    ("drv-unbind-not-bound", "guest", (), W("bus/pci/drivers/nvidia/unbind", GPU2), "ENODEV"),
    # driver_override: "(null)" when unset; override_only drivers; newline clears; drivers_probe
    ("drv-override-reads-null", "guest", (), R(OVERRIDE2), "(null)\n"),
    ("drv-override-only-driver", "sample", (F("-", "modprobe", "devsec_pci"),), W("bus/pci/drivers/devsec_pci/bind", PF0), "ENODEV"),
    ("drv-override-newline-clears", "guest", (W(OVERRIDE2, "nvidia\n"), W(OVERRIDE2, "\n")), R(OVERRIDE2), "(null)\n"),
    ("drv-drivers-probe", "guest", (W(OVERRIDE2, "nvidia"),), W("bus/pci/drivers_probe", GPU2), "ok"),
    ("drv-drivers-probe-binds-override", "guest", (W(OVERRIDE2, "nvidia"), W("bus/pci/drivers_probe", GPU2)),
     DEV(GPU2, "driver"), "nvidia"),
    ("drv-override-page-size", "guest", (), W(OVERRIDE2, "x" * 4095), "EINVAL"),
    # kernfs: a zero-length write never reaches store(); one write(2) stores at most PAGE_SIZE
    ("fs-zero-length-write-returns-0", "guest", (), WN(LOCK2, b""), 0),
    ("fs-zero-length-write-no-store", "guest", (), DELTA(SEQ(), WN(LOCK2, b"")), 0),
    ("fs-write-cut-at-page-size", "guest", (), WN("class/tsm/tsm1/uevent", b"change" + b" " * 5000), 4096),
    ("fs-read-only-open-write", "guest", (), OPEN(dpath(GPU2, "vendor"), write=True), "EACCES"),
    ("fs-vendor-hex", "guest", (), R(dpath(GPU2, "vendor")), "0x10de\n"),
    ("fs-class-hex", "guest", (), R(dpath(GPU2, "class")), "0x030200\n"),

    # faults seen through the model
    ("fault-garbage-read", "guest", (F(GPU2, "garbage", "tsm/accept", "ff00fe"),), R(ACCEPT2, raw=True), b"\xff\x00\xfe"),
    ("fault-garbage-clear", "guest", (F(GPU2, "garbage", "tsm/accept"), F(GPU2, "garbage", "tsm/accept", "clear")),
     R(ACCEPT2), "0\n"),
    ("fault-write-errno-next-write", "guest", (F(GPU2, "write-errno", "tsm/lock", "EINTR", "1"),), W(LOCK2, "tsm1"), "EINTR"),
    ("fault-write-errno-then-normal", "guest", (F(GPU2, "write-errno", "tsm/lock", "EINTR", "1"), W(LOCK2, "tsm1")),
     W(LOCK2, "tsm1"), "ok"),
    ("fault-write-errno-does-not-store", "guest", (F(GPU2, "write-errno", "tsm/lock", "EAGAIN", "all"), W(LOCK2, "tsm1")),
     R(LOCK2), "\n"),
    ("fault-rebind-binds-driver", "guest", LOCK() + (F(GPU2, "rebind"),), W(ACCEPT2, "1"), "EBUSY"),
    ("fault-tsm-remove-unlocks", "guest", ACCEPT() + (F("-", "tsm-remove", "tsm1"),), DEV(GPU2, "tdisp"), UNLOCKED),
    ("fault-tsm-restore", "guest", (F("-", "tsm-remove", "tsm1"), F("-", "tsm-restore", "tsm1")), R(LOCK2), "\n"),
    ("fault-remove-hides-device", "guest", (F(GPU, "remove"),), LS("bus/pci/devices", item=GPU), False),
    ("fault-add-reprobes", "guest", (F(GPU, "remove"), F(GPU, "add")), DEV(GPU, "driver"), "nvidia"),
    # every fault and every transition is logged with a timestamp
    ("log-fault", "guest", (F(GPU2, "generation", "2"),), LAST("fault", "fault", "args", "bdf", "ts"),
     ("generation", ["2"], GPU2, Kind(float))),
    ("log-transition", "guest", LOCK(), LAST("tdisp", "before", "after", "tsm"), (UNLOCKED, LOCKED, "tsm1")),
    # scenario triggers: {on: accept, fault: error} fires at once, once by default (times: 1)
    ("trigger-error-after-accept", "guest/trigger", ACCEPT(), DEV(GPU2, "tdisp"), ERROR),
    ("trigger-fires-once", "guest/trigger", ACCEPT() + (W(UNLOCK2, "tsm1"),) + ACCEPT(), DEV(GPU2, "tdisp"), RUN),
]
