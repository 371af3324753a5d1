# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Device evidence verification against a reference manifest (private; may change at any time).

Input: one device's evidence dict (the target-side parsers' contract, ``docs/internals.md``), one
validated ``Manifest`` and ``now``. Output: a verdict in the EAR trust-tier vocabulary
(draft-ietf-rats-ear: ``affirming``, ``warning``, ``contraindicated``)::

    {"status": ..., "manifest": name, "generation": int, "evaluated_at": iso8601,
     "checks": [{"check": ..., "status": ..., "reasons": [...], "details": {...}}, ...],
     "reasons": [every reason, flat, each prefixed with its check]}

The overall status is the worst status of the checks. Every reason is one line that names the
object (certificate position and subject, measurement index, evidence object, manifest field).

The measurement signature is verified as DSP0274 (SPDM) 1.2 and later define it; see
``measurement_signed_message()`` for the exact bytes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import functools
import hashlib
import typing as t
from collections.abc import Mapping, Sequence

from ansible_collections.coco.tdisp.plugins.plugin_utils._manifest import (
    HASH_SIZES,
    INTERFACE_BOOL_KEYS,
    Manifest,
    UTC,
    format_fingerprint,
)

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
except ImportError as _exc:  # pragma: no cover - exercised by the sanity import test only
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR: t.Optional[ImportError] = _exc
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None


AFFIRMING = 'affirming'
WARNING = 'warning'
CONTRAINDICATED = 'contraindicated'
_RANK = {AFFIRMING: 0, WARNING: 1, CONTRAINDICATED: 2}

CHECK_NAMES: tuple[str, ...] = (
    'certificate_chain', 'measurement_signature', 'measurements', 'svn', 'interface_report', 'evidence_integrity',
)

CERT_OBJECT = 'cert0'
"""The certificate chain the verifier uses: SPDM slot 0 (the parsers' ``certificates`` key)."""

PARSED_KEY = {'cert0': 'certificates', 'vca': 'vca', 'measurements': 'measurements', 'report': 'interface_report'}

# DSP0274 1.2, "Signature generation": the combined SPDM prefix is 100 bytes: the 16-byte version
# string "dmtf-spdm-v<major>.<minor>.*" four times (64 bytes), then zero bytes, then the signing
# context string, so that the context ends at byte 100. The context for a MEASUREMENTS response is
# "responder-measurements signing" (30 bytes), so the zero padding is 36 - 30 = 6 bytes.
SPDM_PREFIX_SIZE = 100
SPDM_VERSION_STRING_SIZE = 16
MEASUREMENTS_SIGNING_CONTEXT = b'responder-measurements signing'

_WEAK_CERT_HASHES = frozenset(('md5', 'sha1'))


class VerifyError(Exception):
    """Verification cannot run at all (a controller problem, not an evidence problem)."""


def require_cryptography() -> None:
    """Raise ``VerifyError`` with a one-line remedy when ``cryptography`` is missing."""
    if not HAS_CRYPTOGRAPHY:
        raise VerifyError('evidence verification needs the Python package "cryptography" on the controller '
                          '(pip install -r requirements/controller.txt): %s' % CRYPTOGRAPHY_IMPORT_ERROR)


def worst(statuses: t.Iterable[str]) -> str:
    """The worst EAR status of ``statuses`` (``affirming`` for none)."""
    result = AFFIRMING
    for status in statuses:
        if _RANK[status] > _RANK[result]:
            result = status
    return result


# --------------------------------------------------------------------------------------------
# The signed message (DSP0274 1.2+)


def parse_spdm_version(value: t.Any) -> t.Optional[tuple[int, int]]:
    """``"1.2"`` -> (1, 2); ``None`` when not a ``<major>.<minor>`` version."""
    if not isinstance(value, str):
        return None
    parts = value.strip().split('.')
    if len(parts) < 2 or not all(part.isdigit() for part in parts[:2]):
        return None
    return int(parts[0]), int(parts[1])


def spdm_signing_prefix(version: tuple[int, int], context: bytes = MEASUREMENTS_SIGNING_CONTEXT) -> bytes:
    """The DSP0274 1.2+ ``combined_spdm_prefix`` for ``version`` and a signing ``context``.

    ``b"dmtf-spdm-v1.2.*" * 4 + b"\\x00" * (36 - len(context)) + context``: 100 bytes.
    """
    major, minor = version
    if not (0 <= major <= 9 and 0 <= minor <= 9):
        raise ValueError('SPDM version %d.%d does not fit the one-digit version string of the signing prefix' % version)
    one = ('dmtf-spdm-v%d.%d.*' % (major, minor)).encode('ascii')  # SPDM_VERSION_STRING_SIZE bytes
    pad = SPDM_PREFIX_SIZE - 4 * SPDM_VERSION_STRING_SIZE - len(context)
    if pad < 0:
        raise ValueError('signing context of %d bytes does not fit the %d-byte SPDM prefix' % (len(context), SPDM_PREFIX_SIZE))
    return one * 4 + b'\x00' * pad + context


def hash_bytes(algorithm: str, data: bytes) -> bytes:
    """Digest ``data`` with an SPDM hash name (``sha384``, ``sha3_256``, ...)."""
    return hashlib.new(algorithm, data).digest()


