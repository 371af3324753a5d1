"""The generation pin (DESIGN fact 5) and the info module's evidence, with the collection's real
netlink client talking to the simulator's evidence endpoint (and a stand-in where noted)."""

from __future__ import annotations

import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.evidence import client_factory
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.ledger import Ledger
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.options import Options
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.plan_state import converge_state
from abi_sim import SimEvidence

CVM, GPU, NIC = 'cvm-1', '0000:18:00.0', '0000:0c:00.0'


@pytest.fixture
def cvm(sim, evidence_server):
    s = sim('single-cvm')
    s.server = evidence_server(s)
    return s


def run(s, devices, **opts):
    factory = client_factory(s.server.endpoint(CVM))
    return converge_state(s.sysfs(CVM), Ledger(s.state_dir(CVM)), devices, Options(**opts), factory)


def accept_writes(s, mark):
    return [e for e in s.writes(CVM, mark) if e['path'].endswith('/tsm/accept')]


def test_pin_refuses_accept_after_bump(cvm):
    run(cvm, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True, rebind_driver=False)
    verified = cvm.info(CVM, bdfs=[GPU], evidence={'types': ['report']}, evidence_factory=client_factory(cvm.server.endpoint(CVM)))
    gen = verified['devices'][0]['evidence']['generation']
    assert gen == cvm.dev(CVM, GPU).generation
    cvm.host(CVM).fault_generation(cvm.dev(CVM, GPU))
    mark = cvm.seq()
    r = run(cvm, [{'bdf': GPU, 'state': 'run', 'generation': gen}])
    assert r['failed']
    assert r['msg'] == ('0000:18:00.0 tsm/accept: evidence changed since verification (generation %d -> %d); '
                        're-verify the evidence and pass the new generation' % (gen, gen + 1))
    assert accept_writes(cvm, mark) == [] and cvm.dev(CVM, GPU).accepted is False
    act = r['devices'][0]['actions']
    assert [a['action'] for a in act] == ['verify_generation', 'write', 'bind'] and not any(a['done'] for a in act)


def test_pin_accepts_and_kernel_validates(cvm):
    run(cvm, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True, rebind_driver=False)
    gen = cvm.dev(CVM, GPU).generation
    r = run(cvm, [{'bdf': GPU, 'state': 'run', 'generation': gen}])
    assert not r.get('failed'), r.get('msg')
    verify = r['devices'][0]['actions'][0]
    assert verify == {'action': 'verify_generation', 'generation': gen, 'kernel_validate': True, 'done': True}
    d = cvm.dev(CVM, GPU)
    assert d.accepted and d.validated_generation == gen
    assert cvm.ledger(CVM).entry(GPU)['generation'] == gen
    # re-run with the same pin: nothing to do, the generation still matches
    assert not run(cvm, [{'bdf': GPU, 'state': 'run', 'generation': gen}])['changed']
    # the interface falls into ERROR: the generation moves, the same pin now fails the device
    cvm.host(CVM).fault_error(d)
    r = run(cvm, [{'bdf': GPU, 'state': 'run', 'generation': gen}])
    assert r['failed'] and 'while the device reads accepted' in r['msg']


def test_pin_from_unlocked_checks_after_lock(cvm):
    """Unlocked -> run with a pin: the lock makes fresh evidence, so an old pin is refused after it."""
    gen = cvm.dev(CVM, NIC).generation
    r = run(cvm, [{'bdf': NIC, 'state': 'run', 'generation': gen}], unbind_driver=True)
    assert r['failed'] and 'evidence changed since verification' in r['msg']
    assert [a['done'] for a in r['devices'][0]['actions']] == [True, True, False, False, False]


def test_kernel_validate_catches_bump_between_read_and_accept(sim):
    """The stand-in bumps the generation after the pin was checked: the kernel's validate refuses."""
    s = sim('single-cvm')
    s.state(CVM, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True, rebind_driver=False)
    d = s.dev(CVM, GPU)
    gen = d.generation

    class Racy(SimEvidence):
        def generation(self, bdf):
            value = super().generation(bdf)
            self.host.fault_generation(self.host.devices[bdf])
            return value

    ev = Racy(s.host(CVM))
    r = s.state(CVM, [{'bdf': GPU, 'state': 'run', 'generation': gen}], evidence=ev)
    assert r['failed'] and 'the kernel refused to validate generation %d' % gen in r['msg'] and '(EAGAIN)' in r['msg']
    assert not d.accepted


