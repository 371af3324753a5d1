# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The evidence filters: argument handling, one-line errors, the list form, and a real templating run."""

from __future__ import annotations

import copy
import datetime as dt
import os
import sys
import typing as t

import pytest
from ansible.errors import AnsibleFilterError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from ansible.utils.collection_loader import AnsibleCollectionConfig
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

from ansible_collections.coco.tdisp.plugins.filter import evidence as filters
from ansible_collections.coco.tdisp.plugins.filter.evidence import FilterModule
from ansible_collections.coco.tdisp.tests.unit.plugins.plugin_utils import tdisp_evidence_factory as f

UTC = dt.timezone.utc
NOW = '2026-09-01T12:00:00Z'


@pytest.fixture(name='chain')
def chain_fixture() -> f.Chain:
    return f.make_chain()


@pytest.fixture(name='evidence')
def evidence_fixture(chain: f.Chain) -> dict[str, t.Any]:
    return f.make_evidence(chain)


@pytest.fixture(name='manifests')
def manifests_fixture(evidence: dict[str, t.Any], chain: f.Chain) -> dict[str, t.Any]:
    return {'eg100': f.manifest_for(evidence, chain)}


def test_filter_names() -> None:
    assert sorted(FilterModule().filters()) == ['manifest_errors', 'manifest_from_evidence', 'prune_manifests', 'verify_devices',
                                                'verify_evidence']


def test_every_filter_has_a_documentation_file() -> None:
    here = os.path.dirname(filters.__file__)
    for name in FilterModule().filters():
        with open(os.path.join(here, name + '.yml'), encoding='utf-8') as handle:
            text = handle.read()
        assert 'name: %s\n' % name in text


def test_verify_evidence(evidence: dict[str, t.Any], manifests: dict[str, t.Any]) -> None:
    verdict = filters.verify_evidence(evidence, 'eg100', manifests, now=NOW, nonce='11' * 32)
    assert verdict['status'] == 'affirming', verdict['reasons']
    assert verdict['evaluated_at'] == NOW


@pytest.mark.parametrize('now', [dt.datetime(2027, 1, 1, tzinfo=UTC), dt.date(2027, 1, 1), '2027-01-01', '2027-01-01T00:00:00+00:00'])
def test_now_forms(evidence: dict[str, t.Any], manifests: dict[str, t.Any], now: t.Any) -> None:
    manifests['eg100']['measurements'][1]['valid_until'] = '2026-12-31'
    verdict = filters.verify_evidence(evidence, 'eg100', manifests, now=now)
    assert verdict['evaluated_at'] == '2027-01-01T00:00:00Z'
    assert 'which expired on 2026-12-31' in verdict['reasons'][0]


def test_default_now_is_the_controller_clock(evidence: dict[str, t.Any], manifests: dict[str, t.Any]) -> None:
    before = dt.datetime.now(UTC).replace(microsecond=0)
    verdict = filters.verify_evidence(evidence, 'eg100', manifests)
    evaluated = dt.datetime.fromisoformat(verdict['evaluated_at'].replace('Z', '+00:00'))
    assert before <= evaluated <= dt.datetime.now(UTC)


def test_bad_now(evidence: dict[str, t.Any], manifests: dict[str, t.Any]) -> None:
    with pytest.raises(AnsibleFilterError, match=r'^coco.tdisp.verify_evidence now: not a date \(YYYY-MM-DD\)'):
        filters.verify_evidence(evidence, 'eg100', manifests, now='yesterday')


def test_unknown_manifest(evidence: dict[str, t.Any], manifests: dict[str, t.Any]) -> None:
    with pytest.raises(AnsibleFilterError) as caught:
        filters.verify_evidence(evidence, 'eg200', manifests)
    assert str(caught.value) == 'coco.tdisp.verify_evidence: reference_manifests.eg200: no such manifest (known: eg100)'


def test_invalid_manifest_fails_with_every_mistake_on_one_line(evidence: dict[str, t.Any], manifests: dict[str, t.Any]) -> None:
    manifests['eg100']['min_svn'] = 'five'
    manifests['eg100']['measurements'][0]['digests'] = ['sha384:00']
    with pytest.raises(AnsibleFilterError) as caught:
        filters.verify_evidence(evidence, 'eg100', manifests)
    message = str(caught.value)
    assert '\n' not in message
    assert message == ('coco.tdisp.verify_evidence: reference_manifests.eg100: 2 errors in reference manifest: '
                       'reference_manifests.eg100.min_svn: expected an integer >= 0, got a string; '
                       'reference_manifests.eg100.measurements[0].digests[0]: a sha384 digest has 96 hex digits, this one has 2')


