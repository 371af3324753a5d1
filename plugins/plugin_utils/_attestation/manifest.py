# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Reference manifests: the model, digests, fingerprints and instants (private; may change at any time)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import difflib
import re
import typing as t
from collections.abc import Mapping, Sequence

from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import TdispError

HASH_SIZES: dict[str, int] = {
    'sha256': 32,
    'sha384': 48,
    'sha512': 64,
    'sha3_256': 32,
    'sha3_384': 48,
    'sha3_512': 64,
}
"""SPDM BaseHashAlgo / MeasurementHashAlgo names the collection can compute, with digest sizes."""

ASYM_ALGOS: tuple[str, ...] = (
    'rsassa_2048', 'rsassa_3072', 'rsassa_4096',
    'rsapss_2048', 'rsapss_3072', 'rsapss_4096',
    'ecdsa_p256', 'ecdsa_p384', 'ecdsa_p521',
    'eddsa_ed25519', 'eddsa_ed448',
)
"""SPDM BaseAsymAlgo names the manifest may allow (names as the evidence parser reports them)."""

SIGNATURE_MODES = ('required', 'optional')
UNLISTED_MODES = ('warning', 'contraindicated')

INTERFACE_BOOL_KEYS: tuple[str, ...] = ('no_fw_update', 'dma_without_pasid', 'dma_with_pasid', 'ats', 'prs')
"""TDISP INTERFACE_INFO bits that the manifest can require to equal a value."""

INTERFACE_RANGE_KEYS: tuple[str, ...] = ('non_tee_mmio', 'mem_attr_updatable')
"""MMIO-range attributes: ``false`` means no reported range may carry the attribute."""

INTERFACE_KEYS: tuple[str, ...] = INTERFACE_BOOL_KEYS + INTERFACE_RANGE_KEYS + ('max_mmio_ranges',)

MEASUREMENT_INDEX_MIN = 1
MEASUREMENT_INDEX_MAX = 0xFE
"""DSP0274 measurement indices: 0 asks for the count and 0xFF for all blocks, so neither names a block."""

ENTRY_KEYS: tuple[str, ...] = ('index', 'digests', 'valid_from', 'valid_until', 'description')

MANIFEST_KEYS: tuple[str, ...] = (
    'description', 'version',
    'trust_anchors', 'intermediates_max', 'leaf_subject', 'crls',
    'signature', 'base_hash_algos', 'measurement_hash_algos', 'asym_algos',
    'measurements', 'unlisted_measurements', 'min_svn', 'interface',
)
REQUIRED_KEYS: tuple[str, ...] = ('trust_anchors', 'leaf_subject', 'measurements')

_HEX = re.compile(r'[0-9a-fA-F]+')
_DATE = re.compile(r'\d{4}-\d{2}-\d{2}')
UTC = _dt.timezone.utc


class ManifestError(TdispError):
    """A manifest (or the set of manifests) is invalid. ``problems`` holds every one-line mistake."""

    def __init__(self, where: str, errors: Sequence[str]) -> None:
        self.where = where
        problems = list(errors)
        summary = None if len(problems) == 1 else '%s: %d errors in reference manifest: %s' % (where, len(problems), '; '.join(problems))
        super().__init__(problems, summary)


# --------------------------------------------------------------------------------------------
# Normalized form


@dataclasses.dataclass(frozen=True)
class Validity:
    """A validity window. ``start``/``end`` are inclusive instants (UTC); ``None`` is open."""

    start: t.Optional[_dt.datetime] = None
    end: t.Optional[_dt.datetime] = None
    start_text: t.Optional[str] = None
    end_text: t.Optional[str] = None

    def state(self, now: _dt.datetime) -> str:
        """``active``, ``expired`` or ``not_yet_valid`` at ``now``."""
        if self.start is not None and now < self.start:
            return 'not_yet_valid'
        if self.end is not None and now > self.end:
            return 'expired'
        return 'active'


@dataclasses.dataclass(frozen=True)
class MeasurementEntry:
    """One ``measurements[]`` entry of a manifest."""

    position: int
    index: int
    digests: tuple[tuple[str, str], ...]
    """(algorithm, lower-case hex) pairs."""
    validity: Validity
    description: t.Optional[str] = None

    def label(self) -> str:
        """How reasons name the entry: ``measurements[2] ("fw 96.00.5A")``."""
        text = 'measurements[%d]' % self.position
        if self.description:
            text += ' (%s)' % self.description
        return text


