# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Audit classification: one test per drift kind, exemptions, attribution, summary."""

from __future__ import annotations

import hashlib
import typing as t

import pytest

from ansible_collections.coco.tdisp.plugins.plugin_utils._policy import PolicyError, audit

NOW = '2026-11-30'
AA, BB, CC = ('aa' * 48), ('bb' * 48), ('cc' * 48)
SVN_RAW = '0300000000000000'
MANIFESTS = {'h100-96.00': {
    'trust_anchors': ['ab' * 32],
    'leaf_subject': '.*',
    'measurements': [
        {'index': 1, 'digests': ['sha384:' + AA], 'valid_until': '2026-06-30', 'description': 'fw 95'},
        {'index': 2, 'digests': ['sha384:' + BB, 'sha384:' + CC], 'valid_until': '2027-06-30'},
        {'index': 2, 'digests': ['sha384:' + CC], 'valid_until': '2026-01-31'},
        {'index': 3, 'digests': ['sha256:' + hashlib.sha256(bytes.fromhex(SVN_RAW)).hexdigest()], 'valid_until': '2026-03-31'},
    ],
}}
POLICY = {
    'version': '2026.11.1',
    'rules': [
        {'id': 'h100-tcb', 'vendor': '0x10de', 'device': '0x2330', 'require': {'manifest': 'h100-96.00'}, 'trust': 'tcb'},
        {'id': 'virtio-shared', 'vendor': '0x1af4', 'trust': 'normal'},
    ],
    'expected': [{'id': 'gpus', 'vendor': '0x10de', 'device': '0x2330', 'count': 1}, {'id': 'boot', 'bdfs': ['0000:01:00.0']}],
}


def blocks(*pairs: tuple[int, str], raw: bool = False) -> list[dict[str, t.Any]]:
    return [{'index': index, 'spec': 'dmtf', 'raw': raw, 'value': value} for index, value in pairs]


def h100(state: str = 'run', level: str = 'tcb', generation: int = 7, measured: t.Optional[list[dict[str, t.Any]]] = None) -> dict[str, t.Any]:
    return {'bdf': '0000:41:00.0', 'vendor': '0x10de', 'device': '0x2330', 'class': '0x030200', 'driver': 'nvidia', 'tsm_side': 'guest',
            'lock_holder': 'tsm1' if state != 'unlocked' else None, 'accepted': state == 'run', 'tdisp_state': state,
            'trust_abi': 'trust', 'trust_level': level,
            'evidence': {'generation': generation, 'measurements': {'blocks': measured if measured is not None else blocks((2, BB))}}}


def virtio(level: str = 'normal', state: str = 'unlocked') -> dict[str, t.Any]:
    return {'bdf': '0000:01:00.0', 'vendor': '0x1af4', 'device': '0x1042', 'class': '0x010000', 'driver': 'virtio-pci',
            'tsm_side': 'guest', 'tdisp_state': state, 'trust_abi': 'trust', 'trust_level': level}


def verdicts(status: str = 'affirming', generation: int = 7) -> dict[str, t.Any]:
    return {'0000:41:00.0': {'h100-96.00': {'status': status, 'manifest': 'h100-96.00', 'generation': generation, 'checks': [],
                                            'reasons': [] if status == 'affirming' else ['measurements: index 2 not allowed']}}}


LEDGER = {'0000:41:00.0': {'level': 'tcb', 'generation': 7, 'policy_version': '2026.10.2'}, '0000:01:00.0': {'level': 'normal'}}


def run(devices: list[dict[str, t.Any]], policy: t.Optional[dict[str, t.Any]] = None, **kwargs: t.Any) -> dict[str, t.Any]:
    kwargs.setdefault('verdicts', verdicts())
    kwargs.setdefault('ledger', LEDGER)
    return audit(devices, policy or POLICY, kwargs.pop('verdicts'), MANIFESTS, NOW, kwargs.pop('ledger'))


def kinds(result: dict[str, t.Any], bdf: t.Optional[str] = '0000:41:00.0') -> list[str]:
    return [f['kind'] for f in result['findings'] if f['bdf'] == bdf]


