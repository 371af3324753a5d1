"""The PCI topology of one host: placing devices behind root ports, lookups, and which sysfs
attributes are visible (abi §1a, §1c visibility rules).
"""

from __future__ import annotations

import errno
import itertools
from typing import Optional

from .parse import bdf_parts, c_string, err
from .state import ROOT_PORT_DRIVER, ROOT_PORT_IDS, Device, Driver, HostState


class Topology(HostState):
    """Topology and visibility of a host (a part of ``Host``)."""

    # -- topology -----------------------------------------------------------------------------
    def add_device(self, d: Device) -> Device:
        """Add a device and place it in the PCI hierarchy: an endpoint on bus BB != 00 sits behind
        a root port DDDD:00:NN.0 (one per bus, allocated in order; a VF shares its PF's)."""
        if d.bdf in self.devices:
            raise ValueError("duplicate device %s" % d.bdf)
        dom, bus, _, _ = bdf_parts(d.bdf)
        self.devices[d.bdf] = d
        if d.kind == "root_port" or d.rp is not None:
            return d
        if d.physfn is not None and d.physfn in self.devices:
            d.rp = self.devices[d.physfn].rp
        elif bus != 0:
            d.rp = self._root_port_for(dom, bus)
        return d

    def _root_port_for(self, dom: str, bus: int) -> str:
        rp = self._root_ports.get((dom, bus))
        if rp is not None:
            return rp
        # Root ports take device numbers 10..1f, then 01..0f, function 0 first [I]; add root-bus
        # endpoints before the others so that their names are never taken (scenario.py does).
        used = {b for b, dd in self.devices.items() if b.startswith(dom + ":00:")}
        order = list(range(0x10, 0x20)) + list(range(0x01, 0x10))
        for fn, devno in itertools.product(range(8), order):
            cand = "%s:00:%02x.%d" % (dom, devno, fn)
            if cand not in used:
                break
        else:  # pragma: no cover - 248 root ports per domain
            raise ValueError("no free root port slot in domain %s" % dom)
        if ROOT_PORT_DRIVER not in self.drivers:
            self.drivers[ROOT_PORT_DRIVER] = Driver(ROOT_PORT_DRIVER, modular=False)
        self.devices[cand] = Device(bdf=cand, pf0=False, kind="root_port", preferred_driver=ROOT_PORT_DRIVER,
                                    driver=ROOT_PORT_DRIVER, **ROOT_PORT_IDS)
        self._root_ports[(dom, bus)] = cand
        return cand

    # -- lookups ----------------------------------------------------------------------------
    def tsm_registered(self, mode: str) -> bool:
        return any(t.present and t.mode == mode for t in self.tsms.values())

    def present_devices(self) -> list[Device]:
        return [d for d in self.devices.values() if d.present]

    def endpoints(self) -> list[Device]:
        return [d for d in self.devices.values() if d.kind == "endpoint"]

    def dev(self, bdf: str) -> Device:
        d = self.devices.get(bdf)
        if d is None or not d.present:
            raise err(errno.ENODEV, "no such device %s" % bdf)
        return d

    def find_device(self, buf: str) -> Optional[Device]:
        """``bus_find_device_by_name()``: sysfs_streq against every PCI device name."""
        name = c_string(buf)
        if name.endswith("\n"):
            name = name[:-1]
        d = self.devices.get(name)
        return d if d is not None and d.present else None

    def guest_attrs_visible(self, d: Device) -> bool:
        """abi §1c: visible when >= 1 devsec TSM is registered and the device has DEVCAP_TEE. Not
        in mainline (v7.3-rc7: a registered devsec TSM shows nothing, abi "Two profiles")."""
        return self.kernel == "oot" and d.tee and self.tsm_registered("devsec")

    def _dsm_of(self, d: Device) -> Optional[Device]:
        if d.connect_tsm is not None:
            return d
        if d.link_dsm is not None:
            return self.devices.get(d.link_dsm)
        return None

    def link_group_visible(self, d: Device) -> bool:
        """Mainline pci_tsm_link_group_visible(): a link TSM is registered and the device is PF0
        or a managed sub-function (it has a link context)."""
        if d.kind != "endpoint" or self.kernel == "no_pci_tsm" or not self.tsm_registered("link"):
            return False
        return self.is_pf0(d) or d.link_context

    def is_pf0(self, d: Device) -> bool:
        """is_pci_tsm_pf0(): function 0, not a VF, an endpoint with IDE or TEE."""
        return d.pf0 and d.physfn is None and d.kind == "endpoint"

    def host_connect_visible(self, d: Device) -> bool:
        """abi §1a: connect/disconnect only on PF0 while >= 1 link TSM is registered."""
        return self.link_group_visible(d) and self.is_pf0(d)

    def host_dsm_visible(self, d: Device) -> bool:
        """Mainline pci_tsm_attr_visible() for dsm: PF0, or a sub-function whose DSM has TEE."""
        if not self.link_group_visible(d):
            return False
        if self.is_pf0(d):
            return True
        dsm = self._dsm_of(d)
        return bool(dsm is not None and dsm.tee)

    def host_bound_visible(self, d: Device) -> bool:
        """abi §1a: bound on TEE-capable PF0 and on managed sub-functions of a TEE DSM."""
        if not self.link_group_visible(d):
            return False
        if self.is_pf0(d) and d.tee:
            return True
        dsm = self._dsm_of(d)
        return bool(d.link_context and dsm is not None and dsm.tee)

    def tsm_dir_visible(self, d: Device) -> bool:
        return (self.guest_attrs_visible(d) or self.host_connect_visible(d) or self.host_dsm_visible(d)
                or self.host_bound_visible(d))

    def link_tsm_name_of(self, d: Device) -> Optional[str]:
        """``connect_show()`` of a link context: the TSM of the DSM this function depends on."""
        dsm = self._dsm_of(d)
        if dsm is None or dsm.connect_tsm is None:
            return None
        return "tsm%d" % dsm.connect_tsm

    def sample_busy(self) -> bool:
        """samples/devsec: evidence blobs are read-only while any sample device is connected or
        locked through a sample TSM."""
        for d in self.devices.values():
            for tid in (d.connect_tsm, d.lock_tsm):
                if tid is not None and tid in self.tsms and self.tsms[tid].faux:
                    return True
        return False

    def streams_in_use(self, bridge: str) -> list[Device]:
        return [d for d in self.devices.values() if d.stream is not None and d.host_bridge == bridge]

    def available_streams(self, bridge: str) -> int:
        return self.secure_streams - len(self.streams_in_use(bridge))
