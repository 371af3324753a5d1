"""A test PKI for simulated SPDM devices: root CA, intermediate CA, one leaf per device, and broken variants.

All keys are ECDSA P-384 and all certificates are signed with ECDSA-with-SHA384, the combination SPDM
responders use with BaseAsymAlgo ``ecdsa_p384`` and BaseHashAlgo ``sha384``. Extensions follow what an
SPDM verifier checks (DSP0274 "Certificate requirements"; RFC 5280 section 4.2.1):

* CAs: basicConstraints CA=true (critical), keyUsage keyCertSign + cRLSign (critical), SKI/AKI.
* Leaves: basicConstraints CA=false (critical), keyUsage digitalSignature (critical), SKI/AKI.

Broken variants for fault tests (each broken exactly the way its name says, nothing else):

``expired``                       leaf notAfter in the past
``not_yet_valid``                 leaf notBefore in the future
``wrong_root``                    a valid chain, but under a second, unrelated root (not the trust anchor)
``wrong_signer``                  leaf names the intermediate as issuer but is signed by an unrelated key
``ca_without_basic_constraints``  the intermediate that issued the leaf has no basicConstraints extension
``leaf_without_digital_signature`` leaf keyUsage lacks digitalSignature (keyAgreement only)

The PKI is generated once (``TestPki.generate``) and stored as PEM files (``save``); ``load`` reads
them back without generating anything, in a fixed order, so a scenario always serves the same chains.
Directory layout::

    ca/<name>.cert.pem, ca/<name>.key.pem           root, intermediate, other-root, other-intermediate,
                                                    intermediate-no-bc
    devices/<device>/<variant>.cert.pem, .key.pem   variant "valid" or one of VARIANTS
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID = 'valid'
VARIANTS: Tuple[str, ...] = (
    'expired',
    'not_yet_valid',
    'wrong_root',
    'wrong_signer',
    'ca_without_basic_constraints',
    'leaf_without_digital_signature',
)
CA_NAMES: Tuple[str, ...] = ('root', 'intermediate', 'other-root', 'other-intermediate', 'intermediate-no-bc')

# Fixed validity windows keep the PKI's behaviour independent of when it was generated.
UTC = datetime.timezone.utc
NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime.datetime(2049, 12, 31, tzinfo=UTC)
EXPIRED_NOT_BEFORE = datetime.datetime(2020, 1, 1, tzinfo=UTC)
EXPIRED_NOT_AFTER = datetime.datetime(2021, 1, 1, tzinfo=UTC)
FUTURE_NOT_BEFORE = datetime.datetime(2099, 1, 1, tzinfo=UTC)
FUTURE_NOT_AFTER = datetime.datetime(2099, 12, 31, tzinfo=UTC)

_DEVICE_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.:-]*$')


@dataclass
class Identity:
    """A private key and the certificate for its public key."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def save(self, stem: Path) -> None:
        stem.parent.mkdir(parents=True, exist_ok=True)
        Path(str(stem) + '.key.pem').write_bytes(self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        Path(str(stem) + '.cert.pem').write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    @classmethod
    def load(cls, stem: Path) -> 'Identity':
        key = serialization.load_pem_private_key(Path(str(stem) + '.key.pem').read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError('%s.key.pem: not an EC private key' % stem)
        return cls(key, x509.load_pem_x509_certificate(Path(str(stem) + '.cert.pem').read_bytes()))


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'coco.tdisp test PKI'),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def _key_usage(*, digital_signature: bool = False, key_agreement: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=key_agreement, key_cert_sign=cert_sign,
                         crl_sign=cert_sign, encipher_only=False, decipher_only=False)


def _issue(subject: str, key: ec.EllipticCurvePrivateKey, issuer: Optional[Identity], *, ca: bool,
           basic_constraints: bool = True, digital_signature: bool = True,
           not_before: datetime.datetime = NOT_BEFORE, not_after: datetime.datetime = NOT_AFTER,
           signing_key: Optional[ec.EllipticCurvePrivateKey] = None) -> x509.Certificate:
    """Issue a certificate for ``key``; ``issuer`` None means self-signed. ``signing_key`` overrides
    the key that signs (the ``wrong_signer`` fault)."""
    issuer_name = issuer.cert.subject if issuer else _name(subject)
    issuer_key = issuer.key if issuer else key
    builder = (x509.CertificateBuilder()
               .subject_name(_name(subject))
               .issuer_name(issuer_name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before)
               .not_valid_after(not_after)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False))
    if basic_constraints:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    if ca:
        builder = builder.add_extension(_key_usage(cert_sign=True), critical=True)
    elif digital_signature:
        builder = builder.add_extension(_key_usage(digital_signature=True), critical=True)
    else:
        builder = builder.add_extension(_key_usage(key_agreement=True), critical=True)
    return builder.sign(signing_key or issuer_key, hashes.SHA384())


