# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Per-device plans and their execution for ``tdisp_device`` and ``device_trust`` (private; may change at any time).

A plan is an ordered list of action dicts, the same list the modules return::

    {"action": "unbind", "driver": "nvidia", "done": false}
    {"action": "write", "attribute": "tsm/lock", "value": "tsm1", "done": false}
    {"action": "verify_generation", "generation": 7, "done": false}
    {"action": "write", "attribute": "tsm/accept", "value": "1", "done": false}
    {"action": "bind", "driver": "nvidia", "done": false}

Actions that leave LOCKED or RUN carry ``"disruptive": true``. Planning reads only and refuses
(``TdispError``) anything the kernel's rules or the caller's options forbid, so that a task with
bad input fails before the first write. Execution writes the actions in order, reads back
after every write, and stops a device at its first failure; the other devices go on.
Nothing is executed in check mode: the plan is reported with ``done: false`` and ``after`` is
the predicted device dict.
"""

from __future__ import annotations

import errno
import time
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._abi import trust as _trust
from ansible_collections.coco.tdisp.plugins.module_utils._abi.device import Device, Reader, public
from ansible_collections.coco.tdisp.plugins.module_utils._abi.ledger import Ledger
from ansible_collections.coco.tdisp.plugins.module_utils._abi.sysfs import (
    PCI_DRIVERS, PathEscape, Sysfs, check_bdf, check_name, check_tsm, explain_write, is_bdf,
)

TDISP_STATES = ('unlocked', 'locked', 'run')

# The argument spec of one device_trust device, shared by device_trust's devices and tdisp_device's trust.devices.
TRUST_DEVICE_OPTIONS = {
    'bdf': {'type': 'str', 'required': True},
    'level': {'type': 'raw', 'required': True},
    'driver': {'type': 'str'},
}
_DISRUPTIVE = 'set allow_disruptive: true to allow it'


class Options:
    """Caller options shared by both converge functions."""

    def __init__(self, tsm: t.Optional[str] = None, unbind_driver: bool = False, rebind_driver: bool = True,
                 allow_disruptive: bool = False, check_mode: bool = False) -> None:
        self.tsm = check_tsm(tsm) if tsm is not None else None
        self.unbind_driver = bool(unbind_driver)
        self.rebind_driver = bool(rebind_driver)
        self.allow_disruptive = bool(allow_disruptive)
        self.check_mode = bool(check_mode)


def _act(action: str, **fields: t.Any) -> t.Dict[str, t.Any]:
    out: t.Dict[str, t.Any] = {'action': action}
    out.update(fields)
    out['done'] = False
    return out


def _write(attribute: str, value: str, **fields: t.Any) -> t.Dict[str, t.Any]:
    return _act('write', attribute=attribute, value=value, **fields)


class Outcome:
    """The result of one device: what the module returns for it."""

    def __init__(self, bdf: str) -> None:
        self.bdf = bdf
        self.dev: t.Optional[Device] = None
        self.before: t.Optional[t.Dict[str, t.Any]] = None
        self.after: t.Optional[t.Dict[str, t.Any]] = None
        self.actions: t.List[t.Dict[str, t.Any]] = []
        self.error: t.Optional[TdispError] = None
        self.extra: t.Dict[str, t.Any] = {}
        self.owed_driver: t.Optional[str] = None   # driver to record in the ledger before unbinding

    def as_dict(self, check_mode: bool) -> t.Dict[str, t.Any]:
        if check_mode:
            changed = any(not a.get('skipped') for a in self.actions)
        else:
            changed = any(a.get('done') for a in self.actions)
        changed = changed or bool(self.extra.get('rejection_recorded'))
        out: t.Dict[str, t.Any] = {
            'bdf': self.bdf,
            'before': self.before,
            'after': self.after,
            'changed': changed,
            'actions': [{k: v for k, v in a.items() if not k.startswith('_')} for a in self.actions],
            'disruptive': any(a.get('disruptive') for a in self.actions),
            'failed': self.error is not None,
        }
        out.update(self.extra)
        if self.error is not None:
            out['msg'] = str(self.error)
        return out


# ---------------------------------------------------------------------------------------------
# Shared plumbing
# ---------------------------------------------------------------------------------------------

class Engine:
    """Reads, plans and executes for one sysfs root (one host), one module call."""

    def __init__(self, sysfs: Sysfs, ledger: Ledger, options: Options,
                 evidence_factory: t.Optional[t.Callable[[], t.Any]] = None) -> None:
        self.sysfs = sysfs
        self.ledger = ledger
        self.opts = options
        self.reader = Reader(sysfs, ledger.unbound_drivers())
        self.evidence_factory = evidence_factory
        self._evidence: t.Any = None
        self._evidence_cm: t.Any = None
        self.warnings: t.List[str] = []
        self._tsms: t.Optional[t.List[t.Dict[str, t.Any]]] = None

    # -- evidence ------------------------------------------------------------------------------
    def evidence(self) -> t.Any:
        if self._evidence is None:
            if self.evidence_factory is None:
                raise TdispError('no evidence client available to check the generation pin', attribute='evidence_endpoint',
                                 remedy='set evidence_endpoint (netlink, or unix:/path for the simulator)')
            cm = self.evidence_factory()
            self._evidence_cm = cm
            self._evidence = cm.__enter__() if hasattr(cm, '__enter__') else cm
        return self._evidence

    def close(self) -> None:
        if self._evidence_cm is not None and hasattr(self._evidence_cm, '__exit__'):
            try:
                self._evidence_cm.__exit__(None, None, None)
            except Exception:  # pylint: disable=broad-except
                pass
        self._evidence = self._evidence_cm = None

    def current_generation(self, bdf: str) -> int:
        try:
            value = self.evidence().generation(bdf)
        except TdispError as exc:
            raise TdispError('cannot read the evidence generation: %s' % exc.cause, device=bdf, attribute='evidence generation',
                             errno=exc.errno, remedy=exc.remedy or 'check evidence_endpoint and that the device is locked')
        if isinstance(value, bool) or not isinstance(value, int):
            raise TdispError('the evidence client returned generation %r' % (value,), device=bdf, attribute='evidence generation')
        return value

    # -- reading -------------------------------------------------------------------------------
    def read_devices(self, bdfs: t.Sequence[str]) -> t.Dict[str, t.Optional[Device]]:
        out: t.Dict[str, t.Optional[Device]] = {}
        for bdf in bdfs:
            out[bdf] = self.reader.read(bdf)
        return out

    def tsms(self) -> t.List[t.Dict[str, t.Any]]:
        if self._tsms is None:
            self._tsms = self.reader.tsms()
        return self._tsms

    def guest_tsm(self) -> str:
        """The devsec TSM to lock with: ``tsm`` when given (checked), else the only devsec TSM."""
        tsms = self.tsms()
        listing = ', '.join('%s (%s)' % (x['name'], x['mode']) for x in tsms) or 'none'
        if self.opts.tsm is not None:
            match = [x for x in tsms if x['name'] == self.opts.tsm]
            if not match:
                raise TdispError('%s is not a registered TSM (registered: %s)' % (self.opts.tsm, listing), attribute='tsm',
                                 remedy='use the devsec TSM listed by tdisp_device_info')
            if match[0]['mode'] not in ('devsec', 'unknown'):
                raise TdispError('%s is a %s TSM, not a guest (devsec) TSM (registered: %s)' % (self.opts.tsm, match[0]['mode'], listing),
                                 attribute='tsm', remedy='use the devsec TSM listed by tdisp_device_info')
            return self.opts.tsm
        devsec = [x['name'] for x in tsms if x['mode'] == 'devsec']
        if len(devsec) == 1:
            return devsec[0]
        if not devsec:
            raise TdispError('no devsec (guest) TSM is registered (registered: %s)' % listing, attribute='tsm',
                             remedy='load the platform TSM driver in the CVM, or pass tsm')
        raise TdispError('several devsec TSMs are registered (%s)' % ', '.join(devsec), attribute='tsm',
                         remedy='choose one with the tsm option')

    # -- execution -----------------------------------------------------------------------------
    def _device_write(self, out: Outcome, attribute: str, value: str) -> None:
        dev = out.dev
        if dev is None or dev.dir is None:  # pragma: no cover - planned devices exist
            raise TdispError('no device directory', device=out.bdf, attribute=attribute)
        try:
            self.sysfs.write(dev.dir + '/' + attribute, value)
        except OSError as exc:
            raise explain_write(exc, out.bdf, attribute, value, self._state_now(dev))
        raw, why = self.sysfs.read(dev.dir + '/' + attribute) if attribute != 'tsm/unlock' else self.sysfs.read(dev.dir + '/tsm/lock')
        expect = {'tsm/lock': value, 'tsm/unlock': '', 'tsm/accept': '1'}.get(attribute, value)
        if raw != expect:
            shown = ('tsm/lock' if attribute == 'tsm/unlock' else attribute)
            raise TdispError('the kernel did not take %r: %s reads %s afterwards' % (value, shown, repr(raw) if raw is not None else why),
                             device=out.bdf, attribute=attribute, remedy='re-read the device with tdisp_device_info and check the kernel log')

    def _state_now(self, dev: Device) -> t.Dict[str, t.Any]:
        """The facts an errno is explained with, the driver link read again: which of the kernel's
        checks failed depends on the state at the write, not at planning (a driver may have rebound itself)."""
        facts = dict(dev.facts)
        if dev.dir is not None:
            facts['driver'] = self.sysfs.link_name(dev.dir + '/driver')[0]
        return facts

    def _driver_write(self, out: Outcome, driver: str, verb: str) -> None:
        dev = out.dev
        attribute = 'drivers/%s/%s' % (driver, verb)
        if dev is None or dev.dir is None:  # pragma: no cover - planned devices exist
            raise TdispError('no device directory', device=out.bdf, attribute=attribute)
        ddir = self.sysfs.driver_dir(driver)
        if ddir is None:
            raise TdispError('driver %s is not registered (%s/%s missing)' % (driver, PCI_DRIVERS, driver), device=out.bdf,
                             attribute=attribute, remedy='load its module (modprobe %s), or set rebind_driver: false' % driver)
        try:
            self.sysfs.write(ddir + '/' + verb, out.bdf)
        except OSError as exc:
            raise explain_write(exc, out.bdf, attribute, out.bdf, dev.facts)
        now, why = self.sysfs.link_name(dev.dir + '/driver')
        want = driver if verb == 'bind' else None
        if now != want:
            raise TdispError('the kernel did not %s the device: driver reads %s afterwards' % (verb, now or why or 'none'),
                             device=out.bdf, attribute=attribute, remedy='re-read the device with tdisp_device_info and check the kernel log')
        dev.facts['driver'] = now

    def _module_write(self, out: Outcome, module: str, value: str, attribute: str) -> None:
        path = self.reader.module_param(module)[0]
        if path is None:
            raise TdispError('module %s has no trust parameter' % module, device=out.bdf, attribute=attribute)
        try:
            self.sysfs.write(path, value)
        except OSError as exc:
            raise explain_write(exc, out.bdf, attribute, value, out.dev.facts if out.dev else None)
        raw, why = self.sysfs.read(path)
        if raw != value:
            raise TdispError('the kernel did not take %r: the parameter reads %s afterwards' % (value, repr(raw) if raw is not None else why),
                             device=out.bdf, attribute=attribute, remedy='check that the module accepts trust=%s' % value)

    def execute(self, out: Outcome) -> None:
        """Run the device's actions in order; stop at the first failure (recorded in ``out.error``)."""
        for action in out.actions:
            if action.get('done') or action.get('skipped'):
                continue
            try:
                self._run_action(out, action)
            except TdispError as exc:
                out.error = exc
                action['error'] = str(exc)
                return
            action['done'] = True
            self._after_action(out, action)

    def _run_action(self, out: Outcome, action: t.Dict[str, t.Any]) -> None:
        kind = action['action']
        if kind == 'unbind':
            self._driver_write(out, action['driver'], 'unbind')
        elif kind == 'bind':
            self._driver_write(out, action['driver'], 'bind')
        elif kind == 'verify_generation':
            pin = action['generation']
            now = self.current_generation(out.bdf)
            if now != pin:
                raise TdispError('evidence changed since verification (generation %d -> %d)' % (pin, now), device=out.bdf,
                                 attribute='tsm/accept', remedy='re-verify the evidence and pass the new generation')
            try:
                ok = self.evidence().validate(out.bdf, pin)
            except TdispError as exc:
                raise TdispError('the kernel refused to validate generation %d: %s' % (pin, exc.cause), device=out.bdf,
                                 attribute='tsm/accept', errno=exc.errno, remedy='re-verify the evidence and pass the new generation')
            if ok is False:
                raise TdispError('the kernel refused to validate generation %d' % pin, device=out.bdf, attribute='tsm/accept',
                                 remedy='re-verify the evidence and pass the new generation')
            action['kernel_validate'] = ok is not None
        elif kind == 'write' and action.get('module'):
            shared = action.get('_shared')
            if shared is not None and shared.get('done'):
                return
            if shared is not None and shared.get('error'):
                raise TdispError(shared['error'], device=out.bdf, attribute=action['attribute'])
            try:
                self._module_write(out, action['module'], action['value'], action['attribute'])
            except TdispError as exc:
                if shared is not None:
                    shared['error'] = str(exc)
                raise
            if shared is not None:
                shared['done'] = True
        elif kind == 'write':
            self._device_write(out, action['attribute'], action['value'])
        else:  # pragma: no cover - plans are built here
            raise TdispError('unknown action %r' % kind, device=out.bdf)

    def _after_action(self, out: Outcome, action: t.Dict[str, t.Any]) -> None:
        """Ledger bookkeeping after a successful action."""
        kind = action['action']
        if kind == 'bind':
            self.ledger.update(out.bdf, unbound_driver=None, pending_rebind=None)
        elif kind == 'unbind':
            self.ledger.update(out.bdf, pending_rebind=None)
        elif kind == 'write' and action['attribute'] == 'tsm/unlock':
            self.ledger.update(out.bdf, trust_level=None, trust_abi=None, generation=None)
        elif kind == 'verify_generation':
            self.ledger.update(out.bdf, generation=action['generation'])

    def execute_all(self, outcomes: t.Sequence[Outcome]) -> None:
        """Execute every device's plan, the drivers about to be unbound recorded in the ledger first."""
        if any(a['action'] == 'unbind' for o in outcomes for a in o.actions):
            self.record_owed_drivers(outcomes)
        for out in outcomes:
            if out.actions:
                self.execute(out)

    def record_owed_drivers(self, outcomes: t.Iterable[Outcome]) -> None:
        """Before any unbind: record the driver in the ledger and save it (DESIGN fact 2)."""
        for out in outcomes:
            for action in out.actions:
                if action['action'] == 'unbind' and not action.get('skipped'):
                    self.ledger.update(out.bdf, unbound_driver=action['driver'])
        self.ledger.save()

    def reread(self, outcomes: t.Sequence[Outcome]) -> None:
        """``after`` of each device: ``before`` where nothing was written, else the state read again
        (``Reader.refresh``: state fields afresh, identity fields from the first read)."""
        self.reader.new_phase()
        for out in outcomes:
            if out.before is None or out.dev is None:
                continue
            if not any(a.get('done') or a.get('error') for a in out.actions):
                out.after = out.before
                continue
            try:
                out.after = public(self.reader.refresh(out.dev))
            except PathEscape as exc:
                out.after = None
                if out.error is None:
                    out.error = exc


