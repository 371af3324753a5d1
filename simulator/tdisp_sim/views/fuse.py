"""The FUSE adapter: ``<mount>/<host>/sys/...`` -> ``sysfs_tree.SysfsView``.

The top level lists the fleet's hosts; ``<host>/`` holds ``sys/``, that host's sysfs root.
Behaviour follows kernfs where a program can tell the difference:

* getattr: directories 0755, attribute files with their kernfs mode (0644, 0444, 0200) and
  ``st_size`` 4096 (binary attributes: their own size), symlinks 0777; owner root.
* open: EACCES when the attribute cannot do what the open asks (kernfs_fop_open()), also for
  root; creating a file is EACCES (kernfs directories have no create()).
* read: the whole value, sliced at the offset; write: one store() per write(2) call, returning
  the kernel's errno at once (mount with direct_io so writes are not cached). A handle whose
  attribute went away since open() reads and writes ENODEV, as kernfs does.
* truncate (``echo > attr`` opens with O_TRUNC) is accepted and ignored, as kernfs does for root;
  mkdir/unlink/rmdir/rename/symlink/link/mknod are EPERM; chmod/chown are EPERM too (real sysfs
  lets root change modes; the simulator refuses so that nothing comes to depend on it).

Caching: the kernel may keep dentries (``entry_timeout``) because every access that matters is
checked here again (getattr with ``attr_timeout`` 0, open, read, write, readlink), and negative
lookups are never cached (``negative_timeout`` 0), so a file that appears is seen at once and a
file that goes away fails at once.
"""

from __future__ import annotations

import errno
import gzip
import itertools
import os
import stat
from typing import Any, Optional

import mfusepy

from ..kernel import Fleet
from .sysfs_tree import SysfsView

ENTRY_TIMEOUT = 60.0


