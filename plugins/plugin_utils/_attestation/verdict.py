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

import datetime as _dt
import typing as t
from collections.abc import Mapping, Sequence

from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.chain import _check_chain, _check_integrity
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.common import (
    VerifyError,
    _Check,
    _Evidence,
    _iso,
    moment,
    normalize_nonce,
    require_cryptography,
    worst,
)
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.manifest import (
    UTC,
    Manifest,
    ManifestError,
    is_int,
)
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.manifest_check import pick_manifest
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.measurements import _check_interface, _check_measurements, _check_svn
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.signature import _check_signature


class _Run:
    """What the checks of one verdict share: the evidence, the manifest, the time, the nonce and the chain."""

    def __init__(self, ev: _Evidence, manifest: Manifest, now: _dt.datetime, nonce: t.Optional[str]) -> None:
        self.ev, self.manifest, self.now, self.nonce = ev, manifest, now, nonce
        self.chain: t.Any = None

    def chain_check(self, check: _Check) -> _Check:
        _check, self.chain = _check_chain(check, self.ev, self.manifest, self.now)
        return check


# The checks of a verdict, in the order the verdict lists them: (name, how to run it on a _Run).
# Without evidence (not a mapping) only evidence_integrity runs; it says why.
CHECKS: tuple[tuple[str, t.Callable[[_Check, _Run], _Check]], ...] = (
    ('certificate_chain', lambda check, run: run.chain_check(check)),
    ('measurement_signature', lambda check, run: _check_signature(check, run.ev, run.manifest, run.chain)),
    ('measurements', lambda check, run: _check_measurements(check, run.ev, run.manifest, run.now, run.nonce)),
    ('svn', lambda check, run: _check_svn(check, run.ev, run.manifest)),
    ('interface_report', lambda check, run: _check_interface(check, run.ev, run.manifest)),
    ('evidence_integrity', lambda check, run: _check_integrity(check, run.ev, run.manifest)),
)
CHECK_NAMES = tuple(name for name, _run in CHECKS)
INTEGRITY = 'evidence_integrity'


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
    run = _Run(ev, manifest, now, expected_nonce)
    checks = []
    for name, how in CHECKS:
        if ev.root is None and name != INTEGRITY:
            check = _Check(name)
            check.fail('not evaluated: the evidence is not a mapping')
            checks.append(check)
        else:
            checks.append(how(_Check(name), run))
    return _verdict(manifest.name, manifest.version, (ev.root or {}).get('generation'), now, checks)


def _verdict(name: t.Optional[str], version: t.Any, generation: t.Any, now: _dt.datetime, checks: list[_Check]) -> dict[str, t.Any]:
    return {
        'status': worst(check.status for check in checks),
        'manifest': name,
        'manifest_version': version,
        'generation': generation if is_int(generation) else None,
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
    return _verdict(manifest_name, None, generation, now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC), checks)


def verify_one(evidence: t.Any, manifest_name: t.Any, manifests: t.Any, now: t.Any = None, nonce: t.Any = None) -> dict[str, t.Any]:
    """Verify one device's evidence against ``manifests[manifest_name]`` (the ``verify_evidence`` filter)."""
    instant = moment(now, 'now')
    return verify_evidence(evidence, pick_manifest(manifests, manifest_name), instant, nonce)


def verify_devices(devices: t.Any, manifests: t.Any, manifest: t.Any = None, now: t.Any = None, nonce: t.Any = None) -> dict[str, t.Any]:
    """Verify every device of a host in one call; return ``{bdf: verdict}`` (the ``verify_devices`` filter).

    Each item is a device dict with ``bdf`` and ``evidence`` (as ``tdisp_device_info`` returns
    it) and optionally ``manifest`` (its manifest name, for example set from the policy plan).
    ``manifest`` is the name for items without one. ``nonce`` is hex text for all devices or a
    ``{bdf: nonce}`` mapping.
    """
    instant = moment(now, 'now')
    if not isinstance(devices, Sequence) or isinstance(devices, (str, bytes)):
        raise VerifyError('expected a list of device dicts (with bdf and evidence), got %s' % type(devices).__name__)
    if nonce is not None and not isinstance(nonce, Mapping) and normalize_nonce(nonce) is None:
        raise VerifyError('expected hex text or a mapping of bdf to hex text, got %r' % (nonce,), argument='nonce')
    loaded: dict[str, t.Any] = {}
    verdicts: dict[str, t.Any] = {}
    for position, device in enumerate(devices):
        if not isinstance(device, Mapping) or not isinstance(device.get('bdf'), str):
            raise VerifyError('devices[%d] is not a device dict with a bdf' % position)
        bdf = str(device['bdf'])
        if bdf in verdicts:
            raise VerifyError('devices[%d]: bdf %s appears twice' % (position, bdf))
        name = device.get('manifest') or manifest
        evidence = device.get('evidence')
        generation = evidence.get('generation') if isinstance(evidence, Mapping) else None
        if not name:
            verdict = unverifiable(None, generation, instant, 'no reference manifest is named for device %s (set manifest on the item, '
                                   'or pass manifest=...); default deny' % bdf)
        elif evidence is None:
            verdict = unverifiable(str(name), None, instant, 'device %s has no evidence; read it with coco.tdisp.tdisp_device_info '
                                   '(include_evidence: true)' % bdf)
        else:
            try:
                if name not in loaded:
                    loaded[name] = pick_manifest(manifests, name)
                verdict = verify_evidence(evidence, loaded[name], instant, nonce.get(bdf) if isinstance(nonce, Mapping) else nonce)
            except (ManifestError, VerifyError) as exc:
                raise VerifyError('device %s: %s' % (bdf, exc)) from None
        verdict['bdf'] = bdf
        verdicts[bdf] = verdict
    return verdicts
