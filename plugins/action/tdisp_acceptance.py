# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of coco.tdisp.tdisp_acceptance: converge one host to an acceptance policy.

One task runs the whole sequence for a host, so that a fleet pays one task's overhead per host
rather than one per step, and as few module runs as TDISP allows: read (``tdisp_device_info``)
-> plan on the controller -> [lock, returning the facts with the evidence that exists only
once a device is locked (``tdisp_device`` with ``facts``) -> plan] -> accept/unlock, then the
trust levels and the policy version (``tdisp_device`` with ``trust``; ``device_trust`` alone when
no device changes state). A first rollout costs three module runs per host, a converged re-run
one. The planning, the policy, the evidence verification and the summary are the pure
functions of ``plugin_utils/_acceptance.py`` (over ``_policy`` and ``_attestation``); this file only
sequences the module calls.
"""

from __future__ import annotations

import secrets
import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.coco.tdisp.plugins.plugin_utils import _acceptance, _policy
from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import TdispError

display = Display()

ARGUMENT_SPEC: dict[str, t.Any] = {
    'policy': {'type': 'dict', 'required': True},
    'manifests': {'type': 'dict', 'default': {}},
    'critical_devices': {'type': 'list', 'elements': 'str', 'default': []},
    'allow_disruptive': {'type': 'bool', 'default': False},
    'allow_older_policy': {'type': 'bool', 'default': False},
    'retry_rejected': {'type': 'bool', 'default': False},
    'force': {'type': 'bool', 'default': False},
    'fail_on_error': {'type': 'bool', 'default': True},
    # Unset (None): the modules' own defaults apply.
    'sysfs_root': {'type': 'path'},
    'evidence_endpoint': {'type': 'str'},
    'state_dir': {'type': 'path'},
    'tsm': {'type': 'str'},
    'summary_fact': {'type': 'str', 'default': 'tdisp_acceptance_summary'},
    # The host's run lock (docs/reliability.md): the lease every module call renews, and a dead run's id to break.
    'run_lease': {'type': 'int', 'default': 600},
    'break_run': {'type': 'str'},
}
# The per-device result fields of tdisp_device and device_trust that the summary keeps.
_OUTCOME_KEYS = ('converged', 'evidence_changed', 'needs_reverify', 'recovered', 'failed', 'msg', 'unverified')


class _Stop(Exception):
    """A step failed: the summary records why and the sequence ends."""


class ActionModule(ActionBase):
    """Converge one host to an acceptance policy (see the module documentation)."""

    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp: t.Any = None, task_vars: t.Optional[dict[str, t.Any]] = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        raw_critical = self._task.args.get('critical_devices', [])
        if not isinstance(raw_critical, list) or not all(isinstance(x, str) for x in raw_critical):
            # The argument spec would turn '0000:18:00.0' or 5 into a one-element list: refuse the type instead.
            raise AnsibleActionFail('refused before any host was read: critical_devices (acceptance_critical_devices, '
                                    'tdisp_critical_devices) must be a list of PCI device names such as [\'0000:00:04.0\'], got %r'
                                    % (raw_critical,))
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        host = to_text(task_vars.get('inventory_hostname', self._task.get_name()))
        critical = args['critical_devices']
        # Bad input fails here, on the controller, before any module runs on the host.
        checked, problems = _acceptance.check_inputs(args['policy'], args['manifests'])
        if problems or checked is None:
            raise AnsibleActionFail(_acceptance.refusal(problems))
        for warning in checked.warnings:
            display.warning('%s: %s' % (host, warning))
        run = _Run(self, task_vars, args, host, checked)
        try:
            run.converge(critical)
        except _Stop as stop:
            run.failure = '%s: %s' % (host, stop)
        finally:
            run.release()
            self._remove_tmp_path(self._connection._shell.tmpdir)
        summary = run.summary()
        result.update(changed=summary['changed'], summary=summary, ansible_facts={args['summary_fact']: summary})
        if run.diffs:
            result['diff'] = run.diffs
        if run.failure and args['fail_on_error']:
            result.update(failed=True, msg=run.failure)
        return result


class _Run:
    """The state of one host's sequence."""

    def __init__(self, action: ActionModule, task_vars: dict[str, t.Any], args: dict[str, t.Any], host: str,
                 checked: _policy.Policy) -> None:
        self.action = action
        self.task_vars = task_vars
        self.args = args
        self.host = host
        self.checked = checked
        self.policy = checked.as_dict()
        self.check_mode = bool(action._task.check_mode)
        self.nonce = secrets.token_hex(32)
        self.facts: dict[str, t.Any] = {}
        self.plan: dict[str, t.Any] = {}
        self.found: dict[str, t.Any] = {}
        self.failure: t.Optional[str] = None
        self.changed = False
        self.diffs: list[t.Any] = []
        self.calls: list[str] = []
        # One run id for every module call of this host's acceptance: the host's run lock is held across them.
        self.run: dict[str, t.Any] = {'id': _acceptance.run_id('acc'), 'policy_version': self.policy['version'], 'lease': args['run_lease']}
        if args['break_run']:
            self.run['break'] = args['break_run']
        self.holding = False
        self.outcomes: dict[str, dict[str, t.Any]] = {}

    # -- module calls ------------------------------------------------------------------------------
    def _module(self, name: str, step: str, release: bool = False, tolerate: bool = False, **module_args: t.Any) -> dict[str, t.Any]:
        # device_trust reads the evidence generation too, before it raises a device to tcb.
        common = {k: self.args[k] for k in ('sysfs_root', 'state_dir', 'evidence_endpoint') if self.args[k] is not None}
        common.update(module_args)
        common['run'] = dict(self.run, release=release)
        self.calls.append(name)
        res = self.action._execute_module(module_name='coco.tdisp.%s' % name, module_args=common, task_vars=self.task_vars)
        lock = res.get('run_lock')
        if name != 'tdisp_device_info' and not self.check_mode:
            # A writing module takes (or renews) the lease and the releasing call gives it back; a call
            # that died before it reported (a module killed, a connection lost) may hold it still.
            self.holding = bool(lock.get('held')) and not lock.get('released') if isinstance(lock, dict) else not release
        if res.get('changed'):
            self.changed = True
        if res.get('diff'):
            self.diffs.extend(res['diff'] if isinstance(res['diff'], list) else [res['diff']])
        if name != 'tdisp_device_info':
            self._outcomes(res)
        if res.get('unreachable') or (res.get('failed') and not (tolerate and self._per_device(res))):
            raise _Stop('%s: %s' % (step, to_text(res.get('msg') or 'failed')))
        return res

    @staticmethod
    def _per_device(res: dict[str, t.Any]) -> bool:
        """Whether a failed module run says which devices failed (the others went on: one device never holds the host back)."""
        return any(isinstance(d, dict) and d.get('failed') for d in _device_results(res))

    def _outcomes(self, res: dict[str, t.Any]) -> None:
        for dev in _device_results(res):
            if isinstance(dev, dict) and isinstance(dev.get('bdf'), str):
                mine = self.outcomes.setdefault(dev['bdf'], {})
                mine.update({k: dev[k] for k in _OUTCOME_KEYS if k in dev})
                if not dev.get('failed'):
                    mine.pop('failed', None)
                    mine.pop('msg', None)

    def release(self) -> None:
        """Give the host's run lock back (also when the sequence failed): the last call did not, or it failed."""
        if not self.holding:
            return
        try:
            self._module('device_trust', 'Release the host\'s run lock', release=True, devices=[])
        except _Stop as stop:
            display.warning('%s: %s' % (self.host, stop))
            if self.failure is None:
                self.failure = '%s: %s' % (self.host, stop)

    def _read(self) -> dict[str, t.Any]:
        return self._module('tdisp_device_info', 'Read the host\'s devices, their evidence and the ledger',
                            all_devices=True, include_evidence=True, nonce=self.nonce)

    def _step(self, facts: dict[str, t.Any], locked_now: t.Optional[list[str]] = None) -> dict[str, t.Any]:
        try:
            return _acceptance.step(facts, self.checked, self.args['manifests'], nonce=self.nonce,
                                    allow_disruptive=self.args['allow_disruptive'], locked_now=locked_now,
                                    critical=self.args['critical_devices'], retry_rejected=self.args['retry_rejected'])
        except TdispError as err:  # the planner's, the policy's, a manifest's or the verifier's
            raise _Stop('Plan the host: %s' % '; '.join(err.problems)) from None

    # -- the sequence ------------------------------------------------------------------------------
    def converge(self, critical: list[str]) -> None:
        del critical  # validated with the rest by the planner
        self.facts = self._read()
        applied = (self.facts.get('ledger') or {}).get('policy') or {}
        if applied.get('version') and not self.args['allow_older_policy'] and \
                _acceptance.version_key(self.policy['version']) < _acceptance.version_key(applied['version']):
            raise _Stop('Refuse to replace a newer policy with an older one: %s runs policy %s, newer than %s; apply the newer '
                        'policy, or set acceptance_allow_older_policy: true to roll back'
                        % (self.host, applied['version'], self.policy['version']))
        self.plan = self._step(self.facts)
        self.found = {d['bdf']: d['current'] for d in self.plan['decisions']}
        if self.plan['preflight'] and not self.args['force']:
            raise _Stop('Refuse a plan that would cut the host off: lockout preflight: %s; list the device in a rule that keeps it '
                        'in service, or set tdisp_acceptance_force: true' % '; '.join(p['reason'] for p in self.plan['preflight']))
        to_lock = self.plan['lock'] + self.plan['relock']
        if to_lock:
            # The evidence to verify (the interface report above all) exists once the devices are
            # locked: the lock returns the host's facts read again, with the evidence.
            lock_args: dict[str, t.Any] = {}
            if not self.check_mode:
                lock_args = {'facts': True, 'include_evidence': True, 'nonce': self.nonce}
            locked = self._module('tdisp_device', 'Lock the devices the policy wants in the TCB', tolerate=True, devices=to_lock,
                                  tsm=self.args['tsm'], unbind_driver=True, rebind_driver=False,
                                  allow_disruptive=bool(self.plan['relock']), **lock_args)
            if locked.get('changed') and not self.check_mode:
                # A device that failed to lock does not hold the others back; the facts are then read again.
                self.facts = locked['facts'] if isinstance(locked.get('facts'), dict) else self._read()
                self.plan = self._step(self.facts, locked_now=[d['bdf'] for d in to_lock
                                                               if not self.outcomes.get(d['bdf'], {}).get('failed')])
        for attempt in (1, 2):
            res = self._apply(applied)
            again = sorted(b for b, o in self.outcomes.items() if o.get('needs_reverify') and o.get('failed'))
            if not again or attempt == 2 or res is None or self.check_mode:
                break
            # ERROR while LOCKED, or EIO on accept: the module took them back through unlock -> lock (no driver
            # bound, nothing disrupted). Read their evidence again, verify it, and accept what verifies.
            for bdf in again:
                self.outcomes[bdf]['needs_reverify'] = 'reverified'
            self.facts = self._read()
            self.plan = self._step(self.facts, locked_now=again)
        failed = sorted('%s: %s' % (b, o.get('msg') or 'failed') for b, o in self.outcomes.items() if o.get('failed'))
        if failed:
            raise _Stop('Accept and set the trust levels: %d device%s failed (the others went on): %s'
                        % (len(failed), '' if len(failed) == 1 else 's', '; '.join(failed)))

    def _apply(self, applied: dict[str, t.Any]) -> t.Optional[dict[str, t.Any]]:
        """The last module run of the plan: accept/unlock, then the trust levels and the policy version; it releases the run lock."""
        moves = self.plan['accept'] + self.plan['unlock']
        levels = self.plan['trust'] + ([] if self.check_mode else self.plan['trust_after_accept'])
        converges = not self.plan['refused']
        record = converges and applied.get('version') != self.plan['policy_version']
        trust: t.Optional[dict[str, t.Any]] = None
        if levels or record:
            trust = {'devices': levels, 'allow_disruptive': self.args['allow_disruptive']}
            if converges:
                # Recorded only when nothing was refused: a host left half-way keeps the older version.
                trust['policy_version'] = self.plan['policy_version']
        if moves:
            # One module run: accept/unlock, then the trust levels of every device whose state change did not fail.
            return self._module('tdisp_device', 'Accept the devices whose evidence verified, unlock the ones that must leave TDISP, '
                                'then set the trust levels and record the policy version', release=True, tolerate=True, devices=moves,
                                tsm=self.args['tsm'], unbind_driver=True, rebind_driver=True, allow_disruptive=bool(self.plan['unlock']),
                                **({'trust': trust} if trust is not None else {}))
        if trust is not None:
            return self._module('device_trust', 'Set the trust levels and record the policy version', release=True, tolerate=True,
                                unbind_driver=True, **trust)
        return None

    def summary(self) -> dict[str, t.Any]:
        return _acceptance.summarize(self.host, self.policy, self.facts, self.plan, self.found, check_mode=self.check_mode,
                                     failure=self.failure, changed=self.changed, calls=self.calls, outcomes=self.outcomes,
                                     run_id=self.run['id'])


def _device_results(res: dict[str, t.Any]) -> list[t.Any]:
    """The per-device results of a tdisp_device (with its trust part) or device_trust run."""
    trust = res.get('trust') if isinstance(res.get('trust'), dict) else {}
    return [d for part in (res.get('devices'), trust.get('devices')) if isinstance(part, list) for d in part]