def measurement_signed_message(vca: bytes, measurements: bytes, signed_length: int, version: tuple[int, int],
                               base_hash_algo: str) -> bytes:
    """The exact bytes the device's MEASUREMENTS signature covers (SPDM 1.2 and later).

    ``L1/L2 = VCA || measurements[:signed_length]`` where ``VCA`` is the raw ``vca`` evidence
    object (GET_VERSION, VERSION, GET_CAPABILITIES, CAPABILITIES, NEGOTIATE_ALGORITHMS,
    ALGORITHMS as exchanged) and ``measurements`` is the raw ``measurements`` object
    (GET_MEASUREMENTS request followed by the MEASUREMENTS response; ``signed_length`` stops
    before the Signature field). The message ``M`` that the asymmetric algorithm signs is::

        M = combined_spdm_prefix(version, "responder-measurements signing")   # 100 bytes
            || Hash_BaseHashAlgo(L1/L2)                                       # 32/48/64 bytes

    RSA and ECDSA then sign ``M`` with the BaseHashAlgo as their hash (so the digest input is
    ``M``, not ``Hash(L1/L2)``); ECDSA signatures travel as raw ``r || s``. Ed25519 signs ``M``
    (pure EdDSA, no context). Ed448 signs ``M`` with the signing context string as its EdDSA
    context, which ``cryptography`` cannot verify (reported, never accepted silently).
    """
    transcript = vca + measurements[:signed_length]
    return spdm_signing_prefix(version) + hash_bytes(base_hash_algo, transcript)


# --------------------------------------------------------------------------------------------
# Small helpers


class _Check:
    def __init__(self, name: str) -> None:
        self.name = name
        self.status = AFFIRMING
        self.reasons: list[str] = []
        self.details: dict[str, t.Any] = {}

    def add(self, status: str, reason: str) -> None:
        self.reasons.append(' '.join(reason.split()))
        self.status = worst((self.status, status))

    def fail(self, reason: str) -> None:
        self.add(CONTRAINDICATED, reason)

    def warn(self, reason: str) -> None:
        self.add(WARNING, reason)

    def as_dict(self) -> dict[str, t.Any]:
        return {'check': self.name, 'status': self.status, 'reasons': list(self.reasons), 'details': dict(self.details)}


def _iso(moment: _dt.datetime) -> str:
    return moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')


def _short(hex_text: str, keep: int = 16) -> str:
    return hex_text if len(hex_text) <= keep else hex_text[:keep] + '...'


def _mapping(value: t.Any) -> t.Optional[Mapping[str, t.Any]]:
    return value if isinstance(value, Mapping) else None


def _hex_bytes(value: t.Any) -> t.Optional[bytes]:
    if not isinstance(value, str):
        return None
    try:
        return bytes.fromhex(value.replace(':', '').strip())
    except ValueError:
        return None


