# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Evidence verification: real PKIs and real signed SPDM objects, one test per failure kind."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import struct
import typing as t

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation import load_manifest
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.common import (
    VerifyError,
    measurement_signed_message,
    spdm_signing_prefix,
    worst,
)
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.verdict import verify_evidence
from ansible_collections.coco.tdisp.tests.unit.plugins.plugin_utils import tdisp_evidence_factory as f

UTC = dt.timezone.utc
NAME = 'eg100'


def run(evidence: t.Any, manifest: dict[str, t.Any], *, now: dt.datetime = f.NOW, nonce: t.Any = None) -> dict[str, t.Any]:
    return verify_evidence(evidence, load_manifest(NAME, manifest), now, nonce)


def check(verdict: dict[str, t.Any], name: str) -> dict[str, t.Any]:
    found = [item for item in verdict['checks'] if item['check'] == name]
    assert len(found) == 1
    return found[0]


def statuses(verdict: dict[str, t.Any]) -> dict[str, str]:
    return {item['check']: item['status'] for item in verdict['checks']}


def only_failing(verdict: dict[str, t.Any], name: str, status: str = 'contraindicated') -> list[str]:
    """Assert that ``name`` is the only check that is not affirming, with ``status``; return its reasons."""
    others = {key: value for key, value in statuses(verdict).items() if key != name}
    assert set(others.values()) == {'affirming'}, verdict['reasons']
    result = check(verdict, name)
    assert result['status'] == status, verdict['reasons']
    assert verdict['status'] == status
    return result['reasons']


def one_reason(verdict: dict[str, t.Any], name: str, status: str = 'contraindicated') -> str:
    reasons = only_failing(verdict, name, status)
    assert len(reasons) == 1, reasons
    return reasons[0]


@pytest.fixture(name='chain')
def chain_fixture() -> f.Chain:
    return f.make_chain()


@pytest.fixture(name='evidence')
def evidence_fixture(chain: f.Chain) -> dict[str, t.Any]:
    return f.make_evidence(chain)


@pytest.fixture(name='manifest')
def manifest_fixture(evidence: dict[str, t.Any], chain: f.Chain) -> dict[str, t.Any]:
    return f.manifest_for(evidence, chain)


LEAF = 'certificate [2] (leaf) ' + f.LEAF_NAME
INTERMEDIATE = 'certificate [1] (intermediate) ' + f.INTERMEDIATE_NAME
ROOT = 'certificate [0] (root) ' + f.ROOT_NAME


# ----------------------------------------------------------------------------------------------
# The good case and the verdict shape


