# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Reference manifests: schema validation and the normalized form (private; may change at any time).

A reference manifest says what a known-good device of one model looks like: which root
certificates may anchor its certificate chain, which measurement digests are allowed per SPDM
measurement index (with validity windows, so old and new firmware overlap during a rollout), the
minimum firmware SVN, the TDISP interface-report properties it must show, and which algorithms
are acceptable. The format is documented in ``docs/manifests.md``.

``validate_manifest()`` returns *every* mistake as a one-line message that starts with the field
path (``reference_manifests.h100-96.00.measurements[1].digests[0]: ...``). ``load_manifest()``
raises ``ManifestError`` with all of them, or returns a ``Manifest``.

``cryptography`` is needed only for ``crls``; it is imported lazily so that this module imports
without it (``ansible-test sanity`` import tests run without third-party packages).
"""

from __future__ import annotations

import datetime as _dt
import re
import typing as t
from collections.abc import Mapping, Sequence

from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.manifest import (
    ASYM_ALGOS,
    ENTRY_KEYS,
    HASH_SIZES,
    INTERFACE_KEYS,
    MANIFEST_KEYS,
    MEASUREMENT_INDEX_MAX,
    MEASUREMENT_INDEX_MIN,
    REQUIRED_KEYS,
    SIGNATURE_MODES,
    UNLISTED_MODES,
    Manifest,
    ManifestError,
    MeasurementEntry,
    Validity,
    _is_list,
    _type_name,
    _unknown_key,
    format_fingerprint,
    is_int,
    normalize_fingerprint,
    parse_digest,
    parse_instant,
    text_of_instant,
)

# --------------------------------------------------------------------------------------------
# Validation


class _Checker:
    """Collects every mistake in one manifest, and the normalized values on the way."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[str] = []

    def error(self, where: str, message: str) -> None:
        self.errors.append('%s: %s' % (where, message))

    def integer(self, where: str, value: t.Any, minimum: int = 0) -> t.Optional[int]:
        if not is_int(value):
            self.error(where, 'expected an integer >= %d, got %s' % (minimum, _type_name(value)))
            return None
        if value < minimum:
            self.error(where, 'expected an integer >= %d, got %d' % (minimum, value))
            return None
        return int(value)

    def string(self, where: str, value: t.Any) -> t.Optional[str]:
        if not isinstance(value, str):
            self.error(where, 'expected a string, got %s' % _type_name(value))
            return None
        return str(value)

    def choice(self, where: str, value: t.Any, choices: Sequence[str]) -> t.Optional[str]:
        if not isinstance(value, str) or value not in choices:
            self.error(where, 'expected one of %s, got %r' % (', '.join(choices), value))
            return None
        return str(value)

    def name_list(self, where: str, value: t.Any, known: Sequence[str]) -> t.Optional[frozenset[str]]:
        if not _is_list(value):
            self.error(where, 'expected a list of algorithm names, got %s' % _type_name(value))
            return None
        if not value:
            self.error(where, 'empty list: allow at least one algorithm, or leave the key out to allow all (%s)' % ', '.join(known))
            return None
        names: set[str] = set()
        for position, item in enumerate(value):
            item_path = '%s[%d]' % (where, position)
            if not isinstance(item, str) or item.lower() not in known:
                self.error(item_path, 'unknown algorithm %r (known: %s)' % (item, ', '.join(known)))
                continue
            names.add(item.lower())
        return frozenset(names)


def _check_anchors(chk: _Checker, value: t.Any) -> frozenset[str]:
    where = chk.path + '.trust_anchors'
    if not _is_list(value):
        chk.error(where, 'expected a list of SHA-256 fingerprints, got %s' % _type_name(value))
        return frozenset()
    if not value:
        chk.error(where, 'empty list: name at least one root certificate by its SHA-256 fingerprint')
        return frozenset()
    anchors: set[str] = set()
    for position, item in enumerate(value):
        item_path = '%s[%d]' % (where, position)
        fingerprint = normalize_fingerprint(item)
        if fingerprint is None:
            chk.error(item_path, 'not a SHA-256 fingerprint (64 hex digits, colons allowed): %r' % (item,))
        elif fingerprint in anchors:
            chk.error(item_path, 'duplicate fingerprint %s' % format_fingerprint(fingerprint))
        else:
            anchors.add(fingerprint)
    return frozenset(anchors)


