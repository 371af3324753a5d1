# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""coco.tdisp.write_report: the controller-side report writer (atomic, only when different,
nothing in check mode, one-line errors)."""

from __future__ import annotations

import os

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.coco.tdisp.plugins.action.write_report import ActionModule
from ansible_collections.coco.tdisp.tests.unit.plugins.action.action_runner import run_action


def run(args, check=False, diff=False):
    return run_action(ActionModule, args, check=check, diff=diff)


def test_writes_creates_the_directory_and_is_idempotent(tmp_path):
    path = tmp_path / 'reports' / 'deep' / 'rollout.json'
    out = run({'path': str(path), 'content': '{"a": 1}\n'})
    assert out['changed'] is True and out['path'] == str(path) and out['size'] == 9
    assert path.read_text() == '{"a": 1}\n' and oct(path.stat().st_mode & 0o777) == '0o644'
    assert oct((tmp_path / 'reports').stat().st_mode & 0o777) == '0o755'
    again = run({'path': str(path), 'content': '{"a": 1}\n'})
    assert again['changed'] is False and again['sha256'] == out['sha256']
    assert sorted(os.listdir(path.parent)) == ['rollout.json']  # no temporary file left behind


def test_mode_and_content_changes(tmp_path):
    path = tmp_path / 'r.json'
    run({'path': str(path), 'content': 'one\n'})
    assert run({'path': str(path), 'content': 'one\n', 'mode': '0600'})['changed'] is True
    assert oct(path.stat().st_mode & 0o777) == '0o600'
    out = run({'path': str(path), 'content': 'two\n', 'mode': '0600'}, diff=True)
    assert out['changed'] is True and out['diff']['before'] == 'one\n' and out['diff']['after'] == 'two\n'
    assert path.read_text() == 'two\n'


def test_check_mode_writes_nothing(tmp_path):
    path = tmp_path / 'reports' / 'r.json'
    out = run({'path': str(path), 'content': 'x\n'}, check=True)
    assert out['changed'] is True
    assert not (tmp_path / 'reports').exists()


@pytest.mark.parametrize('args, text', [
    ({'path': '/x', 'content': 'x', 'mode': 'rw'}, "mode 'rw' is not an octal permission"),
    ({'path': '/x', 'content': 'x', 'mode': '1777'}, 'is not an octal permission'),
])
def test_bad_input(args, text):
    with pytest.raises(AnsibleActionFail, match=text):
        run(args)


def test_unwritable_directory_is_one_line(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('')
    with pytest.raises(AnsibleActionFail) as err:
        run({'path': str(blocker / 'r.json'), 'content': 'x'})
    assert 'ENOTDIR' in str(err.value) and '\n' not in str(err.value) and 'permissions on the controller' in str(err.value)
