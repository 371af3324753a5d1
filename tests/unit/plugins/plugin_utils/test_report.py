# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The fleet audit report: per-host audits aggregated for auditors."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.coco.tdisp.plugins.plugin_utils._reports import ReportError, fleet_audit

NOW = datetime.datetime(2026, 11, 27, 12, 0, tzinfo=datetime.timezone.utc)


def audit(host, findings, devices, applied='2026.11.1'):
    return {'host': host, 'policy_version': '2026.11.1', 'applied_policy_version': applied, 'checked_at': '2026-11-27T12:00:00+00:00',
            'findings': findings, 'devices': devices}


GPU = {'bdf': '0000:18:00.0', 'vendor': '0x10de', 'device': '0x2330', 'tdisp_state': 'run', 'trust_level': 'tcb'}
NIC = {'bdf': '0000:0c:00.0', 'vendor': '0x15b3', 'device': '0x1021', 'tdisp_state': 'unlocked', 'trust_level': 'adversary'}
OK_GPU = {'bdf': '0000:18:00.0', 'kind': 'compliant', 'status': 'compliant', 'rule': 'h100-tcb', 'policy_version': '2026.11.1',
          'evidence': {'verdict_status': 'affirming'}}
NIC_DRIFT = {'bdf': '0000:0c:00.0', 'kind': 'not_accepted', 'status': 'drift', 'rule': 'cx7-tcb', 'policy_version': '2026.11.1',
             'reason': 'rule cx7-tcb wants tcb'}
EXEMPT = {'bdf': '0000:0c:00.0', 'kind': 'not_accepted', 'status': 'exempt', 'rule': 'cx7-tcb', 'policy_version': '2026.11.1'}


def test_counts_hosts_devices_and_findings_and_names_each_accepted_device_with_its_rule():
    report = fleet_audit([audit('b', [OK_GPU, NIC_DRIFT], [GPU, NIC]), audit('a', [OK_GPU], [GPU])], hosts=['a', 'b', 'c'], now=NOW)
    assert report['hosts'] == {'expected': 3, 'audited': 2, 'compliant': 1, 'with_drift': 1, 'not_audited': ['c']}
    assert report['devices'] == {'total': 3, 'by_trust_level': {'adversary': 1, 'tcb': 2},
                                 'by_tdisp_state': {'run': 2, 'unlocked': 1}, 'accepted': 2}
    assert report['findings'] == {'by_kind': {'compliant': 2, 'not_accepted': 1}, 'drift': 1}
    assert report['drift'] == [{'host': 'b', 'bdf': '0000:0c:00.0', 'kind': 'not_accepted', 'reason': 'rule cx7-tcb wants tcb',
                                'rule': 'cx7-tcb', 'policy_version': '2026.11.1'}]
    assert [(a['host'], a['rule'], a['verdict'], a['compliant']) for a in report['accepted_devices']] == [
        ('a', 'h100-tcb', 'affirming', True), ('b', 'h100-tcb', 'affirming', True)]
    assert [h['host'] for h in report['per_host']] == ['a', 'b']
    assert report['generated_at'] == '2026-11-27T12:00:00Z' and report['policy_versions'] == ['2026.11.1']


def test_exempt_findings_are_counted_apart_and_are_not_drift():
    report = fleet_audit([audit('a', [OK_GPU, dict(EXEMPT, exemption={'reason': 'RMA pending', 'until': '2026-12-31'})], [GPU, NIC])],
                         now=NOW)
    assert report['findings'] == {'by_kind': {'compliant': 1, 'exempt': 1}, 'drift': 0}
    assert report['hosts']['compliant'] == 1
    assert report['exempt'] == [{'host': 'a', 'bdf': '0000:0c:00.0', 'kind': 'not_accepted', 'reason': None, 'rule': 'cx7-tcb',
                                 'exemption': {'reason': 'RMA pending', 'until': '2026-12-31'}}]


def test_hostvars_are_accepted_and_hosts_without_an_audit_are_skipped():
    report = fleet_audit({'a': {'tdisp_audit': audit('a', [OK_GPU], [GPU])}, 'localhost': {}}, hosts=['a'], now=NOW)
    assert report['hosts']['audited'] == 1 and report['hosts']['not_audited'] == []


@pytest.mark.parametrize('bad', ['x', [{'findings': []}], [1]])
def test_bad_input_is_one_line(bad):
    with pytest.raises(ReportError) as exc:
        fleet_audit(bad)
    assert 'tdisp_audit' in str(exc.value)
