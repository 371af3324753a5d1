# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Evidence verification: the EAR vocabulary, the SPDM signed message and the evidence view (private)."""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import typing as t
from collections.abc import Mapping, Sequence

from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.manifest import UTC, parse_instant
from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import TdispError

try:
    import cryptography
except ImportError as _exc:  # pragma: no cover - exercised by the sanity import test only
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR: t.Optional[ImportError] = _exc
    CRYPTOGRAPHY_VERSION: t.Optional[str] = None
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
    CRYPTOGRAPHY_VERSION = cryptography.__version__


AFFIRMING = 'affirming'
WARNING = 'warning'
CONTRAINDICATED = 'contraindicated'
_RANK = {AFFIRMING: 0, WARNING: 1, CONTRAINDICATED: 2}

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


class VerifyError(TdispError):
    """Verification cannot run at all (a controller problem, not an evidence problem)."""


def require_cryptography() -> None:
    """Raise ``VerifyError`` with a one-line remedy when ``cryptography`` is missing."""
    if not HAS_CRYPTOGRAPHY:
        raise VerifyError('evidence verification needs the Python package "cryptography" on the controller; install the '
                          'collection\'s requirements/collection.txt (pip install "cryptography>=41.0"): %s' % CRYPTOGRAPHY_IMPORT_ERROR)


def moment(value: t.Any, name: str) -> _dt.datetime:
    """A ``now`` argument: None (the controller clock, UTC), a datetime, a date, or ISO 8601 text."""
    if value is None:
        return _dt.datetime.now(UTC)
    instant, problem = parse_instant(value, end_of_day=False)
    if instant is None:
        raise VerifyError(str(problem), argument=name)
    return instant


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
