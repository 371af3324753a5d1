# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Names, path resolution confined to the root, reads, echo-style writes and errno translation."""

from __future__ import annotations

import errno
import os

import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._abi import errnos, names, sysfs as s


@pytest.mark.parametrize('bdf', ['0000:41:00.0', '10000:01:00.0', '10001:03:00.1', 'ffffffff:ff:1f.7', '0000:00:00.0'])
def test_valid_bdfs(bdf):
    assert names.check_bdf(bdf) == bdf


@pytest.mark.parametrize('bdf, hint', [
    ('0000:41:00.0/../../..', None),
    ('../0000:41:00.0', None),
    ('0000:41:00.8', None),          # function 0..7
    ('0000:41:20.0', None),          # device 0..1f
    ('000:41:00.0', None),           # domain 4..8 digits
    ('100000000:41:00.0', None),     # 9 digits
    ('0000:41:00', None),
    ('0000:41:00.0\n', None),
    (' 0000:41:00.0', '0000:41:00.0'),
    ('0000:4G:00.0', None),
    ('', None),
    ('0000:0A:00.0', '0000:0a:00.0'),  # upper case refused, with the spelling to use
    ('41:00.0', None),
])
def test_invalid_bdfs(bdf, hint):
    with pytest.raises(TdispError) as info:
        names.check_bdf(bdf)
    assert 'not a PCI device name' in str(info.value)
    if hint:
        assert 'did you mean %s' % hint in str(info.value)


@pytest.mark.parametrize('value', [None, 41, b'0000:41:00.0', ['0000:41:00.0']])
def test_bdf_wrong_type(value):
    with pytest.raises(TdispError):
        names.check_bdf(value)


@pytest.mark.parametrize('name, ok', [('tsm0', True), ('tsm12', True), ('tsm', False), ('tsm1 ', False), ('tsm-1', False),
                                      ('../tsm1', False), ('TSM1', False), ('tsm1xyz', False)])
def test_tsm_names(name, ok):
    if ok:
        assert names.check_tsm(name) == name
    else:
        with pytest.raises(TdispError):
            names.check_tsm(name)


@pytest.mark.parametrize('name, ok', [('nvidia', True), ('vfio-pci', True), ('xhci_hcd', True), ('..', False), ('a/b', False),
                                      ('', False), ('.hidden', False), ('x' * 65, False)])
def test_driver_names(name, ok):
    assert names.is_name(name) is ok


def test_root_must_be_absolute_dir(tmp_path):
    with pytest.raises(TdispError, match='not an absolute path'):
        s.Sysfs('sys')
    with pytest.raises(TdispError, match='cannot be read'):
        s.Sysfs(str(tmp_path / 'nope'))
    f = tmp_path / 'file'
    f.write_text('x')
    with pytest.raises(TdispError, match='not a directory'):
        s.Sysfs(str(f))


def test_root_symlink_is_resolved(tree, tmp_path):
    os.symlink(tree.root, str(tmp_path / 'alias'))
    fs = s.Sysfs(str(tmp_path / 'alias'))
    assert fs.root == os.path.realpath(tree.root)


def test_resolve_follows_links_inside_root(guest):
    fs = s.Sysfs(guest.root)
    assert fs.resolve('bus/pci/devices/0000:41:00.0') == 'devices/pci0000:41/0000:41:00.0'
    assert fs.device_dir('0000:41:00.0') == 'devices/pci0000:41/0000:41:00.0'
    assert fs.device_dir('0000:99:00.0') is None


def test_absolute_link_inside_root_is_followed(guest):
    guest.link('bus/pci/devices/0000:41:00.0', os.path.join(os.path.realpath(guest.root), 'devices/pci0000:41/0000:41:00.0'))
    fs = s.Sysfs(guest.root)
    assert fs.device_dir('0000:41:00.0') == 'devices/pci0000:41/0000:41:00.0'


@pytest.mark.parametrize('target', ['/etc', '../../../../../../etc', '../../../..', '/'])
def test_link_out_of_root_is_refused(guest, target):
    guest.link('bus/pci/devices/0000:41:00.0', target)
    fs = s.Sysfs(guest.root)
    with pytest.raises(s.PathEscape) as info:
        fs.device_dir('0000:41:00.0')
    assert 'sysfs root' in str(info.value)


def test_link_chain_out_of_root_is_refused(guest, tmp_path):
    outside = tmp_path / 'outside'
    outside.mkdir()
    guest.link('devices/pci0000:41/evil', str(outside))
    guest.link('bus/pci/devices/0000:41:00.0', '../../../devices/pci0000:41/evil')
    with pytest.raises(s.PathEscape):
        s.Sysfs(guest.root).device_dir('0000:41:00.0')


