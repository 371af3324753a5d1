"""The kernel model: TSMs, PCI devices, drivers and the TDISP state machine of one fleet.

This module is the simulator's source of truth and follows ``shared/docs/kernel-abi.md``
(cited below as "abi §N"). It knows nothing about paths or FUSE: ``sysfs.py`` maps paths to
the ``store``/``show`` handlers here, and ``fuse.py`` maps FUSE calls to ``sysfs.py``.

Every store handler checks the kernel's conditions in the kernel's order (abi §9) and raises
``OSError(errno, ...)`` exactly where the kernel's ``store()`` would return that errno.
Every state change and every failed write is logged with a timestamp (``Fleet.log``).
Behaviour the sources do not pin down is marked "[I]" here and listed in docs/simulator.md.
"""

from __future__ import annotations

import errno
import fnmatch
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
TDISP_STATES = (UNLOCKED, LOCKED, RUN, ERROR)

TRUST_ABIS = ("trust", "trust_policy", "module_param", "none")
TRUST_POLICY_WORDS = ("default", "disabled", "adversary", "full")
# Module trust= words (design A, abi §1c): unknown strings parse to UNSET ("no policy").
MODULE_TRUST_WORDS = ("none", "adversary", "auto", "tcb")
# Effective device trust in design A, ordered: UNSET < NONE < ADVERSARY < AUTO < TCB.
MODULE_TRUST_ORDER = {"unset": 0, "none": 1, "adversary": 2, "auto": 3, "tcb": 4}
# Design A: a device starts at DEVICE_DEFAULT_TRUST (AUTO unless CONFIG_DEVICE_TRUST_*), and a
# module's trust= starts at the same default unless the module core requires trust (NONE).
DEVICE_DEFAULT_TRUST = "auto"

# samples/devsec: NR_TSM_STREAMS per link TSM, and available_secure_streams starts at 4 per host
# bridge (abi §1a; samples/devsec/link_tsm.c).
DEFAULT_STREAMS = 4
EVIDENCE_MAX_SIZE = 16 * 1024 * 1024  # samples/devsec certs/transcript (abi §1b)
PAGE_SIZE = 4096

# The root port every endpoint on a non-root bus sits behind [I: the guest topology of a QEMU
# q35 CVM; the devsec sample's emulated root ports have ids the sources do not give].
ROOT_PORT_IDS = {"vendor": "0x1b36", "device": "0x000c", "klass": "0x060400",
                 "subsystem_vendor": "0x1b36", "subsystem_device": "0x0000"}
ROOT_PORT_DRIVER = "pcieport"

_BDF_RE = re.compile(r"^([0-9a-f]{4,8}):([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$")
_WS = " \t\n\v\f\r"


def err(code: int, what: str) -> OSError:
    """An OSError carrying a kernel errno (the message is for the simulator's log only)."""
    return OSError(code, "%s: %s" % (errno.errorcode.get(code, code), what))


# ---------------------------------------------------------------------------------------------
# The kernel's parsers (abi §9: "Consequences worth knowing")
# ---------------------------------------------------------------------------------------------

def c_string(buf: str) -> str:
    """What C string functions see of a sysfs write buffer: everything before the first NUL."""
    nul = buf.find("\0")
    return buf if nul < 0 else buf[:nul]


def sscanf_tsm(buf: str) -> Optional[int]:
    """``sscanf(buf, "tsm%d", &id)`` as lib/vsprintf.c's vsscanf() does it: a literal "tsm"
    (no leading white space allowed), then %d: white space skipped, an optional '-' (vsscanf
    does not accept '+'), digits; trailing text is ignored. The value is parsed without overflow
    detection and stored in an int (wraps to 32 bits). Returns None when nothing matched."""
    buf = c_string(buf)
    if not buf.startswith("tsm"):
        return None
    m = re.match(r"-?[0-9]+", buf[3:].lstrip(_WS))
    if not m:
        return None
    value = int(m.group(0)) % (1 << 32)
    return value - (1 << 32) if value >= (1 << 31) else value


