# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The kernel's names: the id print format, the attribute names of driver and module writes."""

from __future__ import annotations

import re

import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._abi import names


@pytest.mark.parametrize('attr, text, ok', [
    ('vendor', '0x10de', True),
    ('device', '0x2330', True),
    ('subsystem_vendor', '0x10de', True),
    ('class', '0x030200', True),
    ('vendor', '0x10DE', False),       # the kernel prints lower case
    ('vendor', '0x10de0', False),      # 0x%04x: exactly four digits
    ('vendor', '0x1de', False),
    ('class', '0x0302', False),        # 0x%06x
    ('device', '10de', False),
])
def test_is_id_is_the_kernel_print_format(attr, text, ok):
    assert names.is_id(attr, text) is ok
    assert bool(re.fullmatch(names.id_pattern(attr), text)) is ok


def test_format_id():
    assert names.format_id('vendor', 0x10de) == '0x10de'
    assert names.format_id('device', 0x1) == '0x0001'
    assert names.format_id('class', 0x30200) == '0x030200'
    assert set(names.ID_DIGITS) == set(names.ID_ATTRS)


def test_write_attribute_names():
    assert names.driver_attr('nvidia', names.BIND) == 'drivers/nvidia/bind'
    assert names.module_trust_attr('nvidia') == 'module/nvidia/parameters/trust'
    assert names.TDISP_STATES == ('unlocked', 'locked', 'run')
