# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Table tests for the VCA and measurements parsers, over hand-written byte strings."""

from __future__ import annotations

import json

import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.spdm import parse_measurements, parse_vca
from ansible_collections.coco.tdisp.tests.unit.plugins.module_utils._evidence import evidence_vectors as v


def patch(data: bytes, offset: int, new: bytes) -> bytes:
    """``data`` with the bytes at ``offset`` replaced by ``new``."""
    assert offset + len(new) <= len(data)
    return data[:offset] + new + data[offset + len(new):]


def error_of(func, *args, **kwargs) -> EvidenceError:
    with pytest.raises(EvidenceError) as info:
        func(*args, **kwargs)
    message = str(info.value)
    assert '\n' not in message
    return info.value


# ------------------------------------------------------------------------------------------------ VCA, happy paths

def test_vca_12_every_field():
    result = parse_vca(v.VCA_12)
    json.dumps(result)
    caps = result['responder_capabilities']
    assert result['version'] == '1.2'
    assert result['versions'] == ['1.1', '1.2']
    assert result['base_hash_algo'] == 'sha384'
    assert result['base_asym_algo'] == 'ecdsa_p384'
    assert result['measurement_hash_algo'] == 'sha384'
    assert result['measurement_spec'] == 'dmtf'
    assert result['hash_size'] == 48
    assert result['measurement_hash_size'] == 48
    assert result['signature_size'] == 96
    assert result['opaque_data_format'] == 'general'
    assert result['mel_specification'] is None
    assert result['length'] == len(v.VCA_12) == 154
    assert caps['raw'] == 0x62D6
    assert caps['meas_cap'] == 'signed'
    assert caps['ct_exponent'] == 12
    assert caps['data_transfer_size'] == 2048
    assert caps['max_spdm_msg_size'] == 131072
    expected_true = {'cert_cap', 'chal_cap', 'encrypt_cap', 'mac_cap', 'key_ex_cap', 'hbeat_cap', 'key_upd_cap'}
    for name, value in caps.items():
        if isinstance(value, bool):
            assert value is (name in expected_true), name
    assert caps['psk_cap'] == 'none'
    assert caps['ep_info_cap'] == 'none'
    assert caps['multi_key_cap'] == 'none'
    assert result['requester_capabilities'] == {'raw': 0x62C6, 'ct_exponent': 20, 'data_transfer_size': 4096, 'max_spdm_msg_size': 65536}


def test_vca_13_supported_algorithms_block_and_extended_request_algorithms():
    result = parse_vca(v.VCA_13)
    caps = result['responder_capabilities']
    assert result['version'] == '1.3'
    assert result['versions'] == ['1.2', '1.3']   # 1.3.0 and 1.3.1 count once
    assert (result['base_hash_algo'], result['base_asym_algo'], result['measurement_hash_algo']) == ('sha256', 'ecdsa_p256', 'raw_only')
    assert (result['hash_size'], result['signature_size'], result['measurement_hash_size']) == (32, 64, None)
    assert result['mel_specification'] == 'dmtf'
    assert result['opaque_data_format'] == 'none'
    assert caps['meas_cap'] == 'unsigned'
    assert caps['ep_info_cap'] == 'reserved'
    assert [caps[n] for n in ('mel_cap', 'event_cap', 'get_key_pair_info_cap', 'set_key_pair_info_cap')] == [True] * 4
    assert caps['chunk_cap'] is False


def test_vca_11_short_capabilities():
    result = parse_vca(v.VCA_11)
    assert result['version'] == '1.1'
    assert (result['base_hash_algo'], result['base_asym_algo']) == ('sha512', 'rsapss_3072')
    assert (result['hash_size'], result['signature_size']) == (64, 384)
    assert result['measurement_hash_algo'] is None and result['measurement_spec'] is None
    assert result['responder_capabilities']['meas_cap'] == 'none'
    assert result['responder_capabilities']['data_transfer_size'] is None
    assert result['requester_capabilities'] == {'raw': 6, 'ct_exponent': 8, 'data_transfer_size': None, 'max_spdm_msg_size': None}


