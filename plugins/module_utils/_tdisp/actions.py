# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The actions of a device plan, one class per kind (private; may change at any time).

Each action knows how to ``run`` (write and read back what the kernel took), how to
``predict`` its effect on the device dict (check mode uses the same objects that would run),
what it ``record``s in the ledger once done, and its dict form, the one the modules return::

    {"action": "unbind", "driver": "nvidia", "done": false}
    {"action": "write", "attribute": "tsm/lock", "value": "tsm1", "done": false}
    {"action": "verify_generation", "generation": 7, "done": false}
    {"action": "write", "attribute": "tsm/accept", "value": "1", "done": false}
    {"action": "bind", "driver": "nvidia", "done": false}

A module trust= write is one ``SharedParam`` (one value for every device of the module) that
several ``ModuleParamWrite`` actions, one per device, point at: the first one runs it, the others
take its outcome.
"""

from __future__ import annotations

import abc
import errno as _errno
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._abi import trust as _trust
from ansible_collections.coco.tdisp.plugins.module_utils._abi.errnos import explain
from ansible_collections.coco.tdisp.plugins.module_utils._abi.names import (
    ACCEPT, ACCEPT_TRUE, BIND, DRIVER_LINK, LOCK, PCI_DRIVERS, UNBIND, UNLOCK, driver_attr, module_trust_attr,
)

if t.TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.engine import Engine, Outcome
    from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.ledger import Ledger

Facts = t.Dict[str, t.Any]
_REREAD = 're-read the device with tdisp_device_info and check the kernel log'


class Action(abc.ABC):
    """One step of a device plan."""

    kind = ''
    disruptive = False
    sets_trust = False   # the write sets the device's trust level
    step: t.Optional[str] = None   # the journal step (docs/reliability.md): intent before the write, outcome after it

    def __init__(self, skipped: t.Optional[str] = None) -> None:
        self.skipped = skipped
        self.done = False
        self.extra: t.Dict[str, t.Any] = {}   # reported after 'done' (kernel_validate, devices, error)

    def fields(self) -> t.Dict[str, t.Any]:
        return {}

    def as_dict(self) -> t.Dict[str, t.Any]:
        out: t.Dict[str, t.Any] = {'action': self.kind}
        out.update(self.fields())
        if self.disruptive:
            out['disruptive'] = True
        if self.skipped is not None:
            out['skipped'] = self.skipped
        out['done'] = self.done
        out.update(self.extra)
        return out

    @property
    def pending(self) -> bool:
        return not (self.done or self.skipped)

    def fail(self, exc: TdispError) -> None:
        self.extra['error'] = str(exc)

    @abc.abstractmethod
    def run(self, engine: 'Engine', out: 'Outcome') -> None:
        """Each kind implements it."""

    def predict(self, facts: Facts, unknown: t.Dict[str, str]) -> None:
        """Change ``facts`` as the kernel's rules say a successful run would."""

    def record(self, ledger: 'Ledger', bdf: str) -> None:
        """Ledger bookkeeping once the action is done."""

    def journal_value(self) -> t.Optional[str]:
        return None

    def recovery(self, engine: 'Engine', out: 'Outcome', exc: TdispError) -> t.List['Action']:
        """After this action failed with ``exc``: the actions that take the device back to a safe state (none)."""
        return []

    def intend(self, ledger: 'Ledger', bdf: str) -> None:
        """Ledger bookkeeping before the write (made durable with the journal's intent)."""


class _DriverAction(Action):
    verb = ''

    def __init__(self, driver: str, skipped: t.Optional[str] = None) -> None:
        super().__init__(skipped)
        self.driver = driver

    def fields(self) -> t.Dict[str, t.Any]:
        return {'driver': self.driver}

    def journal_value(self) -> t.Optional[str]:
        return self.driver

    def expect(self) -> t.Optional[str]:
        """The driver link's target after the write."""
        return self.driver if self.verb == BIND else None

    def run(self, engine: 'Engine', out: 'Outcome') -> None:
        dev = out.device()
        attribute = driver_attr(self.driver, self.verb)
        ddir = engine.sysfs.driver_dir(self.driver)
        if ddir is None:
            raise TdispError('driver %s is not registered (%s/%s missing)' % (self.driver, PCI_DRIVERS, self.driver), device=out.bdf,
                             attribute=attribute, remedy='load its module (modprobe %s), or set rebind_driver: false' % self.driver)
        try:
            engine.sysfs.write(ddir + '/' + self.verb, out.bdf)
        except OSError as exc:
            raise explain(exc, out.bdf, attribute, out.bdf, dev.facts)
        now, why = engine.sysfs.link_name(dev.dir + '/' + DRIVER_LINK)
        if now != self.expect():
            raise TdispError('the kernel did not %s the device: driver reads %s afterwards' % (self.verb, now or why or 'none'),
                             device=out.bdf, attribute=attribute, remedy=_REREAD)
        dev.facts['driver'] = now

    def predict(self, facts: Facts, unknown: t.Dict[str, str]) -> None:
        facts['driver'] = self.expect()


