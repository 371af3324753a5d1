"""tdisp_device and device_trust against the kernel model: converge, idempotence, check mode
(no write event), disruptive transitions, the ledger, and every trust flavour."""

from __future__ import annotations

import json
import os

import pytest

CVM, GPU, NIC, VIRTIO = 'cvm-1', '0000:18:00.0', '0000:0c:00.0', '0000:00:03.0'


@pytest.fixture
def cvm(sim):
    return sim('single-cvm')


def acts(dev):
    return [(a['action'], a.get('attribute') or a.get('driver'), a.get('value'), a['done']) for a in dev['actions']]


def test_converge_then_idempotent(cvm):
    want = [{'bdf': GPU, 'state': 'run', 'unverified': True}, {'bdf': NIC, 'state': 'locked'}]
    r = cvm.state(CVM, want, unbind_driver=True)
    assert r['changed'] and not r.get('failed'), r.get('msg')
    assert acts(r['devices'][0]) == [('unbind', 'nvidia', None, True), ('write', 'tsm/lock', 'tsm0', True),
                                     ('write', 'tsm/accept', '1', True), ('bind', 'nvidia', None, True)]
    gpu = cvm.dev(CVM, GPU)
    assert (gpu.tdisp, gpu.accepted, gpu.driver) == ('RUN', True, 'nvidia')
    after = r['devices'][0]['after']
    assert (after['tdisp_state'], after['driver'], after['lock_holder']) == ('run', 'nvidia', 'tsm0')
    mark = cvm.seq()
    again = cvm.state(CVM, want, unbind_driver=True)
    assert not again['changed'] and all(d['actions'] == [] for d in again['devices'])
    assert cvm.writes(CVM, mark) == []  # accept read first: no EBUSY from a repeated accept with the driver bound
    assert again['devices'][0]['before'] == again['devices'][0]['after'] == after


@pytest.mark.parametrize('variant', [
    dict(devices=[{'bdf': GPU, 'state': 'run', 'unverified': True}, {'bdf': NIC, 'state': 'locked'}], unbind_driver=True),
    dict(devices=[{'bdf': GPU, 'state': 'locked'}], unbind_driver=True, rebind_driver=False),
])
def test_check_mode_writes_nothing(cvm, variant):
    devices = variant.pop('devices')
    mark = cvm.seq()
    r = cvm.state(CVM, devices, check_mode=True, **variant)
    assert r['changed'] and all(a['done'] is False for d in r['devices'] for a in d['actions'])
    assert cvm.fleet.events_since(mark) == []  # not even a failed write event
    assert cvm.opened_for_write(CVM) == 0
    assert not os.path.exists(cvm.state_dir(CVM))
    # the prediction is what the real run then reports
    real = cvm.state(CVM, devices, **variant)
    assert [d['after'] for d in r['devices']] == [d['after'] for d in real['devices']]


def test_check_mode_disruptive_and_trust_write_nothing(cvm):
    cvm.state(CVM, [{'bdf': GPU, 'state': 'run', 'unverified': True}], unbind_driver=True)
    cvm.trust(CVM, [{'bdf': GPU, 'level': 'tcb'}])
    mark = cvm.seq()
    r1 = cvm.state(CVM, [{'bdf': GPU, 'state': 'unlocked'}], unbind_driver=True, allow_disruptive=True, check_mode=True)
    r2 = cvm.trust(CVM, [{'bdf': GPU, 'level': 'blocked'}], unbind_driver=True, allow_disruptive=True, check_mode=True)
    assert r1['changed'] and r2['changed']
    assert cvm.fleet.events_since(mark) == []


def test_disruptive_needs_opt_in(cvm):
    cvm.state(CVM, [{'bdf': GPU, 'state': 'run', 'unverified': True}], unbind_driver=True)
    mark = cvm.seq()
    r = cvm.state(CVM, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True)
    assert r['failed'] and 'leaving run for locked is disruptive' in r['msg'] and 'accept has no inverse' in r['msg']
    assert cvm.fleet.events_since(mark) == []
    r = cvm.state(CVM, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True, allow_disruptive=True)
    assert acts(r['devices'][0]) == [('unbind', 'nvidia', None, True), ('write', 'tsm/unlock', 'tsm0', True),
                                     ('write', 'tsm/lock', 'tsm0', True), ('bind', 'nvidia', None, True)]
    assert r['devices'][0]['disruptive'] and cvm.dev(CVM, GPU).tdisp == 'CONFIG_LOCKED'


