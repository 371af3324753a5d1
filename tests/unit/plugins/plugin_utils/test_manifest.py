# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Reference manifest schema: one test per kind of mistake, plus the normalized form and pruning."""

from __future__ import annotations

import copy
import datetime as dt
import typing as t

import pytest
import yaml

from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation import (
    ManifestError,
    load_manifest,
    manifests_errors,
    normalize_fingerprint,
    pick_manifest,
    prune_expired,
    validate_manifest,
)

UTC = dt.timezone.utc
FP = 'ab' * 32
D384 = 'sha384:' + '0a' * 48
D384_B = 'sha384:' + '0b' * 48
NAME = 'h100-96.00'
PATH = 'reference_manifests.h100-96.00'


def base() -> dict[str, t.Any]:
    return {
        'trust_anchors': [FP],
        'leaf_subject': r'CN=EG100 Device \d+,O=Example',
        'measurements': [{'index': 1, 'digests': [D384]}],
    }


def errors_for(**changes: t.Any) -> list[str]:
    data = base()
    for key, value in changes.items():
        if value is _DELETE:
            del data[key]
        else:
            data[key] = value
    return validate_manifest(NAME, data)


_DELETE = object()


def only(errors: list[str]) -> str:
    assert len(errors) == 1, errors
    return errors[0]


def test_minimal_manifest_is_valid_and_has_defaults() -> None:
    manifest = load_manifest(NAME, base())
    assert manifest.name == NAME
    assert manifest.trust_anchors == frozenset([FP])
    assert manifest.signature == 'required'
    assert manifest.unlisted_measurements == 'warning'
    assert 'sha256' in manifest.measurement_hash_algos and 'sha512' in manifest.base_hash_algos
    assert 'ecdsa_p256' in manifest.asym_algos and 'rsapss_4096' in manifest.asym_algos
    assert manifest.indices() == [1]


def test_fingerprint_with_colons_and_upper_case_is_normalized() -> None:
    spelled = ':'.join(['AB'] * 32)
    assert normalize_fingerprint(spelled) == FP
    assert load_manifest(NAME, dict(base(), trust_anchors=[spelled])).trust_anchors == frozenset([FP])


def test_not_a_mapping() -> None:
    assert only(validate_manifest(NAME, ['x'])) == '%s: expected a mapping (the manifest), got a list' % PATH


def test_unknown_key_suggests_the_close_name() -> None:
    assert only(errors_for(trust_anchor=[FP])) == '%s.trust_anchor: unknown key; did you mean trust_anchors?' % PATH


def test_unknown_key_without_close_name_lists_known_keys() -> None:
    message = only(errors_for(zzz=1))
    assert message.startswith('%s.zzz: unknown key (known: ' % PATH) and 'min_svn' in message


@pytest.mark.parametrize('key', ['trust_anchors', 'leaf_subject', 'measurements'])
def test_missing_required_key(key: str) -> None:
    assert only(errors_for(**{key: _DELETE})) == '%s: missing required key %s' % (PATH, key)


def test_wrong_type_for_a_list() -> None:
    assert only(errors_for(trust_anchors=FP)) == '%s.trust_anchors: expected a list of SHA-256 fingerprints, got a string' % PATH


def test_empty_trust_anchors() -> None:
    assert 'empty list' in only(errors_for(trust_anchors=[]))


def test_bad_fingerprint() -> None:
    message = only(errors_for(trust_anchors=[FP, 'ab:cd']))
    assert message.startswith('%s.trust_anchors[1]: not a SHA-256 fingerprint' % PATH)


def test_duplicate_fingerprint() -> None:
    message = only(errors_for(trust_anchors=[FP, FP.upper()]))
    assert message.startswith('%s.trust_anchors[1]: duplicate fingerprint' % PATH)


def test_boolean_is_not_an_integer() -> None:
    assert only(errors_for(min_svn=True)) == '%s.min_svn: expected an integer >= 0, got a boolean' % PATH


def test_negative_integer() -> None:
    assert only(errors_for(intermediates_max=-1)) == '%s.intermediates_max: expected an integer >= 0, got -1' % PATH


def test_bad_regular_expression() -> None:
    assert only(errors_for(leaf_subject='CN=(')).startswith('%s.leaf_subject: not a valid regular expression' % PATH)


def test_bad_signature_mode() -> None:
    assert only(errors_for(signature='maybe')) == "%s.signature: expected one of required, optional, got 'maybe'" % PATH


def test_bad_unlisted_mode() -> None:
    assert only(errors_for(unlisted_measurements='ignore')).startswith('%s.unlisted_measurements: expected one of warning, contraindicated' % PATH)


def test_unknown_algorithm_in_allow_list() -> None:
    assert only(errors_for(asym_algos=['ecdsa_p384', 'dsa_1024'])).startswith("%s.asym_algos[1]: unknown algorithm 'dsa_1024'" % PATH)


