"""Conformance rows, guest side: kernel-abi.md §1c (tsm/lock, unlock, accept, modules_autoprobe,
the module trust= option, trust_policy, the integer trust file). Row format: rows.py."""

from __future__ import annotations

from .rows import ACCEPT, DELTA, DEV, LAST, LOCK, LS, NTH, OPEN, F, R, W, X
from .simtest import FN1, GPU, GPU2, PF0, VIRTIO, dpath

LOCK2 = dpath(GPU2, "tsm/lock")
UNLOCK2 = dpath(GPU2, "tsm/unlock")
ACCEPT2 = dpath(GPU2, "tsm/accept")
TRUST2 = dpath(GPU2, "trust")
POLICY2 = dpath(GPU2, "trust_policy")
BIND = "bus/pci/drivers/nvidia/bind"
BIND2 = W(BIND, GPU2)
AUTOPROBE = "module/module/parameters/modules_autoprobe"
MODULE_TRUST = "module/nvidia/parameters/trust"

KSTRTOBOOL_TRUE = ["1", "1\n", "y", "Y", "yes", "t", "T", "on", "oN"]
KSTRTOBOOL_FALSE = ["0", "n", "N", "f", "off", "false"]
NOT_BOOL = ["2", "x", "o", " 1", "\n"]
NOT_TSM_NAME = ["1", "tsm", "TSM1", "tsmx", " tsm1", "tsm+1"]  # sscanf("tsm%d"): no leading space, no '+'
POLICY_WORDS = ["default", "disabled", "adversary", "full", "full\n"]

