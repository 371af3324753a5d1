"""The simulator's evidence builder: round trips through the target-side parsers, real signatures, broken PKIs.

Run: .venv/bin/python -m pytest tests/simulator/test_evidence_build.py
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import sys
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tdisp_sim.evidence import build
from tdisp_sim.evidence.build import DeviceEvidence, DeviceProfile, MeasurementBlock
from tdisp_sim.evidence.pki import VARIANTS, TestPki

ROOT = Path(__file__).resolve().parents[2]


def _collections_path() -> str:
    """A directory holding ansible_collections/coco/tdisp -> this checkout (make env creates build/collections)."""
    built = ROOT / 'build' / 'collections'
    if (built / 'ansible_collections' / 'coco' / 'tdisp' / 'plugins').is_dir():
        return str(built)
    tmp = Path(tempfile.mkdtemp(prefix='coco-tdisp-collections-'))
    (tmp / 'ansible_collections' / 'coco').mkdir(parents=True)
    (tmp / 'ansible_collections' / 'coco' / 'tdisp').symlink_to(ROOT)
    return str(tmp)


if _collections_path() not in sys.path:
    sys.path.insert(0, _collections_path())

# pylint: disable=wrong-import-position
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.certchain import parse_cert_chain  # noqa: E402
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.interface_report import parse_interface_report  # noqa: E402
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.objects import parse_object  # noqa: E402
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.spdm import parse_measurements, parse_vca  # noqa: E402

NOW = datetime.datetime.now(datetime.timezone.utc)
NONCE = bytes(range(100, 132))


@pytest.fixture(scope='module')
def pki_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp('pki')
    TestPki.generate(['dev-a', 'dev-b'], VARIANTS).save(directory)
    return directory


@pytest.fixture(scope='module')
def pki(pki_dir) -> TestPki:
    return TestPki.load(pki_dir)


def profile(**overrides) -> DeviceProfile:
    fields = dict(
        firmware_version='96.00.5A.00.01',
        svn=7,
        measurements=[(1, 'immutable_rom', bytes([0xA1]) * 48), (2, 'mutable_firmware', 'sha384:' + 'b2' * 48),
                      {'index': 3, 'type': 'hardware_config', 'digest': 'c3' * 48}, (4, 'firmware_config', bytes([0xD4]) * 48)],
        interface_info={'no_fw_update': True, 'dma_without_pasid': True, 'ats': True},
        msix_message_control=0x8003,
        lnr_control=0,
        tph_control=0x10,
        mmio_ranges=[{'first_page': 0x38000, 'pages': 16, 'range_id': 0, 'attributes': {'msix_table': True}},
                     (0x38010, 4, 1, {'msix_pba': True, 'non_tee_mem': True}),
                     build.MmioRange(0x40000, 1024, 2)],
        device_specific_info=b'\x01\x02\x03',
        opaque=b'\xee' * 5,
    )
    fields.update(overrides)
    return DeviceProfile(**fields)


# ------------------------------------------------------------------------------------------------ PKI


def test_pki_load_is_deterministic(pki_dir, pki):
    again = TestPki.load(pki_dir)
    assert sorted(again.leaves) == ['dev-a', 'dev-b']
    for device in again.leaves:
        assert sorted(again.leaves[device]) == sorted(('valid',) + VARIANTS)
        for variant in again.leaves[device]:
            assert again.chain(device, variant) == pki.chain(device, variant)
            pem = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            assert again.leaf(device, variant).key.private_bytes(*pem) == pki.leaf(device, variant).key.private_bytes(*pem)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError):
        return False
    return True


def _basic_constraints(cert: x509.Certificate):
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


def _valid_now(cert: x509.Certificate) -> bool:
    return cert.not_valid_before_utc <= NOW <= cert.not_valid_after_utc


def _problems(pki: TestPki, chain: list) -> list:
    """Every way a root-first chain fails against the PKI's trust anchor (empty: fully valid)."""
    problems = []
    if chain[0] != pki.trust_anchor:
        problems.append('untrusted root')
    for issuer, cert in zip(chain, chain[1:]):
        if not _issued_by(cert, issuer):
            problems.append('bad signature on %s' % cert.subject.rfc4514_string())
    if not _issued_by(chain[0], chain[0]):
        problems.append('root not self-signed')
    for ca in chain[:-1]:
        bc = _basic_constraints(ca)
        if bc is None or not bc.ca:
            problems.append('CA without basicConstraints CA=true')
        if not ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign:
            problems.append('CA without keyCertSign')
    leaf = chain[-1]
    if not leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
        problems.append('leaf without digitalSignature')
    if _basic_constraints(leaf).ca:
        problems.append('leaf is a CA')
    for cert in chain:
        if not _valid_now(cert):
            problems.append('not valid now: %s' % cert.subject.rfc4514_string())
    return problems


