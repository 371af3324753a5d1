# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The lines a person reads during a run, and the set_stats aggregate, from the report model."""

from __future__ import annotations

import pytest

from ansible_collections.coco.tdisp.plugins.plugin_utils._render import common, summary
from ansible_collections.coco.tdisp.tests.unit.plugins.plugin_utils import render_fixtures as fx


def test_rollout_host_line_says_what_happened_in_one_line():
    hosts = fx.rollout()['hosts']
    assert summary.host_line(hosts[0]) == 'cvm-1: accepted 1 at tcb, 1 at other levels (normal 1), converged'
    evil = summary.host_line(hosts[1])
    assert evil.startswith('cvm-<b>2</b>|"x": accepted 1 at tcb, rejected 1 (0000:2a:00.0 by rule CN=<script>')
    assert evil.endswith('not converged') and '\n' not in evil and '\x1b' not in evil
    assert summary.host_line(hosts[2]) == 'cvm-3: was to accept 0 at tcb, 1 not verified yet, FAILED: cvm-3: Lock: EBUSY'


def test_plan_host_line_says_would():
    record = dict(fx.rollout()['hosts'][0], check_mode=True)
    assert summary.host_line(record).startswith('cvm-1 (plan): would accept 1 at tcb, 1 at other levels')
    pending = dict(fx.rollout()['hosts'][2], check_mode=True, failed=False, failure=None)
    assert summary.host_line(pending) == 'cvm-3 (plan): would accept 1 at tcb (1 once verified), not converged'


def test_audit_host_line_names_drift_and_its_rules():
    per_host = {a['host']: a for a in [fx._audit('cvm-a', [fx.OK_GPU], [fx.GPU]), fx._audit('cvm-b', [fx.OK_GPU, fx.NIC_DRIFT], [fx.GPU, fx.NIC])]}
    assert summary.host_line(per_host['cvm-a']) == 'cvm-a: 1 device(s), 1 accepted at tcb (tcb 1), compliant with policy 2026.11.1'
    line = summary.host_line(per_host['cvm-b'])
    assert line.startswith('cvm-b: 2 device(s), 1 accepted at tcb (adversary 1, tcb 1), DRIFT: 1 finding(s) (not_accepted 1) by rule CN=')
    assert '\n' not in line


def test_a_record_without_a_host_is_refused():
    with pytest.raises(common.RenderError, match='per-host record'):
        summary.host_line({'devices': []})


def test_fleet_lines_of_a_rollout_with_a_failed_gate():
    lines = summary.fleet_lines(fx.rollout(), {'json': '/r/rollout-2026.11.1.json'})
    assert lines[0] == 'Rollout of policy 2026.11.1:'
    assert lines[1] == '  hosts: 1 converged, 1 failed, of 3 reached; 2 not reached (the rollout stopped at a gate)'
    assert '  wave 1 (1 host(s)): passed its gate' in lines
    assert any(line.startswith('  wave 2 (2 host(s)): FAILED its gate: CN=') for line in lines)
    assert lines[-2:] == ['  not reached: cvm-4, cvm-5', '  reports: /r/rollout-2026.11.1.json']
    assert all('\n' not in line for line in lines)


def test_fleet_lines_of_an_audit_and_a_revocation():
    lines = summary.fleet_lines(fx.audit())
    assert lines[1] == '  hosts: 3 audited, 2 compliant, 1 with drift, 1 not audited'
    assert '  devices per trust level: adversary 2, tcb 3' in lines
    assert lines[-1] == '  not audited: cvm-gone'
    assert summary.fleet_lines(fx.revoke())[1] == '  hosts: 2 reached, 1 not reached; devices: 3 matched, 1 unlocked, 1 lowered'


def test_stats_are_the_per_run_aggregate():
    rollout = summary.stats(fx.rollout(), {'json': '/r/x.json'})
    assert rollout['kind'] == 'rollout' and rollout['passed'] is False and rollout['reports'] == {'json': '/r/x.json'}
    assert [w['passed'] for w in rollout['waves']] == [True, False]
    assert (rollout['counts']['hosts_reached'], rollout['counts']['devices_tcb'], rollout['counts']['devices_rejected']) == (3, 2, 1)
    audit = summary.stats(fx.audit())
    assert audit['passed'] is False and audit['counts']['hosts_with_drift'] == 1 and audit['counts']['devices_accepted'] == 3
    assert summary.problem_hosts(fx.audit()) == ['cvm-<b>2</b>|"x"']


def test_safe_yaml_of_hostile_values_loads_back_and_lints(tmp_path):
    yaml = pytest.importorskip('yaml')
    from ansible_collections.coco.tdisp.plugins.plugin_utils import _files

    class Tagged(str):
        """A str subclass, as Ansible's tagged and unsafe strings are."""

    doc = {'reference_manifests': {'m': {'subject': Tagged(fx.HOSTILE), 'list': [{'a': 1, 'b': ['!!python/object:os.system', 'yes']}]}}}
    text = _files.safe_yaml(doc)
    assert text.startswith('---\n') and '!!python' not in text.replace("'!!python", '').replace('"!!python', '')
    assert yaml.safe_load(text) == _files.plain(doc)
    assert '    list:\n      - a: 1\n        b:\n          - ' in text  # lists indented under their key


def test_stats_of_a_revocation():
    stats = summary.stats(fx.revoke(), {'json': '/r/revoke.json'})
    assert stats['kind'] == 'revoke' and 'passed' not in stats and 'waves' not in stats
    assert (stats['counts']['devices_matched'], stats['counts']['devices_lowered']) == (3, 1) and stats['not_reached'] == ['cvm-z']