def test_empty_allow_list() -> None:
    assert only(errors_for(base_hash_algos=[])).startswith('%s.base_hash_algos: empty list' % PATH)


def test_empty_measurements() -> None:
    assert only(errors_for(measurements=[])).startswith('%s.measurements: empty list' % PATH)


def test_measurement_entry_not_a_mapping() -> None:
    assert only(errors_for(measurements=['sha384:00'])).startswith('%s.measurements[0]: expected a mapping' % PATH)


@pytest.mark.parametrize('index', [0, 255, -1, '1', True])
def test_bad_measurement_index(index: t.Any) -> None:
    assert only(errors_for(measurements=[{'index': index, 'digests': [D384]}])).startswith(
        '%s.measurements[0].index: expected a measurement index from 1 to 254' % PATH)


def test_digest_not_alg_colon_hex() -> None:
    entries = [{'index': 1, 'digests': [D384]}, {'index': 2, 'digests': ['0a' * 48]}]
    assert only(errors_for(measurements=entries)).startswith('%s.measurements[1].digests[0]: not "<alg>:<hex>"' % PATH)


def test_digest_with_unknown_algorithm() -> None:
    assert only(errors_for(measurements=[{'index': 1, 'digests': ['md5:' + '00' * 16]}])).startswith(
        "%s.measurements[0].digests[0]: unknown digest algorithm 'md5'" % PATH)


def test_digest_with_wrong_length() -> None:
    assert only(errors_for(measurements=[{'index': 1, 'digests': ['sha384:' + '00' * 32]}])) == (
        '%s.measurements[0].digests[0]: a sha384 digest has 96 hex digits, this one has 64' % PATH)


def test_digest_not_hex() -> None:
    assert 'not hexadecimal' in only(errors_for(measurements=[{'index': 1, 'digests': ['sha256:' + 'zz' * 32]}]))


def test_empty_digest_list() -> None:
    assert only(errors_for(measurements=[{'index': 1, 'digests': []}])) == (
        '%s.measurements[0].digests: empty list: an entry must allow at least one digest' % PATH)


def test_duplicate_digest() -> None:
    assert only(errors_for(measurements=[{'index': 1, 'digests': [D384, D384.upper().replace('SHA384', 'sha384')]}])).startswith(
        '%s.measurements[0].digests[1]: duplicate digest' % PATH)


def test_digest_algorithm_outside_measurement_hash_algos() -> None:
    entries = [{'index': 1, 'digests': ['sha256:' + '00' * 32]}]
    assert only(errors_for(measurements=entries, measurement_hash_algos=['sha384'])) == (
        '%s.measurements[0].digests[0]: digest algorithm sha256 is not in measurement_hash_algos (sha384)' % PATH)


def test_bad_date() -> None:
    assert only(errors_for(measurements=[{'index': 1, 'digests': [D384], 'valid_until': '30/06/2027'}])).startswith(
        '%s.measurements[0].valid_until: not a date (YYYY-MM-DD)' % PATH)


def test_impossible_calendar_date() -> None:
    assert only(errors_for(measurements=[{'index': 1, 'digests': [D384], 'valid_from': '2026-02-30'}])).startswith(
        '%s.measurements[0].valid_from: not a date' % PATH)


def test_valid_until_before_valid_from() -> None:
    entry = {'index': 1, 'digests': [D384], 'valid_from': '2026-06-01', 'valid_until': '2026-01-01'}
    assert only(errors_for(measurements=[entry])) == (
        '%s.measurements[0]: valid_until 2026-01-01 is before valid_from 2026-06-01' % PATH)


def test_unknown_key_in_entry() -> None:
    entry = {'index': 1, 'digests': [D384], 'valid_to': '2027-01-01'}
    assert only(errors_for(measurements=[entry])).startswith('%s.measurements[0].valid_to: unknown key; did you mean valid_from?' % PATH)


def test_missing_digests_in_entry() -> None:
    assert only(errors_for(measurements=[{'index': 1}])) == '%s.measurements[0]: missing required key digests' % PATH


def test_interface_unknown_key_and_wrong_type() -> None:
    errors = errors_for(interface={'p2p': False, 'ats': 'no', 'max_mmio_ranges': 'eight'})
    assert len(errors) == 3
    assert errors[0].startswith('%s.interface.p2p: unknown key (known: no_fw_update, ' % PATH)
    assert errors[1:] == [
        "%s.interface.ats: expected true or false, got a string" % PATH,
        '%s.interface.max_mmio_ranges: expected an integer >= 0, got a string' % PATH,
    ]


def test_crl_not_pem() -> None:
    assert only(errors_for(crls=['not a crl'])).startswith('%s.crls[0]: not a PEM CRL' % PATH)


def test_crl_pem_that_does_not_parse() -> None:
    text = '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n'
    assert only(errors_for(crls=[text])).startswith('%s.crls[0]: not a valid PEM CRL' % PATH)


