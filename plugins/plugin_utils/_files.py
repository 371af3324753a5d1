# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Controller-side files: reports and drafts, written atomically and only when they differ (private).

Reports go where the user runs ``ansible-playbook`` (:data:`DEFAULT_REPORT_DIR`, relative to the
current directory) or a directory the user names; never into the installed collection.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import typing as t
from collections.abc import Mapping

import yaml

from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import TdispError

DEFAULT_REPORT_DIR = 'tdisp-reports'
"""The report directory when none is named: ``./tdisp-reports`` in the directory ``ansible-playbook`` runs in."""


class FileError(TdispError):
    """A report file cannot be written (one line naming the file, the cause and the remedy)."""


def _fail(path: str, what: str, exc: OSError) -> FileError:
    name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return FileError('cannot %s %s: %s (%s); check the directory and its permissions on the controller'
                     % (what, path, exc.strerror or exc, name))


class _IndentedSafeDumper(yaml.SafeDumper):  # pylint: disable=too-many-ancestors
    """PyYAML's safe dumper with the lists indented under their key, as yamllint and ansible-lint want them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def plain(value: t.Any) -> t.Any:
    """``value`` as plain ``dict``/``list``/``str``/``int``/``float``/``bool``/``None`` (no Ansible or other subclass)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    for kind in (int, float):
        if isinstance(value, kind):
            return kind(value)
    return str(value)


def safe_yaml(data: t.Any) -> str:
    """``data`` as a YAML document (``---``) through the safe dumper only: no tags, no Python objects, every
    device-supplied text quoted and escaped as YAML needs, lists indented; it passes yamllint and ansible-lint."""
    return yaml.dump(plain(data), Dumper=_IndentedSafeDumper, explicit_start=True, default_flow_style=False, sort_keys=False,
                     allow_unicode=False, indent=2, width=160)


def parse_mode(value: t.Any) -> int:
    """An octal permission string such as ``'0644'``."""
    try:
        mode = int(value, 8)
    except (TypeError, ValueError):
        mode = -1
    if not 0 <= mode <= 0o777:
        raise FileError('mode %r is not an octal permission such as \'0644\'' % (value,))
    return mode


def report_dir(directory: t.Optional[str]) -> str:
    """The absolute report directory: ``directory``, else :data:`DEFAULT_REPORT_DIR`, from the current directory."""
    return os.path.abspath(os.path.expanduser(directory or DEFAULT_REPORT_DIR))


def prepare(path: str, check_mode: bool = False) -> str:
    """Create the parent directory of ``path`` when missing and check that a file can be written there.

    In check mode nothing is created: the nearest existing directory must be writable."""
    directory = os.path.dirname(path)
    if check_mode:
        existing = directory
        while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
            existing = os.path.dirname(existing)
        if not os.access(existing, os.W_OK | os.X_OK):
            raise _fail(path, 'create a file next to', OSError(errno.EACCES, os.strerror(errno.EACCES)))
        return path
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(path))
        os.close(fd)
        os.unlink(temp)
    except OSError as exc:
        raise _fail(path, 'create a file next to', exc) from None
    return path


def write(path: str, data: bytes, mode: int, check_mode: bool = False, diff: bool = False) -> dict[str, t.Any]:
    """Write ``data`` to ``path`` atomically when its content or mode differs: ``{changed, path, size, sha256[, diff]}``."""
    path = os.path.abspath(path)
    try:
        with open(path, 'rb') as f:
            old: t.Optional[bytes] = f.read()
        old_mode: t.Optional[int] = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        old, old_mode = None, None
    except OSError as exc:
        raise _fail(path, 'read', exc) from None
    changed = old != data or old_mode != mode
    result: dict[str, t.Any] = {'changed': changed, 'path': path, 'size': len(data), 'sha256': hashlib.sha256(data).hexdigest()}
    if diff and old != data:
        result['diff'] = {'before_header': path, 'after_header': path, 'before': (old or b'').decode('utf-8', 'replace'),
                          'after': data.decode('utf-8', 'replace')}
    if not changed or check_mode:
        return result
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(path))
    except OSError as exc:
        raise _fail(path, 'create a file next to', exc) from None
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            os.fchmod(f.fileno(), mode)
        os.replace(temp, path)
    except OSError as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise _fail(path, 'write', exc) from None
    return result
