# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Table tests for the TDISP device interface report parser, over hand-written bytes."""

from __future__ import annotations

import json

import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.interface_report import parse_interface_report
from ansible_collections.coco.tdisp.tests.unit.plugins.module_utils._evidence import evidence_vectors as v


def error_of(data) -> str:
    with pytest.raises(EvidenceError) as info:
        parse_interface_report(data)
    assert str(info.value).startswith('evidence report: ')
    return str(info.value)


# The smallest report: every fixed field zero, no ranges, no device-specific info (20 bytes).
EMPTY = bytes.fromhex(
    '00 00'            # INTERFACE_INFO
    '00 00'            # RESERVED
    '00 00'            # MSI_X_MESSAGE_CONTROL
    '00 00'            # LNR_CONTROL
    '00 00 00 00'      # TPH_CONTROL
    '00 00 00 00'      # MMIO_RANGE_COUNT
    '00 00 00 00'      # DEVICE_SPECIFIC_INFO_LEN
)


def one_range(attributes: int) -> bytes:
    return (EMPTY[:12] + bytes.fromhex('01 00 00 00')                  # MMIO_RANGE_COUNT 1
            + bytes.fromhex('00 10 00 00 00 00 00 00 02 00 00 00')     # FIRST_PAGE 0x1000, NUMBER_OF_PAGES 2
            + attributes.to_bytes(2, 'little') + bytes.fromhex('07 00')   # RANGE_ATTRIBUTES, RANGE_ID 7
            + bytes.fromhex('00 00 00 00'))                            # DEVICE_SPECIFIC_INFO_LEN 0


def test_report_every_field():
    result = parse_interface_report(v.REPORT)
    json.dumps(result)
    assert result == {
        'interface_info': {'raw': 0x1B, 'no_fw_update': True, 'dma_without_pasid': True, 'dma_with_pasid': False, 'ats': True, 'prs': True,
                           'xt_mode': False},
        'reserved': 0,
        'msix_message_control': 0x8007,
        'lnr_control': 1,
        'tph_control': 0x102,
        'mmio_range_count': 2,
        'mmio_ranges': [
            {'first_page': 0x100000, 'pages': 16, 'range_id': 0,
             'attributes': {'raw': 5, 'msix_table': True, 'msix_pba': False, 'non_tee_mem': True, 'mem_attr_updatable': False}},
            {'first_page': 0x100002000, 'pages': 1, 'range_id': 2,
             'attributes': {'raw': 10, 'msix_table': False, 'msix_pba': True, 'non_tee_mem': False, 'mem_attr_updatable': True}},
        ],
        'device_specific_info': 'aabbcc',
        'length': 55,
    }


def test_empty_report():
    result = parse_interface_report(EMPTY)
    assert result['mmio_ranges'] == [] and result['device_specific_info'] == ''
    assert not any(value for key, value in result['interface_info'].items() if key != 'raw')


@pytest.mark.parametrize('bit, name', [
    (0x01, 'no_fw_update'), (0x02, 'dma_without_pasid'), (0x04, 'dma_with_pasid'), (0x08, 'ats'), (0x10, 'prs'), (0x20, 'xt_mode'),
])
def test_each_interface_info_bit(bit, name):
    info = parse_interface_report(bit.to_bytes(2, 'little') + EMPTY[2:])['interface_info']
    assert info['raw'] == bit
    assert [key for key, value in info.items() if value is True] == [name]


def test_undefined_interface_info_bits_kept_in_raw():
    info = parse_interface_report(bytes.fromhex('c0 ff') + EMPTY[2:])['interface_info']
    assert info['raw'] == 0xFFC0
    assert not any(value is True for value in info.values())


@pytest.mark.parametrize('bit, name', [(0x01, 'msix_table'), (0x02, 'msix_pba'), (0x04, 'non_tee_mem'), (0x08, 'mem_attr_updatable')])
def test_each_range_attribute_bit(bit, name):
    mmio = parse_interface_report(one_range(bit))['mmio_ranges'][0]
    assert (mmio['first_page'], mmio['pages'], mmio['range_id']) == (0x1000, 2, 7)
    assert mmio['attributes']['raw'] == bit
    assert [key for key, value in mmio['attributes'].items() if value is True] == [name]


def test_every_truncation_fails():
    for size in range(len(v.REPORT)):
        error_of(v.REPORT[:size])


@pytest.mark.parametrize('size, text', [
    (0, 'INTERFACE_INFO at offset 0'),
    (2, 'RESERVED at offset 2'),
    (4, 'MSI_X_MESSAGE_CONTROL at offset 4'),
    (6, 'LNR_CONTROL at offset 6'),
    (8, 'TPH_CONTROL at offset 8'),
    (12, 'MMIO_RANGE_COUNT at offset 12'),
    (16, 'MMIO_RANGE_COUNT at offset 12: 2 ranges of 16 bytes overrun the object (0 bytes left)'),
    (47, 'MMIO_RANGE_COUNT at offset 12: 2 ranges of 16 bytes overrun the object (31 bytes left)'),
    (48, 'DEVICE_SPECIFIC_INFO_LEN at offset 48'),
    (52, 'DEVICE_SPECIFIC_INFO_LEN at offset 48: length 3 overruns the object (0 bytes left)'),
    (54, 'length 3 overruns the object (2 bytes left)'),
])
def test_truncation_names_the_field(size, text):
    assert text in error_of(v.REPORT[:size])


@pytest.mark.parametrize('offset, value, text', [
    (12, b'\xff\xff\xff\xff', 'MMIO_RANGE_COUNT at offset 12: 4294967295 ranges of 16 bytes overrun'),
    (12, b'\x01\x00\x00\x00', 'DEVICE_SPECIFIC_INFO_LEN at offset 32: length 8192 overruns the object (19 bytes left)'),
    (48, b'\xff\xff\xff\xff', 'length 4294967295 overruns'),
    (48, b'\x02\x00\x00\x00', 'DEVICE_SPECIFIC_INFO at offset 54: 1 unexpected trailing bytes'),
])
def test_bad_counts_and_lengths(offset, value, text):
    data = v.REPORT[:offset] + value + v.REPORT[offset + len(value):]
    assert text in error_of(data)


def test_trailing_bytes():
    assert 'DEVICE_SPECIFIC_INFO at offset 55: 1 unexpected trailing bytes' in error_of(v.REPORT + b'\x00')


def test_not_bytes():
    assert 'expected bytes, got NoneType' in error_of(None)
