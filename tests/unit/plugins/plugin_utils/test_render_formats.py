# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The report formats from one model: the same counts in every format, JUnit test cases per host
and device with drift and rejection as failures, the HTML's machine-checkable counts, provenance,
and the published JSON Schema."""

from __future__ import annotations

import datetime
import json
import os
import re
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.coco.tdisp.plugins.plugin_utils import _render
from ansible_collections.coco.tdisp.plugins.plugin_utils._render import common, provenance, schema
from ansible_collections.coco.tdisp.tests.unit.plugins.plugin_utils import render_fixtures as fx

KINDS = sorted(fx.REPORTS)
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))


@pytest.mark.parametrize('kind', KINDS)
def test_the_view_counts_are_the_json_fields(kind):
    report = fx.REPORTS[kind]()
    assert common.view(report)['counts'] == fx.expected_counts(report)


@pytest.mark.parametrize('kind', KINDS)
def test_html_counts_are_attributes_equal_to_the_json(kind):
    report = fx.REPORTS[kind]()
    page = _render.render(report, 'html')
    found = {m.group(1): (int(m.group(2)), int(m.group(3)))
             for m in re.finditer(r'data-count="(\w+)" data-value="(\d+)">(\d+)<', page)}
    for name, value in fx.expected_counts(report).items():
        assert found[name] == (value, value), name
    assert 'content="default-src &#x27;none&#x27;;' in page and 'http://' not in page and 'https://' not in page


def test_html_shows_findings_levels_and_waves():
    page = _render.render(fx.audit(), 'html')
    assert 'data-finding="compliant" data-value="3"' in page and 'data-finding="not_accepted" data-value="1"' in page
    assert 'data-fleet-level="tcb" data-value="3"' in page and 'data-fleet-level="adversary" data-value="2"' in page
    detailed = _render.render(fx.audit_detailed(), 'html')
    assert detailed.count('data-level="adversary" data-value="1"') == 2
    assert re.findall(r'data-gate="(\w+)"', _render.render(fx.rollout(), 'html')) == ['passed', 'failed']


def _cases(xml: str) -> dict[str, list[ET.Element]]:
    root = ET.fromstring(xml)
    assert int(root.get('tests')) == len(list(root.iter('testcase')))
    assert int(root.get('failures')) == len(list(root.iter('failure')))
    return {s.get('name'): s.findall('testcase') for s in root.findall('testsuite')}


def test_junit_audit_each_host_and_device_is_a_case_and_drift_fails():
    suites = _cases(_render.render(fx.audit_detailed(), 'junit'))
    assert sorted(suites) == sorted(['audit.cvm-a', 'audit.' + fx.EVIL_HOST, 'audit.cvm-c', 'audit.not_reached'])
    evil = suites['audit.' + fx.EVIL_HOST]
    assert [c.get('name') for c in evil] == ['host ' + fx.EVIL_HOST, 'device 0000:0c:00.0', 'device 0000:18:00.0']
    assert [c.find('failure') is not None for c in evil] == [True, True, False]
    assert [c.find('failure') is not None for c in suites['audit.cvm-c']] == [False, False, False]  # exempt is no failure
    assert suites['audit.not_reached'][0].find('failure').get('message').startswith('not audited')


def test_junit_rollout_gates_and_rejections_fail_and_hosts_not_reached_are_skipped():
    suites = _cases(_render.render(fx.rollout(), 'junit'))
    assert [c.find('failure') is not None for c in suites['rollout.gates']] == [False, True]
    assert [c.find('failure') is not None for c in suites['rollout.' + fx.EVIL_HOST]] == [True, True, False]
    assert suites['rollout.cvm-3'][0].find('failure').get('message').startswith('failed: cvm-3: Lock: EBUSY')
    assert all(c.find('skipped') is not None for c in suites['rollout.not_reached'])
    assert [c.find('failure') is not None for c in suites['rollout.cvm-1']] == [False, False, False]


def test_junit_revoke_lists_matched_devices():
    suites = _cases(_render.render(fx.revoke(), 'junit'))
    assert [c.get('name') for c in suites['revoke.cvm-a']] == ['host cvm-a', 'device 0000:0c:00.0', 'device 0000:0d:00.0']
    assert len(suites['revoke.not_reached']) == 1


@pytest.mark.parametrize('kind', KINDS)
def test_markdown_has_the_sections_of_a_ticket(kind):
    text = _render.render(fx.REPORTS[kind](), 'markdown')
    for heading in ('## Summary', '## Hosts', '## Devices that need attention', '## Every device'):
        assert heading in text
    assert ('## Waves and their gates' in text) == (kind == 'rollout')


def test_render_refuses_unknown_input_in_one_line():
    with pytest.raises(common.RenderError, match='^formats: .pdf. is not one of json, markdown, junit, html$'):
        _render.render(fx.audit(), 'pdf')
    with pytest.raises(common.RenderError, match='fleet report'):
        _render.render({'kind': 'draft'}, 'html')
    assert json.loads(_render.render(fx.audit(), 'json'))['kind'] == 'audit'
    assert _render.file_name('rollout-1.2-check.json', 'junit') == 'rollout-1.2-check.junit.xml'


def test_provenance_digests_are_canonical_and_the_version_is_read_from_the_collection(tmp_path):
    now = datetime.datetime(2026, 11, 27, 13, 0, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    (tmp_path / 'galaxy.yml').write_text('namespace: coco\nversion: "1.4.0"  # released\n')
    prov = provenance.build({'version': 1.2, 'rules': []}, {'m': {'b': 1, 'a': 2}}, True, now, controller='c', user='u', root=str(tmp_path))
    assert prov == {'collection_version': '1.4.0', 'policy': {'version': '1.2', 'digest': provenance.digest({'rules': [], 'version': 1.2})},
                    'manifests': {'m': provenance.digest({'a': 2, 'b': 1})}, 'controller': 'c', 'user': 'u',
                    'time': '2026-11-27T12:00:05Z', 'check_mode': True}
    (tmp_path / 'MANIFEST.json').write_text(json.dumps({'collection_info': {'version': '2.0.0'}}))
    assert provenance.collection_version(str(tmp_path)) == '2.0.0'
    assert provenance.collection_version(str(tmp_path / 'nowhere')) is None
    assert provenance.build(None, None, False)['policy'] == {'version': None, 'digest': None}


def test_the_published_schema_file_is_the_schema():
    with open(os.path.join(ROOT, 'docs', 'report-schema.json'), encoding='utf-8') as handle:
        assert json.load(handle) == json.loads(json.dumps(schema.SCHEMA))
