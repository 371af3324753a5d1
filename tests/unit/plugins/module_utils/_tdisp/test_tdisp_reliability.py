# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Issue 10, target side: the run lock, the bounds of a run, the sysfs check (docs/reliability.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp import bounds, runlock
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.module import check_sysfs_root


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def plant(state, **holder):
    os.makedirs(str(state), exist_ok=True)
    data = {'pid': os.getppid(), 'pid_start': runlock.pid_start(os.getppid()), 'boot_id': runlock.boot_id(),
            'run_id': None, 'policy_version': '2026.11.1', 'started': '2026-12-04T19:30:00Z'}
    data.update(holder)
    (state / runlock.FILE).write_text(json.dumps(data))


def test_lock_taken_and_released_without_run_id(tmp_path):
    lock = runlock.RunLock(str(tmp_path / 's'), None, False)
    assert lock.acquire()['held'] is True
    holder = json.loads((tmp_path / 's' / runlock.FILE).read_text())
    assert holder['pid'] == os.getpid() and holder['run_id'] is None
    lock.finish()
    assert lock.result['released'] is True and not (tmp_path / 's' / runlock.FILE).exists()


def test_a_live_holder_refuses_at_once_naming_it(tmp_path):
    plant(tmp_path, run_id='r-other')
    for check_mode in (False, True):
        with pytest.raises(TdispError) as info:
            runlock.RunLock(str(tmp_path), {'id': 'r-mine'}, check_mode).acquire()
        msg = str(info.value)
        assert 'another run holds this host: pid %d (run r-other, started 2026-12-04T19:30:00Z, policy 2026.11.1)' % os.getppid() in msg
        assert '\n' not in msg


def test_a_lease_is_renewed_by_its_run_and_released_by_the_last_call(tmp_path):
    first = runlock.RunLock(str(tmp_path), {'id': 'r-1', 'policy_version': 'v1'}, False)
    first.acquire()
    first.finish()
    assert (tmp_path / runlock.FILE).exists() and first.result['released'] is False   # held between module runs
    with pytest.raises(TdispError):
        runlock.RunLock(str(tmp_path), {'id': 'r-2'}, False).acquire()   # lease not expired
    last = runlock.RunLock(str(tmp_path), {'id': 'r-1', 'release': True}, False)
    last.acquire()
    assert json.loads((tmp_path / runlock.FILE).read_text())['policy_version'] == 'v1'
    last.finish()
    assert not (tmp_path / runlock.FILE).exists()


def test_stale_locks_are_broken(tmp_path):
    plant(tmp_path, pid=dead_pid())   # a dead run without id
    lock = runlock.RunLock(str(tmp_path), None, False)
    assert lock.acquire()['broken']['policy_version'] == '2026.11.1'
    lock.finish()
    plant(tmp_path, pid=dead_pid(), run_id='r-old', expires=1.0)   # an expired lease
    assert runlock.RunLock(str(tmp_path), {'id': 'r-new'}, False).acquire()['broken']['run_id'] == 'r-old'
    plant(tmp_path, pid=dead_pid(), run_id='r-old', expires=4e9)   # a lease the operator breaks by name
    with pytest.raises(TdispError) as info:
        runlock.RunLock(str(tmp_path), {'id': 'r-new'}, False).acquire()
    assert 'run.break: r-old' in str(info.value)
    assert runlock.RunLock(str(tmp_path), {'id': 'r-new', 'break': 'r-old'}, False).acquire()['broken']
    plant(tmp_path, pid=os.getppid(), boot_id='another-boot')   # from before a reboot
    assert runlock.RunLock(str(tmp_path), None, False).acquire()['broken']


def test_check_mode_writes_nothing(tmp_path):
    lock = runlock.RunLock(str(tmp_path / 's'), {'id': 'r-1'}, True)
    lock.acquire()
    lock.finish()
    assert not (tmp_path / 's').exists()


@pytest.mark.parametrize('run, text', [
    ({'id': 'bad id'}, 'is not a run id'), ({'lease': 5}, 'run.lease'), ({'lease': True}, 'run.lease'),
    ({'policy_version': 'a\nb'}, 'run.policy_version'), ({'bogus': 1}, 'unknown keys'),
])
def test_run_option_checked(run, text):
    with pytest.raises(TdispError) as info:
        runlock.check_run(run)
    assert text in str(info.value)


def test_deadline_and_parent_gone(monkeypatch):
    now = [100.0]
    b = bounds.Bounds(10, clock=lambda: now[0])
    b.check()
    now[0] = 111.0
    with pytest.raises(bounds.RunStopped) as info:
        b.check()
    assert 'deadline of 10 s' in str(info.value)
    b = bounds.Bounds(10, clock=lambda: 0.0)
    monkeypatch.setattr(os, 'getppid', lambda: 1)
    with pytest.raises(bounds.RunStopped) as info:
        b.check()
    assert 'the controller went away' in str(info.value)
    for bad in (0, 86401, True, 'x'):
        with pytest.raises(TdispError):
            bounds.check_deadline(bad)


def test_the_timer_stops_a_hung_call():
    b = bounds.Bounds(1)
    b.until = b.clock() + 0.1
    with pytest.raises(bounds.RunStopped):
        with b:
            while True:
                pass


def test_a_plain_tree_is_refused_unless_declared(tmp_path):
    with pytest.raises(TdispError) as info:
        check_sysfs_root(str(tmp_path), False)
    assert 'not sysfs or fuse.tdisp-sim' in str(info.value) and 'rehearsal: true' in str(info.value)
    check_sysfs_root(str(tmp_path), True)
