"""The vocabulary of the conformance tables: worlds (a freshly built simulated host), steps (one
operation on it, returning its outcome) and rows.

A row is ``(id, world, given, step, expected)``: build ``world``, run the ``given`` steps (a step
built with ``must=`` fails the row unless it has that outcome; ``LOCK``/``ACCEPT`` and faults
must succeed), run ``step`` once, and compare its outcome with ``expected``: "one step, one
expected outcome", as tools/testing/devsec/devsec.sh reads. Outcomes: a write is ``"ok"`` or the
errno name; a read is the text read back; the others say below what they return.
"""

from __future__ import annotations

import errno
from typing import Any, Callable, Optional

from tdisp_sim import scenario
from tdisp_sim.faults import apply_fault

from .simtest import GPU2, GUEST, PF0, SAMPLE_HOST, Sysfs, dpath, guest_scenario


# -- worlds ---------------------------------------------------------------------------------------

def _sample(**edit: Any) -> Sysfs:
    """devsec-fresh with one model field changed (the sample's devices are made by the model)."""
    s = Sysfs(scenario.load("devsec-fresh"), SAMPLE_HOST)
    if "doe" in edit:
        s.host.devices[PF0].doe = edit["doe"]
    if "streams" in edit:
        s.host.tsms[0].streams = edit["streams"]
    return s


def _untrusted() -> Sysfs:
    """trust_policy ABI; the unbound TEE GPU sits behind an external-facing port (untrusted)."""
    data = guest_scenario(trust_abi="trust_policy")
    data["devices"][1]["untrusted"] = True
    return Sysfs(scenario.build(data), GUEST)


def _kernel(kernel: str) -> Sysfs:
    """The guest CVM on another kernel profile (mainline v7.3, or no CONFIG_PCI_TSM)."""
    return Sysfs(scenario.build(guest_scenario(kernel=kernel)), GUEST)


def _guest(**top: Any) -> Sysfs:
    return Sysfs(scenario.build(guest_scenario(**top)), GUEST)


WORLDS: dict[str, Callable[[], Sysfs]] = {
    "sample": lambda: Sysfs(scenario.load("devsec-fresh"), SAMPLE_HOST),  # samples/devsec after modprobe
    "sample/no-doe": lambda: _sample(doe=False),          # PF0 without a CMA DOE mailbox
    "sample/1-stream": lambda: _sample(streams=1),        # the link TSM has one stream id
    "guest": _guest,                                      # simtest.guest_scenario(): integer trust ABI
    "guest/v2": lambda: _guest(accept_repeat="v2"),
    "guest/autoprobe": lambda: _guest(modules_autoprobe=True),
    "guest/module_param": lambda: _guest(trust_abi="module_param"),
    "guest/trust_policy": lambda: _guest(trust_abi="trust_policy"),
    "guest/trust_policy-untrusted": _untrusted,
    "guest/none": lambda: _guest(trust_abi="none"),
    "guest/mainline": lambda: _kernel("mainline"),
    "mainline-host": lambda: Sysfs(scenario.load("mainline-7.3"), "mainline-host"),  # Linux 7.3 host side
    "guest/no-pci-tsm": lambda: _kernel("no_pci_tsm"),
    "guest/trigger": lambda: _guest(triggers=[{"host": "cvm", "bdf": GPU2, "on": "accept", "fault": "error"}]),
}


# -- steps ----------------------------------------------------------------------------------------

class Step:
    must: Optional[Any] = None

    def __call__(self, s: Sysfs) -> Any:  # pragma: no cover - every step overrides it
        raise NotImplementedError

    def __repr__(self) -> str:
        return "%s%r" % (type(self).__name__, tuple(v for k, v in vars(self).items() if k != "must"))


class W(Step):
    """write(2) of ``value`` at ``offset``: "ok" or the errno name."""

    def __init__(self, path: str, value: Any, offset: int = 0, must: Optional[str] = None) -> None:
        self.path, self.value, self.offset, self.must = path, value, offset, must

    def __call__(self, s: Sysfs) -> str:
        return s.write(self.path, self.value, self.offset)


class WN(Step):
    """write(2) of raw bytes straight to the view: the byte count it returns."""

    def __init__(self, path: str, data: bytes) -> None:
        self.path, self.data = path, data

    def __call__(self, s: Sysfs) -> int:
        return s.view.write(s.name, self.path, self.data)


class R(Step):
    """read(2): the text (``raw``: the bytes)."""

    def __init__(self, path: str, raw: bool = False) -> None:
        self.path, self.raw = path, raw

    def __call__(self, s: Sysfs) -> Any:
        return s.view.read(s.name, self.path) if self.raw else s.read(self.path)


