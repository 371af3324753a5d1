"""Encoders for the evidence objects a simulated device serves: vca, measurements, cert0..cert7, report.

The byte layouts, and exactly which bytes a measurement signature covers, are documented in
``docs/evidence.md``; the target-side parsers in ``plugins/module_utils/_evidence`` read them back.
This module is independent of those parsers (it shares no code with them) so that round-trip tests
check two implementations against each other.

Spec references (by name): DMTF DSP0274 1.2/1.3 "GET_VERSION request and VERSION response",
"GET_CAPABILITIES request and CAPABILITIES response", "NEGOTIATE_ALGORITHMS request and ALGORITHMS
response", "GET_MEASUREMENTS request and MEASUREMENTS response", "Certificate chain format",
"Signature generation" (section 15 in 1.2: combined_spdm_prefix); PCIe Base r6.1+ chapter 11 TDISP
"DEVICE_INTERFACE_REPORT" and the TDI report structure. Low-level encoders are deliberately
permissive (they encode what they are given) so fault tests can build malformed evidence;
``DeviceEvidence`` validates a device profile before it builds anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

# --- algorithm tables (DSP0274 NEGOTIATE_ALGORITHMS / ALGORITHMS; libspdm SPDM_ALGORITHMS_*) -----------------

BASE_HASH_BITS: Dict[str, int] = {
    'sha256': 0x01, 'sha384': 0x02, 'sha512': 0x04, 'sha3_256': 0x08, 'sha3_384': 0x10, 'sha3_512': 0x20, 'sm3_256': 0x40,
}
MEASUREMENT_HASH_BITS: Dict[str, int] = {
    'raw_only': 0x01, 'sha256': 0x02, 'sha384': 0x04, 'sha512': 0x08, 'sha3_256': 0x10, 'sha3_384': 0x20, 'sha3_512': 0x40,
    'sm3_256': 0x80,
}
BASE_ASYM_BITS: Dict[str, int] = {
    'rsassa_2048': 0x001, 'rsapss_2048': 0x002, 'rsassa_3072': 0x004, 'rsapss_3072': 0x008, 'ecdsa_p256': 0x010,
    'rsassa_4096': 0x020, 'rsapss_4096': 0x040, 'ecdsa_p384': 0x080, 'ecdsa_p521': 0x100, 'sm2_p256': 0x200,
    'eddsa_ed25519': 0x400, 'eddsa_ed448': 0x800,
}
HASH_SIZES: Dict[str, int] = {'sha256': 32, 'sha384': 48, 'sha512': 64, 'sha3_256': 32, 'sha3_384': 48, 'sha3_512': 64, 'sm3_256': 32}
_CRYPTO_HASHES = {'sha256': hashes.SHA256, 'sha384': hashes.SHA384, 'sha512': hashes.SHA512,
                  'sha3_256': hashes.SHA3_256, 'sha3_384': hashes.SHA3_384, 'sha3_512': hashes.SHA3_512}
_ECDSA_CURVES = {'ecdsa_p256': (ec.SECP256R1, 32), 'ecdsa_p384': (ec.SECP384R1, 48), 'ecdsa_p521': (ec.SECP521R1, 66)}

# DMTFSpecMeasurementValueType [6:0] (DSP0274 1.3 "DMTF measurement specification format").
VALUE_TYPES: Dict[str, int] = {
    'immutable_rom': 0, 'mutable_firmware': 1, 'hardware_config': 2, 'firmware_config': 3, 'measurement_manifest': 4,
    'device_mode': 5, 'firmware_version': 6, 'firmware_svn': 7, 'hash_extended': 8, 'informational': 9,
    'structured_manifest': 10,
}

# CAPABILITIES flags of a typical TDISP-capable responder: CERT_CAP, CHAL_CAP, MEAS_CAP=signed,
# ENCRYPT_CAP, MAC_CAP, KEY_EX_CAP, HBEAT_CAP, KEY_UPD_CAP (libspdm SPDM_GET_CAPABILITIES_RESPONSE_FLAGS_*).
DEFAULT_RESPONDER_FLAGS = 0x02 | 0x04 | (2 << 3) | 0x40 | 0x80 | 0x200 | 0x2000 | 0x4000
# GET_CAPABILITIES flags of the TSM as requester: CERT_CAP, CHAL_CAP, ENCRYPT_CAP, MAC_CAP, KEY_EX_CAP, HBEAT_CAP, KEY_UPD_CAP.
DEFAULT_REQUESTER_FLAGS = 0x02 | 0x04 | 0x40 | 0x80 | 0x200 | 0x2000 | 0x4000

NONCE_SIZE = 32
REQUESTER_CONTEXT_SIZE = 8
MEASUREMENTS_SIGN_CONTEXT = 'responder-measurements signing'   # DSP0274 1.2 signing context for MEASUREMENTS
SPDM_PREFIX_SIZE = 64
COMBINED_PREFIX_SIZE = 100

GET_VERSION, VERSION, GET_CAPABILITIES, CAPABILITIES = 0x84, 0x04, 0xE1, 0x61
NEGOTIATE_ALGORITHMS, ALGORITHMS, GET_MEASUREMENTS, MEASUREMENTS = 0xE3, 0x63, 0xE0, 0x60

SUPPORTED_VERSIONS = ('1.0', '1.1', '1.2', '1.3')


def version_byte(version: str) -> int:
    """'1.2' -> 0x12 (SPDMVersion)."""
    if version not in SUPPORTED_VERSIONS:
        raise ValueError('SPDM version %r is not one of %s' % (version, ', '.join(SUPPORTED_VERSIONS)))
    major, minor = version.split('.')
    return int(major) << 4 | int(minor)


def _u8(v: int) -> bytes:
    return v.to_bytes(1, 'little')


def _u16(v: int) -> bytes:
    return v.to_bytes(2, 'little')


def _u24(v: int) -> bytes:
    return v.to_bytes(3, 'little')


def _u32(v: int) -> bytes:
    return v.to_bytes(4, 'little')


def _u64(v: int) -> bytes:
    return v.to_bytes(8, 'little')


def _header(version: int, code: int, param1: int = 0, param2: int = 0) -> bytes:
    return bytes((version, code, param1, param2))


def _bit(table: Mapping[str, int], name: str, what: str) -> int:
    try:
        return table[name]
    except KeyError:
        raise ValueError('unknown %s %r (known: %s)' % (what, name, ', '.join(table))) from None


# --- VCA ----------------------------------------------------------------------------------------------------------

def _alg_struct(alg_type: int, supported: int) -> bytes:
    # AlgType, AlgCount = 0x20 (two fixed bytes, no external algorithms), AlgSupported (u16).
    return bytes((alg_type, 0x20)) + _u16(supported)


def build_vca(*, version: str = '1.2', base_hash_algo: str = 'sha384', base_asym_algo: str = 'ecdsa_p384',
              measurement_hash_algo: Optional[str] = 'sha384', responder_flags: int = DEFAULT_RESPONDER_FLAGS,
              requester_flags: int = DEFAULT_REQUESTER_FLAGS, ct_exponent: int = 20, data_transfer_size: int = 4096,
              max_spdm_msg_size: int = 65536, offered_versions: Optional[Sequence[str]] = None) -> bytes:
    """GET_VERSION, VERSION, GET_CAPABILITIES, CAPABILITIES, NEGOTIATE_ALGORITHMS, ALGORITHMS, concatenated.

    The requester offers the selected algorithms plus a few common others; the responder selects
    exactly ``base_hash_algo``, ``base_asym_algo`` and ``measurement_hash_algo`` (None: no measurement
    hash and no measurement specification). Struct tables (1.1+) offer and select DHE secp384r1,
    AEAD AES-256-GCM, requester asym ECDSA P-384 and the SPDM key schedule.
    """
    v = version_byte(version)
    if offered_versions is None:
        offered_versions = [x for x in SUPPORTED_VERSIONS if version_byte(x) <= v]
    hash_bit = _bit(BASE_HASH_BITS, base_hash_algo, 'base hash algorithm')
    asym_bit = _bit(BASE_ASYM_BITS, base_asym_algo, 'base asym algorithm')
    meas_bit = 0 if measurement_hash_algo is None else _bit(MEASUREMENT_HASH_BITS, measurement_hash_algo, 'measurement hash algorithm')

    out = bytearray()
    out += _header(0x10, GET_VERSION)
    out += _header(0x10, VERSION) + _u8(0) + _u8(len(offered_versions))
    for offered in offered_versions:
        out += _u16(version_byte(offered) << 8)   # VersionNumberEntry: major.minor in bits 15:8, update/alpha 0

    out += _header(v, GET_CAPABILITIES)
    if v >= 0x11:
        out += _u8(0) + _u8(ct_exponent) + _u16(0) + _u32(requester_flags)
    if v >= 0x12:
        out += _u32(data_transfer_size) + _u32(max_spdm_msg_size)
    out += _header(v, CAPABILITIES) + _u8(0) + _u8(ct_exponent) + _u16(0) + _u32(responder_flags)
    if v >= 0x12:
        out += _u32(data_transfer_size) + _u32(max_spdm_msg_size)

    tables_offer = b''
    tables_select = b''
    if v >= 0x11:
        tables_offer = _alg_struct(2, 0x18) + _alg_struct(3, 0x06) + _alg_struct(4, 0x90) + _alg_struct(5, 0x01)
        tables_select = _alg_struct(2, 0x10) + _alg_struct(3, 0x02) + _alg_struct(4, 0x80) + _alg_struct(5, 0x01)
    count = 4 if v >= 0x11 else 0
    other_params = 0x02 if v >= 0x12 else 0       # opaque data format 1 (general)
    offered_hash = hash_bit | BASE_HASH_BITS['sha256'] | BASE_HASH_BITS['sha384'] | BASE_HASH_BITS['sha512']
    offered_asym = asym_bit | BASE_ASYM_BITS['ecdsa_p256'] | BASE_ASYM_BITS['ecdsa_p384']
    body = (_u8(0x01) + _u8(other_params) + _u32(offered_asym) + _u32(offered_hash) + bytes(12)
            + _u8(0) + _u8(0) + _u8(0) + _u8(0) + tables_offer)
    out += _header(v, NEGOTIATE_ALGORITHMS, count) + _u16(6 + len(body)) + body
    meas_spec = 0x01 if meas_bit else 0x00
    body = (_u8(meas_spec) + _u8(other_params) + _u32(meas_bit) + _u32(asym_bit) + _u32(hash_bit) + bytes(11)
            + _u8(0) + _u8(0) + _u8(0) + _u16(0) + tables_select)
    out += _header(v, ALGORITHMS, count) + _u16(6 + len(body)) + body
    return bytes(out)


# --- measurements ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MeasurementBlock:
    """One DMTF-format measurement block; ``raw`` sets bit 7 of DMTFSpecMeasurementValueType."""

    index: int
    value_type: Union[str, int]
    value: bytes
    raw: bool = False

    @property
    def type_code(self) -> int:
        if isinstance(self.value_type, int):
            return self.value_type
        return _bit(VALUE_TYPES, self.value_type, 'measurement value type')

    def encode(self) -> bytes:
        """Index, MeasurementSpecification (DMTF), MeasurementSize, then the DMTF value header and value."""
        dmtf = _u8(self.type_code | (0x80 if self.raw else 0)) + _u16(len(self.value)) + self.value
        return _u8(self.index) + _u8(0x01) + _u16(len(dmtf)) + dmtf

    @classmethod
    def coerce(cls, item: Any) -> 'MeasurementBlock':
        """Accept a MeasurementBlock, a tuple (index, type, value[, raw]) or a dict with index, type,
        value (or digest) and raw. ``value`` may be bytes or a hex string."""
        if isinstance(item, MeasurementBlock):
            return item
        if isinstance(item, Mapping):
            value = item['value'] if 'value' in item else item['digest']
            return cls(int(item['index']), item['type'], _as_bytes(value), bool(item.get('raw', False)))
        index, value_type, value, *rest = item
        return cls(int(index), value_type, _as_bytes(value), bool(rest[0]) if rest else False)


def _as_bytes(value: Union[bytes, bytearray, str]) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    text = value.split(':', 1)[1] if ':' in value else value    # accept "sha384:<hex>"
    return bytes.fromhex(text)


def version_block(index: int, firmware_version: str) -> MeasurementBlock:
    """DMTF value type 6 (mutable firmware version), as a raw bit stream: the UTF-8 string."""
    return MeasurementBlock(index, 'firmware_version', firmware_version.encode('utf-8'), raw=True)


def svn_block(index: int, svn: int) -> MeasurementBlock:
    """DMTF value type 7 (mutable firmware security version number): 8-byte little-endian integer, raw."""
    return MeasurementBlock(index, 'firmware_svn', _u64(svn), raw=True)


def measurement_record(blocks: Iterable[Any]) -> Tuple[int, bytes]:
    coerced = [MeasurementBlock.coerce(b) for b in blocks]
    return len(coerced), b''.join(b.encode() for b in coerced)


def combined_spdm_prefix(version: str, context: str = MEASUREMENTS_SIGN_CONTEXT) -> bytes:
    """DSP0274 1.2 section 15 combined_spdm_prefix (100 bytes): "dmtf-spdm-v<M>.<m>.*" four times (64 bytes),
    then zero bytes, then the signing context string, so that the context ends at byte 100."""
    v = version_byte(version)
    if v < 0x12:
        raise ValueError('combined_spdm_prefix exists from SPDM 1.2 on, not %s' % version)
    prefix = ('dmtf-spdm-v%d.%d.*' % (v >> 4, v & 0x0F)).encode('ascii') * 4
    context_bytes = context.encode('ascii')
    return prefix + bytes(COMBINED_PREFIX_SIZE - SPDM_PREFIX_SIZE - len(context_bytes)) + context_bytes


def measurement_signing_message(version: str, hash_algo: str, transcript: bytes) -> bytes:
    """M = combined_spdm_prefix || Hash(L1/L2), the message the responder signs for MEASUREMENTS (1.2+).

    ``transcript`` is L1/L2 = VCA || GET_MEASUREMENTS request || MEASUREMENTS response without Signature.
    ECDSA then signs M with the same hash: signature = ECDSA-Sign(key, Hash(M)).
    """
    return combined_spdm_prefix(version) + hashlib.new(hash_algo, transcript).digest()


def _ecdsa_params(key: Union[ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey]) -> int:
    for curve_cls, size in _ECDSA_CURVES.values():
        if isinstance(key.curve, curve_cls):
            return size
    raise ValueError('unsupported curve %s for SPDM ECDSA' % key.curve.name)


def sign_measurements(key: ec.EllipticCurvePrivateKey, version: str, hash_algo: str, transcript: bytes) -> bytes:
    """Raw r||s (each big-endian, curve size) ECDSA signature over the MEASUREMENTS signing message.

    RFC 6979 deterministic signing keeps the output a pure function of the inputs."""
    size = _ecdsa_params(key)
    message = measurement_signing_message(version, hash_algo, transcript)
    der = key.sign(message, ec.ECDSA(_CRYPTO_HASHES[hash_algo](), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, 'big') + s.to_bytes(size, 'big')


def verify_measurements_signature(public_key: ec.EllipticCurvePublicKey, version: str, hash_algo: str, transcript: bytes,
                                  signature: bytes) -> bool:
    """The verifier's side of ``sign_measurements`` (for tests and as a reference for the verifier author)."""
    size = _ecdsa_params(public_key)
    if len(signature) != 2 * size:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:size], 'big'), int.from_bytes(signature[size:], 'big'))
    try:
        public_key.verify(der, measurement_signing_message(version, hash_algo, transcript), ec.ECDSA(_CRYPTO_HASHES[hash_algo]()))
    except InvalidSignature:
        return False
    return True