def test_verify_devices(chain: f.Chain, evidence: dict[str, t.Any], manifests: dict[str, t.Any]) -> None:
    tampered = copy.deepcopy(evidence)
    tampered['interface_report']['interface_info']['ats'] = True
    devices = [
        {'bdf': '0000:41:00.0', 'evidence': evidence, 'manifest': 'eg100'},
        {'bdf': '0000:42:00.0', 'evidence': tampered},
        {'bdf': '0000:43:00.0'},
        {'bdf': '0000:44:00.0', 'evidence': evidence, 'manifest': None},
    ]
    verdicts = filters.verify_devices(devices, manifests, manifest='eg100', now=NOW, nonce={'0000:41:00.0': '11' * 32})
    assert {bdf: verdict['status'] for bdf, verdict in verdicts.items()} == {
        '0000:41:00.0': 'affirming', '0000:42:00.0': 'contraindicated', '0000:43:00.0': 'contraindicated', '0000:44:00.0': 'affirming'}
    assert verdicts['0000:42:00.0']['reasons'] == ['interface_report: interface report: ats is true, manifest eg100 requires false']
    assert verdicts['0000:43:00.0']['reasons'][-1].startswith('evidence_integrity: device 0000:43:00.0 has no evidence')
    assert verdicts['0000:41:00.0']['bdf'] == '0000:41:00.0'
    without_default = filters.verify_devices(devices[3:], manifests, now=NOW)
    assert without_default['0000:44:00.0']['status'] == 'contraindicated'
    assert 'no reference manifest is named for device 0000:44:00.0' in without_default['0000:44:00.0']['reasons'][-1]


def test_verify_devices_nonce_for_all(evidence: dict[str, t.Any], manifests: dict[str, t.Any]) -> None:
    devices = [{'bdf': '0000:41:00.0', 'evidence': evidence}]
    assert filters.verify_devices(devices, manifests, 'eg100', NOW, '11' * 32)['0000:41:00.0']['status'] == 'affirming'
    stale = filters.verify_devices(devices, manifests, 'eg100', NOW, '33' * 32)['0000:41:00.0']
    assert stale['reasons'][0].startswith('measurements: nonce: the request nonce')


@pytest.mark.parametrize('devices, message', [
    ({'bdf': 'x'}, 'coco.tdisp.verify_devices: expected a list of device dicts (with bdf and evidence), got dict'),
    ([{'evidence': {}}], 'coco.tdisp.verify_devices: devices[0] is not a device dict with a bdf'),
    ([{'bdf': 'a', 'evidence': {}}, {'bdf': 'a', 'evidence': {}}], 'coco.tdisp.verify_devices: devices[1]: bdf a appears twice'),
])
def test_verify_devices_bad_input(devices: t.Any, message: str, manifests: dict[str, t.Any]) -> None:
    with pytest.raises(AnsibleFilterError) as caught:
        filters.verify_devices(devices, manifests, manifest='eg100')
    assert str(caught.value) == message


def test_verify_devices_unknown_manifest_fails_the_task(evidence: dict[str, t.Any], manifests: dict[str, t.Any]) -> None:
    with pytest.raises(AnsibleFilterError, match=r'device 0000:41:00.0: reference_manifests.nope: no such manifest'):
        filters.verify_devices([{'bdf': '0000:41:00.0', 'evidence': evidence, 'manifest': 'nope'}], manifests)


def test_manifest_from_evidence(evidence: dict[str, t.Any]) -> None:
    draft = filters.manifest_from_evidence(evidence, name='eg100', today='2026-09-01')
    assert {entry['valid_from'] for entry in draft['measurements']} == {'2026-09-01'}
    assert filters.manifest_errors({'eg100': draft}) == []
    assert filters.verify_evidence(evidence, 'eg100', {'eg100': draft}, now=NOW)['status'] == 'affirming'


def test_manifest_from_bad_evidence(evidence: dict[str, t.Any]) -> None:
    del evidence['certificates']
    with pytest.raises(AnsibleFilterError, match=r'^coco.tdisp.manifest_from_evidence: evidence.certificates: missing'):
        filters.manifest_from_evidence(evidence)
    with pytest.raises(AnsibleFilterError, match='leaf_subject: expected a regular expression string'):
        filters.manifest_from_evidence(evidence, leaf_subject=3)