def kstrtobool(buf: str) -> bool:
    """``kstrtobool()``: only the first one or two characters count. Raises EINVAL."""
    buf = c_string(buf)
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
    """``kstrtouint(buf, 0, ...)`` as sysfs stores use it: an optional '+', a 0x/0 radix prefix,
    digits and one optional trailing newline; anything else is EINVAL; above UINT_MAX ERANGE."""
    buf = c_string(buf)
    text = buf[:-1] if buf.endswith("\n") else buf
    if text.startswith("+"):
        text = text[1:]
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
        value = int(text, 16)
    elif re.fullmatch(r"0[0-7]*", text):
        value = int(text, 8)
    elif re.fullmatch(r"[1-9][0-9]*", text):
        value = int(text, 10)
    else:
        raise err(errno.EINVAL, "not an unsigned integer: %r" % buf)
    if value > 0xFFFFFFFF:
        raise err(errno.ERANGE, "out of range for unsigned int: %r" % buf)
    return value


def sysfs_streq(a: str, b: str) -> bool:
    """``sysfs_streq()``: equal, ignoring one trailing newline on either side."""
    a, b = c_string(a), c_string(b)
    if a.endswith("\n"):
        a = a[:-1]
    if b.endswith("\n"):
        b = b[:-1]
    return a == b


def valid_bdf(bdf: str) -> bool:
    return bool(_BDF_RE.match(bdf))


def bdf_parts(bdf: str) -> tuple[str, int, int, int]:
    """(domain, bus, device, function) of a PCI name."""
    m = _BDF_RE.match(bdf)
    if not m:
        raise ValueError("not a PCI device name: %r" % bdf)
    return m.group(1), int(m.group(2), 16), int(m.group(3), 16), int(m.group(4), 16)


def host_bridge_of(bdf: str) -> str:
    """The host bridge directory a device sits under: pciDDDD:00 (the root bus is 00)."""
    return "pci%s:00" % bdf.split(":", 1)[0]


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------

@dataclass(slots=True)
class Tsm:
    id: int
    mode: str  # link | devsec | none (abi §1b pci_mode)
    present: bool = True
    # samples/devsec: the faux device that registered this TSM (devsec_link_tsm, devsec_tsm).
    # When set, tsmN/device links to it and the sample's attributes exist (abi §1b).
    faux: Optional[str] = None
    streams: int = DEFAULT_STREAMS  # link TSM stream-id pool (samples/devsec NR_TSM_STREAMS)

    @property
    def name(self) -> str:
        return "tsm%d" % self.id


@dataclass(slots=True)
class Driver:
    name: str
    modular: bool = True  # a loadable module: has /sys/module/<name>/ (design A trust= lives there)
    # Design A: the module's trust= parameter as written (None: never written, shows "(null)").
    # Unknown strings mean UNSET.
    trust_param: Optional[str] = None
    # The driver's id table matches only through driver_override (samples/devsec devsec_pci).
    override_only: bool = False