def test_vca_10_header_only_get_capabilities():
    result = parse_vca(v.VCA_10)
    assert (result['version'], result['versions']) == ('1.0', ['1.0'])
    assert (result['base_hash_algo'], result['base_asym_algo'], result['measurement_hash_algo']) == ('sha384', 'ecdsa_p384', 'sha384')
    assert result['requester_capabilities'] == {'raw': None, 'ct_exponent': None, 'data_transfer_size': None, 'max_spdm_msg_size': None}
    assert (result['responder_capabilities']['ct_exponent'], result['responder_capabilities']['meas_cap']) == (5, 'signed')
    assert result['opaque_data_format'] == 'none'
    assert result['length'] == len(v.VCA_10) == 4 + 8 + 4 + 12 + 32 + 36


@pytest.mark.parametrize('bit, name', [(0x00000400, 'psk'), (0x00000800, 'psk_with_context'), (0x00000C00, 'reserved')])
def test_vca_psk_cap_values(bit, name):
    flags = (0x62D6 | bit).to_bytes(4, 'little')
    assert parse_vca(patch(v.VCA_12, v.OFF_CAPABILITIES + 8, flags))['responder_capabilities']['psk_cap'] == name


@pytest.mark.parametrize('kind, expected', [(bytearray, 'sha384'), (memoryview, 'sha384')])
def test_vca_accepts_buffer_types(kind, expected):
    assert parse_vca(kind(v.VCA_12))['base_hash_algo'] == expected


# ------------------------------------------------------------------------------------------------ VCA, truncation

def test_vca_every_truncation_fails():
    for size in range(len(v.VCA_12)):
        error_of(parse_vca, v.VCA_12[:size])


@pytest.mark.parametrize('size, field', [
    (0, 'GET_VERSION.SPDMVersion'),
    (1, 'GET_VERSION.RequestResponseCode'),
    (4, 'VERSION.SPDMVersion'),
    (8, 'VERSION.Reserved'),
    (9, 'VERSION.VersionNumberEntryCount'),
    (10, 'VERSION.VersionNumberEntry'),
    (12, 'VERSION.VersionNumberEntry'),
    (14, 'GET_CAPABILITIES.SPDMVersion'),
    (18, 'GET_CAPABILITIES.Reserved'),
    (19, 'GET_CAPABILITIES.CTExponent'),
    (20, 'GET_CAPABILITIES.Reserved2'),
    (22, 'GET_CAPABILITIES.Flags'),
    (26, 'GET_CAPABILITIES.DataTransferSize'),
    (30, 'GET_CAPABILITIES.MaxSPDMmsgSize'),
    (34, 'CAPABILITIES.SPDMVersion'),
    (42, 'CAPABILITIES.Flags'),
    (46, 'CAPABILITIES.DataTransferSize'),
    (50, 'CAPABILITIES.MaxSPDMmsgSize'),
    (54, 'NEGOTIATE_ALGORITHMS.SPDMVersion'),
    (58, 'NEGOTIATE_ALGORITHMS.Length'),
    (60, 'NEGOTIATE_ALGORITHMS.Length'),     # Length 48 overruns what is left
    (101, 'NEGOTIATE_ALGORITHMS.Length'),
    (102, 'ALGORITHMS.SPDMVersion'),
    (106, 'ALGORITHMS.Length'),
    (108, 'ALGORITHMS.Length'),
    (153, 'ALGORITHMS.Length'),
])
def test_vca_truncation_names_the_field(size, field):
    err = error_of(parse_vca, v.VCA_12[:size])
    assert field in str(err)
    assert str(err).startswith('evidence vca: ')
    assert err.field.startswith(field)


def test_vca_trailing_bytes():
    err = error_of(parse_vca, v.VCA_12 + b'\x00')
    assert 'trailing' in str(err) and 'offset 154' in str(err)


# ------------------------------------------------------------------------------------------------ VCA, wrong codes and versions

@pytest.mark.parametrize('offset, message', [
    (1, 'GET_VERSION'), (v.OFF_VERSION + 1, 'VERSION'), (v.OFF_GET_CAPABILITIES + 1, 'GET_CAPABILITIES'),
    (v.OFF_CAPABILITIES + 1, 'CAPABILITIES'), (v.OFF_NEGOTIATE + 1, 'NEGOTIATE_ALGORITHMS'), (v.OFF_ALGORITHMS + 1, 'ALGORITHMS'),
])
def test_vca_wrong_request_response_code(offset, message):
    err = error_of(parse_vca, patch(v.VCA_12, offset, b'\x05'))
    assert '%s.RequestResponseCode at offset %d' % (message, offset) in str(err)
    assert 'code 0x05' in str(err)