def _check_crls(chk: _Checker, value: t.Any) -> tuple[str, ...]:
    where = chk.path + '.crls'
    if not _is_list(value):
        chk.error(where, 'expected a list of PEM CRL texts, got %s' % _type_name(value))
        return ()
    texts: list[str] = []
    for position, item in enumerate(value):
        item_path = '%s[%d]' % (where, position)
        if not isinstance(item, str) or '-----BEGIN X509 CRL-----' not in item:
            chk.error(item_path, 'not a PEM CRL (expected text with "-----BEGIN X509 CRL-----")')
            continue
        problem = crl_parse_problem(item)
        if problem:
            chk.error(item_path, problem)
            continue
        texts.append(str(item))
    return tuple(texts)


def crl_parse_problem(text: str) -> t.Optional[str]:
    """Why ``text`` does not load as a PEM CRL, or ``None`` when it does."""
    try:
        from cryptography import x509  # pylint: disable=import-outside-toplevel
    except ImportError:
        return ('cannot check the CRL: the Python package "cryptography" is not installed on the controller; install the '
                'collection\'s requirements/collection.txt (pip install "cryptography>=41.0")')
    try:
        x509.load_pem_x509_crl(text.encode('utf-8'))
    except ValueError as exc:
        return 'not a valid PEM CRL (%s)' % (' '.join(str(exc).split()) or type(exc).__name__)
    return None


def _check_entry(chk: _Checker, position: int, value: t.Any, hash_allow: t.Optional[frozenset[str]]) -> t.Optional[MeasurementEntry]:
    where = '%s.measurements[%d]' % (chk.path, position)
    if not isinstance(value, Mapping):
        chk.error(where, 'expected a mapping with index and digests, got %s' % _type_name(value))
        return None
    ok = True
    for key in value:
        if key not in ENTRY_KEYS:
            chk.errors.append(_unknown_key(where, key, ENTRY_KEYS))
            ok = False
    index: t.Optional[int] = None
    if 'index' not in value:
        chk.error(where, 'missing required key index')
        ok = False
    else:
        raw = value['index']
        if not is_int(raw) or not MEASUREMENT_INDEX_MIN <= raw <= MEASUREMENT_INDEX_MAX:
            chk.error(where + '.index', 'expected a measurement index from %d to %d, got %r' % (MEASUREMENT_INDEX_MIN, MEASUREMENT_INDEX_MAX, raw))
            ok = False
        else:
            index = int(raw)
    digests: list[tuple[str, str]] = []
    if 'digests' not in value:
        chk.error(where, 'missing required key digests')
        ok = False
    elif not _is_list(value['digests']):
        chk.error(where + '.digests', 'expected a list of "<alg>:<hex>" strings, got %s' % _type_name(value['digests']))
        ok = False
    elif not value['digests']:
        chk.error(where + '.digests', 'empty list: an entry must allow at least one digest')
        ok = False
    else:
        for dpos, item in enumerate(value['digests']):
            dpath = '%s.digests[%d]' % (where, dpos)
            parsed, problem = parse_digest(item)
            if parsed is None:
                chk.error(dpath, problem or 'invalid digest')
                ok = False
            elif parsed in digests:
                chk.error(dpath, 'duplicate digest %s:%s' % parsed)
                ok = False
            elif hash_allow is not None and parsed[0] not in hash_allow:
                chk.error(dpath, 'digest algorithm %s is not in measurement_hash_algos (%s)' % (parsed[0], ', '.join(sorted(hash_allow))))
                ok = False
            else:
                digests.append(parsed)
    start = end = None
    start_text = end_text = None
    if value.get('valid_from') is not None:
        start, problem = parse_instant(value['valid_from'], end_of_day=False)
        if problem:
            chk.error(where + '.valid_from', problem)
            ok = False
        start_text = text_of_instant(value['valid_from'])
    if value.get('valid_until') is not None:
        end, problem = parse_instant(value['valid_until'], end_of_day=True)
        if problem:
            chk.error(where + '.valid_until', problem)
            ok = False
        end_text = text_of_instant(value['valid_until'])
    if start is not None and end is not None and end < start:
        chk.error(where, 'valid_until %s is before valid_from %s' % (end_text, start_text))
        ok = False
    description = None
    if value.get('description') is not None:
        description = chk.string(where + '.description', value['description'])
        ok = ok and description is not None
    if not ok or index is None:
        return None
    return MeasurementEntry(position=position, index=index, digests=tuple(digests),
                            validity=Validity(start, end, start_text, end_text), description=description)


