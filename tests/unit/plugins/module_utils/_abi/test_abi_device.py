# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The device dict and TSM discovery against plain trees: every field, every malformed value."""

from __future__ import annotations

import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._abi import device as dv
from ansible_collections.coco.tdisp.plugins.module_utils._abi.sysfs import PathEscape, Sysfs


def read(tree, bdf, ledger=None):
    dev = dv.Reader(Sysfs(tree.root), ledger).read(bdf)
    return dv.public(dev)


def test_dict_shape_and_states(guest):
    d = read(guest, '0000:41:00.0')
    assert list(d) == list(dv.FIELDS)
    assert d == {
        'bdf': '0000:41:00.0', 'vendor': '0x10de', 'device': '0x2330', 'class': '0x030200', 'subsystem_vendor': '0x10de',
        'subsystem_device': '0x16c1', 'driver': 'nvidia', 'driver_override': None, 'tsm_side': 'guest', 'lock_holder': None,
        'accepted': False, 'connected': None, 'bound': None, 'tdisp_state': 'unlocked', 'trust_abi': 'trust',
        'trust_level': 'blocked', 'trust_raw': '0', 'unknown': {},
    }
    locked = read(guest, '0000:42:00.0')
    assert (locked['tdisp_state'], locked['lock_holder'], locked['accepted'], locked['driver']) == ('locked', 'tsm1', False, None)
    run = read(guest, '10000:01:00.0')
    assert (run['tdisp_state'], run['trust_level'], run['trust_raw']) == ('run', 'tcb', '3')


def test_missing_device(guest):
    assert read(guest, '0000:99:00.0') is None


@pytest.mark.parametrize('attr', ['vendor', 'device', 'class', 'subsystem_vendor', 'subsystem_device'])
@pytest.mark.parametrize('content, reason', [
    (b'\xff\xfe', 'garbage bytes'),
    (b'10de\n', 'unexpected value'),
    (b'0x10DE\n', 'unexpected value'),
    (b'0x\n', 'unexpected value'),
    (b'\n', 'unexpected value'),
    (None, 'missing'),
])
def test_malformed_id(guest, attr, content, reason):
    rel = guest.devdir('0000:41:00.0') + '/' + attr
    if content is None:
        guest.remove(rel)
    else:
        guest.put(rel, content)
    d = read(guest, '0000:41:00.0')
    assert d[attr] is None
    assert reason in d['unknown'][attr]
    assert d['tdisp_state'] == 'unlocked'  # one bad field spoils nothing else


@pytest.mark.parametrize('content, field, state, reason', [
    (b'tsm1xyz\n', 'lock_holder', 'unknown', 'not tsm<N>'),
    (b'\x00\x01garbage', 'lock_holder', 'unknown', 'garbage'),
    (b'tsm\n', 'lock_holder', 'unknown', 'not tsm<N>'),
    (b' tsm1\n', 'lock_holder', 'unknown', 'not tsm<N>'),
])
def test_malformed_lock(guest, content, field, state, reason):
    guest.put(guest.devdir('0000:42:00.0') + '/tsm/lock', content)
    d = read(guest, '0000:42:00.0')
    assert d[field] is None
    assert reason in d['unknown'][field]
    assert d['tdisp_state'] == state
    assert 'tsm/lock' in d['unknown']['tdisp_state']


@pytest.mark.parametrize('content', [b'2\n', b'yes\n', b'\xff', b'\n', b'01\n'])
def test_malformed_accept(guest, content):
    guest.put(guest.devdir('0000:42:00.0') + '/tsm/accept', content)
    d = read(guest, '0000:42:00.0')
    assert d['accepted'] is None and 'accepted' in d['unknown']
    assert d['tdisp_state'] == 'unknown' and 'tsm/accept' in d['unknown']['tdisp_state']


