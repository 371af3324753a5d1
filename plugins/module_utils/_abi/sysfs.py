# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The sysfs root: confined path resolution, reads and writes (private; may change at any time).

Every sysfs path the collection uses is built from the relative paths and names of ``names``,
validated first (``check_bdf``, ``check_tsm``, ``check_name``). Paths are
resolved component by component below the root: a symlink whose target leaves the root, or a
``..`` above it, is refused (``PathEscape``). Attribute files are opened with ``O_NOFOLLOW``.

Writes behave like ``echo -n value > attr``: ``os.open(path, O_WRONLY)``, one ``os.write``
(sysfs runs the attribute's ``store()`` once and the errno arrives at once), ``close``. Nothing
is ever created, truncated or written through a buffered file object. A write raises the
kernel's ``OSError``; ``errnos.explain`` turns it into the one line the operator reads.
"""

from __future__ import annotations

import errno
import os
import stat
import time
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._abi.names import (
    ACCEPT, MODULE_TRUST, MODULES, PCI_DEVICES, PCI_DRIVERS, check_bdf, check_name, is_name,
)

MAX_READ = 65536

_O_NOFOLLOW = getattr(os, 'O_NOFOLLOW', 0)
_O_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)


class PathEscape(TdispError):
    """A path that would leave the sysfs root (a symlink pointing out, '..' above the root)."""


RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4)   # backoff before each retry of an interrupted write


def _libc_write() -> t.Optional[t.Callable[[int, bytes], t.Tuple[int, int]]]:
    """``write(2)`` without Python's own EINTR retry (PEP 475 retries for ever); None without ctypes."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        raw = libc.write
        raw.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
        raw.restype = ctypes.c_ssize_t
    except (ImportError, OSError, AttributeError):  # pragma: no cover - every Linux Python has ctypes
        return None

    def call(fd: int, data: bytes) -> t.Tuple[int, int]:
        n = raw(fd, data, len(data))
        return (n, 0) if n >= 0 else (-1, ctypes.get_errno())
    return call


RAW_WRITE = _libc_write()


def write_bounded(fd: int, data: bytes, retry_eagain: bool = True,
                  raw: t.Optional[t.Callable[[int, bytes], t.Tuple[int, int]]] = None, sleep: t.Callable[[float], None] = time.sleep) -> int:
    """One write(2) of ``data``; EINTR (and EAGAIN with ``retry_eagain``) retried ``len(RETRY_DELAYS)`` times with
    backoff, then the OSError. Returns the bytes written."""
    raw = raw or RAW_WRITE
    if raw is None:  # pragma: no cover
        return os.write(fd, data)
    retry = (errno.EINTR, errno.EAGAIN) if retry_eagain else (errno.EINTR,)
    for delay in RETRY_DELAYS + (None,):
        n, code = raw(fd, data)
        if n >= 0:
            return n
        if code not in retry or delay is None:
            break
        sleep(delay)
    if code in retry:
        raise OSError(code, '%s on each of %d attempts' % (os.strerror(code), len(RETRY_DELAYS) + 1))
    raise OSError(code, os.strerror(code))


class OsIO:
    """Primitive operations on the real file system (the only place that calls ``os``)."""

    def canonical_root(self, root: str) -> str:
        return os.path.realpath(root)

    def kind(self, path: str) -> str:
        """'dir', 'file', 'link' or 'other' of ``path`` without following a final symlink."""
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            return 'link'
        if stat.S_ISDIR(mode):
            return 'dir'
        if stat.S_ISREG(mode):
            return 'file'
        return 'other'

    def readlink(self, path: str) -> str:
        return os.readlink(path)

    def listdir(self, path: str) -> t.List[str]:
        return os.listdir(path)

    def read(self, path: str) -> bytes:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
        try:
            chunks = []
            total = 0
            while total < MAX_READ:
                chunk = os.read(fd, 8192)
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                if len(chunk) < 8192:
                    break
            return b''.join(chunks)
        finally:
            os.close(fd)

    def write(self, path: str, data: bytes) -> None:
        """``echo -n data > path``: no O_CREAT, no O_TRUNC, one write(2) whose errno is the kernel's.

        EINTR, and EAGAIN except from ``tsm/accept`` (where it means the evidence changed), are
        retried a bounded number of times (``write_bounded``)."""
        fd = os.open(path, os.O_WRONLY | _O_NOFOLLOW | _O_CLOEXEC)
        try:
            written = write_bounded(fd, data, retry_eagain=not path.endswith('/' + ACCEPT))
        finally:
            os.close(fd)
        if written != len(data):
            raise OSError(errno.EIO, 'short write: %d of %d bytes' % (written, len(data)))


class Sysfs:
    """One sysfs root. ``io`` performs the primitive operations (``OsIO`` unless a test passes another)."""

    def __init__(self, root: str, io: t.Optional[t.Any] = None) -> None:
        if not isinstance(root, str) or not root.startswith('/'):
            raise TdispError('sysfs_root %r is not an absolute path' % (root,), attribute='sysfs_root',
                             remedy='use /sys, or the tdisp_sysfs_root of a simulated host')
        self.io = io if io is not None else OsIO()
        self.root = self.io.canonical_root(root).rstrip('/') or ''
        try:
            kind = self.io.kind(self.root or '/')
        except OSError as exc:
            raise TdispError('sysfs_root %s cannot be read' % root, attribute='sysfs_root', errno=exc.errno,
                             remedy='check the path (the simulator mounts <mount>/<host>/sys)')
        if kind != 'dir':
            raise TdispError('sysfs_root %s is not a directory' % root, attribute='sysfs_root',
                             remedy='check the path (the simulator mounts <mount>/<host>/sys)')
        self._kinds: t.Dict[str, str] = {}
        self._resolved: t.Dict[str, str] = {}
        self.writes = 0

    # -- paths ----------------------------------------------------------------------------------
    def invalidate(self) -> None:
        """Forget cached path resolutions (call between phases: before, writes, after)."""
        self._kinds.clear()
        self._resolved.clear()

    def abs(self, rel: str) -> str:
        return self.root + '/' + rel if rel else self.root or '/'

    def kind(self, rel: str) -> str:
        """'dir', 'file', 'link' or 'other' of ``rel`` (the final component not followed). Raises OSError."""
        return self._kind(rel)

    def _kind(self, rel: str) -> str:
        kind = self._kinds.get(rel)
        if kind is None:
            kind = self.io.kind(self.abs(rel))
            self._kinds[rel] = kind
        return kind

    def resolve(self, rel: str) -> str:
        """The canonical path (relative to the root) of ``rel``, every symlink resolved below the root.

        Raises ``OSError`` (ENOENT, ENOTDIR, ELOOP) for a missing path and ``PathEscape`` for a
        path that leaves the root."""
        done = self._resolved.get(rel)
        if done is not None:
            return done
        parts = [p for p in rel.split('/') if p and p != '.']
        stack: t.List[str] = []
        hops = 0
        while parts:
            comp = parts.pop(0)
            if comp == '..':
                if not stack:
                    raise PathEscape('%s leaves the sysfs root %s' % (rel, self.root or '/'), attribute=rel,
                                     remedy='refusing to follow it; check sysfs_root and the tree for planted symlinks')
                stack.pop()
                continue
            cur = '/'.join(stack + [comp])
            kind = self._kind(cur)
            if kind == 'link':
                hops += 1
                if hops > 40:
                    raise OSError(errno.ELOOP, 'too many levels of symbolic links', rel)
                target = self.io.readlink(self.abs(cur))
                if target.startswith('/'):
                    if not (target == self.root or target.startswith(self.root + '/')):
                        raise PathEscape('%s is a symlink to %s, outside the sysfs root %s' % (cur, target, self.root or '/'),
                                         attribute=rel, remedy='refusing to follow it; check sysfs_root and the tree for planted symlinks')
                    parts = [p for p in target[len(self.root):].split('/') if p and p != '.'] + parts
                    stack = []
                else:
                    parts = [p for p in target.split('/') if p and p != '.'] + parts
                continue
            if parts and kind != 'dir':
                raise OSError(errno.ENOTDIR, 'not a directory', cur)
            stack.append(comp)
        out = '/'.join(stack)
        self._resolved[rel] = out
        return out

    def resolve_dir(self, rel: str) -> t.Optional[str]:
        """Canonical directory of ``rel`` or None when it does not exist; PathEscape propagates."""
        try:
            canon = self.resolve(rel)
            if canon and self._kind(canon) != 'dir':
                return None
        except OSError:
            return None
        return canon

    def link_name(self, rel: str) -> t.Tuple[t.Optional[str], t.Optional[str]]:
        """(basename of the symlink's target, None) for a symlink whose target stays below the root;
        (None, None) when there is no such link; (None, reason) when it is refused."""
        try:
            target = self.io.readlink(self.abs(rel))
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EINVAL, errno.ENOTDIR):
                return None, None
            return None, 'unreadable (%s)' % errno.errorcode.get(exc.errno or 0, exc.errno)
        if target.startswith('/'):
            full = os.path.normpath(target)
        else:
            full = os.path.normpath(os.path.join(os.path.dirname(self.abs(rel)), target))
        if self.root and not full.startswith(self.root + '/'):
            return None, 'symlink to %s leaves the sysfs root' % target
        name = full.rsplit('/', 1)[-1]
        if not is_name(name):
            return None, 'symlink target name %r is not a valid name' % name
        return name, None

    def listdir(self, rel: str) -> t.List[str]:
        return self.io.listdir(self.abs(rel))

    def read(self, rel: str) -> t.Tuple[t.Optional[str], t.Optional[str]]:
        """(text without one trailing newline, None) or (None, reason). Never raises for content."""
        try:
            data = self.io.read(self.abs(rel))
        except OSError as exc:
            code = exc.errno or 0
            if code == errno.ENOENT:
                return None, 'missing'
            if code == errno.ELOOP:
                return None, 'is a symlink (refused)'
            return None, 'unreadable (%s)' % errno.errorcode.get(code, code)
        try:
            text = data.decode('ascii')
        except UnicodeDecodeError:
            return None, 'garbage bytes %s' % _show(data)
        if text.endswith('\n'):
            text = text[:-1]
        if any(c < ' ' or c > '~' for c in text):
            return None, 'garbage %s' % _show(data)
        return text, None

    def write(self, rel: str, value: str) -> None:
        """One ``echo -n value > rel``; raises OSError with the kernel's errno."""
        self.writes += 1
        self.io.write(self.abs(rel), value.encode('ascii'))

    # -- the path table ---------------------------------------------------------------------------
    def device_dir(self, bdf: str) -> t.Optional[str]:
        """Canonical directory of a PCI device, None when it does not exist. Raises PathEscape."""
        check_bdf(bdf)
        return self.resolve_dir(PCI_DEVICES + '/' + bdf)

    def driver_dir(self, driver: str) -> t.Optional[str]:
        check_name(driver)
        return self.resolve_dir(PCI_DRIVERS + '/' + driver)

    def module_trust_path(self, module: str) -> t.Optional[str]:
        """The module's ``parameters/trust`` (design A), None when absent."""
        check_name(module, 'module')
        param_dir, param = MODULE_TRUST.rsplit('/', 1)
        d = self.resolve_dir(MODULES + '/' + module + '/' + param_dir)
        if d is None:
            return None
        try:
            if self._kind(d + '/' + param) != 'file':
                return None
        except OSError:
            return None
        return d + '/' + param


def _show(data: bytes) -> str:
    shown = data[:32]
    text = repr(shown)
    if len(data) > 32:
        text += '... (%d bytes)' % len(data)
    return text