def _is_int(value: t.Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def normalize_nonce(value: t.Any) -> t.Optional[str]:
    """An expected nonce as lower-case hex; ``None`` when it is not hex text or bytes."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    raw = _hex_bytes(value)
    return raw.hex() if raw else None


class _Evidence:
    """Read-side view of the evidence dict, tolerant of every malformation."""

    def __init__(self, evidence: t.Any) -> None:
        self.root = _mapping(evidence)
        root = self.root or {}
        self.objects = _mapping(root.get('objects')) or {}
        self.errors: dict[str, list[str]] = {}
        errors = root.get('errors')
        if isinstance(errors, Sequence) and not isinstance(errors, (str, bytes)):
            for item in errors:
                item_map = _mapping(item)
                if item_map is None:
                    self.errors.setdefault('?', []).append(str(item))
                    continue
                self.errors.setdefault(str(item_map.get('object', '?')), []).append(' '.join(str(item_map.get('msg', '')).split()))
        self._raw: dict[str, t.Optional[bytes]] = {}

    def parsed(self, object_type: str) -> t.Optional[Mapping[str, t.Any]]:
        value = _mapping((self.root or {}).get(PARSED_KEY[object_type]))
        if object_type == CERT_OBJECT and value is not None and 'certificates' not in value:
            # tdisp_device_info reports every slot: {"cert0": <chain>, "cert1": ...}; the verifier uses slot 0
            value = _mapping(value.get(CERT_OBJECT))
        return value

    def raw(self, object_type: str) -> t.Optional[bytes]:
        """The object's raw bytes from ``objects.<type>.data``; ``None`` when absent or not base64."""
        if object_type not in self._raw:
            entry = _mapping(self.objects.get(object_type)) or {}
            data = entry.get('data')
            value = None
            if isinstance(data, str):
                try:
                    value = base64.b64decode(data, validate=True)
                except (binascii.Error, ValueError):
                    value = None
            self._raw[object_type] = value
        return self._raw[object_type]

    def omitted(self, object_type: str) -> t.Optional[str]:
        """Why the object's raw data was left out by the reader (``data: null``), or ``None``."""
        entry = _mapping(self.objects.get(object_type)) or {}
        if 'data' in entry and entry['data'] is None:
            return str(entry.get('omitted') or 'data left out by the reader')
        return None

    def why_missing(self, object_type: str) -> str:
        """Why a parsed object is missing, for "not evaluated" reasons."""
        if object_type in self.errors:
            return 'object %s: %s' % (object_type, self.errors[object_type][0])
        if '*' in self.errors and object_type not in self.objects:
            return 'the evidence read failed: %s' % self.errors['*'][0]
        if object_type not in self.objects:
            return 'object %s is absent from the evidence' % object_type
        return 'object %s was not parsed' % object_type


# --------------------------------------------------------------------------------------------
# evidence_integrity


def _needed_objects(manifest: Manifest) -> dict[str, str]:
    needed = {
        'cert0': 'the certificate chain (slot 0)',
        'vca': 'the negotiated algorithms and the signed transcript',
        'measurements': 'the measurement indices and the SVN',
    }
    if manifest.interface:
        needed['report'] = 'the interface properties'
    return needed


def _check_integrity(ev: _Evidence, manifest: Manifest) -> _Check:
    check = _Check('evidence_integrity')
    if ev.root is None:
        check.fail('evidence: not a mapping; collect it with coco.tdisp.tdisp_device_info (include_evidence: true)')
        return check
    needed = _needed_objects(manifest)
    for object_type in sorted(ev.errors):
        for message in ev.errors[object_type]:
            if object_type == '*':
                check.fail('evidence read: %s' % message)
            elif object_type in needed:
                check.fail('object %s: %s (manifest %s needs it for %s)' % (object_type, message, manifest.name, needed[object_type]))
            else:
                check.warn('object %s: %s (not used by manifest %s)' % (object_type, message, manifest.name))
    generation = ev.root.get('generation')
    if not _is_int(generation) and '*' not in ev.errors:
        check.fail('evidence.generation: missing or not an integer (%r); a verdict must name the evidence generation it is about' % (generation,))
    for object_type, purpose in needed.items():
        if object_type in ev.errors or ('*' in ev.errors and object_type not in ev.objects):
            continue
        if ev.parsed(object_type) is None:
            where = 'absent from the evidence' if object_type not in ev.objects else 'present but not parsed (and no parser error given)'
            check.fail('object %s: %s; manifest %s needs it for %s' % (object_type, where, manifest.name, purpose))
    for object_type in sorted(ev.objects):
        _check_object_digest(check, ev, object_type, object_type in needed)
    check.details['generation'] = generation if _is_int(generation) else None
    return check


def _check_object_digest(check: _Check, ev: _Evidence, object_type: str, needed: bool) -> None:
    entry = _mapping(ev.objects.get(object_type))
    add = check.fail if needed else check.warn
    if entry is None:
        add('object %s: not a mapping in evidence.objects' % object_type)
        return
    if entry.get('data') is None:
        return  # not transferred (absent, or left out above the reader's max_object_size): nothing to hash
    raw = ev.raw(object_type)
    if raw is None:
        add('object %s: data is not base64' % object_type)
        return
    length = entry.get('length')
    if length is not None and length != len(raw):
        add('object %s: length %r but the data holds %d bytes' % (object_type, length, len(raw)))
    digest = entry.get('digest')
    if digest is None:
        return
    alg, _sep, value = str(digest).partition(':')
    alg = alg.lower().replace('-', '_')
    if alg not in HASH_SIZES:
        check.warn('object %s: digest algorithm %r unknown, the object digest was not checked' % (object_type, alg))
        return
    actual = hash_bytes(alg, raw).hex()
    if actual != value.strip().lower():
        add('object %s: digest %s:%s does not match its data (%s:%s)' % (object_type, alg, _short(value), alg, _short(actual)))


# --------------------------------------------------------------------------------------------
# certificate_chain


class _Chain:
    def __init__(self) -> None:
        self.certs: list[t.Any] = []
        self.ders: list[bytes] = []

    def label(self, position: int) -> str:
        count = len(self.certs)
        if count == 1:
            role = 'root and leaf'
        elif position == 0:
            role = 'root'
        elif position == count - 1:
            role = 'leaf'
        else:
            role = 'intermediate'
        try:
            subject = self.certs[position].subject.rfc4514_string() or '(empty subject)'
        except ValueError:
            subject = '(unprintable subject)'
        return 'certificate [%d] (%s) %s' % (position, role, subject)

    @property
    def leaf(self) -> t.Any:
        return self.certs[-1] if self.certs else None


@functools.lru_cache(maxsize=1)
def _handled_extensions() -> frozenset[str]:
    """Extensions the verifier processes or may safely ignore; any other critical extension rejects a certificate."""
    oids = x509.oid.ExtensionOID
    return frozenset(oid.dotted_string for oid in (
        oids.BASIC_CONSTRAINTS, oids.KEY_USAGE, oids.EXTENDED_KEY_USAGE, oids.SUBJECT_KEY_IDENTIFIER,
        oids.AUTHORITY_KEY_IDENTIFIER, oids.SUBJECT_ALTERNATIVE_NAME,
    ))


def _extension(cert: t.Any, cls: t.Any) -> t.Any:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _load_chain(check: _Check, ev: _Evidence) -> t.Optional[_Chain]:
    parsed = ev.parsed(CERT_OBJECT)
    if parsed is None:
        check.fail('not evaluated: %s' % ev.why_missing(CERT_OBJECT))
        return None
    items = parsed.get('certificates')
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)) or not items:
        check.fail('certificate chain: no certificates in the parsed slot 0 chain')
        return None
    chain = _Chain()
    for position, item in enumerate(items):
        try:
            der = base64.b64decode(str(item), validate=True)
            cert = x509.load_der_x509_certificate(der)
            cert.subject.rfc4514_string()  # decode the name now: a bad name is a bad certificate
        except (binascii.Error, ValueError, TypeError) as exc:
            check.fail('certificate [%d]: not a DER X.509 certificate (%s)' % (position, ' '.join(str(exc).split())))
            return None
        chain.certs.append(cert)
        chain.ders.append(der)
    return chain


def _check_chain(ev: _Evidence, manifest: Manifest, now: _dt.datetime) -> tuple[_Check, t.Optional[_Chain]]:
    check = _Check('certificate_chain')
    chain = _load_chain(check, ev)
    if chain is None:
        return check, None
    certs = chain.certs
    count = len(certs)
    root = certs[0]
    fingerprint = hashlib.sha256(chain.ders[0]).hexdigest()
    check.details.update({
        'length': count,
        'root_fingerprint': format_fingerprint(fingerprint),
        'leaf_subject': chain.leaf.subject.rfc4514_string(),
    })

    _check_root_hash(check, ev, chain)

    # Trust anchor and self-signature of the root.
    if fingerprint not in manifest.trust_anchors:
        check.fail('%s: SHA-256 fingerprint %s is not in trust_anchors of manifest %s'
                   % (chain.label(0), format_fingerprint(fingerprint), manifest.name))
    if root.issuer != root.subject:
        check.fail('%s: not self-signed (issuer %s differs from the subject); the chain must start at a root'
                   % (chain.label(0), root.issuer.rfc4514_string()))
    else:
        _check_signature_by(check, chain, 0, 0)

    # Chain depth.
    intermediates = max(count - 2, 0)
    if manifest.intermediates_max is not None and intermediates > manifest.intermediates_max:
        check.fail('certificate chain: %d intermediate certificates, manifest %s allows at most %d (intermediates_max)'
                   % (intermediates, manifest.name, manifest.intermediates_max))

    for position, cert in enumerate(certs):
        label = chain.label(position)
        _check_validity(check, label, cert, now)
        _check_cert_hash(check, label, cert)
        _check_critical_extensions(check, label, cert)
        if position > 0:
            if cert.issuer != certs[position - 1].subject:
                check.fail('%s: issuer %s is not the subject of %s' % (label, cert.issuer.rfc4514_string(), chain.label(position - 1)))
            else:
                _check_signature_by(check, chain, position, position - 1)
        if position < count - 1:
            _check_issuer_rules(check, chain, position)
        if position == count - 1:
            _check_leaf_rules(check, chain, manifest)

    if manifest.crls:
        _check_crls(check, chain, manifest, now)
    return check, chain


