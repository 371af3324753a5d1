# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Tests for the object type table, the dispatching parser and the digest helper."""

from __future__ import annotations

import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError
from ansible_collections.coco.tdisp.plugins.module_utils._evidence import constants, objects
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.spdm import parse_vca
from ansible_collections.coco.tdisp.tests.unit.plugins.module_utils._evidence import evidence_vectors as v


def error_of(func, *args) -> str:
    with pytest.raises(EvidenceError) as info:
        func(*args)
    return str(info.value)


@pytest.mark.parametrize('name, number', [('cert%d' % n, n) for n in range(8)] + [('vca', 8), ('measurements', 9), ('report', 10)])
def test_type_table(name, number):
    # kernel-abi.md section 8: enum type cert0=0 .. cert7=7, vca=8, measurements=9, report=10; mask bit n = 1 << n.
    assert constants.TYPE_NUMBERS[name] == number
    assert constants.TYPE_NAMES[number] == name
    assert constants.type_flag(name) == 1 << number


def test_type_mask():
    assert constants.type_mask([]) == 0
    assert constants.type_mask(['cert0', 'vca', 'measurements', 'report']) == 0b11100000001
    assert constants.type_mask(constants.TYPE_NUMBERS) == 0x7FF
    assert len(constants.TYPE_NUMBERS) == 11


@pytest.mark.parametrize('name', ['cert8', 'VCA', '', None, 3, ['vca']])
def test_unknown_type(name):
    assert 'unknown evidence object type' in error_of(constants.type_flag, name)
    assert 'unknown evidence object type' in error_of(objects.parse_object, name, b'')


def test_digest():
    # FIPS 180-2 SHA-384 example "abc".
    assert objects.digest(b'abc') == ('sha384:cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed'
                                      '8086072ba1e7cc2358baeca134c825a7')
    assert objects.digest(bytearray(b'abc')) == objects.digest(b'abc')
    assert 'expected bytes' in error_of(objects.digest, 'abc')


@pytest.mark.parametrize('name', ['cert%d' % n for n in range(8)])
def test_dispatch_cert_slots(name):
    assert objects.parse_object(name, v.CHAIN_48)['hash_size'] == 48
    # With the VCA as context the hash size is taken, not inferred: sha256 (32) does not fit this chain.
    context = parse_vca(patch_hash_sha256(v.VCA_12))
    assert 'Certificates[0] at offset 36' in error_of(objects.parse_object, name, v.CHAIN_48, context)


def patch_hash_sha256(vca: bytes) -> bytes:
    at = v.OFF_ALGORITHMS + 16    # BaseHashSel
    return vca[:at] + b'\x01' + vca[at + 1:]


def test_dispatch_vca_report_measurements():
    vca = objects.parse_object('vca', v.VCA_12)
    assert vca['base_asym_algo'] == 'ecdsa_p384'
    assert objects.parse_object('report', v.REPORT)['mmio_range_count'] == 2
    # The VCA result is the context: measurement digests must be 48 bytes and the signature 96.
    assert objects.parse_object('measurements', v.MEAS_OBJECT_12, vca)['signature'] == v.SIGNATURE_96.hex()
    assert 'expected 48' in error_of(objects.parse_object, 'measurements', v.MEAS_OBJECT_13, vca)
    assert 'trailing' in error_of(objects.parse_object, 'measurements', v.MEAS_OBJECT_12, {'signature_size': 64})
    assert objects.parse_object('measurements', v.MEAS_OBJECT_12, None)['number_of_blocks'] == 13


@pytest.mark.parametrize('context, text', [
    ({'hash_size': 0}, 'context.hash_size: must be a positive integer or None'),
    ({'hash_size': '48'}, 'context.hash_size'),
    ({'hash_size': False}, 'context.hash_size'),
    ([('hash_size', 48)], 'context: expected a mapping or None, got list'),
])
def test_bad_context(context, text):
    assert text in error_of(objects.parse_object, 'cert0', v.CHAIN_48, context)


def test_bad_measurement_context():
    assert 'context.signature_size' in error_of(objects.parse_object, 'measurements', v.MEAS_OBJECT_12, {'signature_size': -1})
    assert 'context.measurement_hash_size' in error_of(objects.parse_object, 'measurements', v.MEAS_OBJECT_12, {'measurement_hash_size': 1.5})


def test_object_size_limit():
    too_big = bytes(constants.MAX_OBJECT_SIZE + 1)
    assert '16777217 bytes exceed the 16777216-byte maximum object size' in error_of(objects.parse_object, 'report', too_big)


def test_wrong_object_for_type():
    assert error_of(objects.parse_object, 'vca', v.REPORT).startswith('evidence vca: ')
    assert error_of(objects.parse_object, 'report', v.VCA_12).startswith('evidence report: ')
