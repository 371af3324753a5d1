"""The layout of each simulated host's sysfs tree: which node a path is, and which of the kernel
model's show/store handlers an attribute file calls.

Layout (relative to a host's sysfs root; see docs/simulator.md and kernel-abi.md §1):

    class/tsm/tsmN                     -> ../../devices/virtual/tsm/tsmN
    devices/virtual/tsm/tsmN/{pci_mode,uevent}, device -> faux dev, pciDDDD:00 -> host bridge
    devices/pciDDDD:00/                host bridge: available_secure_streams, streamH.R.E links
    devices/pciDDDD:00/<RP>/<BDF>/...  an endpoint behind its root port (bus 00: no root port)
    devices/faux/<name>/...            samples/devsec faux devices (tsm_bind, certs, ...)
    bus/pci/devices/<BDF>              -> ../../../devices/pciDDDD:00/<RP>/<BDF>
    bus/pci/drivers/<drv>/{bind,unbind,uevent,<BDF>,module}, bus/pci/drivers_probe
    bus/faux/devices/<name>            -> ../../../devices/faux/<name>
    module/<drv>/parameters/trust      (trust ABI "module_param" only)
    module/module/parameters/modules_autoprobe   (hosts with the v2 autoprobe knob)

The node types (``Dir``, ``File``, ``Link``) and ``SysfsLayout``, the tree itself; ``sysfs_tree.SysfsView``
resolves paths over it and performs the file operations.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Callable, Optional, Union

from .. import kernel as k
from ..kernel import Device, Driver, Host, err


RW, RO, WO = 0o644, 0o444, 0o200
ATTR_SIZE = 4096
UEVENT_ACTIONS = ("add", "remove", "change", "move", "online", "offline", "bind", "unbind")


@dataclass(slots=True)
class Dir:
    entries: Callable[[], list]


@dataclass(slots=True)
class File:
    mode: int
    show: Optional[Callable[[], str]] = None
    store: Optional[Callable[[str], None]] = None
    # the host whose fault tables apply, and the canonical path
    host: Optional[Host] = None
    path: str = ""
    # binary attributes: read the whole blob / write at an offset (returns bytes written)
    read_bin: Optional[Callable[[], bytes]] = None
    write_bin: Optional[Callable[[bytes, int], int]] = None
    size: int = ATTR_SIZE

    @property
    def readable(self) -> bool:
        return self.show is not None or self.read_bin is not None

    @property
    def writable(self) -> bool:
        return self.store is not None or self.write_bin is not None


@dataclass(slots=True)
class Link:
    target: str


Node = Union[Dir, File, Link]


def dev_path(d: Device) -> str:
    """The canonical directory of a device: devices/pciDDDD:00[/<root port>]/<BDF>."""
    if d.rp is not None:
        return "devices/%s/%s/%s" % (d.host_bridge, d.rp, d.bdf)
    return "devices/%s/%s" % (d.host_bridge, d.bdf)


def _up(path: str) -> str:
    """The relative prefix that climbs from directory ``path`` to the sysfs root."""
    return "../" * (path.count("/") + 1)


def bdf_of_path(canon: str) -> Optional[str]:
    """The device a canonical path belongs to (the deepest PCI name in devices/pci...)."""
    parts = canon.split("/")
    if len(parts) < 3 or parts[0] != "devices" or not parts[1].startswith("pci"):
        return None
    bdf = None
    for p in parts[2:]:
        if k.valid_bdf(p):
            bdf = p
        else:
            break
    return bdf


def _line(v: Optional[str]) -> str:
    return ("" if v is None else v) + "\n"


def _store_uevent(buf: str) -> None:
    """kobject_synth_uevent(): the first word must be a known action."""
    word = k.c_string(buf).split(None, 1)
    if not word or word[0] not in UEVENT_ACTIONS:
        raise err(errno.EINVAL, "uevent: unknown action %r" % buf)


class SysfsLayout:
    """The tree of every host of a fleet, built on demand from the model (a part of ``SysfsView``)."""

    # -- the tree ---------------------------------------------------------------------------------
    def _root(self, h: Host) -> Dir:
        return Dir(lambda: ["bus", "class", "devices", "module"])

    def _node(self, h: Host, parts: list) -> Node:
        n = len(parts)
        top = parts[0]
        if n == 1:
            if top in ("bus", "class", "devices", "module"):
                return Dir(self._root_lister(h, top))
            raise err(errno.ENOENT, top)
        if top == "class":
            return self._class(h, parts)
        if top == "devices":
            return self._devices(h, parts)
        if top == "bus":
            return self._bus(h, parts)
        if top == "module":
            return self._module(h, parts)
        raise err(errno.ENOENT, "/".join(parts))

    def _bridges(self, h: Host) -> list:
        return sorted({d.host_bridge for d in h.devices.values() if d.present})

    def _bridge_exists(self, h: Host, bridge: str) -> bool:
        return bridge in self._bridges(h)

    def _faux(self, h: Host) -> dict:
        return {t.faux: t for t in h.tsms.values() if t.faux and t.present}

    def _root_lister(self, h: Host, top: str) -> Callable[[], list]:
        if top == "bus":
            return lambda: ["faux", "pci"] if self._faux(h) else ["pci"]
        if top == "class":
            return lambda: [] if h.kernel == "no_pci_tsm" else ["tsm"]
        if top == "devices":
            return lambda: (["faux"] if self._faux(h) else []) + self._bridges(h) + ["virtual"]
        return lambda: sorted(self._modules(h))

    def _modules(self, h: Host) -> list:
        names = [name for name, drv in h.drivers.items() if self._has_module_param(h, drv)]  # loaded only
        if h.modules_autoprobe is not None:
            names.append("module")
        return names

    # class/tsm/tsmN
    def _class(self, h: Host, parts: list) -> Node:
        if parts[1] != "tsm" or h.kernel == "no_pci_tsm":
            raise err(errno.ENOENT, "/".join(parts))
        if len(parts) == 2:
            return Dir(lambda: [t.name for t in sorted(h.tsms.values(), key=lambda t: t.id) if t.present])
        if len(parts) == 3:
            tsm = self._tsm(h, parts[2])
            return Link("../../devices/virtual/tsm/%s" % tsm.name)
        raise err(errno.ENOENT, "/".join(parts))

    def _tsm(self, h: Host, name: str) -> k.Tsm:
        tid = None
        if name.startswith("tsm") and name[3:].isdigit():
            tid = int(name[3:])
        tsm = h.tsms.get(tid) if tid is not None else None
        if tsm is None or not tsm.present or tsm.name != name:
            raise err(errno.ENOENT, name)
        return tsm

    def _tsm_bridges(self, h: Host, tsm: k.Tsm) -> list:
        """abi §1b tsmN/pciDDDD:BB: host bridges with >= 1 IDE stream established by this TSM
        (OOT only: mainline has no link under tsmN/)."""
        if h.kernel != "oot":
            return []
        return sorted({d.host_bridge for d in h.devices.values()
                       if d.present and d.stream is not None and d.connect_tsm == tsm.id})

    def _tsm_entries(self, h: Host, tsm: k.Tsm) -> list:
        names = ["pci_mode", "uevent"] if h.kernel == "oot" else ["uevent"]  # mainline: no pci_mode
        if tsm.faux:
            names.append("device")
        return names + self._tsm_bridges(h, tsm)

    def _devices(self, h: Host, parts: list) -> Node:
        n = len(parts)
        if parts[1] == "virtual":
            if n == 2:
                return Dir(lambda: ["tsm"])
            if parts[2] != "tsm":
                raise err(errno.ENOENT, "/".join(parts))
            if n == 3:
                return Dir(lambda: [t.name for t in sorted(h.tsms.values(), key=lambda t: t.id) if t.present])
            tsm = self._tsm(h, parts[3])
            if n == 4:
                return Dir(lambda: self._tsm_entries(h, tsm))
            if n == 5:
                canon = "/".join(parts)
                name = parts[4]
                if name == "pci_mode" and h.kernel == "oot":
                    return File(RO, show=lambda: tsm.mode + "\n", host=h, path=canon)
                if name == "uevent":
                    return File(RW, show=lambda: "", store=_store_uevent, host=h, path=canon)
                if name == "device" and tsm.faux:
                    return Link("../../../faux/%s" % tsm.faux)
                if name in self._tsm_bridges(h, tsm):
                    return Link("../../../%s" % name)
            raise err(errno.ENOENT, "/".join(parts))
        if parts[1] == "faux":
            return self._faux_node(h, parts)
        # devices/pciDDDD:00[/<RP>][/<BDF>[/...]]
        bridge = parts[1]
        if not self._bridge_exists(h, bridge):
            raise err(errno.ENOENT, "/".join(parts))
        if n == 2:
            return Dir(lambda: self._bridge_entries(h, bridge))
        name = parts[2]
        if n == 3 and name == "available_secure_streams":
            return File(RO, show=lambda: "%d\n" % h.available_streams(bridge), host=h, path="/".join(parts))
        if n == 3 and name.startswith("stream"):
            for d in h.streams_in_use(bridge):
                if "stream%d.%d.%d" % d.stream[:3] == name:
                    return Link(dev_path(d)[len("devices/%s/" % bridge):])
            raise err(errno.ENOENT, "/".join(parts))
        d = h.devices.get(name)
        if d is None or not d.present or d.rp is not None or d.host_bridge != bridge:
            raise err(errno.ENOENT, "/".join(parts))
        return self._walk_device(h, d, parts, 3)

    def _bridge_entries(self, h: Host, bridge: str) -> list:
        names = sorted(d.bdf for d in h.devices.values()
                       if d.present and d.rp is None and d.host_bridge == bridge)
        names.append("available_secure_streams")
        names.extend(sorted("stream%d.%d.%d" % d.stream[:3] for d in h.streams_in_use(bridge)))
        return names

    def _walk_device(self, h: Host, d: Device, parts: list, i: int) -> Node:
        """parts[:i] is the device's directory; descend into child devices of a root port."""
        if len(parts) > i and d.kind == "root_port":
            child = h.devices.get(parts[i])
            if child is not None and child.present and child.rp == d.bdf:
                return self._walk_device(h, child, parts, i + 1)
        return self._device(h, d, parts[i:], "/".join(parts[:i]))

    def _device_entries(self, h: Host, d: Device) -> list:
        names = ["vendor", "device", "class", "subsystem_vendor", "subsystem_device", "revision",
                 "driver_override", "uevent", "subsystem"]
        if d.driver is not None:
            names.append("driver")
        if d.kind == "endpoint":
            if h.trust_abi == "trust":
                names.append("trust")
            elif h.trust_abi == "trust_policy":
                names.append("trust_policy")
        if h.link_group_visible(d):
            names.append("authenticated")
        if h.tsm_dir_visible(d):
            names.append("tsm")
        if d.physfn is not None:
            names.append("physfn")
        if d.vfs:
            names.extend(["sriov_numvfs", "sriov_totalvfs"])
            names.extend("virtfn%d" % i for i, vf in enumerate(d.vfs) if vf in h.devices and h.devices[vf].present)
        if d.kind == "root_port":
            names.extend(sorted(c.bdf for c in h.devices.values() if c.present and c.rp == d.bdf))
        return names

    def _tsm_attr_names(self, h: Host, d: Device) -> list:
        names = []
        if h.host_connect_visible(d):
            names.extend(["connect", "disconnect"])
        if h.host_dsm_visible(d):
            names.append("dsm")
        if h.host_bound_visible(d):
            names.append("bound")
        if h.guest_attrs_visible(d):
            names.extend(["lock", "unlock", "accept"])
        return names

    def _device(self, h: Host, d: Device, rest: list, base: str) -> Node:
        if not rest:
            return Dir(lambda: self._device_entries(h, d))
        name = rest[0]
        canon = base + "/" + "/".join(rest)
        if name == "tsm":
            if not h.tsm_dir_visible(d):
                raise err(errno.ENOENT, canon)
            if len(rest) == 1:
                return Dir(lambda: self._tsm_attr_names(h, d))
            if len(rest) != 2 or rest[1] not in self._tsm_attr_names(h, d):
                raise err(errno.ENOENT, canon)
            return self._tsm_attr(h, d, rest[1], canon)
        if len(rest) != 1 or name not in self._device_entries(h, d):
            raise err(errno.ENOENT, canon)
        ident = {
            "vendor": d.vendor, "device": d.device, "class": d.klass, "subsystem_vendor": d.subsystem_vendor,
            "subsystem_device": d.subsystem_device, "revision": d.revision,
        }
        if name in ident:
            value = ident[name]
            return File(RO, show=lambda: value + "\n", host=h, path=canon)
        up = _up(base)
        if name == "driver":
            return Link("%sbus/pci/drivers/%s" % (up, d.driver))
        if name == "subsystem":
            return Link("%sbus/pci" % up)
        if name == "driver_override":
            return File(RW, show=lambda: _line(d.driver_override if d.driver_override is not None else "(null)"),
                        store=lambda buf: h.store_driver_override(d, buf), host=h, path=canon)
        if name == "uevent":
            def uevent() -> str:
                pci_id = "PCI_CLASS=%X\nPCI_ID=%s:%s\nPCI_SUBSYS_ID=%s:%s\nPCI_SLOT_NAME=%s\n" % (
                    int(d.klass, 16), d.vendor[2:].upper(), d.device[2:].upper(),
                    d.subsystem_vendor[2:].upper(), d.subsystem_device[2:].upper(), d.bdf)
                return ("DRIVER=%s\n" % d.driver if d.driver else "") + pci_id
            return File(RW, show=uevent, store=_store_uevent, host=h, path=canon)
        if name == "trust":
            return File(RW, show=lambda: "%d\n" % d.trust, store=lambda buf: h.store_trust(d, buf), host=h, path=canon)
        if name == "trust_policy":
            return File(RW, show=lambda: d.trust_policy + "\n", store=lambda buf: h.store_trust_policy(d, buf), host=h, path=canon)
        if name == "authenticated":
            return File(RO, show=lambda: _line(h.link_tsm_name_of(d)), host=h, path=canon)
        if name == "physfn":
            return Link("../%s" % d.physfn)
        if name in ("sriov_numvfs", "sriov_totalvfs"):
            count = len(d.vfs)
            return File(RO, show=lambda: "%d\n" % count, host=h, path=canon)
        if name.startswith("virtfn"):
            vf = d.vfs[int(name[6:])]
            return Link("../%s" % vf)
        raise err(errno.ENOENT, canon)

    def _tsm_attr(self, h: Host, d: Device, name: str, canon: str) -> File:
        def holder(v: Optional[int]) -> str:
            return _line(None if v is None else "tsm%d" % v)

        if name == "lock":
            return File(RW, show=lambda: holder(d.lock_tsm), store=lambda buf: h.store_lock(d, buf), host=h, path=canon)
        if name == "unlock":
            return File(WO, store=lambda buf: h.store_unlock(d, buf), host=h, path=canon)
        if name == "accept":
            return File(RW, show=lambda: "1\n" if d.accepted else "0\n", store=lambda buf: h.store_accept(d, buf), host=h, path=canon)
        if name == "connect":
            return File(RW, show=lambda: holder(d.connect_tsm), store=lambda buf: h.store_connect(d, buf), host=h, path=canon)
        if name == "disconnect":
            return File(WO, store=lambda buf: h.store_disconnect(d, buf), host=h, path=canon)
        if name == "dsm":
            def dsm() -> str:
                if d.connect_tsm is not None:
                    return d.bdf + "\n"
                return _line(d.link_dsm)
            return File(RO, show=dsm, host=h, path=canon)
        if name == "bound":
            return File(RO, show=lambda: holder(d.bound_tsm), host=h, path=canon)
        raise err(errno.ENOENT, canon)

    # devices/faux/<name>: samples/devsec (abi §1b)
    def _faux_entries(self, tsm: k.Tsm) -> list:
        names = ["certs", "transcript", "uevent"]
        if tsm.mode == "link":
            names[:0] = ["tsm_bind", "tsm_request", "tsm_unbind"]
        return names

    def _faux_node(self, h: Host, parts: list) -> Node:
        n = len(parts)
        faux = self._faux(h)
        if n == 2:
            if not faux:
                raise err(errno.ENOENT, "/".join(parts))
            return Dir(lambda: sorted(self._faux(h)))
        tsm = faux.get(parts[2])
        if tsm is None:
            raise err(errno.ENOENT, "/".join(parts))
        if n == 3:
            return Dir(lambda: self._faux_entries(tsm))
        canon = "/".join(parts)
        if n == 4 and parts[3] in self._faux_entries(tsm):
            name = parts[3]
            if name == "tsm_bind":
                return File(WO, store=lambda buf: h.store_tsm_bind(tsm, buf), host=h, path=canon)
            if name == "tsm_unbind":
                return File(WO, store=lambda buf: h.store_tsm_unbind(tsm, buf), host=h, path=canon)
            if name == "tsm_request":
                return File(WO, store=lambda buf: h.store_tsm_request(tsm, buf), host=h, path=canon)
            if name == "uevent":
                return File(RW, show=lambda: "", store=_store_uevent, host=h, path=canon)
            blob = h.sample_evidence[name]
            # BIN_ATTR_RW(certs, 0): a binary attribute of size 0, read and written at offsets.
            return File(RW, host=h, path=canon, size=0, read_bin=lambda: bytes(blob),
                        write_bin=lambda data, off: h.write_sample_evidence(name, data, off))
        raise err(errno.ENOENT, canon)

    def _bus(self, h: Host, parts: list) -> Node:
        n = len(parts)
        if parts[1] == "faux" and self._faux(h):
            if n == 2:
                return Dir(lambda: ["devices"])
            if parts[2] == "devices":
                if n == 3:
                    return Dir(lambda: sorted(self._faux(h)))
                if n == 4 and parts[3] in self._faux(h):
                    return Link("../../../devices/faux/%s" % parts[3])
            raise err(errno.ENOENT, "/".join(parts))
        if parts[1] != "pci":
            raise err(errno.ENOENT, "/".join(parts))
        if n == 2:
            return Dir(lambda: ["devices", "drivers", "drivers_probe"])
        if parts[2] == "drivers_probe" and n == 3:
            return File(WO, store=h.store_drivers_probe, host=h, path="bus/pci/drivers_probe")
        if parts[2] == "devices":
            if n == 3:
                return Dir(lambda: sorted(d.bdf for d in h.present_devices()))
            d = h.devices.get(parts[3])
            if n == 4 and d is not None and d.present:
                return Link("../../../%s" % dev_path(d))
            raise err(errno.ENOENT, "/".join(parts))
        if parts[2] == "drivers":
            if n == 3:
                return Dir(lambda: sorted(n for n, v in h.drivers.items() if v.loaded))
            drv = h.loaded_driver(parts[3])
            if drv is None:
                raise err(errno.ENOENT, "/".join(parts))
            if n == 4:
                return Dir(lambda: self._driver_entries(h, drv))
            if n == 5:
                return self._driver_attr(h, drv, parts[4], "/".join(parts))
        raise err(errno.ENOENT, "/".join(parts))

    def _driver_entries(self, h: Host, drv: Driver) -> list:
        names = ["bind", "unbind", "uevent"]
        if self._has_module_param(h, drv):
            names.append("module")
        names.extend(sorted(d.bdf for d in h.present_devices() if d.driver == drv.name))
        return names

    def _driver_attr(self, h: Host, drv: Driver, name: str, canon: str) -> Node:
        if name == "bind":
            return File(WO, store=lambda buf: h.store_bind(drv, buf), host=h, path=canon)
        if name == "unbind":
            return File(WO, store=lambda buf: h.store_unbind(drv, buf), host=h, path=canon)
        if name == "uevent":
            return File(WO, store=_store_uevent, host=h, path=canon)
        if name == "module" and self._has_module_param(h, drv):
            return Link("../../../../module/%s" % drv.name)
        d = h.devices.get(name)
        if d is not None and d.present and d.driver == drv.name:
            return Link("../../../../%s" % dev_path(d))
        raise err(errno.ENOENT, canon)

    @staticmethod
    def _has_module_param(h: Host, drv: Driver) -> bool:
        return h.trust_abi == "module_param" and drv.modular and drv.loaded

    def _module(self, h: Host, parts: list) -> Node:
        n = len(parts)
        if parts[1] == "module" and h.modules_autoprobe is not None:
            if n == 2:
                return Dir(lambda: ["parameters"])
            if parts[2] != "parameters":
                raise err(errno.ENOENT, "/".join(parts))
            if n == 3:
                return Dir(lambda: ["modules_autoprobe"])
            if n == 4 and parts[3] == "modules_autoprobe":
                return File(RW, show=lambda: "1\n" if h.modules_autoprobe else "0\n",
                            store=h.store_modules_autoprobe, host=h, path="/".join(parts))
            raise err(errno.ENOENT, "/".join(parts))
        drv = h.drivers.get(parts[1])
        if drv is None or not self._has_module_param(h, drv):
            raise err(errno.ENOENT, "/".join(parts))
        if n == 2:
            return Dir(lambda: ["parameters"])
        if parts[2] != "parameters":
            raise err(errno.ENOENT, "/".join(parts))
        if n == 3:
            return Dir(lambda: ["trust"])
        if n == 4 and parts[3] == "trust":
            return File(RW, show=lambda: _line(drv.trust_param if drv.trust_param is not None else "(null)"), store=lambda buf: h.store_module_trust(drv, buf),
                        host=h, path="/".join(parts))
        raise err(errno.ENOENT, "/".join(parts))
