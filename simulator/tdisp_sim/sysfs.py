"""The sysfs tree of each simulated host: paths -> the kernel model's show/store handlers.

Layout (relative to a host's sysfs root; see docs/internals.md and kernel-abi.md §1):

    class/tsm/tsmN                     -> ../../devices/virtual/tsm/tsmN
    devices/virtual/tsm/tsmN/{pci_mode,uevent}
    devices/pciDDDD:BB/<BDF>/...       device attributes, tsm/ group, driver link
    bus/pci/devices/<BDF>              -> ../../../devices/pciDDDD:BB/<BDF>
    bus/pci/drivers/<drv>/{bind,unbind,uevent,<BDF>,module}
    module/<drv>/parameters/trust      (trust ABI "module_param" only)

Attribute files behave like kernfs: mode 0644 (RW), 0444 (RO) or 0200 (WO); opening a
write-only file for reading, or a read-only one for writing, is EACCES; a read returns the
whole value; each write(2) is one store() call; st_size is 4096.

No FUSE here: unit tests drive ``SysfsView`` directly, and ``fuse.py`` adapts it.
"""

from __future__ import annotations

import errno
import posixpath
from dataclasses import dataclass
from typing import Callable, Optional, Union

from . import kernel as k
from .kernel import Device, Driver, Fleet, Host, err

RW, RO, WO = 0o644, 0o444, 0o200
ATTR_SIZE = 4096


@dataclass
class Dir:
    entries: Callable[[], list]


@dataclass
class File:
    mode: int
    show: Optional[Callable[[], str]] = None
    store: Optional[Callable[[str], None]] = None
    # the host whose fault tables apply, and the canonical path
    host: Optional[Host] = None
    path: str = ""


@dataclass
class Link:
    target: str


Node = Union[Dir, File, Link]


def pci_dir(bdf: str) -> str:
    """The (flattened) parent directory of a device under devices/: pciDDDD:BB."""
    dom, bus, _ = bdf.split(":", 2)
    return "pci%s:%s" % (dom, bus)


def _bdf_of(canon: str) -> Optional[str]:
    """The device a canonical path belongs to (devices/pciX/<BDF>/...), if any."""
    parts = canon.split("/")
    if len(parts) >= 3 and parts[0] == "devices" and parts[1].startswith("pci"):
        return parts[2]
    return None


def _line(v: Optional[str]) -> str:
    return ("" if v is None else v) + "\n"


