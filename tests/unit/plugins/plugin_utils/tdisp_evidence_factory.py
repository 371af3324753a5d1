# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Test helper: real X.509 PKIs and real signed SPDM evidence, built with ``cryptography``.

Everything here is written from the specifications, independently of the verifier under test:

* certificates: RFC 5280 profiles built with ``cryptography.x509.CertificateBuilder``;
* the SPDM messages: DSP0274 1.2 message layouts (GET_VERSION .. ALGORITHMS for the VCA,
  GET_MEASUREMENTS + MEASUREMENTS with DMTF measurement blocks), little-endian;
* the signature: DSP0274 1.2 "Signature generation": ``M = combined_spdm_prefix || Hash(L1/L2)``
  with ``L1/L2 = VCA || GET_MEASUREMENTS || MEASUREMENTS-without-signature``, signed by the leaf key;
* the evidence dict: the target-side parsers' contract (``docs/internals.md``).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as dt
import hashlib
import struct
import typing as t

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
NOT_BEFORE = dt.datetime(2025, 1, 1, tzinfo=UTC)
NOT_AFTER = dt.datetime(2031, 1, 1, tzinfo=UTC)

ROOT_NAME = 'CN=Example GPU Root CA,O=Example GPU Corp,C=US'
INTERMEDIATE_NAME = 'CN=Example GPU Device CA 1,O=Example GPU Corp,C=US'
LEAF_NAME = 'CN=EG100 Device 1654321,OU=EG100,O=Example GPU Corp'
LEAF_SUBJECT_REGEX = r'CN=EG100 Device \d+,OU=EG100,O=Example GPU Corp'

HASHES = {'sha256': hashes.SHA256, 'sha384': hashes.SHA384, 'sha512': hashes.SHA512,
          'sha3_256': hashes.SHA3_256, 'sha3_384': hashes.SHA3_384, 'sha3_512': hashes.SHA3_512}
BASE_HASH_BITS = {'sha256': 0x01, 'sha384': 0x02, 'sha512': 0x04, 'sha3_256': 0x08, 'sha3_384': 0x10, 'sha3_512': 0x20}
MEAS_HASH_BITS = {'raw_only': 0x01, 'sha256': 0x02, 'sha384': 0x04, 'sha512': 0x08, 'sha3_256': 0x10, 'sha3_384': 0x20, 'sha3_512': 0x40}
ASYM_BITS = {'rsassa_2048': 0x001, 'rsapss_2048': 0x002, 'rsassa_3072': 0x004, 'rsapss_3072': 0x008, 'ecdsa_p256': 0x010,
             'rsassa_4096': 0x020, 'rsapss_4096': 0x040, 'ecdsa_p384': 0x080, 'ecdsa_p521': 0x100,
             'eddsa_ed25519': 0x400, 'eddsa_ed448': 0x800}
TYPE_CODES = {'immutable_rom': 0, 'mutable_firmware': 1, 'hardware_config': 2, 'firmware_config': 3,
              'measurement_manifest': 4, 'device_mode': 5, 'firmware_version': 6, 'firmware_svn': 7}

_KEYS: dict[str, t.Any] = {}
_ROOTS: dict[tuple[t.Any, ...], x509.Certificate] = {}


def key(role: str, kind: str = 'ecdsa_p384') -> t.Any:
    """A private key per (role, kind), generated once per test session."""
    name = '%s/%s' % (role, kind)
    if name not in _KEYS:
        if kind.startswith('ecdsa_'):
            curve = {'ecdsa_p256': ec.SECP256R1, 'ecdsa_p384': ec.SECP384R1, 'ecdsa_p521': ec.SECP521R1}[kind]()
            _KEYS[name] = ec.generate_private_key(curve)
        elif kind.startswith(('rsassa_', 'rsapss_')):
            _KEYS[name] = rsa.generate_private_key(public_exponent=65537, key_size=int(kind.rsplit('_', 1)[1]))
        elif kind == 'eddsa_ed25519':
            _KEYS[name] = ed25519.Ed25519PrivateKey.generate()
        elif kind == 'eddsa_ed448':
            _KEYS[name] = ed448.Ed448PrivateKey.generate()
        else:
            raise ValueError(kind)
    return _KEYS[name]


def name(text: str) -> x509.Name:
    """An x509.Name from an RFC 4514 string (most specific RDN first, as rfc4514_string() prints)."""
    return x509.Name.from_rfc4514_string(text)


