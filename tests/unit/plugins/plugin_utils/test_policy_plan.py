# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Evaluation: the table in policy_plan_cases.yml, plus summaries and input errors."""

from __future__ import annotations

import copy
import pathlib
import typing as t

import pytest
import yaml

from ansible_collections.coco.tdisp.plugins.plugin_utils._policy import PolicyError, plan, validate

TABLE = yaml.safe_load((pathlib.Path(__file__).parent / 'policy_plan_cases.yml').read_text(encoding='utf-8'))


def _device(change: t.Optional[dict[str, t.Any]] = None) -> dict[str, t.Any]:
    device = copy.deepcopy(TABLE['base_device'])
    device.update(copy.deepcopy(change or {}))
    return device


@pytest.mark.parametrize('case', TABLE['cases'], ids=[c['name'] for c in TABLE['cases']])
def test_plan_case(case: dict[str, t.Any]) -> None:
    policy = dict(TABLE['policy'], **case.get('policy_change', {}))
    device = _device(case.get('device'))
    verdicts = {device['bdf']: case.get('verdicts', {})}
    result = plan([device], policy, verdicts, TABLE['manifests'], now=TABLE['now'])
    (decision,) = result['decisions']
    want = case['expect']
    assert decision['bdf'] == device['bdf']
    assert decision['policy_version'] == '2026.11.1'
    for key in ('rule', 'matched_by', 'outcome', 'disruptive', 'exempt', 'exemption'):
        if key in want:
            assert decision[key] == want[key], (key, decision)
    if 'evidence_ok' in want:
        assert decision['evidence']['ok'] is want['evidence_ok'], decision['evidence']
    if 'verdict_status' in want:
        assert decision['evidence']['verdict_status'] == want['verdict_status']
    for phrase in want.get('reasons', []):
        assert any(phrase in line for line in decision['reasons']), (phrase, decision['reasons'])
    for phrase in want.get('evidence_reasons', []):
        assert phrase in decision['evidence']['reasons'], (phrase, decision['evidence'])
    # Default deny, whatever the case: tcb only with verified evidence the rule names.
    if decision['outcome']['trust'] == 'tcb':
        assert decision['evidence']['ok'] is True and decision['evidence']['required']
        assert decision['outcome']['tdisp_state'] == 'run'
    else:
        assert decision['outcome']['tdisp_state'] == 'unlocked'


def test_summary_counts_per_outcome_and_rule() -> None:
    devices = [
        _device({'bdf': '0000:41:00.0'}),
        _device({'bdf': '0000:42:00.0'}),
        _device({'bdf': '0000:43:00.0', 'device': '0x1db6', 'tdisp_state': 'run', 'trust_level': 'tcb'}),
        _device({'bdf': '0000:05:00.0', 'vendor': '0x15b3', 'device': '0x1021', 'class': '0x020000', 'evidence': None}),
        _device({'bdf': '0000:99:00.0', 'vendor': '0x8086', 'device': '0x0b25', 'class': '0x088000', 'evidence': None}),
    ]
    affirming = TABLE['affirming']
    verdicts = {'0000:41:00.0': {'h100-96.00': affirming}, '0000:42:00.0': {'h100-96.00': dict(affirming, status='contraindicated')}}
    result = plan({'devices': devices, 'tsms': [{'name': 'tsm1', 'mode': 'devsec'}]}, TABLE['policy'], verdicts, TABLE['manifests'],
                  now=TABLE['now'])
    assert [d['bdf'] for d in result['decisions']] == sorted(d['bdf'] for d in devices)
    assert result['summary'] == {
        'devices': 5,
        'by_trust': {'blocked': 1, 'adversary': 2, 'normal': 1, 'tcb': 1},
        'by_rule': {'h100-tcb': 2, 'l40s-tcb': 0, 'nvidia-other': 1, 'nics': 1, 'virtio-shared': 0, 'implicit-default': 1},
        'evidence_failures': 1,
        'match_errors': 0,
        'disruptive': 1,
        'exempt': 1,
    }


def _one(policy: dict[str, t.Any], device: dict[str, t.Any], **kwargs: t.Any) -> dict[str, t.Any]:
    return plan([device], policy, **kwargs)['decisions'][0]


def test_require_interface_reads_flags_then_report_fields() -> None:
    policy = {'version': '1.0', 'rules': [{'id': 'gpu', 'vendor': '0x10de', 'trust': 'tcb',
                                           'require': {'manifest': 'h100-96.00', 'interface': {'dma_without_pasid': True, 'mmio_range_count': 2}}}]}
    device = _device()
    verdicts = {device['bdf']: {'h100-96.00': TABLE['affirming']}}
    assert _one(policy, device, verdicts=verdicts)['outcome']['trust'] == 'tcb'
    device['evidence']['interface_report']['mmio_range_count'] = 3
    assert _one(policy, device, verdicts=verdicts)['evidence']['failures'] == ['interface report field mmio_range_count is 3, the rule requires 2']


