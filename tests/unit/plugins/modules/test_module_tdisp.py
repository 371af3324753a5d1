# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The three modules through AnsibleModule against plain trees: results, diffs, argument errors,
and check mode proven to write, open for writing and create nothing (os and builtins wrapped)."""

from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.coco.tdisp.plugins.modules import device_trust, tdisp_device, tdisp_device_info

GPU, LOCKED, RUN = '0000:41:00.0', '0000:42:00.0', '10000:01:00.0'


def call(capsys, module, args, check=False, diff=False):
    args = dict(args)
    if check:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def base(guest, tmp_path):
    return {'sysfs_root': guest.root, 'state_dir': str(tmp_path / 'state'), 'rehearsal': True}  # a plain tree: a declared rehearsal


def test_info(capsys, guest):
    out = call(capsys, tdisp_device_info, {'sysfs_root': guest.root, 'rehearsal': True})
    assert out['changed'] is False
    assert [(d['bdf'], d['tdisp_state']) for d in out['devices']] == [(GPU, 'unlocked'), (LOCKED, 'locked'), (RUN, 'run')]
    assert out['tsms'][1] == {'name': 'tsm1', 'mode': 'devsec', 'unknown': {}}
    assert out['missing'] == [] and out['ignored'] == []


def test_state_check_mode_and_diff(capsys, guest, base):
    out = call(capsys, tdisp_device, dict(base, devices=[{'bdf': GPU, 'state': 'run', 'unverified': True}, {'bdf': RUN, 'state': 'run', 'unverified': True}],
                                          unbind_driver=True), check=True, diff=True)
    assert out['changed'] is True
    assert [d['changed'] for d in out['devices']] == [True, False]
    assert out['diff']['before']['devices'][0]['tdisp_state'] == 'unlocked'
    assert out['diff']['after']['devices'][0]['tdisp_state'] == 'run'
    assert out['diff']['after']['devices'][1] == out['diff']['before']['devices'][1]


def test_trust_check_mode(capsys, guest, base):
    out = call(capsys, device_trust, dict(base, devices=[{'bdf': LOCKED, 'level': 1}, {'bdf': RUN, 'level': 'tcb'}]), check=True)
    assert out['changed'] is True
    assert out['devices'][0]['actions'] == [{'action': 'write', 'attribute': 'trust', 'value': '1', 'done': False}]
    assert out['devices'][1]['changed'] is False


def test_refusal(capsys, guest, base):
    out = call(capsys, tdisp_device, dict(base, devices=[{'bdf': RUN, 'state': 'unlocked'}]))
    assert out['failed'] is True and 'is disruptive' in out['msg'] and out['changed'] is False
    out = call(capsys, device_trust, dict(base, devices=[{'bdf': LOCKED, 'level': 'tcb'}]))
    assert out['failed'] is True and 'tcb needs TDISP RUN' in out['msg']


def _states(capsys, guest, base):
    info = call(capsys, tdisp_device_info, {'sysfs_root': guest.root, 'rehearsal': True, 'all_devices': True, 'state_dir': base['state_dir']})
    return {d['bdf']: (d['tdisp_state'], d['trust_level']) for d in info['devices']}, info


def test_state_then_trust_in_one_call(capsys, guest, base):
    args = dict(base, devices=[{'bdf': LOCKED, 'state': 'run', 'unverified': True}],
                trust={'devices': [{'bdf': LOCKED, 'level': 'tcb'}], 'policy_version': '2026.11.1'})
    out = call(capsys, tdisp_device, args, diff=True)
    assert out['changed'] is True and not out.get('failed'), out.get('msg')
    assert [(a['attribute'], a['done']) for a in out['devices'][0]['actions']] == [('tsm/accept', True)]
    # the trust part ran after the accept: tcb needs RUN, which the device reached in this same call
    assert out['trust']['devices'][0]['actions'] == [{'action': 'write', 'attribute': 'trust', 'value': '3', 'done': True}]
    assert out['trust']['policy_recorded'] is True
    assert [d['after']['devices'][0]['tdisp_state'] for d in out['diff']] == ['run', 'run']
    assert out['diff'][1]['before']['devices'][0]['trust_level'] == 'blocked'
    assert out['diff'][1]['after']['devices'][0]['trust_level'] == 'tcb'
    assert _states(capsys, guest, base)[0][LOCKED] == ('run', 'tcb')
    again = call(capsys, tdisp_device, args)
    assert again['changed'] is False and again['trust']['changed'] is False and again['trust']['policy_recorded'] is False


def test_tcb_without_a_committed_record_is_not_confirmed(capsys, guest, base):
    """Issue 10 finding 2: a device found in RUN at tcb that the collection never accepted is not reported ok."""
    out = call(capsys, device_trust, dict(base, devices=[{'bdf': RUN, 'level': 'tcb'}]))
    dev = out['devices'][0]
    assert out['failed'] is True and 'no committed acceptance record' in out['msg'] and 'unexplained state' in out['msg']
    assert dev['converged'] is False and dev['changed'] is False
    info = call(capsys, tdisp_device_info, {'sysfs_root': guest.root, 'rehearsal': True, 'bdfs': [RUN], 'state_dir': base['state_dir']})
    assert info['devices'][0]['acceptance']['committed'] is False and info['devices'][0]['acceptance']['matches'] is False
    # declared explicitly, the operator's own acceptance is taken (and reported as unverified)
    out = call(capsys, device_trust, dict(base, devices=[{'bdf': RUN, 'level': 'tcb'}], unverified=True))
    assert not out.get('failed') and out['unverified'] is True and out['devices'][0]['converged'] is True


def test_trust_input_is_checked_before_any_write(capsys, guest, base):
    out = call(capsys, tdisp_device, dict(base, devices=[{'bdf': LOCKED, 'state': 'run', 'unverified': True}],
                                          trust={'devices': [{'bdf': LOCKED, 'level': 'trusted'}]}))
    assert out['failed'] is True and 'is not a trust level' in out['msg']
    out = call(capsys, tdisp_device, dict(base, devices=[{'bdf': LOCKED, 'state': 'run', 'unverified': True}],
                                          trust={'devices': [], 'policy_version': 'two\nlines'}))
    assert out['failed'] is True and 'is not a policy version' in out['msg']
    assert _states(capsys, guest, base)[0][LOCKED] == ('locked', 'blocked')


def test_trust_is_skipped_when_a_state_change_fails(capsys, guest, base):
    # nvidia is bound and unbind_driver is false: the lock is refused, so no trust level may be set
    out = call(capsys, tdisp_device, dict(base, devices=[{'bdf': GPU, 'state': 'locked'}],
                                          trust={'devices': [{'bdf': LOCKED, 'level': 'normal'}]}))
    assert out['failed'] is True and 'driver nvidia is bound' in out['msg']
    assert out['trust']['changed'] is False and 'state change failed' in out['trust']['skipped']
    assert _states(capsys, guest, base)[0][LOCKED] == ('locked', 'blocked')


def test_facts_after_the_writes(capsys, guest, base):
    out = call(capsys, tdisp_device, dict(base, devices=[{'bdf': LOCKED, 'state': 'run', 'unverified': True}], facts=True))
    assert out['changed'] is True
    states, info = _states(capsys, guest, base)
    assert out['facts']['devices'] == info['devices'] and out['facts']['tsms'] == info['tsms']
    assert out['facts']['ledger'] == info['ledger']
    assert states[LOCKED] == ('run', 'blocked')
    failed = call(capsys, tdisp_device, dict(base, devices=[{'bdf': GPU, 'state': 'locked'}], facts=True))
    assert failed['failed'] is True and 'facts' not in failed
    out = call(capsys, tdisp_device, dict(base, devices=[], include_evidence=True))
    assert out['failed'] is True and 'set facts: true' in out['msg']


@pytest.mark.parametrize('module, args, text', [
    (tdisp_device, {'devices': [{'bdf': GPU, 'state': 'on'}]}, 'value of state must be one of'),
    (tdisp_device, {'devices': [{'bdf': 'GPU', 'state': 'run', 'unverified': True}]}, 'not a PCI device name'),
    (tdisp_device, {'devices': [{'bdf': GPU, 'state': 'locked', 'generation': 4}]}, 'applies to state run only'),
    (device_trust, {'devices': [{'bdf': GPU, 'level': 'trusted'}]}, 'is not a trust level'),
    (tdisp_device_info, {'max_object_size': 'big'}, 'max_object_size'),
])
def test_argument_errors(capsys, base, module, args, text):
    if module is not tdisp_device_info:
        args = dict(base, **args)
    out = call(capsys, module, args)
    assert out['failed'] is True and text in out['msg']


def test_check_mode_touches_nothing(capsys, guest, base, tmp_path, no_writes):
    listing = sorted(os.walk(guest.root))
    contents = {}
    for d, _dirs, files in os.walk(guest.root):
        for f in files:
            path = os.path.join(d, f)
            if not os.path.islink(path):
                with open(path, 'rb') as fh:
                    contents[path] = fh.read()
    del no_writes[:]
    outs = [
        call(capsys, tdisp_device, dict(base, devices=[{'bdf': GPU, 'state': 'run', 'unverified': True}, {'bdf': RUN, 'state': 'locked'}],
                                        unbind_driver=True, allow_disruptive=True), check=True, diff=True),
        call(capsys, device_trust, dict(base, devices=[{'bdf': LOCKED, 'level': 'adversary'}, {'bdf': RUN, 'level': 'blocked'}],
                                        allow_disruptive=True, unbind_driver=True), check=True, diff=True),
        call(capsys, tdisp_device_info, {'sysfs_root': guest.root, 'rehearsal': True}, check=True),
        call(capsys, tdisp_device, dict(base, devices=[{'bdf': LOCKED, 'state': 'run', 'unverified': True}], facts=True,
                                        trust={'devices': [{'bdf': RUN, 'level': 'normal'}], 'allow_disruptive': True,
                                               'policy_version': '2026.11.1'}), check=True, diff=True),
    ]
    assert [o.get('failed', False) for o in outs] == [False, False, False, False], [o.get('msg') for o in outs]
    assert outs[0]['changed'] and outs[1]['changed'] and outs[3]['changed']
    assert outs[3]['trust']['policy_recorded'] is True and outs[3]['trust']['devices'][0]['changed'] is True
    assert outs[3]['facts']['devices'][1]['tdisp_state'] == 'locked'  # check mode: the state as it is
    assert no_writes == []
    assert not os.path.exists(base['state_dir'])
    assert sorted(os.walk(guest.root)) == listing
    for path, content in contents.items():
        with open(path, 'rb') as fh:
            assert fh.read() == content