def test_symlink_loop_is_not_a_crash(guest):
    guest.link('devices/pci0000:41/a', 'b')
    guest.link('devices/pci0000:41/b', 'a')
    guest.link('bus/pci/devices/0000:41:00.0', '../../../devices/pci0000:41/a')
    assert s.Sysfs(guest.root).device_dir('0000:41:00.0') is None


def test_attribute_symlink_is_not_followed(guest, tmp_path):
    secret = tmp_path / 'secret'
    secret.write_text('tsm1\n')
    d = guest.devdir('0000:41:00.0')
    guest.remove(d + '/tsm/lock')
    guest.link(d + '/tsm/lock', str(secret))
    value, why = s.Sysfs(guest.root).read(d + '/tsm/lock')
    assert value is None and 'symlink' in why


@pytest.mark.parametrize('data, value, why', [
    (b'tsm1\n', 'tsm1', None),
    (b'tsm1', 'tsm1', None),
    (b'\n', '', None),
    (b'', '', None),
    (b'\xff\xfe\x00', None, 'garbage bytes'),
    (b'tsm1\x00\n', None, 'garbage'),
    (b'two\nlines\n', None, 'garbage'),
])
def test_read_decoding(tree, data, value, why):
    tree.put('x', data)
    got, reason = s.Sysfs(tree.root).read('x')
    assert got == value
    if why:
        assert why in reason
    else:
        assert reason is None


def test_read_missing_and_unreadable(tree):
    fs = s.Sysfs(tree.root)
    assert fs.read('nope') == (None, 'missing')
    os.makedirs(tree.path('adir'))
    value, why = fs.read('adir')
    assert value is None and 'EISDIR' in why


def test_link_name(guest, tmp_path):
    fs = s.Sysfs(guest.root)
    d = guest.devdir('0000:41:00.0')
    assert fs.link_name(d + '/driver') == ('nvidia', None)
    assert fs.link_name(guest.devdir('0000:42:00.0') + '/driver') == (None, None)
    guest.link(d + '/driver', str(tmp_path))
    name, why = fs.link_name(d + '/driver')
    assert name is None and 'leaves the sysfs root' in why
    guest.link(d + '/driver', '../../../bus/pci/drivers/bad name')
    name, why = fs.link_name(d + '/driver')
    assert name is None and 'not a valid name' in why


def test_write_is_echo_like(tree, monkeypatch):
    """One os.open(O_WRONLY) without O_CREAT/O_TRUNC, one os.write, close: the errno arrives at once."""
    tree.put('attr', 'old\n')
    calls = []
    real_open = os.open

    def spy_open(path, flags, *args, **kw):
        calls.append(('open', path, flags))
        return real_open(path, flags, *args, **kw)

    real_raw = s.RAW_WRITE

    def spy_write(fd, data):
        calls.append(('write', data))
        return real_raw(fd, data)

    monkeypatch.setattr(os, 'open', spy_open)
    monkeypatch.setattr(s, 'RAW_WRITE', spy_write)   # write(2) itself (issue 10: Python's os.write retries EINTR for ever)
    s.Sysfs(tree.root).write('attr', 'tsm1')
    opens = [c for c in calls if c[0] == 'open']
    writes = [c for c in calls if c[0] == 'write']
    assert len(opens) == 1 and len(writes) == 1
    flags = opens[0][2]
    assert flags & os.O_ACCMODE == os.O_WRONLY
    assert not flags & (os.O_CREAT | os.O_TRUNC | os.O_APPEND)
    assert flags & os.O_NOFOLLOW
    assert writes[0][1] == b'tsm1'


def test_write_never_creates(tree):
    with pytest.raises(OSError) as info:
        s.Sysfs(tree.root).write('new-file', 'x')
    assert info.value.errno == errno.ENOENT
    assert not os.path.exists(tree.path('new-file'))


def test_write_refuses_final_symlink(tree, tmp_path):
    target = tmp_path / 'target'
    target.write_text('')
    tree.link('attr', str(target))
    with pytest.raises(OSError) as info:
        s.Sysfs(tree.root).write('attr', 'x')
    assert info.value.errno == errno.ELOOP
    assert target.read_text() == ''


# -- errno translation: kernel-abi.md sections 1c and 9 ------------------------------------------

BDF = '0000:41:00.0'


def err(code):
    return OSError(code, os.strerror(code))


