# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Reference manifests and device evidence verification (private; may change at any time).

Modules: ``manifest`` (the model, digests, instants), ``manifest_check`` (validation, loading,
pruning), ``common`` (the EAR vocabulary, the SPDM signed message, the evidence view), one
module per group of checks (``chain``: evidence_integrity and certificate_chain; ``signature``;
``measurements``: measurements, svn, interface_report), ``verdict`` (the one list of checks and
the verdict of one device or of a host's devices) and ``draft`` (a manifest drafted from a
known-good device). Everything here runs on the controller; verification needs ``cryptography``.
"""

from __future__ import annotations

from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.common import VerifyError, normalize_nonce
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.draft import DraftError, manifest_from_evidence
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.manifest import ManifestError, normalize_fingerprint, parse_instant
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.manifest_check import (
    load_manifest,
    manifests_errors,
    pick_manifest,
    prune_expired,
    validate_manifest,
)
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.verdict import unverifiable, verify_evidence

__all__ = ['DraftError', 'ManifestError', 'VerifyError', 'load_manifest', 'manifest_from_evidence', 'manifests_errors', 'normalize_fingerprint',
           'normalize_nonce', 'parse_instant', 'pick_manifest', 'prune_expired', 'unverifiable', 'validate_manifest', 'verify_evidence']