def test_refusal_writes_nothing_for_any_device(cvm):
    """One bad device fails the task before any device is written."""
    mark = cvm.seq()
    r = cvm.state(CVM, [{'bdf': NIC, 'state': 'locked'}, {'bdf': GPU, 'state': 'locked'}])
    assert r['failed'] and len(r['errors']) == 2 and not r['changed']
    assert cvm.fleet.events_since(mark) == []


def test_ledger_restores_driver_after_failed_run(cvm):
    """DESIGN fact 2: the driver is recorded before the unbind; a later run rebinds it."""
    h = cvm.host(CVM)
    canon = cvm.view.lookup(CVM, 'bus/pci/devices/%s/tsm/lock' % GPU)[0]
    h.fault_write_errno(canon, 5, 1)  # EIO on the lock write, after the unbind
    r = cvm.state(CVM, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True)
    assert r['failed'] and '(EIO)' in r['msg']
    assert acts(r['devices'][0])[0] == ('unbind', 'nvidia', None, True)
    assert cvm.dev(CVM, GPU).driver is None
    led = json.load(open(os.path.join(cvm.state_dir(CVM), 'ledger.json')))
    assert led['devices'][GPU]['unbound_driver'] == 'nvidia'
    r = cvm.state(CVM, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True)
    assert not r.get('failed') and acts(r['devices'][0]) == [('write', 'tsm/lock', 'tsm0', True), ('bind', 'nvidia', None, True)]
    assert cvm.dev(CVM, GPU).driver == 'nvidia'
    assert GPU not in json.load(open(os.path.join(cvm.state_dir(CVM), 'ledger.json')))['devices']


def test_rebind_false_then_later_restore(cvm):
    cvm.state(CVM, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True, rebind_driver=False)
    assert cvm.dev(CVM, GPU).driver is None
    r = cvm.state(CVM, [{'bdf': GPU, 'state': 'locked'}], rebind_driver=False)
    assert not r['changed']
    r = cvm.state(CVM, [{'bdf': GPU, 'state': 'locked'}])
    assert acts(r['devices'][0]) == [('bind', 'nvidia', None, True)] and cvm.dev(CVM, GPU).driver == 'nvidia'


def test_one_device_fails_others_converge(cvm):
    h = cvm.host(CVM)
    canon = cvm.view.lookup(CVM, 'bus/pci/devices/%s/tsm/accept' % GPU)[0]
    h.fault_write_errno(canon, 5, 1)
    r = cvm.state(CVM, [{'bdf': GPU, 'state': 'run', 'unverified': True}, {'bdf': NIC, 'state': 'run', 'unverified': True}], unbind_driver=True)
    assert r['failed'] and r['changed'] and r['msg'].startswith('0000:18:00.0 tsm/accept:')
    gpu, nic = r['devices']
    assert gpu['failed'] and not nic['failed'] and nic['after']['tdisp_state'] == 'run'
    # accept failed with EIO: back through unlock -> lock (no driver bound), to be verified again (issue 10)
    assert acts(gpu) == [('unbind', 'nvidia', None, True), ('write', 'tsm/lock', 'tsm0', True), ('write', 'tsm/accept', '1', False),
                         ('write', 'tsm/unlock', 'tsm0', True), ('write', 'tsm/lock', 'tsm0', True)]
    assert gpu['needs_reverify'] is True and gpu['after']['tdisp_state'] == 'locked' and gpu['converged'] is False


def test_no_such_device(cvm):
    r = cvm.state(CVM, [{'bdf': '0000:99:00.0', 'state': 'run', 'unverified': True}])
    assert r['failed'] and r['msg'].startswith('0000:99:00.0 tsm/lock: no such PCI device (ENOENT)')


def test_virtio_has_no_guest_side(cvm):
    r = cvm.state(CVM, [{'bdf': VIRTIO, 'state': 'locked'}])
    assert r['failed'] and 'no guest tsm/ attributes' in r['msg']


# -- trust flavours --------------------------------------------------------------------------------------

@pytest.fixture
def flav(sim):
    return sim('trust-flavours')


