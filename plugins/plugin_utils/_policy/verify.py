# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The verdicts of one host: the evidence of every device whose rule requires a manifest (private).

``verify_host(devices, policy, manifests, now, nonce)`` is the one entry point that both the
acceptance planner and the read-only audit use: it decides every device once without verdicts
to learn which reference manifest its rule requires, then verifies the evidence of those whose
evidence was read. The result is the ``verdicts`` argument of :func:`plan` and :func:`audit`.
"""

from __future__ import annotations

import datetime
import typing as t
from collections.abc import Mapping

from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.manifest_check import pick_manifest
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.verdict import unverifiable, verify_evidence
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.decide import plan


def verify_host(devices: t.Any, policy: t.Any, manifests: t.Any, now: datetime.datetime,
                nonce: t.Any = None) -> dict[str, dict[str, dict[str, t.Any]]]:
    """``{bdf: {manifest name: verdict}}`` for each device whose rule requires a manifest and whose evidence was read.

    ``devices``: the ``tdisp_device_info`` result or its device list; ``policy``: a validated
    :class:`Policy` (or a raw one); ``nonce``: hex text for every device, or ``{bdf: nonce}``.
    """
    manifests = manifests or {}
    first = plan(devices, policy, None, manifests, now)
    listed = devices.get('devices') if isinstance(devices, Mapping) else devices
    by_bdf = {d['bdf']: d for d in listed or [] if isinstance(d, Mapping)}
    out: dict[str, dict[str, dict[str, t.Any]]] = {}
    loaded: dict[str, t.Any] = {}
    for decision in first['decisions']:
        name = (decision.get('evidence') or {}).get('required')
        device = by_bdf.get(decision['bdf'])
        if not name or device is None:
            continue
        evidence = device.get('evidence')
        if not isinstance(evidence, Mapping) or not isinstance(evidence.get('generation'), int):
            continue  # not locked yet (or no evidence): the plan says lock_and_verify or why not
        if name not in loaded:
            loaded[name] = pick_manifest(manifests, name)
        device_nonce = nonce.get(decision['bdf']) if isinstance(nonce, Mapping) else nonce
        try:
            verdict = verify_evidence(evidence, loaded[name], now, device_nonce)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # The verifier never raises on evidence; anything else is turned into a verdict that denies.
            verdict = unverifiable(name, evidence.get('generation'), now, 'verification failed: %s' % exc)
        verdict['bdf'] = decision['bdf']
        out[decision['bdf']] = {name: verdict}
    return out
