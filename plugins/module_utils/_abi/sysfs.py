# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The sysfs root: names, paths, reads, writes and errno translation (private; may change at any time).

Every sysfs path the collection uses is built here, from a closed set of relative paths and
names that were validated first (``check_bdf``, ``check_tsm``, ``check_name``). Paths are
resolved component by component below the root: a symlink whose target leaves the root, or a
``..`` above it, is refused (``PathEscape``). Attribute files are opened with ``O_NOFOLLOW``.

Writes behave like ``echo -n value > attr``: ``os.open(path, O_WRONLY)``, one ``os.write``
(sysfs runs the attribute's ``store()`` once and the errno arrives at once), ``close``. Nothing
is ever created, truncated or written through a buffered file object. Each ``OSError`` of a
write becomes one ``TdispError`` line naming the device, the attribute, the errno name and the
remedy (``explain_write``).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError

# PCI device names as the kernel prints them: domain (4 hex digits, more above ffff as the
# kernel's devsec emulator uses "10000:"), bus, device (0..1f), function (0..7); lower case.
_BDF_RE = re.compile(r'\A[0-9a-f]{4,8}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]\Z')
_BDF_LOOSE_RE = re.compile(r'\A([0-9a-fA-F]{1,8}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])\Z')
_TSM_RE = re.compile(r'\Atsm[0-9]{1,9}\Z')
# Driver and module names (the kernel's are C identifiers plus '-' and '.'; keep it strict).
_NAME_RE = re.compile(r'\A[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}\Z')

# Relative paths below the sysfs root (kernel-abi.md section 1; docs/internals.md).
CLASS_TSM = 'class/tsm'
PCI_DEVICES = 'bus/pci/devices'
PCI_DRIVERS = 'bus/pci/drivers'
MODULES = 'module'

# Device attributes the collection reads or writes, relative to the device directory.
ID_ATTRS = ('vendor', 'device', 'class', 'subsystem_vendor', 'subsystem_device')
GUEST_ATTRS = ('lock', 'unlock', 'accept')
HOST_ATTRS = ('connect', 'disconnect', 'dsm', 'bound')
WRITABLE_DEVICE_ATTRS = ('tsm/lock', 'tsm/unlock', 'tsm/accept', 'trust', 'trust_policy')

MAX_READ = 65536

_O_NOFOLLOW = getattr(os, 'O_NOFOLLOW', 0)
_O_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)


class PathEscape(TdispError):
    """A path that would leave the sysfs root (a symlink pointing out, '..' above the root)."""


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


def pci_dir_of(bdf: str) -> str:
    return 'pci' + bdf.rsplit(':', 1)[0]


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
        """``echo -n data > path``: no O_CREAT, no O_TRUNC, one write(2) whose errno is the kernel's."""
        fd = os.open(path, os.O_WRONLY | _O_NOFOLLOW | _O_CLOEXEC)
        try:
            written = os.write(fd, data)
        finally:
            os.close(fd)
        if written != len(data):
            raise OSError(errno.EIO, 'short write: %d of %d bytes' % (written, len(data)))


class Sysfs:
    """One sysfs root. ``io`` performs the primitive operations (``OsIO`` unless a test passes another)."""

    def __init__(self, root: str = '/sys', io: t.Optional[t.Any] = None) -> None:
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
        d = self.resolve_dir(MODULES + '/' + module + '/parameters')
        if d is None:
            return None
        try:
            if self._kind(d + '/trust') != 'file':
                return None
        except OSError:
            return None
        return d + '/trust'


def _show(data: bytes) -> str:
    shown = data[:32]
    text = repr(shown)
    if len(data) > 32:
        text += '... (%d bytes)' % len(data)
    return text


def errno_name(code: t.Optional[int]) -> str:
    if code is None:
        return 'unknown errno'
    return errno.errorcode.get(code, str(code))


# ---------------------------------------------------------------------------------------------
# errno -> one line (kernel-abi.md sections 1c and 9)
# ---------------------------------------------------------------------------------------------

_UNBIND = 'set unbind_driver: true or unbind it first'


