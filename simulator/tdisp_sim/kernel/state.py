"""The kernel model's state: constants and the TSM, driver and device records (abi §1, §3).

Plain data. The handlers that change it live in ``topology``, ``tdisp``, ``drivers`` and
``incidents``; ``host.Host`` puts them together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .parse import host_bridge_of

# TDISP interface states (PCIe r7.0 §11; abi §3). The kernel exposes none of them directly.
UNLOCKED = "CONFIG_UNLOCKED"
LOCKED = "CONFIG_LOCKED"
RUN = "RUN"
ERROR = "ERROR"
TDISP_STATES = (UNLOCKED, LOCKED, RUN, ERROR)

TRUST_ABIS = ("trust", "trust_policy", "module_param", "none")
# Kernel profiles: "oot" (devsec-phase2 and the OOT series: pci_mode, guest tsm/ attributes) and
# "mainline" (v7.3-rc7, abi "Two profiles": host side only, no pci_mode, a devsec TSM shows
# nothing). "no_pci_tsm": a kernel built without CONFIG_PCI_TSM (no tsm class, no tsm/ group).
KERNEL_PROFILES = ("oot", "mainline", "no_pci_tsm")
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


@dataclass(slots=True)
class Tsm:
    id: int
    mode: str  # link | devsec | none (abi §1b pci_mode)
    present: bool = True
    # samples/devsec: the faux device that registered this TSM (devsec_link_tsm, devsec_tsm).
    # When set, tsmN/device links to it and the sample's attributes exist (abi §1b).
    faux: Optional[str] = None
    streams: int = DEFAULT_STREAMS  # link TSM stream-id pool (samples/devsec NR_TSM_STREAMS)
    # Registered by the samples/devsec module itself (kernel.modules): its devices' evidence is the
    # sample's blobs. A scenario's own faux TSMs (devsec-sample) serve profile-built evidence.
    blobs: bool = False

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
    # The module is loaded (modprobe) and the driver registered; an unloaded driver matches and
    # binds nothing and has no bus/pci/drivers/<name> or /sys/module/<name> directory.
    loaded: bool = True


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
    bridge: Optional[str] = None   # host bridge directory (None: pciDDDD:00, the root bus is 00)
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
    trust_policy: str = "default"       # trust ABI "trust_policy": the requested policy
    active_trust: str = "disabled"      # design B active level (no sysfs readback), set at bind
    can_match: bool = False             # a driver has matched (dev_can_match): policy read-only
    untrusted: bool = False             # behind an external-facing port (pci_dev::untrusted)
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
    def host_bridge(self) -> str:
        """The host bridge directory the device sits under (pciDDDD:BB of its root bus)."""
        return self.bridge or host_bridge_of(self.bdf)

    @property
    def function(self) -> int:
        return int(self.bdf[-1])


class HostState:
    """The attributes ``Host.__init__`` sets, declared once for the parts of ``Host`` (topology,
    tdisp, drivers, incidents); each part reaches the others' methods through ``Host``."""

    name: str
    trust_abi: str
    kernel: str
    accept_repeat: str
    modules_autoprobe: Optional[bool]
    secure_streams: int
    tsms: dict
    devices: dict
    drivers: dict
    garbage: dict
    write_faults: dict
    sample_evidence: dict
    sample_modules: list
    _root_ports: dict


# The device-evidence object types, in type-mask bit order (abi §8): the kernel's own list.
EVIDENCE_TYPES = tuple(["cert%d" % n for n in range(8)] + ["vca", "measurements", "report"])
EVIDENCE_FAULTS = ("generation_bump", "truncate", "absent", "eperm")


class EvidenceFaults(dict):
    """A host's armed evidence-endpoint faults: ``{kind: {bdf or "*": value}}`` for the per-device
    kinds (``generation_bump``: a count, -1 for every dump; ``truncate``: a type name or ``"*"``),
    ``{kind: True}`` for the host-wide ones (``absent``, ``eperm``). The fault layer arms and
    disarms them; the evidence server reads them (and uses up ``generation_bump`` counts)."""

    def arm(self, kind: str, bdf: Optional[str] = None, value: object = True) -> object:
        """Arm ``kind``; returns the value stored. ValueError for an unknown kind or bad value."""
        if kind not in EVIDENCE_FAULTS:
            raise ValueError("unknown evidence fault %r (known: %s)" % (kind, ", ".join(EVIDENCE_FAULTS)))
        if kind in ("generation_bump", "truncate"):
            if kind == "generation_bump" and value is True:
                value = 1
            if kind == "generation_bump" and (isinstance(value, bool) or not isinstance(value, int) or value == 0 or value < -1):
                raise ValueError("generation_bump takes a count >= 1, or -1 for every dump")
            if kind == "truncate" and value is not True and value != "*" and value not in EVIDENCE_TYPES:
                raise ValueError("truncate takes an evidence type name or '*'")
            self.setdefault(kind, {})[bdf or "*"] = "*" if value is True else value
        else:
            self[kind] = bool(value)
        return value

    def disarm(self, kind: str, bdf: Optional[str] = None) -> None:
        """Disarm ``kind`` (``bdf`` None: for every device). ValueError for an unknown kind."""
        if kind not in EVIDENCE_FAULTS:
            raise ValueError("unknown evidence fault %r" % kind)
        if kind in ("generation_bump", "truncate") and bdf is not None:
            self.get(kind, {}).pop(bdf, None)
        else:
            self.pop(kind, None)

    def flag(self, kind: str) -> bool:
        """A host-wide fault (``absent``, ``eperm``) is armed."""
        return bool(self.get(kind))

    def for_device(self, kind: str, bdf: str) -> object:
        """The value of a per-device fault for ``bdf`` (its own entry, else ``"*"``), or None."""
        per = self.get(kind) or {}
        if bdf in per:
            return per[bdf]
        return per.get("*")

    def take_bump(self, bdf: str) -> bool:
        """Whether this dump of ``bdf`` bumps the generation; uses up one count."""
        per = self.get("generation_bump") or {}
        key = bdf if bdf in per else ("*" if "*" in per else None)
        if key is None:
            return False
        count = per[key]
        if count > 0:
            count -= 1
            if count == 0:
                del per[key]
            else:
                per[key] = count
        return True
