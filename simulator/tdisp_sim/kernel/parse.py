"""The kernel's string parsers and PCI name helpers (abi §9: "Consequences worth knowing").

What a sysfs store() sees of a write buffer and how it parses it: C strings, ``sscanf("tsm%d")``,
``kstrtobool()``, ``kstrtouint()``, ``sysfs_streq()``; and the PCI name (BDF) format. ``err()``
builds the ``OSError`` every store handler raises.
"""

from __future__ import annotations

import errno
import re
from typing import Optional

_BDF_RE = re.compile(r"^([0-9a-f]{4,8}):([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$")
_WS = " \t\n\v\f\r"


def err(code: int, what: str) -> OSError:
    """An OSError carrying a kernel errno (the message is for the simulator's log only)."""
    return OSError(code, "%s: %s" % (errno.errorcode.get(code, code), what))


def c_string(buf: str) -> str:
    """What C string functions see of a sysfs write buffer: everything before the first NUL."""
    nul = buf.find("\0")
    return buf if nul < 0 else buf[:nul]


def sscanf_tsm(buf: str) -> Optional[int]:
    """``sscanf(buf, "tsm%d", &id)`` as lib/vsprintf.c's vsscanf() does it: a literal "tsm"
    (no leading white space allowed), then %d: white space skipped, an optional '-' (vsscanf
    does not accept '+'), digits; trailing text is ignored. The value is parsed without overflow
    detection and stored in an int (wraps to 32 bits). Returns None when nothing matched."""
    buf = c_string(buf)
    if not buf.startswith("tsm"):
        return None
    m = re.match(r"-?[0-9]+", buf[3:].lstrip(_WS))
    if not m:
        return None
    value = int(m.group(0)) % (1 << 32)
    return value - (1 << 32) if value >= (1 << 31) else value


def kstrtobool(buf: str) -> bool:
    """``kstrtobool()``: only the first one or two characters count. Raises EINVAL."""
    buf = c_string(buf)
    if buf:
        c = buf[0]
        if c in "yYtT1":
            return True
        if c in "nNfF0":
            return False
        if c in "oO" and len(buf) > 1:
            if buf[1] in "nN":
                return True
            if buf[1] in "fF":
                return False
    raise err(errno.EINVAL, "not a boolean: %r" % buf)


def kstrtouint(buf: str) -> int:
    """``kstrtouint(buf, 0, ...)`` as sysfs stores use it: an optional '+', a 0x/0 radix prefix,
    digits and one optional trailing newline; anything else is EINVAL; above UINT_MAX ERANGE."""
    buf = c_string(buf)
    text = buf[:-1] if buf.endswith("\n") else buf
    if text.startswith("+"):
        text = text[1:]
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
        value = int(text, 16)
    elif re.fullmatch(r"0[0-7]*", text):
        value = int(text, 8)
    elif re.fullmatch(r"[1-9][0-9]*", text):
        value = int(text, 10)
    else:
        raise err(errno.EINVAL, "not an unsigned integer: %r" % buf)
    if value > 0xFFFFFFFF:
        raise err(errno.ERANGE, "out of range for unsigned int: %r" % buf)
    return value


def sysfs_streq(a: str, b: str) -> bool:
    """``sysfs_streq()``: equal, ignoring one trailing newline on either side."""
    a, b = c_string(a), c_string(b)
    if a.endswith("\n"):
        a = a[:-1]
    if b.endswith("\n"):
        b = b[:-1]
    return a == b


def valid_bdf(bdf: str) -> bool:
    return bool(_BDF_RE.match(bdf))


def bdf_parts(bdf: str) -> tuple[str, int, int, int]:
    """(domain, bus, device, function) of a PCI name."""
    m = _BDF_RE.match(bdf)
    if not m:
        raise ValueError("not a PCI device name: %r" % bdf)
    return m.group(1), int(m.group(2), 16), int(m.group(3), 16), int(m.group(4), 16)


def host_bridge_of(bdf: str) -> str:
    """The host bridge directory a device sits under: pciDDDD:00 (the root bus is 00)."""
    return "pci%s:00" % bdf.split(":", 1)[0]
