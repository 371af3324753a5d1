# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import errno

from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError, TdispError


def test_message_names_device_attribute_errno_and_remedy():
    e = TdispError('driver nvidia is bound', device='0000:41:00.0', attribute='tsm/lock', errno=errno.EBUSY,
                   remedy='set unbind_driver: true or unbind it first')
    assert str(e) == '0000:41:00.0 tsm/lock: driver nvidia is bound (EBUSY); set unbind_driver: true or unbind it first'
    assert e.errno_name == 'EBUSY'


def test_message_is_one_line_even_with_newlines_in_the_cause():
    e = TdispError('line one\nline two', device='0000:41:00.0')
    assert '\n' not in str(e)
    assert str(e) == '0000:41:00.0: line one line two'


def test_as_dict_carries_the_parts():
    e = EvidenceError('truncated', device='0000:41:00.0', attribute='measurements', errno=errno.EAGAIN, remedy='retry')
    d = e.as_dict()
    assert d == {'msg': str(e), 'device': '0000:41:00.0', 'attribute': 'measurements', 'errno': 'EAGAIN', 'remedy': 'retry'}
    assert isinstance(e, TdispError)


def test_unknown_errno_number_is_kept():
    assert TdispError('x', errno=9999).errno_name == '9999'


def test_an_unexpected_oserror_is_one_line_with_its_path_and_errno_name():
    from ansible_collections.coco.tdisp.plugins.module_utils._errors import unexpected_oserror
    msg = unexpected_oserror(OSError(errno.EROFS, 'Read-only file system', '/sys/bus/pci/devices/0000:41:00.0/tsm/lock'))
    assert msg == '/sys/bus/pci/devices/0000:41:00.0/tsm/lock: Read-only file system (EROFS); check the path and run as root'