class Unbind(_DriverAction):
    kind = verb = step = UNBIND

    def owe(self, ledger: 'Ledger', bdf: str) -> None:
        """Before the unbind: the ledger owes the driver a rebind (DESIGN fact 2)."""
        ledger.update(bdf, unbound_driver=self.driver)

    def record(self, ledger: 'Ledger', bdf: str) -> None:
        ledger.update(bdf, pending_rebind=None)


class Bind(_DriverAction):
    kind = verb = step = BIND

    def record(self, ledger: 'Ledger', bdf: str) -> None:
        ledger.update(bdf, unbound_driver=None, pending_rebind=None)


class Write(Action):
    """``echo value > <device>/<attribute>``: tsm/lock, tsm/unlock, tsm/accept, or a device-scope trust file."""

    kind = 'write'

    def __init__(self, attribute: str, value: str) -> None:
        super().__init__()
        self.attribute = attribute
        self.value = value
        self.disruptive = attribute == UNLOCK
        self.sets_trust = attribute in _trust.DEVICE_FILES
        self.step = {LOCK: 'lock', UNLOCK: 'unlock', ACCEPT: 'accept'}.get(attribute)

    def journal_value(self) -> t.Optional[str]:
        return self.value

    def fields(self) -> t.Dict[str, t.Any]:
        return {'attribute': self.attribute, 'value': self.value}

    def expect(self) -> t.Tuple[str, str]:
        """(attribute read back, the value it must read)."""
        if self.attribute == UNLOCK:
            return LOCK, ''
        if self.attribute == ACCEPT:
            return ACCEPT, ACCEPT_TRUE
        return self.attribute, self.value

    def run(self, engine: 'Engine', out: 'Outcome') -> None:
        dev = out.device()
        try:
            engine.sysfs.write(dev.dir + '/' + self.attribute, self.value)
        except OSError as exc:
            raise explain(exc, out.bdf, self.attribute, self.value, engine.facts_now(dev))
        shown, want = self.expect()
        raw, why = engine.sysfs.read(dev.dir + '/' + shown)
        if raw != want:
            raise TdispError('the kernel did not take %r: %s reads %s afterwards' % (self.value, shown, repr(raw) if raw is not None else why),
                             device=out.bdf, attribute=self.attribute, remedy=_REREAD)

    def predict(self, facts: Facts, unknown: t.Dict[str, str]) -> None:
        if self.attribute == LOCK:
            facts.update(lock_holder=self.value, accepted=False, tdisp_state='locked')
            unknown.pop('tdisp_state', None)
        elif self.attribute == UNLOCK:
            facts.update(lock_holder=None, accepted=False, tdisp_state='unlocked')
            row = _trust.row(facts.get('trust_abi'))
            if row is not None and row.reset_raw is not None:
                facts['trust_raw'] = row.reset_raw
                unknown.pop('trust_level', None)
        elif self.attribute == ACCEPT:
            facts.update(accepted=True, tdisp_state='run')
        elif self.sets_trust:
            facts['trust_raw'] = self.value
            unknown.pop('trust_level', None)

    def record(self, ledger: 'Ledger', bdf: str) -> None:
        if self.attribute == UNLOCK:
            ledger.update(bdf, trust_level=None, trust_abi=None, generation=None, acceptance=None)


class Accept(Write):
    """``echo 1 > tsm/accept`` bound to the verified pins: a pending acceptance record before the write,
    committed after it once the live evidence still has the pins (else the device fails, evidence changed)."""

    def __init__(self, generation: t.Optional[int], identity: t.Optional[str], unverified: bool) -> None:
        super().__init__(ACCEPT, ACCEPT_TRUE)
        self.generation = generation
        self.identity = identity
        self.unverified = unverified

    def intend(self, ledger: 'Ledger', bdf: str) -> None:
        ledger.accept_record(bdf, 'pending', self.generation, self.identity, self.unverified)

    def run(self, engine: 'Engine', out: 'Outcome') -> None:
        from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.binding import check_evidence
        super().run(engine, out)
        try:
            check_evidence(engine, out.bdf, self.generation, self.identity, ACCEPT)
        except TdispError:
            engine.ledger.update(out.bdf, acceptance=None)
            raise

    def record(self, ledger: 'Ledger', bdf: str) -> None:
        ledger.accept_record(bdf, 'committed', self.generation, self.identity, self.unverified)

    def recovery(self, engine: 'Engine', out: 'Outcome', exc: TdispError) -> t.List[Action]:
        """EIO from accept: the device fell into TDISP ERROR. Unlock and lock it again (no driver is bound, so
        this disrupts nothing); it then needs its evidence verified again."""
        dev = out.device()
        holder = engine.sysfs.read(dev.dir + '/' + LOCK)[0]
        if exc.errno != _errno.EIO or not holder or engine.driver_now(dev) is not None:
            return []
        return [Write(UNLOCK, holder), Write(LOCK, holder)]


