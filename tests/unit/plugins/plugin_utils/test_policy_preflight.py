# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Lockout preflight: storage, network and critical devices a plan would cut off."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.coco.tdisp.plugins.plugin_utils._policy import PolicyError, plan, preflight

NVME = {'bdf': '0000:01:00.0', 'vendor': '0x144d', 'device': '0xa80a', 'class': '0x010802', 'driver': 'nvme', 'tsm_side': 'guest',
        'tdisp_state': 'unlocked', 'trust_level': 'normal'}
NIC = {'bdf': '0000:05:00.0', 'vendor': '0x15b3', 'device': '0x1021', 'class': '0x020000', 'driver': 'mlx5_core', 'tsm_side': 'guest',
       'tdisp_state': 'unlocked', 'trust_level': 'normal'}
GPU = {'bdf': '0000:41:00.0', 'vendor': '0x10de', 'device': '0x2330', 'class': '0x030200', 'driver': 'nvidia', 'tsm_side': 'guest',
       'tdisp_state': 'unlocked', 'trust_level': 'normal', 'evidence': {'generation': 3}}


def policy(*rules: dict[str, t.Any], default: str = 'reject') -> dict[str, t.Any]:
    return {'version': '1.0', 'default': default, 'rules': list(rules)}


def problems(devices: list[dict[str, t.Any]], raw: dict[str, t.Any], critical: t.Any = None, verdicts: t.Any = None) -> list[dict[str, t.Any]]:
    return preflight(devices, plan(devices, raw, verdicts), critical)


def test_nothing_at_risk() -> None:
    raw = policy({'id': 'storage', 'class': '0x01*', 'trust': 'normal'}, {'id': 'net', 'class': '0x02*', 'trust': 'adversary'})
    assert problems([NVME, NIC, GPU], raw) == []


def test_rejected_storage_and_network_are_problems() -> None:
    found = problems([NVME, NIC, GPU], policy())
    assert [(p['bdf'], p['kind'], p['categories'], p['rule']) for p in found] == [
        ('0000:01:00.0', 'blocked', ['storage'], 'implicit-default'), ('0000:05:00.0', 'blocked', ['network'], 'implicit-default')]
    assert found[0]['reason'] == ('storage device 0000:01:00.0 would be rejected by rule implicit-default: blocked, its driver cannot bind '
                                  'and its DMA stops')


def test_rejected_gpu_is_not_a_lockout_unless_critical() -> None:
    raw = policy({'id': 'io', 'class': ['0x01*', '0x02*'], 'trust': 'normal'})
    assert problems([NVME, NIC, GPU], raw) == []
    (found,) = problems([NVME, NIC, GPU], raw, critical=['0000:41:00.0'])
    assert (found['bdf'], found['kind'], found['categories']) == ('0000:41:00.0', 'blocked', ['critical'])


def test_disruptive_unlock_of_a_bound_device() -> None:
    accepted = dict(NVME, tdisp_state='run', trust_level='tcb', lock_holder='tsm1', accepted=True)
    (found,) = problems([accepted], policy({'id': 'storage', 'class': '0x01*', 'trust': 'normal'}))
    assert found['kind'] == 'driver_unbind'
    assert found['reason'].startswith('storage device 0000:01:00.0 would be unlocked by rule storage: driver nvme must be unbound')


def test_disruptive_unlock_without_a_driver_is_not_a_lockout() -> None:
    accepted = dict(NVME, tdisp_state='run', trust_level='tcb', driver=None)
    assert problems([accepted], policy({'id': 'storage', 'class': '0x01*', 'trust': 'normal'})) == []