def _ca(subject: str, issuer: Optional[Identity], *, basic_constraints: bool = True) -> Identity:
    key = _new_key()
    return Identity(key, _issue(subject, key, issuer, ca=True, basic_constraints=basic_constraints))


@dataclass
class TestPki:
    """Root and intermediate CAs, the extra CAs the broken variants need, and device leaves."""

    __test__ = False  # not a pytest test class despite the name

    cas: Dict[str, Identity]
    leaves: Dict[str, Dict[str, Identity]] = field(default_factory=dict)

    @classmethod
    def generate(cls, devices: Iterable[str] = (), variants: Iterable[str] = VARIANTS) -> 'TestPki':
        """New CAs, and for each device a valid leaf plus one leaf per requested broken variant."""
        root = _ca('coco.tdisp test root CA', None)
        other_root = _ca('coco.tdisp unrelated root CA', None)
        cas = {
            'root': root,
            'intermediate': _ca('coco.tdisp test intermediate CA', root),
            'other-root': other_root,
            'other-intermediate': _ca('coco.tdisp unrelated intermediate CA', other_root),
            'intermediate-no-bc': _ca('coco.tdisp intermediate CA without basicConstraints', root, basic_constraints=False),
        }
        pki = cls(cas)
        variants = tuple(variants)
        for device in devices:
            pki.add_device(device, variants)
        return pki

    def add_device(self, device: str, variants: Iterable[str] = ()) -> Identity:
        """Issue the valid leaf of ``device`` (if missing) and the requested broken leaves; return the valid one."""
        if not _DEVICE_NAME.match(device):
            raise ValueError('device name %r is not usable as a file name' % device)
        leaves = self.leaves.setdefault(device, {})
        for variant in (VALID,) + tuple(variants):
            if variant not in leaves:
                leaves[variant] = self._leaf(device, variant)
        return leaves[VALID]

    def _leaf(self, device: str, variant: str) -> Identity:
        key = _new_key()
        subject = 'SPDM responder %s' % device
        kwargs: Dict[str, object] = {}
        issuer = self.cas['intermediate']
        if variant == VALID:
            pass
        elif variant == 'expired':
            kwargs = {'not_before': EXPIRED_NOT_BEFORE, 'not_after': EXPIRED_NOT_AFTER}
        elif variant == 'not_yet_valid':
            kwargs = {'not_before': FUTURE_NOT_BEFORE, 'not_after': FUTURE_NOT_AFTER}
        elif variant == 'wrong_root':
            issuer = self.cas['other-intermediate']
        elif variant == 'wrong_signer':
            kwargs = {'signing_key': _new_key()}
        elif variant == 'ca_without_basic_constraints':
            issuer = self.cas['intermediate-no-bc']
        elif variant == 'leaf_without_digital_signature':
            kwargs = {'digital_signature': False}
        else:
            raise ValueError('unknown PKI variant %r (known: %s)' % (variant, ', '.join((VALID,) + VARIANTS)))
        return Identity(key, _issue(subject, key, issuer, ca=False, **kwargs))  # type: ignore[arg-type]

    def issuer_chain(self, variant: str = VALID) -> List[Identity]:
        """The CA identities above a leaf of ``variant``, root first."""
        if variant == 'wrong_root':
            return [self.cas['other-root'], self.cas['other-intermediate']]
        if variant == 'ca_without_basic_constraints':
            return [self.cas['root'], self.cas['intermediate-no-bc']]
        return [self.cas['root'], self.cas['intermediate']]

    def leaf(self, device: str, variant: str = VALID) -> Identity:
        try:
            return self.leaves[device][variant]
        except KeyError:
            raise KeyError('no %s leaf for device %r in this PKI' % (variant, device)) from None

    def chain(self, device: str, variant: str = VALID) -> List[x509.Certificate]:
        """Root-first certificate chain of ``device`` (what SPDM slot 0 holds)."""
        return [ca.cert for ca in self.issuer_chain(variant)] + [self.leaf(device, variant).cert]

    @property
    def trust_anchor(self) -> x509.Certificate:
        return self.cas['root'].cert

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        for name in CA_NAMES:
            self.cas[name].save(directory / 'ca' / name)
        for device in sorted(self.leaves):
            for variant in sorted(self.leaves[device]):
                self.leaves[device][variant].save(directory / 'devices' / device / variant)

    @classmethod
    def load(cls, directory: Path) -> 'TestPki':
        directory = Path(directory)
        cas = {name: Identity.load(directory / 'ca' / name) for name in CA_NAMES}
        pki = cls(cas)
        devices_dir = directory / 'devices'
        if devices_dir.is_dir():
            for device_dir in sorted(p for p in devices_dir.iterdir() if p.is_dir()):
                variants = sorted(p.name[:-len('.cert.pem')] for p in device_dir.glob('*.cert.pem'))
                pki.leaves[device_dir.name] = {v: Identity.load(device_dir / v) for v in variants}
        return pki