class SysfsFuse(mfusepy.Operations):
    use_ns = True

    def __init__(self, fleet: Fleet, on_ready: Optional[Any] = None) -> None:
        self.fleet = fleet
        self.view = SysfsView(fleet, cache=True)
        self.on_ready = on_ready
        self._fh = itertools.count(1)
        t = int(fleet.started * 1e9)
        self._times = {"st_atime": t, "st_mtime": t, "st_ctime": t}
        self.ops = 0

    # -- helpers --------------------------------------------------------------------------------
    def _proc(self, path: str) -> Optional[bytes]:
        """``<host>/proc/config.gz``: the host's kernel config (gzip, fixed mtime); b"" for the
        ``proc`` directory itself; None for any other path."""
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[1] != "proc" or len(parts) > 3:
            return None
        self._host(parts[0])
        if len(parts) == 2:
            return b""
        if parts[2] != "config.gz":
            raise mfusepy.FuseOSError(errno.ENOENT)
        return gzip.compress(self.fleet.hosts[parts[0]].kernel_config().encode(), mtime=0)

    @staticmethod
    def _split(path: str) -> tuple[Optional[str], Optional[str]]:
        """'/' -> (None, None); '/h' -> ('h', None); '/h/sys' -> ('h', ''); '/h/sys/x' -> ('h', 'x')."""
        parts = path.strip("/").split("/", 2)
        if parts == [""]:
            return None, None
        host = parts[0]
        if len(parts) == 1:
            return host, None
        if parts[1] != "sys":
            raise mfusepy.FuseOSError(errno.ENOENT)
        return host, parts[2] if len(parts) == 3 else ""

    def _dir(self) -> dict:
        return dict(self._times, st_mode=stat.S_IFDIR | 0o755, st_nlink=2, st_size=0, st_uid=0, st_gid=0)

    def _host(self, host: str) -> None:
        if host not in self.fleet.hosts:
            raise mfusepy.FuseOSError(errno.ENOENT)

    # -- lifecycle ------------------------------------------------------------------------------
    def init_with_config(self, conn_info: Any, config: Any) -> None:
        if config is not None:
            config.entry_timeout = ENTRY_TIMEOUT
            config.attr_timeout = 0.0
            config.negative_timeout = 0.0
            config.direct_io = 1
        if self.on_ready is not None:
            self.on_ready()

    # -- metadata -------------------------------------------------------------------------------
    def getattr(self, path: str, fh: Optional[int] = None) -> dict:
        self.ops += 1
        proc = self._proc(path)
        if proc is not None:
            if path.rstrip("/").endswith("/proc"):
                return self._dir()
            return dict(self._times, st_mode=stat.S_IFREG | 0o444, st_nlink=1, st_size=len(proc), st_uid=0, st_gid=0)
        host, rel = self._split(path)
        if host is None:
            return self._dir()
        self._host(host)
        if rel is None or rel == "":
            return self._dir()
        kind, mode, size = self.view.getattr(host, rel)
        if kind == "dir":
            return self._dir()
        if kind == "link":
            return dict(self._times, st_mode=stat.S_IFLNK | 0o777, st_nlink=1, st_size=size, st_uid=0, st_gid=0)
        return dict(self._times, st_mode=stat.S_IFREG | mode, st_nlink=1, st_size=size, st_uid=0, st_gid=0)

    def readdir(self, path: str, fh: int) -> list:
        self.ops += 1
        if self._proc(path) == b"":
            return [".", "..", "config.gz"]
        host, rel = self._split(path)
        if host is None:
            return [".", ".."] + [(h, {"st_mode": stat.S_IFDIR}, 0) for h in self.fleet.hosts]
        self._host(host)
        if rel is None:
            return [".", "..", ("sys", {"st_mode": stat.S_IFDIR}, 0), ("proc", {"st_mode": stat.S_IFDIR}, 0)]
        return [".", ".."] + self.view.listdir(host, rel)

    def readlink(self, path: str) -> str:
        self.ops += 1
        host, rel = self._split(path)
        if host is None or not rel:
            raise mfusepy.FuseOSError(errno.EINVAL)
        return self.view.readlink(host, rel)

    def statfs(self, path: str) -> dict:
        return {"f_bsize": 4096, "f_frsize": 4096, "f_namemax": 255}

    def access(self, path: str, amode: int) -> int:
        self.getattr(path)
        return 0

    # -- files ----------------------------------------------------------------------------------
    def open(self, path: str, flags: int) -> int:
        self.ops += 1
        if self._proc(path) is not None:
            if flags & os.O_ACCMODE != os.O_RDONLY:
                raise mfusepy.FuseOSError(errno.EACCES)
            return next(self._fh)
        host, rel = self._split(path)
        if host is None or rel is None or rel == "":
            if flags & os.O_ACCMODE != os.O_RDONLY:
                raise mfusepy.FuseOSError(errno.EISDIR)
            return next(self._fh)
        acc = flags & os.O_ACCMODE
        self.view.check_open(host, rel, want_read=acc in (os.O_RDONLY, os.O_RDWR),
                             want_write=acc in (os.O_WRONLY, os.O_RDWR))
        return next(self._fh)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        self.ops += 1
        proc = self._proc(path)
        if proc is not None:
            return proc[offset:offset + size]
        host, rel = self._split(path)
        if host is None or not rel:
            raise mfusepy.FuseOSError(errno.EISDIR)
        try:
            data = self.view.read(host, rel)
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise mfusepy.FuseOSError(errno.ENODEV) from None  # kernfs: the node went away
            raise
        return data[offset:offset + size]

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        self.ops += 1
        host, rel = self._split(path)
        if host is None or not rel:
            raise mfusepy.FuseOSError(errno.EISDIR)
        try:
            return self.view.write(host, rel, data, offset)
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise mfusepy.FuseOSError(errno.ENODEV) from None
            raise

    def truncate(self, path: str, length: int, fh: Optional[int] = None) -> int:
        attrs = self.getattr(path)
        if stat.S_ISDIR(attrs["st_mode"]):
            raise mfusepy.FuseOSError(errno.EISDIR)
        return 0

    # flush, release and fsync are left to libfuse (no Python call per close(2)).

    def utimens(self, path: str, times: Optional[tuple] = None) -> int:
        self.getattr(path)
        return 0

    # -- what sysfs does not allow ----------------------------------------------------------------
    def create(self, path: str, mode: int, fi: Any = None) -> int:
        raise mfusepy.FuseOSError(errno.EACCES)

    def mknod(self, path: str, mode: int, dev: int) -> int:
        raise mfusepy.FuseOSError(errno.EPERM)

    def mkdir(self, path: str, mode: int) -> int:
        raise mfusepy.FuseOSError(errno.EPERM)

    def rmdir(self, path: str) -> int:
        raise mfusepy.FuseOSError(errno.EPERM)

    def unlink(self, path: str) -> int:
        raise mfusepy.FuseOSError(errno.EPERM)

    def rename(self, old: str, new: str) -> int:
        raise mfusepy.FuseOSError(errno.EPERM)

    def symlink(self, target: str, source: str) -> int:
        raise mfusepy.FuseOSError(errno.EPERM)

    def link(self, target: str, source: str) -> int:
        raise mfusepy.FuseOSError(errno.EPERM)

    def chmod(self, path: str, mode: int) -> int:
        raise mfusepy.FuseOSError(errno.EPERM)

    def chown(self, path: str, uid: int, gid: int) -> int:
        raise mfusepy.FuseOSError(errno.EPERM)


def serve(fleet: Fleet, mountpoint: str, on_ready: Optional[Any] = None, threads: bool = True) -> None:
    """Mount and serve until unmounted (``fusermount3 -u``). Blocks. ``threads``: libfuse's
    multi-threaded loop (the model is serialised by ``fleet.lock``; requests that libfuse answers
    in C, such as RELEASE and FLUSH, then overlap with Python work); libfuse 3.14 prints a
    harmless "Ignoring invalid max threads value" line in that mode."""
    ops = SysfsFuse(fleet, on_ready=on_ready)
    mfusepy.FUSE(ops, mountpoint, foreground=True, direct_io=True, nothreads=not threads,
                 fsname="tdisp-sim", subtype="tdisp-sim")
