# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The measurements, svn and interface_report checks (private; may change at any time)."""

from __future__ import annotations

import datetime as _dt
import typing as t
from collections.abc import Mapping, Sequence

from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.common import (
    CONTRAINDICATED,
    WARNING,
    _Check,
    _Evidence,
    _hex_bytes,
    _iso,
    _mapping,
    _short,
    hash_bytes,
    normalize_nonce,
)
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.manifest import (
    HASH_SIZES,
    INTERFACE_BOOL_KEYS,
    Manifest,
    is_int,
)

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


def _check_measurements(check: _Check, ev: _Evidence, manifest: Manifest, now: _dt.datetime, nonce: t.Optional[str]) -> _Check:
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
        if not is_int(index):
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


def _check_svn(check: _Check, ev: _Evidence, manifest: Manifest) -> _Check:
    meas = ev.parsed('measurements')
    check.details['min_svn'] = manifest.min_svn
    if meas is None:
        if manifest.min_svn is not None:
            check.fail('not evaluated: %s' % ev.why_missing('measurements'))
        return check
    svn = meas.get('firmware_svn')
    check.details['firmware_svn'] = svn if is_int(svn) else None
    check.details['firmware_version'] = meas.get('firmware_version')
    if manifest.min_svn is None:
        return check
    if not is_int(svn):
        check.fail('firmware SVN: the measurements carry no security version number; manifest %s requires min_svn %d'
                   % (manifest.name, manifest.min_svn))
    elif svn < manifest.min_svn:
        check.fail('firmware SVN %d is below min_svn %d of manifest %s' % (svn, manifest.min_svn, manifest.name))
    return check


def _check_interface(check: _Check, ev: _Evidence, manifest: Manifest) -> _Check:
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
    return '0x%x' % value if is_int(value) else repr(value)
