"""tdisp_device_info's gatherer against the kernel model: each simulator fault changes what it reports."""

from __future__ import annotations

import pytest
from tdisp_sim.faults import apply_fault

CVM, GPU, NIC, VIRTIO = 'cvm-1', '0000:18:00.0', '0000:0c:00.0', '0000:00:03.0'


@pytest.fixture
def cvm(sim):
    s = sim('single-cvm')
    s.state(CVM, [{'bdf': GPU, 'state': 'run', 'unverified': True}], unbind_driver=True)
    s.trust(CVM, [{'bdf': GPU, 'level': 'tcb'}])
    return s


def test_listing_and_filters(cvm):
    r = cvm.info(CVM)
    assert r['tsms'] == [{'name': 'tsm0', 'mode': 'devsec', 'unknown': {}}]
    assert [d['bdf'] for d in r['devices']] == [NIC, GPU]  # only devices with a tsm/ directory, sorted
    assert r['missing'] == [] and r['ignored'] == []
    assert [d['bdf'] for d in cvm.info(CVM, vendor='10DE')['devices']] == [GPU]
    assert [d['bdf'] for d in cvm.info(CVM, device='0x1021')['devices']] == [NIC]
    assert [d['bdf'] for d in cvm.info(CVM, tsm='tsm0')['devices']] == [GPU]
    r = cvm.info(CVM, bdfs=[VIRTIO, '0000:77:00.0', GPU])
    assert [d['bdf'] for d in r['devices']] == [VIRTIO, GPU] and r['missing'] == ['0000:77:00.0']
    assert r['devices'][0]['tsm_side'] == 'none' and r['devices'][0]['trust_level'] == 'adversary'


def test_fault_error(cvm):
    before = cvm.facts(CVM, GPU)
    apply_fault(cvm.fleet, CVM, GPU, 'error', [])
    after = cvm.facts(CVM, GPU)
    # accept still reads 1 (the kernel does not show ERROR); the integer trust was reset to 0
    assert before['trust_level'] == 'tcb' and after['trust_level'] == 'blocked'
    assert after['accepted'] is True


def test_fault_generation(cvm, evidence_server):
    from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.evidence import client_factory
    srv = evidence_server(cvm)
    factory = client_factory(srv.endpoint(CVM))
    ev = {'types': ['report']}
    g1 = cvm.info(CVM, bdfs=[GPU], evidence=ev, evidence_factory=factory)['devices'][0]['evidence']['generation']
    apply_fault(cvm.fleet, CVM, GPU, 'generation', ['2'])
    g2 = cvm.info(CVM, bdfs=[GPU], evidence=ev, evidence_factory=factory)['devices'][0]['evidence']['generation']
    assert g2 == g1 + 2


def test_fault_rebind(cvm):
    cvm.state(CVM, [{'bdf': NIC, 'state': 'locked'}], unbind_driver=True, rebind_driver=False)
    assert cvm.facts(CVM, NIC)['driver'] is None
    apply_fault(cvm.fleet, CVM, NIC, 'rebind', [])
    assert cvm.facts(CVM, NIC)['driver'] == 'mlx5_core'


def test_fault_tsm_remove(cvm):
    apply_fault(cvm.fleet, CVM, None, 'tsm-remove', ['tsm0'])
    r = cvm.info(CVM, bdfs=[GPU])
    assert r['tsms'] == []
    d = r['devices'][0]
    assert d['tsm_side'] == 'none' and d['tdisp_state'] == 'unlocked' and d['lock_holder'] is None
    assert cvm.info(CVM)['devices'] == []  # no device has a tsm/ directory any more


def test_fault_remove(cvm):
    apply_fault(cvm.fleet, CVM, NIC, 'remove', [])
    r = cvm.info(CVM, bdfs=[NIC, GPU])
    assert r['missing'] == [NIC] and [d['bdf'] for d in r['devices']] == [GPU]


@pytest.mark.parametrize('attr, data, field, reason', [
    ('tsm/lock', None, 'lock_holder', 'garbage'),
    ('tsm/accept', '320a', 'accepted', "unexpected value '2'"),
    ('trust', '390a', 'trust_level', "unexpected value '9'"),
    ('vendor', 'ffff', 'vendor', 'garbage bytes'),
    ('tsm/lock', '74736d31787a0a', 'lock_holder', 'not tsm<N>'),
])
def test_fault_garbage(cvm, attr, data, field, reason):
    apply_fault(cvm.fleet, CVM, GPU, 'garbage', [attr] + ([data] if data else []))
    d = cvm.facts(CVM, GPU)
    assert d[field] is None and reason in d['unknown'][field]
    if attr.startswith('tsm/'):
        assert d['tdisp_state'] == 'unknown'
    # and tdisp_device refuses to act on it rather than guess
    if attr.startswith('tsm/'):
        r = cvm.state(CVM, [{'bdf': GPU, 'state': 'run', 'unverified': True}])
        assert r['failed'] and 'TDISP state unknown' in r['msg']