def finding(result: dict[str, t.Any], kind: str) -> dict[str, t.Any]:
    (found,) = [f for f in result['findings'] if f['kind'] == kind]
    return found


def test_compliant() -> None:
    result = run([h100(), virtio()])
    assert [(f['bdf'], f['kind'], f['status']) for f in result['findings']] == [
        ('0000:01:00.0', 'compliant', 'compliant'), ('0000:41:00.0', 'compliant', 'compliant')]
    gpu = result['findings'][1]
    assert gpu['rule'] == 'h100-tcb' and gpu['policy_version'] == '2026.11.1' and gpu['matched_by'] == 'fields'
    assert gpu['evidence'] == {'required': 'h100-96.00', 'verdict_status': 'affirming', 'reasons': []}
    assert result['summary'] == {'compliant': 2, 'drift': 0, 'exempt': 0, 'by_kind': dict.fromkeys(result['summary']['by_kind'], 0),
                                 'devices_in_drift': []}


def test_not_accepted() -> None:
    result = run([h100(state='locked', level='blocked'), virtio()], ledger={})
    assert kinds(result) == ['not_accepted']
    drift = finding(result, 'not_accepted')
    assert drift['status'] == 'drift'
    assert drift['reason'] == ('rule h100-tcb (policy 2026.11.1) gives tcb (TDISP run, trust tcb); the device is TDISP locked at trust blocked')
    assert drift['outcome'] == {'trust': 'tcb', 'tdisp_state': 'run'}
    assert drift['actual'] == {'tdisp_state': 'locked', 'trust_level': 'blocked'}


@pytest.mark.parametrize('state, level', [('run', 'normal'), ('locked', 'normal'), ('unlocked', 'tcb')])
def test_accepted_not_allowed(state: str, level: str) -> None:
    result = run([h100(), virtio(level=level, state=state)], ledger={})
    assert kinds(result, '0000:01:00.0') == ['accepted_not_allowed']
    assert 'rule virtio-shared (policy 2026.11.1) gives normal; the device is TDISP %s at trust %s and must be unlocked' % (state, level) \
        in finding(result, 'accepted_not_allowed')['reason']


def test_wrong_trust_level() -> None:
    result = run([h100(), virtio(level='adversary')], ledger={})
    assert kinds(result, '0000:01:00.0') == ['wrong_trust_level']
    assert finding(result, 'wrong_trust_level')['reason'] == 'rule virtio-shared (policy 2026.11.1) gives trust normal; the device is at adversary'


def test_unreadable_trust_level_is_wrong() -> None:
    device = dict(virtio(), trust_level=None, trust_abi='none')
    result = run([h100(), device], ledger={})
    assert finding(result, 'wrong_trust_level')['reason'].endswith('the device is at unreadable (trust_abi none)')


def test_trust_reset() -> None:
    result = run([h100(), virtio(level='blocked')])
    assert kinds(result, '0000:01:00.0') == ['wrong_trust_level', 'trust_reset']
    assert finding(result, 'trust_reset')['reason'].startswith(
        'the ledger records trust normal (generation None, policy None); the kernel now reports blocked')


def test_trust_reset_after_loss_of_run() -> None:
    result = run([h100(state='run', level='blocked'), virtio()])
    assert kinds(result) == ['not_accepted', 'trust_reset']
    assert 'the ledger records trust tcb (generation 7, policy 2026.10.2)' in finding(result, 'trust_reset')['reason']


def test_evidence_changed_generation() -> None:
    result = run([h100(generation=8), virtio()], verdicts=verdicts(generation=8))
    assert kinds(result) == ['evidence_changed']
    assert finding(result, 'evidence_changed')['reason'] == ('the evidence generation is now 8, the ledger accepted generation 7; '
                                                             'verify and accept again')