def test_accept_missing_while_locked(guest):
    guest.remove(guest.devdir('0000:42:00.0') + '/tsm/accept')
    d = read(guest, '0000:42:00.0')
    assert d['unknown']['accepted'] == 'missing'
    assert d['tdisp_state'] == 'unknown'


def test_accept_one_while_unlocked_is_inconsistent(guest):
    guest.put(guest.devdir('0000:41:00.0') + '/tsm/accept', '1\n')
    d = read(guest, '0000:41:00.0')
    assert d['tdisp_state'] == 'unknown'
    assert 'accept reads 1 but tsm/lock is empty' in d['unknown']['tdisp_state']


def test_garbage_accept_on_unlocked_device_is_still_unlocked(guest):
    """Unlocked == unaccepted in the kernel: an unreadable accept does not hide an empty lock."""
    guest.put(guest.devdir('0000:41:00.0') + '/tsm/accept', b'\xee')
    d = read(guest, '0000:41:00.0')
    assert d['tdisp_state'] == 'unlocked' and d['accepted'] is None and 'accepted' in d['unknown']


def test_no_tsm_dir(guest):
    guest.device('0000:50:00.0', tsm_dir=False, trust='2')
    d = read(guest, '0000:50:00.0')
    # no TDISP interface: the kernel holds no TDISP context for it, i.e. unlocked (nothing unknown)
    assert d['tsm_side'] == 'none' and d['tdisp_state'] == 'unlocked'
    assert 'tdisp_state' not in d['unknown']
    assert d['trust_level'] == 'normal'


def test_tsm_is_a_symlink(guest):
    d = guest.device('0000:50:00.0', tsm_dir=False)
    guest.link(d + '/tsm', '../../pci0000:42/0000:42:00.0/tsm')
    got = read(guest, '0000:50:00.0')
    assert got['tsm_side'] == 'none' and 'not a directory' in got['unknown']['tsm_side']
    assert got['tdisp_state'] == 'unknown'


def test_host_side(tree):
    tree.tsm('tsm0', 'link')
    tree.device('0000:41:00.0', guest=False, host=True)
    d = read(tree, '0000:41:00.0')
    assert d['tsm_side'] == 'host' and d['tdisp_state'] == 'unlocked' and d['connected'] is None and d['bound'] is None
    tree.put(tree.devdir('0000:41:00.0') + '/tsm/bound', 'tsm0\n')
    tree.put(tree.devdir('0000:41:00.0') + '/tsm/connect', 'tsm0\n')
    d = read(tree, '0000:41:00.0')
    assert d['bound'] == 'tsm0' and d['connected'] == 'tsm0'
    assert d['tdisp_state'] == 'unknown' and 'cannot be told apart' in d['unknown']['tdisp_state']
    tree.put(tree.devdir('0000:41:00.0') + '/tsm/bound', 'junk\n')
    d = read(tree, '0000:41:00.0')
    assert d['bound'] is None and 'not tsm<N>' in d['unknown']['bound']


def test_both_sides(tree):
    tree.tsm('tsm0', 'link')
    tree.tsm('tsm1', 'devsec')
    tree.device('0000:41:00.0', guest=True, host=True, lock='tsm1', accept='1')
    d = read(tree, '0000:41:00.0')
    assert d['tsm_side'] == 'both' and d['tdisp_state'] == 'run'


@pytest.mark.parametrize('content, expect, reason', [
    ('(null)', None, None), ('', None, None), ('vfio-pci', 'vfio-pci', None), ('../../etc', None, 'unexpected value'),
])
def test_driver_override(guest, content, expect, reason):
    guest.put(guest.devdir('0000:41:00.0') + '/driver_override', content + '\n')
    d = read(guest, '0000:41:00.0')
    assert d['driver_override'] == expect
    if reason:
        assert reason in d['unknown']['driver_override']


def test_driver_link_escape_is_reported(guest, tmp_path):
    guest.link(guest.devdir('0000:41:00.0') + '/driver', str(tmp_path))
    d = read(guest, '0000:41:00.0')
    assert d['driver'] is None and 'leaves the sysfs root' in d['unknown']['driver']


