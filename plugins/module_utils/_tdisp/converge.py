# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one converge driver and the result shaping of both action modules (private; may change at any time).

A planner reads and plans every device first and refuses (``TdispError``) anything the
kernel's rules or the caller's options forbid, so that a task with bad input fails before the
first write. Then either check mode predicts each device with the very action objects that
would run, or the engine executes them, the planner settles the ledger, and every device is
read again.
"""

from __future__ import annotations

import abc
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._abi.device import Device
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.actions import predict
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.binding import EvidenceChanged, recover
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.engine import Engine, Outcome


class Planner(abc.ABC):
    """What a module plans; the driver calls these in order."""

    attribute = ''   # the attribute a missing device is refused under

    @abc.abstractmethod
    def plan(self, engine: Engine, out: Outcome, dev: Device) -> None:
        """Each kind implements it."""

    def plan_together(self, engine: Engine, outcomes: t.Sequence[Outcome], refusals: t.List[TdispError]) -> None:
        """After every device was planned: the plans that span devices."""

    def predicted(self, engine: Engine, out: Outcome) -> None:
        """Check mode: what else the run would report for the device."""

    def settle(self, engine: Engine, out: Outcome) -> None:
        """After execution: the planner's ledger bookkeeping for the device."""

    def final(self, engine: Engine, out: Outcome, device: t.Optional[t.Dict[str, t.Any]]) -> bool:
        """From the final read ``device`` (``before`` in check mode): whether the device is converged,
        with any confirmation the planner needs (the evidence still the one accepted)."""
        return device is not None


def converge(engine: Engine, bdfs: t.Sequence[str], planner: Planner) -> t.Dict[str, t.Any]:
    """Plan every device, then predict (check mode) or execute; the module result without ``diff``."""
    try:
        outcomes = [Outcome(b) for b in bdfs]
        refusals: t.List[TdispError] = []
        for out in outcomes:
            try:
                dev = engine.read(out, planner.attribute)
                recover(engine, out)
                planner.plan(engine, out, dev)
            except TdispError as exc:
                out.error = exc
                refusals.append(exc)
        planner.plan_together(engine, outcomes, refusals)
        if refusals:
            return refused(outcomes, refusals, engine.opts.check_mode)
        if engine.opts.check_mode:
            for out in outcomes:
                out.after = predict(out.before or {}, out.actions)
                planner.predicted(engine, out)
        else:
            engine.execute_all(outcomes)
            for out in outcomes:
                planner.settle(engine, out)
                _forget_owed(engine, out)
                _close_journal(engine, out)
            engine.reread(outcomes)
        for out in outcomes:
            _final(engine, planner, out)
        if not engine.opts.check_mode:
            engine.ledger.save()
        return result(engine, outcomes)
    finally:
        engine.close()


def _final(engine: Engine, planner: Planner, out: Outcome) -> None:
    """``converged`` of a device from its final read, never from the plan; a failed device is not converged."""
    device = out.before if engine.opts.check_mode else out.after
    try:
        ok = planner.final(engine, out, device)
    except TdispError as exc:
        if isinstance(exc, EvidenceChanged):
            out.extra['evidence_changed'] = True
        out.error = out.error or exc
        ok = False
    out.extra['converged'] = bool(ok) and out.error is None


def _close_journal(engine: Engine, out: Outcome) -> None:
    """A device whose last step is done has no open transaction: its journal goes (a failed step stays on record)."""
    journal = engine.ledger.entry(out.bdf).get('journal')
    if isinstance(journal, dict) and journal.get('phase') in ('done', 'recovered'):
        engine.ledger.update(out.bdf, journal=None)


def _forget_owed(engine: Engine, out: Outcome) -> None:
    """Forget an owed driver once the device is bound again (by us or anyone)."""
    if out.dev is not None and engine.driver_now(out.dev) is not None:
        engine.ledger.update(out.bdf, unbound_driver=None)


def refused(outcomes: t.Sequence[Outcome], refusals: t.Sequence[TdispError], check_mode: bool) -> t.Dict[str, t.Any]:
    """The result of a task refused before any write."""
    for out in outcomes:
        out.after = out.before
        for a in out.actions:
            a.done = False
    devs = [o.as_dict(check_mode) for o in outcomes]
    for d in devs:
        d['changed'] = False
    msg = str(refusals[0])
    if len(refusals) > 1:
        msg += ' (and %d more refusals; see errors)' % (len(refusals) - 1)
    return {'changed': False, 'failed': True, 'refused': True, 'msg': msg, 'errors': [str(e) for e in refusals], 'devices': devs}


def result(engine: Engine, outcomes: t.Sequence[Outcome]) -> t.Dict[str, t.Any]:
    """The module result: every device, ``failed``/``msg``/``errors`` when one failed, the warnings."""
    devs = [o.as_dict(engine.opts.check_mode) for o in outcomes]
    out: t.Dict[str, t.Any] = {'changed': any(d['changed'] for d in devs), 'devices': devs}
    errors = [o.error for o in outcomes if o.error is not None]
    if errors:
        out['failed'] = True
        out['msg'] = str(errors[0])
        if len(errors) > 1:
            out['msg'] += ' (and %d more failed devices)' % (len(errors) - 1)
        out['errors'] = [str(e) for e in errors]
    if engine.warnings:
        out['warnings'] = list(engine.warnings)
    return out


def check_policy_version(version: t.Any) -> str:
    if not isinstance(version, str) or not version.strip() or len(version) > 128 or '\n' in version:
        raise TdispError('%r is not a policy version' % (version,), attribute='policy_version',
                         remedy='pass the policy\'s version string, e.g. 2026.11.1')
    return version


def record_policy(ledger: t.Any, version: str, res: t.Dict[str, t.Any], check_mode: bool) -> None:
    """Record the applied policy version in the ledger, once every device of the task converged.

    A failed task records nothing, so a re-run after a halt still sees the older version. The
    record counts as a change (``changed``, ``policy_recorded``), predicted in check mode."""
    check_policy_version(version)
    if res.get('failed'):
        res['policy_recorded'] = False
        return
    changes = ledger.set_policy(version)
    if changes and not check_mode:
        ledger.save()
    res['policy_recorded'] = changes
    res['changed'] = bool(res.get('changed')) or changes
