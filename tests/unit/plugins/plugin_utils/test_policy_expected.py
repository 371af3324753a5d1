# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Inventory completeness: missing, extra, duplicate, unlisted, error findings."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.coco.tdisp.plugins.plugin_utils._policy import check_expected

H100 = "vendor == '0x10de' && device == '0x2330'"


def gpu(bus: int) -> dict[str, t.Any]:
    return {'bdf': '0000:%02x:00.0' % bus, 'vendor': '0x10de', 'device': '0x2330', 'class': '0x030200', 'tdisp_state': 'unlocked'}


def nvme(bdf: str, vendor: str = '0x144d') -> dict[str, t.Any]:
    return {'bdf': bdf, 'vendor': vendor, 'device': '0xa80a', 'class': '0x010802', 'tdisp_state': 'unlocked'}


def policy(*expected: dict[str, t.Any], **top: t.Any) -> dict[str, t.Any]:
    return dict({'version': '2026.11.1', 'rules': [{'id': 'all', 'all': True, 'trust': 'normal'}], 'expected': list(expected)}, **top)


GPUS = {'id': 'gpus', 'match': H100, 'count': 4}


def test_complete_inventory_has_no_findings() -> None:
    assert not check_expected([gpu(b) for b in range(0x41, 0x45)] + [nvme('0000:01:00.0')],
                              policy(GPUS, {'id': 'boot', 'bdfs': ['0000:01:00.0']}))


def test_count_below_is_missing() -> None:
    (finding,) = check_expected([gpu(0x41), gpu(0x42)], policy(GPUS))
    assert finding == {'kind': 'missing', 'expected': 'gpus', 'bdf': None, 'found': 2, 'want': 'count 4',
                       'bdfs': ['0000:41:00.0', '0000:42:00.0'],
                       'reason': "expected[0] (id gpus): wants count 4 devices matching match: %s, found 2 (0000:41:00.0, 0000:42:00.0)" % H100}


def test_count_above_is_extra() -> None:
    (finding,) = check_expected([gpu(b) for b in range(0x41, 0x46)], policy(GPUS))
    assert (finding['kind'], finding['expected'], finding['found']) == ('extra', 'gpus', 5)


@pytest.mark.parametrize('found, kinds', [(0, ['missing']), (1, []), (3, []), (4, ['extra'])])
def test_min_and_max(found: int, kinds: list[str]) -> None:
    findings = check_expected([gpu(0x41 + n) for n in range(found)], policy({'id': 'gpus', 'vendor': '0x10de', 'min': 1, 'max': 3}))
    assert [f['kind'] for f in findings] == kinds
    assert all(f['want'] == 'min 1, max 3' for f in findings)


def test_listed_bdf_absent_is_missing() -> None:
    (finding,) = check_expected([gpu(0x41)], policy({'id': 'boot-nvme', 'bdfs': ['0000:01:00.0']}))
    assert (finding['kind'], finding['expected'], finding['bdf']) == ('missing', 'boot-nvme', '0000:01:00.0')
    assert finding['reason'] == 'expected[0] (id boot-nvme): 0000:01:00.0 is not present'


def test_listed_bdf_holding_another_device_is_missing() -> None:
    (finding,) = check_expected([nvme('0000:01:00.0', vendor='0x1e0f')],
                                policy({'id': 'boot-nvme', 'vendor': '0x144d', 'bdfs': ['0000:01:00.0']}))
    assert (finding['kind'], finding['bdf']) == ('missing', '0000:01:00.0')
    assert finding['reason'] == 'expected[0] (id boot-nvme): 0000:01:00.0 is present but does not match vendor: 0x144d'


def test_matching_device_outside_the_exact_set_is_extra() -> None:
    findings = check_expected([nvme('0000:01:00.0'), nvme('0000:02:00.0')],
                              policy({'id': 'nvme', 'class': '0x0108*', 'bdfs': ['0000:01:00.0']}))
    assert [(f['kind'], f['expected'], f['bdf']) for f in findings] == [('extra', 'nvme', '0000:02:00.0')]


def test_bdf_listed_twice_in_the_facts_is_duplicate() -> None:
    findings = check_expected([nvme('0000:01:00.0'), nvme('0000:01:00.0')], policy({'id': 'boot', 'bdfs': ['0000:01:00.0']}))
    assert [(f['kind'], f['expected'], f['bdf'], f['found']) for f in findings] == [('duplicate', 'boot', '0000:01:00.0', 2)]


def test_expected_complete_reports_unlisted_devices() -> None:
    devices = [gpu(b) for b in range(0x41, 0x45)] + [nvme('0000:01:00.0'), nvme('0000:02:00.0')]
    raw = policy(GPUS, {'id': 'boot', 'bdfs': ['0000:01:00.0']})
    assert not check_expected(devices, raw)
    findings = check_expected(devices, dict(raw, expected_complete=True))
    assert [(f['kind'], f['expected'], f['bdf']) for f in findings] == [('unlisted', None, '0000:02:00.0')]


def test_selector_error_is_reported_and_the_device_not_counted() -> None:
    devices = [gpu(0x41), dict(gpu(0x42), **{'class': None})]
    findings = check_expected(devices, policy({'id': 'display', 'match': "starts_with(class, '0x03')", 'count': 2}))
    assert [(f['kind'], f['expected'], f['bdf']) for f in findings] == [('error', 'display', '0000:42:00.0'), ('missing', 'display', None)]
    assert findings[1]['found'] == 1