def _sign_hash(private_key: t.Any) -> t.Optional[hashes.HashAlgorithm]:
    if isinstance(private_key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    return hashes.SHA384()


def make_cert(subject: str, issuer: str, public_key: t.Any, signing_key: t.Any, *, ca: t.Optional[bool], path_length: t.Optional[int] = None,
              key_usage: t.Optional[str] = None, not_before: dt.datetime = NOT_BEFORE, not_after: dt.datetime = NOT_AFTER,
              serial: t.Optional[int] = None, extra: t.Sequence[tuple[t.Any, bool]] = ()) -> x509.Certificate:
    """One certificate. ``ca=None`` omits basicConstraints; ``key_usage`` is ``ca``, ``leaf``, ``sign-only-crl`` or None (omitted)."""
    builder = (x509.CertificateBuilder()
               .subject_name(name(subject)).issuer_name(name(issuer))
               .public_key(public_key)
               .serial_number(serial if serial is not None else x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after))
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
    usages = {
        'ca': dict(digital_signature=False, key_cert_sign=True, crl_sign=True),
        'leaf': dict(digital_signature=True, key_cert_sign=False, crl_sign=False),
        'crl-only': dict(digital_signature=False, key_cert_sign=False, crl_sign=True),
        'key-agreement': dict(digital_signature=False, key_cert_sign=False, crl_sign=False),
    }
    if key_usage is not None:
        flags = usages[key_usage]
        builder = builder.add_extension(x509.KeyUsage(
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=key_usage == 'key-agreement', encipher_only=False, decipher_only=False, **flags), critical=True)
    for extension, critical in extra:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, _sign_hash(signing_key))


@dataclasses.dataclass
class Chain:
    certs: list[x509.Certificate]
    keys: list[t.Any]

    @property
    def ders(self) -> list[bytes]:
        return [cert.public_bytes(serialization.Encoding.DER) for cert in self.certs]

    @property
    def root_fingerprint(self) -> str:
        return hashlib.sha256(self.ders[0]).hexdigest()

    @property
    def leaf_key(self) -> t.Any:
        return self.keys[-1]


def make_chain(*, intermediates: int = 1, leaf_kind: str = 'ecdsa_p384', leaf_subject: str = LEAF_NAME,
               leaf_not_before: dt.datetime = NOT_BEFORE, leaf_not_after: dt.datetime = NOT_AFTER,
               intermediate_ca: t.Optional[bool] = True, intermediate_usage: t.Optional[str] = 'ca',
               leaf_usage: t.Optional[str] = 'leaf', root_path_length: t.Optional[int] = None,
               forge: t.Optional[int] = None, root_role: str = 'root', root_issuer: t.Optional[str] = None,
               leaf_extra: t.Sequence[tuple[t.Any, bool]] = ()) -> Chain:
    """Root -> ``intermediates`` intermediate CAs -> leaf. ``forge=i`` signs certificate i with an attacker key."""
    root_key = key(root_role)
    root_id = (root_role, root_issuer, root_path_length, forge == 0)
    if root_id not in _ROOTS:  # one root certificate per variant, so that its fingerprint is stable
        _ROOTS[root_id] = make_cert(ROOT_NAME, root_issuer or ROOT_NAME, root_key.public_key(),
                                    root_key if forge != 0 else key('attacker'), ca=True, path_length=root_path_length, key_usage='ca')
    root = _ROOTS[root_id]
    certs = [root]
    keys = [root_key]
    issuer_name, issuer_key = ROOT_NAME, root_key
    for number in range(intermediates):
        position = number + 1
        subject = INTERMEDIATE_NAME if number == 0 else 'CN=Example GPU Sub CA %d,O=Example GPU Corp,C=US' % position
        inter_key = key('intermediate%d' % number)
        signer = issuer_key if forge != position else key('attacker')
        certs.append(make_cert(subject, issuer_name, inter_key.public_key(), signer, ca=intermediate_ca,
                               key_usage=intermediate_usage))
        keys.append(inter_key)
        issuer_name, issuer_key = subject, inter_key
    leaf_key = key('leaf', leaf_kind)
    signer = issuer_key if forge != len(certs) else key('attacker')
    certs.append(make_cert(leaf_subject, issuer_name, leaf_key.public_key(), signer, ca=False, key_usage=leaf_usage,
                           not_before=leaf_not_before, not_after=leaf_not_after, extra=leaf_extra))
    keys.append(leaf_key)
    return Chain(certs, keys)


def make_crl(issuer: x509.Certificate, issuer_key: t.Any, revoked: t.Sequence[int], *, next_update: dt.datetime = NOT_AFTER,
             last_update: dt.datetime = NOT_BEFORE) -> str:
    """A PEM CRL from ``issuer`` revoking the serial numbers in ``revoked``."""
    builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
               .last_update(last_update).next_update(next_update))
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(dt.datetime(2026, 3, 1, tzinfo=UTC)).build())
    return builder.sign(issuer_key, _sign_hash(issuer_key)).public_bytes(serialization.Encoding.PEM).decode('ascii')


