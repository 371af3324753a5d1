"""The kernel model: TSMs, PCI devices, drivers and the TDISP state machine of one fleet.

This module is the simulator's source of truth and follows ``shared/docs/kernel-abi.md``
(cited below as "abi §N"). It knows nothing about paths or FUSE: ``sysfs.py`` maps paths to
the ``store``/``show`` handlers here, and ``fuse.py`` maps FUSE calls to ``sysfs.py``.

Every store handler checks the kernel's conditions in the kernel's order (abi §9) and raises
``OSError(errno, ...)`` exactly where the kernel's ``store()`` would return that errno.
Every state change and every failed write is logged with a timestamp (``Fleet.log``).
"""

from __future__ import annotations

import errno
import itertools
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

# TDISP interface states (PCIe r7.0 §11; abi §3). The kernel exposes none of them directly.
UNLOCKED = "CONFIG_UNLOCKED"
LOCKED = "CONFIG_LOCKED"
RUN = "RUN"
ERROR = "ERROR"

TRUST_ABIS = ("trust", "trust_policy", "module_param", "none")
TRUST_POLICY_WORDS = ("default", "disabled", "adversary", "full")
# Module trust= words (design A, abi §1c): unknown strings parse to UNSET ("no policy").
MODULE_TRUST_WORDS = ("none", "adversary", "auto", "tcb")
# Effective device trust in design A, ordered: UNSET < NONE < ADVERSARY < AUTO < TCB.
MODULE_TRUST_ORDER = {"unset": 0, "none": 1, "adversary": 2, "auto": 3, "tcb": 4}

_BDF_RE = re.compile(r"^([0-9a-f]{4,8}):([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$")
_WS = " \t\n\v\f\r"


def err(code: int, what: str) -> OSError:
    """An OSError carrying a kernel errno (the message is for the simulator's log only)."""
    return OSError(code, "%s: %s" % (errno.errorcode.get(code, code), what))


# ---------------------------------------------------------------------------------------------
# The kernel's parsers (abi §9: "Consequences worth knowing")
# ---------------------------------------------------------------------------------------------

def sscanf_tsm(buf: str) -> Optional[int]:
    """``sscanf(buf, "tsm%d", &id)``: a literal "tsm", then %d (skips leading white space,
    optional sign, digits); trailing text is ignored. Returns None when it matches nothing."""
    if not buf.startswith("tsm"):
        return None
    m = re.match(r"[+-]?[0-9]+", buf[3:].lstrip(_WS))
    if not m:
        return None
    value = int(m.group(0))
    if not -(2 ** 31) <= value < 2 ** 31:
        return None
    return value


def kstrtobool(buf: str) -> bool:
    """``kstrtobool()``: only the first one or two characters count. Raises EINVAL."""
    if buf:
        c = buf[0]
        if c in "yYtT1":
            return True
        if c in "nNfF0":
            return False
        if c in "oO" and len(buf) > 1:
            if buf[1] in "nN":
                return True
            if buf[1] in "fF":
                return False
    raise err(errno.EINVAL, "not a boolean: %r" % buf)


def kstrtouint(buf: str) -> int:
    """``kstrtouint(buf, 0, ...)`` as sysfs stores use it: digits and one optional trailing
    newline; anything else is EINVAL."""
    text = buf[:-1] if buf.endswith("\n") else buf
    if text.startswith("+"):
        text = text[1:]
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
        return int(text, 16)
    if re.fullmatch(r"0[0-7]*", text):
        return int(text, 8)
    if re.fullmatch(r"[1-9][0-9]*", text):
        return int(text, 10)
    raise err(errno.EINVAL, "not an unsigned integer: %r" % buf)


def sysfs_streq(a: str, b: str) -> bool:
    """``sysfs_streq()``: equal, ignoring one trailing newline on either side."""
    if a.endswith("\n"):
        a = a[:-1]
    if b.endswith("\n"):
        b = b[:-1]
    return a == b


def valid_bdf(bdf: str) -> bool:
    return bool(_BDF_RE.match(bdf))


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------

@dataclass
class Tsm:
    id: int
    mode: str  # link | devsec | none (abi §1b pci_mode)
    present: bool = True

    @property
    def name(self) -> str:
        return "tsm%d" % self.id


@dataclass
class Driver:
    name: str
    modular: bool = True  # a loadable module: has /sys/module/<name>/ (design A trust= lives there)
    # Design A: the module's trust= parameter as written (None: the module has no such
    # parameter exposed). Unknown strings mean UNSET.
    trust_param: Optional[str] = None