def default_responder_nonce(nonce: bytes) -> bytes:
    """The simulated responder's nonce: derived from the requester nonce so output stays deterministic."""
    return hashlib.sha256(b'coco.tdisp simulator responder nonce\x00' + nonce).digest()


def build_measurements(blocks: Iterable[Any], nonce: bytes, opaque: bytes, signing_key: Optional[ec.EllipticCurvePrivateKey],
                       vca_bytes: bytes, *, version: str = '1.2', hash_algo: str = 'sha384', slot_id: int = 0,
                       operation: Union[str, int] = 'all', responder_nonce: Optional[bytes] = None,
                       requester_context: bytes = bytes(REQUESTER_CONTEXT_SIZE), content_changed: int = 0,
                       include_request: bool = True, total_measurement_indices: int = 0) -> bytes:
    """GET_MEASUREMENTS request followed by the MEASUREMENTS response.

    ``nonce`` is the requester's nonce (32 bytes). A signature is requested and produced when
    ``signing_key`` is given; it covers VCA || request || response-without-signature (docs/evidence.md).
    ``include_request`` False returns the response alone (the signature still covers the request).
    """
    v = version_byte(version)
    if len(nonce) != NONCE_SIZE:
        raise ValueError('nonce must be %d bytes, got %d' % (NONCE_SIZE, len(nonce)))
    if v >= 0x13 and len(requester_context) != REQUESTER_CONTEXT_SIZE:
        raise ValueError('requester_context must be %d bytes' % REQUESTER_CONTEXT_SIZE)
    op = 0xFF if operation == 'all' else int(operation)
    signed = signing_key is not None
    request = _header(v, GET_MEASUREMENTS, 0x01 if signed else 0x00, op)
    if signed:
        request += nonce + (_u8(slot_id) if v >= 0x11 else b'')
    if v >= 0x13:
        request += requester_context

    count, record = measurement_record(blocks)
    param1 = total_measurement_indices if op == 0 else 0
    param2 = (slot_id & 0x0F) | ((content_changed & 0x03) << 4 if v >= 0x12 else 0)
    response = _header(v, MEASUREMENTS, param1, param2) + _u8(count) + _u24(len(record)) + record
    response += (responder_nonce if responder_nonce is not None else default_responder_nonce(nonce))
    response += _u16(len(opaque)) + opaque
    if v >= 0x13:
        response += requester_context
    if signed:
        assert signing_key is not None
        response += sign_measurements(signing_key, version, hash_algo, vca_bytes + request + response)
    return (request if include_request else b'') + response


