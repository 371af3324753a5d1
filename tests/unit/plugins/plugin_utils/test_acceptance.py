# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The acceptance planner: policy + verified evidence + current state -> the next module calls."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.coco.tdisp.plugins.plugin_utils import _acceptance as acc
from ansible_collections.coco.tdisp.tests.unit.plugins.plugin_utils.tdisp_evidence_factory import (
    NOW, Block, default_blocks, digest_of, make_chain, make_evidence, manifest_for,
)

CHAIN = make_chain()
GOOD = make_evidence(CHAIN, generation=7)
MANIFESTS = {'eg100-96.00': manifest_for(GOOD, CHAIN)}
TAMPERED = make_evidence(CHAIN, [Block(2, 'mutable_firmware', digest_of('implant'))
                                 if b.index == 2 else b for b in default_blocks()], generation=7)

# The accept entry of the GPU at 0000:41:00.0 with GOOD evidence: generation and leaf identity pinned.
ACCEPT_41 = {'bdf': '0000:41:00.0', 'state': 'run', 'generation': 7, 'identity': GOOD['objects']['cert0']['digest']}

POLICY = {
    'version': '2026.11.1',
    'default': 'reject',
    'rules': [
        {'id': 'gpu-tcb', 'vendor': '0x10de', 'trust': 'tcb', 'require': {'manifest': 'eg100-96.00'}},
        {'id': 'virtio-shared', 'vendor': '0x1af4', 'trust': 'normal'},
    ],
}


def gpu(bdf='0000:41:00.0', state='unlocked', evidence=None, trust_level='adversary', trust_abi='trust', driver='nvidia'):
    dev = {
        'bdf': bdf, 'vendor': '0x10de', 'device': '0x2330', 'class': '0x030200', 'subsystem_vendor': '0x10de',
        'subsystem_device': '0x16c1', 'driver': driver, 'driver_override': None, 'tsm_side': 'guest',
        'lock_holder': None if state == 'unlocked' else 'tsm0', 'accepted': state == 'run', 'connected': None, 'bound': None,
        'tdisp_state': state, 'trust_abi': trust_abi, 'trust_level': trust_level, 'trust_raw': '1', 'unknown': {},
    }
    if evidence is not None:
        dev['evidence'] = copy.deepcopy(evidence)
    return dev


def virtio(bdf='0000:00:03.0', trust_level='adversary'):
    return {
        'bdf': bdf, 'vendor': '0x1af4', 'device': '0x1041', 'class': '0x020000', 'subsystem_vendor': '0x1af4',
        'subsystem_device': '0x1100', 'driver': 'virtio-pci', 'driver_override': None, 'tsm_side': 'none', 'lock_holder': None,
        'accepted': None, 'connected': None, 'bound': None, 'tdisp_state': 'unlocked', 'trust_abi': 'trust',
        'trust_level': trust_level, 'trust_raw': '1', 'unknown': {},
    }


def step(devices, **kw):
    kw.setdefault('now', NOW)
    kw.setdefault('nonce', (b'\x11' * 32).hex())
    return acc.step({'devices': devices}, POLICY, MANIFESTS, **kw)


def action(result, bdf):
    return next(d for d in result['decisions'] if d['bdf'] == bdf)


def test_an_unlocked_device_the_policy_wants_in_the_tcb_is_locked_first_and_nothing_else():
    r = step([gpu()])
    assert r['lock'] == [{'bdf': '0000:41:00.0', 'state': 'locked'}]
    assert r['accept'] == [] and r['trust'] == [] and r['trust_after_accept'] == []
    assert action(r, '0000:41:00.0')['action'] == 'lock_and_verify'
    assert r['summary']['pending'] == 1


def test_a_locked_device_with_verified_evidence_is_accepted_with_its_generation_pinned_then_trusted():
    r = step([gpu(state='locked', evidence=GOOD)])
    assert r['accept'] == [ACCEPT_41]
    assert r['trust_after_accept'] == [{'bdf': '0000:41:00.0', 'level': 'tcb'}]
    assert r['verdicts']['0000:41:00.0']['status'] == 'affirming'
    assert r['lock'] == [] and r['unlock'] == []


