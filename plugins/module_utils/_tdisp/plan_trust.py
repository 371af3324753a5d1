# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The trust planner of ``device_trust`` (and of ``tdisp_device``'s ``trust``) (private; may change at any time).

Reads the trust table's columns (``_abi/trust.py``), never an ABI's name: whether the write
needs the driver unbound, whether the level applies at the next bind (and ``blocked`` makes
the kernel refuse that bind), what the kernel leaves behind when a device falls out of RUN, and
whether the value is one per driver module, shared by its devices.
"""

from __future__ import annotations

import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._abi import errnos as _errnos
from ansible_collections.coco.tdisp.plugins.module_utils._abi import trust as _trust
from ansible_collections.coco.tdisp.plugins.module_utils._abi.device import Device, public
from ansible_collections.coco.tdisp.plugins.module_utils._abi.names import LOCK, UNKNOWN, UNLOCK, check_name, is_bdf, module_trust_attr
from ansible_collections.coco.tdisp.plugins.module_utils._abi.sysfs import Sysfs
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.actions import Action, Bind, ModuleParamWrite, Unbind, Write
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.binding import EvidenceChanged, acceptance_view, confirm
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.converge import Planner, check_policy_version, converge, record_policy
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.engine import Engine, Outcome, check_specs, refuse
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.ledger import Ledger
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.options import Options
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.plan_state import add_rebind, converge_state, unbind_first


class TrustPlanner(Planner):
    attribute = 'trust'

    def __init__(self, levels: t.Mapping[str, str], named: t.Mapping[str, str]) -> None:
        self.levels = levels
        self.named = named
        self.groups: t.Dict[str, t.List[Outcome]] = {}

    def plan(self, engine: Engine, out: Outcome, dev: Device) -> None:
        current = dev.facts['driver'] or dev.facts['driver_override']
        named = self.named.get(out.bdf)
        if named is not None and current is not None and current != named:
            raise refuse(out.bdf, 'driver', 'the device is bound to (or overridden for) %s, not %s' % (current, named),
                         'drop driver for this device, or fix it')
        module = self._plan(engine, out, dev, self.levels[out.bdf])
        if module is not None:
            self.groups.setdefault(module, []).append(out)

    def _plan(self, engine: Engine, out: Outcome, dev: Device, level: str) -> t.Optional[str]:
        """Plan one device; returns the module whose shared trust= it needs, else None."""
        f = dev.facts
        bdf = out.bdf
        abi = f['trust_abi']
        row = _trust.row(abi)
        cur = f['trust_level']
        state = f['tdisp_state']
        if row is None:
            raise refuse(bdf, 'trust', 'no trust ABI on this kernel (no trust or trust_policy file, no module trust= parameter%s)'
                         % ('; ' + f['unknown']['trust_abi'] if 'trust_abi' in f['unknown'] else ''),
                         'the trust level cannot be changed here; leave this host out of the device_trust task')
        out.extra['reset_detected'] = False
        entry = engine.ledger.entry(bdf)
        recorded = entry.get('trust_level')
        if recorded and entry.get('trust_abi') == abi and _trust.reset_explained(abi, recorded, cur):
            out.extra['reset_detected'] = True
            if level != cur:
                raise refuse(bdf, abi, 'trust was reset by the kernel (%s -> %s; set by coco.tdisp%s): the interface left RUN (TDISP ERROR or unlock)'
                             % (recorded, cur, ' at generation %s' % entry['generation'] if entry.get('generation') is not None else ''),
                             're-run lock -> verify -> accept (allow_disruptive: true to unlock), then set the level again')
            engine.ledger.update(bdf, trust_level=cur, trust_abi=abi)
            return None

        module = None
        if row.per_module:
            if dev.module is None:
                raise refuse(bdf, 'trust', 'no driver bound or overridden: which module trust= applies is unknown',
                             'name it with the device\'s driver option, or bind the driver or set driver_override first')
            module = dev.module

        same = cur == level
        if row.per_module:
            pending = bool(entry.get('pending_rebind')) and f['driver'] is not None
            out.extra['pending_rebind'] = pending
            if same and level == _trust.TCB and state != 'run':
                engine.warnings.append('%s: module %s trust=tcb applies to it at its next bind, but the device is %s, not in RUN: '
                                       'it gets no private memory until it is accepted' % (bdf, module, state))
            if same and not pending:
                return module
        elif same:
            return None

        below_tcb = _trust.index(level) < _trust.index(_trust.TCB)
        seq: t.List[Action] = []
        if level == _trust.TCB and state != 'run' and not same:
            raise refuse(bdf, abi, 'tcb needs TDISP RUN (device is %s)' % state,
                         'accept it first with coco.tdisp.tdisp_device state: run and the verified generation')
        if not same and below_tcb and state == 'run':
            if not engine.opts.allow_disruptive:
                raise refuse(bdf, abi, 'level %s is below tcb while the device is in RUN (private memory would stay mapped)' % level,
                             'set allow_disruptive: true to unlock it first (the device leaves RUN; accept has no inverse)')
            seq.append(Write(UNLOCK, f['lock_holder']))
        if not same and below_tcb and state == UNKNOWN and f['tsm_side'] in ('guest', 'both'):
            raise refuse(bdf, abi, 'TDISP state unknown (%s): cannot tell whether the device is in RUN' % f['unknown'].get('tdisp_state'),
                         'inspect the device with tdisp_device_info')
        needs_unbound = bool(seq) or (row.needs_unbound and not same)
        if row.applies_at_bind and f['driver'] is not None:
            # The new value takes effect at the next bind: rebind when allowed.
            needs_unbound = needs_unbound or engine.opts.unbind_driver
        unbound = unbind_first(engine, dev, seq, UNLOCK if seq else abi) if needs_unbound else None
        if not same:
            value = _trust.value_for(abi, level)
            write = ModuleParamWrite(module, value) if module is not None else Write(row.file, value)
            if level == _trust.TCB:
                write.step = 'trust_raise'   # the engine checks the evidence right before it (binding.confirm)
            seq.append(write)
        add_rebind(engine, dev, seq, unbound, level)
        if row.per_module:
            out.extra['pending_rebind'] = f['driver'] is not None and unbound is None
        out.actions = seq
        return module

    def plan_together(self, engine: Engine, outcomes: t.Sequence[Outcome], refusals: t.List[TdispError]) -> None:
        for module, members in sorted(self.groups.items()):
            try:
                self._plan_module(engine, module, members)
            except TdispError as exc:
                for out in members:
                    out.error = out.error or exc
                refusals.append(exc)

    def _plan_module(self, engine: Engine, module: str, members: t.List[Outcome]) -> None:
        """One trust= per module, shared by every device of its driver."""
        wanted = sorted({self.levels[o.bdf] for o in members})
        if len(wanted) > 1:
            detail = ', '.join('%s (%s)' % (o.bdf, self.levels[o.bdf]) for o in members)
            raise TdispError('devices %s share module %s, whose trust= is one value for all its devices' % (detail, module),
                             attribute=module_trust_attr(module),
                             remedy='ask one level for every device of that driver')
        writes = [a for o in members for a in o.actions if isinstance(a, ModuleParamWrite)]
        if not writes:
            return
        for w in writes:
            w.share(writes[0].param, [o.bdf for o in members])
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

    def final(self, engine: Engine, out: Outcome, device: t.Optional[t.Dict[str, t.Any]]) -> bool:
        """At the level asked for; at tcb only in RUN under a committed acceptance record that still matches
        the live evidence. A device this run raised whose evidence moved is lowered again."""
        level = self.levels[out.bdf]
        if device is None or device.get('trust_level') != level:
            return False
        row = _trust.row(device.get('trust_abi'))
        if level != _trust.TCB or row is None or (row.per_module and device.get('tdisp_state') != 'run'):
            return True
        try:
            rec = confirm(engine, out, 'trust')
        except EvidenceChanged:
            if not engine.opts.check_mode and any(a.done and a.sets_trust for a in out.actions):
                self._lower(engine, out)
            raise
        out.extra['acceptance'] = acceptance_view(rec or None, None, 'run', rec.get('generation') if rec else None)
        return True

    def _lower(self, engine: Engine, out: Outcome) -> None:
        """Take back a tcb this run set on a device whose evidence moved. The kernel refuses a level below
        tcb while the device is in RUN, so the device leaves RUN: [unbind] -> unlock (the kernel resets or
        reinterprets its trust below tcb; the ledger owes the driver a rebind). Not gated by allow_disruptive:
        a device at tcb on evidence nobody verified is what must never stay."""
        dev = out.device()
        holder = engine.sysfs.read(dev.dir + '/' + LOCK)[0]
        seq: t.List[Action] = []
        driver = engine.driver_now(dev)
        if driver:
            unbind = Unbind(driver)
            unbind.owe(engine.ledger, out.bdf)
            seq.append(unbind)
        if holder:
            seq.append(Write(UNLOCK, holder))
        out.actions.extend(seq)
        error = out.error
        engine.execute(out)
        out.error = error or out.error
        out.after = public(engine.reader.refresh(dev))
        level = out.after.get('trust_level')
        out.extra['lowered'] = level if level != _trust.TCB else False

    def settle(self, engine: Engine, out: Outcome) -> None:
        dev = out.dev
        err = out.error
        level = self.levels[out.bdf]
        if dev is None or err is not None:
            if err is not None and dev is not None and err.errno is not None and _trust.row(dev.facts['trust_abi']) is not None \
                    and _errnos.match(err.attribute or '', err.errno, _trust.value_for(dev.facts['trust_abi'], level), dev.facts) is _errnos.LEFT_RUN:
                # No ledger entry, yet the kernel refused tcb on a device that reads accepted: it left RUN.
                out.extra['reset_detected'] = True
            return
        wrote = any(a.done and a.sets_trust for a in out.actions)
        if wrote:
            engine.ledger.update(out.bdf, trust_level=level, trust_abi=dev.facts['trust_abi'])
        row = _trust.row(dev.facts['trust_abi'])
        if row is not None and row.per_module:
            pending = (bool(out.extra.get('pending_rebind')) and not out.did(Bind)
                       and (wrote or bool(engine.ledger.entry(out.bdf).get('pending_rebind'))))
            out.extra['pending_rebind'] = pending
            engine.ledger.update(out.bdf, pending_rebind=True if pending else None)


def check_trust_specs(devices: t.Sequence[t.Mapping[str, t.Any]]) -> t.Tuple[t.List[str], t.Dict[str, str], t.Dict[str, str]]:
    """The BDFs, levels and named drivers of ``device_trust``'s devices; raises TdispError for bad input."""
    bdfs = check_specs(devices)
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