def test_valid_chain_has_no_problem(pki):
    chain = pki.chain('dev-a')
    assert len(chain) == 3
    assert _problems(pki, chain) == []
    assert isinstance(chain[-1].public_key().curve, ec.SECP384R1)
    assert chain[-1].signature_hash_algorithm.name == 'sha384'
    assert chain[-1].public_key() == pki.leaf('dev-a').key.public_key()


@pytest.mark.parametrize('variant, expected', [
    ('expired', ['not valid now: CN=SPDM responder dev-a,O=coco.tdisp test PKI']),
    ('not_yet_valid', ['not valid now: CN=SPDM responder dev-a,O=coco.tdisp test PKI']),
    ('wrong_root', ['untrusted root']),
    ('wrong_signer', ['bad signature on CN=SPDM responder dev-a,O=coco.tdisp test PKI']),
    ('ca_without_basic_constraints', ['CA without basicConstraints CA=true']),
    ('leaf_without_digital_signature', ['leaf without digitalSignature']),
])
def test_each_broken_variant_is_broken_exactly_as_named(pki, variant, expected):
    chain = pki.chain('dev-a', variant)
    assert _problems(pki, chain) == expected
    leaf = chain[-1]
    if variant == 'expired':
        assert leaf.not_valid_after_utc < NOW
    if variant == 'not_yet_valid':
        assert leaf.not_valid_before_utc > NOW
    if variant == 'wrong_root':
        assert not _issued_by(leaf, pki.cas['intermediate'].cert)
        assert chain[0].subject != pki.trust_anchor.subject
    if variant == 'wrong_signer':
        assert leaf.issuer == pki.cas['intermediate'].cert.subject       # it claims the right issuer
    if variant == 'ca_without_basic_constraints':
        assert _basic_constraints(chain[1]) is None


def test_unknown_variant_and_device(pki):
    with pytest.raises(ValueError):
        TestPki.generate(['x'], ['sideways'])
    with pytest.raises(KeyError):
        pki.leaf('dev-z')
    with pytest.raises(ValueError):
        pki.add_device('../escape')


# ------------------------------------------------------------------------------------------------ round trips


def test_device_evidence_round_trip(pki):
    prof = profile()
    objects = DeviceEvidence(prof, pki.leaf('dev-a').key, pki.chain('dev-a')).objects(NONCE)
    assert sorted(objects) == ['cert0', 'measurements', 'report', 'vca']

    vca = parse_vca(objects['vca'])
    assert (vca['version'], vca['base_hash_algo'], vca['base_asym_algo'], vca['measurement_hash_algo']) == ('1.2', 'sha384', 'ecdsa_p384', 'sha384')
    assert (vca['hash_size'], vca['signature_size'], vca['measurement_spec']) == (48, 96, 'dmtf')
    assert vca['responder_capabilities']['meas_cap'] == 'signed' and vca['responder_capabilities']['cert_cap'] is True

    chain = parse_cert_chain(objects['cert0'])
    ders = [c.public_bytes(serialization.Encoding.DER) for c in pki.chain('dev-a')]
    assert [base64.b64decode(c) for c in chain['certificates']] == ders
    assert chain['hash_size'] == 48 and chain['root_hash'] == hashlib.sha384(ders[0]).hexdigest()
    assert chain['root_hash_algo'] == 'sha384'

    meas = parse_measurements(objects['measurements'], vca['measurement_hash_size'], vca['signature_size'])
    assert meas['firmware_version'] == '96.00.5A.00.01' and meas['firmware_svn'] == 7
    assert meas['request']['nonce'] == NONCE.hex() and meas['request']['signature_requested'] is True
    assert meas['opaque'] == 'ee' * 5
    digests = {b['index']: (b['type'], b['value']) for b in meas['blocks'] if not b['raw']}
    assert digests == {1: ('immutable_rom', 'a1' * 48), 2: ('mutable_firmware', 'b2' * 48), 3: ('hardware_config', 'c3' * 48),
                       4: ('firmware_config', 'd4' * 48)}
    raw = {b['index']: b['type'] for b in meas['blocks'] if b['raw']}
    assert raw == {prof.version_index: 'firmware_version', prof.svn_index: 'firmware_svn'}

    report = parse_interface_report(objects['report'])
    assert [k for k, val in report['interface_info'].items() if val is True] == ['no_fw_update', 'dma_without_pasid', 'ats']
    assert (report['msix_message_control'], report['lnr_control'], report['tph_control']) == (0x8003, 0, 0x10)
    assert [(r['first_page'], r['pages'], r['range_id'], r['attributes']['raw']) for r in report['mmio_ranges']] == [
        (0x38000, 16, 0, 0x1), (0x38010, 4, 1, 0x6), (0x40000, 1024, 2, 0)]
    assert report['device_specific_info'] == '010203'

    # parse_object with the VCA as context takes the same path.
    assert parse_object('measurements', objects['measurements'], vca)['signature'] == meas['signature']
    assert parse_object('cert0', objects['cert0'], vca)['certificates'] == chain['certificates']