@dataclass(slots=True)
class Device:
    bdf: str
    vendor: str
    device: str
    klass: str
    subsystem_vendor: str = "0x0000"
    subsystem_device: str = "0x0000"
    revision: str = "0x00"
    tee: bool = False              # PCI_EXP_DEVCAP_TEE: guest tsm/ attributes visible
    pf0: bool = True               # is_pci_tsm_pf0(): function 0 with IDE/TEE: host connect visible
    physfn: Optional[str] = None   # SR-IOV: the PF of a VF
    vfs: list = field(default_factory=list)
    preferred_driver: Optional[str] = None  # the driver whose id table matches (autoprobe, rebind)
    driver: Optional[str] = None
    driver_override: Optional[str] = None
    profile: Optional[str] = None  # evidence profile name (simulator evidence)
    pki: Optional[str] = None      # evidence PKI variant name (simulator evidence)
    present: bool = True
    kind: str = "endpoint"         # endpoint | root_port
    rp: Optional[str] = None       # the root port this device sits behind (None: root bus)
    doe: bool = True               # has a CMA DOE mailbox: a link TSM's probe succeeds
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
    stream: Optional[tuple] = None      # (host-bridge slot, root-port slot, endpoint slot, tsm stream id)
    # trust
    trust: int = 0                      # trust ABI "trust"
    trust_policy: str = "default"       # trust ABI "trust_policy"
    effective_module_trust: str = DEVICE_DEFAULT_TRUST  # trust ABI "module_param", set at bind
    # evidence
    generation: int = 1

    @property
    def has_context(self) -> bool:
        """The device has a TSM context: locked (guest) or connected/dependent (host)."""
        return self.lock_tsm is not None or self.connect_tsm is not None or self.link_dsm is not None

    @property
    def link_context(self) -> bool:
        return self.connect_tsm is not None or self.link_dsm is not None

    @property
    def function(self) -> int:
        return int(self.bdf[-1])


# Trigger event names (scenario "triggers: on:") derived from the event log.
_TDISP_TRIGGER = {LOCKED: "lock", RUN: "accept", UNLOCKED: "unlock", ERROR: "error"}
TRIGGER_EVENTS = ("lock", "accept", "unlock", "error", "bind", "unbind", "connect", "disconnect",
                  "trust", "trust_policy", "module_trust", "generation", "remove", "add")


@dataclass(slots=True)
class Trigger:
    """A fault injected automatically when a matching event happens (scenario ``triggers``)."""
    host: str                   # host name or glob
    bdf: Optional[str]          # device name or glob; None: any device / host-level events
    on: str                     # one of TRIGGER_EVENTS
    fault: str                  # a fault name (faults.py)
    args: list = field(default_factory=list)
    times: int = 1              # how often it fires (0: every time)
    fired: int = 0

    def matches(self, host: str, bdf: Optional[str], key: str) -> bool:
        if key != self.on or (self.times and self.fired >= self.times):
            return False
        if not fnmatch.fnmatchcase(host, self.host):
            return False
        if self.bdf is not None and (bdf is None or not fnmatch.fnmatchcase(bdf, self.bdf)):
            return False
        return True