@dataclass
class Device:
    bdf: str
    vendor: str
    device: str
    klass: str
    subsystem_vendor: str = "0x0000"
    subsystem_device: str = "0x0000"
    revision: str = "0x00"
    tee: bool = False              # PCI_EXP_DEVCAP_TEE: guest tsm/ attributes visible
    pf0: bool = True               # DSM-capable function 0: host connect/disconnect visible
    physfn: Optional[str] = None   # SR-IOV: the PF of a VF
    vfs: list = field(default_factory=list)
    preferred_driver: Optional[str] = None  # what autoprobe and "rebind" faults bind
    driver: Optional[str] = None
    driver_override: Optional[str] = None
    profile: Optional[str] = None  # evidence profile name (simulator evidence)
    present: bool = True
    # guest side (devsec TSM)
    lock_tsm: Optional[int] = None
    accepted: bool = False
    tdisp: str = UNLOCKED
    validated_generation: Optional[int] = None
    encrypted_mmio_resources: int = 0  # v2 repeated-accept bug: duplicates pile up
    # host side (link TSM)
    connect_tsm: Optional[int] = None
    link_dsm: Optional[str] = None      # PF0 whose link context this function depends on
    bound_tsm: Optional[int] = None     # TDI bound to a VM (done by VFIO, not sysfs)
    # trust
    trust: int = 0                      # trust ABI "trust"
    trust_policy: str = "default"       # trust ABI "trust_policy"
    effective_module_trust: str = "unset"  # trust ABI "module_param", captured at bind
    # evidence
    generation: int = 1

    @property
    def has_context(self) -> bool:
        """The device has a TSM context: locked (guest) or connected/dependent (host)."""
        return self.lock_tsm is not None or self.connect_tsm is not None or self.link_dsm is not None