def predict(facts: t.Dict[str, t.Any], actions: t.Sequence[t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
    """The device dict after ``actions`` as the kernel's rules say (for check mode's ``after``)."""
    f = dict(facts)
    unknown = dict(f.get('unknown') or {})
    for a in actions:
        if a.get('skipped'):
            continue
        kind = a['action']
        if kind == 'unbind':
            f['driver'] = None
        elif kind == 'bind':
            f['driver'] = a['driver']
        elif kind == 'write':
            attr, value = a['attribute'], a['value']
            if attr == 'tsm/lock':
                f.update(lock_holder=value, accepted=False, tdisp_state='locked')
                unknown.pop('tdisp_state', None)
            elif attr == 'tsm/unlock':
                f.update(lock_holder=None, accepted=False, tdisp_state='unlocked')
                if f.get('trust_abi') == 'trust':
                    f.update(trust_raw='0', trust_level='blocked')
                    unknown.pop('trust_level', None)
            elif attr == 'tsm/accept':
                f.update(accepted=True, tdisp_state='run')
            elif attr in ('trust', 'trust_policy') or a.get('module'):
                f['trust_raw'] = value
                unknown.pop('trust_level', None)
        if f.get('trust_abi') in _trust.WRITE and f.get('trust_raw') is not None:
            level, why = _trust.level_from_raw(f['trust_abi'], f['trust_raw'], f['tdisp_state'])
            f['trust_level'] = level
            if why:
                unknown['trust_level'] = why
    f['unknown'] = unknown
    return f


def _refuse(bdf: str, attribute: str, cause: str, remedy: str) -> TdispError:
    return TdispError(cause, device=bdf, attribute=attribute, remedy=remedy)


def _check_specs(devices: t.Sequence[t.Mapping[str, t.Any]]) -> t.List[str]:
    seen: t.Set[str] = set()
    bdfs = []
    for i, spec in enumerate(devices):
        bdf = check_bdf(spec.get('bdf'), 'devices[%d].bdf' % i)
        if bdf in seen:
            raise TdispError('%s is listed twice' % bdf, attribute='devices', remedy='list each device once')
        seen.add(bdf)
        bdfs.append(bdf)
    return bdfs


def _usable(out: Outcome, dev: t.Optional[Device], attribute: str) -> Device:
    if dev is None:
        raise _refuse(out.bdf, attribute, 'no such PCI device (ENOENT)', 'check the BDF with coco.tdisp.tdisp_device_info')
    if 'driver' in dev.facts['unknown']:
        raise _refuse(out.bdf, 'driver', 'the driver link cannot be trusted: %s' % dev.facts['unknown']['driver'],
                      'inspect the device directory; refusing to act')
    return dev


def _rebind_driver(engine: Engine, dev: Device, unbound: t.Optional[str], blocked_after: bool) -> t.Optional[t.Dict[str, t.Any]]:
    """The bind action that restores a driver (the one just unbound, else the one the ledger owes)."""
    if not engine.opts.rebind_driver:
        return None
    driver = unbound
    if driver is None and dev.facts['driver'] is None:
        driver = engine.ledger.entry(dev.bdf).get('unbound_driver')
    if driver is None:
        return None
    if blocked_after:
        return _act('bind', driver=driver, skipped='trust level blocked: the kernel refuses to bind; the ledger keeps the driver')
    return _act('bind', driver=driver)


# ---------------------------------------------------------------------------------------------
# tdisp_device
# ---------------------------------------------------------------------------------------------

def _plan_state(engine: Engine, out: Outcome, dev: Device, state: str, generation: t.Optional[int]) -> None:
    f = dev.facts
    bdf = out.bdf
    cur = f['tdisp_state']
    if f['tsm_side'] not in ('guest', 'both'):
        why = f['unknown'].get('tsm_side') or f['unknown'].get('tdisp_state') or (
            'host side only' if f['tsm_side'] == 'host' else 'no devsec TSM registered, or the device is not TEE-capable')
        raise _refuse(bdf, 'tsm/lock', 'no guest tsm/ attributes (%s)' % why,
                      'only a TEE-capable device under a registered devsec TSM can be locked')
    if cur == 'unknown':
        raise _refuse(bdf, 'tsm/lock', 'TDISP state unknown: %s' % f['unknown'].get('tdisp_state', 'unreadable'),
                      'inspect the device with tdisp_device_info; refusing to act on an unknown state')
    seq: t.List[t.Dict[str, t.Any]] = []
    holder = f['lock_holder']

    def lock_to(target: str) -> None:
        if f['connected']:
            raise _refuse(bdf, 'tsm/lock', 'the device is connected by link TSM %s (lock would return EBUSY)' % f['connected'],
                          'disconnect it on the host side first')
        seq.append(_write('tsm/lock', engine.guest_tsm()))
        if target == 'run':
            if generation is not None:
                seq.append(_act('verify_generation', generation=generation))
            seq.append(_write('tsm/accept', '1'))

    relock = (cur in ('locked', 'run') and state in ('locked', 'run') and engine.opts.tsm is not None
              and holder != engine.opts.tsm)
    if relock:
        seq.append(_write('tsm/unlock', holder, disruptive=True))
        lock_to(state)
    elif cur == state:
        if state == 'run' and generation is not None:
            now = engine.current_generation(bdf)
            if now != generation:
                raise _refuse(bdf, 'tsm/accept', 'evidence changed since verification (generation %d -> %d) while the device reads accepted'
                              % (generation, now), 'the interface may have left RUN: re-run lock -> verify -> accept (allow_disruptive: true)')
    elif cur == 'unlocked':
        lock_to(state)
    elif cur == 'locked' and state == 'run':
        if generation is not None:
            seq.append(_act('verify_generation', generation=generation))
        seq.append(_write('tsm/accept', '1'))
    elif state == 'unlocked':
        seq.append(_write('tsm/unlock', holder, disruptive=True))
    else:  # run -> locked
        seq.append(_write('tsm/unlock', holder, disruptive=True))
        lock_to('locked')

    if any(a.get('disruptive') for a in seq) and not engine.opts.allow_disruptive:
        raise _refuse(bdf, 'tsm/unlock', 'leaving %s for %s is disruptive (unlock ends the TDISP session%s)'
                      % (cur, state, '; accept has no inverse' if cur == 'run' else ''), _DISRUPTIVE)

    unbound = None
    if seq and f['driver']:
        if not engine.opts.unbind_driver:
            first = seq[0]['attribute']
            raise _refuse(bdf, first, 'driver %s is bound (%s returns EBUSY while a driver is bound)' % (f['driver'], first),
                          'set unbind_driver: true or unbind it first')
        unbound = f['driver']
        seq.insert(0, _act('unbind', driver=unbound))
    blocked = f['trust_abi'] in ('module_param', 'trust_policy') and f['trust_level'] == 'blocked'
    bind = _rebind_driver(engine, dev, unbound, blocked)
    if bind is not None and (seq or not bind.get('skipped')):
        seq.append(bind)
    out.actions = seq


def converge_state(sysfs: Sysfs, ledger: Ledger, devices: t.Sequence[t.Mapping[str, t.Any]], options: Options,
                   evidence_factory: t.Optional[t.Callable[[], t.Any]] = None) -> t.Dict[str, t.Any]:
    """``tdisp_device``: bring each device to its desired TDISP state. Returns the module result
    (without ``diff``); ``failed``/``msg`` are set when a device failed. Raises TdispError when
    the task is refused before any write."""
    bdfs = _check_specs(devices)
    specs = {}
    rejections: t.Dict[str, t.Dict[str, str]] = {}
    for bdf, spec in zip(bdfs, devices):
        state = spec.get('state')
        if state not in TDISP_STATES:
            raise TdispError('state %r is not one of %s' % (state, ', '.join(TDISP_STATES)), device=bdf, attribute='state')
        gen = spec.get('generation')
        if gen is not None:
            if isinstance(gen, bool) or not isinstance(gen, int) or gen < 0:
                raise TdispError('generation %r is not a non-negative integer' % (gen,), device=bdf, attribute='generation')
            if state != 'run':
                raise TdispError('generation pins the evidence for accept; it applies to state run only', device=bdf,
                                 attribute='generation', remedy='drop generation or use state: run')
        specs[bdf] = (state, gen)
        rejected = spec.get('rejected')
        if rejected is not None:
            rejections[bdf] = _check_rejected(bdf, state, rejected)

    engine = Engine(sysfs, ledger, options, evidence_factory)
    try:
        outcomes = [Outcome(b) for b in bdfs]
        refusals: t.List[TdispError] = []
        for out in outcomes:
            try:
                dev = _usable(out, engine.reader.read(out.bdf), 'tsm/lock')
                out.dev = dev
                out.before = public(dev)
                _plan_state(engine, out, dev, *specs[out.bdf])
            except TdispError as exc:
                out.error = exc
                refusals.append(exc)
        if refusals:
            return _refused(outcomes, refusals, options.check_mode)
        return _run(engine, outcomes, rejections)
    finally:
        engine.close()


def _check_rejected(bdf: str, state: str, rejected: t.Any) -> t.Dict[str, str]:
    """``devices[].rejected``: ``{reason, policy_version}``, only with state unlocked."""
    if state != 'unlocked':
        raise TdispError('rejected records why a device is kept out; it applies to state unlocked only', device=bdf,
                         attribute='rejected', remedy='drop rejected or use state: unlocked')
    if not isinstance(rejected, dict) or not isinstance(rejected.get('reason'), str) or not rejected['reason'].strip() \
            or not isinstance(rejected.get('policy_version'), str) or set(rejected) - {'reason', 'policy_version'}:
        raise TdispError('rejected must be {reason: text, policy_version: text}, got %r' % (rejected,), device=bdf, attribute='rejected')
    return {'reason': ' '.join(rejected['reason'].split())[:500], 'policy_version': rejected['policy_version']}


def _refused(outcomes: t.Sequence[Outcome], refusals: t.Sequence[TdispError], check_mode: bool) -> t.Dict[str, t.Any]:
    for out in outcomes:
        out.after = out.before
        for a in out.actions:
            a['done'] = False
    devs = [o.as_dict(check_mode) for o in outcomes]
    for d in devs:
        d['changed'] = False
    msg = str(refusals[0])
    if len(refusals) > 1:
        msg += ' (and %d more refusals; see errors)' % (len(refusals) - 1)
    return {'changed': False, 'failed': True, 'msg': msg, 'errors': [str(e) for e in refusals], 'devices': devs}


def _run(engine: Engine, outcomes: t.List[Outcome], rejections: t.Optional[t.Mapping[str, t.Dict[str, str]]] = None) -> t.Dict[str, t.Any]:
    check = engine.opts.check_mode
    rejections = rejections or {}
    if check:
        for out in outcomes:
            out.after = predict(out.before or {}, out.actions)
            _predict_rejection(engine, out, rejections.get(out.bdf))
    else:
        engine.execute_all(outcomes)
        for out in outcomes:
            _ledger_after(engine, out)
            _record_rejection(engine, out, rejections.get(out.bdf))
        engine.reread(outcomes)
        engine.ledger.save()
    return _result(engine, outcomes)


def _rejection_differs(engine: Engine, bdf: str, rejected: t.Optional[t.Dict[str, str]]) -> bool:
    recorded = engine.ledger.entry(bdf).get('rejected') or {}
    if rejected is None:
        return False
    return {k: recorded.get(k) for k in ('reason', 'policy_version')} != rejected


def _predict_rejection(engine: Engine, out: Outcome, rejected: t.Optional[t.Dict[str, str]]) -> None:
    if out.error is None and _rejection_differs(engine, out.bdf, rejected):
        out.extra['rejection_recorded'] = True


def _record_rejection(engine: Engine, out: Outcome, rejected: t.Optional[t.Dict[str, str]]) -> None:
    """Keep (or forget) why the policy keeps a device out: the acceptance role does not lock it again under that policy version."""
    if out.error is not None or out.dev is None:
        return
    if rejected is not None:
        if _rejection_differs(engine, out.bdf, rejected):
            engine.ledger.update(out.bdf, rejected=dict(rejected, at=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())))
            out.extra['rejection_recorded'] = True
    elif any(a.get('done') and a.get('attribute') == 'tsm/accept' for a in out.actions) or out.dev.facts.get('tdisp_state') == 'run':
        engine.ledger.update(out.bdf, rejected=None)


def _ledger_after(engine: Engine, out: Outcome) -> None:
    """Forget an owed driver once the device is bound again (by us or anyone)."""
    dev = out.dev
    if dev is None:
        return
    now = engine.sysfs.link_name(dev.dir + '/driver')[0] if dev.dir else None
    if now is not None:
        engine.ledger.update(out.bdf, unbound_driver=None)


def _result(engine: Engine, outcomes: t.Sequence[Outcome]) -> t.Dict[str, t.Any]:
    check = engine.opts.check_mode
    devs = [o.as_dict(check) for o in outcomes]
    result: t.Dict[str, t.Any] = {'changed': any(d['changed'] for d in devs), 'devices': devs}
    errors = [o.error for o in outcomes if o.error is not None]
    if errors:
        result['failed'] = True
        result['msg'] = str(errors[0])
        if len(errors) > 1:
            result['msg'] += ' (and %d more failed devices)' % (len(errors) - 1)
        result['errors'] = [str(e) for e in errors]
    if engine.warnings:
        result['warnings'] = list(engine.warnings)
    return result


# ---------------------------------------------------------------------------------------------
# device_trust
# ---------------------------------------------------------------------------------------------

def _reset_explained(abi: str, recorded: str, current: t.Optional[str]) -> bool:
    """Whether ``current`` is what the kernel leaves behind when a device falls out of RUN."""
    if abi == 'trust':
        return current == 'blocked' and recorded != 'blocked'
    if abi == 'trust_policy':
        return recorded == 'tcb' and current == 'normal'
    return False


def _plan_trust(engine: Engine, out: Outcome, dev: Device, level: str) -> t.Optional[str]:
    """Plan one device; returns the module whose shared trust= it needs (module_param), else None."""
    f = dev.facts
    bdf = out.bdf
    abi = f['trust_abi']
    cur = f['trust_level']
    state = f['tdisp_state']
    if abi not in _trust.WRITE:
        raise _refuse(bdf, 'trust', 'no trust ABI on this kernel (no trust or trust_policy file, no module trust= parameter%s)'
                      % ('; ' + f['unknown']['trust_abi'] if 'trust_abi' in f['unknown'] else ''),
                      'the trust level cannot be changed here; leave this host out of the device_trust task')
    out.extra['reset_detected'] = False
    entry = engine.ledger.entry(bdf)
    recorded = entry.get('trust_level')
    if recorded and entry.get('trust_abi') == abi and cur != recorded and _reset_explained(abi, recorded, cur):
        out.extra['reset_detected'] = True
        if level != cur:
            raise _refuse(bdf, abi, 'trust was reset by the kernel (%s -> %s; set by coco.tdisp%s): the interface left RUN (TDISP ERROR or unlock)'
                          % (recorded, cur, ' at generation %s' % entry['generation'] if entry.get('generation') is not None else ''),
                          're-run lock -> verify -> accept (allow_disruptive: true to unlock), then set the level again')
        engine.ledger.update(bdf, trust_level=cur, trust_abi=abi)
        return None

    module = None
    if abi == 'module_param':
        if dev.module is None:
            raise _refuse(bdf, 'trust', 'no driver bound or overridden: which module trust= applies is unknown',
                          'name it with the device\'s driver option, or bind the driver or set driver_override first')
        module = dev.module

    same = cur == level
    if abi == 'module_param':
        pending = bool(entry.get('pending_rebind')) and f['driver'] is not None
        out.extra['pending_rebind'] = pending
        if same and level == _trust.TCB and state != 'run':
            engine.warnings.append('%s: module %s trust=tcb applies to it at its next bind, but the device is %s, not in RUN: '
                                   'it gets no private memory until it is accepted' % (bdf, module, state))
        if same and not pending:
            return module
    elif same:
        return None

    idx = _trust.index(level)
    seq: t.List[t.Dict[str, t.Any]] = []
    unbound = None
    in_run = state == 'run'
    if level == _trust.TCB and not in_run and not same:
        raise _refuse(bdf, abi, 'tcb needs TDISP RUN (device is %s)' % state,
                      'accept it first with coco.tdisp.tdisp_device state: run and the verified generation')
    if not same and idx < _trust.index(_trust.TCB) and in_run:
        if not engine.opts.allow_disruptive:
            raise _refuse(bdf, abi, 'level %s is below tcb while the device is in RUN (private memory would stay mapped)' % level,
                          'set allow_disruptive: true to unlock it first (the device leaves RUN; accept has no inverse)')
        seq.append(_write('tsm/unlock', f['lock_holder'], disruptive=True))
        in_run = False
    if not same and idx < _trust.index(_trust.TCB) and state == 'unknown' and f['tsm_side'] in ('guest', 'both'):
        raise _refuse(bdf, abi, 'TDISP state unknown (%s): cannot tell whether the device is in RUN' % f['unknown'].get('tdisp_state'),
                      'inspect the device with tdisp_device_info')
    needs_unbound = any(a['attribute'] == 'tsm/unlock' for a in seq) or (abi == 'trust_policy' and not same)
    if abi == 'module_param' and f['driver'] is not None:
        # The new trust= takes effect at the next bind: rebind when allowed.
        needs_unbound = needs_unbound or engine.opts.unbind_driver
    if needs_unbound and f['driver']:
        if not engine.opts.unbind_driver:
            what = seq[0]['attribute'] if seq else abi
            raise _refuse(bdf, what, 'driver %s is bound (%s returns EBUSY while a driver is bound)' % (f['driver'], what),
                          'set unbind_driver: true or unbind it first')
        unbound = f['driver']
        seq.insert(0, _act('unbind', driver=unbound))
    if not same:
        if abi == 'module_param':
            seq.append(_write('module/%s/parameters/trust' % module, _trust.value_for(abi, level), module=module))
        else:
            seq.append(_write(abi, _trust.value_for(abi, level)))
    blocked = abi in ('module_param', 'trust_policy') and level == _trust.BLOCKED
    bind = _rebind_driver(engine, dev, unbound, blocked)
    if bind is not None and (seq or not bind.get('skipped')):
        seq.append(bind)
    if abi == 'module_param':
        out.extra['pending_rebind'] = f['driver'] is not None and unbound is None
    out.actions = seq
    return module


def check_trust_specs(devices: t.Sequence[t.Mapping[str, t.Any]]) -> t.Tuple[t.List[str], t.Dict[str, str], t.Dict[str, str]]:
    """The BDFs, levels and named drivers of ``device_trust``'s devices; raises TdispError for bad input."""
    bdfs = _check_specs(devices)
    levels = {}
    named: t.Dict[str, str] = {}
    for bdf, spec in zip(bdfs, devices):
        try:
            levels[bdf] = _trust.parse_level(spec.get('level'))
        except TdispError as exc:
            raise TdispError(exc.cause, device=bdf, attribute='level', remedy=exc.remedy)
        if spec.get('driver') is not None:
            named[bdf] = check_name(spec['driver'])
    return bdfs, levels, named


def converge_trust(sysfs: Sysfs, ledger: Ledger, devices: t.Sequence[t.Mapping[str, t.Any]], options: Options) -> t.Dict[str, t.Any]:
    """``device_trust``: set each device's trust level through whichever ABI the kernel has."""
    bdfs, levels, named = check_trust_specs(devices)
    engine = Engine(sysfs, ledger, options)
    engine.reader.ledger_drivers.update(named)
    outcomes = [Outcome(b) for b in bdfs]
    refusals: t.List[TdispError] = []
    groups: t.Dict[str, t.List[Outcome]] = {}
    for out in outcomes:
        try:
            dev = _usable(out, engine.reader.read(out.bdf), 'trust')
            out.dev = dev
            out.before = public(dev)
            current = dev.facts['driver'] or dev.facts['driver_override']
            if out.bdf in named and current is not None and current != named[out.bdf]:
                raise _refuse(out.bdf, 'driver', 'the device is bound to (or overridden for) %s, not %s' % (current, named[out.bdf]),
                              'drop driver for this device, or fix it')
            module = _plan_trust(engine, out, dev, levels[out.bdf])
            if module is not None:
                groups.setdefault(module, []).append(out)
        except TdispError as exc:
            out.error = exc
            refusals.append(exc)
    for module, members in sorted(groups.items()):
        try:
            _plan_module_group(engine, module, members, levels)
        except TdispError as exc:
            for out in members:
                out.error = out.error or exc
            refusals.append(exc)
    if refusals:
        return _refused(outcomes, refusals, options.check_mode)
    result = _run_trust(engine, outcomes, levels)
    return result


def _plan_module_group(engine: Engine, module: str, members: t.List[Outcome], levels: t.Mapping[str, str]) -> None:
    """module_param: one trust= per module, shared by every device of its driver."""
    wanted = sorted({levels[o.bdf] for o in members})
    if len(wanted) > 1:
        detail = ', '.join('%s (%s)' % (o.bdf, levels[o.bdf]) for o in members)
        raise TdispError('devices %s share module %s, whose trust= is one value for all its devices' % (detail, module),
                         attribute='module/%s/parameters/trust' % module, remedy='ask one level for every device of that driver')
    writes = [a for o in members for a in o.actions if a.get('module')]
    if writes:
        shared: t.Dict[str, t.Any] = {}
        for i, a in enumerate(writes):
            a['devices'] = [o.bdf for o in members]
            a['_shared'] = shared
        # Other devices of the module's driver(s), not in the task, get the new level at their next bind.
        task = {o.bdf for o in members}
        drivers = sorted({o.dev.module_driver for o in members if o.dev is not None and o.dev.module_driver})
        others: t.List[str] = []
        for drv in drivers:
            try:
                ddir = engine.sysfs.driver_dir(drv)
                names = engine.sysfs.listdir(ddir) if ddir else []
            except (OSError, TdispError):
                names = []
            others.extend(n for n in names if is_bdf(n) and n not in task)
        if others:
            engine.warnings.append('module %s trust= is shared: device(s) %s, not in this task, get level %s at their next bind'
                                   % (module, ', '.join(sorted(set(others))), wanted[0]))


def _run_trust(engine: Engine, outcomes: t.List[Outcome], levels: t.Mapping[str, str]) -> t.Dict[str, t.Any]:
    check = engine.opts.check_mode
    if check:
        for out in outcomes:
            out.after = predict(out.before or {}, out.actions)
    else:
        engine.execute_all(outcomes)
        for out in outcomes:
            dev = out.dev
            err = out.error
            if dev is None or err is not None:
                if (err is not None and err.attribute == 'trust' and err.errno == errno.EINVAL and levels[out.bdf] == _trust.TCB
                        and dev is not None and dev.facts['accepted']):
                    # No ledger entry, yet the kernel refused tcb on a device that reads accepted: it left RUN.
                    out.extra['reset_detected'] = True
                continue
            wrote = any(a.get('done') and a['action'] == 'write' and a['attribute'] != 'tsm/unlock' for a in out.actions)
            if wrote:
                engine.ledger.update(out.bdf, trust_level=levels[out.bdf], trust_abi=dev.facts['trust_abi'])
            if dev.facts['trust_abi'] == 'module_param':
                rebound = any(a.get('done') and a['action'] == 'bind' for a in out.actions)
                pending = bool(out.extra.get('pending_rebind')) and not rebound and (wrote or bool(engine.ledger.entry(out.bdf).get('pending_rebind')))
                out.extra['pending_rebind'] = pending
                engine.ledger.update(out.bdf, pending_rebind=True if pending else None)
        for out in outcomes:
            _ledger_after(engine, out)
        engine.reread(outcomes)
        engine.ledger.save()
    return _result(engine, outcomes)


def check_policy_version(version: t.Any) -> str:
    if not isinstance(version, str) or not version.strip() or len(version) > 128 or '\n' in version:
        raise TdispError('%r is not a policy version' % (version,), attribute='policy_version',
                         remedy='pass the policy\'s version string, e.g. 2026.11.1')
    return version


def record_policy(ledger: Ledger, version: str, result: t.Dict[str, t.Any], check_mode: bool) -> None:
    """Record the applied policy version in the ledger, once every device of the task converged.

    A failed task records nothing, so a re-run after a halt still sees the older version. The
    record counts as a change (``changed``, ``policy_recorded``), predicted in check mode."""
    check_policy_version(version)
    if result.get('failed'):
        result['policy_recorded'] = False
        return
    changes = ledger.set_policy(version)
    if changes and not check_mode:
        ledger.save()
    result['policy_recorded'] = changes
    result['changed'] = bool(result.get('changed')) or changes


def converge_state_and_trust(sysfs: Sysfs, ledger: Ledger, devices: t.Sequence[t.Mapping[str, t.Any]], options: Options,
                             evidence_factory: t.Optional[t.Callable[[], t.Any]], trust: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """``tdisp_device`` with ``trust``: the state changes, then, when every device reached its
    state, the trust levels exactly as ``device_trust`` sets them (same driver options, the
    ``trust`` task's own ``allow_disruptive``), and the policy version, in one call. Both inputs
    are checked before the first write. The trust part's result is under ``trust``."""
    check_trust_specs(trust.get('devices') or [])
    version = trust.get('policy_version')
    if version is not None:
        check_policy_version(version)
    result = converge_state(sysfs, ledger, devices, options, evidence_factory)
    if result.get('failed'):
        result['trust'] = {'changed': False, 'devices': [], 'skipped': 'a state change failed: no trust level was set'}
        return result
    sysfs.invalidate()
    opts = Options(tsm=options.tsm, unbind_driver=options.unbind_driver, rebind_driver=options.rebind_driver,
                   allow_disruptive=bool(trust.get('allow_disruptive')), check_mode=options.check_mode)
    part = converge_trust(sysfs, ledger, trust.get('devices') or [], opts)
    if version is not None:
        record_policy(ledger, version, part, options.check_mode)
    for warning in part.pop('warnings', []):
        result.setdefault('warnings', []).append(warning)
    if part.pop('failed', False):
        result['failed'] = True
        result['msg'] = part.pop('msg')
    result['changed'] = bool(result['changed'] or part['changed'])
    result['trust'] = part
    return result


def _diff(devices: t.Sequence[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    return {'before': {'devices': [d['before'] for d in devices]}, 'after': {'devices': [d['after'] for d in devices]}}


def finish(module: t.Any, result: t.Dict[str, t.Any]) -> None:
    """Hand a converge result to the AnsibleModule: warnings, the structured diff, exit or fail."""
    for warning in result.pop('warnings', []):
        module.warn(warning)
    if getattr(module, '_diff', False):
        trust_devices = (result.get('trust') or {}).get('devices')
        result['diff'] = [_diff(result['devices']), _diff(trust_devices)] if trust_devices else _diff(result['devices'])
    if result.pop('failed', False):
        msg = result.pop('msg')
        module.fail_json(msg=msg, **result)
    module.exit_json(**result)