def test_a_nonce_that_does_not_match_the_evidence_denies_acceptance():
    r = step([gpu(state='locked', evidence=GOOD)], nonce=(b'\x99' * 32).hex(), locked_now=['0000:41:00.0'])
    assert r['accept'] == []
    assert r['verdicts']['0000:41:00.0']['status'] == 'contraindicated'
    assert [(u['bdf'], u['state']) for u in r['unlock']] == [('0000:41:00.0', 'unlocked')]
    assert 'stale or replayed evidence' in r['unlock'][0]['rejected']['reason']


def test_tampered_firmware_locked_by_this_run_is_unlocked_again_and_blocked():
    r = step([gpu(state='locked', evidence=TAMPERED)], locked_now=['0000:41:00.0'])
    d = action(r, '0000:41:00.0')
    assert d['action'] == 'unlock'
    assert d['outcome']['trust'] == 'blocked'
    assert [(u['bdf'], u['state'], u['rejected']['policy_version']) for u in r['unlock']] == [('0000:41:00.0', 'unlocked', '2026.11.1')]
    assert r['trust'] == [{'bdf': '0000:41:00.0', 'level': 'blocked'}]
    assert r['accept'] == []
    assert any('index 2' in reason for reason in d['evidence']['reasons'])
    assert r['summary']['contraindicated'] == 1


def test_tampered_firmware_locked_by_someone_else_is_not_unlocked_without_allow_disruptive():
    r = step([gpu(state='locked', evidence=TAMPERED)])
    assert r['unlock'] == [] and r['accept'] == []
    assert r['refused'][0]['bdf'] == '0000:41:00.0'
    assert 'allow_disruptive' in r['refused'][0]['reason']
    r = step([gpu(state='locked', evidence=TAMPERED)], allow_disruptive=True)
    assert r['unlock'] == [{'bdf': '0000:41:00.0', 'state': 'unlocked'}]


def test_an_accepted_device_whose_evidence_still_verifies_needs_nothing():
    ledger = {'0000:41:00.0': {'trust_level': 'tcb', 'generation': 7}}
    r = step([gpu(state='run', evidence=GOOD, trust_level='tcb')], ledger=ledger)
    assert action(r, '0000:41:00.0')['action'] == 'none'
    assert r['summary']['changes'] == 0
    assert all(not r[k] for k in ('lock', 'relock', 'accept', 'unlock', 'trust', 'trust_after_accept', 'refused'))


def test_an_accepted_device_whose_generation_moved_since_acceptance_is_not_trusted():
    ledger = {'devices': {'0000:41:00.0': {'trust_level': 'tcb', 'generation': 5}}}
    r = step([gpu(state='run', evidence=GOOD, trust_level='tcb')], ledger=ledger)
    d = action(r, '0000:41:00.0')
    assert d['action'] == 'refused'
    assert 'generation 5 -> 7' in d['action_reason']
    r = step([gpu(state='run', evidence=GOOD, trust_level='tcb')], ledger=ledger, allow_disruptive=True)
    assert r['relock'] == [{'bdf': '0000:41:00.0', 'state': 'locked'}]
    assert r['accept'] == []


def test_a_trust_level_reset_by_the_kernel_means_the_device_left_run():
    ledger = {'0000:41:00.0': {'trust_level': 'tcb', 'generation': 7}}
    r = step([gpu(state='run', evidence=GOOD, trust_level='blocked')], ledger=ledger)
    assert action(r, '0000:41:00.0')['action'] == 'refused'
    assert 'reset its trust level' in action(r, '0000:41:00.0')['action_reason']
    assert r['trust'] == []