def _signed_message(version: str, vca_raw: bytes, meas_raw: bytes, signed_length: int) -> bytes:
    """docs/evidence.md: M = combined_spdm_prefix || SHA-384(VCA || measurements[:signed_length])."""
    prefix = ('dmtf-spdm-v%s.*' % version).encode() * 4 + bytes(6) + b'responder-measurements signing'
    assert len(prefix) == 100
    return prefix + hashlib.sha384(vca_raw + meas_raw[:signed_length]).digest()


def _verify(public_key, message: bytes, signature: bytes) -> bool:
    assert len(signature) == 96   # raw r || s, 48 bytes each
    der = encode_dss_signature(int.from_bytes(signature[:48], 'big'), int.from_bytes(signature[48:], 'big'))
    try:
        public_key.verify(der, message, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        return False
    return True


@pytest.mark.parametrize('version', ['1.2', '1.3'])
def test_measurement_signature_verifies_over_documented_bytes(pki, version):
    evidence = DeviceEvidence(profile(spdm_version=version), pki.leaf('dev-b').key, pki.chain('dev-b'))
    objects = evidence.objects(NONCE)
    meas = parse_measurements(objects['measurements'], 48, 96)
    assert meas['spdm_version'] == version
    signature = bytes.fromhex(meas['signature'])
    signed_length = meas['signed_length']
    assert objects['measurements'][signed_length:] == signature
    public_key = pki.chain('dev-b')[-1].public_key()
    message = _signed_message(version, objects['vca'], objects['measurements'], signed_length)
    assert _verify(public_key, message, signature)
    assert build.verify_measurements_signature(public_key, version, 'sha384', objects['vca'] + objects['measurements'][:signed_length], signature)
    if version == '1.3':
        assert meas['requester_context'] == '00' * 8

    # Any change to the covered bytes breaks it: a measurement digest, the VCA, the other device's key.
    tampered = bytearray(objects['measurements'])
    tampered[signed_length - 40] ^= 1
    assert not _verify(public_key, _signed_message(version, objects['vca'], bytes(tampered), signed_length), signature)
    other_vca = build.build_vca(version=version, ct_exponent=19)
    assert not _verify(public_key, _signed_message(version, other_vca, objects['measurements'], signed_length), signature)
    assert not _verify(pki.chain('dev-a')[-1].public_key(), message, signature)


def test_output_is_deterministic_except_for_the_nonce(pki):
    first = DeviceEvidence(profile(), pki.leaf('dev-a').key, pki.chain('dev-a'))
    second = DeviceEvidence(profile(), pki.leaf('dev-a').key, pki.chain('dev-a'))
    assert first.objects(NONCE) == second.objects(NONCE)
    other = first.objects(bytes(32))
    same = first.objects(NONCE)
    assert other['measurements'] != same['measurements']
    assert {k: other[k] for k in ('cert0', 'vca', 'report')} == {k: same[k] for k in ('cert0', 'vca', 'report')}


def test_short_nonce_is_zero_padded(pki):
    evidence = DeviceEvidence(profile(), pki.leaf('dev-a').key, pki.chain('dev-a'))
    meas = parse_measurements(evidence.measurements(b'\x01\x02'))
    assert meas['request']['nonce'] == '0102' + '00' * 30
    with pytest.raises(ValueError):
        evidence.measurements(bytes(33))


def test_profile_from_dict_and_validation(pki):
    key, chain = pki.leaf('dev-a').key, pki.chain('dev-a')
    mapping = {'firmware_version': '1.0', 'svn': 1, 'measurements': [{'index': 1, 'type': 'immutable_rom', 'digest': '00' * 48}],
               'device_specific_info': 'abcd', 'version_index': None, 'svn_index': 9}
    objects = DeviceEvidence(mapping, key, chain).objects(NONCE)
    meas = parse_measurements(objects['measurements'])
    assert [b['index'] for b in meas['blocks']] == [1, 9]
    assert meas['firmware_version'] is None and meas['firmware_svn'] == 1
    assert parse_interface_report(objects['report'])['device_specific_info'] == 'abcd'
    for bad in ({'colour': 'blue'}, {'measurements': [(1, 'immutable_rom', b'\x00' * 32)]}, {'svn_index': 1},
                {'measurements': [(0, 'immutable_rom', b'\x00' * 48)]}, {'base_asym_algo': 'rsassa_3072'}, {'spdm_version': '1.1'},
                {'measurements': [(1, 'sideways', b'\x00' * 48)]}):
        with pytest.raises(ValueError):
            DeviceEvidence(dict(mapping, **bad), key, chain)
    with pytest.raises(ValueError):   # P-384 key but P-256 negotiated
        DeviceEvidence(dict(mapping, base_asym_algo='ecdsa_p256'), key, chain)


# ------------------------------------------------------------------------------------------------ low-level encoders


@pytest.mark.parametrize('version', ['1.1', '1.2', '1.3'])
@pytest.mark.parametrize('base_hash, asym, meas_hash', [
    ('sha256', 'ecdsa_p256', 'sha256'), ('sha384', 'ecdsa_p384', 'raw_only'), ('sha512', 'ecdsa_p521', 'sha512'),
    ('sha3_384', 'rsapss_3072', None), ('sm3_256', 'sm2_p256', 'sm3_256'), ('sha384', 'eddsa_ed448', 'sha3_256'),
])
def test_build_vca_round_trip(version, base_hash, asym, meas_hash):
    flags = build.DEFAULT_RESPONDER_FLAGS if meas_hash else build.DEFAULT_RESPONDER_FLAGS & ~(3 << 3)
    vca = parse_vca(build.build_vca(version=version, base_hash_algo=base_hash, base_asym_algo=asym, measurement_hash_algo=meas_hash,
                                    responder_flags=flags, ct_exponent=17))
    assert (vca['version'], vca['base_hash_algo'], vca['base_asym_algo'], vca['measurement_hash_algo']) == (version, base_hash, asym, meas_hash)
    assert vca['hash_size'] == build.HASH_SIZES[base_hash]
    assert vca['responder_capabilities']['ct_exponent'] == 17
    assert vca['responder_capabilities']['raw'] == flags


def test_build_measurements_response_only_and_unsigned(pki):
    key = pki.leaf('dev-a').key
    vca = build.build_vca()
    blocks = [MeasurementBlock(5, 'informational', b'hello', raw=True), (6, 9, b'\x00' * 48), build.svn_block(7, 2 ** 63)]
    full = build.build_measurements(blocks, NONCE, b'', key, vca)
    alone = build.build_measurements(blocks, NONCE, b'', key, vca, include_request=False)
    request_length = parse_measurements(full)['request_length']
    assert full[request_length:] == alone
    parsed = parse_measurements(alone, signature_size=96)
    assert parsed['request']['present'] is False
    assert [(b['index'], b['type']) for b in parsed['blocks']] == [(5, 'informational'), (6, 'informational'), (7, 'firmware_svn')]
    assert parsed['firmware_svn'] == 2 ** 63
    # The signature of a response-only object still covers the request the responder saw.
    signed = vca + full[:request_length] + alone[:parsed['signed_length']]
    assert build.verify_measurements_signature(key.public_key(), '1.2', 'sha384', signed, bytes.fromhex(parsed['signature']))

    unsigned = parse_measurements(build.build_measurements(blocks, NONCE, b'\x01', None, vca))
    assert unsigned['signature'] is None and unsigned['request']['nonce'] is None and unsigned['opaque'] == '01'


def test_combined_prefix_bytes():
    prefix = build.combined_spdm_prefix('1.3')
    assert prefix[:16] == b'dmtf-spdm-v1.3.*' and prefix[48:64] == b'dmtf-spdm-v1.3.*'
    assert prefix[64:70] == bytes(6) and prefix[70:] == b'responder-measurements signing'
    with pytest.raises(ValueError):
        build.combined_spdm_prefix('1.1')


def test_build_cert_chain_limits(pki):
    with pytest.raises(ValueError):
        build.build_cert_chain([])
    with pytest.raises(ValueError):
        build.build_cert_chain([b'\x30\x00' * 40000])
    raw = build.build_cert_chain(pki.chain('dev-a'), 'sha256')
    assert parse_cert_chain(raw)['hash_size'] == 32