def test_tsm_field_uses_lock_holder_or_the_only_guest_tsm() -> None:
    policy = {'version': '1.0', 'rules': [{'id': 'via-tsm1', 'tsm': 'tsm1', 'trust': 'normal'}]}
    unlocked = _device({'evidence': None})
    assert _one(policy, unlocked)['rule'] == 'implicit-default'
    host = {'devices': [unlocked], 'tsms': [{'name': 'tsm0', 'mode': 'link'}, {'name': 'tsm1', 'mode': 'devsec'}]}
    assert plan(host, policy)['decisions'][0]['rule'] == 'via-tsm1'
    two_guests = {'devices': [unlocked], 'tsms': [{'name': 'tsm1', 'mode': 'devsec'}, {'name': 'tsm2', 'mode': 'devsec'}]}
    assert plan(two_guests, policy)['decisions'][0]['rule'] == 'implicit-default'
    assert _one(policy, _device({'lock_holder': 'tsm1', 'tdisp_state': 'locked'}))['rule'] == 'via-tsm1'


def test_match_that_fails_on_a_device_rejects_it_and_stops() -> None:
    policy = {'version': '1.0', 'default': 'normal', 'rules': [
        {'id': 'gpu-class', 'match': "starts_with(class, '0x03')", 'trust': 'adversary'},
        {'id': 'rest', 'all': True, 'trust': 'normal'}]}
    decision = _one(policy, _device({'class': None}))
    assert decision['rule'] == 'gpu-class'
    assert decision['matched_by'] == 'error'
    assert decision['outcome'] == {'trust': 'blocked', 'tdisp_state': 'unlocked'}
    assert decision['reasons'][0].startswith("rules[0] (id gpu-class): match \"starts_with(class, '0x03')\" failed: ")
    assert decision['reasons'][0].endswith('the device is rejected (fail closed): fix the expression')


def test_match_must_evaluate_to_true_not_merely_truthy() -> None:
    policy = {'version': '1.0', 'rules': [{'id': 'has-driver', 'match': 'driver', 'trust': 'normal'}]}
    assert _one(policy, _device({'driver': 'nvidia'}))['rule'] == 'implicit-default'
    policy['rules'][0]['match'] = 'driver != `null`'
    assert _one(policy, _device({'driver': 'nvidia'}))['rule'] == 'has-driver'


def test_plain_field_star_does_not_match_a_missing_value() -> None:
    policy = {'version': '1.0', 'rules': [{'id': 'bound', 'driver': '*', 'trust': 'normal'}]}
    assert _one(policy, _device({'driver': 'nvidia'}))['rule'] == 'bound'
    assert _one(policy, _device({'driver': None}))['rule'] == 'implicit-default'


def test_a_validated_policy_object_is_accepted() -> None:
    validated = validate(TABLE['policy'], TABLE['manifests'])
    device = _device()
    decision = _one(validated, device, verdicts={device['bdf']: {'h100-96.00': TABLE['affirming']}})
    assert decision['outcome']['trust'] == 'tcb'


@pytest.mark.parametrize('devices, verdicts, line', [
    ('nope', None, 'devices: must be a list of device dicts, got str'),
    ({'tsms': []}, None, 'devices: a mapping must hold the device list under devices'),
    ([{'vendor': '0x10de'}], None, 'devices[0]: has no bdf'),
    ([{'bdf': '41:00.0'}], None, "devices[0].bdf: '41:00.0' is not a PCI device name"),
    ([{'bdf': '0000:41:00.0'}, {'bdf': '0000:41:00.0'}], None, 'devices: 0000:41:00.0 listed more than once'),
    ([], {'0000:41:00.0': 'affirming'}, 'verdicts[0000:41:00.0]: must be a verdict or a mapping'),
    ([], {'0000:41:00.0': {'h100-96.00': 'affirming'}}, 'verdicts[0000:41:00.0][h100-96.00]: must be a verdict mapping'),
], ids=['not a list', 'mapping without devices', 'no bdf', 'bad bdf', 'duplicate bdf', 'verdicts per bdf', 'verdict'])
def test_bad_input_is_one_line_each(devices: t.Any, verdicts: t.Any, line: str) -> None:
    with pytest.raises(PolicyError) as info:
        plan(devices, TABLE['policy'], verdicts, TABLE['manifests'])
    assert len(info.value.errors) == 1 and info.value.errors[0].startswith(line), info.value.errors


def test_bad_now_is_an_error() -> None:
    with pytest.raises(PolicyError, match="now: 'tomorrow' is not a date"):
        plan([], TABLE['policy'], None, TABLE['manifests'], now='tomorrow')