def test_the_ledger_can_come_with_the_info_result():
    info = {'devices': [gpu(state='run', evidence=GOOD, trust_level='tcb')],
            'ledger': {'format': 1, 'devices': {'0000:41:00.0': {'generation': 6}}}}
    r = acc.step(info, POLICY, MANIFESTS, now=NOW)
    assert action(r, '0000:41:00.0')['action'] == 'refused'


COMMITTED = {'0000:41:00.0': {'generation': 7, 'trust_level': 'blocked',
                              'acceptance': {'state': 'committed', 'generation': 7, 'identity': None}}}


def test_an_accepted_device_with_a_committed_record_but_trust_below_tcb_gets_tcb():
    r = step([gpu(state='run', evidence=GOOD, trust_level='blocked')], ledger=COMMITTED)
    assert action(r, '0000:41:00.0')['action'] == 'none'
    assert r['trust'] == [{'bdf': '0000:41:00.0', 'level': 'tcb'}]


@pytest.mark.parametrize('state, level', [('run', 'blocked'), ('run', 'tcb'), ('unlocked', 'tcb'), ('locked', 'tcb')])
@pytest.mark.parametrize('where', ['no record', 'pending record', 'info says not committed'])
def test_run_or_tcb_without_a_committed_record_is_unexplained_and_never_confirmed(state, level, where):
    """Finding 2: a tcb (or RUN) the collection never set is drift, at every trust ABI, and nothing is written."""
    dev = gpu(state=state, evidence=GOOD, trust_level=level)
    ledger = {}
    if where == 'pending record':
        ledger = {'0000:41:00.0': {'generation': 7, 'acceptance': {'state': 'pending', 'generation': 7}}}
    elif where == 'info says not committed':
        dev['acceptance'] = {'committed': False, 'matches': None, 'generation': None, 'pending_step': None}
    r = step([dev], ledger=ledger)
    d = action(r, '0000:41:00.0')
    assert d['action'] == 'unexplained_state', d
    assert 'no committed acceptance record' in d['action_reason']
    assert not any(r[k] for k in ('lock', 'relock', 'accept', 'unlock', 'trust', 'trust_after_accept'))
    assert [x['kind'] for x in r['refused']] == ['unexplained_state'] and r['summary']['refused'] == 1


def test_an_unexplained_run_device_goes_through_relock_when_disruption_is_allowed():
    r = step([gpu(state='run', evidence=GOOD, trust_level='tcb')], ledger={}, allow_disruptive=True)
    assert action(r, '0000:41:00.0')['action'] == 'relock_and_verify'
    assert r['relock'] == [{'bdf': '0000:41:00.0', 'state': 'locked'}]


def test_an_unfinished_accept_whose_evidence_still_verifies_is_finished_at_the_verified_generation():
    dev = gpu(state='run', evidence=GOOD, trust_level='adversary')
    dev['acceptance'] = {'committed': False, 'matches': None, 'generation': 7, 'pending_step': 'accept'}
    r = step([dev])
    assert action(r, '0000:41:00.0')['action'] == 'recover'
    assert r['accept'] == [ACCEPT_41]
    assert r['trust_after_accept'] == [{'bdf': '0000:41:00.0', 'level': 'tcb'}]
    # ... but not when the evidence no longer verifies: drift, nothing written
    bad = dict(gpu(state='run', evidence=TAMPERED), acceptance=dev['acceptance'])
    r = step([bad])
    assert action(r, '0000:41:00.0')['action'] == 'unexplained_state' and not r['accept']


def test_the_accept_pins_the_leaf_identity_that_was_verified():
    identity = GOOD['objects']['cert0']['digest']
    assert identity.startswith('sha384:')
    assert step([gpu(state='locked', evidence=GOOD)])['accept'] == [
        {'bdf': '0000:41:00.0', 'state': 'run', 'generation': 7, 'identity': identity}]


@pytest.mark.parametrize('field, unknown, value', [
    ('vendor', "unexpected value '\\xde\\xad'", None), ('vendor', None, '0xzz'), ('class', 'EIO', None), ('device', None, None)])
