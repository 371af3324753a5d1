# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The module glue: every failure is one fail_json line; a converge result gets its structured diff."""

from __future__ import annotations

import errno

import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.module import run


class Done(Exception):
    pass


class FakeModule:
    def __init__(self, diff=False):
        self._diff = diff
        self.warnings = []
        self.exited = self.failed = None

    def warn(self, text):
        self.warnings.append(text)

    def exit_json(self, **kw):
        self.exited = kw
        raise Done

    def fail_json(self, **kw):
        self.failed = kw
        raise Done


def call(module, body, **kw):
    with pytest.raises(Done):
        run(module, body, **kw)
    return module


def raise_(exc):
    def body():
        raise exc
    return body


def test_domain_error_is_one_line():
    m = call(FakeModule(), raise_(TdispError('bad', device='0000:41:00.0', attribute='tsm/lock', remedy='fix it')))
    assert m.failed == {'msg': '0000:41:00.0 tsm/lock: bad; fix it'}


def test_unexpected_oserror_is_one_line():
    m = call(FakeModule(), raise_(OSError(errno.EACCES, 'Permission denied', '/sys/x')))
    assert m.failed == {'msg': '/sys/x: Permission denied (EACCES); check the path and run as root'}


def test_converge_result_diff_warnings_and_failure():
    dev = {'bdf': 'b', 'before': {'x': 1}, 'after': {'x': 2}}
    m = call(FakeModule(diff=True), lambda: {'changed': True, 'devices': [dev], 'warnings': ['w'], 'failed': True, 'msg': 'm'})
    assert m.warnings == ['w']
    assert m.failed == {'msg': 'm', 'changed': True, 'devices': [dev],
                        'diff': {'before': {'devices': [{'x': 1}]}, 'after': {'devices': [{'x': 2}]}}}


def test_no_diff_for_a_reader():
    m = call(FakeModule(diff=True), lambda: {'changed': False, 'devices': []}, diff=False)
    assert m.exited == {'changed': False, 'devices': []}
