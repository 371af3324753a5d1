"""Loading and unloading kernel modules: a PCI driver module (``modprobe <drv> trust=...``,
``modprobe -r <drv>``) and the samples/devsec modules (``devsec_bus``, ``devsec_link_tsm``,
``devsec_tsm``), as tools/testing/devsec/devsec.sh drives them (abi §5 "Sample / emulator").

Kernel facts followed here:

* ``modprobe <drv>``: ``driver_register()`` then ``driver_attach()``, which probes every device
  the driver matches (``pci_bus_match``: ``driver_override`` first); a failed probe is not
  reported to modprobe. ``modprobe -r``: ``driver_unregister()`` unbinds every bound device.
* ``devsec_bus`` (samples/devsec/bus.c): one emulated host bridge per domain, each with one root
  port (slot 0 of its root bus, ``pci_bridge_emul`` ids 8086:ffff, class 060400, revision 01,
  subsystem vendor 8086) and a 2-function TEE endpoint 8086:ffff (class 1200, accelerator;
  subsystem ids 0; DOE and IDE on function 0 only), 4 IDE streams per host bridge. Unloading
  removes the root buses and every ``pci_dev`` on them (``pci_remove_root_bus``); loading again
  scans new ``pci_dev`` s: no ``driver_override``, a fresh TDISP state.
* ``devsec_link_tsm`` / ``devsec_tsm``: ``tsm_register()`` takes the lowest free id of the tsm
  IDA (abi §1a ``tsmN``), so the numbers follow the registration order; unregistering tears
  down every context of that TSM.
* samples/devsec/common.c: the ``certs``/``transcript`` blobs live in ``devsec_common``, which
  modprobe -r removes with the last sample module that uses it.
"""

from __future__ import annotations

import errno
from typing import Optional

from .parse import c_string, err
from .state import ROOT_PORT_DRIVER, Device, Driver, HostState, Tsm

SAMPLE_MODULES = ("devsec_bus", "devsec_link_tsm", "devsec_tsm")
SAMPLE_TSMS = {"devsec_link_tsm": "link", "devsec_tsm": "devsec"}
# (domain, root bus, endpoint bus) of each emulated host bridge: 10000:01:00.x and 10001:03:00.x
# (abi §5). Root bus 2*i and endpoint bus 2*i+1 [I: the two-bridge bus.c was not read; this is the
# only numbering that gives both endpoint buses with the root port at slot 0 of the root bus].
SAMPLE_BRIDGES = (("10000", 0x00, 0x01), ("10001", 0x02, 0x03))
SAMPLE_ROOT_PORT_IDS = {"vendor": "0x8086", "device": "0xffff", "klass": "0x060400", "revision": "0x01",
                        "subsystem_vendor": "0x8086", "subsystem_device": "0x0000"}
SAMPLE_ENDPOINT_IDS = {"vendor": "0x8086", "device": "0xffff", "klass": "0x120000", "revision": "0x00",
                       "subsystem_vendor": "0x0000", "subsystem_device": "0x0000"}
SAMPLE_DRIVER = "devsec_pci"


def module_params(args: list) -> dict:
    """``name=value`` words of a modprobe command line (ValueError for anything else)."""
    out = {}
    for a in args:
        if "=" not in a:
            raise ValueError("module parameter %r is not name=value" % a)
        key, value = a.split("=", 1)
        out[key] = value
    return out


