# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one trust table (DESIGN.md "Trust vocabulary")."""

from __future__ import annotations

import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._abi import trust


def test_table_matches_design():
    assert trust.LEVELS == ('blocked', 'adversary', 'normal', 'tcb')
    assert trust.BY_NAME['trust'].write == ('0', '1', '2', '3')
    assert trust.BY_NAME['trust_policy'].write == ('disabled', 'adversary', 'full', 'full')
    assert trust.BY_NAME['module_param'].write == ('none', 'adversary', 'auto', 'tcb')


@pytest.mark.parametrize('value, level', [
    ('blocked', 'blocked'), ('TCB', 'tcb'), (0, 'blocked'), (3, 'tcb'), ('2', 'normal'), ('1', 'adversary'),
])
def test_parse_level(value, level):
    assert trust.parse_level(value) == level


@pytest.mark.parametrize('value', [4, -1, '4', 'full', 'auto', None, True, False, 2.0, '', [3],
                                   'normal\n', ' normal ', '\u0663'])   # issue 10: no whitespace, no other digits
def test_parse_level_refuses(value):
    with pytest.raises(TdispError) as info:
        trust.parse_level(value)
    assert 'not a trust level' in str(info.value)


@pytest.mark.parametrize('abi', ['trust', 'trust_policy', 'module_param'])
@pytest.mark.parametrize('level', ['blocked', 'adversary', 'normal', 'tcb'])
def test_round_trip(abi, level):
    """Writing a level and reading it back gives the level, tcb with the device in RUN."""
    state = 'run' if level == 'tcb' else 'locked'
    assert trust.level_from_raw(abi, trust.value_for(abi, level), state) == (level, None)
    assert trust.reads_as(abi, level, state) == level


def test_trust_policy_full_depends_on_run():
    assert trust.level_from_raw('trust_policy', 'full', 'run') == ('tcb', None)
    assert trust.level_from_raw('trust_policy', 'full', 'locked') == ('normal', None)
    assert trust.level_from_raw('trust_policy', 'full', 'unknown') == ('normal', None)
    assert trust.reads_as('trust_policy', 'tcb', 'locked') == 'normal'


@pytest.mark.parametrize('abi, raw, reason', [
    ('trust_policy', 'default', 'default'), ('module_param', '(null)', 'unset'), ('module_param', '', 'unset'),
    ('module_param', 'strict', 'not a known word'), ('trust', '9', 'unexpected value'), ('none', '1', 'no trust ABI'),
    ('trust', None, 'no value'),
])
def test_unreadable_levels(abi, raw, reason):
    level, why = trust.level_from_raw(abi, raw, 'run')
    assert level is None and reason in why


def test_no_abi_write():
    with pytest.raises(TdispError, match='no trust ABI'):
        trust.value_for('none', 'tcb')


def test_table_columns_the_planners_read():
    rows = {r.name: r for r in trust.TABLE}
    assert [r.name for r in trust.TABLE] == ['trust', 'trust_policy', 'module_param']
    assert {n: r.needs_unbound for n, r in rows.items()} == {'trust': False, 'trust_policy': True, 'module_param': False}
    assert {n: r.applies_at_bind for n, r in rows.items()} == {'trust': False, 'trust_policy': True, 'module_param': True}
    assert {n: r.per_module for n, r in rows.items()} == {'trust': False, 'trust_policy': False, 'module_param': True}
    assert trust.DEVICE_FILES == {'trust': 'trust', 'trust_policy': 'trust_policy'}
    assert trust.row('none') is None and trust.row(None) is None


@pytest.mark.parametrize('abi, recorded, current, explained', [
    ('trust', 'tcb', 'blocked', True),          # unlock / ERROR writes 0
    ('trust', 'normal', 'blocked', True),
    ('trust', 'blocked', 'blocked', False),
    ('trust', 'tcb', 'normal', False),
    ('trust_policy', 'tcb', 'normal', True),    # full reads normal out of RUN
    ('trust_policy', 'normal', 'normal', False),
    ('trust_policy', 'adversary', 'blocked', False),
    ('module_param', 'tcb', 'normal', False),   # the module parameter is not reset
    ('none', 'tcb', None, False),
])
def test_reset_rule(abi, recorded, current, explained):
    assert trust.reset_explained(abi, recorded, current) is explained
