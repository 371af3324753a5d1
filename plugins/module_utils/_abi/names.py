# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the kernel names: relative sysfs paths, attribute names and name formats (private; may change at any time).

kernel-abi.md sections 1 to 3. Every path the collection builds below the sysfs root is made
of these names and of names checked here first (``check_bdf``, ``check_tsm``, ``check_name``).
The id print format (``ID_DIGITS``) is the kernel's ``pci-sysfs.c``: ``0x%04x`` for vendor,
device and the subsystem ids, ``0x%06x`` for class; the controller's policy matcher uses the
same rule (``id_pattern``).
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError

# -- relative paths below the sysfs root ------------------------------------------------------------
CLASS_TSM = 'class/tsm'
PCI_DEVICES = 'bus/pci/devices'
PCI_DRIVERS = 'bus/pci/drivers'
MODULES = 'module'
MODULE_TRUST = 'parameters/trust'     # below module/<name>/ (design A kernels)

# -- attributes of a PCI device directory ----------------------------------------------------------
ID_ATTRS = ('vendor', 'device', 'class', 'subsystem_vendor', 'subsystem_device')
DRIVER_LINK = 'driver'
DRIVER_OVERRIDE = 'driver_override'
TSM_DIR = 'tsm'
GUEST_ATTRS = ('lock', 'unlock', 'accept')
HOST_ATTRS = ('connect', 'disconnect', 'dsm', 'bound')
LOCK = TSM_DIR + '/lock'
UNLOCK = TSM_DIR + '/unlock'
ACCEPT = TSM_DIR + '/accept'
ACCEPT_TRUE = '1'
TSM_PCI_MODE = 'pci_mode'             # below class/tsm/<name>/ (devsec-phase2 kernels only)
TSM_MODES = ('link', 'devsec', 'none')
BIND = 'bind'                         # below bus/pci/drivers/<name>/
UNBIND = 'unbind'
DRIVER_MODULE = 'module'              # the driver's link to its module

# -- the TDISP states as the collection names them (kernel-abi.md section 3) -----------------------
TDISP_STATES = ('unlocked', 'locked', 'run')
UNKNOWN = 'unknown'

# -- name formats ---------------------------------------------------------------------------------
# PCI device names as the kernel prints them: domain (4 hex digits, more above ffff as the
# kernel's devsec emulator uses "10000:"), bus, device (0..1f), function (0..7); lower case.
_BDF_RE = re.compile(r'\A[0-9a-f]{4,8}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]\Z')
_BDF_LOOSE_RE = re.compile(r'\A([0-9a-fA-F]{1,8}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])\Z')
_TSM_RE = re.compile(r'\Atsm[0-9]{1,9}\Z')
# Driver and module names (the kernel's are C identifiers plus '-' and '.'; keep it strict).
_NAME_RE = re.compile(r'\A[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}\Z')

# Hex digits the kernel prints for each id attribute, after '0x'.
ID_DIGITS: t.Dict[str, int] = {'vendor': 4, 'device': 4, 'subsystem_vendor': 4, 'subsystem_device': 4, 'class': 6}


def id_pattern(attr: str) -> str:
    """The regular expression (no anchors) of an id as the kernel prints it, e.g. ``0x[0-9a-f]{4}``."""
    return '0x[0-9a-f]{%d}' % ID_DIGITS[attr]


def is_id(attr: str, text: str) -> bool:
    """Whether ``text`` is the id attribute ``attr`` exactly as the kernel prints it."""
    digits = ID_DIGITS[attr]
    return len(text) == 2 + digits and text.startswith('0x') and all(c in '0123456789abcdef' for c in text[2:])


def format_id(attr: str, value: int) -> str:
    """``value`` printed as the kernel prints the id attribute ``attr``."""
    return '0x%0*x' % (ID_DIGITS[attr], value)


def check_bdf(value: t.Any, what: str = 'bdf') -> str:
    """Return ``value`` if it is a PCI device name ``DDDD:BB:DD.F`` (lower-case hex), else raise."""
    if isinstance(value, str) and _BDF_RE.match(value):
        return value
    hint = ''
    if isinstance(value, str):
        m = _BDF_LOOSE_RE.match(value.strip())
        if m:
            dom, bus, dev, fn = m.groups()
            if int(dev, 16) <= 0x1f:
                hint = ' (did you mean %s?)' % ('%04x:%02x:%02x.%s' % (int(dom, 16), int(bus, 16), int(dev, 16), fn))
    raise TdispError('%r is not a PCI device name DDDD:BB:DD.F in lower-case hex%s' % (value, hint),
                     attribute=what, remedy='write it as the kernel prints it, e.g. 0000:41:00.0')


def is_bdf(value: str) -> bool:
    return bool(_BDF_RE.match(value))


def check_tsm(value: t.Any, what: str = 'tsm') -> str:
    if isinstance(value, str) and _TSM_RE.match(value):
        return value
    raise TdispError('%r is not a TSM name tsm<N>' % (value,), attribute=what,
                     remedy='use a name listed under tsms by coco.tdisp.tdisp_device_info')


def is_tsm(value: str) -> bool:
    return bool(_TSM_RE.match(value))


def check_name(value: t.Any, what: str = 'driver') -> str:
    if isinstance(value, str) and _NAME_RE.match(value):
        return value
    raise TdispError('%r is not a valid %s name' % (value, what), attribute=what)


def is_name(value: str) -> bool:
    return bool(_NAME_RE.match(value))


def driver_attr(driver: str, verb: str) -> str:
    """The attribute name a driver bind/unbind is reported under: ``drivers/<driver>/<verb>``."""
    return 'drivers/%s/%s' % (driver, verb)


def module_trust_attr(module: str) -> str:
    """The attribute name a module trust= write is reported under: ``module/<module>/parameters/trust``."""
    return '%s/%s/%s' % (MODULES, module, MODULE_TRUST)
