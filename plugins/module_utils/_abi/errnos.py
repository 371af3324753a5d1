# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The errno table of the kernel's writes, and the one ``explain()`` that reads it (private; may change at any time).

kernel-abi.md sections 1c and 9 as data. One row per (write, errno, condition): the write is
the attribute written (``tsm/lock``, ``trust``, ...) or the kind of write (``bind``,
``unbind``, ``module_param``), ``*`` for any; errno ``None`` is any errno; the condition is a
predicate over the value written and the device facts read at the moment of the write (which
of the kernel's checks, in its order, most likely produced an ambiguous errno). The first
matching row wins; ``cause`` and ``remedy`` are ``str.format`` templates over ``value`` and
``driver``. ``tests/abi/test_abi_errnos.py`` drives every row through the simulator's kernel.
"""

from __future__ import annotations

import errno as _e
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._abi.names import ACCEPT, BIND, LOCK, MODULE_TRUST, UNBIND, UNLOCK

Facts = t.Mapping[str, t.Any]
When = t.Callable[[str, Facts], bool]


class Row(t.NamedTuple):
    write: str
    errno: t.Optional[int]
    when: t.Optional[When]
    cause: str
    remedy: str


def _bound(value: str, facts: Facts) -> bool:
    return bool(facts.get('driver'))


def _tcb(value: str, facts: Facts) -> bool:
    return value == '3'


def _tcb_accepted(value: str, facts: Facts) -> bool:
    return value == '3' and bool(facts.get('accepted'))


def _false(value: str, facts: Facts) -> bool:
    """Not a kstrtobool true value (the kernel looks at the first characters only)."""
    return not (value[:1] in ('y', 'Y', 't', 'T', '1') or value[:2].lower() == 'on')


def _in_run(value: str, facts: Facts) -> bool:
    return facts.get('tdisp_state') == 'run'


def _policy(word: str) -> When:
    """A bind on a trust_policy (design B) device whose requested policy is ``word`` (any: '*')."""
    def when(value: str, facts: Facts) -> bool:
        return facts.get('trust_abi') == 'trust_policy' and (word == '*' or facts.get('trust_raw') == word)
    return when


_UNBIND = 'set unbind_driver: true or unbind it first'
REPROBE = ('remove and rescan it with autoprobe off (echo 0 > /sys/bus/pci/drivers_autoprobe; echo 1 > '
           '/sys/bus/pci/devices/<BDF>/remove; echo 1 > /sys/bus/pci/rescan), set the level, then bind its driver')
_REREAD = 're-read the state with tdisp_device_info'

# The kernel refused tcb on a device that reads accepted: the interface left RUN (device_trust reports a reset).
LEFT_RUN = Row('trust', _e.EINVAL, _tcb_accepted, 'the kernel refused level 3 although accept reads 1: the interface left RUN',
               're-run lock -> verify -> accept (allow_disruptive: true to unlock first)')

TABLE: t.Tuple[Row, ...] = (
    # design B device_trust_prepare() at bind (before the generic EPERM row)
    Row(BIND, _e.EPERM, _policy('disabled'), 'trust_policy is disabled: the kernel refuses every driver bind',
        'ask a level above blocked (trust_policy can be changed only before the device is probed)'),
    Row(BIND, _e.EINVAL, _policy('*'), "the bus cannot honour the device's trust_policy (it resolves another level)",
        'ask level adversary (devices behind an external-facing port get no more), or leave the policy at default'),
    Row('*', _e.EACCES, None, 'permission denied writing {value!r}', 'run the task as root (become: true)'),
    Row('*', _e.EPERM, None, 'permission denied writing {value!r}', 'run the task as root (become: true)'),
    Row('*', _e.EROFS, None, 'sysfs is read-only here', 'run the module inside the confidential VM with a writable /sys'),
    Row('*', _e.ENOENT, None, 'the attribute does not exist on this kernel', 're-read the device with coco.tdisp.tdisp_device_info'),
    Row('*', _e.EINTR, None, 'interrupted while waiting for the device lock', 'retry the task'),
    # tsm/lock: name -> context -> TSM -> driver
    Row(LOCK, _e.EINVAL, None, 'the kernel rejected the TSM name {value!r}', 'pass tsm: tsm<N> as listed by tdisp_device_info'),
    Row(LOCK, _e.EBUSY, _bound, 'driver {driver} is bound', _UNBIND),
    Row(LOCK, _e.EBUSY, None, 'the device already has a TSM context (locked, or connected by a link TSM)',
        'check lock_holder and connected with tdisp_device_info; unlock it first (allow_disruptive: true)'),
    Row(LOCK, _e.ENXIO, None, '{value} is not a registered devsec TSM', 'use the guest TSM (mode devsec) listed by tdisp_device_info'),
    # tsm/unlock: holder -> driver
    Row(UNLOCK, _e.EINVAL, None, 'the device is not locked by {value}', _REREAD + '; something else changed it'),
    Row(UNLOCK, _e.EBUSY, None, 'driver {driver} is bound', _UNBIND),
    # tsm/accept: bool -> locked -> driver -> already -> run
    Row(ACCEPT, _e.EINVAL, _false, 'accept takes only a true value, not {value!r}', 'write 1'),
    Row(ACCEPT, _e.EINVAL, None, 'the device is not locked (accept needs CONFIG_LOCKED)', 'lock it (state: locked), verify its evidence, then accept'),
    Row(ACCEPT, _e.EBUSY, None, 'driver {driver} is bound', _UNBIND),
    Row(ACCEPT, _e.EAGAIN, None, 'the evidence changed since it was validated',
        're-read and re-verify the evidence, then accept with the new generation'),
    Row(ACCEPT, None, None, 'the TSM could not start the interface (RUN failed; the interface may be in ERROR)',
        'unlock it (state: unlocked, allow_disruptive: true) and re-run lock -> verify -> accept'),
    # the trust ABIs (trust.py)
    LEFT_RUN,
    Row('trust', _e.EINVAL, _tcb, 'level 3 (tcb) needs TDISP RUN', 'accept the device first (coco.tdisp.tdisp_device state: run)'),
    Row('trust', _e.EINVAL, _in_run, 'a level below tcb is refused while the device is in RUN', 'set allow_disruptive: true to unlock it first'),
    Row('trust', _e.EINVAL, None, 'the kernel rejected trust level {value!r}', 'use a level 0..3'),
    Row('trust_policy', _e.EBUSY, None, 'the device has been probed: trust_policy can be written only before a driver matches it, '
        'and stays read-only after unbind', REPROBE),
    Row('trust_policy', _e.EINVAL, None, 'the kernel rejected the policy word {value!r}', 'this kernel speaks another trust_policy dialect; report it'),
    Row('module_param', _e.EINVAL, None, 'the module rejected trust={value}', 'check the module accepts none|adversary|auto|tcb'),
    # driver bind / unbind
    Row(BIND, _e.ENODEV, None,
        'the driver did not take the device (trust forbids binding, driver_override names another driver, or probe failed)',
        'check trust_level and driver_override with tdisp_device_info and the kernel log'),
    Row(BIND, _e.EBUSY, None, 'the device is already bound to a driver', _REREAD),
    Row(UNBIND, _e.ENODEV, None, 'the device is not bound to this driver', _REREAD),
)

FALLBACK = Row('*', None, None, 'writing {value!r} failed', 'check the kernel log (dmesg) for the driver or TSM error')


def write_kind(attribute: str) -> str:
    """The table's ``write`` column for an attribute name (``drivers/x/bind`` -> ``bind``, ...)."""
    if attribute.endswith('/' + BIND):
        return BIND
    if attribute.endswith('/' + UNBIND):
        return UNBIND
    if attribute.endswith(MODULE_TRUST):
        return 'module_param'
    return attribute


def match(attribute: str, code: t.Optional[int], value: str, facts: t.Optional[Facts] = None) -> Row:
    """The first row of ``TABLE`` for this write (``FALLBACK`` when none matches)."""
    kind = write_kind(attribute)
    facts = facts or {}
    for row in TABLE:
        if row.write in ('*', kind) and row.errno in (None, code) and (row.when is None or row.when(value, facts)):
            return row
    return FALLBACK


def explain(exc: OSError, bdf: t.Optional[str], attribute: str, value: str, facts: t.Optional[Facts] = None) -> TdispError:
    """The one-line error the operator reads for the errno of one write (``facts``: the device at the write)."""
    row = match(attribute, exc.errno, value, facts)
    fields = {'value': value, 'driver': (facts or {}).get('driver') or '(unknown)'}
    return TdispError(row.cause.format(**fields), device=bdf, attribute=attribute, errno=exc.errno,
                      remedy=row.remedy.format(**fields))