def test_pin_without_evidence_endpoint(cvm):
    run(cvm, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True, rebind_driver=False)
    factory = client_factory('unix:/nonexistent/host.sock')
    r = converge_state(cvm.sysfs(CVM), Ledger(cvm.state_dir(CVM)), [{'bdf': GPU, 'state': 'run', 'generation': 1}], Options(), factory)
    assert r['failed'] and r['msg'].startswith('0000:18:00.0 evidence generation: cannot read the evidence generation')
    assert not cvm.dev(CVM, GPU).accepted


# -- tdisp_device_info with evidence -------------------------------------------------------------------------

def test_info_evidence(cvm):
    run(cvm, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True)
    factory = client_factory(cvm.server.endpoint(CVM))
    r = cvm.info(CVM, evidence={'types': None, 'nonce': None, 'max_object_size': 1 << 20}, evidence_factory=factory)
    by = {d['bdf']: d for d in r['devices']}
    ev = by[GPU]['evidence']
    assert ev['errors'] == [] and ev['generation'] == cvm.dev(CVM, GPU).generation and ev['family'] == 'device-evidence'
    assert set(ev['objects']) >= {'cert0', 'vca', 'measurements', 'report'}
    for name, obj in ev['objects'].items():
        assert obj['digest'].startswith('sha384:') and len(obj['digest']) == 7 + 96
        assert obj['data'] is not None and (obj['length'] > 0) == bool(obj['data'])
        assert (obj['length'] > 0) == (name in ('cert0', 'vca', 'measurements', 'report'))  # cert1..7: empty slots
    assert ev['vca'] and ev['measurements'] and ev['interface_report'] and ev['certificates']['cert0']
    nic = by[NIC]['evidence']
    assert nic == {'errors': [{'object': '*', 'msg': '0000:0c:00.0: not locked or connected: no TSM context, no evidence (ENXIO)'}]}


def test_info_evidence_size_cap_and_bad_object(cvm):
    run(cvm, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True)
    from tdisp_sim.faults import evidence as evidence_faults
    evidence_faults.set_fault(cvm.host(CVM), 'truncate', GPU, 'measurements')
    cvm.server.sync()
    factory = client_factory(cvm.server.endpoint(CVM))
    r = cvm.info(CVM, bdfs=[GPU, NIC], evidence={'types': ['vca', 'report'], 'max_object_size': 8}, evidence_factory=factory)
    ev = r['devices'][0]['evidence']
    assert set(ev['objects']) == {'vca', 'report'}
    assert all(o['data'] is None and 'max_object_size' in o['omitted'] for o in ev['objects'].values())
    assert ev['interface_report']  # still parsed
    r = cvm.info(CVM, bdfs=[GPU], evidence={'types': ['measurements']}, evidence_factory=factory)
    errs = r['devices'][0]['evidence']['errors']
    assert len(errs) == 1 and errs[0]['object'] in ('*', 'measurements')


def test_info_evidence_malformed_object_stays_with_its_device(sim):
    s = sim('single-cvm')
    s.state(CVM, [{'bdf': GPU, 'state': 'locked'}, {'bdf': NIC, 'state': 'locked'}], unbind_driver=True)

    class Client:
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return None

        def read(self, bdf, types, nonce=None):
            bad = b'\x12\x61\x00' if bdf == GPU else None
            from abi_sim import good_report
            return {'generation': 4, 'family': 'device-evidence',
                    'objects': {'report': bad if bad is not None else good_report()}}

    r = s.info(CVM, bdfs=[GPU, NIC], evidence={'types': ['report']}, evidence_factory=Client)
    gpu, nic = (d['evidence'] for d in r['devices'])
    assert gpu['errors'] and gpu['errors'][0]['object'] == 'report' and 'interface_report' not in gpu
    assert nic['errors'] == [] and nic['interface_report']
