# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The host-side ledger: atomic, only written when it changes, refuses what it cannot trust."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.ledger import Ledger


def test_missing_ledger_is_empty_and_not_created(tmp_path):
    state = tmp_path / 'state'
    led = Ledger(str(state))
    assert led.devices == {} and led.unbound_drivers() == {}
    assert led.save() is False
    assert not state.exists()


def test_round_trip_and_permissions(tmp_path):
    state = tmp_path / 'state'
    led = Ledger(str(state))
    led.update('0000:41:00.0', unbound_driver='nvidia', generation=7)
    assert led.save() is True
    assert stat.S_IMODE(os.stat(str(state)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(str(state / 'ledger.json')).st_mode) == 0o600
    data = json.loads((state / 'ledger.json').read_text())
    assert data['format'] == 2
    assert data['devices']['0000:41:00.0']['unbound_driver'] == 'nvidia'
    assert data['devices']['0000:41:00.0']['generation'] == 7
    assert 'updated' in data['devices']['0000:41:00.0']
    again = Ledger(str(state))
    assert again.unbound_drivers() == {'0000:41:00.0': 'nvidia'}
    assert again.save() is False  # unchanged: not rewritten
    assert [p.name for p in state.iterdir()] == ['ledger.json']  # no temporary file left


def test_update_none_removes_and_empty_entries_vanish(tmp_path):
    led = Ledger(str(tmp_path))
    led.update('0000:41:00.0', unbound_driver='nvidia')
    led.update('0000:41:00.0', unbound_driver=None)
    assert led.devices == {}
    with pytest.raises(KeyError):
        led.update('0000:41:00.0', nonsense=1)


def test_unchanged_update_keeps_timestamp(tmp_path):
    led = Ledger(str(tmp_path))
    led.update('0000:41:00.0', trust_level='tcb')
    stamp = led.devices['0000:41:00.0']['updated']
    led.devices['0000:41:00.0']['updated'] = 'then'
    led.update('0000:41:00.0', trust_level='tcb')
    assert stamp and led.devices['0000:41:00.0']['updated'] == 'then'


@pytest.mark.parametrize('content', ['not json', '[]', '{"format": 3, "devices": {}}', '{"format": 1}', b'\xff\xfe'])
def test_corrupt_ledger_refused(tmp_path, content):
    p = tmp_path / 'ledger.json'
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(TdispError) as info:
        Ledger(str(tmp_path))
    assert 'move it aside' in str(info.value)


def test_junk_entries_dropped(tmp_path):
    (tmp_path / 'ledger.json').write_text(json.dumps({'format': 1, 'devices': {
        '../etc': {'unbound_driver': 'x'},
        '0000:41:00.0': {'unbound_driver': '../../evil', 'trust_level': 'tcb', 'junk': 1},
        '0000:42:00.0': 'nope',
    }}))
    led = Ledger(str(tmp_path))
    assert led.devices == {'0000:41:00.0': {'trust_level': 'tcb'}}


def test_relative_state_dir_refused():
    with pytest.raises(TdispError, match='absolute'):
        Ledger('var/lib')


def test_unreadable_state_dir(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('')
    with pytest.raises(TdispError, match='cannot read the ledger'):
        Ledger(str(blocker / 'sub'))


def test_unwritable_state_dir(tmp_path):
    state = tmp_path / 'state'
    led = Ledger(str(state))
    state.write_text('a file where the directory should be')
    led.update('0000:41:00.0', unbound_driver='nvidia')
    with pytest.raises(TdispError) as info:
        led.save()
    assert 'cannot write the ledger' in str(info.value) and 'state_dir' in str(info.value)
