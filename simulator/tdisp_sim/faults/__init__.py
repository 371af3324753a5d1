"""The fault layer: the only layer that knows both the kernel model and the views.

``registry`` (``apply_fault``: every named fault, for the control socket and triggers),
``evidence`` (arming the evidence endpoint's faults), ``triggers`` (scenario triggers, attached to
the fleet as a listener and a settle hook).
"""

from .registry import DEFAULT_GARBAGE, FAULTS, FaultError, apply_fault

__all__ = ["DEFAULT_GARBAGE", "FAULTS", "FaultError", "apply_fault"]