def test_flavour_trust_int(flav):
    host = 'flav-trust'
    r = flav.trust(host, [{'bdf': GPU, 'level': 'tcb'}])
    assert r['failed'] and 'tcb needs TDISP RUN (device is unlocked)' in r['msg']
    flav.state(host, [{'bdf': GPU, 'state': 'run', 'unverified': True}], unbind_driver=True)
    r = flav.trust(host, [{'bdf': GPU, 'level': 'tcb'}])
    assert not r.get('failed') and acts(r['devices'][0]) == [('write', 'trust', '3', True)]
    assert flav.dev(host, GPU).trust == 3 and r['devices'][0]['after']['trust_level'] == 'tcb'
    mark = flav.seq()
    assert not flav.trust(host, [{'bdf': GPU, 'level': 3}])['changed'] and flav.writes(host, mark) == []
    r = flav.trust(host, [{'bdf': GPU, 'level': 'adversary'}])
    assert r['failed'] and 'below tcb while the device is in RUN' in r['msg']
    r = flav.trust(host, [{'bdf': GPU, 'level': 'adversary'}], allow_disruptive=True, unbind_driver=True)
    assert acts(r['devices'][0]) == [('unbind', 'nvidia', None, True), ('write', 'tsm/unlock', 'tsm0', True),
                                     ('write', 'trust', '1', True), ('bind', 'nvidia', None, True)]
    d = flav.dev(host, GPU)
    assert (d.tdisp, d.trust, d.driver) == ('CONFIG_UNLOCKED', 1, 'nvidia')
    # virtio has a trust file but no tsm/: lower levels are fine, tcb is not
    assert acts(flav.trust(host, [{'bdf': VIRTIO, 'level': 'normal'}])['devices'][0]) == [('write', 'trust', '2', True)]
    r = flav.trust(host, [{'bdf': VIRTIO, 'level': 'tcb'}])
    assert r['failed'] and 'tcb needs TDISP RUN (device is unlocked)' in r['msg']


def test_flavour_trust_policy(flav):
    host = 'flav-policy'
    r = flav.trust(host, [{'bdf': GPU, 'level': 'adversary'}])
    assert r['failed'] and 'driver nvidia is bound (trust_policy returns EBUSY' in r['msg']
    r = flav.trust(host, [{'bdf': GPU, 'level': 'adversary'}], unbind_driver=True)
    assert acts(r['devices'][0]) == [('unbind', 'nvidia', None, True), ('write', 'trust_policy', 'adversary', True),
                                     ('bind', 'nvidia', None, True)]
    assert flav.dev(host, GPU).trust_policy == 'adversary'
    # tcb = full + RUN
    flav.state(host, [{'bdf': GPU, 'state': 'run', 'unverified': True}], unbind_driver=True)
    r = flav.trust(host, [{'bdf': GPU, 'level': 'tcb'}], unbind_driver=True)
    assert not r.get('failed'), r.get('msg')
    assert ('write', 'trust_policy', 'full', True) in acts(r['devices'][0])
    assert r['devices'][0]['after']['trust_level'] == 'tcb'
    assert not flav.trust(host, [{'bdf': GPU, 'level': 'tcb'}], unbind_driver=True)['changed']
    # blocked: disabled, and no rebind (the kernel refuses it); the ledger keeps the driver
    r = flav.trust(host, [{'bdf': GPU, 'level': 'blocked'}], unbind_driver=True, allow_disruptive=True)
    assert not r.get('failed'), r.get('msg')
    assert r['devices'][0]['actions'][-1]['skipped'] and flav.dev(host, GPU).driver is None
    assert flav.ledger(host).entry(GPU)['unbound_driver'] == 'nvidia'
    # raising it again rebinds the owed driver
    r = flav.trust(host, [{'bdf': GPU, 'level': 'normal'}])
    assert acts(r['devices'][0]) == [('write', 'trust_policy', 'full', True), ('bind', 'nvidia', None, True)]
    assert flav.dev(host, GPU).driver == 'nvidia'


def test_flavour_module_param(flav):
    host = 'flav-module'
    h = flav.host(host)
    r = flav.trust(host, [{'bdf': GPU, 'level': 'normal'}])
    assert r['failed'] and 'which module trust= applies is unknown' in r['msg']
    r = flav.trust(host, [{'bdf': GPU, 'level': 'adversary', 'driver': 'nvidia'}])
    assert not r.get('failed'), r.get('msg')
    assert acts(r['devices'][0]) == [('write', 'module/nvidia/parameters/trust', 'adversary', True)]
    assert h.drivers['nvidia'].trust_param == 'adversary'
    assert r['devices'][0]['pending_rebind'] is False  # not bound: applies at its next bind
    r = flav.trust(host, [{'bdf': GPU, 'level': 'adversary', 'driver': 'virtio-pci'}])
    assert r['failed'] and 'virtio-pci' in r['msg']