# --- certificate chain ----------------------------------------------------------------------------------------------

def _der(cert: Union[x509.Certificate, bytes]) -> bytes:
    return cert if isinstance(cert, (bytes, bytearray)) else cert.public_bytes(serialization.Encoding.DER)


def build_cert_chain(certs: Sequence[Union[x509.Certificate, bytes]], hash_algo: str = 'sha384') -> bytes:
    """SPDM certificate chain: Length (u16, whole chain), Reserved (u16), RootHash = Hash(DER of certs[0]),
    then the DER certificates root first."""
    if not certs:
        raise ValueError('a certificate chain needs at least one certificate')
    ders = [_der(c) for c in certs]
    root_hash = hashlib.new(hash_algo, ders[0]).digest()
    length = 4 + len(root_hash) + sum(len(d) for d in ders)
    if length > 0xFFFF:
        raise ValueError('certificate chain of %d bytes exceeds the 65535-byte SPDM maximum' % length)
    return _u16(length) + _u16(0) + root_hash + b''.join(ders)


# --- interface report -----------------------------------------------------------------------------------------------

INTERFACE_INFO_BITS = {'no_fw_update': 0x01, 'dma_without_pasid': 0x02, 'dma_with_pasid': 0x04, 'ats': 0x08, 'prs': 0x10, 'xt_mode': 0x20}
RANGE_ATTRIBUTE_BITS = {'msix_table': 0x01, 'msix_pba': 0x02, 'non_tee_mem': 0x04, 'mem_attr_updatable': 0x08}


