# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The trust table: the collection's levels mapped onto every kernel trust ABI (private; may change at any time).

One row per ABI (DESIGN.md "Trust vocabulary", docs/internals.md "Trust levels"); a new kernel
ABI is one more row in ``WRITE`` and ``READ``, not a refactor.

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

LEVELS = ('blocked', 'adversary', 'normal', 'tcb')
TCB = 'tcb'
BLOCKED = 'blocked'
ABIS = ('trust', 'trust_policy', 'module_param', 'none')

# level index -> the value written to the ABI's file.
WRITE: t.Dict[str, t.Tuple[str, str, str, str]] = {
    'trust': ('0', '1', '2', '3'),
    'trust_policy': ('disabled', 'adversary', 'full', 'full'),
    'module_param': ('none', 'adversary', 'auto', 'tcb'),
}

# value read -> level name; None means "needs context" (see level_from_raw).
READ: t.Dict[str, t.Dict[str, t.Optional[str]]] = {
    'trust': {'0': 'blocked', '1': 'adversary', '2': 'normal', '3': 'tcb'},
    'trust_policy': {'disabled': 'blocked', 'adversary': 'adversary', 'full': None},
    'module_param': {'none': 'blocked', 'adversary': 'adversary', 'auto': 'normal', 'tcb': 'tcb'},
}

# Whether a write of the ABI's file needs the device without a driver (EBUSY otherwise), and
# whether the value takes effect only at the next driver bind.
NEEDS_UNBOUND = {'trust': False, 'trust_policy': True, 'module_param': False}
APPLIES_AT_BIND = {'trust': False, 'trust_policy': True, 'module_param': True}


def parse_level(value: t.Any) -> str:
    """A level name from a name (``tcb``), a number (3) or a digit string (``'3'``)."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int) and 0 <= value < len(LEVELS):
        return LEVELS[value]
    if isinstance(value, str):
        text = value.strip().lower()
        if text in LEVELS:
            return text
        if text.isdigit() and int(text) < len(LEVELS):
            return LEVELS[int(text)]
    raise TdispError('%r is not a trust level' % (value,), attribute='level',
                     remedy='use one of %s or 0..3' % ', '.join(LEVELS))


def index(level: str) -> int:
    return LEVELS.index(level)


def value_for(abi: str, level: str) -> str:
    """What to write into the ABI's file for ``level``."""
    row = WRITE.get(abi)
    if row is None:
        raise TdispError('no trust ABI on this kernel (no trust or trust_policy file, no module trust= parameter)',
                         attribute='trust', remedy='the trust level cannot be changed here; leave level unset for this host')
    return row[index(level)]


def level_from_raw(abi: str, raw: t.Optional[str], tdisp_state: t.Optional[str]) -> t.Tuple[t.Optional[str], t.Optional[str]]:
    """(level name, None) or (None, reason) for a value read from the ABI's file."""
    if raw is None:
        return None, 'no value'
    table = READ.get(abi)
    if table is None:
        return None, 'no trust ABI on this kernel'
    if abi == 'trust_policy':
        if raw == 'full':
            return (TCB if tdisp_state == 'run' else 'normal'), None
        if raw == 'default':
            return None, 'trust_policy default: the kernel build default applies, no explicit level'
    if abi == 'module_param':
        if raw == '(null)' or raw == '':
            return None, 'module trust= unset: the module default applies'
        if raw not in table:
            return None, 'module trust=%r is not a known word; the kernel treats it as unset (module default)' % raw
    if raw in table:
        return table[raw], None
    return None, 'unexpected value %r' % raw


def reads_as(abi: str, level: str, tdisp_state: t.Optional[str]) -> str:
    """The level a device will read after ``level`` was written, given its TDISP state."""
    got = level_from_raw(abi, value_for(abi, level), tdisp_state)[0]
    return got or level
