# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The tdisp_acceptance sequence against scripted module results: one run id, released; outcomes from the modules."""

from __future__ import annotations

import copy
import typing as t
from unittest import mock

import pytest

from ansible_collections.coco.tdisp.plugins.action import tdisp_acceptance as action
from ansible_collections.coco.tdisp.plugins.plugin_utils import _acceptance
from ansible_collections.coco.tdisp.tests.unit.plugins.action.action_runner import run_action
from ansible_collections.coco.tdisp.tests.unit.plugins.plugin_utils.test_acceptance import GOOD, MANIFESTS, POLICY, gpu, virtio
from ansible_collections.coco.tdisp.tests.unit.plugins.plugin_utils.tdisp_evidence_factory import NOW

GPU, VIRTIO = '0000:41:00.0', '0000:00:03.0'


def scripted(*results: dict[str, t.Any]) -> tuple[list[tuple[str, dict[str, t.Any]]], t.Callable[..., dict[str, t.Any]]]:
    """A fake ``_execute_module`` answering ``results`` in turn (a releasing ``device_trust`` with no devices answers itself)."""
    calls: list[tuple[str, dict[str, t.Any]]] = []
    queue = list(results)

    def execute(module_name: str, module_args: dict[str, t.Any], task_vars: t.Any) -> dict[str, t.Any]:
        calls.append((module_name.rsplit('.', 1)[-1], copy.deepcopy(module_args)))
        if module_name.endswith('device_trust') and module_args.get('devices') == [] and module_args['run'].get('release'):
            return {'changed': False, 'devices': [], 'run_lock': {'held': True, 'released': True}}
        return queue.pop(0)
    return calls, execute


def converge(*results: dict[str, t.Any]) -> tuple[dict[str, t.Any], list[tuple[str, dict[str, t.Any]]]]:
    calls, execute = scripted(*results)
    with mock.patch.object(action.ActionModule, '_execute_module', side_effect=execute), \
            mock.patch.object(action.secrets, 'token_hex', return_value='11' * 32), \
            mock.patch.object(_acceptance, '_now', return_value=NOW), \
            mock.patch.object(action.ActionModule, '_remove_tmp_path'):
        result = run_action(action.ActionModule, {'policy': POLICY, 'manifests': MANIFESTS, 'fail_on_error': False,
                                                  'sysfs_root': '/sim/sys', 'evidence_endpoint': 'unix:/sim/ev', 'state_dir': '/sim/state'},
                            task_vars={'inventory_hostname': 'cvm-1'})
    return result, calls


READ = {'devices': [gpu(), virtio()], 'ledger': {'format': 2, 'devices': {}, 'policy': None}}
LOCKED = {'changed': True, 'devices': [{'bdf': GPU, 'converged': True}], 'run_lock': {'held': True, 'released': False},
          'facts': {'devices': [gpu(state='locked', evidence=GOOD), virtio()], 'ledger': {'format': 2, 'devices': {}}}}


def test_every_call_of_the_host_carries_one_run_id_and_the_last_releases_it():
    accepted = {'changed': True, 'devices': [{'bdf': GPU, 'converged': True}], 'run_lock': {'held': True, 'released': True},
                'trust': {'devices': [{'bdf': GPU, 'converged': True}, {'bdf': VIRTIO, 'converged': True}]}}
    result, calls = converge(READ, LOCKED, accepted)
    assert [name for name, _args in calls] == ['tdisp_device_info', 'tdisp_device', 'tdisp_device']
    ids = {args['run']['id'] for _name, args in calls}
    assert len(ids) == 1 and ids.pop().startswith('acc-')
    assert [args['run']['release'] for _name, args in calls] == [False, False, True]
    assert all(args['run']['policy_version'] == '2026.11.1' for _name, args in calls)
    accept = calls[2][1]['devices'][0]
    assert accept['generation'] == 7 and accept['identity'] == GOOD['objects']['cert0']['digest']
    summary = result['summary']
    assert summary['converged'] is True and summary['run_id'] == calls[0][1]['run']['id']


def test_evidence_changed_from_the_module_fails_the_device_and_the_host_not_the_others():
    changed = {'failed': True, 'msg': 'one device failed', 'changed': True, 'run_lock': {'held': True, 'released': True},
               'devices': [{'bdf': GPU, 'failed': True, 'msg': 'evidence changed since verification (generation 7 -> 8)',
                            'evidence_changed': True, 'converged': False}],
               'trust': {'devices': [{'bdf': VIRTIO, 'converged': True}]}}
    result, calls = converge(READ, LOCKED, changed)
    summary = result['summary']
    assert summary['converged'] is False and summary['failed'] is True
    assert [(r['bdf'], r['kind']) for r in summary['refused']] == [(GPU, 'evidence_changed')]
    devices = {d['bdf']: d for d in summary['devices']}
    assert devices[GPU]['evidence_changed'] is True and devices[GPU]['converged'] is False
    assert devices[VIRTIO]['converged'] is True and 'failed' not in devices[VIRTIO]
    assert len(calls) == 3  # released by the accept call itself: no extra release


def test_the_lock_is_released_when_the_sequence_stops_after_a_writing_call():
    lock_failed = {'failed': True, 'msg': 'ENODEV', 'changed': True, 'run_lock': {'held': True, 'released': False},
                   'devices': [{'bdf': GPU, 'failed': True, 'msg': 'lock: ENODEV'}]}
    reread = {'devices': [gpu(), virtio()], 'ledger': {'format': 2, 'devices': {}}}
    trust = {'changed': True, 'run_lock': {'held': True, 'released': True}, 'devices': [{'bdf': VIRTIO, 'converged': True}]}
    result, calls = converge(READ, lock_failed, reread, trust)
    assert [name for name, _args in calls] == ['tdisp_device_info', 'tdisp_device', 'tdisp_device_info', 'device_trust']
    assert calls[-1][1]['run']['release'] is True and calls[-1][1]['evidence_endpoint'] == 'unix:/sim/ev'
    assert result['summary']['failed'] and GPU in result['summary']['failure'], result['summary']


def test_a_module_that_dies_without_a_result_leaves_the_release_to_a_last_call():
    lost = {'unreachable': True, 'msg': 'the module died'}
    result, calls = converge(READ, lost)
    assert [name for name, _args in calls] == ['tdisp_device_info', 'tdisp_device', 'device_trust']
    assert calls[-1][1]['devices'] == [] and calls[-1][1]['run']['release'] is True
    assert result['summary']['failed']


@pytest.mark.parametrize('policy, line', [
    (dict(POLICY, rules=[dict(POLICY['rules'][0], require={'manifest': 'eg100-96.00', 'interface': {'no_fw_updat': True}})]),
     "the policy: tdisp_policy.rules[0] (id gpu-tcb).require.interface: unknown key 'no_fw_updat'; did you mean no_fw_update?"),
    (dict(POLICY, rules=[{'id': 'deep', 'match': '!' * 3000 + 'vendor', 'trust': 'normal'}]),
     'the policy: tdisp_policy.rules[0] (id deep): is nested too deeply to check'),
])
def test_policy_problems_are_one_line_each_before_any_module_runs(policy, line):
    calls, execute = scripted()
    with mock.patch.object(action.ActionModule, '_execute_module', side_effect=execute):
        with pytest.raises(action.AnsibleActionFail) as err:
            run_action(action.ActionModule, {'policy': policy, 'manifests': MANIFESTS})
    lines = str(err.value).splitlines()
    assert lines[0].startswith('refused before any host was read: ') and lines[1].startswith(line), lines
    assert 'recursion' not in str(err.value) and calls == []
