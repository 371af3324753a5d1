# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of coco.tdisp.write_report: write a report file on the controller.

Reports (rollout, audit, revocation) are controller artifacts. Writing them here, in the
controller process, costs no module run: ``ansible.builtin.copy`` would build and run two modules
(``stat``, ``copy``) for every report, which on a fleet rollout is a measurable share of the run
(docs/performance.md).
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase

ARGUMENT_SPEC: dict[str, t.Any] = {
    'path': {'type': 'path', 'required': True},
    'content': {'type': 'str', 'required': True},
    'mode': {'type': 'str', 'default': '0644'},
}


def _mode(value: str) -> int:
    try:
        mode = int(value, 8)
    except (TypeError, ValueError):
        mode = -1
    if not 0 <= mode <= 0o777:
        raise AnsibleActionFail('write_report: mode %r is not an octal permission such as \'0644\'' % (value,))
    return mode


def _fail(path: str, what: str, exc: OSError) -> AnsibleActionFail:
    name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return AnsibleActionFail('write_report: cannot %s %s: %s (%s); check the directory and its permissions on the controller'
                             % (what, path, exc.strerror or exc, name))


class ActionModule(ActionBase):
    """Write ``content`` to ``path`` on the controller, atomically, only when it differs."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: t.Any = None, task_vars: t.Optional[dict[str, t.Any]] = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        path = os.path.abspath(args['path'])
        mode = _mode(args['mode'])
        data = to_bytes(args['content'], errors='surrogate_or_strict')
        try:
            with open(path, 'rb') as f:
                old: t.Optional[bytes] = f.read()
            old_mode: t.Optional[int] = os.stat(path).st_mode & 0o777
        except FileNotFoundError:
            old, old_mode = None, None
        except OSError as exc:
            raise _fail(path, 'read', exc) from None
        changed = old != data or old_mode != mode
        result.update(changed=changed, path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest())
        if self._task.diff and old != data:
            result['diff'] = {'before_header': path, 'after_header': path, 'before': to_text(old or b''), 'after': to_text(data)}
        if not changed or self._task.check_mode:
            return result
        directory = os.path.dirname(path)
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(path))
        except OSError as exc:
            raise _fail(path, 'create a file next to', exc) from None
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(data)
                os.fchmod(f.fileno(), mode)
            os.replace(temp, path)
        except OSError as exc:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise _fail(path, 'write', exc) from None
        return result
