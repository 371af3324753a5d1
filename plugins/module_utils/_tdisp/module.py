# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The glue between an ``AnsibleModule`` and the domain (private; may change at any time).

``run(module, body)`` calls ``body()`` and hands its result to ``finish``; a ``TdispError``, or
an ``OSError`` nothing below expected, becomes a one-line ``fail_json``, never a traceback.
``HostRun`` wraps a host module's body: ``sysfs_root`` must be sysfs (or the simulator, or a
declared rehearsal tree), the run lock is held around it, and the run is bounded.
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError, unexpected_oserror
from ansible_collections.coco.tdisp.plugins.module_utils._abi.fstype import SIMULATOR, SYSFS, read_fstype
from ansible_collections.coco.tdisp.plugins.module_utils._abi.sysfs import Sysfs
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.bounds import DEFAULT_DEADLINE, Bounds, check_deadline
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.ledger import Ledger
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.options import Options
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.runlock import RunLock, check_run, describe


def _diff(devices: t.Sequence[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    return {'before': {'devices': [d['before'] for d in devices]}, 'after': {'devices': [d['after'] for d in devices]}}


def finish(module: t.Any, result: t.Dict[str, t.Any], diff: bool = True) -> None:
    """Hand a result to the AnsibleModule: warnings, the structured diff of a converge result (``diff``), exit or fail."""
    for warning in result.pop('warnings', []):
        module.warn(warning)
    if diff and getattr(module, '_diff', False):
        trust_devices = (result.get('trust') or {}).get('devices')
        result['diff'] = [_diff(result['devices']), _diff(trust_devices)] if trust_devices else _diff(result['devices'])
    if result.pop('failed', False):
        msg = result.pop('msg')
        module.fail_json(msg=msg, **result)
    module.exit_json(**result)


def run(module: t.Any, body: t.Callable[[], t.Dict[str, t.Any]], diff: bool = True) -> None:
    """Run a module's body and finish with its result (``diff``: a converge result with before/after devices)."""
    try:
        result = body()
    except TdispError as exc:
        module.fail_json(msg=str(exc))
        return
    except OSError as exc:  # not one the ABI layer expects: still one line, never a traceback
        module.fail_json(msg=unexpected_oserror(exc))
        return
    finish(module, result, diff)


def check_sysfs_root(root: str, rehearsal: bool) -> None:
    """Refuse a ``sysfs_root`` that is not sysfs (``/sys``) or the simulator's mount, unless a rehearsal tree is declared."""
    if rehearsal:
        return
    canon = os.path.realpath(root)
    kind, why = read_fstype(canon)
    allowed = (SYSFS,) if canon == '/sys' else (SYSFS, SIMULATOR)
    if kind not in allowed:
        where = 'on a %s filesystem' % kind if kind else why or 'on no known mount'
        raise TdispError('sysfs_root %s is %s, not %s' % (root, where, ' or '.join(allowed)), attribute='sysfs_root',
                         remedy='point it at /sys or a simulated host; for a plain rehearsal tree set rehearsal: true')


class HostRun:
    """What every host module run shares: the sysfs check, the run lock, the deadline (docs/reliability.md)."""

    def __init__(self, params: t.Mapping[str, t.Any], check_mode: bool, read_only: bool = False) -> None:
        self.params = params
        self.check_mode = check_mode
        self.bounds = Bounds(check_deadline(params.get('deadline', DEFAULT_DEADLINE)))
        self.run = check_run(params.get('run'))
        state_dir = params.get('state_dir')
        # A read-only module takes no lock; given a run id it still refuses a host another live run holds.
        self.lock = None
        if state_dir and (not read_only or self.run['id'] is not None):
            self.lock = RunLock(state_dir, self.run, check_mode or read_only)
        self.rehearsal = bool(params.get('rehearsal'))

    def sysfs(self) -> Sysfs:
        sysfs = Sysfs(self.params['sysfs_root'])
        check_sysfs_root(self.params['sysfs_root'], self.rehearsal)
        return sysfs

    def ledger(self, policy_version: t.Optional[str] = None) -> Ledger:
        ledger = Ledger(self.params['state_dir'])
        ledger.run_id = self.run['id']
        ledger.policy_version = self.run['policy_version'] or policy_version
        return ledger

    def options(self, **opts: t.Any) -> Options:
        return Options(check_mode=self.check_mode, guard=self.bounds.check, **opts)

    def __call__(self, body: t.Callable[['HostRun'], t.Dict[str, t.Any]]) -> t.Callable[[], t.Dict[str, t.Any]]:
        """The module body bounded, under the run lock; the result names the lock and a rehearsal."""
        def bounded() -> t.Dict[str, t.Any]:
            with self.bounds:
                if self.lock is not None:
                    self.lock.acquire()
                try:
                    result = body(self)
                finally:
                    if self.lock is not None:
                        self.lock.finish()
            if self.lock is not None:
                result['run_lock'] = dict(self.lock.result)
                if self.lock.result['broken']:
                    result.setdefault('warnings', []).append('broke the stale run lock of %s' % describe(self.lock.result['broken']))
            if self.rehearsal:
                result['rehearsal'] = True
            return result
        return bounded