def converge_trust(sysfs: Sysfs, ledger: Ledger, devices: t.Sequence[t.Mapping[str, t.Any]], options: Options,
                   evidence_factory: t.Optional[t.Callable[[], t.Any]] = None) -> t.Dict[str, t.Any]:
    """``device_trust``: set each device's trust level through whichever ABI the kernel has; a device
    raised to tcb is checked against its committed acceptance record and the live evidence (``binding``)."""
    bdfs, levels, named = check_trust_specs(devices)
    engine = Engine(sysfs, ledger, options, evidence_factory)
    engine.reader.ledger_drivers.update(named)
    return converge(engine, bdfs, TrustPlanner(levels, named))


def converge_state_and_trust(sysfs: Sysfs, ledger: Ledger, devices: t.Sequence[t.Mapping[str, t.Any]], options: Options,
                             evidence_factory: t.Optional[t.Callable[[], t.Any]], trust: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """``tdisp_device`` with ``trust``: the state changes, then the trust levels of every device whose
    state change did not fail, exactly as ``device_trust`` sets them (same driver options, the
    ``trust`` task's own ``allow_disruptive``), and the policy version, in one call. Both inputs
    are checked before the first write; a refused state task sets no trust level. The trust
    part's result is under ``trust``."""
    check_trust_specs(trust.get('devices') or [])
    version = trust.get('policy_version')
    if version is not None:
        check_policy_version(version)
    result = converge_state(sysfs, ledger, devices, options, evidence_factory)
    if result.get('refused'):
        result['trust'] = {'changed': False, 'devices': [], 'skipped': 'a state change failed (the state task was refused): no trust level was set'}
        return result
    failed = {d['bdf'] for d in result['devices'] if d.get('failed')}
    wanted = [d for d in trust.get('devices') or [] if d.get('bdf') not in failed]
    sysfs.invalidate()
    opts = options.but(allow_disruptive=bool(trust.get('allow_disruptive')))
    part = converge_trust(sysfs, ledger, wanted, opts, evidence_factory) if wanted else {'changed': False, 'devices': []}
    # One device's failed state change never holds the host's other devices back (docs/reliability.md).
    part['devices'].extend({'bdf': d.get('bdf'), 'changed': False, 'failed': True, 'converged': False, 'actions': [],
                            'skipped': 'its state change failed: no trust level was set'}
                           for d in trust.get('devices') or [] if d.get('bdf') in failed)
    if failed:
        part['skipped'] = 'the state change of %s failed: no trust level was set for it' % ', '.join(sorted(failed))
        part['failed'] = True
    if version is not None:
        record_policy(ledger, version, part, options.check_mode)
    for warning in part.pop('warnings', []):
        result.setdefault('warnings', []).append(warning)
    if part.pop('failed', False):
        result['failed'] = True
        result.setdefault('msg', part.pop('msg', part.get('skipped')))
    result['changed'] = bool(result['changed'] or part['changed'])
    result['trust'] = part
    return result