def test_a_device_whose_identity_cannot_be_read_never_falls_to_a_rule(field, unknown, value):
    """Finding 9: a garbled vendor does not move a GPU to the default rule silently."""
    dev = gpu(state='unlocked')
    dev[field] = value
    if unknown:
        dev['unknown'] = {field: unknown}
    r = step([dev])
    d = action(r, '0000:41:00.0')
    assert d['action'] == 'unknown_identity' and field in d['action_reason'], d
    assert [x['kind'] for x in r['refused']] == ['unknown_identity']
    assert not any(r[k] for k in ('lock', 'relock', 'accept', 'unlock', 'trust', 'trust_after_accept'))


def test_an_absent_subsystem_id_is_no_identity_problem():
    dev = virtio()
    dev.update(subsystem_vendor=None, subsystem_device=None, unknown={'subsystem_vendor': 'missing', 'subsystem_device': 'missing'})
    assert action(step([dev]), '0000:00:03.0')['action'] == 'set_trust'


def test_devices_outside_tdisp_only_get_their_trust_level():
    r = step([virtio()])
    assert action(r, '0000:00:03.0')['action'] == 'set_trust'
    assert r['trust'] == [{'bdf': '0000:00:03.0', 'level': 'normal'}]
    r = step([virtio(trust_level='normal')])
    assert action(r, '0000:00:03.0')['action'] == 'none' and r['trust'] == []


def test_the_implicit_default_rejects_unknown_devices_and_says_so():
    other = dict(virtio(), vendor='0x8086', bdf='0000:00:05.0', **{'class': '0x030000'})
    r = step([other])
    d = action(r, '0000:00:05.0')
    assert d['rule'] == 'implicit-default'
    assert r['trust'] == [{'bdf': '0000:00:05.0', 'level': 'blocked'}]


def test_lowering_trust_from_tcb_needs_allow_disruptive():
    dev = dict(virtio(), trust_level='tcb')
    r = step([dev])
    assert action(r, '0000:00:03.0')['action'] == 'refused'
    r = step([dev], allow_disruptive=True)
    assert r['trust'] == [{'bdf': '0000:00:03.0', 'level': 'normal'}]


def test_a_device_whose_state_cannot_be_read_is_never_acted_on():
    dev = gpu(state='locked', evidence=GOOD)
    dev['tdisp_state'] = 'unknown'
    dev['unknown'] = {'accepted': "tsm/accept holds 'x'"}
    r = step([dev])
    assert action(r, '0000:41:00.0')['action'] == 'refused'
    assert 'tsm/accept' in action(r, '0000:41:00.0')['action_reason']
    assert not r['accept'] and not r['lock']


def test_without_a_trust_abi_acceptance_still_happens_but_no_level_is_written():
    r = step([gpu(state='locked', evidence=GOOD, trust_abi='none', trust_level=None)])
    assert r['accept'] == [ACCEPT_41]
    assert r['trust_after_accept'] == [] and r['trust'] == []


def test_the_lockout_preflight_is_reported():
    nvme = dict(gpu(bdf='0000:5e:00.0'), vendor='0x144d', **{'class': '0x010802'})
    r = step([nvme])
    assert [p['bdf'] for p in r['preflight']] == ['0000:5e:00.0']


@pytest.mark.parametrize('bad, text', [
    ({'devices': 'x'}, 'info: expected'),
    ({'devices': [gpu()], 'ledger': ['x']}, 'ledger: expected'),
])
def test_bad_input_is_refused_with_one_line(bad, text):
    with pytest.raises(acc.AcceptanceError) as exc:
        acc.step(bad, POLICY, MANIFESTS, now=NOW)
    assert text in str(exc.value)


def test_an_invalid_policy_is_refused_before_anything_is_planned():
    with pytest.raises(acc.AcceptanceError) as exc:
        acc.step({'devices': [gpu()]}, dict(POLICY, rules=[{'id': 'x', 'trust': 'tcb', 'vendor': '0x10de'}]), MANIFESTS, now=NOW)
    assert 'require' in str(exc.value)