def _check_interface(chk: _Checker, value: t.Any) -> dict[str, t.Any]:
    where = chk.path + '.interface'
    if not isinstance(value, Mapping):
        chk.error(where, 'expected a mapping of interface-report properties, got %s' % _type_name(value))
        return {}
    result: dict[str, t.Any] = {}
    for key, item in value.items():
        if key not in INTERFACE_KEYS:
            chk.errors.append(_unknown_key(where, key, INTERFACE_KEYS))
        elif key == 'max_mmio_ranges':
            number = chk.integer(where + '.' + key, item)
            if number is not None:
                result[key] = number
        elif not isinstance(item, bool):
            chk.error(where + '.' + str(key), 'expected true or false, got %s' % _type_name(item))
        else:
            result[key] = item
    return result


def _validate(name: t.Any, data: t.Any, where: str) -> tuple[list[str], t.Optional[Manifest]]:
    path = '%s.%s' % (where, name)
    chk = _Checker(path)
    if not isinstance(name, str) or not name:
        chk.error(path, 'a manifest name must be a non-empty string')
    if not isinstance(data, Mapping):
        chk.error(path, 'expected a mapping (the manifest), got %s' % _type_name(data))
        return chk.errors, None
    for key in data:
        if key not in MANIFEST_KEYS:
            chk.errors.append(_unknown_key(path, key, MANIFEST_KEYS))
    for key in REQUIRED_KEYS:
        if key not in data:
            chk.error(path, 'missing required key %s' % key)

    options: dict[str, t.Any] = {}
    anchors = _check_anchors(chk, data['trust_anchors']) if 'trust_anchors' in data else frozenset()

    leaf_subject = None
    if 'leaf_subject' in data:
        text = chk.string(path + '.leaf_subject', data['leaf_subject'])
        if text is not None:
            try:
                leaf_subject = re.compile(text)
            except re.error as exc:
                chk.error(path + '.leaf_subject', 'not a valid regular expression (%s)' % exc)

    if data.get('intermediates_max') is not None:
        options['intermediates_max'] = chk.integer(path + '.intermediates_max', data['intermediates_max'])
    if data.get('min_svn') is not None:
        options['min_svn'] = chk.integer(path + '.min_svn', data['min_svn'])
    if 'signature' in data:
        options['signature'] = chk.choice(path + '.signature', data['signature'], SIGNATURE_MODES)
    if 'unlisted_measurements' in data:
        options['unlisted_measurements'] = chk.choice(path + '.unlisted_measurements', data['unlisted_measurements'], UNLISTED_MODES)
    for key, known in (('base_hash_algos', tuple(HASH_SIZES)), ('measurement_hash_algos', tuple(HASH_SIZES)), ('asym_algos', ASYM_ALGOS)):
        if key in data:
            options[key] = chk.name_list(path + '.' + key, data[key], known)
    if 'crls' in data and data['crls'] is not None:
        options['crls'] = _check_crls(chk, data['crls'])
    if 'interface' in data and data['interface'] is not None:
        options['interface'] = _check_interface(chk, data['interface'])
    for key in ('description', 'version'):
        if data.get(key) is not None:
            if is_int(data[key]) and key == 'version':
                options[key] = str(data[key])
            else:
                options[key] = chk.string(path + '.' + key, data[key])

    entries: list[MeasurementEntry] = []
    if 'measurements' in data:
        raw = data['measurements']
        if not _is_list(raw):
            chk.error(path + '.measurements', 'expected a list of {index, digests} entries, got %s' % _type_name(raw))
        elif not raw:
            chk.error(path + '.measurements', 'empty list: list at least one measurement index with its allowed digests')
        else:
            hash_allow = options.get('measurement_hash_algos')
            for position, item in enumerate(raw):
                entry = _check_entry(chk, position, item, hash_allow)
                if entry is not None:
                    entries.append(entry)

    if chk.errors:
        return chk.errors, None
    if leaf_subject is None:  # unreachable: a missing or bad leaf_subject is an error above
        return ['%s: missing required key leaf_subject' % path], None
    return [], Manifest(
        name=str(name), trust_anchors=anchors, leaf_subject=leaf_subject, measurements=tuple(entries),
        **{key: value for key, value in options.items() if value is not None},
    )


