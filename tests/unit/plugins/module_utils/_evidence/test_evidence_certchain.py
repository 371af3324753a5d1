# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Table tests for the SPDM certificate chain parser, over hand-written DER."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.certchain import parse_cert_chain
from ansible_collections.coco.tdisp.tests.unit.plugins.module_utils._evidence import evidence_vectors as v


def error_of(*args, **kwargs) -> str:
    with pytest.raises(EvidenceError) as info:
        parse_cert_chain(*args, **kwargs)
    assert str(info.value).startswith('evidence cert chain: ')
    return str(info.value)


def chain(root_hash: bytes, *certs: bytes) -> bytes:
    """Length (u16 LE, whole chain), Reserved, RootHash, certificates."""
    body = root_hash + b''.join(certs)
    return (4 + len(body)).to_bytes(2, 'little') + b'\x00\x00' + body


def test_chain_48_every_field():
    result = parse_cert_chain(v.CHAIN_48)
    json.dumps(result)
    assert result == {
        'length': 604,
        'hash_size': 48,
        'root_hash': v.ROOT_HASH_48.hex(),
        'root_hash_algo': None,            # 0x48 * 48 is no digest of the first certificate
        'certificates': [base64.b64encode(c).decode('ascii') for c in (v.CERT_SHORT, v.CERT_LONG_81, v.CERT_LONG_82)],
    }
    assert parse_cert_chain(v.CHAIN_48, hash_size=48) == result


@pytest.mark.parametrize('algo, size', [('sha256', 32), ('sha384', 48), ('sha512', 64), ('sha3_256', 32), ('sha3_384', 48), ('sha3_512', 64)])
def test_root_hash_algorithm_is_recognised(algo, size):
    root_hash = hashlib.new(algo, v.CERT_SHORT).digest()
    result = parse_cert_chain(chain(root_hash, v.CERT_SHORT, v.CERT_LONG_81))
    assert (result['hash_size'], result['root_hash_algo'], result['root_hash']) == (size, algo, root_hash.hex())
    assert len(result['certificates']) == 2


def test_single_certificate_chain():
    result = parse_cert_chain(chain(bytes(32), v.CERT_SHORT), hash_size=32)
    assert result['certificates'] == [base64.b64encode(v.CERT_SHORT).decode('ascii')]


# A 16-byte DER certificate: with it as the tail of a 48-byte RootHash, the chain also splits after 32 bytes.
CERT_16 = bytes.fromhex('30 0e 30 02 05 00 30 02 05 00 03 04 00 00 00 00')


def test_ambiguous_hash_size_is_an_error():
    data = chain(bytes([0x01]) * 32 + CERT_16, v.CERT_SHORT)
    assert 'ambiguous: the certificates split exactly after a RootHash of 32 or 48 bytes; pass hash_size' in error_of(data)
    assert parse_cert_chain(data, hash_size=48)['hash_size'] == 48
    assert len(parse_cert_chain(data, hash_size=32)['certificates']) == 2


def test_ambiguity_resolved_by_root_hash():
    # With H = 32 the first certificate is CERT_16 and the first 32 bytes are its SHA-256 digest.
    data = chain(hashlib.sha256(CERT_16).digest() + CERT_16, v.CERT_SHORT)
    result = parse_cert_chain(data)
    assert (result['hash_size'], result['root_hash_algo']) == (32, 'sha256')
    assert len(result['certificates']) == 2


def test_no_hash_size_fits():
    message = error_of(chain(bytes(40), v.CERT_SHORT))
    assert 'RootHash at offset 4: no RootHash size in 32, 48, 64 leaves a sequence of DER certificates' in message
    assert 'H=32' in message and 'H=48' in message and 'H=64' not in message   # 4 + 64 is past the end


def test_every_truncation_fails():
    for size in range(len(v.CHAIN_48)):
        error_of(v.CHAIN_48[:size])
        error_of(v.CHAIN_48[:size], hash_size=48)