def test_vca_error_response_instead_of_capabilities():
    err = error_of(parse_vca, patch(v.VCA_12, v.OFF_CAPABILITIES + 1, b'\x7f\x41'))
    assert 'SPDM ERROR response (ErrorCode 0x41)' in str(err)


@pytest.mark.parametrize('offset, value, text', [
    (0, b'\x11', 'GET_VERSION.SPDMVersion'),                         # GET_VERSION must be 1.0
    (v.OFF_VERSION, b'\x12', 'VERSION.SPDMVersion'),                 # VERSION must be 1.0
    (v.OFF_GET_CAPABILITIES, b'\x14', 'is not one of'),              # 1.4 is unknown to the parser
    (v.OFF_GET_CAPABILITIES, b'\x10', 'was not offered in VERSION'),  # 1.0 not in the VERSION list
    (v.OFF_CAPABILITIES, b'\x11', 'CAPABILITIES.SPDMVersion'),       # versions differ between messages
    (v.OFF_ALGORITHMS, b'\x13', 'ALGORITHMS.SPDMVersion'),
])
def test_vca_versions(offset, value, text):
    assert text in str(error_of(parse_vca, patch(v.VCA_12, offset, value)))


def test_vca_no_version_entries():
    assert 'no version entries' in str(error_of(parse_vca, patch(v.VCA_12, v.OFF_VERSION + 5, b'\x00')))


# ------------------------------------------------------------------------------------------------ VCA, algorithms

ALG = v.OFF_ALGORITHMS


@pytest.mark.parametrize('offset, value, text', [
    (ALG + 16, b'\x80\x00\x00\x00', 'BaseHashSel at offset 118: unknown algorithm bit 0x00000080'),
    (ALG + 16, b'\x03\x00\x00\x00', 'BaseHashSel at offset 118: more than one algorithm selected'),
    (ALG + 16, b'\x10\x00\x00\x00', 'sha3_384 was selected but not offered'),
    (ALG + 12, b'\x00\x10\x00\x00', 'BaseAsymSel at offset 114: unknown algorithm bit 0x00001000'),
    (ALG + 12, b'\x10\x00\x00\x00', 'BaseAsymSel'),                   # ecdsa_p256 offered: accepted (checked below)
    (ALG + 12, b'\x01\x00\x00\x00', 'rsassa_2048 was selected but not offered'),
    (ALG + 8, b'\x00\x01\x00\x00', 'MeasurementHashAlgo at offset 110: unknown algorithm bit 0x00000100'),
    (ALG + 8, b'\x06\x00\x00\x00', 'MeasurementHashAlgo at offset 110: more than one'),
    (ALG + 6, b'\x02', 'unknown measurement specification 0x02'),
    (ALG + 8, b'\x00\x00\x00\x00', 'supports measurements but selected no measurement hash'),
    (ALG + 6, b'\x00', 'supports measurements but selected no measurement hash or specification'),
    (ALG + 12, b'\x00\x00\x00\x00', 'signs measurements but selected no signature'),
    (ALG + 32, b'\x01', 'extended (non-DMTF) algorithm'),
    (ALG + 33, b'\x02', 'at most one extended algorithm'),
    (v.OFF_CAPABILITIES + 8, b'\xde\x62', 'MEAS_CAP at offset 42: reserved value 3'),
])
def test_vca_algorithm_selection(offset, value, text):
    data = patch(v.VCA_12, offset, value)
    if text == 'BaseAsymSel':
        assert parse_vca(data)['base_asym_algo'] == 'ecdsa_p256'
        assert parse_vca(data)['signature_size'] == 64
        return
    assert text in str(error_of(parse_vca, data))


@pytest.mark.parametrize('bits, name, size', [
    (0x01, 'sha256', 32), (0x02, 'sha384', 48), (0x04, 'sha512', 64),
])
def test_vca_every_offered_base_hash(bits, name, size):
    result = parse_vca(patch(v.VCA_12, ALG + 16, bytes([bits])))
    assert (result['base_hash_algo'], result['hash_size']) == (name, size)


