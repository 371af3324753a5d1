"""Conformance rows for what tools/testing/devsec/devsec.sh (intel-staging/tdx @ f7ab81ec) and the
samples/devsec sources say (issue 14 §2), the design-B trust_policy ABI file (September 2026,
kernel-abi.md §1c) and the kernel profiles (mainline v7.3, no CONFIG_PCI_TSM). Row format: rows.py.
"""

from __future__ import annotations

from .rows import DEV, LAST, LS, RES, F, R, Step, W, X
from .simtest import FN1, GPU, GPU2, PF0, PF0_B, dpath

POLICY2 = dpath(GPU2, "trust_policy")
BIND2 = W("bus/pci/drivers/nvidia/bind", GPU2)
UNBIND2 = W("bus/pci/drivers/nvidia/unbind", GPU2)
DEVSEC_BIND = "bus/pci/drivers/devsec_pci/bind"
OVERRIDE = W(dpath(PF0, "driver_override"), "devsec_pci\n", must="ok")


class OBJ(Step):
    """The sizes of the evidence objects samples/devsec serves for a device (None: not the sample's)."""

    def __init__(self, bdf: str) -> None:
        self.bdf = bdf

    def __call__(self, s) -> object:
        objs = s.host.sample_objects(s.dev(self.bdf))
        return None if objs is None else {k: len(v) for k, v in objs.items()}


def MOD(*args: str) -> F:
    """modprobe (``"-r", NAME`` unloads)."""
    return F("-", "modprobe", *args)


# devsec.sh teardown_modules / setup_modules in each ORDER
TEARDOWN_BUS = (MOD("-r", "devsec_tsm"), MOD("-r", "devsec_link_tsm"), MOD("-r", "devsec_bus"))
SETUP_BUS = (MOD("devsec_bus"), MOD("devsec_link_tsm"), MOD("devsec_tsm"))
TEARDOWN_TSM = (MOD("-r", "devsec_bus"), MOD("-r", "devsec_link_tsm"), MOD("-r", "devsec_tsm"))
SETUP_TSM = (MOD("devsec_tsm"), MOD("devsec_link_tsm"), MOD("devsec_bus"))
RELOAD_BUS = (MOD("-r", "devsec_bus"), MOD("devsec_bus"))
AUTO = (OVERRIDE, MOD("devsec_pci", "trust=auto"))
CONNECTED = (W(dpath(PF0, "tsm/connect"), "tsm0", must="ok"),)
CERTS = "bus/faux/devices/devsec_link_tsm/certs"
ML_PF0 = "0000:41:00.0"
ML_CONNECT = (W(dpath(ML_PF0, "tsm/connect"), "tsm0", must="ok"),)
TRANSCRIPT = "bus/faux/devices/devsec_link_tsm/transcript"