class Host:
    """One simulated confidential VM: its TSMs, devices, drivers and trust ABI flavour."""

    def __init__(self, fleet: "Fleet", name: str, trust_abi: str = "trust", accept_repeat: str = "idempotent",
                 modules_autoprobe: Optional[bool] = None, secure_streams: int = DEFAULT_STREAMS) -> None:
        if trust_abi not in TRUST_ABIS:
            raise ValueError("trust_abi must be one of %s" % ", ".join(TRUST_ABIS))
        if accept_repeat not in ("idempotent", "v2"):
            raise ValueError("accept_repeat must be idempotent or v2")
        self.fleet = fleet
        self.name = name
        self.trust_abi = trust_abi
        self.accept_repeat = accept_repeat
        # v2 05/19: /sys/module/module/parameters/modules_autoprobe (None: the knob is absent)
        self.modules_autoprobe = modules_autoprobe
        self.secure_streams = secure_streams  # available_secure_streams per host bridge at boot
        self.tsms: dict[int, Tsm] = {}
        self.devices: dict[str, Device] = {}
        self.drivers: dict[str, Driver] = {}
        # Faults, keyed by the canonical path of a file relative to the sysfs root.
        self.garbage: dict[str, bytes] = {}          # path -> bytes every read returns
        self.write_faults: dict[str, list] = {}      # path -> [errno, remaining writes (-1: all)]
        # samples/devsec common.c: one certs and one transcript blob shared by the sample TSMs.
        self.sample_evidence: dict[str, bytearray] = {"certs": bytearray(), "transcript": bytearray()}
        self._root_ports: dict[tuple, str] = {}      # (domain, bus) -> root port BDF

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
        """abi §1c: visible when >= 1 devsec TSM is registered and the device has DEVCAP_TEE."""
        return d.tee and self.tsm_registered("devsec")

    def _dsm_of(self, d: Device) -> Optional[Device]:
        if d.connect_tsm is not None:
            return d
        if d.link_dsm is not None:
            return self.devices.get(d.link_dsm)
        return None

    def link_group_visible(self, d: Device) -> bool:
        """Mainline pci_tsm_link_group_visible(): a link TSM is registered and the device is PF0
        or a managed sub-function (it has a link context)."""
        if d.kind != "endpoint" or not self.tsm_registered("link"):
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
        return [d for d in self.devices.values() if d.stream is not None and host_bridge_of(d.bdf) == bridge]

    def available_streams(self, bridge: str) -> int:
        return self.secure_streams - len(self.streams_in_use(bridge))

    # -- logging ----------------------------------------------------------------------------
    def log(self, bdf: Optional[str], event: str, **detail: Any) -> None:
        self.fleet.record(self.name, bdf, event, **detail)

    # -- transitions used by several handlers -------------------------------------------------
    def _reset_trust(self, d: Device, why: str) -> None:
        """Leaving the locked/accepted state (unlock, ERROR, TSM teardown, hot-remove). The seed
        thread's integer trust file resets to 0 (abi §4 "falls out of RUN"; abi §9 "unlock ...
        trust back to 0 where that ABI exists"); the other ABIs keep their value (design B says
        trust is independent of RUN; design A's trust is per driver module)."""
        if self.trust_abi == "trust" and d.trust != 0:
            self.log(d.bdf, "trust_reset", before=d.trust, after=0, reason=why)
            d.trust = 0

    # Kept for callers of the original name.
    _leave_run = _reset_trust

    def _unlock(self, d: Device, why: str) -> None:
        before = d.tdisp
        d.lock_tsm = None
        d.accepted = False
        d.tdisp = UNLOCKED
        d.validated_generation = None
        d.encrypted_mmio_resources = 0
        self.log(d.bdf, "tdisp", before=before, after=UNLOCKED, reason=why)
        self._reset_trust(d, why)

    def enter_error(self, d: Device, why: str) -> None:
        """A TDISP ERROR (lost SPDM session, IDE link loss, config change). Invisible through
        accept, exactly as in the kernel (abi §7.1): only trust reset and generation show it."""
        if d.tdisp not in (LOCKED, RUN):
            raise err(errno.EINVAL, "%s is %s, not LOCKED or RUN" % (d.bdf, d.tdisp))
        before = d.tdisp
        d.tdisp = ERROR
        d.generation += 1
        self.log(d.bdf, "tdisp", before=before, after=ERROR, reason=why, generation=d.generation)
        self._reset_trust(d, "TDISP ERROR")

    def driver_matches(self, d: Device, drv: Driver) -> bool:
        """pci_bus_match(): driver_override wins; otherwise the id table (the scenario's preferred
        driver); an override_only id table matches only through driver_override."""
        if d.driver_override is not None:
            return d.driver_override == drv.name
        return not drv.override_only and d.preferred_driver == drv.name

    def bind_driver(self, d: Device, name: str, how: str) -> None:
        """Driver attach through bind/unbind, autoprobe or a fault; the same kernel rules apply."""
        drv = self.drivers.get(name)
        if drv is None:
            raise err(errno.ENODEV, "no driver %s" % name)
        if d.driver is not None:
            raise err(errno.EBUSY, "%s already bound to %s" % (d.bdf, d.driver))
        if not self.driver_matches(d, drv):
            if d.driver_override is not None:
                raise err(errno.ENODEV, "driver_override %s does not match %s" % (d.driver_override, name))
            raise err(errno.ENODEV, "%s does not match %s" % (name, d.bdf))
        # Trust gates at bind time [V design A device_trust_bind(); design B resolved before
        # probe]. The errno of a refused bind is not in the sources: ENODEV, as when a probe
        # declines [I] (documented in docs/simulator.md).
        if self.trust_abi == "module_param" and d.kind == "endpoint":
            # driver_trust(): a built-in driver has the Kconfig default (AUTO [I: the
            # CONFIG_BUILTIN_DEVICE_TRUST_* choice is unknown]); a module never given trust= has
            # module_driver_trust_init()'s DEVICE_DEFAULT_TRUST.
            if not drv.modular or drv.trust_param is None:
                word = DEVICE_DEFAULT_TRUST
            else:
                word = c_string(drv.trust_param)
            # device_trust_bind(): the driver's policy, when set, becomes the device's trust
            # (even when the bind is then refused); unknown words are UNSET (no policy):
            # device_trust_parse() compares with sysfs_streq().
            word = next((w for w in MODULE_TRUST_WORDS if sysfs_streq(word, w)), "unset")
            if word != "unset":
                d.effective_module_trust = word
            if MODULE_TRUST_ORDER[d.effective_module_trust] <= MODULE_TRUST_ORDER["none"]:
                self.log(d.bdf, "bind_refused", driver=name, trust=d.effective_module_trust, how=how)
                raise err(errno.ENODEV, "driver %s trust=none: bind refused" % name)
            # tools/testing/devsec/devsec.sh: with trust=auto a manual bind of the (unlocked) TEE
            # endpoint fails with EBUSY while a devsec TSM is registered [V S15; cause I].
            if (d.effective_module_trust == "auto" and d.tee and self.tsm_registered("devsec")
                    and d.lock_tsm is None):
                self.log(d.bdf, "bind_refused", driver=name, trust="auto", how=how)
                raise err(errno.EBUSY, "driver %s trust=auto: TEE device %s is not locked" % (name, d.bdf))
        elif self.trust_abi == "trust_policy" and d.trust_policy == "disabled":
            self.log(d.bdf, "bind_refused", driver=name, trust_policy="disabled", how=how)
            raise err(errno.ENODEV, "trust_policy disabled: bind refused")
        d.driver = name
        self.log(d.bdf, "bind", driver=name, how=how)

    def unbind_driver(self, d: Device, how: str) -> None:
        if d.driver is None:
            raise err(errno.ENODEV, "%s not bound" % d.bdf)
        name = d.driver
        d.driver = None
        self.log(d.bdf, "unbind", driver=name, how=how)

    def autoprobe(self, d: Device, how: str) -> bool:
        """device_attach(): bind the matching driver if any; failures are swallowed (logged)."""
        if d.driver is not None:
            return False
        name = d.driver_override if d.driver_override is not None else d.preferred_driver
        drv = self.drivers.get(name) if name else None
        if drv is None or not self.driver_matches(d, drv):
            return False
        try:
            self.bind_driver(d, drv.name, how)
        except OSError:
            return False
        return True

    def _unlock_all_of(self, tsm: Tsm, why: str) -> None:
        for d in self.present_devices():
            if d.lock_tsm == tsm.id:
                self._unlock(d, why)
            if d.connect_tsm == tsm.id:
                self._disconnect(d, why)

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

    def fault_remove(self, d: Device) -> None:
        if d.kind != "endpoint":
            raise err(errno.EINVAL, "%s is a %s" % (d.bdf, d.kind))
        for f in self._functions_of_removal(d):
            if f.connect_tsm is not None:
                self._disconnect(f, "hot-remove")
            if f.lock_tsm is not None:
                self._unlock(f, "hot-remove")
            if f.driver is not None:
                self.unbind_driver(f, "hot-remove")
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
        # The evidence generation recorded by netlink 'validate' must still hold (abi §4, Dan,
        # msg 74); the errno of a stale generation is not in the sources: EAGAIN [I].
        if d.validated_generation is not None and d.validated_generation != d.generation:
            raise err(errno.EAGAIN, "accept: evidence generation %d changed since validate (%d)"
                      % (d.generation, d.validated_generation))
        if d.tdisp != LOCKED:
            # The TSM's run step fails: START_INTERFACE is rejected unless CONFIG_LOCKED. The TSM
            # op's errno is not in the sources: EIO [I].
            raise err(errno.EIO, "accept: TSM run failed, interface is %s" % d.tdisp)
        d.accepted = True
        d.tdisp = RUN
        d.encrypted_mmio_resources = 1
        self.log(d.bdf, "tdisp", before=LOCKED, after=RUN, generation=d.generation)

    # -- store handlers: host side (abi §1a) ------------------------------------------------------
    def _dependents(self, d: Device) -> list[Device]:
        """pci_tsm_walk_fns(): the other functions of the slot and the VFs of each of them."""
        slot = d.bdf.rsplit(".", 1)[0]
        out = []
        for o in self.present_devices():
            if o is d or o.kind != "endpoint":
                continue
            if o.bdf.rsplit(".", 1)[0] == slot and o.physfn is None:
                out.append(o)
            elif o.physfn is not None and o.physfn.rsplit(".", 1)[0] == slot:
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
        if not d.doe:
            raise err(errno.ENXIO, "connect: TSM probe failed (no CMA DOE mailbox)")
        # The TSM driver's connect(): samples/devsec allocates a stream id from its pool of 4
        # (EBUSY when exhausted) and an IDE stream at the host bridge (ENOMEM when none is left).
        used_ids = {o.stream[3] for o in self.devices.values() if o.stream is not None and o.connect_tsm == tsm_id}
        free_ids = [i for i in range(tsm.streams) if i not in used_ids]
        if not free_ids:
            raise err(errno.EBUSY, "connect: %s has no free stream id" % tsm.name)
        bridge = host_bridge_of(d.bdf)
        in_bridge = self.streams_in_use(bridge)
        if len(in_bridge) >= self.secure_streams:
            raise err(errno.ENOMEM, "connect: no IDE stream left at %s" % bridge)
        hb_slot = min(set(range(self.secure_streams)) - {o.stream[0] for o in in_bridge})
        rp_slot = min(set(range(self.secure_streams)) - {o.stream[1] for o in in_bridge if o.rp == d.rp})
        d.stream = (hb_slot, rp_slot, 0, free_ids[0])
        d.connect_tsm = tsm_id
        d.generation += 1
        if d.tee:
            for o in self._dependents(d):
                if not o.has_context:
                    o.link_dsm = d.bdf
        self.log(d.bdf, "connect", tsm=tsm.name, generation=d.generation,
                 stream="stream%d.%d.%d" % d.stream[:3])

    def _disconnect(self, d: Device, why: str) -> None:
        name = "tsm%d" % d.connect_tsm
        d.connect_tsm = None
        d.bound_tsm = None
        d.stream = None
        for o in self.devices.values():
            if o.link_dsm == d.bdf:
                o.link_dsm = None
                o.bound_tsm = None
        self.log(d.bdf, "disconnect", tsm=name, reason=why)

    def store_disconnect(self, d: Device, buf: str) -> None:
        if d.connect_tsm is None:
            raise err(errno.ENXIO, "disconnect: %s is not connected" % d.bdf)
        if not sysfs_streq(buf, "tsm%d" % d.connect_tsm):
            raise err(errno.EINVAL, "disconnect: %r is not tsm%d" % (buf, d.connect_tsm))
        self._disconnect(d, "disconnect")

    # -- store handlers: samples/devsec faux devices (abi §1b) --------------------------------------
    def _sample_tdi_target(self, tsm: Tsm, buf: str) -> Device:
        d = self.find_device(buf)
        if d is None:
            raise err(errno.ENODEV, "no PCI device %r" % buf)
        dsm = self._dsm_of(d)
        if dsm is None or dsm.connect_tsm != tsm.id:
            raise err(errno.ENXIO, "%s is not connected to %s" % (d.bdf, tsm.name))
        return d

    def store_tsm_bind(self, tsm: Tsm, buf: str) -> None:
        d = self._sample_tdi_target(tsm, buf)
        if d.bound_tsm is None:
            d.bound_tsm = tsm.id
            self.log(d.bdf, "tdi_bind", tsm=tsm.name)

    def store_tsm_unbind(self, tsm: Tsm, buf: str) -> None:
        d = self._sample_tdi_target(tsm, buf)
        if d.bound_tsm is not None:
            d.bound_tsm = None
            self.log(d.bdf, "tdi_unbind", tsm=tsm.name)

    def store_tsm_request(self, tsm: Tsm, buf: str) -> None:
        d = self._sample_tdi_target(tsm, buf)
        if d.bound_tsm is None:
            raise err(errno.ENXIO, "tsm_request: %s is not a bound TDI" % d.bdf)
        self.log(d.bdf, "tdi_request", tsm=tsm.name)

    def write_sample_evidence(self, which: str, data: bytes, offset: int) -> int:
        """samples/devsec common.c evidence_write(): EFBIG past 16 MiB, EBUSY while busy, a
        1-byte write (at offset 0) resets the blob."""
        if offset + len(data) > EVIDENCE_MAX_SIZE:
            raise err(errno.EFBIG, "%s: %d bytes at %d exceed 16 MiB" % (which, len(data), offset))
        if self.sample_busy():
            raise err(errno.EBUSY, "%s: a sample device is connected or locked" % which)
        blob = self.sample_evidence[which]
        if offset + len(data) > len(blob):
            blob.extend(b"\0" * (offset + len(data) - len(blob)))
        if offset + len(data) == 1:
            blob.clear()
            self.log(None, "sample_evidence", blob=which, size=0)
            return 1
        blob[offset:offset + len(data)] = data
        self.log(None, "sample_evidence", blob=which, size=len(blob))
        return len(data)

    # -- store handlers: driver core --------------------------------------------------------------
    def store_bind(self, drv: Driver, buf: str) -> None:
        """bind_store(): ENODEV unless the named device exists and the driver matches it; then
        the probe's result (EBUSY when already bound, the trust gates)."""
        d = self.find_device(buf)
        if d is None:
            raise err(errno.ENODEV, "bind: no device %r" % buf)
        if not self.driver_matches(d, drv):
            raise err(errno.ENODEV, "bind: %s does not match %s" % (drv.name, d.bdf))
        self.bind_driver(d, drv.name, "sysfs")

    def store_unbind(self, drv: Driver, buf: str) -> None:
        d = self.find_device(buf)
        if d is None or d.driver != drv.name:
            raise err(errno.ENODEV, "unbind: %r is not bound to %s" % (buf, drv.name))
        self.unbind_driver(d, "sysfs")

    def store_drivers_probe(self, buf: str) -> None:
        """bus/pci/drivers_probe: ENODEV for an unknown device; otherwise device_attach(), whose
        probe failures are not reported to the writer."""
        d = self.find_device(buf)
        if d is None:
            raise err(errno.ENODEV, "drivers_probe: no device %r" % buf)
        self.autoprobe(d, "drivers_probe")

    def store_driver_override(self, d: Device, buf: str) -> None:
        """driver_set_override(): EINVAL from PAGE_SIZE-1 bytes; the string ends at the first NUL
        or newline; an empty string (or one starting with a newline) clears the override."""
        if len(buf) >= PAGE_SIZE - 1:
            raise err(errno.EINVAL, "driver_override too long")
        text = c_string(buf)
        nl = text.find("\n")
        if nl >= 0:
            text = text[:nl]
        before = d.driver_override
        d.driver_override = text or None
        self.log(d.bdf, "driver_override", before=before, after=d.driver_override)

    def store_modules_autoprobe(self, buf: str) -> None:
        value = kstrtobool(buf)
        before = self.modules_autoprobe
        self.modules_autoprobe = value
        self.log(None, "modules_autoprobe", before=before, after=value)

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
        """Design A: a module parameter (charp, at most 1024 bytes); takes effect at the next
        bind. The stored string keeps what was written minus one trailing newline [I]."""
        text = c_string(buf)
        if len(text) > 1024:
            raise err(errno.ENOSPC, "trust: parameter longer than 1024 bytes")
        before = drv.trust_param
        drv.trust_param = text[:-1] if text.endswith("\n") else text
        self.log(None, "module_trust", driver=drv.name, before=before, after=drv.trust_param)