def test_device_link_escape_raises(guest, tmp_path):
    guest.link('bus/pci/devices/0000:41:00.0', str(tmp_path))
    with pytest.raises(PathEscape):
        dv.Reader(Sysfs(guest.root)).read('0000:41:00.0')


# -- trust ABI probe --------------------------------------------------------------------------------

@pytest.mark.parametrize('raw, level, reason', [
    ('0', 'blocked', None), ('1', 'adversary', None), ('2', 'normal', None), ('3', 'tcb', None),
    ('4', None, 'unexpected value'), ('-1', None, 'unexpected value'), ('03', None, 'unexpected value'), ('x', None, 'unexpected'),
])
def test_trust_int(guest, raw, level, reason):
    guest.put(guest.devdir('0000:41:00.0') + '/trust', raw + '\n')
    d = read(guest, '0000:41:00.0')
    assert d['trust_abi'] == 'trust' and d['trust_level'] == level and d['trust_raw'] == raw
    if reason:
        assert reason in d['unknown']['trust_level']


def test_trust_garbage_bytes(guest):
    guest.put(guest.devdir('0000:41:00.0') + '/trust', b'\x80\x81')
    d = read(guest, '0000:41:00.0')
    assert d['trust_level'] is None and d['trust_raw'] is None and 'garbage' in d['unknown']['trust_level']


@pytest.mark.parametrize('raw, accept, level, reason', [
    ('disabled', '0', 'blocked', None), ('adversary', '0', 'adversary', None), ('full', '0', 'normal', None),
    ('full', '1', 'normal', None),  # design B: full says nothing about RUN ('default', '0', None, 'default'), ('bogus', '0', None, 'unexpected value'),
])
def test_trust_policy(tree, raw, accept, level, reason):
    tree.tsm('tsm1', 'devsec')
    tree.device('0000:41:00.0', lock='tsm1', accept=accept, trust_policy=raw)
    d = read(tree, '0000:41:00.0')
    assert d['trust_abi'] == 'trust_policy' and d['trust_level'] == level and d['trust_raw'] == raw
    if reason:
        assert reason in d['unknown']['trust_level']


@pytest.mark.parametrize('raw, level, reason', [
    ('none', 'blocked', None), ('adversary', 'adversary', None), ('auto', 'normal', None), ('tcb', 'tcb', None),
    ('(null)', None, 'unset'), ('weird', None, 'not a known word'),
])
def test_module_param_bound(tree, raw, level, reason):
    tree.tsm('tsm1', 'devsec')
    tree.driver('nvidia', module='nvidia')
    tree.module_param('nvidia', raw)
    tree.device('0000:41:00.0', driver='nvidia')
    d = read(tree, '0000:41:00.0')
    assert d['trust_abi'] == 'module_param' and d['trust_level'] == level and d['trust_raw'] == raw
    if reason:
        assert reason in d['unknown']['trust_level']
    else:
        assert 'trust_level' not in d['unknown']


def test_module_param_through_module_link_name(tree):
    """The module is found through bus/pci/drivers/<drv>/module, whatever its name."""
    tree.driver('xhci_hcd', module='xhci_pci')
    tree.module_param('xhci_pci', 'adversary')
    tree.device('0000:41:00.0', driver='xhci_hcd')
    d = read(tree, '0000:41:00.0')
    assert d['trust_abi'] == 'module_param' and d['trust_level'] == 'adversary'


def test_module_param_unbound_with_override_or_ledger(tree):
    tree.driver('nvidia', module='nvidia')
    tree.module_param('nvidia', 'tcb')
    tree.device('0000:41:00.0', override='nvidia')
    d = read(tree, '0000:41:00.0')
    assert d['trust_abi'] == 'module_param' and d['trust_level'] == 'tcb'
    assert 'no driver bound' in d['unknown']['trust_level'] and 'next bind' in d['unknown']['trust_level']
    tree.device('0000:42:00.0')
    d = read(tree, '0000:42:00.0', ledger={'0000:42:00.0': 'nvidia'})
    assert d['trust_level'] == 'tcb'


