# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The tdisp_device_info gatherer against plain trees, with a fake evidence client and the real parsers."""

from __future__ import annotations

import base64

import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError, TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.info import gather, parse_nonce
from ansible_collections.coco.tdisp.plugins.module_utils._abi.sysfs import Sysfs
from ansible_collections.coco.tdisp.tests.unit.plugins.module_utils._evidence import evidence_vectors as v

GPU, LOCKED, RUN = '0000:41:00.0', '0000:42:00.0', '10000:01:00.0'


class FakeClient:
    def __init__(self, objects, fail=None):
        self.objects = objects
        self.fail = fail or {}
        self.reads = []
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.closed = True

    def read(self, bdf, types, nonce=None):
        self.reads.append((bdf, tuple(types), nonce))
        if bdf in self.fail:
            raise EvidenceError(self.fail[bdf], device=bdf, attribute='evidence read')
        return {'generation': 7, 'family': 'device-evidence', 'objects': dict(self.objects.get(bdf, {}))}


def test_list_and_filters(guest):
    guest.device('0000:50:00.0', tsm_dir=False)
    r = gather(Sysfs(guest.root))
    assert [d['bdf'] for d in r['devices']] == [GPU, LOCKED, RUN]
    assert [t['name'] for t in r['tsms']] == ['tsm0', 'tsm1']
    assert [d['bdf'] for d in gather(Sysfs(guest.root), vendor='8086')['devices']] == [RUN]
    assert [d['bdf'] for d in gather(Sysfs(guest.root), device='0x2330')['devices']] == [GPU, LOCKED]
    assert [d['bdf'] for d in gather(Sysfs(guest.root), tsm='tsm1')['devices']] == [LOCKED, RUN]
    r = gather(Sysfs(guest.root), bdfs=['0000:50:00.0', '0000:99:00.0', GPU, GPU])
    assert [d['bdf'] for d in r['devices']] == ['0000:50:00.0', GPU] and r['missing'] == ['0000:99:00.0']


@pytest.mark.parametrize('kw, text', [
    ({'bdfs': ['0000:41:00']}, 'not a PCI device name'),
    ({'vendor': 'zz'}, 'not a hexadecimal PCI id'),
    ({'tsm': 'tsm 1'}, 'not a TSM name'),
])
def test_bad_filters(guest, kw, text):
    with pytest.raises(TdispError, match=text):
        gather(Sysfs(guest.root), **kw)


def test_nonce():
    assert parse_nonce('00ff') == b'\x00\xff'
    assert parse_nonce(None) is None and parse_nonce('') is None
    for bad in ('0', 'zz', '0x00'):
        with pytest.raises(TdispError, match='nonce'):
            parse_nonce(bad)


def test_evidence_parsed_and_errors_stay_per_device(guest):
    objects = {
        RUN: {'vca': v.VCA_12, 'measurements': v.MEAS_OBJECT_12, 'report': v.REPORT, 'cert1': b''},
        LOCKED: {'vca': v.VCA_12, 'report': v.REPORT[:5]},
    }
    client = FakeClient(objects)
    r = gather(Sysfs(guest.root), evidence={'types': None, 'nonce': b'\x01', 'max_object_size': 64}, evidence_factory=lambda: client)
    by = {d['bdf']: d['evidence'] for d in r['devices']}
    assert by[GPU] == {'errors': [{'object': '*', 'msg': '0000:41:00.0: not locked or connected: no TSM context, no evidence (ENXIO)'}]}
    run = by[RUN]
    assert run['errors'] == [] and run['generation'] == 7 and run['family'] == 'device-evidence'
    assert run['vca'] and run['measurements'] and run['interface_report'] and 'certificates' not in run
    assert run['objects']['cert1'] == {'digest': run['objects']['cert1']['digest'], 'length': 0, 'data': ''}
    assert run['objects']['report']['data'] == base64.b64encode(v.REPORT).decode()
    big = run['objects']['vca']
    assert big['length'] == len(v.VCA_12) > 64 and big['data'] is None and 'max_object_size' in big['omitted']
    locked = by[LOCKED]
    assert [e['object'] for e in locked['errors']] == ['report'] and 'vca' in locked
    assert client.reads[0][1] == ('cert0', 'cert1', 'cert2', 'cert3', 'cert4', 'cert5', 'cert6', 'cert7', 'vca', 'measurements', 'report')
    assert client.reads[0][2] == b'\x01' and client.closed


def test_evidence_read_failure_is_per_device(guest):
    client = FakeClient({RUN: {'report': v.REPORT}}, fail={LOCKED: 'refused (ENXIO)'})
    r = gather(Sysfs(guest.root), evidence={'types': ['report']}, evidence_factory=lambda: client)
    by = {d['bdf']: d['evidence'] for d in r['devices']}
    assert by[LOCKED]['errors'][0]['object'] == '*' and 'refused' in by[LOCKED]['errors'][0]['msg']
    assert by[RUN]['errors'] == [] and by[RUN]['interface_report']


def test_no_evidence_client_needed_without_locked_devices(tree):
    tree.tsm('tsm1')
    tree.device(GPU)
    r = gather(Sysfs(tree.root), evidence={'types': None}, evidence_factory=None)
    assert r['devices'][0]['evidence']['errors'][0]['object'] == '*'
