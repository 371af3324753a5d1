# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Evidence verification filters (documentation: one YAML file per filter beside this one).

Filters are pure functions evaluated on the controller: verification needs ``cryptography``,
and the targets (confidential VMs) must stay free of third-party crypto libraries because their
acceptance user space is part of the TCB. The target module only reads and parses evidence.
"""

from __future__ import annotations

import datetime as _dt
import typing as t
from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError

from ansible_collections.coco.tdisp.plugins.plugin_utils._draft import DraftError, manifest_from_evidence as _draft
from ansible_collections.coco.tdisp.plugins.plugin_utils._manifest import (
    UTC,
    ManifestError,
    manifests_errors,
    parse_instant,
    pick_manifest,
    prune_expired,
)
from ansible_collections.coco.tdisp.plugins.plugin_utils._verify import (
    VerifyError,
    normalize_nonce,
    unverifiable,
    verify_evidence as _verify,
)


def _now(value: t.Any, name: str) -> _dt.datetime:
    """``now`` argument: None (the controller clock, UTC), a datetime, a date, or ISO 8601 text."""
    if value is None:
        return _dt.datetime.now(UTC)
    moment, problem = parse_instant(value, end_of_day=False)
    if moment is None:
        raise AnsibleFilterError('%s: %s' % (name, problem))
    return moment


def verify_evidence(evidence: t.Any, manifest_name: t.Any, manifests: t.Any, now: t.Any = None, nonce: t.Any = None) -> dict[str, t.Any]:
    """Verify one device's evidence against ``manifests[manifest_name]``; return the verdict."""
    moment = _now(now, 'coco.tdisp.verify_evidence now')
    try:
        manifest = pick_manifest(manifests, manifest_name)
        return _verify(evidence, manifest, moment, nonce)
    except (ManifestError, VerifyError) as exc:
        raise AnsibleFilterError('coco.tdisp.verify_evidence: %s' % exc) from None


def verify_devices(devices: t.Any, manifests: t.Any, manifest: t.Any = None, now: t.Any = None, nonce: t.Any = None) -> dict[str, t.Any]:
    """Verify every device of a host in one call; return ``{bdf: verdict}``.

    Each item is a device dict with ``bdf`` and ``evidence`` (as ``tdisp_device_info`` returns
    it) and optionally ``manifest`` (its manifest name, for example set from the policy plan).
    ``manifest`` is the name for items without one. ``nonce`` is hex text for all devices or a
    ``{bdf: nonce}`` mapping.
    """
    where = 'coco.tdisp.verify_devices'
    moment = _now(now, where + ' now')
    if not isinstance(devices, Sequence) or isinstance(devices, (str, bytes)):
        raise AnsibleFilterError('%s: expected a list of device dicts (with bdf and evidence), got %s' % (where, type(devices).__name__))
    if nonce is not None and not isinstance(nonce, Mapping) and normalize_nonce(nonce) is None:
        raise AnsibleFilterError('%s nonce: expected hex text or a mapping of bdf to hex text, got %r' % (where, nonce))
    loaded: dict[str, t.Any] = {}
    verdicts: dict[str, t.Any] = {}
    for position, device in enumerate(devices):
        if not isinstance(device, Mapping) or not isinstance(device.get('bdf'), str):
            raise AnsibleFilterError('%s: devices[%d] is not a device dict with a bdf' % (where, position))
        bdf = str(device['bdf'])
        if bdf in verdicts:
            raise AnsibleFilterError('%s: devices[%d]: bdf %s appears twice' % (where, position, bdf))
        name = device.get('manifest') or manifest
        evidence = device.get('evidence')
        device_nonce = nonce.get(bdf) if isinstance(nonce, Mapping) else nonce
        generation = evidence.get('generation') if isinstance(evidence, Mapping) else None
        if not name:
            verdict = unverifiable(None, generation, moment, 'no reference manifest is named for device %s (set manifest on the item, '
                                   'or pass manifest=...); default deny' % bdf)
        elif evidence is None:
            verdict = unverifiable(str(name), None, moment, 'device %s has no evidence; read it with coco.tdisp.tdisp_device_info '
                                   '(include_evidence: true)' % bdf)
        else:
            try:
                if name not in loaded:
                    loaded[name] = pick_manifest(manifests, name)
                verdict = _verify(evidence, loaded[name], moment, device_nonce)
            except (ManifestError, VerifyError) as exc:
                raise AnsibleFilterError('%s: device %s: %s' % (where, bdf, exc)) from None
        verdict['bdf'] = bdf
        verdicts[bdf] = verdict
    return verdicts


def manifest_from_evidence(evidence: t.Any, name: str = 'draft', today: t.Any = None, leaf_subject: t.Any = None) -> dict[str, t.Any]:
    """Draft a reference manifest from a known-good device's evidence, for review."""
    where = 'coco.tdisp.manifest_from_evidence'
    if today is None:
        day = _dt.datetime.now(UTC).date()
    elif isinstance(today, _dt.date):
        day = today if not isinstance(today, _dt.datetime) else today.date()
    else:
        moment = _now(today, where + ' today')
        day = moment.date()
    if leaf_subject is not None and not isinstance(leaf_subject, str):
        raise AnsibleFilterError('%s leaf_subject: expected a regular expression string, got %s' % (where, type(leaf_subject).__name__))
    try:
        return _draft(evidence, day, name=str(name), leaf_subject=leaf_subject)
    except (DraftError, VerifyError) as exc:
        raise AnsibleFilterError('%s: %s' % (where, exc)) from None


def prune_manifests(manifests: t.Any, now: t.Any = None) -> dict[str, t.Any]:
    """Remove expired measurement entries from every manifest; say what was removed and what was kept."""
    where = 'coco.tdisp.prune_manifests'
    moment = _now(now, where + ' now')
    if not isinstance(manifests, Mapping):
        raise AnsibleFilterError('%s: expected a mapping of manifest name to manifest, got %s' % (where, type(manifests).__name__))
    result: dict[str, t.Any] = {'manifests': {}, 'removed': {}, 'kept': {}}
    for name, data in manifests.items():
        try:
            pruned = prune_expired(name, data, moment)
        except ManifestError as exc:
            raise AnsibleFilterError('%s: %s' % (where, exc)) from None
        result['manifests'][name] = pruned['manifest']
        if pruned['removed']:
            result['removed'][name] = pruned['removed']
        if pruned['kept']:
            result['kept'][name] = pruned['kept']
    return result


def manifest_errors(manifests: t.Any) -> list[str]:
    """Every mistake in ``reference_manifests``, one line each with its field path; empty when valid."""
    return manifests_errors(manifests)


class FilterModule:
    """coco.tdisp evidence verification filters."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            'verify_evidence': verify_evidence,
            'verify_devices': verify_devices,
            'manifest_from_evidence': manifest_from_evidence,
            'prune_manifests': prune_manifests,
            'manifest_errors': manifest_errors,
        }
