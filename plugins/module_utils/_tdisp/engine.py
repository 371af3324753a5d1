# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The engine of one module call on one host, and the per-device outcome (private; may change at any time).

``Engine`` reads devices and TSMs, holds the evidence client, runs each device's actions in
order (a device stops at its first failure; the other devices go on) and reads the devices
again afterwards. ``Outcome`` is one device's result, in the shape the modules return.
"""

from __future__ import annotations

import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._abi.device import Device, Reader, public
from ansible_collections.coco.tdisp.plugins.module_utils._abi.names import DRIVER_LINK, check_bdf
from ansible_collections.coco.tdisp.plugins.module_utils._abi.sysfs import PathEscape, Sysfs
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.actions import Action, Bind, Unbind
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.ledger import Ledger
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.options import Options


class Outcome:
    """The result of one device: what the module returns for it."""

    def __init__(self, bdf: str) -> None:
        self.bdf = bdf
        self.dev: t.Optional[Device] = None
        self.before: t.Optional[t.Dict[str, t.Any]] = None
        self.after: t.Optional[t.Dict[str, t.Any]] = None
        self.actions: t.List[Action] = []
        self.error: t.Optional[TdispError] = None
        self.extra: t.Dict[str, t.Any] = {}

    def device(self) -> Device:
        if self.dev is None or self.dev.dir is None:  # pragma: no cover - planned devices exist
            raise TdispError('no device directory', device=self.bdf)
        return self.dev

    def did(self, kind: t.Type[Action]) -> bool:
        """Whether an action of this class was carried out."""
        return any(a.done and isinstance(a, kind) for a in self.actions)

    def as_dict(self, check_mode: bool) -> t.Dict[str, t.Any]:
        if check_mode:
            changed = any(not a.skipped for a in self.actions)
        else:
            changed = any(a.done for a in self.actions)
        changed = changed or bool(self.extra.get('rejection_recorded'))
        out: t.Dict[str, t.Any] = {
            'bdf': self.bdf,
            'before': self.before,
            'after': self.after,
            'changed': changed,
            'actions': [a.as_dict() for a in self.actions],
            'disruptive': any(a.disruptive for a in self.actions),
            'failed': self.error is not None,
        }
        out.update(self.extra)
        if self.error is not None:
            out['msg'] = str(self.error)
        return out


def refuse(bdf: str, attribute: str, cause: str, remedy: str) -> TdispError:
    return TdispError(cause, device=bdf, attribute=attribute, remedy=remedy)


def check_specs(devices: t.Sequence[t.Mapping[str, t.Any]]) -> t.List[str]:
    """The BDFs of a task's devices, each checked and listed once."""
    seen: t.Set[str] = set()
    bdfs = []
    for i, spec in enumerate(devices):
        bdf = check_bdf(spec.get('bdf'), 'devices[%d].bdf' % i)
        if bdf in seen:
            raise TdispError('%s is listed twice' % bdf, attribute='devices', remedy='list each device once')
        seen.add(bdf)
        bdfs.append(bdf)
    return bdfs


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
        self.guard: t.Callable[[], None] = options.guard
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
    def read(self, out: Outcome, attribute: str) -> Device:
        """Read a device of the task into ``out`` (``before``); refuse a missing one or an untrustworthy driver link."""
        dev = self.reader.read(out.bdf)
        if dev is None:
            raise refuse(out.bdf, attribute, 'no such PCI device (ENOENT)', 'check the BDF with coco.tdisp.tdisp_device_info')
        if 'driver' in dev.facts['unknown']:
            raise refuse(out.bdf, 'driver', 'the driver link cannot be trusted: %s' % dev.facts['unknown']['driver'],
                         'inspect the device directory; refusing to act')
        out.dev = dev
        out.before = public(dev)
        return dev

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

    def driver_now(self, dev: Device) -> t.Optional[str]:
        """The driver bound right now (the link read again)."""
        return self.sysfs.link_name(dev.dir + '/' + DRIVER_LINK)[0] if dev.dir else None

    def facts_now(self, dev: Device) -> t.Dict[str, t.Any]:
        """The facts an errno is explained with, the driver link read again: which of the kernel's
        checks failed depends on the state at the write, not at planning (a driver may have rebound itself)."""
        facts = dict(dev.facts)
        if dev.dir is not None:
            facts['driver'] = self.driver_now(dev)
        return facts

    def rebind(self, dev: Device, unbound: t.Optional[str], blocked_after: bool) -> t.Optional[Bind]:
        """The bind that restores a driver (the one just unbound, else the one the ledger owes)."""
        if not self.opts.rebind_driver:
            return None
        driver = unbound
        if driver is None and dev.facts['driver'] is None:
            driver = self.ledger.entry(dev.bdf).get('unbound_driver')
        if driver is None:
            return None
        if blocked_after:
            return Bind(driver, skipped='trust level blocked: the kernel refuses to bind; the ledger keeps the driver')
        return Bind(driver)

    # -- execution -----------------------------------------------------------------------------
    def execute(self, out: Outcome) -> None:
        """Run the device's actions in order; stop at the first failure (recorded in ``out.error``).

        A journalled step has its intent made durable before the write and its outcome after it."""
        from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.binding import EvidenceChanged, confirm
        i = 0
        while i < len(out.actions):
            action = out.actions[i]
            i += 1
            if not action.pending:
                continue
            step = action.step
            if step is not None:
                action.intend(self.ledger, out.bdf)
                self.ledger.journal(out.bdf, step, 'intent', value=action.journal_value(),
                                    generation=getattr(action, 'generation', None), identity=getattr(action, 'identity', None))
            try:
                self.guard()
                if step == 'trust_raise':   # right before the write: still in RUN at the accepted evidence
                    confirm(self, out, 'trust')
                action.run(self, out)
            except TdispError as exc:
                out.error = exc
                action.fail(exc)
                if isinstance(exc, EvidenceChanged):
                    out.extra['evidence_changed'] = True
                if step is not None:
                    self.ledger.journal(out.bdf, step, 'failed', error=str(exc)[:500])
                recovery = action.recovery(self, out, exc)
                if not recovery:
                    return
                out.extra['needs_reverify'] = True
                out.actions[i:] = recovery   # the rest of the plan is dropped: the device goes back to LOCKED
                continue
            action.done = True
            action.record(self.ledger, out.bdf)
            if step is not None:
                self.ledger.journal(out.bdf, step, 'done')

    def execute_all(self, outcomes: t.Sequence[Outcome]) -> None:
        """Execute every device's plan, the drivers about to be unbound recorded in the ledger first."""
        unbinds = [(o.bdf, a) for o in outcomes for a in o.actions if isinstance(a, Unbind)]
        if unbinds:
            for bdf, action in unbinds:
                if not action.skipped:
                    action.owe(self.ledger, bdf)
            self.ledger.save()
        for out in outcomes:
            if out.actions:
                self.execute(out)

    def reread(self, outcomes: t.Sequence[Outcome]) -> None:
        """``after`` of each device: ``before`` where nothing was written, else the state read again
        (``Reader.refresh``: state fields afresh, identity fields from the first read)."""
        self.reader.new_phase()
        for out in outcomes:
            if out.before is None or out.dev is None:
                continue
            if not any(a.done or 'error' in a.extra for a in out.actions):
                out.after = out.before
                continue
            try:
                out.after = public(self.reader.refresh(out.dev))
            except PathEscape as exc:
                out.after = None
                if out.error is None:
                    out.error = exc