def test_all_mistakes_are_reported_at_once_with_paths() -> None:
    data = {
        'trust_anchors': ['xyz'],
        'leaf_subject': 42,
        'measurements': [{'index': 1, 'digests': [D384]}, {'index': 2, 'digests': ['sha384:zz']}],
        'min_svn': -3,
        'colour': 'blue',
    }
    errors = validate_manifest(NAME, data)
    assert [error.split(':', 1)[0] for error in errors] == [
        '%s.colour' % PATH,
        '%s.trust_anchors[0]' % PATH,
        '%s.leaf_subject' % PATH,
        '%s.min_svn' % PATH,
        '%s.measurements[1].digests[0]' % PATH,
    ]
    with pytest.raises(ManifestError) as caught:
        load_manifest(NAME, data)
    text = str(caught.value)
    assert '\n' not in text
    assert text.startswith('%s: 5 errors in reference manifest: ' % PATH)
    assert caught.value.errors == errors


def test_manifests_errors_covers_every_manifest() -> None:
    good = base()
    bad = dict(base(), min_svn='3')
    errors = manifests_errors({'good': good, 'bad': bad})
    assert errors == ['reference_manifests.bad.min_svn: expected an integer >= 0, got a string']
    assert manifests_errors(['x']) == ['reference_manifests: expected a mapping of manifest name to manifest, got a list']


def test_pick_manifest_unknown_name() -> None:
    with pytest.raises(ManifestError) as caught:
        pick_manifest({'a': base()}, 'b')
    assert str(caught.value).endswith('reference_manifests.b: no such manifest (known: a)')


def test_yaml_dates_and_strings_mean_the_same_day() -> None:
    text = (
        'trust_anchors: ["%s"]\n'
        'leaf_subject: ".*"\n'
        'measurements:\n'
        '  - {index: 1, digests: ["%s"], valid_from: 2026-01-01, valid_until: 2026-06-30}\n'
        '  - {index: 1, digests: ["%s"], valid_from: "2026-01-01", valid_until: "2026-06-30"}\n'
    ) % (FP, D384, D384_B)
    manifest = load_manifest(NAME, yaml.safe_load(text))
    first, second = manifest.measurements
    assert first.validity.start == second.validity.start == dt.datetime(2026, 1, 1, tzinfo=UTC)
    assert first.validity.end == second.validity.end
    # valid_until names a whole day: the last microsecond of it is in, the next day is out
    assert first.validity.state(dt.datetime(2026, 6, 30, 23, 59, 59, tzinfo=UTC)) == 'active'
    assert first.validity.state(dt.datetime(2026, 7, 1, 0, 0, 0, tzinfo=UTC)) == 'expired'
    assert first.validity.state(dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)) == 'not_yet_valid'


def test_timestamps_with_offsets() -> None:
    entry = {'index': 1, 'digests': [D384], 'valid_until': '2026-07-01T12:00:00+02:00'}
    manifest = load_manifest(NAME, dict(base(), measurements=[entry]))
    assert manifest.measurements[0].validity.end == dt.datetime(2026, 7, 1, 10, 0, tzinfo=UTC)


def test_prune_removes_expired_entries_and_keeps_the_last_one_of_an_index() -> None:
    data = dict(base(), measurements=[
        {'index': 1, 'digests': [D384], 'valid_until': '2026-06-30', 'description': 'fw old'},
        {'index': 1, 'digests': [D384_B], 'valid_from': '2026-05-01', 'description': 'fw new'},
        {'index': 2, 'digests': ['sha384:' + '0c' * 48], 'valid_until': '2026-01-31', 'description': 'only one'},
    ])
    original = copy.deepcopy(data)
    result = prune_expired(NAME, data, dt.datetime(2026, 9, 1, tzinfo=UTC))
    assert data == original  # the input is not modified
    assert [entry['description'] for entry in result['manifest']['measurements']] == ['fw new', 'only one']
    assert [(item['index'], item['description']) for item in result['removed']] == [(1, 'fw old')]
    assert [(item['index'], item['description']) for item in result['kept']] == [(2, 'only one')]
    assert 'last entry for index 2' in result['kept'][0]['reason']
    assert validate_manifest(NAME, result['manifest']) == []


def test_prune_before_expiry_removes_nothing() -> None:
    data = dict(base(), measurements=[{'index': 1, 'digests': [D384], 'valid_until': '2026-06-30'},
                                      {'index': 1, 'digests': [D384_B]}])
    result = prune_expired(NAME, data, dt.datetime(2026, 6, 30, 18, 0, tzinfo=UTC))
    assert result['removed'] == [] and result['kept'] == []
    assert result['manifest']['measurements'] == data['measurements']


def test_prune_rejects_an_invalid_manifest() -> None:
    with pytest.raises(ManifestError):
        prune_expired(NAME, dict(base(), min_svn=-1), dt.datetime(2026, 9, 1, tzinfo=UTC))
