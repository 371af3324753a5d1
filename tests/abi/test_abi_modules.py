"""The three modules in-process (AnsibleModule with module args): argument validation fails before
anything is touched; against the kernel model (``Sysfs`` swapped for the simulator's), check mode,
diff and failures come out as Ansible results, never as a traceback."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.coco.tdisp.plugins.modules import device_trust, tdisp_device, tdisp_device_info
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.module import HostRun

from abi_sim import SimEvidence

CVM, GPU, NIC = 'cvm-1', '0000:18:00.0', '0000:0c:00.0'


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
def on_sim(sim, monkeypatch, state_root):
    """Point the modules' Sysfs at the kernel model of single-cvm's cvm-1 (any sysfs_root)."""
    s = sim('single-cvm')
    monkeypatch.setattr(HostRun, 'sysfs', lambda self, _s=s: _s.sysfs(CVM))
    monkeypatch.setattr(device_trust, 'client_factory', lambda endpoint, _s=s: lambda: SimEvidence(_s.host(CVM)))
    s.args = {'sysfs_root': '/sim', 'state_dir': s.state_dir(CVM)}
    return s


@pytest.mark.parametrize('module, args, text', [
    (tdisp_device, {}, 'missing required arguments: devices'),
    (tdisp_device, {'devices': [{'bdf': GPU}]}, 'missing required arguments: state'),
    (tdisp_device, {'devices': [{'bdf': GPU, 'state': 'accepted'}]}, 'value of state must be one of'),
    (tdisp_device, {'devices': [{'bdf': GPU, 'state': 'run', 'generation': 'seven'}]}, 'generation'),
    (tdisp_device, {'devices': [{'bdf': GPU, 'state': 'run', 'unverified': True}], 'bogus': 1}, 'Unsupported parameters'),
    (tdisp_device, {'devices': [{'bdf': '../../etc', 'state': 'run', 'unverified': True}]}, "'../../etc' is not a PCI device name"),
    (tdisp_device, {'devices': [{'bdf': GPU, 'state': 'run', 'unverified': True}], 'tsm': 'tsm1;rm'}, 'is not a TSM name'),
    (tdisp_device, {'devices': [{'bdf': GPU, 'state': 'run', 'unverified': True}], 'evidence_endpoint': 'tcp:1.2.3.4'}, 'neither netlink nor unix'),
    (tdisp_device, {'devices': [{'bdf': GPU, 'state': 'run', 'unverified': True}], 'state_dir': 'rel'}, 'state_dir'),
    (device_trust, {'devices': [{'bdf': GPU, 'level': 'full'}]}, "'full' is not a trust level"),
    (device_trust, {'devices': [{'bdf': GPU, 'level': 7}]}, 'is not a trust level'),
    (device_trust, {'devices': [{'bdf': GPU}]}, 'missing required arguments: level'),
    (device_trust, {'devices': [{'bdf': GPU, 'level': 1, 'driver': '../x'}]}, 'not a valid driver name'),
    (tdisp_device_info, {'bdfs': ['0000:18:00']}, 'not a PCI device name'),
    (tdisp_device_info, {'vendor': 'nvidia'}, 'not a hexadecimal PCI id'),
    (tdisp_device_info, {'evidence_types': ['cert9']}, 'value of evidence_types must be one or more of'),
    (tdisp_device_info, {'include_evidence': True, 'nonce': 'xyz'}, 'nonce is not an even-length hexadecimal string'),
    (tdisp_device_info, {'tsm': 'TSM1'}, 'is not a TSM name'),
])
def test_argument_errors(capsys, on_sim, module, args, text):
    mark = on_sim.seq()
    if module is not tdisp_device_info:
        args = dict(args, state_dir=args.get('state_dir', on_sim.args['state_dir']))
    out = call(capsys, module, args)
    assert out['failed'] is True and text in out['msg'], out['msg']
    assert '\n' not in out['msg'] and 'Traceback' not in out['msg']
    assert on_sim.fleet.events_since(mark) == []


def test_info_module(capsys, on_sim):
    out = call(capsys, tdisp_device_info, {'sysfs_root': '/sim'})
    assert out['changed'] is False and [d['bdf'] for d in out['devices']] == [NIC, GPU]
    assert out['tsms'] == [{'name': 'tsm0', 'mode': 'devsec', 'unknown': {}}]


def test_state_module_check_diff_apply_rerun(capsys, on_sim):
    args = dict(on_sim.args, devices=[{'bdf': GPU, 'state': 'run', 'unverified': True}], unbind_driver=True)
    mark = on_sim.seq()
    out = call(capsys, tdisp_device, args, check=True, diff=True)
    assert out['changed'] is True and on_sim.fleet.events_since(mark) == []
    assert out['diff']['before']['devices'][0]['tdisp_state'] == 'unlocked'
    assert out['diff']['after']['devices'][0]['tdisp_state'] == 'run'
    assert out['diff']['after']['devices'][0] == out['devices'][0]['after']
    out = call(capsys, tdisp_device, args, diff=True)
    assert out['changed'] is True and 'failed' not in out
    assert [a['done'] for a in out['devices'][0]['actions']] == [True] * 4
    mark = on_sim.seq()
    out = call(capsys, tdisp_device, args)
    assert out['changed'] is False and on_sim.writes(CVM, mark) == []
    assert 'diff' not in out


def test_state_module_failure_is_one_line(capsys, on_sim):
    out = call(capsys, tdisp_device, dict(on_sim.args, devices=[{'bdf': GPU, 'state': 'locked'}]))
    assert out['failed'] is True and out['changed'] is False
    assert out['msg'] == ('0000:18:00.0 tsm/lock: driver nvidia is bound (tsm/lock returns EBUSY while a driver is bound); '
                          'set unbind_driver: true or unbind it first')
    assert out['devices'][0]['failed'] is True


def test_trust_module_warnings_and_result(capsys, on_sim):
    call(capsys, tdisp_device, dict(on_sim.args, devices=[{'bdf': GPU, 'state': 'run', 'unverified': True}], unbind_driver=True))
    out = call(capsys, device_trust, dict(on_sim.args, devices=[{'bdf': GPU, 'level': 'tcb'}]), diff=True)
    assert out['changed'] is True and out['devices'][0]['reset_detected'] is False
    assert out['diff']['after']['devices'][0]['trust_level'] == 'tcb'
    out = call(capsys, device_trust, dict(on_sim.args, devices=[{'bdf': GPU, 'level': '3'}]))
    assert out['changed'] is False


def test_real_sysfs_root_checked(capsys, tmp_path):
    for root, text in (('relative/sys', 'not an absolute path'), (str(tmp_path / 'nope'), 'cannot be read')):
        out = call(capsys, tdisp_device, {'devices': [{'bdf': GPU, 'state': 'run', 'unverified': True}], 'sysfs_root': root, 'state_dir': str(tmp_path)})
        assert out['failed'] and text in out['msg']
        out = call(capsys, tdisp_device_info, {'sysfs_root': root})
        assert out['failed'] and text in out['msg']
