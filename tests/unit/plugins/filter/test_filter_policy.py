# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The policy filters: results, one-line errors as AnsibleFilterError, warnings, documentation."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.coco.tdisp.plugins.filter import policy as policy_filters

POLICY = {
    'version': '2026.11.1',
    'rules': [
        {'id': 'h100-tcb', 'match': "vendor == '0x10de' && device == '0x2330'", 'require': {'manifest': 'h100-96.00'}, 'trust': 'tcb'},
        {'id': 'nvme', 'class': '0x0108*', 'trust': 'normal'},
    ],
    'expected': [{'id': 'boot', 'bdfs': ['0000:01:00.0']}],
}
MANIFESTS = {'h100-96.00': {}}
GPU = {'bdf': '0000:41:00.0', 'vendor': '0x10de', 'device': '0x2330', 'class': '0x030200', 'driver': None, 'tsm_side': 'guest',
       'tdisp_state': 'unlocked', 'trust_level': 'blocked', 'evidence': {'generation': 7}}
NIC = {'bdf': '0000:05:00.0', 'vendor': '0x15b3', 'device': '0x1021', 'class': '0x020000', 'driver': 'mlx5_core', 'tsm_side': 'guest',
       'tdisp_state': 'unlocked', 'trust_level': 'normal'}
FACTS = {'devices': [GPU, NIC], 'tsms': [{'name': 'tsm1', 'mode': 'devsec'}]}
VERDICTS = {'0000:41:00.0': {'h100-96.00': {'status': 'affirming', 'manifest': 'h100-96.00', 'generation': 7, 'checks': []}}}
FILTERS = policy_filters.FilterModule().filters()


def test_exports() -> None:
    assert sorted(FILTERS) == ['policy_audit', 'policy_expected', 'policy_plan', 'policy_preflight', 'policy_validate', 'select_devices']


@pytest.mark.parametrize('name', sorted(FILTERS))
def test_each_filter_is_documented(name: str) -> None:
    doc = yaml.safe_load((pathlib.Path(policy_filters.__file__).parent / ('%s.yml' % name)).read_text(encoding='utf-8'))
    assert doc['DOCUMENTATION']['name'] == name
    assert doc['DOCUMENTATION']['options']['_input']['required'] is True
    assert doc['RETURN']['_value']['description']
    assert 'coco.tdisp.%s' % name in doc['EXAMPLES']


def test_validate_returns_the_normalised_policy() -> None:
    normal = FILTERS['policy_validate'](POLICY, MANIFESTS)
    assert normal['default'] == 'blocked'
    assert normal['rules'][1] == {'id': 'nvme', 'class': ['0x0108*'], 'trust': 'normal'}


def test_validate_fails_with_every_problem_one_per_line() -> None:
    bad = dict(POLICY, rules=[dict(POLICY['rules'][0], require={'manifest': 'h100-95.00'}), {'id': 'x', 'vendor': '0x1af4'}])
    with pytest.raises(AnsibleFilterError) as info:
        FILTERS['policy_validate'](bad, MANIFESTS)
    lines = info.value.message.splitlines()
    assert lines[0] == 'coco.tdisp.policy_validate: 2 problems:'
    assert lines[1].startswith("tdisp_policy.rules[0] (id h100-tcb).require.manifest: 'h100-95.00' is not in reference_manifests")
    assert lines[2].startswith('tdisp_policy.rules[1] (id x).trust: is required')


def test_validate_shows_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(policy_filters._display, 'warning', shown.append)
    FILTERS['policy_validate'](POLICY)
    assert shown == ['tdisp_policy: reference_manifests not given, so require.manifest names were not checked']


def test_plan() -> None:
    result = FILTERS['policy_plan'](FACTS, POLICY, VERDICTS, MANIFESTS, now='2026-11-30')
    assert [(d['bdf'], d['rule'], d['outcome']['trust']) for d in result['decisions']] == [
        ('0000:05:00.0', 'implicit-default', 'blocked'), ('0000:41:00.0', 'h100-tcb', 'tcb')]


def test_plan_accepts_the_normalised_policy() -> None:
    normal = FILTERS['policy_validate'](POLICY, MANIFESTS)
    assert FILTERS['policy_plan'](FACTS, normal, VERDICTS, MANIFESTS) == FILTERS['policy_plan'](FACTS, POLICY, VERDICTS, MANIFESTS)


def test_plan_error_is_a_filter_error() -> None:
    with pytest.raises(AnsibleFilterError) as info:
        FILTERS['policy_plan']([{'vendor': '0x10de'}], POLICY)
    assert info.value.message == 'coco.tdisp.policy_plan: 1 problem:\ndevices[0]: has no bdf; pass the devices that tdisp_device_info reports'


def test_expected() -> None:
    assert [(f['kind'], f['expected']) for f in FILTERS['policy_expected'](FACTS, POLICY)] == [('missing', 'boot')]


def test_audit() -> None:
    result = FILTERS['policy_audit'](FACTS, POLICY, VERDICTS, MANIFESTS, now='2026-11-30')
    assert [(f['bdf'], f['kind']) for f in result['findings']] == [
        ('0000:05:00.0', 'wrong_trust_level'), ('0000:41:00.0', 'not_accepted'), ('0000:01:00.0', 'missing_device')]


def test_preflight() -> None:
    decided = FILTERS['policy_plan'](FACTS, POLICY, VERDICTS, MANIFESTS)
    assert [(p['bdf'], p['kind']) for p in FILTERS['policy_preflight'](FACTS, decided)] == [('0000:05:00.0', 'blocked')]


def test_preflight_error_is_a_filter_error() -> None:
    with pytest.raises(AnsibleFilterError, match='coco.tdisp.policy_preflight: 1 problem:\ncritical: must be a list'):
        FILTERS['policy_preflight'](FACTS, [], critical='0000:05:00.0')