@pytest.mark.parametrize('bit, name, size', [
    (0x01, 'raw_only', None), (0x02, 'sha256', 32), (0x04, 'sha384', 48), (0x08, 'sha512', 64),
    (0x10, 'sha3_256', 32), (0x20, 'sha3_384', 48), (0x40, 'sha3_512', 64), (0x80, 'sm3_256', 32),
])
def test_vca_every_measurement_hash(bit, name, size):
    result = parse_vca(patch(v.VCA_12, ALG + 8, bytes([bit])))
    assert (result['measurement_hash_algo'], result['measurement_hash_size']) == (name, size)


@pytest.mark.parametrize('bit, name, size', [
    (0x001, 'rsassa_2048', 256), (0x002, 'rsapss_2048', 256), (0x004, 'rsassa_3072', 384), (0x008, 'rsapss_3072', 384),
    (0x010, 'ecdsa_p256', 64), (0x020, 'rsassa_4096', 512), (0x040, 'rsapss_4096', 512), (0x080, 'ecdsa_p384', 96),
    (0x100, 'ecdsa_p521', 132), (0x200, 'sm2_p256', 64), (0x400, 'eddsa_ed25519', 64), (0x800, 'eddsa_ed448', 114),
])
def test_vca_every_base_asym(bit, name, size):
    offered = patch(v.VCA_12, v.OFF_NEGOTIATE + 8, b'\xff\x0f\x00\x00')      # requester offers all 12
    result = parse_vca(patch(offered, ALG + 12, bit.to_bytes(4, 'little')))
    assert (result['base_asym_algo'], result['signature_size']) == (name, size)


@pytest.mark.parametrize('bit, name, size', [
    (0x08, 'sha3_256', 32), (0x10, 'sha3_384', 48), (0x20, 'sha3_512', 64), (0x40, 'sm3_256', 32),
])
def test_vca_every_other_base_hash(bit, name, size):
    offered = patch(v.VCA_12, v.OFF_NEGOTIATE + 12, b'\x7f\x00\x00\x00')
    result = parse_vca(patch(offered, ALG + 16, bytes([bit])))
    assert (result['base_hash_algo'], result['hash_size']) == (name, size)


# ------------------------------------------------------------------------------------------------ VCA, lengths

@pytest.mark.parametrize('offset, value, text', [
    (v.OFF_NEGOTIATE + 4, b'\x1f\x00', 'length 31 is below the 32-byte fixed part'),
    (v.OFF_NEGOTIATE + 4, b'\x00\x01', 'length 256 overruns the object'),
    (v.OFF_NEGOTIATE + 4, b'\x2c\x00',
     'AlgStruct[3].AlgType at offset 98: truncated: needs 1 bytes, 0 remain before the end set by NEGOTIATE_ALGORITHMS.Length'),
    (v.OFF_NEGOTIATE + 2, b'\x03', 'length 48 but the fields take 44 bytes'),        # Param1: 3 AlgStructs
    (v.OFF_NEGOTIATE + 2, b'\x09', 'AlgStruct[4]'),                                   # 9 AlgStructs run into ALGORITHMS
    (v.OFF_NEGOTIATE + 45, b'\x2f', 'NEGOTIATE_ALGORITHMS.AlgStruct[3].AlgSupported at offset 100: truncated'),  # 15 external algs
    (v.OFF_NEGOTIATE + 28, b'\x01', 'NEGOTIATE_ALGORITHMS.AlgStruct[3]'),            # ExtAsymCount 1: 4 more bytes
    (v.OFF_NEGOTIATE + 45, b'\x00', 'length 48 but the fields take 46 bytes'),        # AlgCount 0: 2 bytes short
    (ALG + 4, b'\x23\x00', 'length 35 is below the 36-byte fixed part'),
    (ALG + 4, b'\x38\x00', 'length 56 overruns the object (52 bytes left)'),
    (ALG + 4, b'\x30\x00',
     'ALGORITHMS.AlgStruct[3].AlgType at offset 150: truncated: needs 1 bytes, 0 remain before the end set by ALGORITHMS.Length'),
    (ALG + 49, b'\x10', 'length 52 but the fields take 51 bytes'),     # last AlgCount says 1 fixed byte
    (ALG + 2, b'\x05', 'ALGORITHMS.AlgStruct[4].AlgType'),
])
def test_vca_length_fields(offset, value, text):
    assert text in str(error_of(parse_vca, patch(v.VCA_12, offset, value)))


