"""The sysfs view of each simulated host: path resolution and the file operations over
``sysfs_nodes.SysfsLayout`` (the tree; its docstring shows the layout).

Attribute files behave like kernfs: mode 0644 (RW), 0444 (RO) or 0200 (WO); opening a
write-only file for reading, or a read-only one for writing, is EACCES; a read returns the
whole value; each write(2) is one store() call of at most PAGE_SIZE bytes (a zero-length write
never reaches store()); st_size is 4096. Binary attributes (the sample's certs/transcript) are
read and written at an offset and report their own size.

No FUSE here: unit tests drive ``SysfsView`` directly, and ``fuse.SysfsFuse`` adapts it.
"""

from __future__ import annotations

import errno
import posixpath
from typing import Optional

from ..kernel import Fleet, Host, err
from .sysfs_nodes import ATTR_SIZE, Dir, File, Link, Node, SysfsLayout, bdf_of_path


class SysfsView(SysfsLayout):
    """Path-level access to every host of a fleet. All methods take the fleet lock.

    ``cache=True`` remembers resolved paths until the next event of that host (or a fleet-wide
    event) is recorded. Every change the kernel model makes is recorded, so this is exact as long
    as nobody changes the model's objects behind its back (tests that poke at ``Device`` fields
    directly should use the default, uncached view). The FUSE adapter uses the cache."""

    CACHE_MAX = 50000

    def __init__(self, fleet: Fleet, cache: bool = False) -> None:
        self.fleet = fleet
        self.cache: Optional[dict] = {} if cache else None

    # -- public operations ------------------------------------------------------------------------
    def lookup(self, host: str, path: str, follow: bool = True) -> tuple[str, Node]:
        """Resolve ``path`` (relative to the host's sysfs root). Intermediate symlinks are always
        followed; the last component is followed only when ``follow``. Returns the canonical
        path and the node. Raises ENOENT."""
        if self.cache is None:
            return self._lookup(host, path, follow)
        with self.fleet.lock:
            fl = self.fleet
            version = (fl.global_version, fl.host_versions.get(host, 0))
            key = (host, path, follow)
            hit = self.cache.get(key)
            if hit is not None and hit[0] == version:
                if hit[1] is None:
                    raise err(hit[2], path)
                return hit[1], hit[2]
            if len(self.cache) >= self.CACHE_MAX:
                self.cache.clear()
            try:
                canon, node = self._lookup(host, path, follow)
            except OSError as e:
                self.cache[key] = (version, None, e.errno)
                raise
            self.cache[key] = (version, canon, node)
            return canon, node

    def _lookup(self, host: str, path: str, follow: bool) -> tuple[str, Node]:
        with self.fleet.lock:
            h = self.fleet.hosts.get(host)
            if h is None:
                raise err(errno.ENOENT, "no host %s" % host)
            parts = [p for p in path.split("/") if p and p != "."]
            resolved: list[str] = []
            hops = 0
            i = 0
            while i < len(parts):
                p = parts[i]
                if p == "..":
                    if resolved:
                        resolved.pop()
                    i += 1
                    continue
                cur = resolved + [p]
                node = self._node(h, cur)
                last = i == len(parts) - 1
                if isinstance(node, Link) and (follow or not last):
                    hops += 1
                    if hops > 40:
                        raise err(errno.ELOOP, path)
                    target = posixpath.normpath(posixpath.join("/".join(resolved), node.target))
                    parts = [q for q in target.split("/") if q and q != "."] + parts[i + 1:]
                    resolved = []
                    i = 0
                    continue
                if not last and not isinstance(node, Dir):
                    raise err(errno.ENOTDIR, path)
                resolved = cur
                i += 1
            node = self._node(h, resolved) if resolved else self._root(h)
            return "/".join(resolved), node

    def read(self, host: str, path: str) -> bytes:
        with self.fleet.lock:
            canon, node = self.lookup(host, path)
            if isinstance(node, Dir):
                raise err(errno.EISDIR, path)
            assert isinstance(node, File)
            if not node.readable:
                raise err(errno.EACCES, "%s is write-only" % path)
            h = self.fleet.hosts[host]
            if canon in h.garbage:
                return h.garbage[canon]
            if node.read_bin is not None:
                return node.read_bin()
            return node.show().encode("latin-1")

    def write(self, host: str, path: str, data: bytes, offset: int = 0) -> int:
        """One write(2) call: one store() of at most PAGE_SIZE bytes (sysfs_kf_write()); a
        zero-length write returns 0 without calling store(). Binary attributes get the offset."""
        with self.fleet.lock:
            canon, node = self.lookup(host, path)
            if isinstance(node, Dir):
                raise err(errno.EISDIR, path)
            assert isinstance(node, File)
            if not node.writable:
                raise err(errno.EACCES, "%s is read-only" % path)
            h = self.fleet.hosts[host]
            bdf = bdf_of_path(canon)
            if node.write_bin is not None:
                return self._write_bin(h, canon, bdf, node, data, offset)
            if not data:
                return 0
            data = data[:ATTR_SIZE]
            buf = data.decode("latin-1")
            code = h.take_write_fault(canon)
            if code is not None:
                h.log(bdf, "write", path=canon, value=buf, result=errno.errorcode.get(code, str(code)), injected=True)
                raise err(code, "injected fault on %s" % canon)
            try:
                node.store(buf)
            except OSError as e:
                h.log(bdf, "write", path=canon, value=buf, result=errno.errorcode.get(e.errno or 0, str(e.errno)))
                self.fleet.settle()
                raise
            h.log(bdf, "write", path=canon, value=buf, result="ok")
            self.fleet.settle()
            return len(data)

    def _write_bin(self, h: Host, canon: str, bdf: Optional[str], node: File, data: bytes, offset: int) -> int:
        code = h.take_write_fault(canon)
        if code is not None:
            h.log(bdf, "write", path=canon, length=len(data), offset=offset,
                  result=errno.errorcode.get(code, str(code)), injected=True)
            raise err(code, "injected fault on %s" % canon)
        try:
            n = node.write_bin(data, offset)
        except OSError as e:
            h.log(bdf, "write", path=canon, length=len(data), offset=offset,
                  result=errno.errorcode.get(e.errno or 0, str(e.errno)))
            raise
        h.log(bdf, "write", path=canon, length=len(data), offset=offset, result="ok")
        return n

    def check_open(self, host: str, path: str, want_read: bool, want_write: bool) -> None:
        """kernfs_fop_open(): EACCES when the attribute cannot do what the open asks."""
        with self.fleet.lock:
            _, node = self.lookup(host, path)
            if isinstance(node, Dir):
                if want_write:
                    raise err(errno.EISDIR, path)
                return
            assert isinstance(node, File)
            if want_read and not node.readable:
                raise err(errno.EACCES, "%s is write-only" % path)
            if want_write and not node.writable:
                raise err(errno.EACCES, "%s is read-only" % path)

    def listdir(self, host: str, path: str) -> list:
        with self.fleet.lock:
            _, node = self.lookup(host, path)
            if not isinstance(node, Dir):
                raise err(errno.ENOTDIR, path)
            return list(node.entries())

    def readlink(self, host: str, path: str) -> str:
        with self.fleet.lock:
            _, node = self.lookup(host, path, follow=False)
            if not isinstance(node, Link):
                raise err(errno.EINVAL, path)
            return node.target

    def stat(self, host: str, path: str) -> tuple[str, int]:
        """("dir"|"file"|"link", permission bits) of ``path`` without following the last link."""
        kind, mode, _ = self.getattr(host, path)
        return kind, mode

    def getattr(self, host: str, path: str) -> tuple[str, int, int]:
        """("dir"|"file"|"link", permission bits, size) without following the last link."""
        with self.fleet.lock:
            _, node = self.lookup(host, path, follow=False)
            if isinstance(node, Dir):
                return "dir", 0o755, 0
            if isinstance(node, Link):
                return "link", 0o777, len(node.target)
            return "file", node.mode, node.size