# ----------------------------------------------------------------------------------------------
# SPDM messages (DSP0274 1.2 layouts)


def _hdr(version: tuple[int, int], code: int, param1: int = 0, param2: int = 0) -> bytes:
    return bytes((version[0] << 4 | version[1], code, param1, param2))


def build_vca(version: tuple[int, int] = (1, 2), asym: str = 'ecdsa_p384', base_hash: str = 'sha384', meas_hash: str = 'sha384') -> bytes:
    """GET_VERSION, VERSION, GET_CAPABILITIES, CAPABILITIES, NEGOTIATE_ALGORITHMS, ALGORITHMS."""
    out = _hdr((1, 0), 0x84)
    out += _hdr((1, 0), 0x04) + bytes((0, 1)) + struct.pack('<H', version[0] << 12 | version[1] << 8)
    requester_flags = 0x2 | 0x4  # CERT_CAP, CHAL_CAP
    responder_flags = 0x2 | 0x4 | (2 << 3)  # CERT_CAP, CHAL_CAP, MEAS_CAP = signed
    out += _hdr(version, 0xE1) + bytes((0, 12)) + b'\0\0' + struct.pack('<III', requester_flags, 4096, 4096)
    out += _hdr(version, 0x61) + bytes((0, 12)) + b'\0\0' + struct.pack('<III', responder_flags, 4096, 4096)
    out += (_hdr(version, 0xE3) + struct.pack('<HBB', 32, 0x01, 0) + struct.pack('<II', ASYM_BITS[asym], BASE_HASH_BITS[base_hash])
            + bytes(12) + bytes((0, 0)) + bytes(2))
    out += (_hdr(version, 0x63) + struct.pack('<HBB', 36, 0x01, 0)
            + struct.pack('<III', MEAS_HASH_BITS[meas_hash], ASYM_BITS[asym], BASE_HASH_BITS[base_hash])
            + bytes(12) + bytes((0, 0)) + bytes(2))
    return out


@dataclasses.dataclass
class Block:
    index: int
    type: str
    value: bytes
    raw: bool = False

    def encode(self) -> bytes:
        value_type = TYPE_CODES[self.type] | (0x80 if self.raw else 0)
        measurement = bytes((value_type,)) + struct.pack('<H', len(self.value)) + self.value
        return bytes((self.index, 0x01)) + struct.pack('<H', len(measurement)) + measurement

    def parsed(self) -> dict[str, t.Any]:
        return {'index': self.index, 'spec': 'dmtf', 'type': self.type, 'type_code': TYPE_CODES[self.type],
                'raw': self.raw, 'value': self.value.hex(), 'size': len(self.value)}


def digest_of(label: str, alg: str = 'sha384') -> bytes:
    """A stand-in firmware digest, distinct per label."""
    return hashlib.new(alg, label.encode()).digest()


def default_blocks(firmware: str = 'fw-96.00.5A', svn: int = 5, meas_hash: str = 'sha384') -> list[Block]:
    return [
        Block(1, 'immutable_rom', digest_of('rom-1', meas_hash)),
        Block(2, 'mutable_firmware', digest_of(firmware, meas_hash)),
        Block(3, 'hardware_config', digest_of('hwcfg', meas_hash)),
        Block(4, 'firmware_svn', struct.pack('<Q', svn), raw=True),
    ]


def spdm_combined_prefix(version: tuple[int, int]) -> bytes:
    """DSP0274 1.2 combined_spdm_prefix for the MEASUREMENTS signing context (written independently)."""
    context = b'responder-measurements signing'
    return (b'dmtf-spdm-v%d.%d.*' % version) * 4 + bytes(36 - len(context)) + context


def spdm_sign(private_key: t.Any, asym: str, base_hash: str, version: tuple[int, int], l1l2: bytes) -> bytes:
    """Sign L1/L2 as an SPDM 1.2 responder does; ECDSA comes out as raw r || s."""
    message = spdm_combined_prefix(version) + hashlib.new(base_hash, l1l2).digest()
    hash_obj = HASHES[base_hash]()
    if asym.startswith('ecdsa_'):
        size = {'ecdsa_p256': 32, 'ecdsa_p384': 48, 'ecdsa_p521': 66}[asym]
        r_value, s_value = decode_dss_signature(private_key.sign(message, ec.ECDSA(hash_obj)))
        return r_value.to_bytes(size, 'big') + s_value.to_bytes(size, 'big')
    if asym.startswith('rsassa_'):
        return private_key.sign(message, padding.PKCS1v15(), hash_obj)
    if asym.startswith('rsapss_'):
        return private_key.sign(message, padding.PSS(mgf=padding.MGF1(hash_obj), salt_length=hash_obj.digest_size), hash_obj)
    if asym == 'eddsa_ed25519':
        return private_key.sign(message)
    if asym == 'eddsa_ed448':
        return private_key.sign(message)  # pure Ed448 with an empty context: the verifier must refuse, not accept
    raise ValueError(asym)