def test_vca_supported_algorithms_flag_ignored_before_13():
    flagged = patch(patch(v.VCA_12, v.OFF_GET_CAPABILITIES + 2, b'\x01'), v.OFF_CAPABILITIES + 2, b'\x01')
    assert parse_vca(flagged) == parse_vca(v.VCA_12)


def test_vca_13_supported_algorithms_block_lengths():
    block = len(v.GET_VERSION) + len(v.VERSION_13) + 20 + 20
    too_small = patch(v.VCA_13, block + 2, b'\x1d\x00')
    assert 'length 29 is below the 30-byte fixed part' in str(error_of(parse_vca, too_small))
    too_big = patch(v.VCA_13, block + 2, b'\xff\x00')
    assert 'CAPABILITIES.SupportedAlgorithms' in str(error_of(parse_vca, too_big))
    # Without the request flag the block is not expected: its bytes are then read as NEGOTIATE_ALGORITHMS.
    not_requested = patch(v.VCA_13, len(v.GET_VERSION) + len(v.VERSION_13) + 2, b'\x00')
    assert 'NEGOTIATE_ALGORITHMS.RequestResponseCode' in str(error_of(parse_vca, not_requested))


def test_vca_not_bytes():
    assert 'expected bytes, got str' in str(error_of(parse_vca, 'not bytes'))


# ------------------------------------------------------------------------------------------------ measurements, happy paths

def test_measurements_12_every_field():
    assert len(v.RECORD_12) == v.RECORD_12_LENGTH
    result = parse_measurements(v.MEAS_OBJECT_12, hash_size=48, signature_size=96)
    json.dumps(result)
    assert result['spdm_version'] == '1.2'
    assert result['request'] == {
        'present': True, 'spdm_version': '1.2', 'attributes': 1, 'signature_requested': True, 'raw_bitstream_requested': False,
        'new_measurement_requested': False, 'operation': 'all', 'nonce': v.REQUESTER_NONCE.hex(), 'slot_id': 0, 'requester_context': None,
    }
    assert result['slot_id'] == 0
    assert result['content_changed'] == 'unchanged'
    assert result['total_measurement_indices'] is None
    assert result['number_of_blocks'] == 13
    assert [b['index'] for b in result['blocks']] == list(range(1, 14))
    assert result['firmware_svn'] == 5
    assert result['firmware_version'] == '1.2.3'
    assert result['nonce'] == v.RESPONDER_NONCE.hex()
    assert result['opaque'] == 'deadbeef'
    assert result['requester_context'] is None
    assert result['signature'] == v.SIGNATURE_96.hex()
    assert result['request_length'] == len(v.GET_MEASUREMENTS_12) == 37
    assert result['signed_length'] == v.MEAS_12_SIGNED_LENGTH == len(v.MEAS_OBJECT_12) - 96
    # The signed part ends exactly where the signature starts.
    assert v.MEAS_OBJECT_12[result['signed_length']:] == v.SIGNATURE_96


@pytest.mark.parametrize('number, type_name, type_code, raw, size, extra', [
    (0, 'immutable_rom', 0, False, 48, {}),
    (1, 'mutable_firmware', 1, False, 48, {}),
    (2, 'hardware_config', 2, False, 48, {}),
    (3, 'firmware_config', 3, False, 48, {}),
    (4, 'measurement_manifest', 4, False, 48, {}),
    (5, 'device_mode', 5, True, 16, {'device_mode': {'operational_mode_capabilities': 4, 'operational_mode_state': 4,
                                                     'device_mode_capabilities': 15, 'device_mode_state': 0}}),
    (6, 'firmware_version', 6, True, 5, {'version': '1.2.3'}),
    (7, 'firmware_svn', 7, True, 8, {'svn': 5}),
    (8, 'hash_extended', 8, False, 48, {}),
    (9, 'informational', 9, True, 4, {}),
    (10, 'structured_manifest', 10, True, 3, {}),
    (11, 'unknown', 11, False, 48, {}),
])
def test_measurements_every_dmtf_value_type(number, type_name, type_code, raw, size, extra):
    block = parse_measurements(v.MEAS_OBJECT_12)['blocks'][number]
    value = v.BLOCKS_12[number][7:]     # after the 4-byte block header and the 3-byte DMTF header
    expected = {'index': number + 1, 'spec_code': 1, 'spec': 'dmtf', 'type': type_name, 'type_code': type_code, 'raw': raw,
                'value': value.hex(), 'size': size}
    expected.update(extra)
    assert block == expected