def test_module_param_unbound_unknown_driver(tree):
    tree.driver('nvidia', module='nvidia')
    tree.module_param('nvidia', 'tcb')
    tree.device('0000:42:00.0')
    d = read(tree, '0000:42:00.0')
    assert d['trust_abi'] == 'module_param' and d['trust_level'] is None
    assert 'no driver bound or overridden' in d['unknown']['trust_level']


def test_builtin_driver_on_module_param_host(tree):
    tree.driver('nvidia', module='nvidia')
    tree.module_param('nvidia', 'tcb')
    tree.driver('pcieport')
    tree.device('0000:42:00.0', driver='pcieport')
    d = read(tree, '0000:42:00.0')
    assert d['trust_abi'] == 'none' and 'built in' in d['unknown']['trust_abi']


def test_no_trust_abi(guest):
    guest.device('0000:43:00.0')
    d = read(guest, '0000:43:00.0')
    assert d['trust_abi'] == 'none' and d['trust_level'] is None and d['trust_raw'] is None


# -- TSMs ---------------------------------------------------------------------------------------

def test_tsms(guest):
    r = dv.Reader(Sysfs(guest.root))
    assert r.tsms() == [{'name': 'tsm0', 'mode': 'link', 'unknown': {}}, {'name': 'tsm1', 'mode': 'devsec', 'unknown': {}}]


@pytest.mark.parametrize('content, mode, reason', [
    (b'none\n', 'none', None), (b'devsec', 'devsec', None), (b'guest\n', 'unknown', 'unexpected value'),
    (b'\xff', 'unknown', 'garbage'),
])
def test_tsm_mode_values(tree, content, mode, reason):
    tree.tsm('tsm3', 'devsec')
    tree.put('devices/virtual/tsm/tsm3/pci_mode', content)
    got = dv.Reader(Sysfs(tree.root)).tsms()[0]
    assert got['mode'] == mode
    if reason:
        assert reason in got['unknown']['mode']


def test_tsm_without_pci_mode(tree):
    """Mainline kernels: no pci_mode. link only if some device shows host attributes, else unknown."""
    tree.tsm('tsm0', None)
    tree.device('0000:41:00.0')
    got = dv.Reader(Sysfs(tree.root)).tsms()[0]
    assert got['mode'] == 'unknown' and 'no pci_mode' in got['unknown']['mode']
    tree.device('0000:42:00.0', guest=False, host=True)
    got = dv.Reader(Sysfs(tree.root)).tsms()[0]
    assert got['mode'] == 'link' and got['unknown'] == {}


def test_tsm_link_escape_and_junk_names(tree, tmp_path):
    tree.tsm('tsm1', 'devsec')
    tree.link('class/tsm/tsm2', str(tmp_path))
    tree.link('class/tsm/not-a-tsm', '../../devices/virtual/tsm/tsm1')
    got = dv.Reader(Sysfs(tree.root)).tsms()
    assert [g['name'] for g in got] == ['tsm1', 'tsm2']
    assert got[1]['mode'] == 'unknown' and 'outside the sysfs root' in got[1]['unknown']['mode']


def test_no_tsm_class(tmp_path):
    (tmp_path / 'sys').mkdir()
    assert dv.Reader(Sysfs(str(tmp_path / 'sys'))).tsms() == []


def test_list_bdfs_ignores_junk(guest):
    guest.link('bus/pci/devices/..evil', '../../..')
    good, bad = dv.Reader(Sysfs(guest.root)).list_bdfs()
    assert good == ['0000:41:00.0', '0000:42:00.0', '10000:01:00.0']
    assert bad == ['..evil']
