# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The controller-side action plugins run without a host: build one and run it."""

from __future__ import annotations

import typing as t
from unittest import mock

from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task


def run_action(action_class: t.Any, args: dict[str, t.Any], task_vars: t.Optional[dict[str, t.Any]] = None, check: bool = False,
               diff: bool = False) -> dict[str, t.Any]:
    """The result of ``action_class`` run with ``args`` (and the task's check and diff flags)."""
    task = Task()
    task.args = args
    task.check_mode = check
    task.diff = diff
    connection = mock.MagicMock()
    connection._shell.tmpdir = None
    action = action_class(task, connection, PlayContext(), loader=None, templar=None, shared_loader_obj=None)
    return action.run(task_vars=task_vars or {})
