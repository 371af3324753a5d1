# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The state planner of ``tdisp_device``: lock, accept (RUN), unlock (private; may change at any time).

Actions that leave LOCKED or RUN are disruptive and refused without ``allow_disruptive``; a
bound driver is unbound first only with ``unbind_driver`` and bound again afterwards
(``rebind_driver``), or the ledger keeps owing it.
"""

from __future__ import annotations

import time
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._abi import trust as _trust
from ansible_collections.coco.tdisp.plugins.module_utils._abi.device import Device
from ansible_collections.coco.tdisp.plugins.module_utils._abi.names import ACCEPT, LOCK, TDISP_STATES, UNKNOWN, UNLOCK
from ansible_collections.coco.tdisp.plugins.module_utils._abi.sysfs import Sysfs
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.actions import Accept, Action, GenerationCheck, Unbind, Write
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.binding import acceptance_view, check_evidence, check_generation, check_identity
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.converge import Planner, converge
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.engine import Engine, Outcome, check_specs, refuse
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.ledger import Ledger
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.options import Options

_DISRUPTIVE = 'set allow_disruptive: true to allow it'
Spec = t.Tuple[str, t.Optional[int], t.Optional[str], bool]   # state, generation, identity, unverified


def unbind_first(engine: Engine, dev: Device, seq: t.List[Action], what: str) -> t.Optional[str]:
    """Put the unbind of a bound driver in front of ``seq`` (refused without unbind_driver); the driver unbound."""
    driver = dev.facts['driver']
    if not driver:
        return None
    if not engine.opts.unbind_driver:
        raise refuse(dev.bdf, what, 'driver %s is bound (%s returns EBUSY while a driver is bound)' % (driver, what),
                     'set unbind_driver: true or unbind it first')
    seq.insert(0, Unbind(driver))
    return driver


def add_rebind(engine: Engine, dev: Device, seq: t.List[Action], unbound: t.Optional[str], level: t.Optional[str]) -> None:
    """Append the bind that restores a driver; skipped where the ABI makes the kernel refuse a bind at ``blocked``."""
    row = _trust.row(dev.facts['trust_abi'])
    blocked = row is not None and row.applies_at_bind and level == _trust.BLOCKED
    bind = engine.rebind(dev, unbound, blocked)
    if bind is not None and (seq or not bind.skipped):
        seq.append(bind)


class StatePlanner(Planner):
    attribute = LOCK

    def __init__(self, specs: t.Mapping[str, Spec], rejections: t.Mapping[str, t.Dict[str, str]]) -> None:
        self.specs = specs
        self.rejections = rejections

    def plan(self, engine: Engine, out: Outcome, dev: Device) -> None:
        state, generation, identity, unverified = self.specs[out.bdf]
        f = dev.facts
        bdf = out.bdf
        cur = f['tdisp_state']
        if f['tsm_side'] not in ('guest', 'both'):
            why = f['unknown'].get('tsm_side') or f['unknown'].get('tdisp_state') or (
                'host side only' if f['tsm_side'] == 'host' else 'no devsec TSM registered, or the device is not TEE-capable')
            raise refuse(bdf, LOCK, 'no guest tsm/ attributes (%s)' % why,
                         'only a TEE-capable device under a registered devsec TSM can be locked')
        if cur == UNKNOWN:
            raise refuse(bdf, LOCK, 'TDISP state unknown: %s' % f['unknown'].get('tdisp_state', 'unreadable'),
                         'inspect the device with tdisp_device_info; refusing to act on an unknown state')
        seq: t.List[Action] = []
        holder = f['lock_holder']

        def accept() -> None:
            if generation is not None:
                seq.append(GenerationCheck(generation, identity))
            seq.append(Accept(generation, identity, unverified))

        def lock_to(target: str) -> None:
            if f['connected']:
                raise refuse(bdf, LOCK, 'the device is connected by link TSM %s (lock would return EBUSY)' % f['connected'],
                             'disconnect it on the host side first')
            seq.append(Write(LOCK, engine.guest_tsm()))
            if target == 'run':
                accept()

        relock = (cur in ('locked', 'run') and state in ('locked', 'run') and engine.opts.tsm is not None
                  and holder != engine.opts.tsm)
        if relock:
            seq.append(Write(UNLOCK, holder))
            lock_to(state)
        elif cur == state:
            if state == 'run' and generation is not None:
                now = engine.current_generation(bdf)
                if now != generation:
                    out.extra['evidence_changed'] = True
                    raise refuse(bdf, ACCEPT, 'evidence changed since verification (generation %d -> %d) while the device reads accepted'
                                 % (generation, now), 'the interface may have left RUN: re-run lock -> verify -> accept (allow_disruptive: true)')
        elif cur == 'unlocked':
            lock_to(state)
        elif cur == 'locked' and state == 'run':
            accept()
        elif state == 'unlocked':
            seq.append(Write(UNLOCK, holder))
        else:  # run -> locked
            seq.append(Write(UNLOCK, holder))
            lock_to('locked')

        if any(a.disruptive for a in seq) and not engine.opts.allow_disruptive:
            raise refuse(bdf, UNLOCK, 'leaving %s for %s is disruptive (unlock ends the TDISP session%s)'
                         % (cur, state, '; accept has no inverse' if cur == 'run' else ''), _DISRUPTIVE)
        first = next((a.attribute for a in seq if isinstance(a, Write)), None)
        unbound = unbind_first(engine, dev, seq, first) if first else None
        add_rebind(engine, dev, seq, unbound, f['trust_level'])
        out.actions = seq

    def predicted(self, engine: Engine, out: Outcome) -> None:
        if out.error is None and self._differs(engine, out.bdf):
            out.extra['rejection_recorded'] = True

    def settle(self, engine: Engine, out: Outcome) -> None:
        """Keep (or forget) why the policy keeps a device out: the acceptance role does not lock it again under that policy version."""
        if out.error is not None or out.dev is None:
            return
        rejected = self.rejections.get(out.bdf)
        if rejected is not None:
            if self._differs(engine, out.bdf):
                engine.ledger.update(out.bdf, rejected=dict(rejected, at=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())))
                out.extra['rejection_recorded'] = True
        elif any(a.done and getattr(a, 'attribute', None) == ACCEPT for a in out.actions) or out.dev.facts.get('tdisp_state') == 'run':
            engine.ledger.update(out.bdf, rejected=None)

    def final(self, engine: Engine, out: Outcome, device: t.Optional[t.Dict[str, t.Any]]) -> bool:
        """In the state asked for; in RUN only under a committed acceptance record whose evidence still matches."""
        state, generation, _identity, _unverified = self.specs[out.bdf]
        if device is None or device.get('tdisp_state') != state:
            return False
        if state != 'run':
            return True
        rec = engine.ledger.committed(out.bdf)
        live = None
        if rec is not None and rec.get('generation') is not None and engine.evidence_factory is not None \
                and (generation is not None or out.did(Accept)):
            check_evidence(engine, out.bdf, rec['generation'], rec.get('identity'), ACCEPT)
            live = rec['generation']
        out.extra['acceptance'] = acceptance_view(rec, None, 'run', live)
        if rec is None:
            engine.warnings.append('%s is in TDISP RUN without a committed acceptance record in the ledger (unexplained state): '
                                   'not confirmed' % out.bdf)
            return False
        return True

    def _differs(self, engine: Engine, bdf: str) -> bool:
        rejected = self.rejections.get(bdf)
        if rejected is None:
            return False
        recorded = engine.ledger.entry(bdf).get('rejected') or {}
        return {k: recorded.get(k) for k in ('reason', 'policy_version')} != rejected


def check_state_specs(devices: t.Sequence[t.Mapping[str, t.Any]]) -> t.Tuple[t.List[str], t.Dict[str, Spec], t.Dict[str, t.Dict[str, str]]]:
    """The BDFs, (state, generation) and rejection records of ``tdisp_device``'s devices; raises TdispError for bad input."""
    bdfs = check_specs(devices)
    specs: t.Dict[str, Spec] = {}
    rejections: t.Dict[str, t.Dict[str, str]] = {}
    for bdf, spec in zip(bdfs, devices):
        state = spec.get('state')
        if state not in TDISP_STATES:
            raise TdispError('state %r is not one of %s' % (state, ', '.join(TDISP_STATES)), device=bdf, attribute='state')
        gen = spec.get('generation')
        identity = spec.get('identity')
        unverified = spec.get('unverified')
        if unverified is not None and not isinstance(unverified, bool):
            raise TdispError('unverified %r is not a boolean' % (unverified,), device=bdf, attribute='unverified')
        if gen is not None:
            check_generation(gen, bdf)
            if state != 'run':
                raise TdispError('generation pins the evidence for accept; it applies to state run only', device=bdf,
                                 attribute='generation', remedy='drop generation or use state: run')
        if identity is not None:
            check_identity(identity, bdf)
            if gen is None:
                raise TdispError('identity pins the leaf certificate together with generation', device=bdf, attribute='identity',
                                 remedy='pass the verified generation too')
        if unverified and gen is not None:
            raise TdispError('unverified and generation contradict each other', device=bdf, attribute='unverified',
                             remedy='drop one of them')
        specs[bdf] = (state, gen, identity, bool(unverified) and state == 'run')
        rejected = spec.get('rejected')
        if rejected is not None:
            rejections[bdf] = _check_rejected(bdf, state, rejected)
        if state == 'run' and gen is None and not unverified:
            raise TdispError('state run needs the verified generation (accepting evidence nobody verified)', device=bdf,
                             attribute='generation', remedy='pass generation (and identity) from the verified evidence, '
                             'or set unverified: true to accept without verification (dangerous)')

    return bdfs, specs, rejections