def explain_write(exc: OSError, bdf: t.Optional[str], attribute: str, value: str,
                  state: t.Optional[t.Mapping[str, t.Any]] = None) -> TdispError:
    """Translate the errno of a write into the one-line error the operator reads.

    ``state`` is the device dict read before the write: it tells which of the kernel's checks
    (kernel-abi.md section 9, in order) most likely produced an ambiguous errno."""
    code = exc.errno
    state = state or {}
    driver = state.get('driver')
    cause = None
    remedy = None
    if code in (errno.EACCES, errno.EPERM):
        cause, remedy = 'permission denied writing %r' % value, 'run the task as root (become: true)'
    elif code == errno.EROFS:
        cause, remedy = 'sysfs is read-only here', 'run the module inside the confidential VM with a writable /sys'
    elif code == errno.ENOENT:
        cause, remedy = 'the attribute does not exist on this kernel', 're-read the device with coco.tdisp.tdisp_device_info'
    elif code == errno.EINTR:
        cause, remedy = 'interrupted while waiting for the device lock', 'retry the task'
    elif attribute == 'tsm/lock':
        if code == errno.EINVAL:
            cause, remedy = 'the kernel rejected the TSM name %r' % value, 'pass tsm: tsm<N> as listed by tdisp_device_info'
        elif code == errno.EBUSY and driver:
            cause, remedy = 'driver %s is bound' % driver, _UNBIND
        elif code == errno.EBUSY:
            cause = 'the device already has a TSM context (locked, or connected by a link TSM)'
            remedy = 'check lock_holder and connected with tdisp_device_info; unlock it first (allow_disruptive: true)'
        elif code == errno.ENXIO:
            cause, remedy = '%s is not a registered devsec TSM' % value, 'use the guest TSM (mode devsec) listed by tdisp_device_info'
    elif attribute == 'tsm/unlock':
        if code == errno.EINVAL:
            cause = 'the device is not locked by %s' % value
            remedy = 're-read the state with tdisp_device_info; something else changed it'
        elif code == errno.EBUSY:
            cause, remedy = 'driver %s is bound' % (driver or '(unknown)'), _UNBIND
    elif attribute == 'tsm/accept':
        if code == errno.EINVAL:
            cause, remedy = 'the device is not locked (accept needs CONFIG_LOCKED)', 'lock it (state: locked), verify its evidence, then accept'
        elif code == errno.EBUSY:
            cause, remedy = 'driver %s is bound' % (driver or '(unknown)'), _UNBIND
        elif code == errno.EAGAIN:
            cause = 'the evidence changed since it was validated'
            remedy = 're-read and re-verify the evidence, then accept with the new generation'
        else:
            cause = 'the TSM could not start the interface (RUN failed; the interface may be in ERROR)'
            remedy = 'unlock it (state: unlocked, allow_disruptive: true) and re-run lock -> verify -> accept'
    elif attribute == 'trust':
        if code == errno.EINVAL and value == '3' and state.get('accepted'):
            cause = 'the kernel refused level 3 although accept reads 1: the interface left RUN'
            remedy = 're-run lock -> verify -> accept (allow_disruptive: true to unlock first)'
        elif code == errno.EINVAL and value == '3':
            cause, remedy = 'level 3 (tcb) needs TDISP RUN', 'accept the device first (coco.tdisp.tdisp_device state: run)'
        elif code == errno.EINVAL and state.get('tdisp_state') == 'run':
            cause, remedy = 'a level below tcb is refused while the device is in RUN', 'set allow_disruptive: true to unlock it first'
        elif code == errno.EINVAL:
            cause, remedy = 'the kernel rejected trust level %r' % value, 'use a level 0..3'
    elif attribute == 'trust_policy':
        if code == errno.EBUSY:
            cause = 'driver %s is bound (trust_policy is writable only before a driver can probe)' % (driver or '(unknown)')
            remedy = _UNBIND
        elif code == errno.EINVAL:
            cause, remedy = 'the kernel rejected the policy word %r' % value, 'this kernel speaks another trust_policy dialect; report it'
    elif attribute.endswith('/bind'):
        if code == errno.ENODEV:
            cause = 'the driver did not take the device (trust forbids binding, driver_override names another driver, or probe failed)'
            remedy = 'check trust_level and driver_override with tdisp_device_info and the kernel log'
        elif code == errno.EBUSY:
            cause, remedy = 'the device is already bound to a driver', 're-read the state with tdisp_device_info'
    elif attribute.endswith('/unbind'):
        if code == errno.ENODEV:
            cause, remedy = 'the device is not bound to this driver', 're-read the state with tdisp_device_info'
    elif attribute.endswith('parameters/trust'):
        if code == errno.EINVAL:
            cause, remedy = 'the module rejected trust=%s' % value, 'check the module accepts none|adversary|auto|tcb'
    if cause is None:
        cause = 'writing %r failed' % value
        remedy = remedy or 'check the kernel log (dmesg) for the driver or TSM error'
    return TdispError(cause, device=bdf, attribute=attribute, errno=code, remedy=remedy)