class Fleet:
    """All simulated hosts, one lock, one event log."""

    def __init__(self, log_capacity: int = 200000) -> None:
        self.hosts: dict[str, Host] = {}
        self.lock = threading.RLock()
        self._seq = itertools.count(1)
        self.last_seq = 0
        self.events: deque = deque(maxlen=log_capacity)
        self.listeners: list[Callable[[dict], None]] = []
        self.started = time.time()
        # Set by scenario.py: the scenario's name, raw evidence section, inventory groups.
        self.name = "adhoc"
        self.description = ""
        self.evidence_spec: dict = {}
        self.groups: dict[str, list] = {}
        self.host_vars: dict[str, dict] = {}
        self.triggers: list[Trigger] = []
        self._pending: list[tuple] = []
        self._firing = False
        # Bumped by every recorded event: every state change is one, so a cached view of a
        # host's tree is valid while (global_version, host_versions[host]) is unchanged.
        self.global_version = 0
        self.host_versions: dict[str, int] = {}

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

    def record(self, host: Optional[str], bdf: Optional[str], event: str, **detail: Any) -> None:
        seq = next(self._seq)
        self.last_seq = seq
        if host is None:
            self.global_version += 1
        else:
            self.host_versions[host] = self.host_versions.get(host, 0) + 1
        entry = {"seq": seq, "ts": time.time(), "host": host, "bdf": bdf, "event": event}
        entry.update(detail)
        self.events.append(entry)
        for fn in self.listeners:
            fn(entry)
        if self.triggers and host is not None:
            key = _TDISP_TRIGGER.get(detail.get("after")) if event == "tdisp" else event
            for t in self.triggers:
                if key and t.matches(host, bdf, key):
                    t.fired += 1
                    self._pending.append((t, host, bdf))

    def run_triggers(self) -> None:
        """Inject the faults of triggers matched since the last call (after the store or fault
        that caused them has completed). Called with the fleet lock held."""
        if self._firing or not self._pending:
            return
        from .faults import apply_fault  # local import: faults.py imports this module
        self._firing = True
        try:
            while self._pending:
                t, host, bdf = self._pending.pop(0)
                target = bdf if t.bdf is not None else "-"
                self.record(host, bdf, "trigger", on=t.on, fault=t.fault, args=list(t.args))
                try:
                    apply_fault(self, host, target, t.fault, [str(a) for a in t.args], run_triggers=False)
                except (OSError, ValueError, KeyError) as e:
                    self.record(host, bdf, "trigger_failed", fault=t.fault, error=str(e))
        finally:
            self._firing = False

    def events_since(self, seq: int = 0, host: Optional[str] = None) -> list[dict]:
        with self.lock:
            return [e for e in self.events if e["seq"] > seq and (host is None or e["host"] == host)]

    def iter_devices(self) -> Iterable[tuple[Host, Device]]:
        for h in self.hosts.values():
            for d in h.devices.values():
                yield h, d
