# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The evidence_integrity and certificate_chain checks (private; may change at any time)."""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import functools
import hashlib
import typing as t
from collections.abc import Sequence

from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.common import (
    CERT_OBJECT,
    _WEAK_CERT_HASHES,
    _Check,
    _Evidence,
    _iso,
    _mapping,
    _short,
    hash_bytes,
)
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.manifest import (
    HASH_SIZES,
    Manifest,
    format_fingerprint,
    is_int,
)

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
except ImportError:  # pragma: no cover - require_cryptography() (common) reports it at use time
    pass


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


def _check_integrity(check: _Check, ev: _Evidence, manifest: Manifest) -> _Check:
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
    if not is_int(generation) and '*' not in ev.errors:
        check.fail('evidence.generation: missing or not an integer (%r); a verdict must name the evidence generation it is about' % (generation,))
    for object_type, purpose in needed.items():
        if object_type in ev.errors or ('*' in ev.errors and object_type not in ev.objects):
            continue
        if ev.parsed(object_type) is None:
            where = 'absent from the evidence' if object_type not in ev.objects else 'present but not parsed (and no parser error given)'
            check.fail('object %s: %s; manifest %s needs it for %s' % (object_type, where, manifest.name, purpose))
    for object_type in sorted(ev.objects):
        _check_object_digest(check, ev, object_type, object_type in needed)
    check.details['generation'] = generation if is_int(generation) else None
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


def _check_chain(check: _Check, ev: _Evidence, manifest: Manifest, now: _dt.datetime) -> tuple[_Check, t.Optional[_Chain]]:
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