def test_flavour_module_param_rebind(flav):
    host = 'flav-module'
    h = flav.host(host)
    d = h.devices[GPU]
    flav.state(host, [{'bdf': GPU, 'state': 'run', 'unverified': True}])
    h.bind_driver(d, 'nvidia', 'test')
    assert d.effective_module_trust == 'auto'
    r = flav.trust(host, [{'bdf': GPU, 'level': 'tcb'}])
    assert not r.get('failed') and r['devices'][0]['pending_rebind'] is True
    assert d.effective_module_trust == 'auto' and h.drivers['nvidia'].trust_param == 'tcb'
    again = flav.trust(host, [{'bdf': GPU, 'level': 'tcb'}])
    assert not again['changed'] and again['devices'][0]['pending_rebind'] is True
    r = flav.trust(host, [{'bdf': GPU, 'level': 'tcb'}], unbind_driver=True)
    assert acts(r['devices'][0]) == [('unbind', 'nvidia', None, True), ('bind', 'nvidia', None, True)]
    assert d.effective_module_trust == 'tcb' and r['devices'][0]['pending_rebind'] is False
    assert not flav.trust(host, [{'bdf': GPU, 'level': 'tcb'}], unbind_driver=True)['changed']


def test_flavour_none(flav):
    r = flav.trust('flav-none', [{'bdf': GPU, 'level': 'normal'}])
    assert r['failed'] and 'no trust ABI on this kernel' in r['msg']
    info = flav.facts('flav-none', GPU)
    assert info['trust_abi'] == 'none' and info['trust_level'] is None


# -- reset detection (DESIGN fact 4) ----------------------------------------------------------------------

def test_reset_detected_with_ledger(flav):
    host = 'flav-trust'
    flav.state(host, [{'bdf': GPU, 'state': 'run', 'unverified': True}], unbind_driver=True)
    flav.trust(host, [{'bdf': GPU, 'level': 'tcb'}])
    h = flav.host(host)
    h.fault_error(h.devices[GPU])  # ERROR: accept still reads 1, the kernel resets trust to 0
    info = flav.facts(host, GPU)
    assert info['tdisp_state'] == 'run' and info['trust_level'] == 'blocked'
    mark = flav.seq()
    r = flav.trust(host, [{'bdf': GPU, 'level': 'tcb'}])
    dev = r['devices'][0]
    assert r['failed'] and dev['reset_detected'] is True and dev['actions'] == []
    assert 'trust was reset by the kernel (tcb -> blocked' in r['msg'] and 're-run lock -> verify -> accept' in r['msg']
    assert flav.writes(host, mark) == []  # not written back silently
    # the operator's way back: unlock (disruptive), lock, accept, set
    r = flav.state(host, [{'bdf': GPU, 'state': 'unlocked'}], unbind_driver=True, allow_disruptive=True)
    assert not r.get('failed'), r.get('msg')
    flav.state(host, [{'bdf': GPU, 'state': 'run', 'unverified': True}], unbind_driver=True)
    r = flav.trust(host, [{'bdf': GPU, 'level': 'tcb'}])
    assert not r.get('failed') and r['devices'][0]['reset_detected'] is False


def test_reset_detected_without_ledger(flav):
    host = 'flav-trust'
    flav.state(host, [{'bdf': GPU, 'state': 'run', 'unverified': True}], unbind_driver=True)
    h = flav.host(host)
    h.fault_error(h.devices[GPU])
    r = flav.trust(host, [{'bdf': GPU, 'level': 'tcb'}])
    dev = r['devices'][0]
    assert r['failed'] and dev['reset_detected'] is True
    assert 'accept reads 1: the interface left RUN (EINVAL)' in r['msg']


def test_unlock_by_collection_is_not_a_reset(flav):
    host = 'flav-trust'
    flav.state(host, [{'bdf': GPU, 'state': 'run', 'unverified': True}], unbind_driver=True)
    flav.trust(host, [{'bdf': GPU, 'level': 'tcb'}])
    flav.state(host, [{'bdf': GPU, 'state': 'unlocked'}], unbind_driver=True, allow_disruptive=True)
    r = flav.trust(host, [{'bdf': GPU, 'level': 'adversary'}])
    assert not r.get('failed') and r['devices'][0]['reset_detected'] is False


# -- module_param sharing -----------------------------------------------------------------------------------