def _check_root_hash(check: _Check, ev: _Evidence, chain: _Chain) -> None:
    parsed = ev.parsed(CERT_OBJECT) or {}
    vca = ev.parsed('vca') or {}
    root_hash = parsed.get('root_hash')
    alg = vca.get('base_hash_algo')
    if root_hash is None or alg not in HASH_SIZES:
        return
    actual = hash_bytes(str(alg), chain.ders[0]).hex()
    if str(root_hash).lower() != actual:
        check.fail('certificate chain: RootHash %s of the SPDM chain does not match the %s hash of %s (%s)'
                   % (_short(str(root_hash)), alg, chain.label(0), _short(actual)))


# The CA certificates are the same for every device of a model: remember which (certificate,
# issuer) pairs, by the SHA-256 of their DER, verified. Only successes are kept, so a failure is
# always checked again; the cache lives as long as the controller process (one host's task).
_VERIFIED_PAIRS: dict[tuple[bytes, bytes], bool] = {}
_VERIFIED_PAIRS_MAX = 4096


def _check_signature_by(check: _Check, chain: _Chain, position: int, issuer_position: int) -> None:
    cert = chain.certs[position]
    issuer = chain.certs[issuer_position]
    by = 'its own key' if position == issuer_position else 'the public key of %s' % chain.label(issuer_position)
    key = (hashlib.sha256(chain.ders[position]).digest(), hashlib.sha256(chain.ders[issuer_position]).digest())
    if key in _VERIFIED_PAIRS:
        return
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature:
        check.fail('%s: signature does not verify with %s' % (chain.label(position), by))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        check.fail('%s: signature cannot be checked with %s (%s)' % (chain.label(position), by, ' '.join(str(exc).split())))
    else:
        if len(_VERIFIED_PAIRS) >= _VERIFIED_PAIRS_MAX:
            _VERIFIED_PAIRS.clear()
        _VERIFIED_PAIRS[key] = True


def _check_validity(check: _Check, label: str, cert: t.Any, now: _dt.datetime) -> None:
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    if now < not_before:
        check.fail('%s: not valid before %s (now %s)' % (label, _iso(not_before), _iso(now)))
    if now > not_after:
        check.fail('%s: expired on %s (now %s)' % (label, _iso(not_after), _iso(now)))


def _check_cert_hash(check: _Check, label: str, cert: t.Any) -> None:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return  # reported by the signature check, which cannot verify it either
    if algorithm is not None and algorithm.name in _WEAK_CERT_HASHES:
        check.fail('%s: signed with %s, which is not accepted' % (label, algorithm.name.upper()))


def _check_critical_extensions(check: _Check, label: str, cert: t.Any) -> None:
    handled = _handled_extensions()
    for extension in cert.extensions:
        if extension.critical and extension.oid.dotted_string not in handled:
            check.fail('%s: critical extension %s is not understood by the verifier (RFC 5280 requires rejecting it)'
                       % (label, extension.oid.dotted_string))


def _check_issuer_rules(check: _Check, chain: _Chain, position: int) -> None:
    cert = chain.certs[position]
    label = chain.label(position)
    issued = chain.label(position + 1)
    constraints = _extension(cert, x509.BasicConstraints)
    if constraints is None:
        check.fail('%s: no basicConstraints extension; an issuer needs CA=true to issue %s' % (label, issued))
    elif not constraints.ca:
        check.fail('%s: basicConstraints CA=false, but it issues %s' % (label, issued))
    elif constraints.path_length is not None:
        below = len(chain.certs) - 2 - position
        if below > constraints.path_length:
            check.fail('%s: pathLenConstraint %d allows %d intermediate CA certificate(s) below it, the chain has %d'
                       % (label, constraints.path_length, constraints.path_length, below))
    usage = _extension(cert, x509.KeyUsage)
    if usage is None:
        check.fail('%s: no keyUsage extension; an issuer needs keyCertSign' % label)
    elif not usage.key_cert_sign:
        check.fail('%s: keyUsage lacks keyCertSign, but it issues %s' % (label, issued))


def _check_leaf_rules(check: _Check, chain: _Chain, manifest: Manifest) -> None:
    leaf = chain.leaf
    label = chain.label(len(chain.certs) - 1)
    usage = _extension(leaf, x509.KeyUsage)
    if usage is None:
        check.fail('%s: no keyUsage extension; the leaf needs digitalSignature to sign measurements' % label)
    elif not usage.digital_signature:
        check.fail('%s: keyUsage lacks digitalSignature, so it may not sign measurements' % label)
    subject = leaf.subject.rfc4514_string()
    if not manifest.leaf_subject.fullmatch(subject):
        check.fail('%s: subject %r does not match leaf_subject %r of manifest %s'
                   % (label, subject, manifest.leaf_subject.pattern, manifest.name))