def test_evidence_changed_verdict_no_longer_acceptable() -> None:
    result = run([h100(), virtio()], verdicts=verdicts(status='contraindicated'))
    assert kinds(result) == ['accepted_not_allowed', 'evidence_changed']
    drift = finding(result, 'evidence_changed')
    assert drift['reason'] == 'the verdict is no longer acceptable: verdict status contraindicated is below min_status affirming'
    assert drift['evidence'] == {'required': 'h100-96.00', 'verdict_status': 'contraindicated',
                                 'reasons': ['verdict status contraindicated is below min_status affirming', 'measurements: index 2 not allowed']}
    assert finding(result, 'accepted_not_allowed')['reason'].startswith(
        'rule h100-tcb (policy 2026.11.1), with evidence not good enough, gives blocked')


def test_evidence_failure_on_a_device_never_accepted_is_compliant() -> None:
    result = run([h100(state='unlocked', level='blocked'), virtio()], verdicts=verdicts(status='contraindicated'), ledger={})
    assert kinds(result) == ['compliant']


def test_manifest_expired() -> None:
    result = run([h100(measured=blocks((1, AA), (2, BB))), virtio()])
    assert kinds(result) == ['manifest_expired']
    assert finding(result, 'manifest_expired')['reason'] == (
        'manifest h100-96.00 allows the accepted evidence only through expired entries: index 1: sha384:%s... is allowed only by '
        'measurements[0] (fw 95), which expired on 2026-06-30' % AA[:16])


def test_digest_also_allowed_by_a_current_entry_has_not_expired() -> None:
    assert kinds(run([h100(measured=blocks((2, CC))), virtio()])) == ['compliant']


def test_raw_block_is_compared_by_its_digest() -> None:
    result = run([h100(measured=blocks((2, BB)) + blocks((3, SVN_RAW), raw=True)), virtio()])
    assert kinds(result) == ['manifest_expired']
    assert 'index 3: sha256:' in finding(result, 'manifest_expired')['reason']


def test_manifest_expiry_is_not_checked_before_the_end_date() -> None:
    result = audit([h100(measured=blocks((1, AA))), virtio()], POLICY, verdicts(), MANIFESTS, '2026-06-30T23:59:59Z', LEDGER)
    assert kinds(result) == ['compliant']


def test_manifest_expiry_only_for_accepted_devices() -> None:
    result = run([h100(state='unlocked', level='blocked', measured=blocks((1, AA))), virtio()], ledger={})
    assert kinds(result) == ['not_accepted']


def test_the_host_ledger_file_shape_is_read() -> None:
    records = {'0000:41:00.0': {'trust_level': 'tcb', 'trust_abi': 'trust', 'generation': 7, 'updated': '2026-11-27T12:00:00Z'},
               '0000:01:00.0': {'unbound_driver': 'virtio-pci'}}
    ledger = {'format': 1, 'devices': records}
    result = run([h100(generation=8, level='normal'), virtio()], verdicts=verdicts(generation=8), ledger=ledger)
    assert kinds(result) == ['not_accepted', 'trust_reset', 'evidence_changed']
    assert kinds(result, '0000:01:00.0') == ['compliant']


def test_verdicts_keyed_by_bdf_only() -> None:
    single = {bdf: per_manifest['h100-96.00'] for bdf, per_manifest in verdicts().items()}
    assert kinds(run([h100(), virtio()], verdicts=single)) == ['compliant']


def test_unexpected_device() -> None:
    second = dict(h100(), bdf='0000:42:00.0')
    result = run([h100(), second, virtio()], verdicts=dict(verdicts(), **{'0000:42:00.0': verdicts()['0000:41:00.0']}))
    drift = finding(result, 'unexpected_device')
    assert (drift['expected'], drift['bdf'], drift['rule']) == ('gpus', None, None)
    assert drift['reason'].startswith('expected[0] (id gpus): wants count 1 devices matching vendor: 0x10de, device: 0x2330, found 2')


def test_missing_device() -> None:
    result = run([h100()])
    drift = finding(result, 'missing_device')
    assert (drift['expected'], drift['bdf'], drift['status']) == ('boot', '0000:01:00.0', 'drift')
    assert drift['policy_version'] == '2026.11.1'


def test_duplicate_device() -> None:
    result = run([h100(), virtio(), virtio()])
    drift = finding(result, 'duplicate_device')
    assert (drift['expected'], drift['bdf'], drift['rule']) == ('boot', '0000:01:00.0', 'virtio-shared')