def _check_rejected(bdf: str, state: str, rejected: t.Any) -> t.Dict[str, str]:
    """``devices[].rejected``: ``{reason, policy_version}``, only with state unlocked."""
    if state != 'unlocked':
        raise TdispError('rejected records why a device is kept out; it applies to state unlocked only', device=bdf,
                         attribute='rejected', remedy='drop rejected or use state: unlocked')
    if not isinstance(rejected, dict) or not isinstance(rejected.get('reason'), str) or not rejected['reason'].strip() \
            or not isinstance(rejected.get('policy_version'), str) or set(rejected) - {'reason', 'policy_version'}:
        raise TdispError('rejected must be {reason: text, policy_version: text}, got %r' % (rejected,), device=bdf, attribute='rejected')
    return {'reason': ' '.join(rejected['reason'].split())[:500], 'policy_version': rejected['policy_version']}


def converge_state(sysfs: Sysfs, ledger: Ledger, devices: t.Sequence[t.Mapping[str, t.Any]], options: Options,
                   evidence_factory: t.Optional[t.Callable[[], t.Any]] = None) -> t.Dict[str, t.Any]:
    """``tdisp_device``: bring each device to its desired TDISP state. Returns the module result
    (without ``diff``); ``failed``/``msg`` are set when a device failed. Raises TdispError when
    the task is refused before any write."""
    bdfs, specs, rejections = check_state_specs(devices)
    return converge(Engine(sysfs, ledger, options, evidence_factory), bdfs, StatePlanner(specs, rejections))