def _flags(value: Union[int, Mapping[str, bool]], table: Mapping[str, int], what: str) -> int:
    if isinstance(value, int):
        return value
    raw = 0
    for name, enabled in value.items():
        if name == 'raw':
            raw |= int(enabled)  # type: ignore[arg-type]
        elif enabled:
            raw |= _bit(table, name, what)
    return raw


@dataclass(frozen=True)
class MmioRange:
    """One TDISP MMIO_RANGE: FIRST_PAGE (4 KiB page number with the reporting offset added), NUMBER_OF_PAGES,
    RANGE_ATTRIBUTES, RANGE_ID."""

    first_page: int
    pages: int
    range_id: int = 0
    attributes: Union[int, Mapping[str, bool]] = 0

    def encode(self) -> bytes:
        return _u64(self.first_page) + _u32(self.pages) + _u16(_flags(self.attributes, RANGE_ATTRIBUTE_BITS, 'range attribute')) + _u16(self.range_id)

    @classmethod
    def coerce(cls, item: Any) -> 'MmioRange':
        if isinstance(item, MmioRange):
            return item
        if isinstance(item, Mapping):
            return cls(int(item['first_page']), int(item['pages']), int(item.get('range_id', 0)), item.get('attributes', 0))
        return cls(*item)


def build_interface_report(*, interface_info: Union[int, Mapping[str, bool]] = 0, msix_message_control: int = 0, lnr_control: int = 0,
                           tph_control: int = 0, mmio_ranges: Iterable[Any] = (), device_specific_info: bytes = b'',
                           reserved: int = 0) -> bytes:
    """The TDI report structure (the concatenated DEVICE_INTERFACE_REPORT portions, no TDISP headers)."""
    ranges = [MmioRange.coerce(r) for r in mmio_ranges]
    return (_u16(_flags(interface_info, INTERFACE_INFO_BITS, 'interface info flag')) + _u16(reserved) + _u16(msix_message_control)
            + _u16(lnr_control) + _u32(tph_control) + _u32(len(ranges)) + b''.join(r.encode() for r in ranges)
            + _u32(len(device_specific_info)) + device_specific_info)