def test_exemption_turns_drift_into_exempt_with_its_reason() -> None:
    policy = dict(POLICY, exemptions=[{'bdf': '0000:41:00.0', 'reason': 'INC-1234 vendor RMA pending', 'until': '2026-12-31'}])
    result = run([h100(state='unlocked', level='blocked'), virtio()], policy, ledger={})
    drift = finding(result, 'not_accepted')
    assert drift['status'] == 'exempt'
    assert drift['exemption'] == {'index': 0, 'reason': 'INC-1234 vendor RMA pending', 'until': '2026-12-31'}
    assert result['summary']['exempt'] == 1 and result['summary']['drift'] == 0
    assert result['summary']['by_kind']['not_accepted'] == 0


def test_expired_exemption_does_not_apply() -> None:
    policy = dict(POLICY, exemptions=[{'bdf': '0000:41:00.0', 'reason': 'INC-1000', 'until': '2026-11-29'}])
    drift = finding(run([h100(state='unlocked', level='blocked'), virtio()], policy, ledger={}), 'not_accepted')
    assert drift['status'] == 'drift' and drift['exemption'] is None
    assert drift['reason'].endswith('; exemptions[0] (INC-1000) expired on 2026-11-29')


def test_exemption_limited_to_kinds() -> None:
    policy = dict(POLICY, exemptions=[{'bdf': '0000:41:00.0', 'reason': 'INC-7', 'kinds': ['trust_reset']}])
    result = run([h100(state='run', level='blocked'), virtio()], policy)
    assert {f['kind']: f['status'] for f in result['findings'] if f['bdf'] == '0000:41:00.0'} == {
        'not_accepted': 'drift', 'trust_reset': 'exempt'}


def test_exemption_for_an_expected_entry() -> None:
    policy = dict(POLICY, exemptions=[{'expected': 'boot', 'reason': 'INC-9 disk swap'}])
    assert finding(run([h100()], policy), 'missing_device')['status'] == 'exempt'


@pytest.mark.parametrize('ledger, line', [
    ([], 'ledger: must be a mapping'),
    ({'0000:41:00.0': 'tcb'}, 'ledger[0000:41:00.0]: must be a mapping'),
    ({'0000:41:00.0': {'level': 'full'}}, "ledger[0000:41:00.0].level: 'full' is not a trust level"),
    ({'0000:41:00.0': {'level': 3, 'generation': '7'}}, "ledger[0000:41:00.0].generation: must be a whole number, got '7'"),
])
def test_bad_ledger(ledger: t.Any, line: str) -> None:
    with pytest.raises(PolicyError) as info:
        run([h100()], ledger=ledger)
    assert info.value.errors == [info.value.errors[0]] and info.value.errors[0].startswith(line)


def test_the_ledger_as_the_info_module_returns_it_is_understood() -> None:
    """tdisp_device_info returns {devices, policy}; the policy version applies to every record."""
    from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.classify import _ledger
    errors: list = []
    got = _ledger({'devices': {'0000:41:00.0': {'trust_level': 'tcb', 'generation': 7}}, 'policy': {'version': '2026.11.1'}}, errors)
    assert errors == []
    assert got == {'0000:41:00.0': {'level': 'tcb', 'generation': 7, 'policy_version': '2026.11.1', 'rejected': None}}
    assert _ledger({'devices': {}, 'policy': None}, errors) == {} and errors == []


def test_a_device_never_locked_that_the_rule_wants_in_the_tcb_is_not_accepted_yet() -> None:
    """No verdict because there is no evidence (unlocked): the rollout has not reached it, which is not_accepted."""
    unlocked = h100(state='unlocked', level='adversary')
    del unlocked['evidence']
    result = run([unlocked, virtio()], verdicts={}, ledger={})
    assert kinds(result) == ['not_accepted']
    assert 'has not been through lock, verify, accept' in finding(result, 'not_accepted')['reason']
    # ... while a device whose evidence was read and refused is compliant at its fallback level
    result = run([h100(state='unlocked', level='blocked'), virtio()], verdicts=verdicts(status='contraindicated'), ledger={})
    assert kinds(result) == ['compliant']