def build_measurements(vca: bytes, blocks: t.Sequence[Block], signing_key: t.Any, *, version: tuple[int, int] = (1, 2),
                       asym: str = 'ecdsa_p384', base_hash: str = 'sha384', request_nonce: bytes = b'\x11' * 32,
                       response_nonce: bytes = b'\x22' * 32, opaque: bytes = b'', signed: bool = True,
                       include_request: bool = True) -> tuple[bytes, int, t.Optional[bytes]]:
    """GET_MEASUREMENTS (all blocks) + MEASUREMENTS. Returns (object bytes, signed_length, signature)."""
    request = b''
    if include_request:
        request = _hdr(version, 0xE0, 0x01 if signed else 0x00, 0xFF)
        if signed:
            request += request_nonce + b'\x00'
    record = b''.join(block.encode() for block in blocks)
    response = (_hdr(version, 0x60, 0, 0) + bytes((len(blocks),)) + struct.pack('<I', len(record))[:3] + record
                + response_nonce + struct.pack('<H', len(opaque)) + opaque)
    body = request + response
    if not signed:
        return body, len(body), None
    signature = spdm_sign(signing_key, asym, base_hash, version, vca + body)
    return body + signature, len(body), signature


def build_cert_chain(chain: Chain, base_hash: str = 'sha384') -> bytes:
    """SPDM certificate chain format: Length (2), Reserved (2), RootHash, concatenated DER certificates."""
    ders = b''.join(chain.ders)
    root_hash = hashlib.new(base_hash, chain.ders[0]).digest()
    return struct.pack('<HH', 4 + len(root_hash) + len(ders), 0) + root_hash + ders


@dataclasses.dataclass
class Range:
    first_page: int
    pages: int
    range_id: int
    msix_table: bool = False
    msix_pba: bool = False
    non_tee_mem: bool = False
    mem_attr_updatable: bool = False

    @property
    def attributes_raw(self) -> int:
        return (self.msix_table * 0x1) | (self.msix_pba * 0x2) | (self.non_tee_mem * 0x4) | (self.mem_attr_updatable * 0x8)


def build_report(*, no_fw_update: bool = True, dma_without_pasid: bool = True, dma_with_pasid: bool = False, ats: bool = False,
                 prs: bool = False, ranges: t.Sequence[Range] = (Range(0x1000, 16, 0), Range(0x2000, 4, 1, msix_table=True)),
                 device_specific: bytes = b'') -> tuple[bytes, dict[str, t.Any]]:
    """The TDISP device interface report bytes and the parsed dict (contract shape)."""
    info = (no_fw_update * 0x1) | (dma_without_pasid * 0x2) | (dma_with_pasid * 0x4) | (ats * 0x8) | (prs * 0x10)
    raw = struct.pack('<HHHHII', info, 0, 0, 0, 0, len(ranges))
    for item in ranges:
        raw += struct.pack('<QIHH', item.first_page, item.pages, item.attributes_raw, item.range_id)
    raw += struct.pack('<I', len(device_specific)) + device_specific
    parsed = {
        'interface_info': {'raw': info, 'no_fw_update': no_fw_update, 'dma_without_pasid': dma_without_pasid,
                           'dma_with_pasid': dma_with_pasid, 'ats': ats, 'prs': prs},
        'msix_message_control': 0, 'lnr_control': 0, 'tph_control': 0,
        'mmio_ranges': [{'first_page': item.first_page, 'pages': item.pages, 'range_id': item.range_id,
                         'attributes': {'raw': item.attributes_raw, 'msix_table': item.msix_table, 'msix_pba': item.msix_pba,
                                        'non_tee_mem': item.non_tee_mem, 'mem_attr_updatable': item.mem_attr_updatable}}
                        for item in ranges],
        'device_specific_info': device_specific.hex(),
    }
    return raw, parsed


def object_entry(raw: bytes) -> dict[str, t.Any]:
    return {'digest': 'sha384:' + hashlib.sha384(raw).hexdigest(), 'length': len(raw), 'data': base64.b64encode(raw).decode('ascii')}


