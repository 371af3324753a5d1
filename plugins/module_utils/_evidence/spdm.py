# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Parsers for the SPDM evidence objects ``vca`` and ``measurements`` (private; may change at any time).

References, by name because section numbers move between releases:

* DMTF DSP0274 (SPDM) 1.2.1 and 1.3.0: "SPDM message format" (the 4-byte header SPDMVersion,
  RequestResponseCode, Param1, Param2), "GET_VERSION request and VERSION response messages",
  "GET_CAPABILITIES request and CAPABILITIES response messages" (the capability flag tables),
  "NEGOTIATE_ALGORITHMS request and ALGORITHMS response messages" (BaseAsymAlgo, BaseHashAlgo,
  MeasurementHashAlgo tables, the AlgStruct format), "GET_MEASUREMENTS request and MEASUREMENTS
  response messages" (section 10.11 in 1.2: the request attributes, the MEASUREMENTS response table,
  the measurement block and the DMTF measurement specification format with DMTFSpecMeasurementValueType).
* libspdm ``include/industry_standard/spdm.h`` for the same layouts as C structures
  (``spdm_version_response_t``, ``spdm_capabilities_response_t``, ``spdm_algorithms_response_t``,
  ``spdm_get_measurements_request_t``, ``spdm_measurements_response_t``,
  ``spdm_measurement_block_common_header_t``, ``spdm_measurement_block_dmtf_header_t``).

