# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Drafting a manifest from a known-good device, and the evidence contract with the target-side parsers."""

from __future__ import annotations

import base64
import datetime as dt
import typing as t

import pytest
import yaml

from ansible_collections.coco.tdisp.plugins.module_utils._evidence.objects import parse_object
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.draft import DraftError, manifest_from_evidence
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation import load_manifest, validate_manifest
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.verdict import verify_evidence
from ansible_collections.coco.tdisp.tests.unit.plugins.plugin_utils import tdisp_evidence_factory as f

TODAY = dt.date(2026, 9, 1)


def test_draft_pins_what_the_device_shows_and_verifies_it() -> None:
    chain = f.make_chain()
    evidence = f.make_evidence(chain)
    draft = manifest_from_evidence(evidence, TODAY, name='eg100')
    assert validate_manifest('eg100', draft) == []
    assert draft['trust_anchors'] == [':'.join(chain.root_fingerprint[i:i + 2] for i in range(0, 64, 2)).upper()]
    assert draft['intermediates_max'] == 1
    assert draft['min_svn'] == 5
    assert draft['signature'] == 'required'
    assert draft['asym_algos'] == ['ecdsa_p384'] and draft['base_hash_algos'] == ['sha384']
    assert [(e['index'], e['valid_from']) for e in draft['measurements']] == [(index, '2026-09-01') for index in (1, 2, 3, 4)]
    assert draft['measurements'][1]['digests'] == [f.digest_text(f.digest_of('fw-96.00.5A'))]
    assert draft['interface'] == {'no_fw_update': True, 'dma_without_pasid': True, 'dma_with_pasid': False, 'ats': False, 'prs': False,
                                  'max_mmio_ranges': 2, 'non_tee_mmio': False, 'mem_attr_updatable': False}
    # The draft survives a YAML round trip (what an operator reviews and commits) and affirms the device.
    reloaded = yaml.safe_load(yaml.safe_dump({'reference_manifests': {'eg100': draft}}))['reference_manifests']['eg100']
    verdict = verify_evidence(evidence, load_manifest('eg100', reloaded), f.NOW)
    assert verdict['status'] == 'affirming', verdict['reasons']


def test_draft_is_not_valid_before_its_day() -> None:
    chain = f.make_chain()
    evidence = f.make_evidence(chain)
    draft = manifest_from_evidence(evidence, dt.date(2026, 9, 2))
    verdict = verify_evidence(evidence, load_manifest('draft', draft), f.NOW)
    assert verdict['status'] == 'contraindicated'
    assert all('is not valid until 2026-09-02' in reason for reason in verdict['reasons'])


def test_draft_leaf_subject_pins_the_device_unless_widened() -> None:
    evidence = f.make_evidence(f.make_chain())
    sibling = f.make_evidence(f.make_chain(leaf_subject='CN=EG100 Device 1777777,OU=EG100,O=Example GPU Corp'))
    pinned = load_manifest('d', manifest_from_evidence(evidence, TODAY))
    assert 'does not match leaf_subject' in verify_evidence(sibling, pinned, f.NOW)['reasons'][0]
    widened = load_manifest('d', manifest_from_evidence(evidence, TODAY, leaf_subject=f.LEAF_SUBJECT_REGEX))
    assert verify_evidence(sibling, widened, f.NOW)['status'] == 'affirming'


def test_draft_of_unsigned_evidence_says_signature_optional() -> None:
    evidence = f.make_evidence(f.make_chain(), signed=False)
    assert manifest_from_evidence(evidence, TODAY)['signature'] == 'optional'


def test_draft_refuses_evidence_with_parser_errors() -> None:
    evidence = f.make_evidence(f.make_chain())
    evidence['errors'] = [{'object': 'report', 'msg': 'report DEVICE_SPECIFIC_INFO_LEN at offset 56: length 9 overruns the object'}]
    with pytest.raises(DraftError, match='evidence has 1 parser error.*first: object report: report DEVICE_SPECIFIC_INFO_LEN'):
        manifest_from_evidence(evidence, TODAY)


def test_draft_refuses_evidence_without_measurements() -> None:
    evidence = f.make_evidence(f.make_chain())
    del evidence['measurements']
    with pytest.raises(DraftError, match='evidence.measurements: missing'):
        manifest_from_evidence(evidence, TODAY)


# ----------------------------------------------------------------------------------------------
# Contract: evidence as the target-side parsers produce it verifies the same way


def _parsed_by_target(evidence: dict[str, t.Any]) -> dict[str, t.Any]:
    """Rebuild the parsed keys of ``evidence`` from its raw objects with the collection's own parsers."""
    raw = {name: base64.b64decode(entry['data']) for name, entry in evidence['objects'].items()}
    vca = parse_object('vca', raw['vca'])
    return {
        'generation': evidence['generation'],
        'objects': evidence['objects'],
        'vca': vca,
        'measurements': parse_object('measurements', raw['measurements'], vca),
        'certificates': parse_object('cert0', raw['cert0'], vca),
        'interface_report': parse_object('report', raw['report']),
        'errors': [],
    }


@pytest.mark.parametrize('asym, base_hash', [('ecdsa_p384', 'sha384'), ('ecdsa_p256', 'sha256'), ('eddsa_ed25519', 'sha512')])
def test_evidence_parsed_by_the_target_parsers_verifies(asym: str, base_hash: str) -> None:
    chain = f.make_chain(leaf_kind=asym)
    built = f.make_evidence(chain, asym=asym, base_hash=base_hash)
    parsed = _parsed_by_target(built)
    manifest = load_manifest('eg100', f.manifest_for(built, chain))
    verdict = verify_evidence(parsed, manifest, f.NOW, '11' * 32)
    assert verdict['status'] == 'affirming', verdict['reasons']
    forged = _parsed_by_target(f.make_evidence(chain, asym=asym, base_hash=base_hash, signing_key=f.key('attacker', asym)))
    assert verify_evidence(forged, manifest, f.NOW)['status'] == 'contraindicated'
