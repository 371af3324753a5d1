# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Draft a reference manifest from a known-good device's evidence (private; may change at any time).

The draft pins what the device shows today: its root certificate's fingerprint, its chain depth,
its exact leaf subject, every measurement digest (``valid_from`` today), its SVN as ``min_svn``,
its interface-report properties and its negotiated algorithms. It is a starting point for an
operator to review (widen the leaf subject to the model, add the next firmware's digests), never
a policy to apply unread: a compromised "golden" device would draft a compromised manifest.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import re
import typing as t
from collections.abc import Sequence

from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.common import _mapping, hash_bytes, moment, require_cryptography
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.manifest import HASH_SIZES, INTERFACE_BOOL_KEYS, format_fingerprint
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.manifest_check import validate_manifest
from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import TdispError

try:
    from cryptography import x509
except ImportError:  # pragma: no cover - require_cryptography() reports it at use time
    pass


class DraftError(TdispError):
    """The evidence cannot be turned into a draft manifest (one line naming the object)."""


def _list(value: t.Any) -> t.Optional[Sequence[t.Any]]:
    return value if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) else None


def manifest_from_evidence(evidence: t.Any, today: _dt.date, name: str = 'draft',
                           leaf_subject: t.Optional[str] = None) -> dict[str, t.Any]:
    """Build a draft manifest (a plain dict, YAML-ready) from one device's evidence.

    Raises ``DraftError`` when the evidence reports parser errors or lacks the certificate
    chain, the VCA or the measurements: a draft is only as good as clean evidence.
    """
    require_cryptography()
    root = _mapping(evidence)
    if root is None:
        raise DraftError('evidence: not a mapping; collect it with coco.tdisp.tdisp_device_info (include_evidence: true)')
    errors = _list(root.get('errors')) or []
    if errors:
        first = _mapping(errors[0]) or {}
        raise DraftError('evidence has %d parser error(s), first: object %s: %s; draft from clean evidence only'
                         % (len(errors), first.get('object', '?'), ' '.join(str(first.get('msg', errors[0])).split())))
    chain = _mapping(root.get('certificates'))
    if chain is not None and 'certificates' not in chain:  # tdisp_device_info's per-slot form: use slot 0
        chain = _mapping(chain.get('cert0'))
    vca = _mapping(root.get('vca'))
    meas = _mapping(root.get('measurements'))
    for key, value in (('certificates', chain), ('vca', vca), ('measurements', meas)):
        if value is None:
            raise DraftError('evidence.%s: missing; a draft needs the certificate chain, the VCA and the measurements' % key)
    if chain is None or vca is None or meas is None:  # for type checkers; the loop above raised already
        raise DraftError('evidence: incomplete')

    certificates = _list(chain.get('certificates')) or []
    if not certificates:
        raise DraftError('evidence.certificates.certificates: empty; a draft needs the slot 0 certificate chain')
    try:
        root_der = base64.b64decode(str(certificates[0]), validate=True)
        leaf = x509.load_der_x509_certificate(base64.b64decode(str(certificates[-1]), validate=True))
        subject = leaf.subject.rfc4514_string()
    except (binascii.Error, ValueError) as exc:
        raise DraftError('evidence.certificates: not a base64 DER certificate chain (%s)' % ' '.join(str(exc).split())) from None

    measurement_hash = vca.get('measurement_hash_algo')
    raw_hash = measurement_hash if measurement_hash in HASH_SIZES else 'sha384'
    drafted_from = 'generation %s' % root.get('generation')
    entries = []
    blocks = sorted((_mapping(block) or {} for block in _list(meas.get('blocks')) or []), key=lambda b: b.get('index', 0))
    for block in blocks:
        index = block.get('index')
        try:
            value = bytes.fromhex(str(block.get('value', '')))
        except ValueError:
            raise DraftError('evidence.measurements: index %r: value is not hexadecimal' % (index,)) from None
        if block.get('raw'):
            digest = '%s:%s' % (raw_hash, hash_bytes(raw_hash, value).hex())
        elif measurement_hash in HASH_SIZES:
            digest = '%s:%s' % (measurement_hash, value.hex())
        else:
            raise DraftError('evidence.vca.measurement_hash_algo: %r is not a hash the manifest format knows' % (measurement_hash,))
        kind = block.get('type') or 'measurement'
        entries.append({
            'index': index,
            'digests': [digest],
            'valid_from': today.isoformat(),
            'description': '%s%s, %s' % (kind, ' (raw, %s of the value)' % raw_hash if block.get('raw') else '', drafted_from),
        })
    if not entries:
        raise DraftError('evidence.measurements.blocks: empty; a draft needs at least one measurement block')

    draft: dict[str, t.Any] = {
        'description': 'DRAFT from %s (firmware %s, %s, %s); review before use'
                       % (subject, meas.get('firmware_version') or 'unknown', drafted_from, today.isoformat()),
        'trust_anchors': [format_fingerprint(hashlib.sha256(root_der).hexdigest())],
        'intermediates_max': max(len(certificates) - 2, 0),
        'leaf_subject': leaf_subject if leaf_subject is not None else '^' + re.escape(subject) + '$',
        'signature': 'required' if meas.get('signature') else 'optional',
        'measurements': entries,
    }
    for key, algorithm in (('base_hash_algos', vca.get('base_hash_algo')), ('measurement_hash_algos', measurement_hash),
                           ('asym_algos', vca.get('base_asym_algo'))):
        if isinstance(algorithm, str) and algorithm:
            draft[key] = [algorithm]
    if measurement_hash not in HASH_SIZES:
        draft['measurement_hash_algos'] = [raw_hash]
    svn = meas.get('firmware_svn')
    if isinstance(svn, int) and not isinstance(svn, bool):
        draft['min_svn'] = svn
    report = _mapping(root.get('interface_report'))
    if report is not None:
        info = _mapping(report.get('interface_info')) or {}
        interface: dict[str, t.Any] = {key: info[key] for key in INTERFACE_BOOL_KEYS if isinstance(info.get(key), bool)}
        ranges = [_mapping(item) or {} for item in _list(report.get('mmio_ranges')) or []]
        interface['max_mmio_ranges'] = len(ranges)
        interface['non_tee_mmio'] = any((_mapping(r.get('attributes')) or {}).get('non_tee_mem') for r in ranges)
        interface['mem_attr_updatable'] = any((_mapping(r.get('attributes')) or {}).get('mem_attr_updatable') for r in ranges)
        draft['interface'] = interface

    problems = validate_manifest(name, draft)
    if problems:
        raise DraftError('the drafted manifest is not valid (%s); the evidence is unusual: %s' % (len(problems), problems[0]))
    return draft


def draft(evidence: t.Any, name: t.Any = 'draft', today: t.Any = None, leaf_subject: t.Any = None) -> dict[str, t.Any]:
    """:func:`manifest_from_evidence` with the filter's arguments: ``today`` None (the controller's
    date, UTC), a date, a datetime or ISO 8601 text; ``leaf_subject`` a regular expression or None."""
    if isinstance(today, _dt.datetime):
        day = today.date()
    elif isinstance(today, _dt.date):
        day = today
    else:
        day = moment(today, 'today').date()
    if leaf_subject is not None and not isinstance(leaf_subject, str):
        raise DraftError('expected a regular expression string, got %s' % type(leaf_subject).__name__, argument='leaf_subject')
    return manifest_from_evidence(evidence, day, name=str(name), leaf_subject=leaf_subject)