@pytest.mark.parametrize('data, text', [
    (b'', 'Length at offset 0: truncated'),
    (b'\x05', 'Length at offset 0: truncated'),
    (b'\x05\x00', 'Reserved at offset 2: truncated'),
    (b'\x5d\x02\x00\x00' + v.CHAIN_48[4:], 'Length at offset 0: the chain says 605 bytes but the object holds 604'),
    (v.CHAIN_48 + b'\x00', 'the chain says 604 bytes but the object holds 605'),
    (chain(bytes(48)), 'H=32: Certificates[0] at offset 36: tag 0x00 is not a DER SEQUENCE (0x30)'),
    (chain(bytes(20)), 'no RootHash size in 32, 48, 64 leaves a sequence of DER certificates (the object is too short)'),
])
def test_header_errors(data, text):
    assert text in error_of(data)


def test_root_hash_longer_than_the_chain():
    assert 'RootHash at offset 4: truncated' in error_of(chain(bytes(10)), hash_size=48)
    assert 'Certificates at offset 52: no certificate after RootHash' in error_of(chain(bytes(48)), hash_size=48)


FIRST = 52   # offset of the first certificate in CHAIN_48 with H = 48


@pytest.mark.parametrize('cert, text', [
    (bytes.fromhex('31 0d') + v.CERT_SHORT[2:], 'Certificates[0] at offset 52: tag 0x31 is not a DER SEQUENCE (0x30)'),
    (bytes.fromhex('3f 0d') + v.CERT_SHORT[2:], 'high-tag-number form 0x3f'),
    (bytes.fromhex('30 80') + v.CERT_SHORT[2:] + b'\x00\x00', 'Certificates[0] at offset 53: indefinite length is not DER'),
    (bytes.fromhex('30 81 0d') + v.CERT_SHORT[2:], 'length 13 is not minimally encoded'),
    (bytes.fromhex('30 82 00 0d') + v.CERT_SHORT[2:], 'length 13 is not minimally encoded'),
    (bytes.fromhex('30 85 00 00 00 00 0d') + v.CERT_SHORT[2:], 'length of 5 length octets is too large'),
    (bytes.fromhex('30 0e') + v.CERT_SHORT[2:], 'DER length 14 overruns the chain (13 bytes left)'),
    (bytes.fromhex('30 0d 31 03 02 01 01 30 02 05 00 03 02 00 ab'), 'Certificates[0].tbsCertificate at offset 54: tag 0x31, expected 0x30'),
    (bytes.fromhex('30 0d 30 03 02 01 01 04 02 05 00 03 02 00 ab'), 'Certificates[0].signatureAlgorithm at offset 59: tag 0x04'),
    (bytes.fromhex('30 0d 30 03 02 01 01 30 02 05 00 04 02 00 ab'), 'Certificates[0].signatureValue at offset 63: tag 0x04, expected 0x03'),
    (bytes.fromhex('30 0f 30 03 02 01 01 30 02 05 00 03 02 00 ab 05 00'), 'Certificates[0] at offset 67: 2 unexpected trailing bytes'),
    (bytes.fromhex('30 0b 30 03 02 01 01 30 02 05 00 03 02'), 'Certificates[0].signatureValue at offset 64: DER length 2 overruns'),
    (bytes.fromhex('30 09 30 03 02 01 01 30 02 05 00'),
     'Certificates[0].signatureValue tag at offset 63: truncated: needs 1 bytes, 0 remain before the end set by Certificates[0] length'),
])
def test_der_errors_in_the_first_certificate(cert, text):
    assert text in error_of(chain(v.ROOT_HASH_48, cert), hash_size=48)


def test_der_error_in_a_later_certificate():
    data = chain(v.ROOT_HASH_48, v.CERT_SHORT, bytes.fromhex('30 03 02 01 01'))
    assert 'Certificates[1].tbsCertificate at offset 69: tag 0x02, expected 0x30' in error_of(data, hash_size=48)


@pytest.mark.parametrize('hash_size', [0, -1, True, '48', 4.8])
def test_bad_hash_size_argument(hash_size):
    assert 'argument must be a positive integer or None' in error_of(v.CHAIN_48, hash_size=hash_size)


def test_not_bytes():
    assert 'expected bytes, got list' in error_of([1, 2, 3])