def test_measurements_non_dmtf_block():
    assert parse_measurements(v.MEAS_OBJECT_12)['blocks'][12] == {
        'index': 13, 'spec_code': 2, 'spec': 'unknown', 'type': 'unknown', 'type_code': None, 'raw': None, 'value': '01020304', 'size': 4}


def test_measurements_13_context_slot_and_single_index():
    result = parse_measurements(v.MEAS_OBJECT_13, hash_size=32, signature_size=64)
    assert result['spdm_version'] == '1.3'
    assert result['request']['slot_id'] == 3 and result['slot_id'] == 3
    assert result['request']['operation'] == 2
    assert result['request']['new_measurement_requested'] is True
    assert result['request']['requester_context'] == v.REQUESTER_CONTEXT.hex()
    assert result['requester_context'] == v.REQUESTER_CONTEXT.hex()
    assert result['content_changed'] == 'changed'
    assert result['blocks'][0]['type'] == 'mutable_firmware'
    assert result['firmware_svn'] is None and result['firmware_version'] is None
    assert result['signed_length'] == len(v.MEAS_OBJECT_13) - 64
    assert result['request_length'] == 4 + 32 + 1 + 8


def test_measurements_10_without_slot_id_param():
    result = parse_measurements(v.MEAS_OBJECT_10, hash_size=48, signature_size=96)
    assert result['spdm_version'] == '1.0'
    assert result['request']['slot_id'] == 0 and result['request']['operation'] == 1
    assert result['request_length'] == 4 + 32
    assert result['content_changed'] == 'unknown'
    assert [b['index'] for b in result['blocks']] == [1]
    assert result['signature'] == (b'\x96' * 96).hex()


def test_measurements_unsigned():
    result = parse_measurements(v.MEAS_OBJECT_UNSIGNED, signature_size=96)
    assert result['request']['signature_requested'] is False
    assert result['request']['nonce'] is None and result['request']['slot_id'] is None
    assert result['signature'] is None
    assert result['signed_length'] == len(v.MEAS_OBJECT_UNSIGNED)
    assert result['request_length'] == 4
    assert result['firmware_svn'] == 42
    trailing = error_of(parse_measurements, v.MEAS_OBJECT_UNSIGNED + b'\x00' * 96)
    assert 'no signature was requested' in str(trailing) and 'trailing' in str(trailing)


def test_measurements_count_only():
    result = parse_measurements(v.MEAS_OBJECT_COUNT)
    assert result['request']['operation'] == 0
    assert result['total_measurement_indices'] == 7
    assert result['blocks'] == [] and result['number_of_blocks'] == 0


def test_measurements_response_only():
    result = parse_measurements(v.MEAS_RESPONSE_ONLY_11)
    assert result['request']['present'] is False
    assert result['request']['signature_requested'] is None
    assert result['request_length'] == 0
    assert result['spdm_version'] == '1.1'
    assert result['content_changed'] == 'unknown'
    assert result['firmware_version'] == 'v9.1'
    assert result['signature'] == (b'\x77' * 96).hex()
    assert result['signed_length'] == len(v.MEAS_RESPONSE_ONLY_11) - 96
    assert parse_measurements(v.MEAS_RESPONSE_ONLY_11, signature_size=96)['signature'] == (b'\x77' * 96).hex()
    assert 'trailing' in str(error_of(parse_measurements, v.MEAS_RESPONSE_ONLY_11, signature_size=95))
    unsigned = v.MEAS_RESPONSE_ONLY_11[:-96]
    assert parse_measurements(unsigned)['signature'] is None
    assert parse_measurements(unsigned, signature_size=96)['signature'] is None


# ------------------------------------------------------------------------------------------------ measurements, errors

def test_measurements_every_truncation_fails():
    for size in range(len(v.MEAS_OBJECT_12)):
        error_of(parse_measurements, v.MEAS_OBJECT_12[:size], signature_size=96)
    # Without signature_size a cut inside the signature is indistinguishable from a shorter signature,
    # but every cut up to the signature start still fails.
    for size in range(v.MEAS_12_SIGNED_LENGTH + 1):
        error_of(parse_measurements, v.MEAS_OBJECT_12[:size])


