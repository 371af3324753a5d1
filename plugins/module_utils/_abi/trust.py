# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The trust table: the collection's levels mapped onto every kernel trust ABI (private; may change at any time).

One row per ABI (DESIGN.md "Trust vocabulary", docs/internals.md "Trust levels"). A new kernel
ABI is one more ``Abi`` row in ``TABLE`` (its errnos, if it has its own, are rows in
``errnos.TABLE``); the device reader probes the device-scope files in table order and the
planners read the columns, never the ABI's name.

=========  ==========  =======  ==============  ===========
level      name        trust    trust_policy    module trust=
=========  ==========  =======  ==============  ===========
0          blocked     0        disabled        none
1          adversary   1        adversary       adversary
2          normal      2        full            auto
3          tcb         3        full+accepted   tcb
=========  ==========  =======  ==============  ===========
"""

from __future__ import annotations

import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._abi.names import MODULE_TRUST

LEVELS = ('blocked', 'adversary', 'normal', 'tcb')
TCB = 'tcb'
BLOCKED = 'blocked'
NONE = 'none'          # the trust_abi of a kernel without any trust ABI


class Abi(t.NamedTuple):
    name: str
    file: str                               # device scope: below the device directory; module scope: below module/<name>/
    per_module: bool                        # one value per driver module (shared by its devices), not per device
    write: t.Tuple[str, str, str, str]      # level index -> value written
    read: t.Mapping[str, t.Optional[str]]   # value read -> level; None: tcb in RUN, else normal
    unset: t.Mapping[str, str]              # values that mean "no explicit level" -> why
    unknown_word: t.Optional[str]           # why, for a value not in read (None: "unexpected value")
    needs_unbound: bool                     # writing it returns EBUSY while a driver is bound
    applies_at_bind: bool                   # the value takes effect at the next bind; blocked makes the kernel refuse the bind
    reset_raw: t.Optional[str]              # what the kernel writes into it when the device leaves RUN (None: nothing)


TABLE: t.Tuple[Abi, ...] = (
    Abi('trust', 'trust', False, ('0', '1', '2', '3'),
        {'0': 'blocked', '1': 'adversary', '2': 'normal', '3': 'tcb'}, {}, None,
        needs_unbound=False, applies_at_bind=False, reset_raw='0'),
    Abi('trust_policy', 'trust_policy', False, ('disabled', 'adversary', 'full', 'full'),
        {'disabled': 'blocked', 'adversary': 'adversary', 'full': None},
        {'default': 'trust_policy default: the kernel build default applies, no explicit level'}, None,
        needs_unbound=True, applies_at_bind=True, reset_raw=None),
    Abi('module_param', MODULE_TRUST, True, ('none', 'adversary', 'auto', 'tcb'),
        {'none': 'blocked', 'adversary': 'adversary', 'auto': 'normal', 'tcb': 'tcb'},
        {'(null)': 'module trust= unset: the module default applies', '': 'module trust= unset: the module default applies'},
        'module trust=%r is not a known word; the kernel treats it as unset (module default)',
        needs_unbound=False, applies_at_bind=True, reset_raw=None),
)
BY_NAME: t.Dict[str, Abi] = {a.name: a for a in TABLE}
# device-scope files in probe order -> the ABI's name
DEVICE_FILES: t.Dict[str, str] = {a.file: a.name for a in TABLE if not a.per_module}
MODULE_ABI: Abi = next(a for a in TABLE if a.per_module)


def row(abi: t.Optional[str]) -> t.Optional[Abi]:
    """The table row of a ``trust_abi`` value, None for ``none`` (or anything unknown)."""
    return BY_NAME.get(abi or '')


def parse_level(value: t.Any) -> str:
    """A level name from a name (``tcb``), a number (3) or a digit string (``'3'``)."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int) and 0 <= value < len(LEVELS):
        return LEVELS[value]
    if isinstance(value, str):
        text = value.lower()   # no whitespace, no other digits: 'normal\n' is not a level
        if text in LEVELS:
            return text
        if text in ('0', '1', '2', '3'):
            return LEVELS[int(text)]
    raise TdispError('%r is not a trust level' % (value,), attribute='level',
                     remedy='use one of %s or 0..3' % ', '.join(LEVELS))


def index(level: str) -> int:
    return LEVELS.index(level)


def value_for(abi: str, level: str) -> str:
    """What to write into the ABI's file for ``level``."""
    found = row(abi)
    if found is None:
        raise TdispError('no trust ABI on this kernel (no trust or trust_policy file, no module trust= parameter)',
                         attribute='trust', remedy='the trust level cannot be changed here; leave level unset for this host')
    return found.write[index(level)]


def level_from_raw(abi: str, raw: t.Optional[str], tdisp_state: t.Optional[str]) -> t.Tuple[t.Optional[str], t.Optional[str]]:
    """(level name, None) or (None, reason) for a value read from the ABI's file."""
    if raw is None:
        return None, 'no value'
    found = row(abi)
    if found is None:
        return None, 'no trust ABI on this kernel'
    if raw in found.unset:
        return None, found.unset[raw]
    if raw in found.read:
        level = found.read[raw]
        if level is None:
            return (TCB if tdisp_state == 'run' else 'normal'), None
        return level, None
    if found.unknown_word is not None:
        return None, found.unknown_word % raw
    return None, 'unexpected value %r' % raw


def reads_as(abi: str, level: str, tdisp_state: t.Optional[str]) -> str:
    """The level a device will read after ``level`` was written, given its TDISP state."""
    got = level_from_raw(abi, value_for(abi, level), tdisp_state)[0]
    return got or level


def reset_explained(abi: str, recorded: str, current: t.Optional[str]) -> bool:
    """Whether ``current`` is what the kernel leaves of ``recorded`` when a device falls out of RUN."""
    found = row(abi)
    if found is None or current == recorded:
        return False
    raw = found.reset_raw if found.reset_raw is not None else found.write[index(recorded)]
    return level_from_raw(abi, raw, 'unlocked')[0] == current
