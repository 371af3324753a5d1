# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Planning for tdisp_device and device_trust, in check mode against plain trees, and the proof
that check mode writes, opens for writing and creates nothing."""

from __future__ import annotations


import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.ledger import Ledger
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.options import Options
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.plan_state import converge_state
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.plan_trust import converge_trust
from ansible_collections.coco.tdisp.plugins.module_utils._abi.sysfs import Sysfs

GPU, LOCKED, RUN = '0000:41:00.0', '0000:42:00.0', '10000:01:00.0'


class FakeEvidence:
    def __init__(self, generations):
        self.generations = generations
        self.validated = []

    def generation(self, bdf):
        return self.generations[bdf]

    def validate(self, bdf, generation):
        self.validated.append((bdf, generation))
        return True


def state(tree, tmp_path, devices, evidence=None, **opts):
    opts.setdefault('check_mode', True)
    factory = (lambda: evidence) if evidence is not None else None
    return converge_state(Sysfs(tree.root), Ledger(str(tmp_path / 'state')), devices, Options(**opts), factory)


def trust(tree, tmp_path, devices, **opts):
    opts.setdefault('check_mode', True)
    return converge_trust(Sysfs(tree.root), Ledger(str(tmp_path / 'state')), devices, Options(**opts))


def steps(result, i=0):
    return [(a['action'], a.get('attribute') or a.get('driver'), a.get('value')) for a in result['devices'][i]['actions']]


# -- tdisp_device -----------------------------------------------------------------------------------

def test_unlocked_to_run_with_driver(guest, tmp_path):
    r = state(guest, tmp_path, [{'bdf': GPU, 'state': 'run', 'unverified': True}], unbind_driver=True)
    assert steps(r) == [('unbind', 'nvidia', None), ('write', 'tsm/lock', 'tsm1'), ('write', 'tsm/accept', '1'), ('bind', 'nvidia', None)]
    dev = r['devices'][0]
    assert r['changed'] and dev['changed'] and not dev['failed'] and not dev['disruptive']
    assert all(a['done'] is False for a in dev['actions'])
    assert dev['before']['tdisp_state'] == 'unlocked'
    assert (dev['after']['tdisp_state'], dev['after']['lock_holder'], dev['after']['accepted'], dev['after']['driver']) == ('run', 'tsm1', True, 'nvidia')


def test_bound_driver_refused_without_unbind(guest, tmp_path):
    r = state(guest, tmp_path, [{'bdf': GPU, 'state': 'locked'}])
    assert r['failed'] and not r['changed']
    assert r['msg'] == ('0000:41:00.0 tsm/lock: driver nvidia is bound (tsm/lock returns EBUSY while a driver is bound); '
                        'set unbind_driver: true or unbind it first')
    assert r['devices'][0]['after'] == r['devices'][0]['before']


def test_no_rebind(guest, tmp_path):
    r = state(guest, tmp_path, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True, rebind_driver=False)
    assert steps(r) == [('unbind', 'nvidia', None), ('write', 'tsm/lock', 'tsm1')]
    assert r['devices'][0]['after']['driver'] is None


def test_locked_to_run_with_pin(guest, tmp_path):
    r = state(guest, tmp_path, [{'bdf': LOCKED, 'state': 'run', 'generation': 7}])
    assert steps(r) == [('verify_generation', None, None), ('write', 'tsm/accept', '1')]
    assert r['devices'][0]['actions'][0]['generation'] == 7


def test_already_in_state_is_no_change(guest, tmp_path):
    r = state(guest, tmp_path, [{'bdf': RUN, 'state': 'run', 'unverified': True}, {'bdf': LOCKED, 'state': 'locked'}])
    assert not r['changed'] and steps(r, 0) == [] and steps(r, 1) == []
    assert r['devices'][0]['after'] == r['devices'][0]['before']


def test_run_pin_checked_on_accepted_device(guest, tmp_path):
    ev = FakeEvidence({RUN: 8})
    r = state(guest, tmp_path, [{'bdf': RUN, 'state': 'run', 'generation': 8}], evidence=ev)
    assert not r['changed'] and not r.get('failed')
    r = state(guest, tmp_path, [{'bdf': RUN, 'state': 'run', 'generation': 7}], evidence=ev)
    assert r['failed'] and 'evidence changed since verification (generation 7 -> 8) while the device reads accepted' in r['msg']
    assert ev.validated == []  # read only: validate is never called at planning time


@pytest.mark.parametrize('start, target, expect', [
    (RUN, 'unlocked', [('write', 'tsm/unlock', 'tsm1')]),
    (LOCKED, 'unlocked', [('write', 'tsm/unlock', 'tsm1')]),
    (RUN, 'locked', [('write', 'tsm/unlock', 'tsm1'), ('write', 'tsm/lock', 'tsm1')]),
])
def test_disruptive(guest, tmp_path, start, target, expect):
    r = state(guest, tmp_path, [{'bdf': start, 'state': target}])
    assert r['failed'] and 'is disruptive' in r['msg'] and 'set allow_disruptive: true' in r['msg']
    r = state(guest, tmp_path, [{'bdf': start, 'state': target}], allow_disruptive=True)
    assert steps(r) == expect
    dev = r['devices'][0]
    assert dev['disruptive'] and dev['actions'][0]['disruptive'] is True
    assert dev['after']['tdisp_state'] == target
    if start == RUN:
        assert dev['after']['trust_level'] == 'blocked'  # the integer trust ABI resets on unlock


def test_explicit_tsm_relocks(guest, tmp_path):
    guest.tsm('tsm2', 'devsec')
    r = state(guest, tmp_path, [{'bdf': LOCKED, 'state': 'locked'}], tsm='tsm2', allow_disruptive=True)
    assert steps(r) == [('write', 'tsm/unlock', 'tsm1'), ('write', 'tsm/lock', 'tsm2')]


def test_tsm_choice(guest, tmp_path):
    guest.tsm('tsm2', 'devsec')
    r = state(guest, tmp_path, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True)
    assert r['failed'] and 'several devsec TSMs are registered (tsm1, tsm2)' in r['msg']
    r = state(guest, tmp_path, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True, tsm='tsm2')
    assert ('write', 'tsm/lock', 'tsm2') in steps(r)
    r = state(guest, tmp_path, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True, tsm='tsm0')
    assert r['failed'] and 'tsm0 is a link TSM, not a guest (devsec) TSM' in r['msg']
    r = state(guest, tmp_path, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True, tsm='tsm7')
    assert r['failed'] and 'tsm7 is not a registered TSM (registered: tsm0 (link), tsm1 (devsec), tsm2 (devsec))' in r['msg']


def test_no_devsec_tsm(tree, tmp_path):
    tree.tsm('tsm0', 'link')
    tree.device(GPU)
    r = state(tree, tmp_path, [{'bdf': GPU, 'state': 'locked'}])
    assert r['failed'] and 'no devsec (guest) TSM is registered (registered: tsm0 (link))' in r['msg']


@pytest.mark.parametrize('spec, match', [
    ({'bdf': '0000:41:00.0/../..', 'state': 'run', 'unverified': True}, 'not a PCI device name'),
    ({'bdf': GPU, 'state': 'accepted'}, "state 'accepted' is not one of"),
    ({'bdf': GPU, 'state': 'locked', 'generation': 3}, 'applies to state run only'),
    ({'bdf': GPU, 'state': 'run', 'generation': -1}, 'not a non-negative integer'),
    ({'bdf': GPU, 'state': 'run', 'generation': True}, 'not a non-negative integer'),
])
def test_bad_input_raises_before_anything(guest, tmp_path, spec, match):
    with pytest.raises(TdispError, match=match):
        state(guest, tmp_path, [spec], check_mode=False)


def test_duplicate_device(guest, tmp_path):
    with pytest.raises(TdispError, match='listed twice'):
        state(guest, tmp_path, [{'bdf': GPU, 'state': 'run', 'unverified': True}, {'bdf': GPU, 'state': 'locked'}])


def test_bad_tsm_option():
    with pytest.raises(TdispError, match='not a TSM name'):
        Options(tsm='../tsm1')


def test_refusals_name_every_device(guest, tmp_path):
    r = state(guest, tmp_path, [{'bdf': '0000:99:00.0', 'state': 'run', 'unverified': True}, {'bdf': RUN, 'state': 'unlocked'},
                                {'bdf': LOCKED, 'state': 'run', 'unverified': True}])
    assert r['failed'] and len(r['errors']) == 2
    assert r['msg'].startswith('0000:99:00.0 tsm/lock: no such PCI device (ENOENT)')
    assert '1 more refusals' in r['msg']
    assert [d['failed'] for d in r['devices']] == [True, True, False]


def test_unknown_state_refused(guest, tmp_path):
    guest.put(guest.devdir(LOCKED) + '/tsm/lock', 'garbage\n')
    r = state(guest, tmp_path, [{'bdf': LOCKED, 'state': 'run', 'unverified': True}])
    assert r['failed'] and 'TDISP state unknown' in r['msg'] and "'garbage'" in r['msg']


def test_device_without_guest_attributes_refused(guest, tmp_path):
    guest.device('0000:50:00.0', tsm_dir=False)
    r = state(guest, tmp_path, [{'bdf': '0000:50:00.0', 'state': 'unlocked'}])
    assert r['failed'] and 'no guest tsm/ attributes' in r['msg']


def test_connected_device_lock_refused(tree, tmp_path):
    tree.tsm('tsm0', 'link')
    tree.tsm('tsm1', 'devsec')
    tree.device(GPU, guest=True, host=True)
    tree.put(tree.devdir(GPU) + '/tsm/connect', 'tsm0\n')
    r = state(tree, tmp_path, [{'bdf': GPU, 'state': 'locked'}])
    assert r['failed'] and 'connected by link TSM tsm0' in r['msg']


def test_ledger_owed_driver_is_rebound(guest, tmp_path):
    led = Ledger(str(tmp_path / 'state'))
    led.update(LOCKED, unbound_driver='nvidia')
    led.save()
    r = state(guest, tmp_path, [{'bdf': LOCKED, 'state': 'locked'}])
    assert steps(r) == [('bind', 'nvidia', None)] and r['changed']
    r = state(guest, tmp_path, [{'bdf': LOCKED, 'state': 'locked'}], rebind_driver=False)
    assert steps(r) == [] and not r['changed']


def test_blocked_device_not_rebound(tree, tmp_path):
    tree.tsm('tsm1', 'devsec')
    tree.driver('nvidia', module='nvidia')
    tree.module_param('nvidia', 'none')
    tree.device(GPU, driver='nvidia')
    r = state(tree, tmp_path, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True)
    acts = r['devices'][0]['actions']
    assert acts[-1]['action'] == 'bind' and 'refuses to bind' in acts[-1]['skipped']
    assert r['devices'][0]['after']['driver'] is None


# -- device_trust -----------------------------------------------------------------------------------

def test_trust_int(guest, tmp_path):
    r = trust(guest, tmp_path, [{'bdf': LOCKED, 'level': 'adversary'}, {'bdf': RUN, 'level': 3}])
    assert steps(r, 0) == [('write', 'trust', '1')] and steps(r, 1) == []
    assert r['devices'][0]['after']['trust_level'] == 'adversary'
    assert r['devices'][0]['reset_detected'] is False and 'pending_rebind' not in r['devices'][0]


def test_tcb_needs_run(guest, tmp_path):
    r = trust(guest, tmp_path, [{'bdf': LOCKED, 'level': 'tcb'}])
    assert r['failed'] and r['msg'] == ('0000:42:00.0 trust: tcb needs TDISP RUN (device is locked); accept it first with '
                                        'coco.tdisp.tdisp_device state: run and the verified generation')


def test_below_tcb_in_run(guest, tmp_path):
    r = trust(guest, tmp_path, [{'bdf': RUN, 'level': 'normal'}])
    assert r['failed'] and 'below tcb while the device is in RUN' in r['msg'] and 'allow_disruptive' in r['msg']
    r = trust(guest, tmp_path, [{'bdf': RUN, 'level': 'normal'}], allow_disruptive=True)
    assert steps(r) == [('write', 'tsm/unlock', 'tsm1'), ('write', 'trust', '2')]
    after = r['devices'][0]['after']
    assert (after['tdisp_state'], after['trust_level']) == ('unlocked', 'normal')


def test_trust_policy_needs_unbound(tree, tmp_path):
    tree.tsm('tsm1', 'devsec')
    tree.device(GPU, driver='nvidia', trust_policy='default')
    r = trust(tree, tmp_path, [{'bdf': GPU, 'level': 'adversary'}])
    assert r['failed'] and 'driver nvidia is bound (trust_policy returns EBUSY' in r['msg']
    r = trust(tree, tmp_path, [{'bdf': GPU, 'level': 'adversary'}], unbind_driver=True)
    assert steps(r) == [('unbind', 'nvidia', None), ('write', 'trust_policy', 'adversary'), ('bind', 'nvidia', None)]
    r = trust(tree, tmp_path, [{'bdf': GPU, 'level': 'blocked'}], unbind_driver=True)
    assert steps(r)[:2] == [('unbind', 'nvidia', None), ('write', 'trust_policy', 'disabled')]
    assert 'refuses to bind' in r['devices'][0]['actions'][2]['skipped']


def test_trust_policy_tcb_on_run(tree, tmp_path):
    tree.tsm('tsm1', 'devsec')
    tree.device(GPU, lock='tsm1', accept='1', trust_policy='adversary')
    r = trust(tree, tmp_path, [{'bdf': GPU, 'level': 'tcb'}])
    assert steps(r) == [('write', 'trust_policy', 'full')]
    assert r['devices'][0]['after']['trust_level'] == 'tcb'


def module_host(tree):
    tree.tsm('tsm1', 'devsec')
    tree.driver('nvidia', module='nvidia')
    tree.module_param('nvidia', 'auto')
    tree.device(GPU, driver='nvidia', lock='tsm1', accept='1')
    tree.device('0000:43:00.0', driver='nvidia', lock='tsm1', accept='1')
    tree.device('0000:44:00.0', driver='nvidia')
    for b in (GPU, '0000:43:00.0', '0000:44:00.0'):
        tree.link('bus/pci/drivers/nvidia/' + b, '../../../../' + tree.devdir(b))


def test_module_param_shared(tree, tmp_path):
    module_host(tree)
    r = trust(tree, tmp_path, [{'bdf': GPU, 'level': 'tcb'}, {'bdf': '0000:43:00.0', 'level': 'normal'}])
    assert r['failed'] and 'share module nvidia' in r['msg'] and 'ask one level' in r['msg']
    r = trust(tree, tmp_path, [{'bdf': GPU, 'level': 'tcb'}, {'bdf': '0000:43:00.0', 'level': 'tcb'}])
    assert steps(r, 0) == [('write', 'module/nvidia/parameters/trust', 'tcb')]
    assert r['devices'][0]['actions'][0]['devices'] == [GPU, '0000:43:00.0']
    assert all(d['pending_rebind'] for d in r['devices'])
    assert r['warnings'] == ['module nvidia trust= is shared: device(s) 0000:44:00.0, not in this task, get level tcb at their next bind']


def test_module_param_rebind(tree, tmp_path):
    module_host(tree)
    r = trust(tree, tmp_path, [{'bdf': GPU, 'level': 'tcb'}], unbind_driver=True)
    assert steps(r) == [('unbind', 'nvidia', None), ('write', 'module/nvidia/parameters/trust', 'tcb'), ('bind', 'nvidia', None)]
    assert r['devices'][0]['pending_rebind'] is False


def test_module_param_same_level_no_change(tree, tmp_path):
    module_host(tree)
    r = trust(tree, tmp_path, [{'bdf': '0000:44:00.0', 'level': 'normal'}])
    assert not r['changed'] and steps(r) == []


def test_no_trust_abi(guest, tmp_path):
    guest.device('0000:43:00.0')
    r = trust(guest, tmp_path, [{'bdf': '0000:43:00.0', 'level': 'adversary'}])
    assert r['failed'] and 'no trust ABI on this kernel' in r['msg']


def test_reset_detected(guest, tmp_path):
    led = Ledger(str(tmp_path / 'state'))
    led.update(RUN, trust_level='tcb', trust_abi='trust', generation=7)
    led.save()
    guest.put(guest.devdir(RUN) + '/trust', '0\n')  # the kernel reset it; accept still reads 1
    r = trust(guest, tmp_path, [{'bdf': RUN, 'level': 'tcb'}])
    dev = r['devices'][0]
    assert r['failed'] and dev['reset_detected'] is True and dev['actions'] == []
    assert 'trust was reset by the kernel (tcb -> blocked; set by coco.tdisp at generation 7)' in r['msg']
    assert 're-run lock -> verify -> accept' in r['msg']
    r = trust(guest, tmp_path, [{'bdf': RUN, 'level': 'blocked'}])
    assert not r.get('failed') and r['devices'][0]['reset_detected'] is True and not r['changed']


def test_bad_levels(guest, tmp_path):
    with pytest.raises(TdispError, match="0000:42:00.0 level: 'full' is not a trust level"):
        trust(guest, tmp_path, [{'bdf': LOCKED, 'level': 'full'}])


# -- check mode writes nothing, anywhere -------------------------------------------------------------

@pytest.fixture
def two_tsms(guest):
    guest.tsm('tsm2', 'devsec')
    return guest


def test_check_mode_writes_nothing(two_tsms, tmp_path, no_writes):
    guest = two_tsms
    ev = FakeEvidence({RUN: 3, LOCKED: 3})
    results = [
        state(guest, tmp_path, [{'bdf': GPU, 'state': 'run', 'unverified': True}, {'bdf': LOCKED, 'state': 'run', 'generation': 3},
                                {'bdf': RUN, 'state': 'locked'}], evidence=ev, tsm='tsm1', unbind_driver=True, allow_disruptive=True),
        state(guest, tmp_path, [{'bdf': RUN, 'state': 'unlocked'}], allow_disruptive=True, tsm='tsm2'),
        trust(guest, tmp_path, [{'bdf': LOCKED, 'level': 'adversary'}, {'bdf': RUN, 'level': 'blocked'}], allow_disruptive=True),
    ]
    assert all(r['changed'] for r in results)
    assert all(not r.get('failed') for r in results), [r.get('msg') for r in results]
    assert no_writes == []
    assert not (tmp_path / 'state').exists()


def test_check_mode_with_owed_driver_writes_nothing(guest, tmp_path):
    led = Ledger(str(tmp_path / 'state'))
    led.update(LOCKED, unbound_driver='nvidia')
    led.save()
    before = (tmp_path / 'state' / 'ledger.json').read_bytes()
    r = state(guest, tmp_path, [{'bdf': LOCKED, 'state': 'locked'}])
    assert r['changed']
    assert (tmp_path / 'state' / 'ledger.json').read_bytes() == before


def test_locked_to_run_pinned_with_driver_refused_in_one_line(tree, tmp_path):
    """The first write names the refusal (tsm/accept), not the generation check in front of it."""
    tree.tsm('tsm1', 'devsec')
    tree.device(LOCKED, driver='nvidia', lock='tsm1', accept='0', trust='0')
    r = state(tree, tmp_path, [{'bdf': LOCKED, 'state': 'run', 'generation': 7}], evidence=FakeEvidence({LOCKED: 7}))
    assert r['failed'] and r['msg'] == ('0000:42:00.0 tsm/accept: driver nvidia is bound (tsm/accept returns EBUSY while a driver is bound); '
                                        'set unbind_driver: true or unbind it first')