class Host:
    """One simulated confidential VM: its TSMs, devices, drivers and trust ABI flavour."""

    def __init__(self, fleet: "Fleet", name: str, trust_abi: str = "trust", accept_repeat: str = "idempotent") -> None:
        if trust_abi not in TRUST_ABIS:
            raise ValueError("trust_abi must be one of %s" % ", ".join(TRUST_ABIS))
        if accept_repeat not in ("idempotent", "v2"):
            raise ValueError("accept_repeat must be idempotent or v2")
        self.fleet = fleet
        self.name = name
        self.trust_abi = trust_abi
        self.accept_repeat = accept_repeat
        self.tsms: dict[int, Tsm] = {}
        self.devices: dict[str, Device] = {}
        self.drivers: dict[str, Driver] = {}
        # Faults, keyed by the canonical path of a file relative to the sysfs root.
        self.garbage: dict[str, bytes] = {}          # path -> bytes every read returns
        self.write_faults: dict[str, list] = {}      # path -> [errno, remaining writes (-1: all)]

    # -- lookups ----------------------------------------------------------------------------
    def tsm_registered(self, mode: str) -> bool:
        return any(t.present and t.mode == mode for t in self.tsms.values())

    def present_devices(self) -> list[Device]:
        return [d for d in self.devices.values() if d.present]

    def dev(self, bdf: str) -> Device:
        d = self.devices.get(bdf)
        if d is None or not d.present:
            raise err(errno.ENODEV, "no such device %s" % bdf)
        return d

    def guest_attrs_visible(self, d: Device) -> bool:
        """abi §1c: visible when >= 1 devsec TSM is registered and the device has DEVCAP_TEE."""
        return d.tee and self.tsm_registered("devsec")

    def host_connect_visible(self, d: Device) -> bool:
        """abi §1a: connect/disconnect only on PF0 while >= 1 link TSM is registered."""
        return d.pf0 and d.physfn is None and self.tsm_registered("link")

    def host_bound_visible(self, d: Device) -> bool:
        """abi §1a: dsm/bound on TEE-capable PF0 and on managed sub-functions of a TEE DSM."""
        if not self.tsm_registered("link"):
            return False
        if d.physfn is not None:
            pf = self.devices.get(d.physfn)
            return bool(pf and pf.tee)
        return d.tee or d.pf0

    def tsm_dir_visible(self, d: Device) -> bool:
        return self.guest_attrs_visible(d) or self.host_connect_visible(d) or self.host_bound_visible(d)

    # -- logging ----------------------------------------------------------------------------
    def log(self, bdf: Optional[str], event: str, **detail: Any) -> None:
        self.fleet.record(self.name, bdf, event, **detail)

    # -- transitions used by several handlers -------------------------------------------------
    def _leave_run(self, d: Device, why: str) -> None:
        """Leaving RUN (unlock, ERROR, TSM teardown). The seed thread's integer trust file
        resets to 0 (abi §4); the other ABIs keep their value (design B says trust is
        independent of RUN; design A's trust is per driver module)."""
        if self.trust_abi == "trust" and d.trust != 0:
            self.log(d.bdf, "trust_reset", before=d.trust, after=0, reason=why)
            d.trust = 0

    def _unlock(self, d: Device, why: str) -> None:
        was_run = d.tdisp == RUN or (d.tdisp == ERROR and d.accepted)
        before = d.tdisp
        d.lock_tsm = None
        d.accepted = False
        d.tdisp = UNLOCKED
        d.validated_generation = None
        if was_run or before == ERROR:
            self._leave_run(d, why)
        self.log(d.bdf, "tdisp", before=before, after=UNLOCKED, reason=why)

    def enter_error(self, d: Device, why: str) -> None:
        """A TDISP ERROR (lost SPDM session, IDE link loss, config change). Invisible through
        accept, exactly as in the kernel (abi §7.1): only trust reset and generation show it."""
        if d.tdisp not in (LOCKED, RUN):
            raise err(errno.EINVAL, "%s is %s, not LOCKED or RUN" % (d.bdf, d.tdisp))
        before = d.tdisp
        d.tdisp = ERROR
        d.generation += 1
        if before == RUN:
            self._leave_run(d, "TDISP ERROR")
        self.log(d.bdf, "tdisp", before=before, after=ERROR, reason=why, generation=d.generation)

    def bind_driver(self, d: Device, name: str, how: str) -> None:
        """Driver attach through bind/unbind, autoprobe or a fault; the same kernel rules apply."""
        if d.driver is not None:
            raise err(errno.EBUSY, "%s already bound to %s" % (d.bdf, d.driver))
        if d.driver_override is not None and d.driver_override != name:
            raise err(errno.ENODEV, "driver_override %s does not match %s" % (d.driver_override, name))
        # Trust gates at bind time [V design A device_trust_bind(); design B resolved before
        # probe]. The errno of a refused bind is not in the sources: ENODEV, as when a probe
        # declines (documented as inferred in docs/simulator.md).
        if self.trust_abi == "module_param":
            drv = self.drivers.get(name)
            word = (drv.trust_param if drv else None) or ""
            word = word.strip()
            eff = word if word in MODULE_TRUST_WORDS else "unset"
            if eff != "unset":
                d.effective_module_trust = eff
            if d.effective_module_trust == "none":
                raise err(errno.ENODEV, "driver %s trust=none: bind refused" % name)
        elif self.trust_abi == "trust_policy" and d.trust_policy == "disabled":
            raise err(errno.ENODEV, "trust_policy disabled: bind refused")
        d.driver = name
        self.log(d.bdf, "bind", driver=name, how=how)

    def unbind_driver(self, d: Device, how: str) -> None:
        if d.driver is None:
            raise err(errno.ENODEV, "%s not bound" % d.bdf)
        name = d.driver
        d.driver = None
        self.log(d.bdf, "unbind", driver=name, how=how)

    def _unlock_all_of(self, tsm: Tsm, why: str) -> None:
        for d in self.present_devices():
            if d.lock_tsm == tsm.id:
                self._unlock(d, why)
            if d.connect_tsm == tsm.id:
                self.store_disconnect(d, tsm.name)

    # -- faults (injected through the control interface; each is logged) ------------------------
    def fault_error(self, d: Device) -> None:
        self.enter_error(d, "fault: interface error")

    def fault_generation(self, d: Device, count: int = 1) -> None:
        d.generation += count
        self.log(d.bdf, "generation", after=d.generation, reason="fault: evidence changed")

    def fault_rebind(self, d: Device, driver: Optional[str] = None) -> None:
        name = driver or d.preferred_driver
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

    def fault_remove(self, d: Device) -> None:
        if d.lock_tsm is not None:
            self._unlock(d, "hot-remove")
        if d.driver is not None:
            self.unbind_driver(d, "hot-remove")
        d.present = False
        self.log(d.bdf, "remove")

    def fault_add(self, d: Device) -> None:
        if d.present:
            raise err(errno.EEXIST, "%s is present" % d.bdf)
        d.present = True
        d.generation += 1
        self.log(d.bdf, "add")

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

    # -- store handlers: guest side (abi §1c, order per abi §9) ------------------------------------
    def store_lock(self, d: Device, buf: str) -> None:
        tsm_id = sscanf_tsm(buf)
        if tsm_id is None:
            raise err(errno.EINVAL, "lock: %r is not tsm<N>" % buf)
        if d.has_context:
            raise err(errno.EBUSY, "lock: %s already has a TSM context" % d.bdf)
        tsm = self.tsms.get(tsm_id)
        if tsm is None or not tsm.present or tsm.mode != "devsec":
            raise err(errno.ENXIO, "lock: tsm%d is not a devsec TSM" % tsm_id)
        if d.driver is not None:
            raise err(errno.EBUSY, "lock: driver %s is bound" % d.driver)
        d.lock_tsm = tsm_id
        d.accepted = False
        d.tdisp = LOCKED
        d.generation += 1  # the TSM gathers fresh evidence for the new TDISP session
        self.log(d.bdf, "tdisp", before=UNLOCKED, after=LOCKED, tsm=tsm.name, generation=d.generation)

    def store_unlock(self, d: Device, buf: str) -> None:
        holder = d.lock_tsm
        if holder is None or not sysfs_streq(buf, "tsm%d" % holder):
            raise err(errno.EINVAL, "unlock: %r is not the lock holder" % buf)
        if d.driver is not None:
            raise err(errno.EBUSY, "unlock: driver %s is bound" % d.driver)
        self._unlock(d, "unlock")

    def store_accept(self, d: Device, buf: str) -> None:
        if not kstrtobool(buf):
            raise err(errno.EINVAL, "accept: there is no 'unaccept' verb")
        if d.lock_tsm is None:
            raise err(errno.EINVAL, "accept: %s is not locked" % d.bdf)
        if d.driver is not None:
            raise err(errno.EBUSY, "accept: driver %s is bound" % d.driver)
        if d.accepted:
            if self.accept_repeat == "idempotent":
                self.log(d.bdf, "accept_noop", state=d.tdisp)
                return
            # v2 (abi §7.4): accept runs again and duplicates the encrypted MMIO resources.
            d.encrypted_mmio_resources += 1
            self.log(d.bdf, "accept_repeated", duplicates=d.encrypted_mmio_resources, state=d.tdisp)
            return
        if d.validated_generation is not None and d.validated_generation != d.generation:
            raise err(errno.EAGAIN, "accept: evidence generation %d changed since validate (%d)"
                      % (d.generation, d.validated_generation))
        if d.tdisp != LOCKED:
            # The TSM's run step fails: START_INTERFACE is rejected unless CONFIG_LOCKED.
            raise err(errno.EIO, "accept: TSM run failed, interface is %s" % d.tdisp)
        d.accepted = True
        d.tdisp = RUN
        d.encrypted_mmio_resources = 1
        self.log(d.bdf, "tdisp", before=LOCKED, after=RUN, generation=d.generation)

    # -- store handlers: host side (abi §1a) ------------------------------------------------------
    def _dependents(self, d: Device) -> list[Device]:
        """Other functions of the slot and the VFs of a PF0 get a link context on connect."""
        dom_bus_dev = d.bdf.rsplit(".", 1)[0]
        out = []
        for o in self.present_devices():
            if o is d:
                continue
            if o.bdf.rsplit(".", 1)[0] == dom_bus_dev or o.physfn == d.bdf:
                out.append(o)
        return out

    def store_connect(self, d: Device, buf: str) -> None:
        tsm_id = sscanf_tsm(buf)
        if tsm_id is None:
            raise err(errno.EINVAL, "connect: %r is not tsm<N>" % buf)
        if d.has_context:
            raise err(errno.EBUSY, "connect: %s already has a TSM context" % d.bdf)
        tsm = self.tsms.get(tsm_id)
        if tsm is None or not tsm.present or tsm.mode != "link":
            raise err(errno.ENXIO, "connect: tsm%d is not a link TSM" % tsm_id)
        if not d.tee:
            raise err(errno.ENXIO, "connect: TSM probe failed (no CMA DOE mailbox)")
        d.connect_tsm = tsm_id
        d.generation += 1
        for o in self._dependents(d):
            if not o.has_context:
                o.link_dsm = d.bdf
        self.log(d.bdf, "connect", tsm=tsm.name, generation=d.generation)

    def store_disconnect(self, d: Device, buf: str) -> None:
        if d.connect_tsm is None:
            raise err(errno.ENXIO, "disconnect: %s is not connected" % d.bdf)
        if not sysfs_streq(buf, "tsm%d" % d.connect_tsm):
            raise err(errno.EINVAL, "disconnect: %r is not tsm%d" % (buf, d.connect_tsm))
        name = "tsm%d" % d.connect_tsm
        d.connect_tsm = None
        d.bound_tsm = None
        for o in self.present_devices():
            if o.link_dsm == d.bdf:
                o.link_dsm = None
                o.bound_tsm = None
        self.log(d.bdf, "disconnect", tsm=name)

    # -- store handlers: driver core --------------------------------------------------------------
    def store_bind(self, drv: Driver, buf: str) -> None:
        name = buf[:-1] if buf.endswith("\n") else buf
        d = self.devices.get(name)
        if d is None or not d.present:
            raise err(errno.ENODEV, "bind: no device %r" % name)
        self.bind_driver(d, drv.name, "sysfs")

    def store_unbind(self, drv: Driver, buf: str) -> None:
        name = buf[:-1] if buf.endswith("\n") else buf
        d = self.devices.get(name)
        if d is None or not d.present or d.driver != drv.name:
            raise err(errno.ENODEV, "unbind: %r is not bound to %s" % (name, drv.name))
        self.unbind_driver(d, "sysfs")

    def store_driver_override(self, d: Device, buf: str) -> None:
        text = buf[:-1] if buf.endswith("\n") else buf
        if len(text) >= 4096:
            raise err(errno.EINVAL, "driver_override too long")
        before = d.driver_override
        d.driver_override = text or None
        self.log(d.bdf, "driver_override", before=before, after=d.driver_override)

    # -- store handlers: trust ---------------------------------------------------------------------
    def store_trust(self, d: Device, buf: str) -> None:
        """The seed thread's integer trust file (abi §4; DESIGN fact 6)."""
        level = kstrtouint(buf)
        if level > 3:
            raise err(errno.EINVAL, "trust: %d out of range 0..3" % level)
        in_run = d.tdisp == RUN
        if level == 3 and not in_run:
            raise err(errno.EINVAL, "trust: level 3 needs TDISP RUN (device is %s)" % d.tdisp)
        if level < 3 and in_run:
            raise err(errno.EINVAL, "trust: level %d without private memory while in RUN" % level)
        before = d.trust
        d.trust = level
        self.log(d.bdf, "trust", before=before, after=level)

    def store_trust_policy(self, d: Device, buf: str) -> None:
        """Design B: a word, writable only while the device cannot match or probe."""
        word = next((w for w in TRUST_POLICY_WORDS if sysfs_streq(buf, w)), None)
        if word is None:
            raise err(errno.EINVAL, "trust_policy: unknown word %r" % buf)
        if d.driver is not None:
            raise err(errno.EBUSY, "trust_policy: driver %s is bound" % d.driver)
        before = d.trust_policy
        d.trust_policy = word
        self.log(d.bdf, "trust_policy", before=before, after=word)

    def store_module_trust(self, drv: Driver, buf: str) -> None:
        """Design A: a module parameter (charp); takes effect at the next bind."""
        before = drv.trust_param
        drv.trust_param = buf[:-1] if buf.endswith("\n") else buf
        self.log(None, "module_trust", driver=drv.name, before=before, after=drv.trust_param)


