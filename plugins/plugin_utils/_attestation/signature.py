# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The measurement_signature check: DSP0274 (SPDM) 1.2+ measurement signatures (private)."""

from __future__ import annotations

import typing as t

from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.chain import _Chain
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.common import (
    _Check,
    _Evidence,
    _hex_bytes,
    _mapping,
    _short,
    hash_bytes,
    measurement_signed_message,
    parse_spdm_version,
)
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.manifest import HASH_SIZES, Manifest, is_int

try:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import (
        ec,
        ed448,
        ed25519,
        padding,
        rsa,
    )
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
except ImportError:  # pragma: no cover - require_cryptography() (common) reports it at use time
    pass


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


def _check_signature(check: _Check, ev: _Evidence, manifest: Manifest, chain: t.Optional[_Chain]) -> _Check:
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
    if not is_int(signed_length) or not 0 < signed_length <= len(meas_raw):
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
