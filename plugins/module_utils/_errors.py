# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one domain error type of the target-side code (private; may change at any time).

Every failure that can reach a user is a ``TdispError`` whose ``str()`` is one line naming
the object (device, attribute, evidence object), the cause (with the errno name where there
is one) and what the operator should do. Modules turn it into ``fail_json(msg=str(err))``.
"""

from __future__ import annotations

import errno as _errno
import typing as t


class TdispError(Exception):
    """A failure with a one-line, actionable message."""

    def __init__(self, message: str, *, device: t.Optional[str] = None, attribute: t.Optional[str] = None,
                 errno: t.Optional[int] = None, remedy: t.Optional[str] = None) -> None:
        self.device = device
        self.attribute = attribute
        self.errno = errno
        self.remedy = remedy
        self.cause = message
        super().__init__(self._render())

    @property
    def errno_name(self) -> t.Optional[str]:
        if self.errno is None:
            return None
        return _errno.errorcode.get(self.errno, str(self.errno))

    def _render(self) -> str:
        parts = []
        where = ' '.join(p for p in (self.device, self.attribute) if p)
        if where:
            parts.append(where + ':')
        parts.append(self.cause)
        if self.errno is not None:
            parts.append('(%s)' % self.errno_name)
        text = ' '.join(parts)
        if self.remedy:
            text += '; ' + self.remedy
        return ' '.join(text.split())

    def as_dict(self) -> dict[str, t.Any]:
        """The error as data, for per-device results that must not fail the whole task."""
        return {
            'msg': str(self),
            'device': self.device,
            'attribute': self.attribute,
            'errno': self.errno_name,
            'remedy': self.remedy,
        }


class EvidenceError(TdispError):
    """Evidence could not be read or parsed (a malformed object, a netlink failure)."""


def unexpected_oserror(exc: OSError) -> str:
    """One line for an ``OSError`` the ABI layer did not expect (modules' last resort; never a traceback)."""
    return '%s: %s (%s); check the path and run as root' % (
        exc.filename or 'sysfs', exc.strerror, _errno.errorcode.get(exc.errno or 0, exc.errno))
