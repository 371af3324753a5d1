# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""coco.tdisp.tdisp_report: reports built from the hosts' records (facts first), written under the
report directory, the wave gate, and the draft's path checked before a device is touched."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from ansible.errors import AnsibleActionFail

from ansible_collections.coco.tdisp.plugins.action.tdisp_report import ActionModule
from ansible_collections.coco.tdisp.tests.unit.plugins.action.action_runner import run_action

OK = {'host': 'a', 'failed': False, 'refused': [], 'gate_notes': [], 'contraindicated': 0, 'expected': []}


def run(args, task_vars=None, check=False):
    return run_action(ActionModule, args, task_vars, check)


def play(summaries, batch, playing=None):
    hosts = sorted(summaries)
    hostvars = {h: {'ansible_facts': {'tdisp_acceptance_summary': s}} for h, s in summaries.items()}
    return {'hostvars': hostvars, 'ansible_play_hosts_all': hosts, 'ansible_play_batch': batch,
            'ansible_play_hosts': playing if playing is not None else hosts}


def test_rollout_report_from_facts_and_a_passing_gate(tmp_path):
    out = run({'kind': 'rollout', 'dir': str(tmp_path), 'policy_version': '1.2', 'gate': True},
              play({'a': OK, 'b': dict(OK, host='b')}, ['a', 'b']))
    assert not out.get('failed') and out['msg'].startswith('the wave of 2 host(s) passed its gate')
    report = json.loads((tmp_path / 'rollout-1.2.json').read_text())
    assert [h['host'] for h in report['hosts']] == ['a', 'b'] and report['not_reached'] == []


def test_rollout_gate_fails_in_one_line_and_the_report_is_written(tmp_path):
    bad = dict(OK, host='b', contraindicated=1, gate_notes=['b 0000:18:00.0: contraindicated evidence'])
    out = run({'kind': 'rollout', 'dir': str(tmp_path), 'policy_version': '1.2', 'gate': True},
              play({'a': OK, 'b': bad}, ['b']), check=True)
    assert out['failed'] is True and 'report' not in out
    assert out['msg'] == ('the wave of 1 host(s) failed its gate; the rollout stops here: '
                          'b 0000:18:00.0: contraindicated evidence')
    assert (tmp_path / 'rollout-1.2-check.json').is_file()


def test_audit_of_no_host_is_refused(tmp_path):
    with pytest.raises(AnsibleActionFail, match='no host was audited'):
        run({'kind': 'audit', 'dir': str(tmp_path), 'hosts': ['a']}, {'hostvars': {'a': {}}})
    assert not list(tmp_path.iterdir())


def test_reports_default_under_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = run({'kind': 'revoke', 'hosts': ['a'], 'match': "vendor == '0x15b3'", 'level': 'blocked'},
              {'hostvars': {'a': {'tdisp_revoke_summary': {'host': 'a'}}}})
    assert os.path.dirname(out['path']) == str(tmp_path / 'tdisp-reports')
    assert json.loads(open(out['path']).read())['hosts'] == [{'host': 'a'}]


def test_draft_path_is_checked_first_then_written(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('')
    with pytest.raises(AnsibleActionFail, match='ENOTDIR'):
        run({'kind': 'draft', 'name': 'm', 'path': str(blocker / 'sub' / 'm.yml'), 'prepare': True})
    out = run({'kind': 'draft', 'name': 'm', 'dir': str(tmp_path / 'r'), 'prepare': True})
    assert out['path'] == str(tmp_path / 'r' / 'drafts' / 'm.yml') and (tmp_path / 'r' / 'drafts').is_dir()
    run({'kind': 'draft', 'name': 'm', 'path': out['path'], 'manifest': {'version': 1}})
    assert yaml.safe_load(open(out['path'])) == {'reference_manifests': {'m': {'version': 1}}}
