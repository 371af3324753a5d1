# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Parser for the ``report`` evidence object: the TDISP device interface report (private; may change at any time).

The object is the complete TDI report structure, i.e. the REPORT portions of all DEVICE_INTERFACE_REPORT
responses concatenated, without TDISP message headers (PCIe Base r6.1+ chapter 11 "TEE Device Interface
Security Protocol (TDISP)", the DEVICE_INTERFACE_REPORT response and its "TDI report structure";
libspdm ``include/industry_standard/pci_tdisp.h`` ``pci_tdisp_device_interface_report_struct_t`` and
``pci_tdisp_mmio_range_t``). All fields little-endian::

    INTERFACE_INFO            2   bit 0 no firmware update while locked, 1 DMA without PASID,
                                  2 DMA with PASID, 3 ATS supported, 4 PRS supported, 5 XT mode (later ECN)
    RESERVED                  2
    MSI_X_MESSAGE_CONTROL     2
    LNR_CONTROL               2
    TPH_CONTROL               4
    MMIO_RANGE_COUNT          4
    MMIO_RANGE[count]        16   FIRST_PAGE u64, NUMBER_OF_PAGES u32, RANGE_ATTRIBUTES u16, RANGE_ID u16
    DEVICE_SPECIFIC_INFO_LEN  4
    DEVICE_SPECIFIC_INFO      len

Bit assignments are those of libspdm ``PCI_TDISP_INTERFACE_INFO_*`` and
``PCI_TDISP_MMIO_RANGE_ATTRIBUTES_*`` (MSIX_TABLE 0x1, MSIX_PBA 0x2, IS_NON_TEE_MEM 0x4,
IS_MEM_ATTR_UPDATABLE 0x8).
"""

from __future__ import annotations

import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._evidence._reader import Reader, as_bytes

MMIO_RANGE_SIZE = 16

INTERFACE_INFO_BITS: t.Tuple[t.Tuple[str, int], ...] = (
    ('no_fw_update', 0x01),         # PCI_TDISP_INTERFACE_INFO_NO_UPDATE_AFTER_LOCK
    ('dma_without_pasid', 0x02),    # PCI_TDISP_INTERFACE_INFO_DMA_WITHOUT_PASID
    ('dma_with_pasid', 0x04),       # PCI_TDISP_INTERFACE_INFO_DMA_WITH_PASID
    ('ats', 0x08),                  # PCI_TDISP_INTERFACE_INFO_ATS_SUPPORTED
    ('prs', 0x10),                  # PCI_TDISP_INTERFACE_INFO_PRS_SUPPORTED
    ('xt_mode', 0x20),              # PCI_TDISP_INTERFACE_INFO_XT_MODE_SUPPORTED (TDISP XT ECN)
)
RANGE_ATTRIBUTE_BITS: t.Tuple[t.Tuple[str, int], ...] = (
    ('msix_table', 0x01),           # PCI_TDISP_MMIO_RANGE_ATTRIBUTES_MSIX_TABLE
    ('msix_pba', 0x02),             # PCI_TDISP_MMIO_RANGE_ATTRIBUTES_MSIX_PBA
    ('non_tee_mem', 0x04),          # PCI_TDISP_MMIO_RANGE_ATTRIBUTES_IS_NON_TEE_MEM
    ('mem_attr_updatable', 0x08),   # PCI_TDISP_MMIO_RANGE_ATTRIBUTES_IS_MEM_ATTR_UPDATABLE
)


def _bits(raw: int, table: t.Sequence[t.Tuple[str, int]]) -> t.Dict[str, t.Any]:
    decoded: t.Dict[str, t.Any] = {'raw': raw}
    for name, mask in table:
        decoded[name] = bool(raw & mask)
    return decoded


def parse_interface_report(data: bytes) -> t.Dict[str, t.Any]:
    """Parse the complete TDISP device interface report; nothing may follow DEVICE_SPECIFIC_INFO."""
    data = as_bytes(data, 'report')
    r = Reader(data, 'report')
    interface_info = r.u16('INTERFACE_INFO')
    reserved = r.u16('RESERVED')
    msix = r.u16('MSI_X_MESSAGE_CONTROL')
    lnr = r.u16('LNR_CONTROL')
    tph = r.u32('TPH_CONTROL')
    count_at = r.pos
    count = r.u32('MMIO_RANGE_COUNT')
    if count > r.remaining // MMIO_RANGE_SIZE:
        raise r.fail('MMIO_RANGE_COUNT', '%d ranges of %d bytes overrun the object (%d bytes left)' % (count, MMIO_RANGE_SIZE, r.remaining), count_at)
    ranges: t.List[t.Dict[str, t.Any]] = []
    for index in range(count):
        field = 'MMIO_RANGE[%d]' % index
        ranges.append({
            'first_page': r.u64(field + '.FIRST_PAGE'),
            'pages': r.u32(field + '.NUMBER_OF_PAGES'),
            'attributes': _bits(r.u16(field + '.RANGE_ATTRIBUTES'), RANGE_ATTRIBUTE_BITS),
            'range_id': r.u16(field + '.RANGE_ID'),
        })
    length_at = r.pos
    length = r.u32('DEVICE_SPECIFIC_INFO_LEN')
    if length > r.remaining:
        raise r.fail('DEVICE_SPECIFIC_INFO_LEN', 'length %d overruns the object (%d bytes left)' % (length, r.remaining), length_at)
    info = r.take(length, 'DEVICE_SPECIFIC_INFO')
    r.done('DEVICE_SPECIFIC_INFO')
    return {
        'interface_info': _bits(interface_info, INTERFACE_INFO_BITS),
        'reserved': reserved,
        'msix_message_control': msix,
        'lnr_control': lnr,
        'tph_control': tph,
        'mmio_range_count': count,
        'mmio_ranges': ranges,
        'device_specific_info': info.hex(),
        'length': len(data),
    }