def make_evidence(chain: t.Optional[Chain] = None, blocks: t.Optional[t.Sequence[Block]] = None, *, version: tuple[int, int] = (1, 2),
                  asym: t.Optional[str] = None, base_hash: str = 'sha384', meas_hash: str = 'sha384', signed: bool = True,
                  include_request: bool = True, signing_key: t.Any = None, request_nonce: bytes = b'\x11' * 32,
                  report: t.Optional[tuple[bytes, dict[str, t.Any]]] = None, generation: int = 7,
                  firmware_version: t.Optional[str] = '96.00.5A.00.01') -> dict[str, t.Any]:
    """One device's evidence dict, exactly as the target-side parsers' contract describes it."""
    chain = chain or make_chain()
    blocks = list(blocks if blocks is not None else default_blocks(meas_hash=meas_hash if meas_hash != 'raw_only' else 'sha384'))
    asym = asym or 'ecdsa_p384'
    vca_raw = build_vca(version, asym, base_hash, meas_hash)
    meas_raw, signed_length, signature = build_measurements(
        vca_raw, blocks, signing_key or chain.leaf_key, version=version, asym=asym, base_hash=base_hash,
        request_nonce=request_nonce, signed=signed, include_request=include_request)
    cert_raw = build_cert_chain(chain, base_hash)
    report_raw, report_parsed = report or build_report()
    svns = [int.from_bytes(b.value, 'little') for b in blocks if b.type == 'firmware_svn']
    request_length = (4 + (33 if signed else 0)) if include_request else 0
    return {
        'generation': generation,
        'objects': {'cert0': object_entry(cert_raw), 'vca': object_entry(vca_raw), 'measurements': object_entry(meas_raw),
                    'report': object_entry(report_raw)},
        'vca': {'version': '%d.%d' % version, 'base_hash_algo': base_hash, 'base_asym_algo': asym, 'measurement_hash_algo': meas_hash,
                'hash_size': hashlib.new(base_hash).digest_size},
        'measurements': {
            'spdm_version': '%d.%d' % version,
            'request': {'present': include_request, 'signature_requested': signed if include_request else None,
                        'nonce': request_nonce.hex() if include_request and signed else None},
            'blocks': [block.parsed() for block in blocks],
            'firmware_svn': min(svns) if svns else None,
            'firmware_version': firmware_version,
            'nonce': (b'\x22' * 32).hex(),
            'opaque': '',
            'signature': signature.hex() if signature is not None else None,
            'signed_length': signed_length,
            'request_length': request_length,
        },
        'certificates': {'length': len(cert_raw), 'hash_size': hashlib.new(base_hash).digest_size,
                         'root_hash': hashlib.new(base_hash, chain.ders[0]).hexdigest(),
                         'certificates': [base64.b64encode(der).decode('ascii') for der in chain.ders]},
        'interface_report': report_parsed,
        'errors': [],
    }


def replace_object(evidence: dict[str, t.Any], object_type: str, raw: bytes) -> dict[str, t.Any]:
    """A copy of ``evidence`` whose raw object is ``raw`` (digest and length kept consistent)."""
    result = copy.deepcopy(evidence)
    result['objects'][object_type] = object_entry(raw)
    return result


def raw_object(evidence: dict[str, t.Any], object_type: str) -> bytes:
    return base64.b64decode(evidence['objects'][object_type]['data'])


def digest_text(value: bytes, alg: str = 'sha384') -> str:
    return '%s:%s' % (alg, value.hex())


def manifest_for(evidence: dict[str, t.Any], chain: Chain, **overrides: t.Any) -> dict[str, t.Any]:
    """A manifest that the given evidence satisfies; ``overrides`` replace top-level keys."""
    manifest: dict[str, t.Any] = {
        'description': 'EG100 firmware 96.00.5A',
        'trust_anchors': [':'.join(chain.root_fingerprint[i:i + 2] for i in range(0, 64, 2)).upper()],
        'intermediates_max': 1,
        'leaf_subject': LEAF_SUBJECT_REGEX,
        'measurements': [
            {'index': block['index'], 'digests': [
                'sha384:' + (hashlib.sha384(bytes.fromhex(block['value'])).hexdigest() if block['raw'] else block['value'])],
             'description': block['type']}
            for block in evidence['measurements']['blocks']
        ],
        'min_svn': 5,
        'interface': {'no_fw_update': True, 'ats': False, 'prs': False, 'dma_with_pasid': False, 'max_mmio_ranges': 8,
                      'non_tee_mmio': False},
    }
    manifest.update(overrides)
    return manifest