def _check_crls(check: _Check, chain: _Chain, manifest: Manifest, now: _dt.datetime) -> None:
    crls = [x509.load_pem_x509_crl(text.encode('utf-8')) for text in manifest.crls]
    for position in range(1, len(chain.certs)):
        cert = chain.certs[position]
        issuer_position = position - 1
        issuer = chain.certs[issuer_position]
        label = chain.label(position)
        covering = []
        for number, crl in enumerate(crls):
            if crl.issuer != issuer.subject:
                continue
            try:
                valid = crl.is_signature_valid(issuer.public_key())
            except (TypeError, ValueError, UnsupportedAlgorithm):
                valid = False
            if not valid:
                check.warn('crls[%d] of manifest %s: names %s as issuer but its signature does not verify with that key; ignored'
                           % (number, manifest.name, chain.label(issuer_position)))
                continue
            covering.append((number, crl))
        if not covering:
            check.warn('%s: no CRL in manifest %s from its issuer %s; revocation not checked'
                       % (label, manifest.name, issuer.subject.rfc4514_string()))
            continue
        for number, crl in covering:
            next_update = crl.next_update_utc
            if next_update is not None and now > next_update:
                check.warn('crls[%d] of manifest %s (issuer %s): stale, next update was due %s'
                           % (number, manifest.name, issuer.subject.rfc4514_string(), _iso(next_update)))
            revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if revoked is not None:
                check.fail('%s: revoked (serial 0x%x) by crls[%d] of manifest %s on %s'
                           % (label, cert.serial_number, number, manifest.name, _iso(revoked.revocation_date_utc)))


# --------------------------------------------------------------------------------------------
# measurement_signature


_EC_CURVES = {'ecdsa_p256': ('secp256r1', 32), 'ecdsa_p384': ('secp384r1', 48), 'ecdsa_p521': ('secp521r1', 66)}


def _hash_object(name: str) -> t.Any:
    return {
        'sha256': hashes.SHA256, 'sha384': hashes.SHA384, 'sha512': hashes.SHA512,
        'sha3_256': hashes.SHA3_256, 'sha3_384': hashes.SHA3_384, 'sha3_512': hashes.SHA3_512,
    }[name]()


def _key_problem(asym: str, key: t.Any) -> t.Optional[str]:
    """Why the leaf key cannot make a ``asym`` signature, or ``None`` when it can."""
    if asym in _EC_CURVES:
        curve, _size = _EC_CURVES[asym]
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return 'the leaf key is %s, BaseAsymAlgo %s needs an EC key' % (type(key).__name__, asym)
        if key.curve.name != curve:
            return 'the leaf key is on %s, BaseAsymAlgo %s needs %s' % (key.curve.name, asym, curve)
        return None
    if asym.startswith(('rsassa_', 'rsapss_')):
        bits = int(asym.rsplit('_', 1)[1])
        if not isinstance(key, rsa.RSAPublicKey):
            return 'the leaf key is %s, BaseAsymAlgo %s needs an RSA key' % (type(key).__name__, asym)
        if key.key_size != bits:
            return 'the leaf key has %d bits, BaseAsymAlgo %s needs %d' % (key.key_size, asym, bits)
        return None
    if asym == 'eddsa_ed25519':
        return None if isinstance(key, ed25519.Ed25519PublicKey) else 'the leaf key is %s, BaseAsymAlgo %s needs Ed25519' % (type(key).__name__, asym)
    if asym == 'eddsa_ed448':
        return None if isinstance(key, ed448.Ed448PublicKey) else 'the leaf key is %s, BaseAsymAlgo %s needs Ed448' % (type(key).__name__, asym)
    return 'BaseAsymAlgo %r is not supported by the verifier' % asym


def _signature_size(asym: str) -> int:
    if asym in _EC_CURVES:
        return 2 * _EC_CURVES[asym][1]
    if asym.startswith(('rsassa_', 'rsapss_')):
        return int(asym.rsplit('_', 1)[1]) // 8
    return {'eddsa_ed25519': 64, 'eddsa_ed448': 114}[asym]


def _verify_raw(asym: str, base_hash: str, key: t.Any, signature: bytes, message: bytes) -> None:
    """Verify an SPDM signature over ``message``; raise ``InvalidSignature`` when it does not verify."""
    if asym in _EC_CURVES:
        size = _EC_CURVES[asym][1]
        r_value = int.from_bytes(signature[:size], 'big')
        s_value = int.from_bytes(signature[size:], 'big')
        key.verify(encode_dss_signature(r_value, s_value), message, ec.ECDSA(_hash_object(base_hash)))
    elif asym.startswith('rsassa_'):
        key.verify(signature, message, padding.PKCS1v15(), _hash_object(base_hash))
    elif asym.startswith('rsapss_'):
        pss = padding.PSS(mgf=padding.MGF1(_hash_object(base_hash)), salt_length=HASH_SIZES[base_hash])
        key.verify(signature, message, pss, _hash_object(base_hash))
    elif asym == 'eddsa_ed25519':
        key.verify(signature, message)
    else:
        raise UnsupportedAlgorithm('%s signatures cannot be verified' % asym)


