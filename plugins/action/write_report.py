# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of coco.tdisp.write_report: write a report file on the controller.

Reports (rollout, audit, revocation) are controller artifacts. Writing them here, in the
controller process, costs no module run: ``ansible.builtin.copy`` would build and run two modules
(``stat``, ``copy``) for every report, which on a fleet rollout is a measurable share of the run
(docs/performance.md). The writing is ``plugin_utils/_files.py``.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.action import ActionBase

from ansible_collections.coco.tdisp.plugins.plugin_utils import _files
from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import call

ARGUMENT_SPEC: dict[str, t.Any] = {
    'path': {'type': 'path', 'required': True},
    'content': {'type': 'str', 'required': True},
    'mode': {'type': 'str', 'default': '0644'},
}


class ActionModule(ActionBase):
    """Write ``content`` to ``path`` on the controller, atomically, only when it differs."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: t.Any = None, task_vars: t.Optional[dict[str, t.Any]] = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        mode = call(AnsibleActionFail, 'write_report', _files.parse_mode, args['mode'])
        data = to_bytes(args['content'], errors='surrogate_or_strict')
        result.update(call(AnsibleActionFail, 'write_report', _files.write, args['path'], data, mode,
                           bool(self._task.check_mode), bool(self._task.diff)))
        return result