All integers in SPDM messages are little-endian. Output is JSON-serialisable: binary values are
lower-case hex strings. Every malformed input raises ``EvidenceError`` naming field and offset.
"""

from __future__ import annotations

import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._evidence._reader import Reader, as_bytes
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.spdm_tables import (
    ALGORITHMS, ATTR_NEW_MEASUREMENT_REQUESTED, ATTR_RAW_BITSTREAM_REQUESTED, ATTR_SIGNATURE_REQUESTED, BASE_ASYM_ALGOS, BASE_HASH_ALGOS,
    CAPABILITIES, CONTENT_CHANGED, DEVICE_MODE_SIZE, EP_INFO_CAP, ERROR, GET_CAPABILITIES, GET_MEASUREMENTS, GET_VERSION, MAX_OPAQUE_SIZE,
    MEASUREMENTS, MEASUREMENT_HASH_ALGOS, MEASUREMENT_SPEC_DMTF, MEASUREMENT_VALUE_TYPES, MEAS_CAP, MULTI_KEY_CAP, NEGOTIATE_ALGORITHMS, NONCE_SIZE,
    OPERATION_ALL, OPERATION_COUNT, PSK_CAP, REQUESTER_CONTEXT_SIZE, RESPONDER_BOOL_FLAGS, SUPPORTED_VERSIONS, SVN_SIZE, VALUE_TYPE_RAW_BIT, VERSION)


def version_text(value: int) -> str:
    """SPDMVersion byte 0x12 -> '1.2'."""
    return '%d.%d' % (value >> 4, value & 0x0F)


def _check_version(r: Reader, field: str, value: int, offset: int) -> None:
    if value not in SUPPORTED_VERSIONS:
        raise r.fail(field, 'SPDM version %s (0x%02x) is not one of %s' % (
            version_text(value), value, ', '.join(version_text(v) for v in SUPPORTED_VERSIONS)), offset)


def _header(r: Reader, message: str, code: int, version: t.Optional[int]) -> t.Tuple[int, int, int]:
    """Read the 4-byte SPDM header; check the code (and the version when given).

    Returns (version, param1, param2).
    """
    start = r.pos
    ver = r.u8('%s.SPDMVersion' % message)
    got = r.u8('%s.RequestResponseCode' % message)
    if got != code:
        if got == ERROR and (code & 0x80) == 0:
            # An ERROR response in place of the expected response: Param1 is the ErrorCode.
            detail = 'ErrorCode 0x%02x' % r.data[r.pos] if r.remaining else 'no ErrorCode'
            raise r.fail('%s.RequestResponseCode' % message, 'SPDM ERROR response (%s) where %s (0x%02x) was expected' % (detail, message, code),
                         start + 1)
        raise r.fail('%s.RequestResponseCode' % message, 'code 0x%02x, expected %s (0x%02x)' % (got, message, code), start + 1)
    if version is not None and ver != version:
        raise r.fail('%s.SPDMVersion' % message, 'version %s (0x%02x), expected %s' % (
            version_text(ver), ver, version_text(version)), start)
    param1 = r.u8('%s.Param1' % message)
    param2 = r.u8('%s.Param2' % message)
    return ver, param1, param2


def _select(r: Reader, field: str, value: int, table: t.Sequence[t.Tuple[int, str, t.Any]], offset: int,
            offered: t.Optional[int] = None) -> t.Optional[t.Tuple[str, t.Any]]:
    """Decode a selected-algorithm bit field: zero -> None; exactly one known bit -> (name, size)."""
    if value == 0:
        return None
    if value & (value - 1):
        raise r.fail(field, 'more than one algorithm selected (0x%08x)' % value, offset)
    for bit, name, size in table:
        if bit == value:
            if offered is not None and not offered & value:
                raise r.fail(field, '%s was selected but not offered in NEGOTIATE_ALGORITHMS (0x%08x)' % (name, offered), offset)
            return name, size
    raise r.fail(field, 'unknown algorithm bit 0x%08x' % value, offset)


def _skip_alg_structs(r: Reader, message: str, count: int) -> None:
    """Skip ``count`` AlgStruct entries: AlgType, AlgCount (bits 7:4 fixed byte count, 3:0 external count),
    AlgSupported[fixed], AlgExternal[4 * external] (DSP0274 "Algorithm request/response structure")."""
    for index in range(count):
        field = '%s.AlgStruct[%d]' % (message, index)
        r.u8(field + '.AlgType')
        alg_count = r.u8(field + '.AlgCount')
        r.skip((alg_count >> 4) + 4 * (alg_count & 0x0F), field + '.AlgSupported')


def _capabilities(flags: int) -> t.Dict[str, t.Any]:
    caps: t.Dict[str, t.Any] = {'raw': flags}
    for name, bit in RESPONDER_BOOL_FLAGS:
        caps[name] = bool(flags >> bit & 1)
    for name, (shift, names) in (('psk_cap', PSK_CAP), ('ep_info_cap', EP_INFO_CAP), ('multi_key_cap', MULTI_KEY_CAP)):
        caps[name] = names[flags >> shift & 3]
    return caps


def parse_vca(data: bytes) -> t.Dict[str, t.Any]:
    """Parse the VCA transcript: GET_VERSION, VERSION, GET_CAPABILITIES, CAPABILITIES,
    NEGOTIATE_ALGORITHMS, ALGORITHMS concatenated, nothing before, between or after them."""
    data = as_bytes(data, 'vca')
    r = Reader(data, 'vca')

    # GET_VERSION and VERSION always use SPDMVersion 0x10 (DSP0274 "GET_VERSION request and VERSION response").
    _header(r, 'GET_VERSION', GET_VERSION, 0x10)
    _header(r, 'VERSION', VERSION, 0x10)
    r.u8('VERSION.Reserved')
    count_at = r.pos
    count = r.u8('VERSION.VersionNumberEntryCount')
    if count == 0:
        raise r.fail('VERSION.VersionNumberEntryCount', 'no version entries', count_at)
    r.need(2 * count, 'VERSION.VersionNumberEntry')
    offered: t.List[int] = []
    for index in range(count):
        # VersionNumberEntry: bits 15:12 major, 11:8 minor, 7:4 update, 3:0 alpha.
        entry = r.u16('VERSION.VersionNumberEntry[%d]' % index)
        major_minor = entry >> 8
        if major_minor not in offered:
            offered.append(major_minor)

    # GET_CAPABILITIES: 4 bytes in 1.0, 12 in 1.1, 20 from 1.2 on.
    start = r.pos
    version, req_param1, _param2 = _header(r, 'GET_CAPABILITIES', GET_CAPABILITIES, None)
    _check_version(r, 'GET_CAPABILITIES.SPDMVersion', version, start)
    if version not in offered:
        raise r.fail('GET_CAPABILITIES.SPDMVersion', 'version %s was not offered in VERSION (%s)' % (
            version_text(version), ', '.join(version_text(v) for v in sorted(offered))), start)
    requester: t.Dict[str, t.Any] = {'raw': None, 'ct_exponent': None, 'data_transfer_size': None, 'max_spdm_msg_size': None}
    if version >= 0x11:
        r.u8('GET_CAPABILITIES.Reserved')
        requester['ct_exponent'] = r.u8('GET_CAPABILITIES.CTExponent')
        r.u16('GET_CAPABILITIES.Reserved2')
        requester['raw'] = r.u32('GET_CAPABILITIES.Flags')
    if version >= 0x12:
        requester['data_transfer_size'] = r.u32('GET_CAPABILITIES.DataTransferSize')
        requester['max_spdm_msg_size'] = r.u32('GET_CAPABILITIES.MaxSPDMmsgSize')

    # CAPABILITIES: 12 bytes up to 1.1, 20 from 1.2 on, plus the 1.3 SupportedAlgorithms block when
    # the requester asked for it (GET_CAPABILITIES Param1 bit 0) and the responder set Param1 bit 0.
    _v, rsp_param1, _p2 = _header(r, 'CAPABILITIES', CAPABILITIES, version)
    r.u8('CAPABILITIES.Reserved')
    ct_exponent = r.u8('CAPABILITIES.CTExponent')
    r.u16('CAPABILITIES.Reserved2')
    flags_at = r.pos
    flags = r.u32('CAPABILITIES.Flags')
    responder = _capabilities(flags)
    meas_cap = MEAS_CAP[1][flags >> MEAS_CAP[0] & 3]
    if meas_cap is None:
        raise r.fail('CAPABILITIES.Flags.MEAS_CAP', 'reserved value 3', flags_at)
    responder['meas_cap'] = meas_cap
    responder['ct_exponent'] = ct_exponent
    responder['data_transfer_size'] = None
    responder['max_spdm_msg_size'] = None
    if version >= 0x12:
        responder['data_transfer_size'] = r.u32('CAPABILITIES.DataTransferSize')
        responder['max_spdm_msg_size'] = r.u32('CAPABILITIES.MaxSPDMmsgSize')
    if version >= 0x13 and req_param1 & 0x01 and rsp_param1 & 0x01:
        # SupportedAlgorithms block: the NEGOTIATE_ALGORITHMS body without its 2-byte
        # SPDMVersion/RequestResponseCode; its Length (at block offset 2) covers the whole block.
        block_at = r.pos
        r.need(30, 'CAPABILITIES.SupportedAlgorithms')
        block_length = int.from_bytes(data[block_at + 2:block_at + 4], 'little')
        if block_length < 30:
            raise r.fail('CAPABILITIES.SupportedAlgorithms.Length', 'length %d is below the 30-byte fixed part' % block_length, block_at + 2)
        r.skip(block_length, 'CAPABILITIES.SupportedAlgorithms')

    # NEGOTIATE_ALGORITHMS: Length is the whole message; fixed part 32 bytes.
    start = r.pos
    _v, struct_count, _p2 = _header(r, 'NEGOTIATE_ALGORITHMS', NEGOTIATE_ALGORITHMS, version)
    length_at = r.pos
    length = r.u16('NEGOTIATE_ALGORITHMS.Length')
    if length < 32:
        raise r.fail('NEGOTIATE_ALGORITHMS.Length', 'length %d is below the 32-byte fixed part' % length, length_at)
    if start + length > r.end:
        raise r.fail('NEGOTIATE_ALGORITHMS.Length', 'length %d overruns the object (%d bytes left)' % (length, r.end - start), length_at)
    m = Reader(data, r.obj, r.pos, start + length, 'NEGOTIATE_ALGORITHMS.Length')   # the rest, bounded by Length
    m.u8('NEGOTIATE_ALGORITHMS.MeasurementSpecification')
    m.u8('NEGOTIATE_ALGORITHMS.OtherParamsSupport')
    offered_asym = m.u32('NEGOTIATE_ALGORITHMS.BaseAsymAlgo')
    offered_hash = m.u32('NEGOTIATE_ALGORITHMS.BaseHashAlgo')
    m.skip(12, 'NEGOTIATE_ALGORITHMS.Reserved')
    ext_asym = m.u8('NEGOTIATE_ALGORITHMS.ExtAsymCount')
    ext_hash = m.u8('NEGOTIATE_ALGORITHMS.ExtHashCount')
    m.u8('NEGOTIATE_ALGORITHMS.Reserved3')
    m.u8('NEGOTIATE_ALGORITHMS.MELspecification')
    m.skip(4 * (ext_asym + ext_hash), 'NEGOTIATE_ALGORITHMS.ExtAsym/ExtHash')
    _skip_alg_structs(m, 'NEGOTIATE_ALGORITHMS', struct_count)
    if m.pos != m.end:
        raise r.fail('NEGOTIATE_ALGORITHMS.Length', 'length %d but the fields take %d bytes' % (length, m.pos - start), length_at)
    r.pos = m.end

    # ALGORITHMS: Length is the whole message; fixed part 36 bytes.
    start = r.pos
    _v, struct_count, _p2 = _header(r, 'ALGORITHMS', ALGORITHMS, version)
    length_at = r.pos
    length = r.u16('ALGORITHMS.Length')
    if length < 36:
        raise r.fail('ALGORITHMS.Length', 'length %d is below the 36-byte fixed part' % length, length_at)
    if start + length > r.end:
        raise r.fail('ALGORITHMS.Length', 'length %d overruns the object (%d bytes left)' % (length, r.end - start), length_at)
    m = Reader(data, r.obj, r.pos, start + length, 'ALGORITHMS.Length')   # the rest, bounded by Length
    spec_at = m.pos
    meas_spec = m.u8('ALGORITHMS.MeasurementSpecificationSel')
    other_params = m.u8('ALGORITHMS.OtherParamsSelection')
    meas_hash_at = m.pos
    meas_hash = m.u32('ALGORITHMS.MeasurementHashAlgo')
    asym_at = m.pos
    asym = m.u32('ALGORITHMS.BaseAsymSel')
    hash_at = m.pos
    base_hash = m.u32('ALGORITHMS.BaseHashSel')
    m.skip(11, 'ALGORITHMS.Reserved')
    mel_spec = m.u8('ALGORITHMS.MELspecificationSel')
    ext_asym_at = m.pos
    ext_asym = m.u8('ALGORITHMS.ExtAsymSelCount')
    ext_hash = m.u8('ALGORITHMS.ExtHashSelCount')
    m.u16('ALGORITHMS.Reserved3')
    if ext_asym > 1 or ext_hash > 1:
        raise m.fail('ALGORITHMS.ExtAsymSelCount', 'a responder selects at most one extended algorithm of each kind', ext_asym_at)
    if ext_asym or ext_hash:
        raise m.fail('ALGORITHMS.ExtAsymSelCount', 'an extended (non-DMTF) algorithm was selected; unknown algorithm', ext_asym_at)
    _skip_alg_structs(m, 'ALGORITHMS', struct_count)
    if m.pos != m.end:
        raise r.fail('ALGORITHMS.Length', 'length %d but the fields take %d bytes' % (length, m.pos - start), length_at)
    r.pos = m.end
    r.done('ALGORITHMS (end of the VCA transcript)')

    hash_sel = _select(r, 'ALGORITHMS.BaseHashSel', base_hash, BASE_HASH_ALGOS, hash_at, offered_hash)
    asym_sel = _select(r, 'ALGORITHMS.BaseAsymSel', asym, BASE_ASYM_ALGOS, asym_at, offered_asym)
    meas_sel = _select(r, 'ALGORITHMS.MeasurementHashAlgo', meas_hash, MEASUREMENT_HASH_ALGOS, meas_hash_at)
    if meas_spec not in (0, MEASUREMENT_SPEC_DMTF):
        raise r.fail('ALGORITHMS.MeasurementSpecificationSel', 'unknown measurement specification 0x%02x' % meas_spec, spec_at)
    if meas_cap != 'none' and (meas_sel is None or meas_spec == 0):
        raise r.fail('ALGORITHMS.MeasurementHashAlgo', 'the responder supports measurements but selected no measurement hash or specification',
                     meas_hash_at)
    if meas_cap == 'signed' and (asym_sel is None or hash_sel is None):
        raise r.fail('ALGORITHMS.BaseAsymSel', 'the responder signs measurements but selected no signature or hash algorithm', asym_at)

    opaque_format = other_params & 0x0F
    return {
        'version': version_text(version),
        'versions': [version_text(v) for v in sorted(offered)],
        'base_hash_algo': hash_sel[0] if hash_sel else None,
        'base_asym_algo': asym_sel[0] if asym_sel else None,
        'measurement_hash_algo': meas_sel[0] if meas_sel else None,
        'measurement_spec': 'dmtf' if meas_spec == MEASUREMENT_SPEC_DMTF else None,
        'hash_size': hash_sel[1] if hash_sel else None,
        'measurement_hash_size': meas_sel[1] if meas_sel else None,
        'signature_size': asym_sel[1] if asym_sel else None,
        'opaque_data_format': {0: 'none', 1: 'vendor', 2: 'general'}.get(opaque_format, opaque_format),
        'mel_specification': 'dmtf' if mel_spec == 0x01 else (None if mel_spec == 0 else mel_spec),
        'responder_capabilities': responder,
        'requester_capabilities': requester,
        'length': len(data),
    }


def _decode_version_string(r: Reader, field: str, value: bytes, offset: int) -> str:
    try:
        return value.rstrip(b'\x00').decode('utf-8')
    except UnicodeDecodeError as exc:
        raise r.fail(field, 'firmware version is not UTF-8 text (byte %d)' % exc.start, offset) from None


def _parse_block(r: Reader, number: int, hash_size: t.Optional[int]) -> t.Dict[str, t.Any]:
    """One measurement block: Index, MeasurementSpecification, MeasurementSize, Measurement[size]."""
    name = 'MeasurementBlock[%d]' % number
    index_at = r.pos
    index = r.u8(name + '.Index')
    if index in (0x00, 0xFF):
        raise r.fail(name + '.Index', 'index 0x%02x is reserved' % index, index_at)
    spec = r.u8(name + '.MeasurementSpecification')
    size_at = r.pos
    size = r.u16(name + '.MeasurementSize')
    r.need(size, name + '.Measurement')
    block: t.Dict[str, t.Any] = {'index': index, 'spec_code': spec}
    if spec != MEASUREMENT_SPEC_DMTF:
        block.update({'spec': 'unknown', 'type': 'unknown', 'type_code': None, 'raw': None,
                      'value': r.take(size, name + '.Measurement').hex(), 'size': size})
        return block
    # DMTF measurement specification: DMTFSpecMeasurementValueType (1), DMTFSpecMeasurementValueSize (2), value.
    if size < 3:
        raise r.fail(name + '.MeasurementSize', 'size %d is smaller than the 3-byte DMTF header' % size, size_at)
    sub = Reader(r.data, r.obj, r.pos, r.pos + size, name + '.MeasurementSize')
    r.pos += size
    value_type = sub.u8(name + '.DMTFSpecMeasurementValueType')
    value_size_at = sub.pos
    value_size = sub.u16(name + '.DMTFSpecMeasurementValueSize')
    if value_size != size - 3:
        raise sub.fail(name + '.DMTFSpecMeasurementValueSize', 'value size %d does not match MeasurementSize %d - 3' % (value_size, size),
                       value_size_at)
    value_at = sub.pos
    value = sub.take(value_size, name + '.DMTFSpecMeasurementValue')
    type_code = value_type & 0x7F
    raw = bool(value_type & VALUE_TYPE_RAW_BIT)
    block.update({'spec': 'dmtf', 'type': MEASUREMENT_VALUE_TYPES.get(type_code, 'unknown'), 'type_code': type_code,
                  'raw': raw, 'value': value.hex(), 'size': value_size})
    if not raw:
        if hash_size is not None and value_size != hash_size:
            raise r.fail(name + '.DMTFSpecMeasurementValue', 'digest of %d bytes, expected %d' % (value_size, hash_size), value_at)
    elif type_code == 7:
        if value_size != SVN_SIZE:
            raise r.fail(name + '.DMTFSpecMeasurementValue', 'security version number of %d bytes, expected %d' % (value_size, SVN_SIZE),
                         value_at)
        block['svn'] = int.from_bytes(value, 'little')
    elif type_code == 6:
        block['version'] = _decode_version_string(r, name + '.DMTFSpecMeasurementValue', value, value_at)
    elif type_code == 5:
        if value_size != DEVICE_MODE_SIZE:
            raise r.fail(name + '.DMTFSpecMeasurementValue', 'device mode of %d bytes, expected %d' % (value_size, DEVICE_MODE_SIZE), value_at)
        fields = ('operational_mode_capabilities', 'operational_mode_state', 'device_mode_capabilities', 'device_mode_state')
        block['device_mode'] = {key: int.from_bytes(value[4 * i:4 * i + 4], 'little') for i, key in enumerate(fields)}
    return block


def _parse_request(r: Reader) -> t.Dict[str, t.Any]:
    """GET_MEASUREMENTS: header; Nonce (32) and SlotIDParam (1, from 1.1) only when a signature is
    requested; RequesterContext (8) from 1.3 in every request."""
    start = r.pos
    version, attributes, operation = _header(r, 'GET_MEASUREMENTS', GET_MEASUREMENTS, None)
    _check_version(r, 'GET_MEASUREMENTS.SPDMVersion', version, start)
    signed = bool(attributes & ATTR_SIGNATURE_REQUESTED)
    request: t.Dict[str, t.Any] = {
        'present': True,
        'spdm_version': version_text(version),
        'version_code': version,
        'attributes': attributes,
        'signature_requested': signed,
        'raw_bitstream_requested': bool(attributes & ATTR_RAW_BITSTREAM_REQUESTED),
        'new_measurement_requested': bool(attributes & ATTR_NEW_MEASUREMENT_REQUESTED),
        'operation': 'all' if operation == OPERATION_ALL else operation,
        'operation_code': operation,
        'nonce': None,
        'slot_id': None,
        'requester_context': None,
    }
    if signed:
        request['nonce'] = r.take(NONCE_SIZE, 'GET_MEASUREMENTS.Nonce').hex()
        if version >= 0x11:
            slot_at = r.pos
            slot = r.u8('GET_MEASUREMENTS.SlotIDParam') & 0x0F
            if slot > 7 and slot != 0x0F:
                raise r.fail('GET_MEASUREMENTS.SlotIDParam', 'slot %d is neither 0..7 nor 15 (provisioned key)' % slot, slot_at)
            request['slot_id'] = slot
        else:
            request['slot_id'] = 0
    if version >= 0x13:
        request['requester_context'] = r.take(REQUESTER_CONTEXT_SIZE, 'GET_MEASUREMENTS.RequesterContext').hex()
    return request


def parse_measurements(data: bytes, hash_size: t.Optional[int] = None, signature_size: t.Optional[int] = None) -> t.Dict[str, t.Any]:
    """Parse the ``measurements`` object: GET_MEASUREMENTS immediately followed by MEASUREMENTS, or the
    MEASUREMENTS response alone.

    ``hash_size`` is the measurement digest size (VCA ``measurement_hash_size``): when given, every
    digest block must have it. ``signature_size`` (VCA ``signature_size``) fixes the signature length;
    without it a present signature is the rest of the object.
    """
    data = as_bytes(data, 'measurements')
    r = Reader(data, 'measurements')
    for name, value in (('hash_size', hash_size), ('signature_size', signature_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise r.fail(name, 'argument must be a positive integer or None, got %r' % (value,), None)
    r.need(2, 'SPDM header')
    code = data[1]
    if code == GET_MEASUREMENTS:
        request = _parse_request(r)
    elif code == MEASUREMENTS:
        request = {'present': False, 'spdm_version': None, 'version_code': None, 'attributes': None, 'signature_requested': None,
                   'raw_bitstream_requested': None, 'new_measurement_requested': None, 'operation': None, 'operation_code': None,
                   'nonce': None, 'slot_id': None, 'requester_context': None}
    else:
        raise r.fail('RequestResponseCode', 'code 0x%02x, expected GET_MEASUREMENTS (0xe0) or MEASUREMENTS (0x60)' % code, 1)
    request_length = r.pos

    # MEASUREMENTS response (DSP0274 "MEASUREMENTS response message format").
    start = r.pos
    version, param1, param2 = _header(r, 'MEASUREMENTS', MEASUREMENTS, request['version_code'])
    _check_version(r, 'MEASUREMENTS.SPDMVersion', version, start)
    slot_id = param2 & 0x0F
    if request['present'] and request['signature_requested'] and version >= 0x11 and slot_id != request['slot_id']:
        raise r.fail('MEASUREMENTS.Param2.SlotID', 'slot %d differs from the requested slot %s' % (slot_id, request['slot_id']), start + 3)
    count_at = r.pos
    number_of_blocks = r.u8('MEASUREMENTS.NumberOfBlocks')
    record_length_at = r.pos
    record_length = r.u24('MEASUREMENTS.MeasurementRecordLength')
    if record_length > r.remaining:
        raise r.fail('MEASUREMENTS.MeasurementRecordLength', 'record of %d bytes overruns the object (%d bytes left)' % (
            record_length, r.remaining), record_length_at)
    record = Reader(data, r.obj, r.pos, r.pos + record_length, 'MEASUREMENTS.MeasurementRecordLength')
    r.pos += record_length
    blocks: t.List[t.Dict[str, t.Any]] = []
    seen: t.Dict[int, int] = {}
    for number in range(number_of_blocks):
        block_at = record.pos
        block = _parse_block(record, number, hash_size)
        if block['index'] in seen:
            raise record.fail('MeasurementBlock[%d].Index' % number, 'index %d repeats block %d' % (block['index'], seen[block['index']]), block_at)
        seen[block['index']] = number
        blocks.append(block)
    record.done('MEASUREMENTS.MeasurementRecord (NumberOfBlocks=%d)' % number_of_blocks)

    operation = request['operation_code']
    if operation == OPERATION_COUNT and number_of_blocks:
        raise r.fail('MEASUREMENTS.NumberOfBlocks', '%d blocks returned for a count-only request' % number_of_blocks, count_at)
    if operation not in (None, OPERATION_COUNT, OPERATION_ALL):
        if number_of_blocks != 1 or blocks[0]['index'] != operation:
            raise r.fail('MEASUREMENTS.NumberOfBlocks', 'request for index %d must return exactly that one block' % operation, count_at)

    nonce = r.take(NONCE_SIZE, 'MEASUREMENTS.Nonce')
    opaque_length_at = r.pos
    opaque_length = r.u16('MEASUREMENTS.OpaqueDataLength')
    if opaque_length > MAX_OPAQUE_SIZE:
        raise r.fail('MEASUREMENTS.OpaqueDataLength', 'length %d exceeds the %d-byte maximum' % (opaque_length, MAX_OPAQUE_SIZE), opaque_length_at)
    opaque = r.take(opaque_length, 'MEASUREMENTS.OpaqueData')
    requester_context = None
    if version >= 0x13:
        context_at = r.pos
        requester_context = r.take(REQUESTER_CONTEXT_SIZE, 'MEASUREMENTS.RequesterContext').hex()
        if request['present'] and requester_context != request['requester_context']:
            raise r.fail('MEASUREMENTS.RequesterContext', 'differs from the RequesterContext of the request', context_at)
    signed_length = r.pos

    signature: t.Optional[bytes] = None
    if request['present'] and not request['signature_requested']:
        r.done('MEASUREMENTS (no signature was requested)')
    elif signature_size is not None:
        if not request['present'] and r.remaining == 0:
            signature = None
        else:
            signature = r.take(signature_size, 'MEASUREMENTS.Signature')
            r.done('MEASUREMENTS.Signature')
    elif r.remaining:
        signature = r.take(r.remaining, 'MEASUREMENTS.Signature')
    elif request['present']:
        raise r.fail('MEASUREMENTS.Signature', 'a signature was requested but the object ends here')

    svns = [b['svn'] for b in blocks if 'svn' in b]
    versions = [b['version'] for b in sorted(blocks, key=lambda b: b['index']) if 'version' in b]
    return {
        'spdm_version': version_text(version),
        'request': {k: v for k, v in request.items() if k not in ('version_code', 'operation_code')},
        'slot_id': slot_id,
        'content_changed': CONTENT_CHANGED[param2 >> 4 & 3] if version >= 0x12 else 'unknown',
        'total_measurement_indices': param1 if operation == OPERATION_COUNT else None,
        'number_of_blocks': number_of_blocks,
        'blocks': blocks,
        'firmware_svn': min(svns) if svns else None,
        'firmware_version': versions[0] if versions else None,
        'nonce': nonce.hex(),
        'opaque': opaque.hex(),
        'requester_context': requester_context,
        'signature': signature.hex() if signature is not None else None,
        'signed_length': signed_length,
        'request_length': request_length,
    }
