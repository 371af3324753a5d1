"""One simulated confidential VM: its state and the handlers of its parts put together."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from .drivers import DriverCore
from .incidents import Incidents
from .modules import Modules
from .state import DEFAULT_STREAMS, KERNEL_PROFILES, TRUST_ABIS, Device, Driver, EvidenceFaults, Tsm
from .tdisp import TdispMachine
from .topology import Topology

if TYPE_CHECKING:  # pragma: no cover - a back-reference for type checkers only
    from .fleet import Fleet


class Host(Topology, TdispMachine, DriverCore, Incidents, Modules):
    """One simulated confidential VM: its TSMs, devices, drivers and trust ABI flavour."""

    def __init__(self, fleet: "Fleet", name: str, trust_abi: str = "trust", accept_repeat: str = "idempotent",
                 modules_autoprobe: Optional[bool] = None, secure_streams: int = DEFAULT_STREAMS,
                 kernel: str = "oot") -> None:
        if trust_abi not in TRUST_ABIS:
            raise ValueError("trust_abi must be one of %s" % ", ".join(TRUST_ABIS))
        if kernel not in KERNEL_PROFILES:
            raise ValueError("kernel must be one of %s" % ", ".join(KERNEL_PROFILES))
        if accept_repeat not in ("idempotent", "v2"):
            raise ValueError("accept_repeat must be idempotent or v2")
        self.fleet = fleet
        self.name = name
        self.trust_abi = trust_abi
        self.kernel = kernel  # the kernel profile: oot | mainline | no_pci_tsm (state.KERNEL_PROFILES)
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
        # Faults of the host's evidence endpoint (armed by tdisp_sim.faults, read by its server).
        self.evidence_faults = EvidenceFaults()
        # samples/devsec common.c: one certs and one transcript blob shared by the sample TSMs.
        self.sample_evidence: dict[str, bytearray] = {"certs": bytearray(), "transcript": bytearray()}
        self.sample_modules: list[str] = []          # loaded samples/devsec modules, in load order
        self._root_ports: dict[tuple, str] = {}      # (domain, bus) -> root port BDF

    def log(self, bdf: Optional[str], event: str, **detail: Any) -> None:
        self.fleet.record(self.name, bdf, event, **detail)

    def kernel_config(self) -> str:
        """The running kernel's build config as /proc/config.gz holds it (the lines the collection
        reads): Debian amd64 7.3 has CONFIG_PCI_TSM=y; cloud-amd64 has it unset (abi §5)."""
        if self.kernel == "no_pci_tsm":
            return "CONFIG_PCI=y\nCONFIG_PCI_DOE=y\n# CONFIG_PCI_TSM is not set\nCONFIG_TSM=y\n"
        return "CONFIG_PCI=y\nCONFIG_PCI_DOE=y\nCONFIG_PCI_IDE=y\nCONFIG_PCI_TSM=y\nCONFIG_TSM=y\n"