ROWS = [
    # trust=none: the driver loads and does not attach; trust=auto: driver_attach() binds the
    # endpoint through its driver_override at modprobe; the manual bind then gets EBUSY from
    # __driver_probe_device() (already bound), and the unbind succeeds
    ("sh-trust-none-no-driver", "sample", (OVERRIDE, MOD("devsec_pci", "trust=none")), X(dpath(PF0, "driver")), False),
    ("sh-trust-none-refusal-logged", "sample", (OVERRIDE, MOD("devsec_pci", "trust=none")),
     LAST("bind_refused", "trust", "how"), ("none", "driver_attach")),
    ("sh-trust-auto-binds-at-modprobe", "sample", AUTO, DEV(PF0, "driver"), "devsec_pci"),
    ("sh-trust-auto-manual-bind-ebusy", "sample", AUTO, W(DEVSEC_BIND, PF0), "EBUSY"),
    ("sh-trust-auto-unbind", "sample", AUTO, W("bus/pci/drivers/devsec_pci/unbind", PF0), "ok"),
    ("sh-trust-auto-only-the-overridden-function", "sample", AUTO, DEV(FN1, "driver"), None),
    ("sh-lock-after-unbind", "sample", AUTO + (W("bus/pci/drivers/devsec_pci/unbind", PF0),),
     W(dpath(PF0, "tsm/lock"), "tsm1"), "ok"),
    ("sh-modprobe-loaded-module-keeps-params", "sample",
     (OVERRIDE, MOD("devsec_pci", "trust=none"), MOD("devsec_pci", "trust=auto")), X(dpath(PF0, "driver")), False),
    # driver unregister: modprobe -r unbinds; an unloaded driver has no directory and binds nothing
    ("sh-modprobe-r-unbinds", "sample", AUTO + (MOD("-r", "devsec_pci"),), DEV(PF0, "driver"), None),
    ("sh-unloaded-driver-no-dir", "sample", AUTO + (MOD("-r", "devsec_pci"),), X("bus/pci/drivers/devsec_pci"), False),
    ("sh-unloaded-driver-not-listed", "sample", (), LS("bus/pci/drivers", "devsec_pci"), False),
    ("sh-unloaded-driver-binds-nothing", "sample", AUTO + (MOD("-r", "devsec_pci"),),
     W("bus/pci/drivers_probe", PF0), "ok"),
    ("sh-unloaded-driver-binds-nothing-after-probe", "sample",
     AUTO + (MOD("-r", "devsec_pci"), W("bus/pci/drivers_probe", PF0)), DEV(PF0, "driver"), None),
    ("sh-modprobe-unknown-module", "sample", (), MOD("no_such_module"), "ENOENT"),
    ("sh-modprobe-r-not-loaded", "sample", (), MOD("-r", "devsec_pci"), "ok"),
    # a bus reload makes new pci_devs: no driver_override, nothing bound, a fresh generation
    ("sh-bus-reload-clears-override", "sample", (OVERRIDE,) + RELOAD_BUS, R(dpath(PF0, "driver_override")), "(null)\n"),
    ("sh-bus-reload-unbinds", "sample", AUTO + RELOAD_BUS, DEV(PF0, "driver"), None),
    ("sh-bus-reload-with-driver-loaded-binds-nothing", "sample", AUTO + RELOAD_BUS, DEV(FN1, "driver"), None),
    ("sh-bus-reload-disconnects", "sample", CONNECTED + RELOAD_BUS, R(dpath(PF0, "tsm/connect")), "\n"),
    ("sh-bus-reload-refills-streams", "sample", CONNECTED + RELOAD_BUS, R("devices/pci10000:00/available_secure_streams"), "4\n"),
    # unloading the bus removes the host bridges, the root ports and the endpoints
    ("sh-bus-unload-removes-endpoints", "sample", (MOD("-r", "devsec_bus"),), X("bus/pci/devices/" + PF0), False),
    ("sh-bus-unload-removes-root-ports", "sample", (MOD("-r", "devsec_bus"),), X("bus/pci/devices/10000:00:00.0"), False),
    ("sh-bus-unload-removes-host-bridges", "sample", (MOD("-r", "devsec_bus"),), LS("devices"), ["faux", "virtual"]),
    ("sh-bus-unload-keeps-tsm", "sample", (MOD("-r", "devsec_bus"),), LS("class/tsm"), ["tsm0", "tsm1"]),
    # the sample's topology: root port at slot 0 of each root bus, the second bridge's root bus 02
    ("sh-topology-first-bridge", "sample", (), RES("bus/pci/devices/" + PF0), "devices/pci10000:00/10000:00:00.0/10000:01:00.0"),
    ("sh-topology-second-bridge", "sample", (), RES("bus/pci/devices/" + PF0_B), "devices/pci10001:02/10001:02:00.0/10001:03:00.0"),
    ("sh-topology-devices", "sample", (), LS("bus/pci/devices"),
     ["10000:00:00.0", "10000:01:00.0", "10000:01:00.1", "10001:02:00.0", "10001:03:00.0", "10001:03:00.1"]),
] + [
    ("sh-root-port-%s" % attr, "sample", (), R("bus/pci/devices/10001:02:00.0/" + attr), value)
    for attr, value in (("vendor", "0x8086\n"), ("device", "0xffff\n"), ("class", "0x060400\n"), ("revision", "0x01\n"),
                        ("subsystem_vendor", "0x8086\n"), ("subsystem_device", "0x0000\n"))
] + [
    ("sh-endpoint-%s" % attr, "sample", (), R("bus/pci/devices/10001:03:00.1/" + attr), value)
    for attr, value in (("vendor", "0x8086\n"), ("device", "0xffff\n"), ("class", "0x120000\n"),
                        ("subsystem_vendor", "0x0000\n"), ("subsystem_device", "0x0000\n"))
] + [
    ("sh-root-port-bound-pcieport", "sample", (), DEV("10001:02:00.0", "driver"), "pcieport"),
    ("sh-fn1-no-doe", "sample", (), DEV(FN1, "doe"), False),
    # TSM numbers follow registration order (tsm IDA), in either module order
    ("sh-order-bus-tsm0-link", "sample", TEARDOWN_BUS + SETUP_BUS, R("class/tsm/tsm0/pci_mode"), "link\n"),
    ("sh-order-bus-tsm1-devsec", "sample", TEARDOWN_BUS + SETUP_BUS, R("class/tsm/tsm1/pci_mode"), "devsec\n"),
    ("sh-order-tsm-tsm0-devsec", "sample", TEARDOWN_TSM + SETUP_TSM, R("class/tsm/tsm0/pci_mode"), "devsec\n"),
    ("sh-order-tsm-tsm1-link", "sample", TEARDOWN_TSM + SETUP_TSM, R("class/tsm/tsm1/pci_mode"), "link\n"),
    ("sh-order-tsm-tsm-dir", "sample", TEARDOWN_TSM + SETUP_TSM, X(dpath(PF0, "tsm/connect")), True),
    ("sh-order-tsm-connect-to-tsm1", "sample", TEARDOWN_TSM + SETUP_TSM, W(dpath(PF0, "tsm/connect"), "tsm1"), "ok"),
    ("sh-order-tsm-lock-with-tsm0", "sample", TEARDOWN_TSM + SETUP_TSM, W(dpath(PF0, "tsm/lock"), "tsm0"), "ok"),
    ("sh-teardown-no-tsm", "sample", TEARDOWN_TSM, LS("class/tsm"), []),
    ("sh-teardown-no-faux", "sample", TEARDOWN_TSM, X("bus/faux"), False),
    # the sample's evidence: certs served as cert0, transcript as measurements, the rest empty;
    # the blobs go with devsec_common (the last sample module)
    ("sh-certs-16MiB-write", "sample", (), W(CERTS, b"\0" * (16 << 20)), "ok"),
    ("sh-certs-over-16MiB-efbig", "sample", (), W(CERTS, b"\0" * 4096, offset=16 << 20), "EFBIG"),
    ("sh-evidence-sizes", "sample", (W(CERTS, b"\0" * (16 << 20)), W(TRANSCRIPT, b"\1" * 4096)) + CONNECTED,
     OBJ(PF0), {"cert0": 16 << 20, "measurements": 4096}),
    ("sh-evidence-sizes-dependent-function", "sample", (W(TRANSCRIPT, b"\1" * 4096),) + CONNECTED,
     OBJ(FN1), {"cert0": 0, "measurements": 4096}),
    ("sh-evidence-sizes-locked", "sample", (W(TRANSCRIPT, b"\1" * 4096), W(dpath(PF0, "tsm/lock"), "tsm1")),
     OBJ(PF0), {"cert0": 0, "measurements": 4096}),
    ("sh-evidence-none-without-context", "sample", (), OBJ(PF0), None),
    ("sh-evidence-blobs-busy-while-connected", "sample", CONNECTED, W(TRANSCRIPT, b"\1" * 4096), "EBUSY"),
    ("sh-blobs-cleared-with-last-module", "sample", (W(TRANSCRIPT, b"\1" * 4096),) + TEARDOWN_BUS + SETUP_BUS,
     R(TRANSCRIPT, raw=True), b""),

    # design B trust_policy (sysfs-devices-trust, September 2026)
    ("tp-writable-before-probe", "guest/trust_policy", (), W(POLICY2, "adversary"), "ok"),
    ("tp-ebusy-once-probed", "guest/trust_policy", (BIND2,), W(POLICY2, "full"), "EBUSY"),
    ("tp-ebusy-after-unbind", "guest/trust_policy", (BIND2, UNBIND2), W(POLICY2, "full"), "EBUSY"),
    ("tp-ebusy-after-refused-bind", "guest/trust_policy", (W(POLICY2, "disabled"), BIND2), W(POLICY2, "default"), "EBUSY"),
    ("tp-ebusy-bound-at-boot", "guest/trust_policy", (), W(dpath(GPU, "trust_policy"), "default"), "EBUSY"),
    ("tp-reads-requested-not-active", "guest/trust_policy", (W(POLICY2, "adversary"), BIND2), R(POLICY2), "adversary\n"),
    ("tp-disabled-bind-eperm", "guest/trust_policy", (W(POLICY2, "disabled"),), BIND2, "EPERM"),
    ("tp-disabled-autoprobe-no-driver", "guest/trust_policy", (W(POLICY2, "disabled"), W("bus/pci/drivers_probe", GPU2)),
     DEV(GPU2, "driver"), None),
    ("tp-default-resolves-full", "guest/trust_policy", (BIND2,), DEV(GPU2, "active_trust"), "full"),
    ("tp-adversary-resolves-adversary", "guest/trust_policy", (W(POLICY2, "adversary"), BIND2), DEV(GPU2, "active_trust"), "adversary"),
    ("tp-active-disabled-after-unbind", "guest/trust_policy", (BIND2, UNBIND2), DEV(GPU2, "active_trust"), "disabled"),
    ("tp-unhonourable-einval", "guest/trust_policy-untrusted", (W(POLICY2, "full"),), BIND2, "EINVAL"),
    ("tp-untrusted-default-adversary", "guest/trust_policy-untrusted", (BIND2,), DEV(GPU2, "active_trust"), "adversary"),
    ("tp-independent-of-run", "guest/trust_policy", (W(dpath(GPU2, "tsm/lock"), "tsm1"), W(dpath(GPU2, "tsm/accept"), "1"),
                                                     BIND2), DEV(GPU2, "active_trust"), "full"),
    ("tp-no-other-trust-file", "guest/trust_policy", (), X(dpath(GPU2, "trust")), False),

    # mainline (v7.3-rc7): tsm/ only while a link TSM is registered, a devsec TSM shows nothing,
    # no pci_mode, stream links only under the host bridge
    ("ml-no-pci-mode", "guest/mainline", (), LS("class/tsm/tsm0"), ["uevent"]),
    ("ml-no-guest-lock", "guest/mainline", (), X(dpath(GPU2, "tsm/lock")), False),
    ("ml-no-guest-accept", "guest/mainline", (), X(dpath(GPU2, "tsm/accept")), False),
    ("ml-no-tsm-dir-non-pf0", "guest/mainline", (), X(dpath(GPU2, "tsm")), False),
    ("ml-devsec-tsm-only-shows-nothing", "guest/mainline", (F("-", "tsm-remove", "tsm0"),), X(dpath(GPU, "tsm")), False),
    ("ml-devsec-tsm-registered", "guest/mainline", (F("-", "tsm-remove", "tsm0"),), LS("class/tsm"), ["tsm1"]),
    ("ml-host-connect", "mainline-host", (), W(dpath(ML_PF0, "tsm/connect"), "tsm0"), "ok"),
    ("ml-host-stream-link-under-bridge", "mainline-host", ML_CONNECT, LS("devices/pci0000:00", "stream0.0.0"), True),
    ("ml-host-no-link-under-tsm", "mainline-host", ML_CONNECT, LS("class/tsm/tsm0"), ["uevent"]),
    ("ml-host-dsm-of-fn1", "mainline-host", ML_CONNECT, R(dpath("0000:41:00.1", "tsm/dsm")), ML_PF0 + "\n"),
    ("ml-host-tsm-dir-only-while-link-tsm", "mainline-host", (F("-", "tsm-remove", "tsm0"),), X(dpath(ML_PF0, "tsm")), False),
    ("ml-host-no-guest-files", "mainline-host", (), LS(dpath(ML_PF0, "tsm")), ["connect", "disconnect", "dsm", "bound"]),
    ("ml-host-no-trust-file", "mainline-host", (), X(dpath(ML_PF0, "trust_policy")), False),
    # no CONFIG_PCI_TSM: no tsm class, no tsm/ group
    ("nt-no-tsm-class", "guest/no-pci-tsm", (), X("class/tsm"), False),
    ("nt-no-tsm-group", "guest/no-pci-tsm", (), X(dpath(GPU, "tsm")), False),
]