class SysfsView:
    """Path-level access to every host of a fleet. All methods take the fleet lock."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    # -- public operations ------------------------------------------------------------------------
    def lookup(self, host: str, path: str, follow: bool = True) -> tuple[str, Node]:
        """Resolve ``path`` (relative to the host's sysfs root). Intermediate symlinks are always
        followed; the last component is followed only when ``follow``. Returns the canonical
        path and the node. Raises ENOENT."""
        with self.fleet.lock:
            h = self.fleet.hosts.get(host)
            if h is None:
                raise err(errno.ENOENT, "no host %s" % host)
            parts = [p for p in path.split("/") if p and p != "."]
            resolved: list[str] = []
            hops = 0
            i = 0
            while i < len(parts):
                p = parts[i]
                if p == "..":
                    if resolved:
                        resolved.pop()
                    i += 1
                    continue
                cur = resolved + [p]
                node = self._node(h, cur)
                last = i == len(parts) - 1
                if isinstance(node, Link) and (follow or not last):
                    hops += 1
                    if hops > 40:
                        raise err(errno.ELOOP, path)
                    target = posixpath.normpath(posixpath.join("/".join(resolved), node.target))
                    parts = [q for q in target.split("/") if q and q != "."] + parts[i + 1:]
                    resolved = []
                    i = 0
                    continue
                if not last and not isinstance(node, Dir):
                    raise err(errno.ENOTDIR, path)
                resolved = cur
                i += 1
            node = self._node(h, resolved) if resolved else self._root(h)
            return "/".join(resolved), node

    def read(self, host: str, path: str) -> bytes:
        with self.fleet.lock:
            canon, node = self.lookup(host, path)
            if isinstance(node, Dir):
                raise err(errno.EISDIR, path)
            assert isinstance(node, File)
            if node.show is None:
                raise err(errno.EACCES, "%s is write-only" % path)
            h = self.fleet.hosts[host]
            if canon in h.garbage:
                return h.garbage[canon]
            return node.show().encode("latin-1")

    def write(self, host: str, path: str, data: bytes) -> int:
        with self.fleet.lock:
            canon, node = self.lookup(host, path)
            if isinstance(node, Dir):
                raise err(errno.EISDIR, path)
            assert isinstance(node, File)
            if node.store is None:
                raise err(errno.EACCES, "%s is read-only" % path)
            h = self.fleet.hosts[host]
            buf = data[:ATTR_SIZE].decode("latin-1")
            bdf = _bdf_of(canon)
            code = h.take_write_fault(canon)
            if code is not None:
                h.log(bdf, "write", path=canon, value=buf, result=errno.errorcode.get(code, str(code)), injected=True)
                raise err(code, "injected fault on %s" % canon)
            try:
                node.store(buf)
            except OSError as e:
                h.log(bdf, "write", path=canon, value=buf, result=errno.errorcode.get(e.errno or 0, str(e.errno)))
                raise
            h.log(bdf, "write", path=canon, value=buf, result="ok")
            return len(data)

    def check_open(self, host: str, path: str, want_read: bool, want_write: bool) -> None:
        """kernfs_fop_open(): EACCES when the attribute cannot do what the open asks."""
        with self.fleet.lock:
            _, node = self.lookup(host, path)
            if isinstance(node, Dir):
                if want_write:
                    raise err(errno.EISDIR, path)
                return
            assert isinstance(node, File)
            if want_read and node.show is None:
                raise err(errno.EACCES, "%s is write-only" % path)
            if want_write and node.store is None:
                raise err(errno.EACCES, "%s is read-only" % path)

    def listdir(self, host: str, path: str) -> list:
        with self.fleet.lock:
            _, node = self.lookup(host, path)
            if not isinstance(node, Dir):
                raise err(errno.ENOTDIR, path)
            return list(node.entries())

    def readlink(self, host: str, path: str) -> str:
        with self.fleet.lock:
            _, node = self.lookup(host, path, follow=False)
            if not isinstance(node, Link):
                raise err(errno.EINVAL, path)
            return node.target

    def stat(self, host: str, path: str) -> tuple[str, int]:
        """("dir"|"file"|"link", permission bits) of ``path`` without following the last link."""
        with self.fleet.lock:
            _, node = self.lookup(host, path, follow=False)
            if isinstance(node, Dir):
                return "dir", 0o755
            if isinstance(node, Link):
                return "link", 0o777
            return "file", node.mode

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

    def _root_lister(self, h: Host, top: str) -> Callable[[], list]:
        if top == "bus":
            return lambda: ["pci"]
        if top == "class":
            return lambda: ["tsm"]
        if top == "devices":
            return lambda: ["virtual"] + sorted({pci_dir(d.bdf) for d in h.present_devices()})
        return lambda: sorted(name for name, drv in h.drivers.items() if self._has_module_param(h, drv))

    # class/tsm/tsmN
    def _class(self, h: Host, parts: list) -> Node:
        if parts[1] != "tsm":
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
                return Dir(lambda: ["pci_mode", "uevent"])
            if n == 5:
                canon = "/".join(parts)
                if parts[4] == "pci_mode":
                    return File(RO, show=lambda: tsm.mode + "\n", host=h, path=canon)
                if parts[4] == "uevent":
                    return File(RW, show=lambda: "", store=lambda buf: None, host=h, path=canon)
            raise err(errno.ENOENT, "/".join(parts))
        # devices/pciDDDD:BB[/<BDF>[/...]]
        bus = parts[1]
        if n == 2:
            names = sorted(d.bdf for d in h.present_devices() if pci_dir(d.bdf) == bus)
            if not names:
                raise err(errno.ENOENT, bus)
            return Dir(lambda: sorted(d.bdf for d in h.present_devices() if pci_dir(d.bdf) == bus))
        d = h.devices.get(parts[2])
        if d is None or not d.present or pci_dir(d.bdf) != bus:
            raise err(errno.ENOENT, "/".join(parts))
        return self._device(h, d, parts[3:], "/".join(parts[:3]))

    def _device_entries(self, h: Host, d: Device) -> list:
        names = ["vendor", "device", "class", "subsystem_vendor", "subsystem_device", "revision",
                 "driver_override", "uevent"]
        if d.driver is not None:
            names.append("driver")
        if h.trust_abi == "trust":
            names.append("trust")
        elif h.trust_abi == "trust_policy":
            names.append("trust_policy")
        if h.host_connect_visible(d):
            names.append("authenticated")
        if h.tsm_dir_visible(d):
            names.append("tsm")
        if d.physfn is not None:
            names.append("physfn")
        if d.vfs:
            names.extend(["sriov_numvfs", "sriov_totalvfs"])
            names.extend("virtfn%d" % i for i in range(len(d.vfs)))
        return names

    def _tsm_entries(self, h: Host, d: Device) -> list:
        names = []
        if h.host_connect_visible(d):
            names.extend(["connect", "disconnect"])
        if h.host_bound_visible(d):
            names.extend(["dsm", "bound"])
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
                return Dir(lambda: self._tsm_entries(h, d))
            if len(rest) != 2 or rest[1] not in self._tsm_entries(h, d):
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
        if name == "driver":
            return Link("../../../bus/pci/drivers/%s" % d.driver)
        if name == "driver_override":
            return File(RW, show=lambda: _line(d.driver_override if d.driver_override is not None else "(null)"),
                        store=lambda buf: h.store_driver_override(d, buf), host=h, path=canon)
        if name == "uevent":
            return File(RW, show=lambda: "DRIVER=%s\nPCI_ID=%s:%s\nPCI_SLOT_NAME=%s\n" % (
                d.driver or "", d.vendor[2:].upper(), d.device[2:].upper(), d.bdf) if d.driver else
                "PCI_ID=%s:%s\nPCI_SLOT_NAME=%s\n" % (d.vendor[2:].upper(), d.device[2:].upper(), d.bdf),
                store=lambda buf: None, host=h, path=canon)
        if name == "trust":
            return File(RW, show=lambda: "%d\n" % d.trust, store=lambda buf: h.store_trust(d, buf), host=h, path=canon)
        if name == "trust_policy":
            return File(RW, show=lambda: d.trust_policy + "\n", store=lambda buf: h.store_trust_policy(d, buf), host=h, path=canon)
        if name == "authenticated":
            return File(RO, show=lambda: _line(None if d.connect_tsm is None else "tsm%d" % d.connect_tsm), host=h, path=canon)
        if name == "physfn":
            return Link("../../%s/%s" % (pci_dir(d.physfn), d.physfn))
        if name in ("sriov_numvfs", "sriov_totalvfs"):
            count = len(d.vfs)
            return File(RO, show=lambda: "%d\n" % count, host=h, path=canon)
        if name.startswith("virtfn"):
            vf = d.vfs[int(name[6:])]
            return Link("../../%s/%s" % (pci_dir(vf), vf))
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

    def _bus(self, h: Host, parts: list) -> Node:
        n = len(parts)
        if parts[1] != "pci":
            raise err(errno.ENOENT, "/".join(parts))
        if n == 2:
            return Dir(lambda: ["devices", "drivers"])
        if parts[2] == "devices":
            if n == 3:
                return Dir(lambda: sorted(d.bdf for d in h.present_devices()))
            d = h.devices.get(parts[3])
            if n == 4 and d is not None and d.present:
                return Link("../../../devices/%s/%s" % (pci_dir(d.bdf), d.bdf))
            raise err(errno.ENOENT, "/".join(parts))
        if parts[2] == "drivers":
            if n == 3:
                return Dir(lambda: sorted(h.drivers))
            drv = h.drivers.get(parts[3])
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
            return File(WO, store=lambda buf: None, host=h, path=canon)
        if name == "module" and self._has_module_param(h, drv):
            return Link("../../../../module/%s" % drv.name)
        d = h.devices.get(name)
        if d is not None and d.present and d.driver == drv.name:
            return Link("../../../../devices/%s/%s" % (pci_dir(d.bdf), d.bdf))
        raise err(errno.ENOENT, canon)

    @staticmethod
    def _has_module_param(h: Host, drv: Driver) -> bool:
        return h.trust_abi == "module_param" and drv.modular

    def _module(self, h: Host, parts: list) -> Node:
        n = len(parts)
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
