"""The kernel model: TSMs, PCI devices, drivers and the TDISP state machine of one fleet.

This package is the simulator's source of truth and follows ``shared/docs/kernel-abi.md``
(cited as "abi §N"). It imports nothing above it: no paths, no FUSE, no netlink, no faults.
The views (``tdisp_sim.views``) map paths and sockets to the ``store``/``show`` handlers here;
the fault layer (``tdisp_sim.faults``) injects incidents and attaches its triggers through the
fleet's hooks (``Fleet.listeners``, ``Fleet.settle_hooks``).

Every store handler checks the kernel's conditions in the kernel's order (abi §9) and raises
``OSError(errno, ...)`` exactly where the kernel's ``store()`` would return that errno.
Every state change and every failed write is logged with a timestamp (``Fleet.record``).
Behaviour the sources do not pin down is marked "[I]" and listed in docs/simulator.md.

Modules: ``parse`` (the kernel's parsers, PCI names), ``state`` (constants, records, the
evidence fault table), ``topology``, ``tdisp``, ``drivers``, ``incidents``, ``modules`` (the
parts of a host), ``host``, ``fleet``.
"""

from .fleet import Fleet
from .host import Host
from .parse import (bdf_parts, c_string, err, host_bridge_of, kstrtobool, kstrtouint, sscanf_tsm,
                    sysfs_streq, valid_bdf)
from .modules import SAMPLE_MODULES, module_params
from .state import (DEFAULT_STREAMS, DEVICE_DEFAULT_TRUST, KERNEL_PROFILES, ERROR, EVIDENCE_FAULTS, EVIDENCE_MAX_SIZE,
                    EVIDENCE_TYPES, LOCKED, MODULE_TRUST_ORDER, MODULE_TRUST_WORDS, PAGE_SIZE,
                    ROOT_PORT_DRIVER, ROOT_PORT_IDS, RUN, TDISP_STATES, TRUST_ABIS, TRUST_POLICY_WORDS,
                    UNLOCKED, Device, Driver, EvidenceFaults, Tsm)

__all__ = [
    "Fleet", "Host", "Device", "Driver", "Tsm", "EvidenceFaults",
    "bdf_parts", "c_string", "err", "host_bridge_of", "kstrtobool", "kstrtouint", "sscanf_tsm",
    "sysfs_streq", "valid_bdf",
    "DEFAULT_STREAMS", "DEVICE_DEFAULT_TRUST", "KERNEL_PROFILES", "SAMPLE_MODULES", "module_params", "ERROR", "EVIDENCE_FAULTS", "EVIDENCE_MAX_SIZE",
    "EVIDENCE_TYPES", "LOCKED", "MODULE_TRUST_ORDER", "MODULE_TRUST_WORDS", "PAGE_SIZE",
    "ROOT_PORT_DRIVER", "ROOT_PORT_IDS", "RUN", "TDISP_STATES", "TRUST_ABIS", "TRUST_POLICY_WORDS",
    "UNLOCKED",
]