def test_accepting_a_bound_boot_disk_needs_an_unbind() -> None:
    raw = policy({'id': 'nvme-tcb', 'class': '0x01*', 'require': {'manifest': 'pm1743'}, 'trust': 'tcb', 'on_evidence_failure': 'normal'})
    device = dict(NVME, evidence={'generation': 2})
    verdicts = {'0000:01:00.0': {'pm1743': {'status': 'affirming', 'manifest': 'pm1743', 'generation': 2}}}
    (found,) = problems([device], raw, verdicts=verdicts)
    assert found['kind'] == 'driver_unbind'
    assert 'would be locked and accepted by rule nvme-tcb: driver nvme must be unbound' in found['reason']
    assert problems([dict(device, tdisp_state='run', trust_level='tcb')], raw, verdicts=verdicts) == []


def test_unreadable_class_counts_as_at_risk() -> None:
    (found,) = problems([dict(GPU, **{'class': None})], policy())
    assert found['categories'] == ['unclassified'] and found['kind'] == 'blocked'


def test_undecided_device() -> None:
    (found,) = preflight([NVME, NIC], plan([NIC], policy({'id': 'net', 'class': '0x02*', 'trust': 'normal'})))
    assert (found['bdf'], found['kind']) == ('0000:01:00.0', 'undecided')


def test_accepts_the_decisions_list() -> None:
    assert preflight([NVME], plan([NVME], policy())['decisions'])[0]['kind'] == 'blocked'


@pytest.mark.parametrize('decisions, critical, line', [
    ({'policy_version': '1'}, None, 'decisions: must be a policy plan result'),
    ([], '0000:01:00.0', 'critical: must be a list'),
    ([], ['01:00.0'], "critical[0]: '01:00.0' is not a PCI device name"),
])
def test_bad_input(decisions: t.Any, critical: t.Any, line: str) -> None:
    with pytest.raises(PolicyError) as info:
        preflight([NVME], decisions, critical)
    assert len(info.value.errors) == 1 and info.value.errors[0].startswith(line)


VIRTIO_NET = {'bdf': '0000:00:03.0', 'vendor': '0x1af4', 'device': '0x1041', 'class': '0x020000', 'driver': 'virtio-pci',
              'tsm_side': 'none', 'tdisp_state': 'unlocked', 'trust_level': 'normal'}
VIRTIO_BLK = dict(VIRTIO_NET, bdf='0000:00:04.0', device='0x1042', **{'class': '0x010000'})


def test_a_data_path_device_is_no_lockout_while_another_of_its_kind_stays_in_service() -> None:
    raw = policy({'id': 'virtio', 'vendor': '0x1af4', 'trust': 'normal'}, {'id': 'io', 'class': ['0x01*', '0x02*'], 'trust': 'blocked'})
    assert problems([NVME, NIC, VIRTIO_NET, VIRTIO_BLK], raw) == []


def test_the_other_device_does_not_count_when_it_is_rejected_too_or_has_no_driver() -> None:
    raw = policy({'id': 'io', 'class': ['0x01*', '0x02*'], 'trust': 'blocked'})
    assert [p['bdf'] for p in problems([NVME, NIC, VIRTIO_NET, VIRTIO_BLK], raw)] == [
        '0000:00:03.0', '0000:00:04.0', '0000:01:00.0', '0000:05:00.0']
    raw = policy({'id': 'virtio', 'vendor': '0x1af4', 'trust': 'normal'}, {'id': 'io', 'class': ['0x01*', '0x02*'], 'trust': 'blocked'})
    unbound = dict(VIRTIO_NET, driver=None)
    assert [p['bdf'] for p in problems([NIC, unbound], raw)] == ['0000:05:00.0']


def test_a_critical_device_is_a_problem_even_with_others_of_its_kind_in_service() -> None:
    raw = policy({'id': 'virtio', 'vendor': '0x1af4', 'trust': 'normal'}, {'id': 'io', 'class': ['0x01*', '0x02*'], 'trust': 'blocked'})
    assert [p['bdf'] for p in problems([NIC, VIRTIO_NET], raw, critical=['0000:05:00.0'])] == ['0000:05:00.0']