def test_the_preflight_judges_a_device_being_locked_by_what_the_run_intends():
    """An NVMe drive about to be locked is not 'blocked' (no verdict yet): the lock itself interrupts it."""
    nvme = dict(gpu(bdf='0000:5e:00.0'), vendor='0x144d', device='0xa80a', **{'class': '0x010802'})
    nvme_rule = {'id': 'nvme-tcb', 'vendor': '0x144d', 'trust': 'tcb', 'require': {'manifest': 'eg100-96.00'}}
    policy = dict(POLICY, rules=POLICY['rules'] + [nvme_rule])
    r = acc.step({'devices': [nvme]}, policy, MANIFESTS, now=NOW)
    (problem,) = r['preflight']
    assert problem['kind'] == 'driver_unbind' and 'locked and accepted' in problem['reason']
    boot_disk = dict(virtio(bdf='0000:00:04.0'), device='0x1042', **{'class': '0x010000'})
    r = acc.step({'devices': [nvme, boot_disk]}, policy, MANIFESTS, now=NOW)
    assert r['preflight'] == []


@pytest.mark.parametrize('critical', [5, '0000:18:00.0', {'bdf': '0000:18:00.0'}])
def test_critical_devices_must_be_a_list_of_names(critical):
    with pytest.raises(acc.AcceptanceError) as exc:
        step([gpu()], critical=critical)
    assert 'critical: must be a list' in str(exc.value)


def test_evidence_that_cannot_be_read_is_no_reason_to_unlock_an_accepted_device():
    """A wrong endpoint or a missing CAP_NET_ADMIN is a host problem, not a verdict: refuse, change nothing."""
    unreadable = {'errors': [{'object': '*', 'msg': '0000:41:00.0: evidence read: needs CAP_NET_ADMIN (EPERM)'}]}
    r = step([gpu(state='run', evidence=unreadable, trust_level='tcb')], allow_disruptive=True)
    d = action(r, '0000:41:00.0')
    assert d['action'] == 'refused' and 'CAP_NET_ADMIN' in d['action_reason']
    assert not r['unlock'] and not r['trust'] and not r['relock']
    # ... but a device this run locked itself is returned to unlocked
    r = step([gpu(state='locked', evidence=unreadable)], locked_now=['0000:41:00.0'])
    # unlocked again at its level, no rejection recorded (a read failure is not a verdict), and the
    # host is not converged: the failure is listed as refused, so the wave gate stops
    assert r['unlock'] == [{'bdf': '0000:41:00.0', 'state': 'unlocked'}] and r['accept'] == [] and r['trust'] == []
    assert action(r, '0000:41:00.0')['action'] == 'abandon'
    assert [x['bdf'] for x in r['refused']] == ['0000:41:00.0'] and 'CAP_NET_ADMIN' in r['refused'][0]['reason']


def test_a_device_rejected_by_this_run_is_recorded_and_not_locked_again_under_the_same_policy():
    r = step([gpu(state='locked', evidence=TAMPERED)], locked_now=['0000:41:00.0'])
    (entry,) = r['unlock']
    assert entry['rejected']['policy_version'] == '2026.11.1'
    assert entry['rejected']['reason'].startswith('rule gpu-tcb: evidence contraindicated against eg100-96.00: ')
    ledger = {'0000:41:00.0': {'trust_level': 'blocked', 'rejected': dict(entry['rejected'], at='2026-11-27T12:00:00Z')}}
    again = step([gpu(trust_level='blocked')], ledger=ledger)
    d = action(again, '0000:41:00.0')
    assert d['action'] == 'rejected' and again['lock'] == [] and again['trust'] == []
    assert again['rejected'][0]['bdf'] == '0000:41:00.0' and again['summary']['rejected'] == 1 and again['summary']['changes'] == 0
    # a newer policy version, or retry_rejected, verifies it again
    newer = acc.step({'devices': [gpu(trust_level='blocked')]}, dict(POLICY, version='2026.12.1'), MANIFESTS, now=NOW, ledger=ledger)
    assert action(newer, '0000:41:00.0')['action'] == 'lock_and_verify'
    retry = step([gpu(trust_level='blocked')], ledger=ledger, retry_rejected=True)
    assert action(retry, '0000:41:00.0')['action'] == 'lock_and_verify'