@dataclasses.dataclass(frozen=True)
class Manifest:
    """A validated reference manifest."""

    name: str
    trust_anchors: frozenset[str]
    """SHA-256 fingerprints, lower-case hex without colons."""
    leaf_subject: re.Pattern[str]
    measurements: tuple[MeasurementEntry, ...]
    intermediates_max: t.Optional[int] = None
    crls: tuple[str, ...] = ()
    signature: str = 'required'
    base_hash_algos: frozenset[str] = frozenset(HASH_SIZES)
    measurement_hash_algos: frozenset[str] = frozenset(HASH_SIZES)
    asym_algos: frozenset[str] = frozenset(ASYM_ALGOS)
    unlisted_measurements: str = 'warning'
    min_svn: t.Optional[int] = None
    interface: Mapping[str, t.Any] = dataclasses.field(default_factory=dict)
    description: t.Optional[str] = None
    version: t.Optional[str] = None

    def indices(self) -> list[int]:
        """The measurement indices the manifest lists, sorted."""
        return sorted({entry.index for entry in self.measurements})

    def entries_for(self, index: int) -> list[MeasurementEntry]:
        return [entry for entry in self.measurements if entry.index == index]


# --------------------------------------------------------------------------------------------
# Small parsers shared with verification and drafting


def normalize_fingerprint(value: t.Any) -> t.Optional[str]:
    """A SHA-256 fingerprint as 64 lower-case hex digits, or ``None`` when ``value`` is not one.

    Colons (``AB:CD:...``) and spaces are allowed, as OpenSSL and most tools print them.
    """
    if not isinstance(value, str):
        return None
    text = value.replace(':', '').replace(' ', '').strip()
    if len(text) != 64 or not _HEX.fullmatch(text):
        return None
    return text.lower()


def format_fingerprint(hex_digest: str) -> str:
    """``AB:CD:...`` as people compare fingerprints."""
    upper = hex_digest.upper()
    return ':'.join(upper[i:i + 2] for i in range(0, len(upper), 2))


def parse_digest(value: t.Any) -> tuple[t.Optional[tuple[str, str]], t.Optional[str]]:
    """Parse ``"<alg>:<hex>"``. Returns ((alg, hex), None) or (None, one-line problem)."""
    if not isinstance(value, str) or ':' not in value:
        return None, 'not "<alg>:<hex>" (for example "sha384:" followed by 96 hex digits)'
    alg, _sep, digest = value.partition(':')
    alg = alg.strip().lower().replace('-', '_')
    digest = digest.strip()
    if alg not in HASH_SIZES:
        return None, 'unknown digest algorithm %r (known: %s)' % (alg, ', '.join(HASH_SIZES))
    if not digest or not _HEX.fullmatch(digest):
        return None, 'not "<alg>:<hex>": %r is not hexadecimal' % digest
    want = HASH_SIZES[alg] * 2
    if len(digest) != want:
        return None, 'a %s digest has %d hex digits, this one has %d' % (alg, want, len(digest))
    return (alg, digest.lower()), None


def parse_instant(value: t.Any, *, end_of_day: bool) -> tuple[t.Optional[_dt.datetime], t.Optional[str]]:
    """Parse a manifest date or timestamp into an aware UTC datetime.

    Accepts ``YYYY-MM-DD`` (a whole UTC day: its first instant for ``valid_from``, its last for
    ``valid_until``), an ISO 8601 timestamp (``2026-07-01T12:00:00Z``; no offset means UTC), and
    the ``date``/``datetime`` objects a YAML loader produces for unquoted values.
    """
    if isinstance(value, _dt.datetime):
        moment = value
    elif isinstance(value, _dt.date):
        moment = _dt.datetime.combine(value, _dt.time.max if end_of_day else _dt.time.min)
    elif isinstance(value, str):
        text = value.strip()
        try:
            if _DATE.fullmatch(text):
                day = _dt.date.fromisoformat(text)
                moment = _dt.datetime.combine(day, _dt.time.max if end_of_day else _dt.time.min)
            else:
                moment = _dt.datetime.fromisoformat(text.replace('Z', '+00:00').replace('z', '+00:00'))
        except ValueError:
            return None, 'not a date (YYYY-MM-DD) or an ISO 8601 timestamp (YYYY-MM-DDTHH:MM:SSZ): %r' % value
    else:
        return None, 'not a date (YYYY-MM-DD) or an ISO 8601 timestamp, got %s' % _type_name(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC), None


def text_of_instant(value: t.Any) -> str:
    """The manifest's own spelling of a date, for reasons (``2026-06-30``)."""
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    return str(value).strip()


def _type_name(value: t.Any) -> str:
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'a boolean'
    if isinstance(value, int):
        return 'an integer'
    if isinstance(value, str):
        return 'a string'
    if isinstance(value, Mapping):
        return 'a mapping'
    if isinstance(value, Sequence):
        return 'a list'
    return type(value).__name__


def is_int(value: t.Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_list(value: t.Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _unknown_key(path: str, key: t.Any, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = '; did you mean %s?' % close[0] if close else ' (known: %s)' % ', '.join(known)
    return '%s.%s: unknown key%s' % (path, key, hint)