REQ = len(v.GET_MEASUREMENTS_12)   # 37: where MEASUREMENTS starts
REC = REQ + 8                      # 45: where the measurement record starts
TAIL = REC + v.RECORD_12_LENGTH    # 509: Nonce


@pytest.mark.parametrize('size, field', [
    (0, 'SPDM header'),
    (1, 'SPDM header'),
    (2, 'GET_MEASUREMENTS.Param1'),
    (3, 'GET_MEASUREMENTS.Param2'),
    (4, 'GET_MEASUREMENTS.Nonce'),
    (35, 'GET_MEASUREMENTS.Nonce'),
    (36, 'GET_MEASUREMENTS.SlotIDParam'),
    (REQ, 'MEASUREMENTS.SPDMVersion'),
    (REQ + 1, 'MEASUREMENTS.RequestResponseCode'),
    (REQ + 4, 'MEASUREMENTS.NumberOfBlocks'),
    (REQ + 5, 'MEASUREMENTS.MeasurementRecordLength'),
    (REC, 'MEASUREMENTS.MeasurementRecordLength'),        # record of 464 bytes overruns
    (TAIL, 'MEASUREMENTS.Nonce'),
    (TAIL + 32, 'MEASUREMENTS.OpaqueDataLength'),
    (TAIL + 34, 'MEASUREMENTS.OpaqueData'),
    (TAIL + 38, 'MEASUREMENTS.Signature'),
    (TAIL + 38 + 95, 'MEASUREMENTS.Signature'),
])
def test_measurements_truncation_names_the_field(size, field):
    err = error_of(parse_measurements, v.MEAS_OBJECT_12[:size], signature_size=96)
    assert field in str(err) and str(err).startswith('evidence measurements: ')


@pytest.mark.parametrize('offset, value, text', [
    (1, b'\x61', 'RequestResponseCode at offset 1: code 0x61, expected GET_MEASUREMENTS (0xe0) or MEASUREMENTS (0x60)'),
    (REQ + 1, b'\xe0', 'MEASUREMENTS.RequestResponseCode at offset 38: code 0xe0'),
    (REQ + 1, b'\x7f\x07', 'SPDM ERROR response (ErrorCode 0x07)'),
    (REQ, b'\x13', 'MEASUREMENTS.SPDMVersion at offset 37: version 1.3 (0x13), expected 1.2'),
    (0, b'\x14', 'GET_MEASUREMENTS.SPDMVersion at offset 0: SPDM version 1.4'),
    (36, b'\x09', 'slot 9 is neither 0..7 nor 15'),
    (36, b'\x02', 'slot 0 differs from the requested slot 2'),
    (REQ + 5, b'\xd1\x01\x00', 'trailing bytes'),                                  # record one byte longer than its blocks
    (REQ + 5, b'\xcf\x01\x00', 'MeasurementBlock[12].Measurement'),                # record one byte shorter
    (REQ + 5, b'\xff\xff\xff', 'record of 16777215 bytes overruns the object'),
    (REQ + 4, b'\x0e', 'MeasurementBlock[13].Index'),                              # NumberOfBlocks one too many
    (REQ + 4, b'\x0c', 'MeasurementRecord (NumberOfBlocks=12)'),                   # one too few: block 13 is left over
    (REC, b'\x00', 'MeasurementBlock[0].Index at offset 45: index 0x00 is reserved'),
    (REC, b'\xff', 'index 0xff is reserved'),
    (REC, b'\x02', 'MeasurementBlock[1].Index at offset 100: index 2 repeats block 0'),
    (REC + 2, b'\x34\x00', 'value size 48 does not match MeasurementSize 52 - 3'),
    (REC + 2, b'\x02\x00', 'size 2 is smaller than the 3-byte DMTF header'),
    (REC + 5, b'\x31\x00', 'value size 49 does not match'),
    (TAIL + 32, b'\x01\x04', 'length 1025 exceeds the 1024-byte maximum'),
    (TAIL + 32, b'\xff\x00', 'MEASUREMENTS.OpaqueData'),
])
def test_measurements_bad_fields(offset, value, text):
    err = error_of(parse_measurements, patch(v.MEAS_OBJECT_12, offset, value), signature_size=96)
    assert text in str(err)