def _check_signature(ev: _Evidence, manifest: Manifest, chain: t.Optional[_Chain]) -> _Check:
    check = _Check('measurement_signature')
    meas = ev.parsed('measurements')
    vca = ev.parsed('vca')
    if meas is None or vca is None:
        check.fail('not evaluated: %s' % ev.why_missing('measurements' if meas is None else 'vca'))
        return check
    asym = vca.get('base_asym_algo')
    base_hash = vca.get('base_hash_algo')
    check.details.update({'base_asym_algo': asym, 'base_hash_algo': base_hash})
    algorithms_ok = True
    if asym not in manifest.asym_algos:
        check.fail('vca: BaseAsymAlgo %s is not in asym_algos of manifest %s (%s)'
                   % (asym, manifest.name, ', '.join(sorted(manifest.asym_algos))))
        algorithms_ok = False
    if base_hash not in manifest.base_hash_algos:
        check.fail('vca: BaseHashAlgo %s is not in base_hash_algos of manifest %s (%s)'
                   % (base_hash, manifest.name, ', '.join(sorted(manifest.base_hash_algos))))
        algorithms_ok = False

    request = _mapping(meas.get('request')) or {}
    signature_hex = meas.get('signature')
    unsigned = None
    if not request.get('present'):
        unsigned = ('measurements: the object carries no GET_MEASUREMENTS request, so the signed L1/L2 transcript '
                    'cannot be rebuilt and the signature cannot be verified')
    elif not request.get('signature_requested') or signature_hex in (None, ''):
        unsigned = 'measurements: unsigned (the GET_MEASUREMENTS request did not ask for a signature)'
    if unsigned is not None:
        check.details['verified'] = False
        if manifest.signature == 'required':
            check.fail('%s; manifest %s requires a signature (signature: required)' % (unsigned, manifest.name))
        else:
            check.warn('%s; accepted unverified because manifest %s has signature: optional' % (unsigned, manifest.name))
        return check
    if not algorithms_ok:
        return check

    version = parse_spdm_version(meas.get('spdm_version'))
    vca_version = parse_spdm_version(vca.get('version'))
    if version is None:
        check.fail('measurements: SPDM version %r is not <major>.<minor>' % (meas.get('spdm_version'),))
        return check
    if vca_version is not None and vca_version != version:
        check.fail('measurements: SPDM version %d.%d differs from the negotiated version %d.%d in the vca object' % (version + vca_version))
        return check
    if version < (1, 2):
        check.fail('measurements: SPDM %d.%d signatures (no signing prefix, no VCA in L1/L2) are not supported; '
                   'the device must negotiate SPDM 1.2 or later' % version)
        return check
    if asym not in _EC_CURVES and not str(asym).startswith(('rsassa_', 'rsapss_')) and asym != 'eddsa_ed25519':
        reason = ('an Ed448 signature over the SPDM message uses the signing context as EdDSA context, '
                  'which the cryptography library cannot verify') if asym == 'eddsa_ed448' else 'not supported by the verifier'
        check.fail('measurements: BaseAsymAlgo %s: %s' % (asym, reason))
        return check
    if base_hash not in HASH_SIZES:
        check.fail('measurements: BaseHashAlgo %r is not supported by the verifier' % (base_hash,))
        return check

    vca_raw = ev.raw('vca')
    meas_raw = ev.raw('measurements')
    if vca_raw is None or meas_raw is None:
        missing = 'vca' if vca_raw is None else 'measurements'
        omitted = ev.omitted(missing)
        if omitted:
            check.fail('object %s: raw data omitted by the reader (%s), so the signed L1/L2 transcript cannot be rebuilt; '
                       'read the evidence with a larger max_object_size' % (missing, omitted))
        else:
            check.fail('object %s: no raw data (objects.%s.data), so the signed L1/L2 transcript cannot be rebuilt' % (missing, missing))
        return check
    signed_length = meas.get('signed_length')
    signature = _hex_bytes(signature_hex)
    if signature is None:
        check.fail('measurements: signature %r is not hexadecimal' % _short(str(signature_hex)))
        return check
    if not _is_int(signed_length) or not 0 < signed_length <= len(meas_raw):
        check.fail('measurements: signed_length %r is outside the %d-byte object' % (signed_length, len(meas_raw)))
        return check
    if meas_raw[signed_length:] != signature:
        check.fail('measurements: the parsed signature is not the %d bytes that follow signed_length %d in the object'
                   % (len(meas_raw) - signed_length, signed_length))
        return check
    expected_size = _signature_size(asym)
    if len(signature) != expected_size:
        check.fail('measurements: a %s signature has %d bytes, this one has %d' % (asym, expected_size, len(signature)))
        return check
    if chain is None:
        check.fail('not evaluated: no usable leaf certificate (see certificate_chain)')
        return check
    leaf_label = chain.label(len(chain.certs) - 1)
    try:
        key = chain.leaf.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        check.fail('%s: public key cannot be loaded (%s)' % (leaf_label, ' '.join(str(exc).split())))
        return check
    problem = _key_problem(str(asym), key)
    if problem:
        check.fail('%s: %s' % (leaf_label, problem))
        return check

    transcript_hash = hash_bytes(base_hash, vca_raw + meas_raw[:signed_length])
    message = measurement_signed_message(vca_raw, meas_raw, signed_length, version, base_hash)
    check.details.update({
        'spdm_version': '%d.%d' % version,
        'transcript_length': len(vca_raw) + signed_length,
        'transcript_hash': '%s:%s' % (base_hash, transcript_hash.hex()),
        'signed_message_length': len(message),
    })
    try:
        _verify_raw(str(asym), base_hash, key, signature, message)
    except InvalidSignature:
        check.details['verified'] = False
        check.fail('measurements: signature does not verify with the public key of %s over the DSP0274 %d.%d message '
                   '(signing prefix || %s(VCA || measurements[0:%d]))' % (leaf_label, version[0], version[1], base_hash, signed_length))
        return check
    check.details['verified'] = True
    return check


# --------------------------------------------------------------------------------------------
# measurements


