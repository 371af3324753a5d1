"""Evidence-endpoint faults: arm and disarm a host's ``evidence_faults`` table (the model's
``EvidenceFaults``), under the fleet lock, logged in the event log. The evidence server reads the
table; see ``tdisp_sim.views.netlink`` for what each fault does."""

from __future__ import annotations

from typing import Any, Optional

from ..kernel import Host


def set_fault(host: Host, kind: str, bdf: Optional[str] = None, value: Any = True) -> None:
    """Arm an evidence fault and log it in the fleet event log.

    ``generation_bump``: ``value`` is a count (-1: every dump; True: 1); ``truncate``: ``value`` is a
    type name or ``"*"`` (True: ``"*"``); both apply to ``bdf`` (None: every device). ``absent``, ``eperm``: host-wide."""
    with host.fleet.lock:
        value = host.evidence_faults.arm(kind, bdf, value)
        host.log(bdf, "evidence_fault", fault=kind, value=value)


def clear_fault(host: Host, kind: str, bdf: Optional[str] = None) -> None:
    """Disarm an evidence fault (``bdf`` None: for every device) and log it."""
    with host.fleet.lock:
        host.evidence_faults.disarm(kind, bdf)
        host.log(bdf, "evidence_fault", fault=kind, value=None)
