# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""coco.tdisp.tdisp_report writes the formats asked for beside the JSON report, with provenance,
and records every gated wave of a rollout run (read back from the report it rewrites)."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

from ansible_collections.coco.tdisp.plugins.action.tdisp_report import ActionModule, run_id
from ansible_collections.coco.tdisp.plugins.plugin_utils._render import provenance
from ansible_collections.coco.tdisp.tests.unit.plugins.action.action_runner import run_action

OK = {'host': 'a', 'failed': False, 'converged': True, 'refused': [], 'gate_notes': [], 'contraindicated': 0, 'expected': [],
      'counts': {}, 'devices': []}
POLICY = {'version': '1.2', 'rules': []}


def play(summaries, batch):
    hostvars = {h: {'ansible_facts': {'tdisp_acceptance_summary': s}, 'tdisp_policy': POLICY, 'reference_manifests': {'m': {}}}
                for h, s in summaries.items()}
    return {'hostvars': hostvars, 'ansible_play_hosts_all': sorted(summaries), 'ansible_play_batch': batch,
            'ansible_play_hosts': sorted(summaries)}


def test_every_format_is_written_beside_the_json_with_provenance(tmp_path):
    out = run_action(ActionModule, {'kind': 'rollout', 'dir': str(tmp_path), 'policy_version': '1.2', 'gate': True,
                                    'formats': ['json', 'markdown', 'junit', 'html']}, play({'a': OK}, ['a']))
    assert sorted(os.listdir(tmp_path)) == ['rollout-1.2.html', 'rollout-1.2.json', 'rollout-1.2.junit.xml', 'rollout-1.2.md']
    assert sorted(out['paths']) == ['html', 'json', 'junit', 'markdown']
    report = json.loads((tmp_path / 'rollout-1.2.json').read_text())
    assert report['provenance']['policy'] == {'version': '1.2', 'digest': provenance.digest(POLICY)}
    assert report['provenance']['manifests'] == {'m': provenance.digest({})} and report['provenance']['check_mode'] is False
    assert ET.parse(str(tmp_path / 'rollout-1.2.junit.xml')).getroot().tag == 'testsuites'
    assert report['waves'] == [{'wave': 1, 'hosts': ['a'], 'passed': True, 'reasons': [], 'run': run_id()}]


def test_the_next_wave_lists_the_earlier_ones_and_a_failed_gate_is_in_the_file(tmp_path):
    (tmp_path / 'rollout-1.2.json').write_text(json.dumps({'waves': [{'wave': 1, 'hosts': ['old'], 'run': 'an earlier run'}]}))
    run_action(ActionModule, {'kind': 'rollout', 'dir': str(tmp_path), 'policy_version': '1.2', 'gate': True}, play({'a': OK}, ['a']))
    bad = dict(OK, host='b', contraindicated=1, gate_notes=['b: contraindicated'])
    out = run_action(ActionModule, {'kind': 'rollout', 'dir': str(tmp_path), 'policy_version': '1.2', 'gate': True},
                     play({'a': OK, 'b': bad}, ['b']))
    assert out['failed'] is True
    waves = json.loads((tmp_path / 'rollout-1.2.json').read_text())['waves']
    assert [(w['wave'], w['hosts'], w['passed'], w['reasons']) for w in waves] == [(1, ['a'], True, []), (2, ['b'], False, ['b: contraindicated'])]
    assert os.listdir(tmp_path) == ['rollout-1.2.json']  # the default format is json only
