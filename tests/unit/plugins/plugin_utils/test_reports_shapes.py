# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Every report shape from one module: records from hostvars, the rollout and revoke documents,
file names, the wave gate, the revocation plan and summary, and the one error type."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.coco.tdisp.plugins.plugin_utils import _errors, _policy, _reports

NOW = datetime.datetime(2026, 11, 27, 12, 0, 5, tzinfo=datetime.timezone.utc)
S1 = {'host': 'a', 'failed': False, 'refused': [], 'gate_notes': [], 'contraindicated': 0, 'expected': []}


def test_records_read_facts_first_then_variables_and_keep_the_hosts_order():
    hostvars = {'b': {'ansible_facts': {'rec': {'host': 'b'}}, 'rec': {'host': 'stale'}}, 'a': {'rec': {'host': 'a'}},
                'c': {'ansible_facts': {}}}
    assert _reports.records(hostvars, ['a', 'b', 'c', 'gone'], 'rec') == [{'host': 'a'}, {'host': 'b'}]


def test_rollout_and_revoke_documents_list_who_was_not_reached():
    rollout = _reports.document('rollout', ['b', 'a', 'c'], [{'host': 'a'}], True, NOW, policy_version='1.2')
    assert rollout == {'kind': 'rollout', 'policy_version': '1.2', 'check_mode': True, 'written_at': '2026-11-27T12:00:05Z',
                       'hosts': [{'host': 'a'}], 'not_reached': ['b', 'c']}
    revoke = _reports.document('revoke', ['b', 'a'], [{'host': 'a'}], False, NOW, match="vendor == '0x15b3'", level='blocked')
    assert revoke == {'kind': 'revoke', 'match': "vendor == '0x15b3'", 'level': 'blocked', 'check_mode': False,
                      'hosts': [{'host': 'a'}], 'not_reached': ['b']}
    with pytest.raises(_reports.ReportError, match='kind'):
        _reports.document('nope', [], [])


@pytest.mark.parametrize('kind, check, name', [
    ('rollout', False, 'rollout-1.2.json'), ('rollout', True, 'rollout-1.2-check.json'),
    ('audit', False, 'audit-20261127T120005Z.json'), ('revoke', True, 'revoke-20261127T120005Z-check.json'),
])
def test_file_names(kind, check, name):
    assert _reports.file_name(kind, check, NOW, '1.2') == name


@pytest.mark.parametrize('wave, lost, reasons', [
    ([S1], [], []),
    ([dict(S1, gate_notes=['a: note'])], [], []),
    ([S1], ['z'], ['z: unreachable or failed outside the acceptance role']),
    ([dict(S1, failed=True, failure='a: boom')], [], ['a: boom']),
    ([dict(S1, refused=[{'reason': 'needs allow_disruptive'}])], [], ['a: refused: needs allow_disruptive']),
    ([dict(S1, contraindicated=1, gate_notes=['a 0000:18:00.0: contraindicated evidence'])], [],
     ['a 0000:18:00.0: contraindicated evidence']),
    ([dict(S1, expected=[{'reason': 'missing'}], gate_notes=['a: missing'])], [], ['a: missing']),
])
def test_gate(wave, lost, reasons):
    assert _reports.gate(wave, lost) == reasons


def test_gate_limits_are_arguments():
    wave = [dict(S1, contraindicated=1), dict(S1, host='b', expected=[{'reason': 'x'}])]
    assert _reports.gate(wave, [], max_contraindicated=1, require_expected=False) == []


INFO = {'devices': [
    {'bdf': '0000:0c:00.0', 'vendor': '0x15b3', 'device': '0x1021', 'class': '0x020000', 'tdisp_state': 'run', 'trust_abi': 'tsm',
     'trust_level': 'tcb'},
    {'bdf': '0000:0d:00.0', 'vendor': '0x15b3', 'device': '0x1021', 'class': '0x020000', 'tdisp_state': 'unlocked', 'trust_abi': 'none',
     'trust_level': None},
    {'bdf': '0000:18:00.0', 'vendor': '0x10de', 'device': '0x2330', 'class': '0x030200', 'tdisp_state': 'run', 'trust_abi': 'tsm',
     'trust_level': 'tcb'},
], 'ledger': {'policy': {'version': '2026.11.1'}}}


def test_revoke_plan_and_summary():
    plan = _policy.revoke_plan(INFO, "vendor == '0x15b3'", 'blocked')
    reason = "revoked by playbooks/revoke.yml (vendor == '0x15b3')"
    assert plan == {'match': "vendor == '0x15b3'", 'level': 'blocked', 'policy_version': '2026.11.1',
                    'devices': ['0000:0c:00.0', '0000:0d:00.0'],
                    'unlock': [{'bdf': '0000:0c:00.0', 'state': 'unlocked',
                                'rejected': {'reason': reason, 'policy_version': '2026.11.1'}}],
                    'lower': [{'bdf': '0000:0c:00.0', 'level': 'blocked'}]}
    assert _policy.revoke_plan(INFO, "vendor == '0x15b3'", 1, {'version': '2026.12.1'})['policy_version'] == '2026.12.1'
    summary = _reports.revoke_host('h', plan, {'devices': [{'bdf': '0000:0c:00.0', 'changed': True}]}, {'skipped': True}, True)
    assert summary == {'host': 'h', 'match': "vendor == '0x15b3'", 'level': 'blocked', 'check_mode': True,
                       'devices': ['0000:0c:00.0', '0000:0d:00.0'], 'unlocked': ['0000:0c:00.0'], 'lowered': []}


@pytest.mark.parametrize('level', ['tcb', 3, 'high', True])
def test_revoke_plan_refuses_tcb_and_unknown_levels(level):
    with pytest.raises(_policy.PolicyError, match='never sets tcb'):
        _policy.revoke_plan(INFO, "vendor == '0x15b3'", level)


def test_every_controller_error_is_one_type_with_one_line_problems():
    err = _policy.PolicyError(['a\n  b', 'c'])
    assert isinstance(err, _errors.TdispError) and err.problems == ['a b', 'c'] == err.errors
    assert _errors.ansible_message('coco.tdisp.x', err) == 'coco.tdisp.x: 2 problems:\na b\nc'
    assert _errors.ansible_message('w', _reports.ReportError('one', argument='now')) == 'w now: one'

    def boom():
        raise _reports.ReportError('bad')
    with pytest.raises(ValueError, match='^w: bad$'):
        _errors.call(ValueError, 'w', boom)
