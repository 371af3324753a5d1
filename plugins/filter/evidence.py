# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Evidence verification filters (documentation: one YAML file per filter beside this one).

Filters are pure functions evaluated on the controller: verification needs ``cryptography``,
and the targets (confidential VMs) must stay free of third-party crypto libraries because their
acceptance user space is part of the TCB. The target module only reads and parses evidence.
Each filter is one call into ``plugin_utils/_attestation``.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation import draft, manifest_check, verdict
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.common import moment
from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import call


def verify_evidence(evidence: t.Any, manifest_name: t.Any, manifests: t.Any, now: t.Any = None, nonce: t.Any = None) -> dict[str, t.Any]:
    """Verify one device's evidence against ``manifests[manifest_name]``; return the verdict."""
    return call(AnsibleFilterError, 'coco.tdisp.verify_evidence', verdict.verify_one, evidence, manifest_name, manifests, now, nonce)


def verify_devices(devices: t.Any, manifests: t.Any, manifest: t.Any = None, now: t.Any = None, nonce: t.Any = None) -> dict[str, t.Any]:
    """Verify every device of a host in one call; return ``{bdf: verdict}``."""
    return call(AnsibleFilterError, 'coco.tdisp.verify_devices', verdict.verify_devices, devices, manifests, manifest, now, nonce)


def manifest_from_evidence(evidence: t.Any, name: str = 'draft', today: t.Any = None, leaf_subject: t.Any = None) -> dict[str, t.Any]:
    """Draft a reference manifest from a known-good device's evidence, for review."""
    return call(AnsibleFilterError, 'coco.tdisp.manifest_from_evidence', draft.draft, evidence, name, today, leaf_subject)


def prune_manifests(manifests: t.Any, now: t.Any = None) -> dict[str, t.Any]:
    """Remove expired measurement entries from every manifest; say what was removed and what was kept."""
    where = 'coco.tdisp.prune_manifests'
    return call(AnsibleFilterError, where, lambda: manifest_check.prune_all(manifests, moment(now, 'now')))


def manifest_errors(manifests: t.Any) -> list[str]:
    """Every mistake in ``reference_manifests``, one line each with its field path; empty when valid."""
    return manifest_check.manifests_errors(manifests)


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