class Modules(HostState):
    """Module load and unload of a host (a part of ``Host``)."""

    # -- driver modules -------------------------------------------------------------------------
    def modprobe(self, name: str, params: Optional[dict] = None) -> None:
        """``modprobe NAME [param=value...]``; a module already loaded is left as it is (modprobe
        does not reload it, and its parameters are not applied)."""
        params = params or {}
        if name in SAMPLE_MODULES:
            self._sample_load(name)
            return
        drv = self._driver_module(name, "modprobe")
        if drv.loaded:
            return
        unknown = sorted(set(params) - {"trust"})
        if unknown:
            # the module core refuses unknown parameters: "Unknown parameter" and -ENOENT [I]
            raise err(errno.ENOENT, "modprobe: %s: unknown parameter %s" % (name, unknown[0]))
        drv.loaded = True
        drv.trust_param = c_string(params["trust"]) if "trust" in params else None
        self.log(None, "module_load", module=name, params=dict(params))
        for d in list(self.present_devices()):
            self.autoprobe(d, "driver_attach")

    def modprobe_remove(self, name: str) -> None:
        """``modprobe -r NAME``: a module that is not loaded is no error [I: kmod's exit status
        for it was not read; devsec.sh's first teardown runs on a fresh boot under ``set -e``]."""
        if name in SAMPLE_MODULES:
            self._sample_unload(name)
            return
        drv = self._driver_module(name, "modprobe -r")
        if not drv.loaded:
            return
        for d in self.present_devices():
            if d.driver == name:
                self.unbind_driver(d, "driver_unregister")
        drv.loaded = False
        self.log(None, "module_unload", module=name)

    def _driver_module(self, name: str, how: str) -> Driver:
        drv = self.drivers.get(name)
        if drv is None or not drv.modular:
            raise err(errno.ENOENT, "%s: module %s not found" % (how, name))
        return drv

    # -- samples/devsec --------------------------------------------------------------------------
    def _sample_load(self, name: str) -> None:
        if name in self.sample_modules:
            return
        self.sample_modules.append(name)
        if name in SAMPLE_TSMS:
            tid = next(i for i in range(len(self.tsms) + 1) if i not in self.tsms)
            self.tsms[tid] = Tsm(tid, SAMPLE_TSMS[name], faux=name, blobs=True)
            self.log(None, "tsm_register", tsm="tsm%d" % tid, module=name, uevent="change")
        else:
            self._sample_bus_scan()
        self.log(None, "module_load", module=name, params={})

    def _sample_unload(self, name: str) -> None:
        if name not in self.sample_modules:
            return
        if name in SAMPLE_TSMS:
            tsm = next(t for t in self.tsms.values() if t.faux == name)
            self._unlock_all_of(tsm, "TSM unregistered")
            del self.tsms[tsm.id]
            self.log(None, "tsm_unregister", tsm=tsm.name, module=name)
        else:
            self._sample_bus_remove()
        self.sample_modules.remove(name)
        if not self.sample_modules:
            for blob in self.sample_evidence.values():
                blob.clear()  # devsec_common goes with the last sample module
        self.log(None, "module_unload", module=name)

    def _sample_bus_scan(self) -> None:
        if SAMPLE_DRIVER not in self.drivers:
            self.drivers[SAMPLE_DRIVER] = Driver(SAMPLE_DRIVER, override_only=True, loaded=False)
        if ROOT_PORT_DRIVER not in self.drivers:
            self.drivers[ROOT_PORT_DRIVER] = Driver(ROOT_PORT_DRIVER, modular=False)
        new = []
        for dom, root_bus, ep_bus in SAMPLE_BRIDGES:
            bridge = "pci%s:%02x" % (dom, root_bus)
            rp = "%s:%02x:00.0" % (dom, root_bus)
            new.append(Device(bdf=rp, pf0=False, kind="root_port", bridge=bridge,
                              preferred_driver=ROOT_PORT_DRIVER, **SAMPLE_ROOT_PORT_IDS))
            for fn in range(2):
                new.append(Device(bdf="%s:%02x:00.%d" % (dom, ep_bus, fn), tee=True, pf0=fn == 0, doe=fn == 0,
                                  rp=rp, bridge=bridge, preferred_driver=SAMPLE_DRIVER, profile="devsec-endpoint",
                                  **SAMPLE_ENDPOINT_IDS))
        for d in new:
            self.devices[d.bdf] = d
            self.log(d.bdf, "add", generation=d.generation, reason="devsec_bus scan")
        for d in new:
            self.autoprobe(d, "pci_bus_add_devices")

    def _sample_bus_remove(self) -> None:
        doms = {dom for dom, _, _ in SAMPLE_BRIDGES}
        gone = [d for d in self.devices.values() if d.bdf.split(":", 1)[0] in doms]
        for d in sorted(gone, key=lambda d: d.kind == "root_port"):
            self.take_down(d, "devsec_bus unload")
            del self.devices[d.bdf]
            self.log(d.bdf, "remove", reason="devsec_bus unload")
        for key in [k for k in self._root_ports if k[0] in doms]:
            del self._root_ports[key]

    def sample_objects(self, d: Device) -> Optional[dict]:
        """samples/devsec devsec_init_evidence(): for a device whose TSM context is a sample TSM's,
        ``cert0`` is the ``certs`` blob, ``measurements`` the ``transcript`` blob, every other
        object empty. None for any other device (and for a scenario's own faux TSMs, see docs)."""
        dsm = self.devices.get(d.link_dsm) if d.link_dsm else None
        tids = (d.lock_tsm, d.connect_tsm, dsm.connect_tsm if dsm is not None else None)
        if not any(tid in self.tsms and self.tsms[tid].blobs for tid in tids if tid is not None):
            return None
        return {"cert0": bytes(self.sample_evidence["certs"]),
                "measurements": bytes(self.sample_evidence["transcript"])}