def test_evidence_that_cannot_be_read_is_its_own_drift_kind_not_a_verdict() -> None:
    device = h100()
    device['evidence'] = {'errors': [{'object': '*', 'msg': 'evidence endpoint unix:/x: ENOENT'}]}
    result = run([device, virtio()], verdicts={})
    assert kinds(result) == ['evidence_unreadable']
    assert 'ENOENT' in finding(result, 'evidence_unreadable')['reason']


def test_a_device_rejected_under_this_policy_version_is_compliant_at_its_fallback_level() -> None:
    """The ledger's rejection record (evidence failed, or revoked) explains an unaccepted device; the level must still match."""
    unlocked = h100(state='unlocked', level='blocked')
    del unlocked['evidence']
    record = {'0000:41:00.0': {'trust_level': 'blocked',
                               'rejected': {'reason': 'revoked by playbooks/revoke.yml', 'policy_version': '2026.11.1'}}}
    assert kinds(run([unlocked, virtio()], verdicts={}, ledger=record)) == ['compliant']
    wrong = dict(unlocked, trust_level='normal')
    result = run([wrong, virtio()], verdicts={}, ledger=record)
    assert kinds(result) == ['wrong_trust_level']
    assert 'rejected under policy 2026.11.1 (revoked by playbooks/revoke.yml)' in finding(result, 'wrong_trust_level')['reason']
    # a rejection under another policy version does not count: the new policy has not verified it yet
    old = {'0000:41:00.0': dict(record['0000:41:00.0'], rejected={'reason': 'x', 'policy_version': '2026.10.1'})}
    assert kinds(run([unlocked, virtio()], verdicts={}, ledger=old)) == ['not_accepted']


def test_unreadable_evidence_still_shows_a_trust_reset() -> None:
    device = h100(state='run', level='blocked')
    device['evidence'] = {'errors': [{'object': '*', 'msg': 'EPERM'}]}
    assert kinds(run([device, virtio()], verdicts={})) == ['evidence_unreadable', 'trust_reset']


@pytest.mark.parametrize('abi', ['trust', 'module_param', 'trust_policy'])
def test_tcb_without_a_committed_record_is_unexplained_at_every_trust_abi(abi: str) -> None:
    """Finding 2: garbage reading 3 on trust (no acceptance record in the ledger) is drift, not compliance."""
    device = dict(h100(state='unlocked', level='tcb'), trust_abi=abi)
    result = run([device, virtio()], ledger={})
    assert 'unexplained_state' in kinds(result), result['findings']
    assert 'no committed acceptance record' in finding(result, 'unexplained_state')['reason']
    assert 'compliant' not in kinds(result)


def test_run_with_a_pending_record_only_is_unexplained_and_a_committed_one_is_compliant() -> None:
    pending = {'0000:41:00.0': {'trust_level': 'tcb', 'generation': 7, 'acceptance': {'state': 'pending', 'generation': 7},
                                'journal': {'step': 'accept', 'phase': 'intent'}}}
    result = run([h100(), virtio()], ledger=pending)
    assert kinds(result) == ['unexplained_state'] and 'an unfinished accept' in finding(result, 'unexplained_state')['reason']
    committed = {'0000:41:00.0': dict(pending['0000:41:00.0'], acceptance={'state': 'committed', 'generation': 7}, journal={})}
    assert kinds(run([h100(), virtio()], ledger=committed)) == ['compliant']
    info = dict(h100(), acceptance={'committed': True, 'matches': False, 'generation': 6})
    assert kinds(run([info, virtio()], ledger={})) == ['evidence_changed']


def test_a_device_whose_identity_cannot_be_read_is_reported_not_defaulted() -> None:
    garbled = dict(h100(state='unlocked', level='adversary'), vendor=None, unknown={'vendor': "unexpected value 'xx'"})
    result = run([garbled, virtio()], ledger={})
    assert kinds(result) == ['unknown_identity'] and 'vendor' in finding(result, 'unknown_identity')['reason']
