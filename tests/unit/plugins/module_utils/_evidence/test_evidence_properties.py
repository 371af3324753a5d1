# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Property tests: whatever the bytes, a parser returns JSON-serialisable data or raises EvidenceError."""

from __future__ import annotations

import base64
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.certchain import parse_cert_chain
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.interface_report import parse_interface_report
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.constants import TYPE_NAMES
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.objects import parse_object
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.spdm import parse_measurements, parse_vca
from ansible_collections.coco.tdisp.tests.unit.plugins.module_utils._evidence import evidence_vectors as v

# Reproducible runs (no example database, fixed seed), no deadlines: these tests never depend on timing.
SETTINGS = settings(max_examples=400, deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

VALID = {
    'vca': [v.VCA_12, v.VCA_13, v.VCA_11, v.VCA_10],
    'measurements': [v.MEAS_OBJECT_12, v.MEAS_OBJECT_13, v.MEAS_OBJECT_UNSIGNED, v.MEAS_OBJECT_COUNT, v.MEAS_RESPONSE_ONLY_11, v.MEAS_OBJECT_10],
    'cert0': [v.CHAIN_48],
    'report': [v.REPORT],
}
PARSERS = {
    'vca': parse_vca,
    'measurements': parse_measurements,
    'cert0': parse_cert_chain,
    'report': parse_interface_report,
}


def only_evidence_errors(func, *args, **kwargs):
    """Call the parser; a result must survive json.dumps, and the only exception allowed is EvidenceError."""
    try:
        result = func(*args, **kwargs)
    except EvidenceError as err:
        text = str(err)
        assert text.startswith('evidence ') and '\n' not in text
        return None
    json.dumps(result)
    return result


@st.composite
def mutated(draw, name):
    """A valid object of ``name`` with random edits: byte overwrites, insertions, deletions, truncation."""
    data = bytearray(draw(st.sampled_from(VALID[name])))
    for _edit in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(['set', 'insert', 'delete', 'truncate', 'set16']))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == 'set' and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == 'set16' and len(data) > at + 1:
            data[at:at + 2] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF])).to_bytes(2, 'little')
        elif kind == 'insert':
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == 'delete':
            del data[at:at + draw(st.integers(1, 8))]
        elif kind == 'truncate':
            del data[at:]
    return bytes(data)


SIZES = st.one_of(st.none(), st.sampled_from([32, 48, 64, 96, 132, 256]), st.integers(1, 600))


@SETTINGS
@given(data=st.binary(max_size=700), name=st.sampled_from(sorted(PARSERS)))
def test_random_bytes(data, name):
    only_evidence_errors(PARSERS[name], data)


@SETTINGS
@given(data=st.binary(max_size=64).map(lambda b: bytes([0x10, 0x84, 0, 0, 0x10, 0x04, 0, 0]) + b))
def test_random_bytes_after_a_valid_vca_prefix(data):
    only_evidence_errors(parse_vca, data)


@SETTINGS
@given(data=st.binary(max_size=300), head=st.sampled_from([b'\x12\xe0\x01\xff', b'\x13\xe0\x00\x00', b'\x12\x60\x00\x00', b'\x11\x60']),
       hash_size=SIZES, signature_size=SIZES)
def test_random_measurements_with_valid_headers(data, head, hash_size, signature_size):
    only_evidence_errors(parse_measurements, head + data, hash_size=hash_size, signature_size=signature_size)


@SETTINGS
@given(data=mutated('vca'))
def test_mutated_vca(data):
    only_evidence_errors(parse_vca, data)


@SETTINGS
@given(data=mutated('measurements'), hash_size=SIZES, signature_size=SIZES)
def test_mutated_measurements(data, hash_size, signature_size):
    only_evidence_errors(parse_measurements, data, hash_size=hash_size, signature_size=signature_size)


@SETTINGS
@given(data=mutated('cert0'), hash_size=st.one_of(st.none(), st.sampled_from([32, 48, 64]), st.integers(1, 700)))
def test_mutated_cert_chain(data, hash_size):
    only_evidence_errors(parse_cert_chain, data, hash_size=hash_size)


@SETTINGS
@given(data=mutated('report'))
def test_mutated_report(data):
    only_evidence_errors(parse_interface_report, data)


@SETTINGS
@given(name=st.sampled_from(sorted(TYPE_NAMES) + ['bogus']), source=st.sampled_from(sorted(VALID)),
       context=st.one_of(st.none(), st.fixed_dictionaries({}, optional={
           'hash_size': SIZES, 'measurement_hash_size': SIZES, 'signature_size': SIZES}), st.just(parse_vca(v.VCA_12))),
       data=st.data())
def test_parse_object_any_type_any_object(name, source, context, data):
    obj = data.draw(st.one_of(st.sampled_from(VALID[source]), mutated(source)))
    only_evidence_errors(parse_object, name, obj, context)


# --- round trips through a tiny test-side encoder (not the simulator's builder) --------------------------------------

RANGES = st.lists(st.tuples(st.integers(0, 2 ** 64 - 1), st.integers(0, 2 ** 32 - 1), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
                  max_size=5)


@SETTINGS
@given(info=st.integers(0, 0xFFFF), msix=st.integers(0, 0xFFFF), lnr=st.integers(0, 0xFFFF), tph=st.integers(0, 2 ** 32 - 1),
       ranges=RANGES, extra=st.binary(max_size=40))
def test_report_round_trip(info, msix, lnr, tph, ranges, extra):
    data = (info.to_bytes(2, 'little') + bytes(2) + msix.to_bytes(2, 'little') + lnr.to_bytes(2, 'little') + tph.to_bytes(4, 'little')
            + len(ranges).to_bytes(4, 'little')
            + b''.join(p.to_bytes(8, 'little') + n.to_bytes(4, 'little') + a.to_bytes(2, 'little') + i.to_bytes(2, 'little')
                       for p, n, a, i in ranges)
            + len(extra).to_bytes(4, 'little') + extra)
    result = parse_interface_report(data)
    assert result['interface_info']['raw'] == info
    assert (result['msix_message_control'], result['lnr_control'], result['tph_control']) == (msix, lnr, tph)
    assert [(r['first_page'], r['pages'], r['attributes']['raw'], r['range_id']) for r in result['mmio_ranges']] == ranges
    assert result['device_specific_info'] == extra.hex()
    assert result['interface_info']['ats'] == bool(info & 0x08)


def der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    octets = size.to_bytes((size.bit_length() + 7) // 8, 'big')
    return bytes([tag, 0x80 | len(octets)]) + octets + content


@SETTINGS
@given(payloads=st.lists(st.binary(max_size=400), min_size=1, max_size=4), hash_size=st.sampled_from([32, 48, 64]))
def test_cert_chain_round_trip(payloads, hash_size):
    certs = [der(0x30, der(0x30, der(0x04, p)) + der(0x30, b'\x05\x00') + der(0x03, b'\x00' + p[:3])) for p in payloads]
    body = bytes([0x99]) * hash_size + b''.join(certs)
    data = (4 + len(body)).to_bytes(2, 'little') + b'\x00\x00' + body
    result = parse_cert_chain(data, hash_size=hash_size)
    assert [base64.b64decode(c) for c in result['certificates']] == certs
    assert result['root_hash'] == (bytes([0x99]) * hash_size).hex()