def validate_manifest(name: t.Any, data: t.Any, where: str = 'reference_manifests') -> list[str]:
    """Every mistake in one manifest, each a line that starts with its field path. Empty when valid."""
    return _validate(name, data, where)[0]


def load_manifest(name: t.Any, data: t.Any, where: str = 'reference_manifests') -> Manifest:
    """Validate and normalize one manifest; raise ``ManifestError`` listing every mistake."""
    errors, manifest = _validate(name, data, where)
    if errors or manifest is None:
        raise ManifestError('%s.%s' % (where, name), errors)
    return manifest


def manifests_errors(manifests: t.Any, where: str = 'reference_manifests') -> list[str]:
    """Every mistake in a ``{name: manifest}`` mapping (what ``reference_manifests`` holds)."""
    if not isinstance(manifests, Mapping):
        return ['%s: expected a mapping of manifest name to manifest, got %s' % (where, _type_name(manifests))]
    errors: list[str] = []
    for name, data in manifests.items():
        errors.extend(validate_manifest(name, data, where))
    return errors


def pick_manifest(manifests: t.Any, name: t.Any, where: str = 'reference_manifests') -> Manifest:
    """Look ``name`` up in a ``{name: manifest}`` mapping and load it; ``ManifestError`` if absent or invalid."""
    if not isinstance(manifests, Mapping):
        raise ManifestError(where, ['%s: expected a mapping of manifest name to manifest, got %s' % (where, _type_name(manifests))])
    if name not in manifests:
        known = ', '.join(sorted(str(key) for key in manifests)) or 'none'
        raise ManifestError('%s.%s' % (where, name), ['%s.%s: no such manifest (known: %s)' % (where, name, known)])
    return load_manifest(name, manifests[name], where)


# --------------------------------------------------------------------------------------------
# Expiry


def prune_expired(name: str, data: Mapping[str, t.Any], now: _dt.datetime,
                  where: str = 'reference_manifests') -> dict[str, t.Any]:
    """Remove measurement entries whose ``valid_until`` has passed at ``now``.

    Returns ``{"manifest": <pruned copy>, "removed": [...], "kept": [...]}``. An expired entry that
    is the last one for its index is *kept* (and listed under ``kept`` with the reason): removing
    it would drop the index from the manifest, which would turn a rejection (no valid digest) into
    a mere "unlisted index" warning. The manifest must be valid; ``ManifestError`` otherwise.
    """
    manifest = load_manifest(name, data, where)
    expired = {entry.position for entry in manifest.measurements if entry.validity.state(now) == 'expired'}
    removed: list[dict[str, t.Any]] = []
    kept: list[dict[str, t.Any]] = []
    survivors: list[t.Any] = []
    for entry in manifest.measurements:
        original = data['measurements'][entry.position]
        if entry.position not in expired:
            survivors.append(original)
            continue
        others = [e for e in manifest.entries_for(entry.index) if e.position not in expired]
        record = {
            'index': entry.index,
            'position': entry.position,
            'digests': ['%s:%s' % digest for digest in entry.digests],
            'valid_until': entry.validity.end_text,
            'description': entry.description,
        }
        if others:
            removed.append(record)
        else:
            record['reason'] = ('%s.%s.%s expired on %s but is the last entry for index %d; kept so that the index stays required: '
                                'add the current firmware digests or remove the index on purpose'
                                % (where, name, entry.label(), entry.validity.end_text, entry.index))
            kept.append(record)
            survivors.append(original)
    pruned = dict(data)
    pruned['measurements'] = survivors
    return {'manifest': pruned, 'removed': removed, 'kept': kept}


def prune_all(manifests: t.Any, now: _dt.datetime) -> dict[str, t.Any]:
    """Remove expired measurement entries from every manifest: ``{manifests, removed, kept}`` by manifest name."""
    if not isinstance(manifests, Mapping):
        raise ManifestError('reference_manifests', ['expected a mapping of manifest name to manifest, got %s' % type(manifests).__name__])
    result: dict[str, t.Any] = {'manifests': {}, 'removed': {}, 'kept': {}}
    for name, data in manifests.items():
        pruned = prune_expired(name, data, now)
        result['manifests'][name] = pruned['manifest']
        for key in ('removed', 'kept'):
            if pruned[key]:
                result[key][name] = pruned[key]
    return result