def _block_digests(block: Mapping[str, t.Any], algorithms: set[str], measurement_hash: t.Any) -> tuple[dict[str, str], t.Optional[str], bool]:
    """The block's digest per algorithm, a problem (or None), and whether it was a raw bit stream."""
    value = _hex_bytes(block.get('value'))
    if value is None:
        return {}, 'value %r is not hexadecimal' % _short(str(block.get('value'))), False
    if block.get('raw'):
        return {alg: hash_bytes(alg, value).hex() for alg in sorted(algorithms)}, None, True
    if measurement_hash not in HASH_SIZES:
        return {}, 'a digest made with MeasurementHashAlgo %r, which the verifier does not know' % (measurement_hash,), False
    if len(value) != HASH_SIZES[measurement_hash]:
        return {}, 'value has %d bytes, a %s digest has %d' % (len(value), measurement_hash, HASH_SIZES[measurement_hash]), False
    return {str(measurement_hash): value.hex()}, None, False


def _check_measurements(ev: _Evidence, manifest: Manifest, now: _dt.datetime, nonce: t.Optional[str]) -> _Check:
    check = _Check('measurements')
    meas = ev.parsed('measurements')
    if meas is None:
        check.fail('not evaluated: %s' % ev.why_missing('measurements'))
        return check
    vca = ev.parsed('vca') or {}
    measurement_hash = vca.get('measurement_hash_algo')
    if measurement_hash in HASH_SIZES and measurement_hash not in manifest.measurement_hash_algos:
        check.fail('vca: MeasurementHashAlgo %s is not in measurement_hash_algos of manifest %s (%s)'
                   % (measurement_hash, manifest.name, ', '.join(sorted(manifest.measurement_hash_algos))))
    blocks = meas.get('blocks')
    if not isinstance(blocks, Sequence) or isinstance(blocks, (str, bytes)):
        check.fail('measurements: no list of measurement blocks')
        blocks = []
    by_index: dict[int, Mapping[str, t.Any]] = {}
    for position, block in enumerate(blocks):
        block_map = _mapping(block)
        index = block_map.get('index') if block_map else None
        if not _is_int(index):
            check.fail('measurements: block [%d] has no integer index' % position)
            continue
        if index in by_index:
            check.fail('index %d: appears more than once in the measurements' % index)
            continue
        by_index[index] = block_map

    matched: list[dict[str, t.Any]] = []
    for index in manifest.indices():
        entries = manifest.entries_for(index)
        block = by_index.get(index)
        if block is None:
            check.fail('index %d: absent from the measurements; manifest %s lists it' % (index, manifest.name))
            continue
        algorithms = {alg for entry in entries for alg, _value in entry.digests}
        digests, problem, raw = _block_digests(block, algorithms, measurement_hash)
        if problem:
            check.fail('index %d: %s' % (index, problem))
            continue
        _match_index(check, manifest, index, entries, digests, raw, now, matched)
    for index in sorted(set(by_index) - set(manifest.indices())):
        kind = by_index[index].get('type')
        what = 'index %d%s' % (index, ' (%s)' % kind if kind else '')
        reason = '%s: measured by the device but not listed in manifest %s' % (what, manifest.name)
        check.add(CONTRAINDICATED if manifest.unlisted_measurements == 'contraindicated' else WARNING, reason)
    check.details['matched'] = matched

    if nonce is not None:
        request = _mapping(meas.get('request')) or {}
        actual = normalize_nonce(request.get('nonce'))
        check.details['nonce'] = actual
        if actual is None:
            check.fail('nonce: the GET_MEASUREMENTS request carries no nonce, so freshness against the expected nonce cannot be shown')
        elif actual != nonce.ljust(len(actual), '0'):  # a shorter nonce is zero-padded on the right by the TSM
            check.fail('nonce: the request nonce %s differs from the expected nonce %s (stale or replayed evidence)' % (_short(actual), _short(nonce)))
    return check


def _match_index(check: _Check, manifest: Manifest, index: int, entries: Sequence[t.Any], digests: Mapping[str, str],
                 raw: bool, now: _dt.datetime, matched: list[dict[str, t.Any]]) -> None:
    hits = []
    for entry in entries:
        for alg, value in entry.digests:
            if digests.get(alg) == value:
                hits.append((entry, alg, value))
    how = ' (raw bit stream, compared by its digest)' if raw else ''
    active = [hit for hit in hits if hit[0].validity.state(now) == 'active']
    if active:
        entry, alg, value = active[0]
        matched.append({'index': index, 'digest': '%s:%s' % (alg, value), 'entry': entry.position,
                        'description': entry.description, 'valid_until': entry.validity.end_text})
        return
    if hits:
        stale = []
        for entry, alg, value in hits:
            if entry.validity.state(now) == 'expired':
                stale.append('%s, which expired on %s' % (entry.label(), entry.validity.end_text))
            else:
                stale.append('%s, which is not valid until %s' % (entry.label(), entry.validity.start_text))
        alg, value = hits[0][1], hits[0][2]
        check.fail('index %d: digest %s:%s%s is allowed only by %s (manifest %s, now %s)'
                   % (index, alg, _short(value), how, '; '.join(stale), manifest.name, _iso(now)))
        return
    if not raw and digests and not any(alg in digests for entry in entries for alg, _v in entry.digests):
        listed = sorted({alg for entry in entries for alg, _v in entry.digests})
        check.fail('index %d: the evidence digest is %s but manifest %s lists only %s digests for this index'
                   % (index, next(iter(digests)), manifest.name, ', '.join(listed)))
        return
    shown = '; '.join('%s:%s' % item for item in sorted(digests.items()))
    current = [entry for entry in entries if entry.validity.state(now) == 'active']
    hint = '' if current else ' (and no entry for index %d is valid now)' % index
    check.fail('index %d: digest %s%s is not allowed by manifest %s%s' % (index, shown, how, manifest.name, hint))


# --------------------------------------------------------------------------------------------
# svn and interface_report