def test_good_device_is_affirming(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    verdict = run(evidence, manifest, nonce='11' * 32)
    assert verdict['status'] == 'affirming', verdict['reasons']
    assert verdict['manifest'] == NAME
    assert verdict['generation'] == 7
    assert verdict['reasons'] == []
    assert [item['check'] for item in verdict['checks']] == [
        'certificate_chain', 'measurement_signature', 'measurements', 'svn', 'interface_report', 'evidence_integrity']
    assert check(verdict, 'measurement_signature')['details']['verified'] is True
    assert [item['index'] for item in check(verdict, 'measurements')['details']['matched']] == [1, 2, 3, 4]


def test_worst_status_wins() -> None:
    assert worst([]) == 'affirming'
    assert worst(['affirming', 'warning']) == 'warning'
    assert worst(['warning', 'contraindicated', 'affirming']) == 'contraindicated'


def test_flat_reasons_name_their_check(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    manifest['min_svn'] = 9
    manifest['interface']['ats'] = True
    verdict = run(evidence, manifest)
    assert verdict['reasons'] == [
        'svn: firmware SVN 5 is below min_svn 9 of manifest eg100',
        'interface_report: interface report: ats is false, manifest eg100 requires true',
    ]


def test_now_must_be_a_datetime(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    with pytest.raises(VerifyError, match='now: expected a datetime'):
        verify_evidence(evidence, load_manifest(NAME, manifest), '2026-09-01', None)  # type: ignore[arg-type]


def test_naive_now_is_utc(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    verdict = run(evidence, manifest, now=dt.datetime(2026, 9, 1, 12, 0))
    assert verdict['evaluated_at'] == '2026-09-01T12:00:00Z'


# ----------------------------------------------------------------------------------------------
# certificate_chain


def test_wrong_root(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    manifest['trust_anchors'] = ['00' * 32]
    reason = one_reason(run(evidence, manifest), 'certificate_chain')
    assert reason.startswith(ROOT + ': SHA-256 fingerprint ')
    assert reason.endswith(' is not in trust_anchors of manifest eg100')


def test_root_from_another_anchor_is_rejected_even_with_the_same_name(manifest: dict[str, t.Any]) -> None:
    impostor = f.make_chain(root_role='other-root')
    reason = one_reason(run(f.make_evidence(impostor), manifest), 'certificate_chain')
    assert 'is not in trust_anchors' in reason


def test_root_not_self_signed(evidence: dict[str, t.Any]) -> None:
    chain = f.make_chain(root_issuer='CN=Somebody Else,O=Example GPU Corp,C=US')
    evidence = f.make_evidence(chain)
    reason = one_reason(run(evidence, f.manifest_for(evidence, chain)), 'certificate_chain')
    assert reason == ROOT + ': not self-signed (issuer CN=Somebody Else,O=Example GPU Corp,C=US differs from the subject); the chain must start at a root'


def test_root_self_signature_broken() -> None:
    chain = f.make_chain(forge=0)
    evidence = f.make_evidence(chain)
    assert one_reason(run(evidence, f.manifest_for(evidence, chain)), 'certificate_chain') == (
        ROOT + ': signature does not verify with its own key')


def test_expired_leaf() -> None:
    chain = f.make_chain(leaf_not_after=dt.datetime(2026, 6, 1, tzinfo=UTC))
    evidence = f.make_evidence(chain)
    assert one_reason(run(evidence, f.manifest_for(evidence, chain)), 'certificate_chain') == (
        LEAF + ': expired on 2026-06-01T00:00:00Z (now 2026-09-01T12:00:00Z)')


def test_not_yet_valid_leaf() -> None:
    chain = f.make_chain(leaf_not_before=dt.datetime(2027, 1, 1, tzinfo=UTC))
    evidence = f.make_evidence(chain)
    assert one_reason(run(evidence, f.manifest_for(evidence, chain)), 'certificate_chain') == (
        LEAF + ': not valid before 2027-01-01T00:00:00Z (now 2026-09-01T12:00:00Z)')


def test_broken_signature_in_the_chain() -> None:
    chain = f.make_chain(forge=1)
    evidence = f.make_evidence(chain)
    assert one_reason(run(evidence, f.manifest_for(evidence, chain)), 'certificate_chain') == (
        INTERMEDIATE + ': signature does not verify with the public key of ' + ROOT)


def test_leaf_signed_by_a_key_other_than_its_issuer() -> None:
    chain = f.make_chain(forge=2)
    evidence = f.make_evidence(chain)
    assert one_reason(run(evidence, f.manifest_for(evidence, chain)), 'certificate_chain') == (
        LEAF + ': signature does not verify with the public key of ' + INTERMEDIATE)


def test_issuer_with_ca_false() -> None:
    chain = f.make_chain(intermediate_ca=False)
    evidence = f.make_evidence(chain)
    assert one_reason(run(evidence, f.manifest_for(evidence, chain)), 'certificate_chain') == (
        INTERMEDIATE + ': basicConstraints CA=false, but it issues ' + LEAF)


def test_issuer_without_basic_constraints() -> None:
    chain = f.make_chain(intermediate_ca=None)
    evidence = f.make_evidence(chain)
    assert one_reason(run(evidence, f.manifest_for(evidence, chain)), 'certificate_chain') == (
        INTERMEDIATE + ': no basicConstraints extension; an issuer needs CA=true to issue ' + LEAF)


def test_issuer_without_key_cert_sign() -> None:
    chain = f.make_chain(intermediate_usage='crl-only')
    evidence = f.make_evidence(chain)
    assert one_reason(run(evidence, f.manifest_for(evidence, chain)), 'certificate_chain') == (
        INTERMEDIATE + ': keyUsage lacks keyCertSign, but it issues ' + LEAF)


def test_leaf_without_digital_signature() -> None:
    chain = f.make_chain(leaf_usage='key-agreement')
    evidence = f.make_evidence(chain)
    assert one_reason(run(evidence, f.manifest_for(evidence, chain)), 'certificate_chain') == (
        LEAF + ': keyUsage lacks digitalSignature, so it may not sign measurements')


def test_leaf_without_key_usage() -> None:
    chain = f.make_chain(leaf_usage=None)
    evidence = f.make_evidence(chain)
    assert one_reason(run(evidence, f.manifest_for(evidence, chain)), 'certificate_chain') == (
        LEAF + ': no keyUsage extension; the leaf needs digitalSignature to sign measurements')


def test_path_length_exceeded() -> None:
    chain = f.make_chain(root_path_length=0)
    evidence = f.make_evidence(chain)
    assert one_reason(run(evidence, f.manifest_for(evidence, chain)), 'certificate_chain') == (
        ROOT + ': pathLenConstraint 0 allows 0 intermediate CA certificate(s) below it, the chain has 1')


def test_path_length_at_its_limit_is_fine() -> None:
    chain = f.make_chain(root_path_length=1)
    evidence = f.make_evidence(chain)
    assert run(evidence, f.manifest_for(evidence, chain))['status'] == 'affirming'


def test_more_intermediates_than_the_manifest_allows() -> None:
    chain = f.make_chain(intermediates=2)
    evidence = f.make_evidence(chain)
    assert one_reason(run(evidence, f.manifest_for(evidence, chain, intermediates_max=1)), 'certificate_chain') == (
        'certificate chain: 2 intermediate certificates, manifest eg100 allows at most 1 (intermediates_max)')
    assert run(evidence, f.manifest_for(evidence, chain, intermediates_max=2))['status'] == 'affirming'


def test_leaf_subject_mismatch(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    manifest['leaf_subject'] = r'CN=EG200 Device \d+,.*'
    assert one_reason(run(evidence, manifest), 'certificate_chain') == (
        LEAF + ": subject 'CN=EG100 Device 1654321,OU=EG100,O=Example GPU Corp' does not match leaf_subject "
        "'CN=EG200 Device \\\\d+,.*' of manifest eg100")


def test_leaf_subject_must_match_whole(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    manifest['leaf_subject'] = 'CN=EG100'
    assert 'does not match leaf_subject' in one_reason(run(evidence, manifest), 'certificate_chain')


def test_unknown_critical_extension() -> None:
    oid = x509.ObjectIdentifier('1.3.6.1.4.1.99999.7')
    chain = f.make_chain(leaf_extra=[(x509.UnrecognizedExtension(oid, b'\x05\x00'), True)])
    evidence = f.make_evidence(chain)
    assert one_reason(run(evidence, f.manifest_for(evidence, chain)), 'certificate_chain') == (
        LEAF + ': critical extension 1.3.6.1.4.1.99999.7 is not understood by the verifier (RFC 5280 requires rejecting it)')


def test_unknown_non_critical_extension_is_fine() -> None:
    oid = x509.ObjectIdentifier('1.3.6.1.4.1.412.274.6')
    chain = f.make_chain(leaf_extra=[(x509.UnrecognizedExtension(oid, b'\x05\x00'), False)])
    evidence = f.make_evidence(chain)
    assert run(evidence, f.manifest_for(evidence, chain))['status'] == 'affirming'


def test_root_hash_mismatch(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    evidence['certificates']['root_hash'] = '00' * 48
    assert one_reason(run(evidence, manifest), 'certificate_chain').startswith(
        'certificate chain: RootHash 0000000000000000... of the SPDM chain does not match the sha384 hash of ' + ROOT)


def test_certificate_that_is_not_der(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    evidence['certificates']['certificates'][1] = base64.b64encode(b'\x30\x03\x02\x01\x01').decode()
    verdict = run(evidence, manifest)
    assert check(verdict, 'certificate_chain')['reasons'][0].startswith('certificate [1]: not a DER X.509 certificate')
    assert check(verdict, 'measurement_signature')['reasons'] == ['not evaluated: no usable leaf certificate (see certificate_chain)']


def test_revoked_by_crl(chain: f.Chain, evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    leaf_serial = chain.certs[2].serial_number
    manifest['crls'] = [
        f.make_crl(chain.certs[0], chain.keys[0], []),
        f.make_crl(chain.certs[1], chain.keys[1], [12345, leaf_serial]),
    ]
    assert one_reason(run(evidence, manifest), 'certificate_chain') == (
        LEAF + ': revoked (serial 0x%x) by crls[1] of manifest eg100 on 2026-03-01T00:00:00Z' % leaf_serial)


def test_crls_that_revoke_nothing_affirm(chain: f.Chain, evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    manifest['crls'] = [f.make_crl(chain.certs[0], chain.keys[0], [7]), f.make_crl(chain.certs[1], chain.keys[1], [8])]
    assert run(evidence, manifest)['status'] == 'affirming'


def test_crl_coverage_gap_and_staleness_are_warnings(chain: f.Chain, evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    manifest['crls'] = [f.make_crl(chain.certs[1], chain.keys[1], [], next_update=dt.datetime(2026, 8, 1, tzinfo=UTC))]
    assert only_failing(run(evidence, manifest), 'certificate_chain', 'warning') == [
        INTERMEDIATE + ': no CRL in manifest eg100 from its issuer ' + f.ROOT_NAME + '; revocation not checked',
        'crls[0] of manifest eg100 (issuer ' + f.INTERMEDIATE_NAME + '): stale, next update was due 2026-08-01T00:00:00Z',
    ]


def test_forged_crl_is_ignored_not_trusted(chain: f.Chain, evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    leaf_serial = chain.certs[2].serial_number
    manifest['crls'] = [f.make_crl(chain.certs[0], chain.keys[0], []),
                        f.make_crl(chain.certs[1], f.key('attacker'), [leaf_serial])]
    reasons = only_failing(run(evidence, manifest), 'certificate_chain', 'warning')
    assert reasons[0] == ('crls[1] of manifest eg100: names ' + INTERMEDIATE + ' as issuer but its signature does not verify '
                          'with that key; ignored')
    assert reasons[1].startswith(LEAF + ': no CRL in manifest eg100 from its issuer')


# ----------------------------------------------------------------------------------------------
# measurement_signature


def test_signing_prefix_is_the_dsp0274_construction() -> None:
    expected = b'dmtf-spdm-v1.2.*' * 4 + b'\x00' * 6 + b'responder-measurements signing'
    assert spdm_signing_prefix((1, 2)) == expected
    assert len(expected) == 100
    assert spdm_signing_prefix((1, 3))[:16] == b'dmtf-spdm-v1.3.*'
    assert spdm_signing_prefix((1, 2)) == f.spdm_combined_prefix((1, 2))


def test_signed_message_is_prefix_and_transcript_hash(evidence: dict[str, t.Any]) -> None:
    vca = f.raw_object(evidence, 'vca')
    meas = f.raw_object(evidence, 'measurements')
    length = evidence['measurements']['signed_length']
    message = measurement_signed_message(vca, meas, length, (1, 2), 'sha384')
    assert message == spdm_signing_prefix((1, 2)) + hashlib.sha384(vca + meas[:length]).digest()
    assert len(meas) - length == 96  # the signature (ECDSA P-384 r || s) is not in the transcript


def test_measurement_signature_invalid(chain: f.Chain) -> None:
    evidence = f.make_evidence(chain, signing_key=f.key('attacker'))
    assert one_reason(run(evidence, f.manifest_for(evidence, chain)), 'measurement_signature') == (
        'measurements: signature does not verify with the public key of ' + LEAF + ' over the DSP0274 1.2 message '
        '(signing prefix || sha384(VCA || measurements[0:%d]))' % evidence['measurements']['signed_length'])


def test_tampered_measurement(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    """A changed firmware digest after signing: the signature breaks and the digest is not allowed."""
    raw = bytearray(f.raw_object(evidence, 'measurements'))
    old = bytes.fromhex(evidence['measurements']['blocks'][1]['value'])
    new = f.digest_of('evil firmware')
    at = raw.index(old)
    raw[at:at + len(old)] = new
    tampered = f.replace_object(evidence, 'measurements', bytes(raw))  # object digest recomputed, as an attacker would
    tampered['measurements']['blocks'][1]['value'] = new.hex()
    verdict = run(tampered, manifest)
    assert statuses(verdict) == {
        'certificate_chain': 'affirming', 'measurement_signature': 'contraindicated', 'measurements': 'contraindicated',
        'svn': 'affirming', 'interface_report': 'affirming', 'evidence_integrity': 'affirming'}
    assert check(verdict, 'measurements')['reasons'] == [
        'index 2: digest sha384:%s is not allowed by manifest eg100' % new.hex()]
    assert check(verdict, 'measurement_signature')['reasons'][0].startswith('measurements: signature does not verify')


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_flipped_byte_in_the_transcript_breaks_the_signature(
        data: st.DataObject, evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    object_type = data.draw(st.sampled_from(['vca', 'measurements']))
    raw = bytearray(f.raw_object(evidence, object_type))
    limit = evidence['measurements']['signed_length'] if object_type == 'measurements' else len(raw)
    position = data.draw(st.integers(min_value=0, max_value=limit - 1))
    raw[position] ^= data.draw(st.integers(min_value=1, max_value=255))
    verdict = run(f.replace_object(evidence, object_type, bytes(raw)), manifest)
    assert check(verdict, 'measurement_signature')['status'] == 'contraindicated'
    assert verdict['status'] == 'contraindicated'


def test_parsed_signature_must_be_the_objects_tail(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    signature = bytearray(bytes.fromhex(evidence['measurements']['signature']))
    signature[0] ^= 1
    evidence['measurements']['signature'] = signature.hex()
    assert one_reason(run(evidence, manifest), 'measurement_signature') == (
        'measurements: the parsed signature is not the 96 bytes that follow signed_length %d in the object'
        % evidence['measurements']['signed_length'])


@pytest.mark.parametrize('mode, status', [('required', 'contraindicated'), ('optional', 'warning')])
def test_signature_missing(chain: f.Chain, mode: str, status: str) -> None:
    evidence = f.make_evidence(chain, signed=False)
    reason = one_reason(run(evidence, f.manifest_for(evidence, chain, signature=mode)), 'measurement_signature', status)
    assert reason.startswith('measurements: unsigned (the GET_MEASUREMENTS request did not ask for a signature); ')
    assert reason.endswith('manifest eg100 requires a signature (signature: required)' if mode == 'required'
                           else 'accepted unverified because manifest eg100 has signature: optional')


@pytest.mark.parametrize('mode, status', [('required', 'contraindicated'), ('optional', 'warning')])
def test_request_missing_makes_the_signature_unverifiable(chain: f.Chain, mode: str, status: str) -> None:
    evidence = f.make_evidence(chain, include_request=False)
    reason = one_reason(run(evidence, f.manifest_for(evidence, chain, signature=mode)), 'measurement_signature', status)
    assert reason.startswith('measurements: the object carries no GET_MEASUREMENTS request, so the signed L1/L2 transcript cannot be rebuilt')


@pytest.mark.parametrize('asym, base_hash', [
    ('ecdsa_p256', 'sha256'), ('ecdsa_p384', 'sha384'), ('ecdsa_p521', 'sha512'), ('ecdsa_p384', 'sha3_384'),
    ('rsassa_2048', 'sha256'), ('rsapss_2048', 'sha384'), ('eddsa_ed25519', 'sha512'),
])
def test_signature_algorithms(asym: str, base_hash: str) -> None:
    chain = f.make_chain(leaf_kind=asym)
    evidence = f.make_evidence(chain, asym=asym, base_hash=base_hash)
    verdict = run(evidence, f.manifest_for(evidence, chain))
    assert verdict['status'] == 'affirming', verdict['reasons']
    assert check(verdict, 'measurement_signature')['details']['transcript_hash'].startswith(base_hash + ':')
    forged = f.make_evidence(chain, asym=asym, base_hash=base_hash, signing_key=f.key('attacker', asym))
    assert check(run(forged, f.manifest_for(forged, chain)), 'measurement_signature')['status'] == 'contraindicated'


def test_ed448_is_refused_with_its_reason() -> None:
    chain = f.make_chain(leaf_kind='eddsa_ed448')
    evidence = f.make_evidence(chain, asym='eddsa_ed448')
    assert one_reason(run(evidence, f.manifest_for(evidence, chain)), 'measurement_signature') == (
        'measurements: BaseAsymAlgo eddsa_ed448: an Ed448 signature over the SPDM message uses the signing context as EdDSA '
        'context, which the cryptography library cannot verify')


def test_leaf_key_that_does_not_fit_the_negotiated_algorithm() -> None:
    chain = f.make_chain(leaf_kind='ecdsa_p256')
    evidence = f.make_evidence(chain, asym='ecdsa_p384', signing_key=f.key('other', 'ecdsa_p384'))
    assert one_reason(run(evidence, f.manifest_for(evidence, chain)), 'measurement_signature') == (
        LEAF + ': the leaf key is on secp256r1, BaseAsymAlgo ecdsa_p384 needs secp384r1')


def test_asym_algorithm_outside_the_allow_list(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    manifest['asym_algos'] = ['ecdsa_p521', 'rsapss_3072']
    assert one_reason(run(evidence, manifest), 'measurement_signature') == (
        'vca: BaseAsymAlgo ecdsa_p384 is not in asym_algos of manifest eg100 (ecdsa_p521, rsapss_3072)')


def test_base_hash_outside_the_allow_list(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    manifest['base_hash_algos'] = ['sha512']
    assert one_reason(run(evidence, manifest), 'measurement_signature') == (
        'vca: BaseHashAlgo sha384 is not in base_hash_algos of manifest eg100 (sha512)')


def test_spdm_1_3_uses_its_own_version_in_the_prefix(chain: f.Chain) -> None:
    evidence = f.make_evidence(chain, version=(1, 3))
    manifest = f.manifest_for(evidence, chain)
    assert run(evidence, manifest)['status'] == 'affirming'
    # the same bytes claimed as 1.2 no longer verify: the prefix carries the version
    evidence['measurements']['spdm_version'] = evidence['vca']['version'] = '1.2'
    assert check(run(evidence, manifest), 'measurement_signature')['status'] == 'contraindicated'


def test_spdm_1_1_signatures_are_refused(chain: f.Chain) -> None:
    evidence = f.make_evidence(chain, version=(1, 1))
    assert one_reason(run(evidence, f.manifest_for(evidence, chain)), 'measurement_signature') == (
        'measurements: SPDM 1.1 signatures (no signing prefix, no VCA in L1/L2) are not supported; '
        'the device must negotiate SPDM 1.2 or later')


def test_measurement_version_differs_from_vca(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    evidence['vca']['version'] = '1.3'
    assert one_reason(run(evidence, manifest), 'measurement_signature') == (
        'measurements: SPDM version 1.2 differs from the negotiated version 1.3 in the vca object')


# ----------------------------------------------------------------------------------------------
# measurements


def test_digest_not_allowed(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    manifest['measurements'][1]['digests'] = [f.digest_text(f.digest_of('fw-97.00'))]
    assert one_reason(run(evidence, manifest), 'measurements') == (
        'index 2: digest %s is not allowed by manifest eg100' % f.digest_text(f.digest_of('fw-96.00.5A')))


def test_digest_allowed_only_by_an_expired_entry(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    manifest['measurements'][1].update(valid_until='2026-06-30', description='fw 96.00.5A')
    reason = one_reason(run(evidence, manifest), 'measurements')
    assert reason.startswith('index 2: digest sha384:%s... is allowed only by measurements[1] (fw 96.00.5A), '
                             'which expired on 2026-06-30' % f.digest_of('fw-96.00.5A').hex()[:16])
    assert reason.endswith('(manifest eg100, now 2026-09-01T12:00:00Z)')


def test_digest_allowed_only_by_a_future_entry(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    manifest['measurements'][1].update(valid_from='2027-01-01')
    assert 'which is not valid until 2027-01-01' in one_reason(run(evidence, manifest), 'measurements')


def test_overlap_window_accepts_old_and_new_until_old_expires(chain: f.Chain) -> None:
    old = f.make_evidence(chain, f.default_blocks(firmware='fw-96.00.5A'))
    new = f.make_evidence(chain, f.default_blocks(firmware='fw-97.00.1B'))
    manifest = f.manifest_for(old, chain)
    manifest['measurements'][1] = {'index': 2, 'digests': [f.digest_text(f.digest_of('fw-96.00.5A'))],
                                   'valid_until': '2026-10-31', 'description': 'fw 96.00.5A (old)'}
    manifest['measurements'].append({'index': 2, 'digests': [f.digest_text(f.digest_of('fw-97.00.1B'))],
                                     'valid_from': '2026-08-15', 'description': 'fw 97.00.1B (new)'})
    during = dt.datetime(2026, 9, 1, tzinfo=UTC)
    last_day = dt.datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    after = dt.datetime(2026, 11, 1, tzinfo=UTC)
    before = dt.datetime(2026, 8, 1, tzinfo=UTC)
    assert run(old, manifest, now=during)['status'] == 'affirming'
    assert run(new, manifest, now=during)['status'] == 'affirming'
    assert run(old, manifest, now=last_day)['status'] == 'affirming'
    assert run(new, manifest, now=after)['status'] == 'affirming'
    assert 'which expired on 2026-10-31' in one_reason(run(old, manifest, now=after), 'measurements')
    assert 'which is not valid until 2026-08-15' in one_reason(run(new, manifest, now=before), 'measurements')
    matched = check(run(new, manifest, now=during), 'measurements')['details']['matched']
    assert [m['description'] for m in matched if m['index'] == 2] == ['fw 97.00.1B (new)']


def test_listed_index_absent_from_evidence(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    manifest['measurements'].append({'index': 9, 'digests': [f.digest_text(f.digest_of('x'))]})
    assert one_reason(run(evidence, manifest), 'measurements') == 'index 9: absent from the measurements; manifest eg100 lists it'


@pytest.mark.parametrize('mode, status', [('warning', 'warning'), ('contraindicated', 'contraindicated')])
def test_unlisted_index(evidence: dict[str, t.Any], manifest: dict[str, t.Any], mode: str, status: str) -> None:
    del manifest['measurements'][2]
    manifest['unlisted_measurements'] = mode
    assert one_reason(run(evidence, manifest), 'measurements', status) == (
        'index 3 (hardware_config): measured by the device but not listed in manifest eg100')


def test_manifest_with_other_digest_algorithm_for_an_index(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    manifest['measurements'][1]['digests'] = ['sha512:' + '00' * 64]
    assert one_reason(run(evidence, manifest), 'measurements') == (
        'index 2: the evidence digest is sha384 but manifest eg100 lists only sha512 digests for this index')


def test_measurement_hash_outside_the_allow_list(chain: f.Chain) -> None:
    evidence = f.make_evidence(chain, meas_hash='sha256')
    manifest = f.manifest_for(evidence, chain)
    manifest['measurements'] = [e for e in manifest['measurements'] if e['index'] == 4]  # the raw block, digested with sha384
    manifest['measurement_hash_algos'] = ['sha384']
    manifest['unlisted_measurements'] = 'warning'
    reasons = only_failing(run(evidence, manifest), 'measurements')
    assert reasons[0] == 'vca: MeasurementHashAlgo sha256 is not in measurement_hash_algos of manifest eg100 (sha384)'


def test_raw_block_is_compared_by_its_digest(chain: f.Chain, manifest: dict[str, t.Any]) -> None:
    evidence = f.make_evidence(chain, f.default_blocks(svn=6))
    manifest['min_svn'] = 5
    reason = one_reason(run(evidence, manifest), 'measurements')
    assert reason == 'index 4: digest sha384:%s (raw bit stream, compared by its digest) is not allowed by manifest eg100' % (
        hashlib.sha384(struct.pack('<Q', 6)).hexdigest())


def test_digest_of_the_wrong_size(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    evidence['measurements']['blocks'][0]['value'] = '00' * 32
    assert one_reason(run(evidence, manifest), 'measurements') == 'index 1: value has 32 bytes, a sha384 digest has 48'


def test_duplicate_index_in_evidence(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    evidence['measurements']['blocks'].append(copy.deepcopy(evidence['measurements']['blocks'][0]))
    assert one_reason(run(evidence, manifest), 'measurements') == 'index 1: appears more than once in the measurements'


def test_nonce_freshness(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    assert run(evidence, manifest, nonce='11' * 32)['status'] == 'affirming'
    assert run(evidence, manifest, nonce=b'\x11' * 32)['status'] == 'affirming'
    reason = one_reason(run(evidence, manifest, nonce='22' * 32), 'measurements')
    assert reason == 'nonce: the request nonce 1111111111111111... differs from the expected nonce 2222222222222222... (stale or replayed evidence)'


def test_short_nonce_matches_the_zero_padded_request_nonce(chain: f.Chain) -> None:
    evidence = f.make_evidence(chain, request_nonce=b'\xab' * 16 + b'\x00' * 16)
    manifest = f.manifest_for(evidence, chain)
    assert run(evidence, manifest, nonce='ab' * 16)['status'] == 'affirming'
    assert check(run(evidence, manifest, nonce='ab' * 15), 'measurements')['reasons'][0].startswith('nonce: the request nonce')


def test_nonce_expected_but_request_has_none(chain: f.Chain) -> None:
    evidence = f.make_evidence(chain, signed=False)
    verdict = run(evidence, f.manifest_for(evidence, chain, signature='optional'), nonce='11' * 32)
    assert check(verdict, 'measurements')['reasons'] == [
        'nonce: the GET_MEASUREMENTS request carries no nonce, so freshness against the expected nonce cannot be shown']


def test_nonce_must_be_hex(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    with pytest.raises(VerifyError, match='nonce: expected hex text'):
        run(evidence, manifest, nonce='not hex')


# ----------------------------------------------------------------------------------------------
# svn


def test_svn_below_minimum(chain: f.Chain, manifest: dict[str, t.Any]) -> None:
    evidence = f.make_evidence(chain, f.default_blocks(svn=4))
    manifest['measurements'] = [e for e in manifest['measurements'] if e['index'] != 4]
    manifest['unlisted_measurements'] = 'warning'
    verdict = run(evidence, manifest)
    assert check(verdict, 'svn')['reasons'] == ['firmware SVN 4 is below min_svn 5 of manifest eg100']
    assert verdict['status'] == 'contraindicated'


def test_svn_at_minimum_is_fine(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    assert check(run(evidence, manifest), 'svn')['details'] == {'min_svn': 5, 'firmware_svn': 5, 'firmware_version': '96.00.5A.00.01'}


def test_svn_required_but_not_reported(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    evidence['measurements']['firmware_svn'] = None
    assert one_reason(run(evidence, manifest), 'svn') == (
        'firmware SVN: the measurements carry no security version number; manifest eg100 requires min_svn 5')


def test_no_min_svn_means_no_svn_requirement(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    del manifest['min_svn']
    evidence['measurements']['firmware_svn'] = None
    assert run(evidence, manifest)['status'] == 'affirming'


# ----------------------------------------------------------------------------------------------
# interface_report


@pytest.mark.parametrize('prop, value, required', [
    ('ats', True, 'false'), ('prs', True, 'false'), ('dma_with_pasid', True, 'false'), ('no_fw_update', False, 'true'),
])
def test_interface_property_violated(chain: f.Chain, manifest: dict[str, t.Any], prop: str, value: bool, required: str) -> None:
    evidence = f.make_evidence(chain, report=f.build_report(**{prop: value}))
    assert one_reason(run(evidence, manifest), 'interface_report') == (
        'interface report: %s is %s, manifest eg100 requires %s' % (prop, str(value).lower(), required))


def test_too_many_mmio_ranges(chain: f.Chain, manifest: dict[str, t.Any]) -> None:
    evidence = f.make_evidence(chain, report=f.build_report(ranges=[f.Range(0x1000 * i, 1, i) for i in range(9)]))
    assert one_reason(run(evidence, manifest), 'interface_report') == (
        'interface report: 9 MMIO ranges, manifest eg100 allows at most 8 (max_mmio_ranges)')


def test_non_tee_mmio_range_forbidden(chain: f.Chain, manifest: dict[str, t.Any]) -> None:
    evidence = f.make_evidence(chain, report=f.build_report(ranges=[f.Range(0x1000, 4, 0), f.Range(0x9000, 1, 3, non_tee_mem=True)]))
    assert one_reason(run(evidence, manifest), 'interface_report') == (
        'interface report: MMIO range [1] (range_id 3, first page 0x9000) is non-TEE memory; manifest eg100 requires non_tee_mmio: false')
    manifest['interface']['non_tee_mmio'] = True
    assert run(evidence, manifest)['status'] == 'affirming'


def test_interface_report_missing_when_required(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    del evidence['interface_report']
    del evidence['objects']['report']
    verdict = run(evidence, manifest)
    assert check(verdict, 'interface_report')['reasons'] == ['not evaluated: object report is absent from the evidence']
    assert check(verdict, 'evidence_integrity')['reasons'] == [
        'object report: absent from the evidence; manifest eg100 needs it for the interface properties']


def test_no_interface_requirements_means_no_report_needed(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    del manifest['interface']
    del evidence['interface_report']
    del evidence['objects']['report']
    assert run(evidence, manifest)['status'] == 'affirming'


# ----------------------------------------------------------------------------------------------
# evidence_integrity


def test_malformed_needed_object(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    parser_reason = 'measurements MEASUREMENTS.MeasurementRecordLength at offset 42: record of 900 bytes overruns the object (300 bytes left)'
    del evidence['measurements']
    evidence['errors'] = [{'object': 'measurements', 'msg': parser_reason}]
    verdict = run(evidence, manifest)
    assert statuses(verdict) == {
        'certificate_chain': 'affirming', 'measurement_signature': 'contraindicated', 'measurements': 'contraindicated',
        'svn': 'contraindicated', 'interface_report': 'affirming', 'evidence_integrity': 'contraindicated'}
    assert check(verdict, 'evidence_integrity')['reasons'] == [
        'object measurements: %s (manifest eg100 needs it for the measurement indices and the SVN)' % parser_reason]
    assert check(verdict, 'measurements')['reasons'] == ['not evaluated: object measurements: ' + parser_reason]


def test_malformed_unused_object_is_a_warning(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    evidence['errors'] = [{'object': 'cert3', 'msg': 'cert chain Length at offset 0: the chain says 9 bytes but the object holds 4'}]
    assert one_reason(run(evidence, manifest), 'evidence_integrity', 'warning') == (
        'object cert3: cert chain Length at offset 0: the chain says 9 bytes but the object holds 4 (not used by manifest eg100)')


def test_object_digest_mismatch(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    evidence['objects']['vca']['digest'] = 'sha384:' + '00' * 48
    assert one_reason(run(evidence, manifest), 'evidence_integrity').startswith(
        'object vca: digest sha384:0000000000000000... does not match its data (sha384:')


def test_object_length_mismatch(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    evidence['objects']['cert0']['length'] += 1
    length = evidence['objects']['cert0']['length']
    assert one_reason(run(evidence, manifest), 'evidence_integrity') == (
        'object cert0: length %d but the data holds %d bytes' % (length, length - 1))


def test_object_data_not_base64(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    evidence['objects']['measurements']['data'] = '***'
    verdict = run(evidence, manifest)
    assert check(verdict, 'evidence_integrity')['reasons'] == ['object measurements: data is not base64']
    assert check(verdict, 'measurement_signature')['reasons'] == [
        'object measurements: no raw data (objects.measurements.data), so the signed L1/L2 transcript cannot be rebuilt']


def test_generation_missing(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    del evidence['generation']
    verdict = run(evidence, manifest)
    assert verdict['generation'] is None
    assert one_reason(verdict, 'evidence_integrity').startswith('evidence.generation: missing or not an integer (None)')


def test_evidence_that_is_not_a_mapping(manifest: dict[str, t.Any]) -> None:
    verdict = run(['garbage'], manifest)
    assert verdict['status'] == 'contraindicated'
    assert set(statuses(verdict).values()) == {'contraindicated'}
    assert check(verdict, 'evidence_integrity')['reasons'] == [
        'evidence: not a mapping; collect it with coco.tdisp.tdisp_device_info (include_evidence: true)']


def test_empty_evidence_names_every_missing_object(manifest: dict[str, t.Any]) -> None:
    verdict = run({'generation': 1, 'objects': {}, 'errors': []}, manifest)
    assert check(verdict, 'evidence_integrity')['reasons'] == [
        'object cert0: absent from the evidence; manifest eg100 needs it for the certificate chain (slot 0)',
        'object vca: absent from the evidence; manifest eg100 needs it for the negotiated algorithms and the signed transcript',
        'object measurements: absent from the evidence; manifest eg100 needs it for the measurement indices and the SVN',
        'object report: absent from the evidence; manifest eg100 needs it for the interface properties',
    ]
    assert check(verdict, 'certificate_chain')['reasons'] == ['not evaluated: object cert0 is absent from the evidence']


# ----------------------------------------------------------------------------------------------
# The shapes tdisp_device_info produces beyond the minimal contract


def test_certificates_per_slot_use_slot_0(chain: f.Chain, evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    other = f.make_evidence(f.make_chain(root_role='other-root'))
    evidence['certificates'] = {'cert0': evidence['certificates'], 'cert1': other['certificates']}
    assert run(evidence, manifest)['status'] == 'affirming'
    evidence['certificates'] = {'cert1': other['certificates']}
    verdict = run(evidence, manifest)
    assert check(verdict, 'certificate_chain')['reasons'] == ['not evaluated: object cert0 was not parsed']


def test_raw_data_left_out_by_the_reader(evidence: dict[str, t.Any], manifest: dict[str, t.Any]) -> None:
    evidence['objects']['measurements'].update(data=None, omitted='larger than max_object_size (64 bytes)')
    assert one_reason(run(evidence, manifest), 'measurement_signature') == (
        'object measurements: raw data omitted by the reader (larger than max_object_size (64 bytes)), so the signed L1/L2 '
        'transcript cannot be rebuilt; read the evidence with a larger max_object_size')


def test_failed_evidence_read(manifest: dict[str, t.Any]) -> None:
    message = '0000:41:00.0: not locked or connected: no TSM context, no evidence (ENXIO)'
    verdict = run({'generation': None, 'family': None, 'objects': {}, 'errors': [{'object': '*', 'msg': message}]}, manifest)
    assert check(verdict, 'evidence_integrity')['reasons'] == ['evidence read: ' + message]
    assert check(verdict, 'measurements')['reasons'] == ['not evaluated: the evidence read failed: ' + message]
