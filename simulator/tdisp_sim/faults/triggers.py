"""Scenario triggers: a fault injected automatically when a matching event happens.

``attach(fleet)`` hooks the fleet's trigger rows (``fleet.triggers``, set by the scenario) into
the model through its generic hooks: a listener matches every recorded event against the rows
and queues the matches; a settle hook injects the queued faults once the store or fault that
caused them has completed. The model knows nothing of this module.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Optional

from ..kernel import ERROR, LOCKED, RUN, UNLOCKED, Fleet
from .registry import apply_fault

# Trigger event names (scenario "triggers: on:") derived from the event log.
_TDISP_TRIGGER = {LOCKED: "lock", RUN: "accept", UNLOCKED: "unlock", ERROR: "error"}
TRIGGER_EVENTS = ("lock", "accept", "unlock", "error", "bind", "unbind", "connect", "disconnect",
                  "trust", "trust_policy", "module_trust", "generation", "remove", "add",
                  "evidence_validate")
# Events that no sysfs store settles (the evidence endpoint's): their triggers fire at once, so that
# a kill on evidence_validate (which a module asks right before it accepts or raises trust) lands
# before that write, not after it.
_UNSETTLED = ("evidence_validate",)


@dataclass(slots=True)
class Trigger:
    """A fault injected automatically when a matching event happens (scenario ``triggers``)."""
    host: str                   # host name or glob
    bdf: Optional[str]          # device name or glob; None: any device / host-level events
    on: str                     # one of TRIGGER_EVENTS
    fault: str                  # a fault name (registry.FAULTS)
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


class TriggerRunner:
    """The listener and settle hook that carry out ``fleet.triggers``."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self._pending: list[tuple] = []
        self._firing = False

    def on_event(self, entry: dict) -> None:
        """Fleet listener: queue the triggers an event matches."""
        host = entry["host"]
        if not self.fleet.triggers or host is None:
            return
        event = entry["event"]
        key = _TDISP_TRIGGER.get(entry.get("after")) if event == "tdisp" else event
        if not key:
            return
        for t in self.fleet.triggers:
            if t.matches(host, entry["bdf"], key):
                t.fired += 1
                self._pending.append((t, host, entry["bdf"]))
        if key in _UNSETTLED and self._pending:
            with self.fleet.lock:
                self.fire()

    def fire(self) -> None:
        """Settle hook: inject the faults of triggers matched since the last call (after the store
        or fault that caused them has completed). Called with the fleet lock held."""
        if self._firing or not self._pending:
            return
        self._firing = True
        try:
            while self._pending:
                t, host, bdf = self._pending.pop(0)
                target = bdf if t.bdf is not None else "-"
                self.fleet.record(host, bdf, "trigger", on=t.on, fault=t.fault, args=list(t.args))
                try:
                    apply_fault(self.fleet, host, target, t.fault, [str(a) for a in t.args], run_triggers=False)
                except (OSError, ValueError, KeyError) as e:
                    self.fleet.record(host, bdf, "trigger_failed", fault=t.fault, error=str(e))
        finally:
            self._firing = False


def attach(fleet: Fleet) -> TriggerRunner:
    """Carry out ``fleet.triggers`` from now on (listener + settle hook on the fleet)."""
    runner = TriggerRunner(fleet)
    fleet.listeners.append(runner.on_event)
    fleet.settle_hooks.append(runner.fire)
    return runner