class SharedParam:
    """One module's trust= write, shared by every device of the task whose driver belongs to that module."""

    def __init__(self, module: str, value: str) -> None:
        self.module = module
        self.value = value
        self.attribute = module_trust_attr(module)
        self.devices: t.List[str] = []
        self.done = False
        self.error: t.Optional[str] = None

    def run(self, engine: 'Engine', bdf: str, facts: t.Optional[Facts]) -> None:
        """Write it once; a later device of the module takes the first outcome."""
        if self.done:
            return
        if self.error is not None:
            raise TdispError(self.error, device=bdf, attribute=self.attribute)
        try:
            self._write(engine, bdf, facts)
        except TdispError as exc:
            self.error = str(exc)
            raise
        self.done = True

    def _write(self, engine: 'Engine', bdf: str, facts: t.Optional[Facts]) -> None:
        path = engine.reader.module_param(self.module)[0]
        if path is None:
            raise TdispError('module %s has no trust parameter' % self.module, device=bdf, attribute=self.attribute)
        try:
            engine.sysfs.write(path, self.value)
        except OSError as exc:
            raise explain(exc, bdf, self.attribute, self.value, facts)
        raw, why = engine.sysfs.read(path)
        if raw != self.value:
            raise TdispError('the kernel did not take %r: the parameter reads %s afterwards' % (self.value, repr(raw) if raw is not None else why),
                             device=bdf, attribute=self.attribute, remedy='check that the module accepts trust=%s' % self.value)


class ModuleParamWrite(Action):
    """One device's part of a ``SharedParam`` (its own until ``share`` joins it to the others of the module)."""

    kind = 'write'
    sets_trust = True

    def __init__(self, module: str, value: str) -> None:
        super().__init__()
        self.param = SharedParam(module, value)
        self.attribute = self.param.attribute
        self.value = value

    def share(self, param: SharedParam, devices: t.Sequence[str]) -> None:
        self.param = param
        param.devices = list(devices)

    def fields(self) -> t.Dict[str, t.Any]:
        out: t.Dict[str, t.Any] = {'attribute': self.attribute, 'value': self.value, 'module': self.param.module}
        return out

    def as_dict(self) -> t.Dict[str, t.Any]:
        out = super().as_dict()
        if self.param.devices:
            out['devices'] = list(self.param.devices)
        return out

    def run(self, engine: 'Engine', out: 'Outcome') -> None:
        self.param.run(engine, out.bdf, out.dev.facts if out.dev else None)

    def predict(self, facts: Facts, unknown: t.Dict[str, str]) -> None:
        facts['trust_raw'] = self.value
        unknown.pop('trust_level', None)


class GenerationCheck(Action):
    """The TOCTOU guard before accept: the evidence generation still is the verified one, and the kernel validates it."""

    kind = 'verify_generation'

    def __init__(self, generation: int, identity: t.Optional[str] = None) -> None:
        super().__init__()
        self.generation = generation
        self.identity = identity

    def fields(self) -> t.Dict[str, t.Any]:
        return {'generation': self.generation}

    def run(self, engine: 'Engine', out: 'Outcome') -> None:
        from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.binding import check_evidence
        self.extra['kernel_validate'] = bool(check_evidence(engine, out.bdf, self.generation, self.identity, ACCEPT))

    def record(self, ledger: 'Ledger', bdf: str) -> None:
        ledger.update(bdf, generation=self.generation)


def predict(facts: Facts, actions: t.Sequence[Action]) -> Facts:
    """The device dict after ``actions`` as the kernel's rules say (check mode's ``after``)."""
    f = dict(facts)
    unknown = dict(f.get('unknown') or {})
    for action in actions:
        if action.skipped:
            continue
        action.predict(f, unknown)
        if _trust.row(f.get('trust_abi')) is not None and f.get('trust_raw') is not None:
            level, why = _trust.level_from_raw(f['trust_abi'], f['trust_raw'], f['tdisp_state'])
            f['trust_level'] = level
            if why:
                unknown['trust_level'] = why
    f['unknown'] = unknown
    return f
