# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""One run per host: ``<state_dir>/run.lock`` (private; may change at any time).

The holder is ``{pid, pid_start, boot_id, run_id, policy_version, started, renewed, expires}``.
Without a run id the lock lasts one module call; with the controller's run id (option ``run``)
it is a lease that every call of that run renews and the last one releases (``run.release``).
Every change happens under the ``flock`` of ``state_dir`` that the ledger uses, so two runs never
both take it, and two breakers of a stale lock never both break it. Check mode writes nothing
but still refuses when another live run holds the host. docs/reliability.md is the contract.
"""

from __future__ import annotations

import json
import os
import re
import time
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.ledger import DirLock, now_stamp, write_atomic

FILE = 'run.lock'
RUN_ID_RE = re.compile(r'\A[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z')
DEFAULT_LEASE = 600
LEASE_RANGE = (10, 86400)
RUN_KEYS = ('id', 'policy_version', 'lease', 'release', 'break')


def _check_id(value: t.Any, key: str) -> t.Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not RUN_ID_RE.match(value):
        raise TdispError('run.%s %r is not a run id (letters, digits and ._:- up to 64 characters)' % (key, value),
                         attribute='run.%s' % key, remedy='pass the run id the controller chose')
    return value


def check_run(run: t.Optional[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    """The ``run`` option, checked and with its defaults."""
    run = dict(run or {})
    unknown = sorted(set(k for k, v in run.items() if v is not None) - set(RUN_KEYS))
    if unknown:
        raise TdispError('run has unknown keys %s (known: %s)' % (', '.join(unknown), ', '.join(RUN_KEYS)), attribute='run')
    version = run.get('policy_version')
    if version is not None and (not isinstance(version, str) or not version.strip() or len(version) > 128 or '\n' in version):
        raise TdispError('run.policy_version %r is not a policy version' % (version,), attribute='run.policy_version')
    lease = run.get('lease')
    lease = DEFAULT_LEASE if lease is None else lease
    if isinstance(lease, bool) or not isinstance(lease, int) or not LEASE_RANGE[0] <= lease <= LEASE_RANGE[1]:
        raise TdispError('run.lease %r is not a number of seconds from %d to %d' % ((lease,) + LEASE_RANGE), attribute='run.lease')
    release = run.get('release')
    if release is not None and not isinstance(release, bool):
        raise TdispError('run.release %r is not a boolean' % (release,), attribute='run.release')
    return {'id': _check_id(run.get('id'), 'id'), 'policy_version': version, 'lease': lease, 'release': bool(release),
            'break': _check_id(run.get('break'), 'break')}


def _read_text(path: str) -> t.Optional[str]:
    try:
        with open(path, 'r', encoding='ascii', errors='replace') as f:
            return f.read()
    except OSError:
        return None


def pid_start(pid: int) -> t.Optional[int]:
    """The start time (clock ticks since boot, /proc/<pid>/stat field 22) of a live process, None when it is gone."""
    text = _read_text('/proc/%d/stat' % pid)
    if text is None or ')' not in text:
        return None
    fields = text.rsplit(')', 1)[1].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def boot_id() -> t.Optional[str]:
    text = _read_text('/proc/sys/kernel/random/boot_id')
    return text.strip() if text else None


def describe(holder: t.Mapping[str, t.Any]) -> str:
    return 'pid %s (run %s, started %s, policy %s)' % (holder.get('pid'), holder.get('run_id') or 'without id',
                                                       holder.get('started'), holder.get('policy_version') or 'none')


class RunLock:
    def __init__(self, state_dir: str, run: t.Optional[t.Mapping[str, t.Any]], check_mode: bool,
                 clock: t.Callable[[], float] = time.time) -> None:
        self.state_dir = state_dir.rstrip('/') or '/'
        self.path = os.path.join(self.state_dir, FILE)
        self.run = check_run(run)
        self.check_mode = check_mode
        self.clock = clock
        self.result: t.Dict[str, t.Any] = {'held': False, 'run_id': self.run['id'], 'broken': None, 'released': False}

    # -- reading --------------------------------------------------------------------------------
    def holder(self) -> t.Optional[t.Dict[str, t.Any]]:
        text = _read_text(self.path)
        if text is None:
            return None
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or isinstance(data.get('pid'), bool) or not isinstance(data.get('pid'), int):
                raise ValueError('no pid')
        except ValueError as exc:
            raise TdispError('the run lock %s is unreadable (%s)' % (self.path, exc), attribute='run lock',
                             remedy='make sure no run is active on this host, then move it aside')
        return data

    def _alive(self, holder: t.Mapping[str, t.Any]) -> bool:
        if holder.get('boot_id') and holder.get('boot_id') != boot_id():
            return False
        start = pid_start(holder['pid'])
        return start is not None and (holder.get('pid_start') is None or start == holder.get('pid_start'))

    def _ours(self, holder: t.Mapping[str, t.Any]) -> bool:
        if self.run['id'] is not None:
            return holder.get('run_id') == self.run['id']
        return holder.get('pid') == os.getpid()

    def _stale(self, holder: t.Mapping[str, t.Any]) -> bool:
        if holder.get('boot_id') and holder.get('boot_id') != boot_id():
            return True
        if self._alive(holder):
            return False
        if holder.get('run_id') is None:
            return True
        expires = holder.get('expires')
        expired = not isinstance(expires, (int, float)) or isinstance(expires, bool) or expires < self.clock()
        return expired or (self.run['break'] is not None and holder.get('run_id') == self.run['break'])

    def _refuse(self, holder: t.Mapping[str, t.Any]) -> TdispError:
        remedy = 'wait for it to finish'
        if holder.get('run_id'):
            remedy += '; if that run is dead, its lease ends at its expiry, or pass run.break: %s' % holder['run_id']
        return TdispError('another run holds this host: %s' % describe(holder), attribute='run lock', remedy=remedy)

    # -- taking and giving back -------------------------------------------------------------------
    def acquire(self) -> t.Dict[str, t.Any]:
        """Take (or renew) the lock; raise TdispError naming the holder when another live run has it."""
        if self.check_mode:
            holder = self.holder() if os.path.isdir(self.state_dir) else None
            if holder is not None and not self._ours(holder) and not self._stale(holder):
                raise self._refuse(holder)
            return self.result
        try:
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
            with DirLock(self.state_dir):
                holder = self.holder()
                if holder is not None and not self._ours(holder):
                    if not self._stale(holder):
                        raise self._refuse(holder)
                    self.result['broken'] = {k: holder.get(k) for k in ('pid', 'run_id', 'started', 'policy_version')}
                    holder = None
                self._write(holder)
        except OSError as exc:
            raise TdispError('cannot take the run lock %s (%s)' % (self.path, exc.strerror), attribute='state_dir',
                             remedy='point state_dir at a writable directory')
        self.result['held'] = True
        return self.result

    def _write(self, previous: t.Optional[t.Mapping[str, t.Any]]) -> None:
        now = self.clock()
        data = {'pid': os.getpid(), 'pid_start': pid_start(os.getpid()), 'boot_id': boot_id(), 'run_id': self.run['id'],
                'policy_version': self.run['policy_version'] or (previous or {}).get('policy_version'),
                'started': (previous or {}).get('started') or now_stamp(), 'renewed': now_stamp(),
                'expires': now + self.run['lease'] if self.run['id'] is not None else None}
        write_atomic(self.path, json.dumps(data, sort_keys=True) + '\n')

    def finish(self) -> None:
        """At the end of the call: release (no run id, or run.release), else renew the lease from now."""
        if self.check_mode or not self.result['held']:
            return
        try:
            with DirLock(self.state_dir):
                holder = self.holder()
                if holder is None or not self._ours(holder):
                    return
                if self.run['id'] is None or self.run['release']:
                    os.unlink(self.path)
                    self.result['released'] = True
                else:
                    self._write(holder)
        except (OSError, TdispError):
            pass