def _check_svn(ev: _Evidence, manifest: Manifest) -> _Check:
    check = _Check('svn')
    meas = ev.parsed('measurements')
    check.details['min_svn'] = manifest.min_svn
    if meas is None:
        if manifest.min_svn is not None:
            check.fail('not evaluated: %s' % ev.why_missing('measurements'))
        return check
    svn = meas.get('firmware_svn')
    check.details['firmware_svn'] = svn if _is_int(svn) else None
    check.details['firmware_version'] = meas.get('firmware_version')
    if manifest.min_svn is None:
        return check
    if not _is_int(svn):
        check.fail('firmware SVN: the measurements carry no security version number; manifest %s requires min_svn %d'
                   % (manifest.name, manifest.min_svn))
    elif svn < manifest.min_svn:
        check.fail('firmware SVN %d is below min_svn %d of manifest %s' % (svn, manifest.min_svn, manifest.name))
    return check


def _check_interface(ev: _Evidence, manifest: Manifest) -> _Check:
    check = _Check('interface_report')
    if not manifest.interface:
        return check
    report = ev.parsed('report')
    if report is None:
        check.fail('not evaluated: %s' % ev.why_missing('report'))
        return check
    info = _mapping(report.get('interface_info')) or {}
    wanted = manifest.interface
    for key in INTERFACE_BOOL_KEYS:
        if key not in wanted:
            continue
        actual = info.get(key)
        if not isinstance(actual, bool):
            check.fail('interface report: interface_info.%s is missing; manifest %s requires %s' % (key, manifest.name, str(wanted[key]).lower()))
        elif actual != wanted[key]:
            check.fail('interface report: %s is %s, manifest %s requires %s' % (key, str(actual).lower(), manifest.name, str(wanted[key]).lower()))
    ranges = report.get('mmio_ranges')
    if not isinstance(ranges, Sequence) or isinstance(ranges, (str, bytes)):
        ranges = []
        if any(key in wanted for key in ('max_mmio_ranges', 'non_tee_mmio', 'mem_attr_updatable')):
            check.fail('interface report: no list of MMIO ranges; manifest %s constrains them' % manifest.name)
            return check
    if 'max_mmio_ranges' in wanted and len(ranges) > wanted['max_mmio_ranges']:
        check.fail('interface report: %d MMIO ranges, manifest %s allows at most %d (max_mmio_ranges)'
                   % (len(ranges), manifest.name, wanted['max_mmio_ranges']))
    for key, attribute, what in (('non_tee_mmio', 'non_tee_mem', 'non-TEE memory'),
                                 ('mem_attr_updatable', 'mem_attr_updatable', 'memory attributes updatable')):
        if wanted.get(key, True):
            continue
        for position, item in enumerate(ranges):
            item_map = _mapping(item) or {}
            attributes = _mapping(item_map.get('attributes')) or {}
            if attributes.get(attribute):
                check.fail('interface report: MMIO range [%d] (range_id %s, first page %s) is %s; manifest %s requires %s: false'
                           % (position, item_map.get('range_id'), _page(item_map.get('first_page')), what, manifest.name, key))
    check.details['mmio_ranges'] = len(ranges)
    return check


def _page(value: t.Any) -> str:
    return '0x%x' % value if _is_int(value) else repr(value)


# --------------------------------------------------------------------------------------------
# Entry point


def verify_evidence(evidence: t.Any, manifest: Manifest, now: _dt.datetime, nonce: t.Any = None) -> dict[str, t.Any]:
    """Verify one device's ``evidence`` against ``manifest`` at ``now``; return the verdict dict.

    ``nonce`` (hex text or bytes), when given, must equal the nonce of the GET_MEASUREMENTS
    request. Evidence problems never raise: they are reasons in the verdict. ``VerifyError`` is
    raised only when verification cannot run (``cryptography`` missing, bad ``now``/``nonce``).
    """
    require_cryptography()
    if not isinstance(now, _dt.datetime):
        raise VerifyError('now: expected a datetime, got %s' % type(now).__name__)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now = now.astimezone(UTC)
    expected_nonce = None
    if nonce is not None:
        expected_nonce = normalize_nonce(nonce)
        if expected_nonce is None:
            raise VerifyError('nonce: expected hex text (the nonce passed when the evidence was read), got %r' % (nonce,))

    ev = _Evidence(evidence)
    integrity = _check_integrity(ev, manifest)
    if ev.root is None:
        skipped = [_Check(name) for name in CHECK_NAMES if name != 'evidence_integrity']
        for check in skipped:
            check.fail('not evaluated: the evidence is not a mapping')
        checks = skipped + [integrity]
    else:
        chain_check, chain = _check_chain(ev, manifest, now)
        checks = [
            chain_check,
            _check_signature(ev, manifest, chain),
            _check_measurements(ev, manifest, now, expected_nonce),
            _check_svn(ev, manifest),
            _check_interface(ev, manifest),
            integrity,
        ]
    generation = (ev.root or {}).get('generation')
    return {
        'status': worst(check.status for check in checks),
        'manifest': manifest.name,
        'manifest_version': manifest.version,
        'generation': generation if _is_int(generation) else None,
        'evaluated_at': _iso(now),
        'checks': [check.as_dict() for check in checks],
        'reasons': ['%s: %s' % (check.name, reason) for check in checks for reason in check.reasons],
    }


def unverifiable(manifest_name: t.Optional[str], generation: t.Any, now: _dt.datetime, reason: str,
                 check_name: str = 'evidence_integrity') -> dict[str, t.Any]:
    """A contraindicated verdict for a device that could not be verified at all (no evidence, no manifest)."""
    checks = []
    for name in CHECK_NAMES:
        check = _Check(name)
        check.fail(reason if name == check_name else 'not evaluated: %s' % reason)
        checks.append(check)
    return {
        'status': CONTRAINDICATED,
        'manifest': manifest_name,
        'manifest_version': None,
        'generation': generation if _is_int(generation) else None,
        'evaluated_at': _iso(now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)),
        'checks': [check.as_dict() for check in checks],
        'reasons': ['%s: %s' % (check.name, reason) for check in checks for reason in check.reasons],
    }