class Fleet:
    """All simulated hosts, one lock, one event log."""

    def __init__(self, log_capacity: int = 200000) -> None:
        self.hosts: dict[str, Host] = {}
        self.lock = threading.RLock()
        self._seq = itertools.count(1)
        self.events: deque = deque(maxlen=log_capacity)
        self.listeners: list[Callable[[dict], None]] = []
        self.started = time.time()

    def add_host(self, name: str, **kw: Any) -> Host:
        if name in self.hosts:
            raise ValueError("duplicate host %s" % name)
        h = Host(self, name, **kw)
        self.hosts[name] = h
        return h

    def host(self, name: str) -> Host:
        h = self.hosts.get(name)
        if h is None:
            raise KeyError("no host %s" % name)
        return h

    def record(self, host: str, bdf: Optional[str], event: str, **detail: Any) -> None:
        entry = {"seq": next(self._seq), "ts": time.time(), "host": host, "bdf": bdf, "event": event}
        entry.update(detail)
        self.events.append(entry)
        for fn in self.listeners:
            fn(entry)

    def events_since(self, seq: int = 0, host: Optional[str] = None) -> list[dict]:
        with self.lock:
            return [e for e in self.events if e["seq"] > seq and (host is None or e["host"] == host)]

    def iter_devices(self) -> Iterable[tuple[Host, Device]]:
        for h in self.hosts.values():
            for d in h.devices.values():
                yield h, d