# --- a whole device -------------------------------------------------------------------------------------------------

@dataclass
class DeviceProfile:
    """What a simulated device reports. ``measurements`` are (index, type, digest) entries (tuples,
    dicts or MeasurementBlock); the firmware version (type 6) and SVN (type 7) blocks are added at
    ``version_index`` and ``svn_index`` (None leaves a block out)."""

    firmware_version: str
    svn: int
    measurements: List[Any] = field(default_factory=list)
    interface_info: Union[int, Mapping[str, bool]] = field(default_factory=lambda: {'no_fw_update': True, 'dma_without_pasid': True})
    msix_message_control: int = 0
    lnr_control: int = 0
    tph_control: int = 0
    mmio_ranges: List[Any] = field(default_factory=list)
    device_specific_info: bytes = b''
    opaque: bytes = b''
    spdm_version: str = '1.2'
    base_hash_algo: str = 'sha384'
    base_asym_algo: str = 'ecdsa_p384'
    measurement_hash_algo: str = 'sha384'
    version_index: Optional[int] = 0xF0
    svn_index: Optional[int] = 0xF1
    slot_id: int = 0

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> 'DeviceProfile':
        """From scenario YAML: byte fields may be hex strings; unknown keys are an error."""
        data = dict(mapping)
        unknown = set(data) - set(cls.__dataclass_fields__)  # pylint: disable=no-member
        if unknown:
            raise ValueError('unknown device profile keys: %s' % ', '.join(sorted(unknown)))
        for key in ('device_specific_info', 'opaque'):
            if key in data and isinstance(data[key], str):
                data[key] = bytes.fromhex(data[key])
        return cls(**data)

    def blocks(self) -> List[MeasurementBlock]:
        blocks = [MeasurementBlock.coerce(m) for m in self.measurements]
        if self.version_index is not None:
            blocks.append(version_block(self.version_index, self.firmware_version))
        if self.svn_index is not None:
            blocks.append(svn_block(self.svn_index, self.svn))
        return sorted(blocks, key=lambda b: b.index)

    def validate(self) -> None:
        version_byte(self.spdm_version)
        if self.spdm_version in ('1.0', '1.1'):
            raise ValueError('the simulator signs measurements with SPDM 1.2 or 1.3 only')
        if self.base_asym_algo not in _ECDSA_CURVES:
            raise ValueError('the simulator signs with ECDSA only, not %s' % self.base_asym_algo)
        if self.base_hash_algo not in _CRYPTO_HASHES or self.measurement_hash_algo not in _CRYPTO_HASHES:
            raise ValueError('unsupported hash algorithm for the simulator')
        blocks = self.blocks()
        indices = [b.index for b in blocks]
        if len(set(indices)) != len(indices):
            raise ValueError('measurement indices repeat: %s' % indices)
        for block in blocks:
            if not 0 <= block.type_code <= 0x7F:      # also rejects unknown type names
                raise ValueError('measurement %d: value type %d does not fit in 7 bits' % (block.index, block.type_code))
            if not 1 <= block.index <= 0xFE:
                raise ValueError('measurement index %d is outside 1..254' % block.index)
            if not block.raw and len(block.value) != HASH_SIZES[self.measurement_hash_algo]:
                raise ValueError('measurement %d: digest of %d bytes, %s needs %d' % (
                    block.index, len(block.value), self.measurement_hash_algo, HASH_SIZES[self.measurement_hash_algo]))
        if not 0 <= self.svn < 1 << 64:
            raise ValueError('svn must fit in 64 bits')


