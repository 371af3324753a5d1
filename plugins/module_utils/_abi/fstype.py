# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The filesystem type under a path, from ``/proc/self/mountinfo`` (private; may change at any time).

proc(5): each line is ``id parent major:minor root mount-point options [optional fields...] - fstype source super-options``;
the mount point escapes space, tab, newline and backslash as octal (``\\040``). The mount with the
longest mount-point prefix of the canonical path is the one the path lives on (the last such line
wins: a later mount over the same point hides the earlier one).
"""

from __future__ import annotations

import re
import typing as t

MOUNTINFO = '/proc/self/mountinfo'
SYSFS = 'sysfs'
SIMULATOR = 'fuse.tdisp-sim'   # the simulator's FUSE mount (simulator/tdisp_sim/daemon.py FSTYPE)

_OCTAL = re.compile(r'\\([0-7]{3})')


def _unescape(text: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), text)


def parse(text: str) -> t.List[t.Tuple[str, str]]:
    """(mount point, fstype) of every well-formed mountinfo line, in order."""
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(' - ')
        fields = left.split(' ')
        if not sep or len(fields) < 6 or not right.split(' ')[0]:
            continue
        out.append((_unescape(fields[4]), right.split(' ')[0]))
    return out


def fstype_of(path: str, mounts: t.Sequence[t.Tuple[str, str]]) -> t.Optional[str]:
    """The fstype of the mount ``path`` (canonical, absolute) lives on, None when no mount covers it."""
    best: t.Optional[t.Tuple[int, str]] = None
    for point, kind in mounts:
        covers = point == '/' or path == point or path.startswith(point.rstrip('/') + '/')
        if covers and (best is None or len(point) >= best[0]):
            best = (len(point), kind)
    return best[1] if best else None


def read_fstype(path: str) -> t.Tuple[t.Optional[str], t.Optional[str]]:
    """(fstype, None), or (None, reason) when ``/proc/self/mountinfo`` cannot be read."""
    try:
        with open(MOUNTINFO, 'r', encoding='utf-8', errors='replace') as f:
            text = f.read()
    except OSError as exc:
        return None, '%s unreadable (%s)' % (MOUNTINFO, exc.strerror)
    return fstype_of(path, parse(text)), None