def test_module_param_sharing(sim):
    s = sim('gpu-fleet')
    host = sorted(s.fleet.hosts)[0]
    h = s.host(host)
    gpus = sorted(b for b, d in h.devices.items() if d.driver == 'nvidia')
    assert len(gpus) >= 3
    h.trust_abi = 'module_param'
    for drv in h.drivers.values():
        drv.trust_param = drv.trust_param or 'auto'
    r = s.trust(host, [{'bdf': gpus[0], 'level': 'adversary'}, {'bdf': gpus[1], 'level': 'normal'}])
    assert r['failed'] and 'share module nvidia' in r['msg']
    mark = s.seq()
    r = s.trust(host, [{'bdf': gpus[0], 'level': 'adversary'}, {'bdf': gpus[1], 'level': 'adversary'}])
    assert not r.get('failed'), r.get('msg')
    module_writes = [e for e in s.writes(host, mark) if e['path'].startswith('module/')]
    assert len(module_writes) == 1  # one shared write for both devices
    assert r['devices'][0]['actions'][0]['devices'] == gpus[:2]
    assert 'not in this task' in r['warnings'][0] and gpus[2] in r['warnings'][0]


def test_module_param_tcb_shared_with_device_not_in_run(sim):
    s = sim('devsec-sample')
    host = 'sample-cvm'
    # the scenario starts it in RUN: the collection holds no acceptance record for it
    r = s.trust(host, [{'bdf': '10000:01:00.0', 'level': 'tcb', 'driver': 'devsec_pci'}], unverified=True)
    assert not r.get('failed') and r['changed'], r.get('msg')
    r = s.trust(host, [{'bdf': '10001:03:00.0', 'level': 'tcb', 'driver': 'devsec_pci'}])
    assert not r.get('failed') and not r['changed']
    assert r['warnings'] == ['10001:03:00.0: module devsec_pci trust=tcb applies to it at its next bind, but the device is unlocked, '
                             'not in RUN: it gets no private memory until it is accepted']


def test_a_rejection_is_recorded_once_kept_and_cleared_when_the_device_is_accepted(cvm):
    """tdisp_device devices[].rejected: the ledger keeps why a policy keeps a device out (a change once, then none)."""
    why = {'reason': 'evidence contraindicated: measurements index 2', 'policy_version': '2026.11.1'}
    cvm.state(CVM, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True)
    check = cvm.state(CVM, [{'bdf': GPU, 'state': 'unlocked', 'rejected': why}], unbind_driver=True, allow_disruptive=True,
                      check_mode=True)
    assert check['devices'][0]['rejection_recorded'] is True
    r = cvm.state(CVM, [{'bdf': GPU, 'state': 'unlocked', 'rejected': why}], unbind_driver=True, allow_disruptive=True)
    assert r['changed'] and r['devices'][0]['rejection_recorded'] is True
    with open(os.path.join(cvm.state_dir(CVM), 'ledger.json')) as f:
        recorded = json.load(f)['devices'][GPU]['rejected']
    assert {k: recorded[k] for k in ('reason', 'policy_version')} == why and recorded['at'].endswith('Z')
    mark = cvm.seq()
    again = cvm.state(CVM, [{'bdf': GPU, 'state': 'unlocked', 'rejected': why}], unbind_driver=True, allow_disruptive=True)
    assert not again['changed'] and cvm.writes(CVM, mark) == []
    cvm.state(CVM, [{'bdf': GPU, 'state': 'run', 'unverified': True}], unbind_driver=True)
    with open(os.path.join(cvm.state_dir(CVM), 'ledger.json')) as f:
        assert 'rejected' not in json.load(f)['devices'].get(GPU, {})


@pytest.mark.parametrize('spec, text', [
    ({'bdf': GPU, 'state': 'run', 'rejected': {'reason': 'x', 'policy_version': '1'}}, 'applies to state unlocked only'),
    ({'bdf': GPU, 'state': 'unlocked', 'rejected': {'reason': 'x'}}, 'rejected must be {reason: text, policy_version: text}'),
    ({'bdf': GPU, 'state': 'unlocked', 'rejected': {'reason': ' ', 'policy_version': '1'}}, 'rejected must be'),
])
def test_a_malformed_rejection_is_refused_before_anything_is_written(cvm, spec, text):
    mark = cvm.seq()
    with pytest.raises(Exception) as exc:
        r = cvm.state(CVM, [spec])
        raise AssertionError(r.get('msg'))
    assert text in str(exc.value)
    assert cvm.writes(CVM, mark) == []
