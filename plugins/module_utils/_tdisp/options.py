# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Option defaults and argument-spec fragments shared by the modules, and ``Options`` (private; may change at any time).

The defaults are defined here once; the doc fragment ``coco.tdisp._attributes`` documents
the same values (a unit test compares them).
"""

from __future__ import annotations

import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._abi.names import check_tsm
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.constants import DEFAULT_ENDPOINT
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.bounds import DEFAULT_DEADLINE
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.runlock import DEFAULT_LEASE

SYSFS_ROOT = '/sys'
STATE_DIR = '/var/lib/coco-tdisp'
EVIDENCE_ENDPOINT = DEFAULT_ENDPOINT

# The options every module of the action group takes (module_defaults for group/coco.tdisp.tdisp set them once).
COMMON: t.Dict[str, t.Dict[str, t.Any]] = {
    'sysfs_root': {'type': 'path', 'default': SYSFS_ROOT},
    'state_dir': {'type': 'path', 'default': STATE_DIR},
    'evidence_endpoint': {'type': 'str', 'default': EVIDENCE_ENDPOINT},
}

# The reliability options of the three host modules (docs/reliability.md): not in COMMON, so that
# test_argument_spec_own_entry_wins keeps describing the three shared paths; each module adds them.
RELIABILITY: t.Dict[str, t.Dict[str, t.Any]] = {
    'run': {'type': 'dict', 'options': {
        'id': {'type': 'str'},
        'policy_version': {'type': 'str'},
        'lease': {'type': 'int', 'default': DEFAULT_LEASE},
        'release': {'type': 'bool', 'default': False},
        'break': {'type': 'str'},
    }},
    'deadline': {'type': 'int', 'default': DEFAULT_DEADLINE},
    'rehearsal': {'type': 'bool', 'default': False},
}

# The argument spec of one device_trust device, shared by device_trust's devices and tdisp_device's trust.devices.
TRUST_DEVICE_OPTIONS = {
    'bdf': {'type': 'str', 'required': True},
    'level': {'type': 'raw', 'required': True},
    'driver': {'type': 'str'},
}


def argument_spec(**own: t.Dict[str, t.Any]) -> t.Dict[str, t.Dict[str, t.Any]]:
    """A module's argument spec: every ``COMMON`` option plus its own options.

    Every module of the action group takes every common option, since ``module_defaults`` for
    ``group/coco.tdisp.tdisp`` passes them all to each; an own entry wins over the common one
    (``tdisp_device_info`` reads the ledger only when ``state_dir`` is given, so it has no default)."""
    spec = {name: dict(entry) for name, entry in COMMON.items()}
    spec.update(own)
    return spec


def no_guard() -> None:
    """The default guard: nothing bounds the run (the modules pass ``bounds.Bounds.check``)."""


class Options:
    """Caller options shared by both converge functions.

    ``unverified``: raise a device to tcb without a committed acceptance record (device_trust).
    ``guard``: called before every write; raises TdispError when the run must stop (deadline, parent gone)."""

    def __init__(self, tsm: t.Optional[str] = None, unbind_driver: bool = False, rebind_driver: bool = True,
                 allow_disruptive: bool = False, check_mode: bool = False, unverified: bool = False,
                 guard: t.Callable[[], None] = no_guard) -> None:
        self.tsm = check_tsm(tsm) if tsm is not None else None
        self.unbind_driver = bool(unbind_driver)
        self.rebind_driver = bool(rebind_driver)
        self.allow_disruptive = bool(allow_disruptive)
        self.check_mode = bool(check_mode)
        self.unverified = bool(unverified)
        self.guard = guard

    def but(self, **changes: t.Any) -> 'Options':
        """A copy with some options changed."""
        fields = dict(tsm=self.tsm, unbind_driver=self.unbind_driver, rebind_driver=self.rebind_driver,
                      allow_disruptive=self.allow_disruptive, check_mode=self.check_mode, unverified=self.unverified,
                      guard=self.guard)
        fields.update(changes)
        return Options(**fields)