@pytest.mark.parametrize('older, newer', [('2026.9.1', '2026.11.1'), ('2026.11.1-rc1', '2026.11.1'), ('2026.11.1', '2026.11.1.1'),
                                          ('9.0', '10.0')])
def test_policy_versions_are_ordered_numerically(older, newer):
    assert acc.version_key(older) < acc.version_key(newer)


def test_the_summary_names_every_device_its_rule_action_and_verdict_and_says_whether_the_host_converged():
    facts = {'devices': [gpu(state='locked', evidence=GOOD), virtio()]}
    plan = acc.step(facts, POLICY, MANIFESTS, now=NOW, nonce=(b'\x11' * 32).hex())
    found = {'0000:41:00.0': {'tdisp_state': 'unlocked', 'trust_level': 'adversary'}}
    s = acc.summarize('cvm-1', POLICY, facts, plan, found, check_mode=False, failure=None, changed=True,
                      calls=['tdisp_device_info', 'tdisp_device'])
    by = {d['bdf']: d for d in s['devices']}
    assert by['0000:41:00.0']['action'] == 'accept' and by['0000:41:00.0']['rule'] == 'gpu-tcb'
    assert by['0000:41:00.0']['before'] == {'tdisp_state': 'unlocked', 'trust_level': 'adversary'}
    assert by['0000:41:00.0']['verdict']['status'] == 'affirming'
    assert by['0000:00:03.0']['action'] == 'set_trust' and by['0000:00:03.0']['trust'] == 'normal'
    assert s['converged'] and not s['failed'] and s['contraindicated'] == 0 and s['module_calls'] == ['tdisp_device_info', 'tdisp_device']
    # check mode: a plan with changes is not converged; a failure is never converged
    assert not acc.summarize('cvm-1', POLICY, facts, plan, found, check_mode=True, failure=None, changed=True)['converged']
    failed = acc.summarize('cvm-1', POLICY, facts, {}, {}, check_mode=False, failure='cvm-1: Read: EPERM', changed=False)
    assert failed['failed'] and not failed['converged'] and failed['failure'] == 'cvm-1: Read: EPERM' and failed['devices'] == []


def test_the_summary_gate_notes_name_contraindicated_kept_out_and_missing_devices():
    facts = {'devices': [gpu(state='locked', evidence=TAMPERED)]}
    plan = acc.step(facts, dict(POLICY, expected=[{'id': 'gpus', 'vendor': '0x10de', 'count': 2}]), MANIFESTS, now=NOW,
                    locked_now=['0000:41:00.0'])
    s = acc.summarize('cvm-1', dict(POLICY, expected=[{'id': 'gpus', 'vendor': '0x10de', 'count': 2}]), facts, plan, {},
                      check_mode=False, failure=None, changed=True)
    assert s['contraindicated'] == 1
    assert any('contraindicated evidence against eg100-96.00 (rule gpu-tcb)' in n for n in s['gate_notes'])
    assert any('expected[0] (id gpus)' in n for n in s['gate_notes'])


def test_a_committed_record_whose_evidence_moved_is_a_lost_run_not_a_confirmation():
    dev = dict(gpu(state='run', evidence=dict(GOOD, generation=8), trust_level='tcb'),
               acceptance={'committed': True, 'matches': False, 'generation': 7, 'pending_step': None})
    d = action(step([dev]), '0000:41:00.0')
    assert d['action'] == 'refused' and 'generation 7 -> 8' in d['action_reason']
    assert action(step([dev], allow_disruptive=True), '0000:41:00.0')['action'] == 'relock_and_verify'