class X(Step):
    """Whether the path exists."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, s: Sysfs) -> bool:
        return s.exists(self.path)


class LS(Step):
    """The directory listing (``item``: whether it lists that name)."""

    def __init__(self, path: str, item: Optional[str] = None) -> None:
        self.path, self.item = path, item

    def __call__(self, s: Sysfs) -> Any:
        names = s.ls(self.path)
        return names if self.item is None else self.item in names


class LN(Step):
    """readlink(2): the link's target."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, s: Sysfs) -> str:
        return s.link(self.path)


class RES(Step):
    """The canonical path (``up``: that many components removed; ``same``: whether it is the
    canonical path of this other path)."""

    def __init__(self, path: str, up: int = 0, same: Optional[str] = None) -> None:
        self.path, self.up, self.same = path, up, same

    def __call__(self, s: Sysfs) -> Any:
        canon = s.resolve(self.path)
        if self.same is not None:
            return canon == s.resolve(self.same)
        return canon.rsplit("/", self.up)[0] if self.up else canon


class OPEN(Step):
    """open(2) for reading or writing: "ok" or the errno name."""

    def __init__(self, path: str, read: bool = False, write: bool = False) -> None:
        self.path, self.read, self.write = path, read, write

    def __call__(self, s: Sysfs) -> str:
        return s.open_errno(self.path, self.read, self.write)


class F(Step):
    """An injected fault (``bdf`` "-": host-level): "ok" or the errno name the model refuses it with."""

    def __init__(self, bdf: str, fault: str, *args: str, must: Optional[str] = "ok") -> None:
        self.bdf, self.fault, self.args, self.must = bdf, fault, list(args), must

    def __call__(self, s: Sysfs) -> str:
        try:
            apply_fault(s.fleet, s.name, self.bdf, self.fault, self.args)
        except OSError as e:
            return errno.errorcode[e.errno]
        return "ok"


class DEV(Step):
    """A field of the model's device (what no file shows: the TDISP state, the generation...)."""

    def __init__(self, bdf: str, name: str) -> None:
        self.bdf, self.name = bdf, name

    def __call__(self, s: Sysfs) -> Any:
        return getattr(s.dev(self.bdf), self.name)


class PIN(Step):
    """Record the current evidence generation as validated (what netlink ``validate`` does)."""

    def __init__(self, bdf: str) -> None:
        self.bdf = bdf

    def __call__(self, s: Sysfs) -> str:
        d = s.dev(self.bdf)
        d.validated_generation = d.generation
        return "ok"


class LAST(Step):
    """Fields of the host's last logged event named ``event`` (one key: its value)."""

    def __init__(self, event: str, *keys: str) -> None:
        self.event, self.keys = event, keys

    def __call__(self, s: Sysfs) -> Any:
        e = s.events(self.event)[-1]
        values = tuple(e[k] for k in self.keys)
        return values[0] if len(values) == 1 else values


class NTH(Step):
    """A field of the host's ``index``-th logged event (negative: from the end)."""

    def __init__(self, index: int, key: str) -> None:
        self.index, self.key = index, key

    def __call__(self, s: Sysfs) -> Any:
        return s.events()[self.index][self.key]


class SEQ(Step):
    """The fleet's last event sequence number."""

    def __call__(self, s: Sysfs) -> int:
        return s.seq()


class DELTA(Step):
    """How much ``probe`` changes across ``action``."""

    def __init__(self, probe: Step, action: Step) -> None:
        self.probe, self.action = probe, action

    def __call__(self, s: Sysfs) -> int:
        before = self.probe(s)
        self.action(s)
        return self.probe(s) - before


class Kind:
    """An expected outcome that matches any value of a type (the log's float timestamp)."""

    def __init__(self, kind: type) -> None:
        self.kind = kind

    def __eq__(self, other: object) -> bool:
        return isinstance(other, self.kind)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "Kind(%s)" % self.kind.__name__


def LOCK(bdf: str = GPU2, tsm: str = "tsm1") -> tuple:
    """Lock (the TSM holding the lock), which must succeed."""
    return (W(dpath(bdf, "tsm/lock"), tsm, must="ok"),)


def ACCEPT(bdf: str = GPU2) -> tuple:
    """Lock and accept, which must succeed."""
    return LOCK(bdf) + (W(dpath(bdf, "tsm/accept"), "1", must="ok"),)


def run_row(world: str, given: tuple, step: Step) -> Any:
    """Build the world, run the given steps, return the outcome of the step."""
    s = WORLDS[world]()
    for g in given:
        got = g(s)
        if g.must is not None:
            assert got == g.must, "given step %r: %r, not %r" % (g, got, g.must)
    return step(s)
