# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Parser for the ``cert0`` .. ``cert7`` evidence objects (private; may change at any time).

Each object is one SPDM certificate chain as a slot holds it (DMTF DSP0274 1.2/1.3, "Certificate
chain format" table; libspdm ``spdm_cert_chain_t``)::

    Length      2 bytes  little-endian, total length of the chain including these 4 header bytes
    Reserved    2 bytes
    RootHash    H bytes  digest of the DER root certificate with the negotiated base hash
    Certificates         DER X.509 v3 certificates, root (or the first one signed by the root) first,
                         leaf last

The certificates are split with a minimal DER reader (ITU-T X.690 definite-length TLVs; no crypto
library is available on the target). Each certificate must be a SEQUENCE holding exactly
tbsCertificate (SEQUENCE), signatureAlgorithm (SEQUENCE) and signatureValue (BIT STRING), as
RFC 5280 section 4.1 defines ``Certificate``. Nothing here verifies signatures or names: that is
the controller-side verifier's job.
"""

from __future__ import annotations

import base64
import hashlib
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError
from ansible_collections.coco.tdisp.plugins.module_utils._evidence._reader import Reader, as_bytes

HASH_SIZES = (32, 48, 64)
HEADER_SIZE = 4
# Digest algorithms of each size in hashlib that can reproduce RootHash (SM3 may be absent from hashlib).
_DIGESTS_BY_SIZE: t.Dict[int, t.Tuple[str, ...]] = {
    32: ('sha256', 'sha3_256', 'sm3'),
    48: ('sha384', 'sha3_384'),
    64: ('sha512', 'sha3_512'),
}
_SEQUENCE = 0x30
_BIT_STRING = 0x03


def _tlv(r: Reader, field: str) -> t.Tuple[int, int, int]:
    """Read one DER TLV header at ``r.pos``; return (tag, content start, content end) and move past the TLV."""
    start = r.pos
    tag = r.u8(field + ' tag')
    if tag & 0x1F == 0x1F:
        raise r.fail(field, 'high-tag-number form 0x%02x is not used in certificates' % tag, start)
    first = r.u8(field + ' length')
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise r.fail(field, 'indefinite length is not DER', start + 1)
    else:
        count = first & 0x7F
        if count > 4:
            raise r.fail(field, 'length of %d length octets is too large' % count, start + 1)
        octets = r.take(count, field + ' length')
        length = int.from_bytes(octets, 'big')
        if octets[0] == 0 or length < 0x80:
            raise r.fail(field, 'length %d is not minimally encoded (not DER)' % length, start + 1)
    if length > r.remaining:
        raise r.fail(field, 'DER length %d overruns the chain (%d bytes left)' % (length, r.remaining), start + 1)
    content = r.pos
    r.pos += length
    return tag, content, r.pos


def _certificate(r: Reader, number: int) -> bytes:
    """One DER certificate at ``r.pos``: SEQUENCE { SEQUENCE, SEQUENCE, BIT STRING }."""
    field = 'Certificates[%d]' % number
    start = r.pos
    tag, content, end = _tlv(r, field)
    if tag != _SEQUENCE:
        raise r.fail(field, 'tag 0x%02x is not a DER SEQUENCE (0x30)' % tag, start)
    inner = Reader(r.data, r.obj, content, end, field + ' length')
    for part, expected in (('tbsCertificate', _SEQUENCE), ('signatureAlgorithm', _SEQUENCE), ('signatureValue', _BIT_STRING)):
        part_at = inner.pos
        got, _c, _e = _tlv(inner, '%s.%s' % (field, part))
        if got != expected:
            raise inner.fail('%s.%s' % (field, part), 'tag 0x%02x, expected 0x%02x' % (got, expected), part_at)
    inner.done(field)
    return r.data[start:end]


def _split(data: bytes, start: int) -> t.List[bytes]:
    r = Reader(data, 'cert chain', start)
    certificates: t.List[bytes] = []
    while r.remaining:
        certificates.append(_certificate(r, len(certificates)))
    if not certificates:
        raise r.fail('Certificates', 'no certificate after RootHash')
    return certificates


def _root_hash_algo(root_hash: bytes, root: bytes) -> t.Optional[str]:
    """Name of the hashlib digest of the root certificate that equals RootHash, if any."""
    for name in _DIGESTS_BY_SIZE.get(len(root_hash), ()):
        try:
            if hashlib.new(name, root).digest() == root_hash:
                return name
        except ValueError:  # digest not provided by this Python/OpenSSL build
            continue
    return None


def parse_cert_chain(data: bytes, hash_size: t.Optional[int] = None) -> t.Dict[str, t.Any]:
    """Parse an SPDM certificate chain. ``hash_size`` (VCA ``hash_size``) is inferred when None: the
    size in {32, 48, 64} after which the rest splits exactly into certificates (ties broken by which
    RootHash a standard digest of the first certificate reproduces)."""
    data = as_bytes(data, 'cert chain')
    r = Reader(data, 'cert chain')
    if hash_size is not None and (isinstance(hash_size, bool) or not isinstance(hash_size, int) or hash_size <= 0):
        raise r.fail('hash_size', 'argument must be a positive integer or None, got %r' % (hash_size,), None)
    length = r.u16('Length')
    r.u16('Reserved')
    if length != len(data):
        raise r.fail('Length', 'the chain says %d bytes but the object holds %d' % (length, len(data)), 0)

    if hash_size is not None:
        r.need(hash_size, 'RootHash')
        certificates = _split(data, HEADER_SIZE + hash_size)
    else:
        candidates: t.List[t.Tuple[int, t.List[bytes]]] = []
        errors: t.List[str] = []
        for size in HASH_SIZES:
            if HEADER_SIZE + size >= len(data):
                continue
            try:
                candidates.append((size, _split(data, HEADER_SIZE + size)))
            except EvidenceError as exc:
                errors.append('H=%d: %s' % (size, exc.cause))
        if len(candidates) > 1:
            matching = [c for c in candidates if _root_hash_algo(data[HEADER_SIZE:HEADER_SIZE + c[0]], c[1][0])]
            if len(matching) == 1:
                candidates = matching
        if len(candidates) != 1:
            if candidates:
                problem = 'ambiguous: the certificates split exactly after a RootHash of %s bytes; pass hash_size' % (
                    ' or '.join(str(c[0]) for c in candidates))
            else:
                problem = 'no RootHash size in 32, 48, 64 leaves a sequence of DER certificates (%s)' % (
                    '; '.join(errors) or 'the object is too short')
            raise r.fail('RootHash', problem, HEADER_SIZE)
        hash_size, certificates = candidates[0]

    root_hash = data[HEADER_SIZE:HEADER_SIZE + hash_size]
    return {
        'length': length,
        'hash_size': hash_size,
        'root_hash': root_hash.hex(),
        'root_hash_algo': _root_hash_algo(root_hash, certificates[0]),
        'certificates': [base64.b64encode(cert).decode('ascii') for cert in certificates],
    }