def test_prune_manifests(manifests: dict[str, t.Any]) -> None:
    entries = manifests['eg100']['measurements']
    entries[1]['valid_until'] = '2026-06-30'
    entries.append({'index': 2, 'digests': [f.digest_text(f.digest_of('fw-97'))], 'valid_from': '2026-06-01'})
    result = filters.prune_manifests(manifests, now=NOW)
    assert [item['index'] for item in result['removed']['eg100']] == [2]
    assert result['kept'] == {}
    assert len(result['manifests']['eg100']['measurements']) == len(entries) - 1
    assert filters.prune_manifests(manifests, now='2026-06-01') == {'manifests': manifests, 'removed': {}, 'kept': {}}


def test_prune_manifests_invalid(manifests: dict[str, t.Any]) -> None:
    manifests['eg100']['signature'] = 'never'
    with pytest.raises(AnsibleFilterError, match=r"^coco.tdisp.prune_manifests: reference_manifests.eg100.signature: expected one of"):
        filters.prune_manifests(manifests)


def test_manifest_errors(manifests: dict[str, t.Any]) -> None:
    assert filters.manifest_errors(manifests) == []
    manifests['eg100']['trust_anchors'] = []
    manifests['other'] = {'leaf_subject': '.*'}
    assert filters.manifest_errors(manifests) == [
        'reference_manifests.eg100.trust_anchors: empty list: name at least one root certificate by its SHA-256 fingerprint',
        'reference_manifests.other: missing required key trust_anchors',
        'reference_manifests.other: missing required key measurements',
    ]


# ----------------------------------------------------------------------------------------------
# Through Ansible itself: YAML from the Ansible loader, lazy templated containers, FQCN filter names


@pytest.fixture(name='templar_for')
def templar_fixture() -> t.Iterator[t.Callable[[dict[str, t.Any]], Templar]]:
    saved: dict[str, t.Any] = {}
    if AnsibleCollectionConfig.collection_finder is None:
        # ansible-test units installs Ansible's collection finder before any test imports; a bare
        # ``PYTHONPATH=build/collections pytest`` run does not. Install it for this test only, with the
        # collection's modules set aside (they were imported as plain packages) and put back afterwards.
        collections_root = os.path.abspath(os.path.join(os.path.dirname(filters.__file__), *(['..'] * 5)))
        saved = {name: module for name, module in sys.modules.items() if name.split('.')[0] == 'ansible_collections'}
        for name in saved:
            del sys.modules[name]
        _AnsibleCollectionFinder(paths=[collections_root])._install()  # pylint: disable=protected-access
    yield lambda variables: Templar(loader=DataLoader(), variables=variables)
    if saved:
        _AnsibleCollectionFinder._remove()  # pylint: disable=protected-access
        for name in [name for name in sys.modules if name.split('.')[0] == 'ansible_collections']:
            del sys.modules[name]
        sys.modules.update(saved)


def test_filters_through_templating_with_yaml_manifests(templar_for: t.Callable[[dict[str, t.Any]], Templar], chain: f.Chain,
                                                        evidence: dict[str, t.Any]) -> None:
    fingerprint = chain.root_fingerprint
    digests = {block['index']: block['value'] for block in evidence['measurements']['blocks'] if not block['raw']}
    group_vars = DataLoader().load(
        'reference_manifests:\n'
        '  eg100:\n'
        '    trust_anchors: ["%s"]\n'
        '    leaf_subject: "CN=EG100 Device \\\\d+,OU=EG100,O=Example GPU Corp"\n'
        '    unlisted_measurements: warning\n'
        '    min_svn: 5\n'
        '    measurements:\n'
        '      - {index: 1, digests: ["sha384:%s"]}\n'
        '      - {index: 2, digests: ["sha384:%s"], valid_from: 2026-01-01, valid_until: 2026-10-31}\n'
        '      - {index: 3, digests: ["sha384:%s"]}\n' % (fingerprint, digests[1], digests[2], digests[3]))
    templar = templar_for({'ev': evidence, 'reference_manifests': group_vars['reference_manifests'],
                           'devices': [{'bdf': '0000:41:00.0', 'evidence': evidence, 'manifest': 'eg100'}]})
    verdict = templar.template(trust_as_template('{{ ev | coco.tdisp.verify_evidence("eg100", reference_manifests, now="%s") }}' % NOW))
    assert verdict['status'] == 'warning', verdict['reasons']
    assert verdict['reasons'] == ['measurements: index 4 (firmware_svn): measured by the device but not listed in manifest eg100']
    later = templar.template(trust_as_template('{{ devices | coco.tdisp.verify_devices(reference_manifests, now="2026-11-01") }}'))
    assert later['0000:41:00.0']['status'] == 'contraindicated'
    errors = templar.template(trust_as_template('{{ reference_manifests | coco.tdisp.manifest_errors }}'))
    assert errors == []
