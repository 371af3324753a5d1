"""What happens to a host outside any sysfs write: a TDISP ERROR, an evidence change, a driver
rebinding itself, a TSM going away or coming back, hot-remove and hot-add, and the per-file
fault tables (garbage reads, injected write errnos). The fault layer (``tdisp_sim.faults``)
calls these; each is logged.
"""

from __future__ import annotations

import errno
from typing import Optional

from .parse import err
from .state import UNLOCKED, Device, HostState


class Incidents(HostState):
    """Injected events of a host (a part of ``Host``)."""

    # -- faults (injected through the control interface; each is logged) ------------------------
    def fault_error(self, d: Device) -> None:
        self.enter_error(d, "fault: interface error")

    def fault_generation(self, d: Device, count: int = 1) -> None:
        d.generation += count
        self.log(d.bdf, "generation", after=d.generation, reason="fault: evidence changed")

    def fault_rebind(self, d: Device, driver: Optional[str] = None) -> None:
        name = driver or d.preferred_driver or d.driver_override
        if not name:
            raise err(errno.EINVAL, "%s has no driver to rebind" % d.bdf)
        self.bind_driver(d, name, "fault: driver rebound itself")

    def fault_tsm_remove(self, tsm_id: int) -> None:
        tsm = self.tsms.get(tsm_id)
        if tsm is None or not tsm.present:
            raise err(errno.ENOENT, "no registered tsm%d" % tsm_id)
        self._unlock_all_of(tsm, "TSM unregistered")
        tsm.present = False
        self.log(None, "tsm_unregister", tsm=tsm.name)

    def fault_tsm_restore(self, tsm_id: int) -> None:
        tsm = self.tsms.get(tsm_id)
        if tsm is None or tsm.present:
            raise err(errno.ENOENT, "no unregistered tsm%d" % tsm_id)
        tsm.present = True
        self.log(None, "tsm_register", tsm=tsm.name, uevent="change")

    def _functions_of_removal(self, d: Device) -> list[Device]:
        """Hot-removing a PF removes its VFs with it [I: the VFs cannot outlive their PF]."""
        out = [d]
        for vf in d.vfs:
            v = self.devices.get(vf)
            if v is not None and v.present:
                out.insert(0, v)
        return out

    def take_down(self, f: Device, why: str) -> None:
        """What pci_stop_and_remove_bus_device() does to a function first: its TSM contexts go and
        its driver is unbound."""
        if f.connect_tsm is not None:
            self._disconnect(f, why)
        if f.lock_tsm is not None:
            self._unlock(f, why)
        if f.driver is not None:
            self.unbind_driver(f, why)

    def fault_remove(self, d: Device) -> None:
        if d.kind != "endpoint":
            raise err(errno.EINVAL, "%s is a %s" % (d.bdf, d.kind))
        for f in self._functions_of_removal(d):
            self.take_down(f, "hot-remove")
            f.link_dsm = None
            f.bound_tsm = None
            f.present = False
            self.log(f.bdf, "remove")

    def fault_add(self, d: Device) -> None:
        if d.present:
            raise err(errno.EEXIST, "%s is present" % d.bdf)
        group = [d] + [self.devices[v] for v in d.vfs if v in self.devices and not self.devices[v].present]
        for f in group:
            f.present = True
            f.generation += 1
            f.tdisp = UNLOCKED
            f.accepted = False
            self.log(f.bdf, "add", generation=f.generation)
            # A hot-added device is probed like at boot unless autoprobe is switched off [I].
            if self.modules_autoprobe is not False:
                self.autoprobe(f, "hot-add autoprobe")

    def fault_garbage(self, path: str, data: Optional[bytes]) -> None:
        if data is None:
            self.garbage.pop(path, None)
        else:
            self.garbage[path] = data
        self.log(None, "garbage", path=path, data=None if data is None else data.hex())

    def fault_write_errno(self, path: str, code: Optional[int], count: int = 1) -> None:
        if code is None:
            self.write_faults.pop(path, None)
        else:
            self.write_faults[path] = [code, count]
        self.log(None, "write_fault", path=path, errno=None if code is None else errno.errorcode.get(code, code), count=count)

    def take_write_fault(self, path: str) -> Optional[int]:
        f = self.write_faults.get(path)
        if not f:
            return None
        code, remaining = f
        if remaining > 0:
            f[1] -= 1
            if f[1] == 0:
                del self.write_faults[path]
        return code