@pytest.mark.parametrize('attr, value, code, state, expect', [
    ('tsm/lock', 'tsm1', errno.EBUSY, {'driver': 'nvidia'},
     '0000:41:00.0 tsm/lock: driver nvidia is bound (EBUSY); set unbind_driver: true or unbind it first'),
    ('tsm/lock', 'tsm1', errno.EBUSY, {'driver': None}, 'already has a TSM context'),
    ('tsm/lock', 'tsm9', errno.ENXIO, {}, 'tsm9 is not a registered devsec TSM (ENXIO)'),
    ('tsm/lock', 'x', errno.EINVAL, {}, 'rejected the TSM name'),
    ('tsm/lock', 'tsm1', errno.EINTR, {}, 'interrupted'),
    ('tsm/lock', 'tsm1', errno.EIO, {}, 'writing \'tsm1\' failed (EIO)'),
    ('tsm/unlock', 'tsm1', errno.EINVAL, {}, 'not locked by tsm1 (EINVAL)'),
    ('tsm/unlock', 'tsm1', errno.EBUSY, {'driver': 'nvidia'}, 'driver nvidia is bound (EBUSY); set unbind_driver'),
    ('tsm/accept', '1', errno.EINVAL, {}, 'not locked (accept needs CONFIG_LOCKED) (EINVAL)'),
    ('tsm/accept', '1', errno.EBUSY, {'driver': 'nvidia'}, 'driver nvidia is bound (EBUSY)'),
    ('tsm/accept', '1', errno.EAGAIN, {}, 'evidence changed since it was validated (EAGAIN)'),
    ('tsm/accept', '1', errno.EIO, {}, 'RUN failed'),
    ('trust', '3', errno.EINVAL, {'accepted': False}, 'level 3 (tcb) needs TDISP RUN (EINVAL)'),
    ('trust', '3', errno.EINVAL, {'accepted': True}, 'the interface left RUN'),
    ('trust', '1', errno.EINVAL, {'tdisp_state': 'run'}, 'below tcb is refused while the device is in RUN'),
    ('trust', '7', errno.EINVAL, {}, 'rejected trust level'),
    ('trust_policy', 'full', errno.EBUSY, {'driver': 'nvidia'}, 'driver nvidia is bound (trust_policy is writable only'),
    ('trust_policy', 'full', errno.EINVAL, {}, 'rejected the policy word'),
    ('drivers/nvidia/bind', BDF, errno.ENODEV, {}, 'did not take the device'),
    ('drivers/nvidia/bind', BDF, errno.EBUSY, {}, 'already bound'),
    ('drivers/nvidia/unbind', BDF, errno.ENODEV, {}, 'not bound to this driver'),
    ('module/nvidia/parameters/trust', 'tcb', errno.EINVAL, {}, 'rejected trust=tcb'),
    ('tsm/lock', 'tsm1', errno.EACCES, {}, 'permission denied'),
    ('tsm/lock', 'tsm1', errno.EPERM, {}, 'become: true'),
    ('tsm/lock', 'tsm1', errno.EROFS, {}, 'read-only'),
    ('tsm/lock', 'tsm1', errno.ENOENT, {}, 'does not exist on this kernel'),
])
def test_explain_write(attr, value, code, state, expect):
    e = errnos.explain(err(code), BDF, attr, value, state)
    text = str(e)
    assert expect in text
    assert text.startswith(BDF + ' ' + attr + ': ')
    assert '(%s)' % errno.errorcode[code] in text
    assert '\n' not in text
    assert e.errno == code and e.device == BDF and e.attribute == attr


@pytest.mark.parametrize('attribute, kind', [
    ('tsm/lock', 'tsm/lock'), ('trust', 'trust'), ('drivers/nvidia/bind', 'bind'), ('drivers/nvidia/unbind', 'unbind'),
    ('module/nvidia/parameters/trust', 'module_param'),
])
def test_errno_table_write_kind(attribute, kind):
    assert errnos.write_kind(attribute) == kind


def test_explain_accept_false_value():
    """kernel-abi.md section 9: accept checks for a true value before it checks the lock."""
    assert str(errnos.explain(err(errno.EINVAL), BDF, 'tsm/accept', '0', {'tdisp_state': 'locked'})) == (
        "0000:41:00.0 tsm/accept: accept takes only a true value, not '0' (EINVAL); write 1")
    assert errnos.match('tsm/accept', errno.EINVAL, 'on', {}) is not errnos.match('tsm/accept', errno.EINVAL, 'off', {})