def _block_offset(number: int) -> int:
    return REC + sum(len(b) for b in v.BLOCKS_12[:number])


@pytest.mark.parametrize('number, new_block, text', [
    (7, bytes.fromhex('08 01 0a 00 87 07 00') + bytes(7), 'security version number of 7 bytes, expected 8'),
    (5, bytes.fromhex('06 01 12 00 85 0f 00') + bytes(15), 'device mode of 15 bytes, expected 16'),
    (6, bytes.fromhex('07 01 08 00 86 05 00') + b'\xff1.23', 'firmware version is not UTF-8 text (byte 0)'),
])
def test_measurements_bad_raw_values(number, new_block, text):
    # Replace one block by a block one byte shorter (or equal) and fix MeasurementRecordLength.
    blocks = list(v.BLOCKS_12)
    blocks[number] = new_block
    record = b''.join(blocks)
    data = (v.GET_MEASUREMENTS_12 + v.MEASUREMENTS_12_HEADER[:5] + len(record).to_bytes(3, 'little') + record
            + v.MEASUREMENTS_12_TAIL + v.SIGNATURE_96)
    err = error_of(parse_measurements, data, signature_size=96)
    assert text in str(err)
    assert 'MeasurementBlock[%d].DMTFSpecMeasurementValue at offset %d' % (number, _block_offset(number) + 7) in str(err)


def test_measurements_version_string_trailing_nuls_stripped():
    blocks = list(v.BLOCKS_12)
    blocks[6] = bytes.fromhex('07 01 0a 00 86 07 00') + b'1.2.3\x00\x00'
    record = b''.join(blocks)
    data = (v.GET_MEASUREMENTS_12 + v.MEASUREMENTS_12_HEADER[:5] + len(record).to_bytes(3, 'little') + record
            + v.MEASUREMENTS_12_TAIL + v.SIGNATURE_96)
    assert parse_measurements(data, signature_size=96)['firmware_version'] == '1.2.3'


def test_measurements_digest_size_checked_against_hash_size():
    err = error_of(parse_measurements, v.MEAS_OBJECT_12, hash_size=32)
    assert 'MeasurementBlock[0].DMTFSpecMeasurementValue at offset 52: digest of 48 bytes, expected 32' in str(err)
    # Raw blocks and non-DMTF blocks are not digests: only the digest blocks are checked.
    assert parse_measurements(v.MEAS_OBJECT_12, hash_size=48)['number_of_blocks'] == 13


@pytest.mark.parametrize('signature_size, text', [(95, 'trailing'), (97, 'MEASUREMENTS.Signature'), (200, 'truncated')])
def test_measurements_signature_size(signature_size, text):
    assert text in str(error_of(parse_measurements, v.MEAS_OBJECT_12, signature_size=signature_size))


def test_measurements_signature_missing():
    unsigned_tail = v.MEAS_OBJECT_12[:v.MEAS_12_SIGNED_LENGTH]
    assert 'a signature was requested but the object ends here' in str(error_of(parse_measurements, unsigned_tail))


def test_measurements_13_context_and_slot_mismatch():
    context_at = len(v.MEAS_OBJECT_13) - 64 - 8
    err = error_of(parse_measurements, patch(v.MEAS_OBJECT_13, context_at, b'\x00'))
    assert 'MEASUREMENTS.RequesterContext at offset %d: differs' % context_at in str(err)
    response = len(v.GET_MEASUREMENTS_13)
    assert 'slot 4 differs from the requested slot 3' in str(error_of(parse_measurements, patch(v.MEAS_OBJECT_13, response + 3, b'\x14')))
    assert 'must return exactly that one block' in str(error_of(parse_measurements, patch(v.MEAS_OBJECT_13, 3, b'\x05')))


def test_measurements_count_only_with_blocks():
    data = patch(v.MEAS_OBJECT_12, 3, b'\x00')       # operation 0 (count) but 13 blocks returned
    assert '13 blocks returned for a count-only request' in str(error_of(parse_measurements, data))


@pytest.mark.parametrize('kwargs', [{'hash_size': 0}, {'hash_size': -48}, {'hash_size': True}, {'signature_size': '96'}, {'signature_size': 9.6}])
def test_measurements_bad_arguments(kwargs):
    assert 'argument must be a positive integer or None' in str(error_of(parse_measurements, v.MEAS_OBJECT_12, **kwargs))
