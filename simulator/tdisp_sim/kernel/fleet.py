"""The fleet: all simulated hosts, one lock, one event log, and hooks for the layers above.

The model calls nothing above it. Layers above attach behaviour through two hooks:
``listeners`` (called with every recorded event, under the fleet lock) and ``settle_hooks``
(called by ``settle()``, which the views and the fault layer call once an operation, such as a
sysfs write or an injected fault, has completed). The fault layer's triggers use both.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from typing import Any, Callable, Iterable, Optional

from .host import Host
from .state import Device


class Fleet:
    """All simulated hosts, one lock, one event log."""

    def __init__(self, log_capacity: int = 200000) -> None:
        self.hosts: dict[str, Host] = {}
        self.lock = threading.RLock()
        self._seq = itertools.count(1)
        self.last_seq = 0
        self.events: deque = deque(maxlen=log_capacity)
        self.listeners: list[Callable[[dict], None]] = []
        self.settle_hooks: list[Callable[[], None]] = []
        self.started = time.time()
        # Set by scenario.py: the scenario's name, raw evidence section, inventory groups, and its
        # trigger rows (data here; tdisp_sim.faults.triggers acts on them).
        self.name = "adhoc"
        self.description = ""
        self.evidence_spec: dict = {}
        self.groups: dict[str, list] = {}
        self.host_vars: dict[str, dict] = {}
        self.triggers: list = []
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

    def settle(self) -> None:
        """An operation has completed: run the settle hooks (called with the fleet lock held)."""
        for fn in self.settle_hooks:
            fn()

    def events_since(self, seq: int = 0, host: Optional[str] = None) -> list[dict]:
        with self.lock:
            return [e for e in self.events if e["seq"] > seq and (host is None or e["host"] == host)]

    def iter_devices(self) -> Iterable[tuple[Host, Device]]:
        for h in self.hosts.values():
            for d in h.devices.values():
                yield h, d
