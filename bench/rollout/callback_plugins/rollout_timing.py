# -*- coding: utf-8 -*-
# Copyright: contributors to coco.tdisp
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bench/rollout's timing callback (a bench helper, not part of the collection).

Enabled by bench/rollout/run with ANSIBLE_CALLBACK_PLUGINS=bench/rollout/callback_plugins and
ANSIBLE_CALLBACKS_ENABLED=rollout_timing; writes one JSON document to $ROLLOUT_TIMING_OUT when the
playbook ends:

* ``tasks``: per task, in the order they ran (a task that runs once per wave shows once per wave):
  name, action, wall seconds from the task's start to the next task's start (or the end),
  and how many host results it produced;
* ``per_host``: per host, the module executions (results of tasks that run a module, loop items
  counted one by one; controller-only actions such as set_fact, assert, fail, debug, meta and
  coco.tdisp.write_report are not counted), split into those on the host and those delegated to
  another host (localhost),
  and how many of those tasks reported a change;
* ``by_action``: module executions per action over all hosts.

Timestamps are the controller's; nothing here changes what the playbook does.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: rollout_timing
type: aggregate
short_description: per-task wall times and per-host module executions for bench/rollout
description: Writes a JSON summary to the file named by ROLLOUT_TIMING_OUT when the playbook ends.
requirements: [enable in configuration]
"""

# Actions that run on the controller only and start no module on a target.
CONTROLLER_ONLY = frozenset(
    a for name in ('set_fact', 'assert', 'fail', 'debug', 'meta', 'include_tasks', 'import_tasks', 'include_role',
                   'import_role', 'include_vars', 'add_host', 'group_by', 'pause', 'set_stats', 'validate_argument_spec')
    for a in (name, 'ansible.builtin.' + name, 'ansible.legacy.' + name)) | {'coco.tdisp.write_report'}


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'rollout_timing'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._t0 = time.monotonic()
        self._tasks: list = []
        self._per_host: dict = {}
        self._by_action: dict = {}

    def _close_task(self, now: float) -> None:
        if self._tasks and self._tasks[-1]['end'] is None:
            self._tasks[-1]['end'] = now

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        now = time.monotonic()
        self._close_task(now)
        self._tasks.append({'name': task.get_name(), 'action': task.action, 'start': now, 'end': None, 'results': 0})

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    def v2_playbook_on_play_start(self, play) -> None:
        self._close_task(time.monotonic())

    def _count(self, result, items: int = 1) -> None:
        if self._tasks:
            self._tasks[-1]['results'] += 1
        task = result._task
        if task.action in CONTROLLER_ONLY:
            return
        host = result._host.get_name()
        rec = self._per_host.setdefault(host, {'on_host': 0, 'delegated': 0, 'changed': 0})
        delegated = bool(task.delegate_to) and task.delegate_to != host
        rec['delegated' if delegated else 'on_host'] += items
        if result._result.get('changed'):
            rec['changed'] += 1
        self._by_action[task.action] = self._by_action.get(task.action, 0) + items

    def _finished(self, result) -> None:
        res = result._result
        if res.get('skipped') and not res.get('results'):
            if self._tasks:
                self._tasks[-1]['results'] += 1
            return
        if 'results' in res and isinstance(res['results'], list):  # a loop: one execution per item run
            self._count(result, sum(1 for r in res['results'] if not r.get('skipped')))
        else:
            self._count(result)

    v2_runner_on_ok = _finished
    v2_runner_on_failed = _finished

    def v2_runner_on_unreachable(self, result) -> None:
        self._finished(result)

    def v2_runner_on_skipped(self, result) -> None:
        if self._tasks:
            self._tasks[-1]['results'] += 1

    def v2_playbook_on_stats(self, stats) -> None:
        now = time.monotonic()
        self._close_task(now)
        out = os.environ.get('ROLLOUT_TIMING_OUT')
        if not out:
            return
        doc = {
            'wall': now - self._t0,
            'tasks': [{'name': t['name'], 'action': t['action'], 'seconds': round(t['end'] - t['start'], 4), 'results': t['results']}
                      for t in self._tasks],
            'per_host': self._per_host,
            'by_action': self._by_action,
        }
        with open(out, 'w') as f:
            json.dump(doc, f, indent=1)