class DeviceEvidence:
    """Evidence objects of one simulated device: ``objects(nonce)`` -> {cert0, vca, measurements, report}.

    Everything except the measurements is computed once; the measurements depend on the nonce only
    (deterministic ECDSA, responder nonce derived from the requester nonce)."""

    def __init__(self, profile: Union[DeviceProfile, Mapping[str, Any]], leaf_key: ec.EllipticCurvePrivateKey,
                 chain: Sequence[Union[x509.Certificate, bytes]]) -> None:
        self.profile = profile if isinstance(profile, DeviceProfile) else DeviceProfile.from_dict(profile)
        self.profile.validate()
        curve_cls, _size = _ECDSA_CURVES[self.profile.base_asym_algo]
        if not isinstance(leaf_key.curve, curve_cls):
            raise ValueError('leaf key curve %s does not match %s' % (leaf_key.curve.name, self.profile.base_asym_algo))
        self.leaf_key = leaf_key
        p = self.profile
        self.cert_chain = build_cert_chain(chain, p.base_hash_algo)
        self.vca = build_vca(version=p.spdm_version, base_hash_algo=p.base_hash_algo, base_asym_algo=p.base_asym_algo,
                             measurement_hash_algo=p.measurement_hash_algo)
        self.report = build_interface_report(interface_info=p.interface_info, msix_message_control=p.msix_message_control,
                                             lnr_control=p.lnr_control, tph_control=p.tph_control, mmio_ranges=p.mmio_ranges,
                                             device_specific_info=p.device_specific_info)

    @staticmethod
    def pad_nonce(nonce: bytes) -> bytes:
        """The netlink nonce is at most 32 bytes; a shorter one is zero-padded on the right (docs/evidence.md)."""
        if len(nonce) > NONCE_SIZE:
            raise ValueError('nonce of %d bytes exceeds %d' % (len(nonce), NONCE_SIZE))
        return bytes(nonce) + bytes(NONCE_SIZE - len(nonce))

    def measurements(self, nonce: bytes) -> bytes:
        p = self.profile
        return build_measurements(p.blocks(), self.pad_nonce(nonce), p.opaque, self.leaf_key, self.vca, version=p.spdm_version,
                                  hash_algo=p.base_hash_algo, slot_id=p.slot_id)

    def objects(self, nonce: bytes) -> Dict[str, bytes]:
        return {'cert0': self.cert_chain, 'vca': self.vca, 'measurements': self.measurements(nonce), 'report': self.report}