ROWS = [
    # §1c tsm/lock: read empty when unlocked; a devsec TSM name locks and reads back
    ("1c-lock-reads-empty", "guest", (), R(LOCK2), "\n"),
    ("1c-lock-devsec-tsm", "guest", (), W(LOCK2, "tsm1\n"), "ok"),
    ("1c-lock-reads-holder", "guest", (W(LOCK2, "tsm1\n"),), R(LOCK2), "tsm1\n"),
] + [
    ("1c-lock-bad-name-%r" % v, "guest", (), W(LOCK2, v), "EINVAL") for v in NOT_TSM_NAME
] + [
    ("1c-lock-already-locked", "guest", LOCK(), W(LOCK2, "tsm1"), "EBUSY"),
    ("1c-lock-link-connected-function", "sample", (W(dpath(PF0, "tsm/connect"), "tsm0"),),
     W(dpath(FN1, "tsm/lock"), "tsm1"), "EBUSY"),
    ("1c-lock-link-tsm", "guest", (), W(LOCK2, "tsm0"), "ENXIO"),
    ("1c-lock-no-such-tsm", "guest", (), W(LOCK2, "tsm9"), "ENXIO"),
    ("1c-lock-driver-bound", "guest", (), W(dpath(GPU, "tsm/lock"), "tsm1"), "EBUSY"),
    # lock/unlock/accept: visible only with PCI_EXP_DEVCAP_TEE and >= 1 devsec TSM
    ("1c-lock-absent-without-tee", "guest", (), X(dpath(VIRTIO, "tsm/lock")), False),
    ("1c-lock-absent-without-devsec-tsm", "guest", (F("-", "tsm-remove", "tsm1"),), X(LOCK2), False),

    # §1c tsm/unlock (WO): the lock holder's name
    ("1c-unlock-write-only", "guest", (), OPEN(UNLOCK2, read=True), "EACCES"),
    ("1c-unlock-lock-holder", "guest", LOCK(), W(UNLOCK2, "tsm1\n"), "ok"),
    ("1c-unlock-lock-reads-empty", "guest", LOCK() + (W(UNLOCK2, "tsm1\n"),), R(LOCK2), "\n"),
    ("1c-unlock-not-locked", "guest", (), W(UNLOCK2, "tsm1"), "EINVAL"),
    ("1c-unlock-name-mismatch", "guest", LOCK(), W(UNLOCK2, "tsm0"), "EINVAL"),
    ("1c-unlock-driver-bound", "guest", LOCK() + (BIND2,), W(UNLOCK2, "tsm1"), "EBUSY"),
    ("1c-unlock-clears-acceptance", "guest", ACCEPT() + (W(UNLOCK2, "tsm1"),), R(ACCEPT2), "0\n"),

    # §1c tsm/accept: read 0; any kstrtobool true string accepts (reads 1); no 'unaccept' verb
    ("1c-accept-reads-0", "guest", (), R(ACCEPT2), "0\n"),
] + [
    ("1c-accept-true-%r" % v, "guest", LOCK(), W(ACCEPT2, v), "ok") for v in KSTRTOBOOL_TRUE
] + [
    ("1c-accept-true-%r-reads-1" % v, "guest", LOCK() + (W(ACCEPT2, v),), R(ACCEPT2), "1\n") for v in KSTRTOBOOL_TRUE
] + [
    ("1c-accept-false-%r" % v, "guest", LOCK(), W(ACCEPT2, v), "EINVAL") for v in KSTRTOBOOL_FALSE
] + [
    ("1c-accept-not-bool-%r" % v, "guest", LOCK(), W(ACCEPT2, v), "EINVAL") for v in NOT_BOOL
] + [
    ("1c-accept-not-locked", "guest", (), W(ACCEPT2, "1"), "EINVAL"),
    ("1c-accept-driver-bound", "guest", LOCK() + (BIND2,), W(ACCEPT2, "1"), "EBUSY"),
    # repeated accept: phase2 succeeds with no action (logged); v2 duplicates the encrypted MMIO
    ("1c-accept-repeated-ok", "guest", ACCEPT(), W(ACCEPT2, "1"), "ok"),
    ("1c-accept-repeated-keeps-resources", "guest", ACCEPT() + (W(ACCEPT2, "1"),), DEV(GPU2, "encrypted_mmio_resources"), 1),
    ("1c-accept-repeated-keeps-generation", "guest", ACCEPT(), DELTA(DEV(GPU2, "generation"), W(ACCEPT2, "1")), 0),
    ("1c-accept-repeated-logs-noop", "guest", ACCEPT() + (W(ACCEPT2, "1"),), NTH(-2, "event"), "accept_noop"),
    ("1c-accept-repeated-v2-ok", "guest/v2", ACCEPT(), W(ACCEPT2, "1"), "ok"),
    ("1c-accept-repeated-v2-duplicates", "guest/v2", ACCEPT() + (W(ACCEPT2, "1"),),
     LAST("accept_repeated", "duplicates"), 2),

    # §1c modules_autoprobe (v2 only, RW bool); module options
    ("1c-modules-autoprobe-absent-phase2", "guest", (), X(AUTOPROBE), False),
    ("1c-modules-autoprobe-reads", "guest/autoprobe", (), R(AUTOPROBE), "1\n"),
    ("1c-modules-autoprobe-not-bool", "guest/autoprobe", (), W(AUTOPROBE, "maybe"), "EINVAL"),
    ("1c-modules-autoprobe-off-no-probe-on-hot-add", "guest/autoprobe",
     (W(AUTOPROBE, "0"), F(GPU, "remove"), F(GPU, "add")), X(dpath(GPU, "driver")), False),
    ("1c-module-option-autoprobe-no-file", "guest/module_param", (), LS("module/nvidia/parameters"), ["trust"]),
    # §1c module trust= (design A): /sys/module/<drv>/parameters/trust, effective at the next bind
    ("1c-module-trust-default-auto", "guest/module_param", (), R(MODULE_TRUST), "auto\n"),
    ("1c-module-trust-none-refuses-bind", "guest/module_param", LOCK() + (W(MODULE_TRUST, "none"),), BIND2, "ENODEV"),
    ("1c-module-trust-bound-keeps-driver", "guest/module_param",
     (W("module/virtio-pci/parameters/trust", "none"), W(MODULE_TRUST, "none")), DEV(VIRTIO, "driver"), "virtio-pci"),
    ("1c-module-trust-bound-keeps-trust", "guest/module_param",
     (W("module/virtio-pci/parameters/trust", "none"), W(MODULE_TRUST, "none")), DEV(VIRTIO, "effective_module_trust"), "auto"),
    ("1c-module-trust-tcb-binds-locked", "guest/module_param", ACCEPT() + (W(MODULE_TRUST, "tcb"),), BIND2, "ok"),
    ("1c-module-trust-tcb-effective", "guest/module_param", ACCEPT() + (W(MODULE_TRUST, "tcb"), BIND2),
     DEV(GPU2, "effective_module_trust"), "tcb"),
    # AUTO does not block the bind (device_trust_bind() refuses only at NONE or below)
    ("1c-module-trust-auto-binds-unlocked-tee", "guest/module_param", (), BIND2, "ok"),
    ("1c-module-trust-unknown-word-unset", "guest/module_param",
     LOCK() + (W(MODULE_TRUST, "none"), BIND2, W(MODULE_TRUST, "bogus")), BIND2, "ENODEV"),
    ("1c-module-trust-absent-other-abis", "guest", (), X(MODULE_TRUST), False),

    # §1c trust_policy (design B): one of four words while unbound; independent of RUN
    ("1c-trust-policy-reads-default", "guest/trust_policy", (), R(POLICY2), "default\n"),
] + [
    ("1c-trust-policy-word-%r" % w, "guest/trust_policy", (), W(POLICY2, w), "ok") for w in POLICY_WORDS
] + [
    ("1c-trust-policy-word-%r-reads" % w, "guest/trust_policy", (W(POLICY2, w),), R(POLICY2), w.strip() + "\n")
    for w in POLICY_WORDS
] + [
    ("1c-trust-policy-unknown-word", "guest/trust_policy", (), W(POLICY2, "tcb"), "EINVAL"),
    ("1c-trust-policy-bound", "guest/trust_policy", (), W(dpath(GPU, "trust_policy"), "full"), "EBUSY"),
    ("1c-trust-policy-disabled-refuses-bind", "guest/trust_policy", (W(POLICY2, "disabled"),), BIND2, "EPERM"),
    ("1c-trust-policy-kept-on-unlock", "guest/trust_policy", ACCEPT() + (W(POLICY2, "full"), W(UNLOCK2, "tsm1")),
     R(POLICY2), "full\n"),

    # §1c trust (integer, seed thread): 0..3; 3 only in RUN, below 3 not in RUN; reset to 0 on leaving
    ("1c-trust-reads-level", "guest", (), R(TRUST2), "0\n"),
    ("1c-trust-3-unless-run", "guest", LOCK(), W(TRUST2, "3"), "EINVAL"),
    ("1c-trust-3-in-run", "guest", ACCEPT(), W(TRUST2, "3"), "ok"),
    ("1c-trust-3-in-run-reads", "guest", ACCEPT() + (W(TRUST2, "3"),), R(TRUST2), "3\n"),
    ("1c-trust-below-3-in-run", "guest", ACCEPT(), W(TRUST2, "2"), "EINVAL"),
    ("1c-trust-below-3-outside-run", "guest", (), W(TRUST2, "2\n"), "ok"),
    ("1c-trust-out-of-range", "guest", (), W(TRUST2, "4"), "EINVAL"),
    ("1c-trust-not-a-number", "guest", (), W(TRUST2, "tcb"), "EINVAL"),
    ("1c-trust-overflow", "guest", (), W(TRUST2, "4294967296"), "ERANGE"),
    ("1c-trust-reset-on-unlock", "guest", ACCEPT() + (W(TRUST2, "3"), W(UNLOCK2, "tsm1")), R(TRUST2), "0\n"),
    ("1c-trust-reset-on-unlock-from-locked", "guest", (W(TRUST2, "2"),) + LOCK() + (W(UNLOCK2, "tsm1"),), R(TRUST2), "0\n"),
    ("1c-trust-reset-on-error", "guest", ACCEPT() + (W(TRUST2, "3"), F(GPU2, "error")), R(TRUST2), "0\n"),
    ("1c-trust-absent-other-abis", "guest/none", (), X(TRUST2), False),
    ("1c-trust-policy-absent-other-abis", "guest/none", (), X(POLICY2), False),
]
