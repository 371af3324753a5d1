"""``EvidenceServer``: one evidence endpoint per host of a fleet, served by one selector thread
(sockets, connections, the loop); ``requests.RequestHandler`` answers the requests."""

from __future__ import annotations

import errno
import os
import selectors
import socket
import stat
import threading
import time
from collections import deque
from typing import Any, Dict, Iterator, Optional

from ...kernel import Fleet
from .requests import Provider, RequestHandler, default_provider
from .wire import FAMILIES, parse_requests


class _Conn:
    __slots__ = ("sock", "host", "out", "dump", "want_write")

    def __init__(self, sock: socket.socket, host: str) -> None:
        self.sock = sock
        self.host = host
        self.out: deque = deque()
        self.dump: Optional[Iterator[bytes]] = None
        self.want_write = False


class EvidenceServer(RequestHandler):
    """One evidence endpoint per host of ``fleet``, served by one selector thread.

    ``provider(host, device, types, nonce) -> {type name: bytes}`` supplies the objects (default:
    ``default_provider``). ``start()`` creates ``<socket_dir>/<host>.sock`` for every host (and for
    hosts added later); ``stop()`` closes and removes them.
    """

    POLL_INTERVAL = 0.1
    FAIRNESS = 64

    def __init__(self, fleet: Fleet, socket_dir: str, provider: Optional[Provider] = None, *, family: Optional[str] = None,
                 validate: Optional[bool] = None, chunk_size: Optional[int] = None, nonce_refresh: Optional[bool] = None) -> None:
        spec = (getattr(fleet, "evidence_spec", None) or {}).get("netlink") or {}
        self.fleet = fleet
        self.socket_dir = os.path.abspath(socket_dir)
        self.provider: Provider = provider or default_provider
        self.family_name = family or spec.get("family", "device-evidence")
        if self.family_name not in FAMILIES:
            raise ValueError("evidence family must be one of %s" % ", ".join(FAMILIES))
        self.family = FAMILIES[self.family_name]
        self.validate_enabled = bool(spec.get("validate", True) if validate is None else validate) and self.family["validate"] is not None
        self.chunk_size = int(chunk_size or spec.get("chunk_size", 4096))
        if self.chunk_size < 256:
            raise ValueError("chunk_size must be at least 256 bytes")
        # v2's pci-tsm answered a nonce with EOPNOTSUPP (kernel-abi.md §7.5): the default follows the family
        default_refresh = self.family_name == "device-evidence"
        self.nonce_refresh = bool(spec.get("nonce_refresh", default_refresh) if nonce_refresh is None else nonce_refresh)
        self._sel: Optional[selectors.BaseSelector] = None
        self._listeners: Dict[str, socket.socket] = {}
        self._conns: Dict[int, _Conn] = {}
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        self._wake_r: Optional[socket.socket] = None
        self._wake_w: Optional[socket.socket] = None
        self._passes = 0
        self._cond = threading.Condition()
        self.error: Optional[BaseException] = None

    # -- public ---------------------------------------------------------------------------------------------------
    def path(self, host: str) -> str:
        return os.path.join(self.socket_dir, host + ".sock")

    def endpoint(self, host: str) -> str:
        """The collection's evidence endpoint option for ``host``."""
        return "unix:" + self.path(host)

    def start(self) -> "EvidenceServer":
        if self._thread is not None:
            raise RuntimeError("evidence server already started")
        os.makedirs(self.socket_dir, exist_ok=True)
        self._raise_nofile(len(self.fleet.hosts) + 64)
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            self._sync_hosts()
        except BaseException:
            self._close_all()
            raise
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tdisp-sim-evidence", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping = True
        self._wake()
        self._thread.join()
        self._thread = None
        self._close_all()

    def sync(self, timeout: float = 10.0) -> None:
        """Return once the server loop has applied the current fault tables and host list."""
        with self._cond:
            # the pass running now may have looked before the caller's change: wait for the next one
            for target in (self._passes + 1, self._passes + 2):
                self._wake()
                if not self._cond.wait_for(lambda: self._passes >= target or self._thread is None, timeout):  # pylint: disable=cell-var-from-loop
                    raise TimeoutError("evidence server loop did not answer within %.1f s" % timeout)

    def __enter__(self) -> "EvidenceServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- sockets ------------------------------------------------------------------------------------------------------
    @staticmethod
    def _raise_nofile(need: int) -> None:
        try:
            import resource
        except ImportError:  # pragma: no cover - not Linux
            return
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < need:
            # up to the hard limit: each host needs a listening socket, each client a connection
            new = max(need, 65536) if hard == resource.RLIM_INFINITY else hard
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            if new < need:
                raise OSError(errno.EMFILE, "RLIMIT_NOFILE hard limit %d is below the %d descriptors %d hosts need" % (hard, need, need - 64))

    def _wake(self) -> None:
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"x")
            except OSError:
                pass

    def _listen(self, name: str) -> None:
        path = self.path(name)
        if len(path.encode()) >= 108:
            raise OSError(errno.ENAMETOOLONG, "socket path %s exceeds the 107-byte AF_UNIX limit: use a shorter socket_dir" % path)
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.bind(path)
            sock.listen(128)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._listeners[name] = sock
        assert self._sel is not None
        self._sel.register(sock, selectors.EVENT_READ, ("listen", name))

    def _unlisten(self, name: str) -> None:
        sock = self._listeners.pop(name, None)
        if sock is not None:
            assert self._sel is not None
            self._sel.unregister(sock)
            sock.close()
            try:
                os.unlink(self.path(name))
            except FileNotFoundError:
                pass
        for conn in [c for c in self._conns.values() if c.host == name]:
            self._drop(conn)

    def _sync_hosts(self) -> None:
        """Listen for every host that is not ``absent``; stop listening for the others."""
        with self.fleet.lock:
            hosts = list(self.fleet.hosts.items())
        wanted = {name for name, host in hosts if not host.evidence_faults.flag("absent")}
        for name in list(self._listeners):
            if name not in wanted:
                self._unlisten(name)
        for name in sorted(wanted - set(self._listeners)):
            self._listen(name)

    def _close_all(self) -> None:
        for conn in list(self._conns.values()):
            self._drop(conn)
        for name in list(self._listeners):
            self._unlisten(name)
        if self._sel is not None:
            self._sel.close()
            self._sel = None
        for s in (self._wake_r, self._wake_w):
            if s is not None:
                s.close()
        self._wake_r = self._wake_w = None

    def _drop(self, conn: _Conn) -> None:
        self._conns.pop(conn.sock.fileno(), None)
        if self._sel is not None:
            try:
                self._sel.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        conn.sock.close()
        conn.dump = None

    # -- loop ---------------------------------------------------------------------------------------------------------
    def _run(self) -> None:
        assert self._sel is not None
        last_sync = time.monotonic()
        try:
            while not self._stopping:
                woken = False
                for key, mask in self._sel.select(self.POLL_INTERVAL):
                    data = key.data
                    if data == "wake":
                        woken = True
                        try:
                            while self._wake_r is not None and self._wake_r.recv(4096):
                                pass
                        except BlockingIOError:
                            pass
                    elif isinstance(data, tuple):
                        self._accept(key.fileobj, data[1])  # type: ignore[arg-type]
                    else:
                        conn: _Conn = data
                        if mask & selectors.EVENT_READ and conn.sock.fileno() in self._conns:
                            self._on_read(conn)
                        if conn.sock.fileno() in self._conns:
                            self._flush(conn)
                # fault tables and the host list: on request, else at most every POLL_INTERVAL
                if woken or time.monotonic() - last_sync >= self.POLL_INTERVAL:
                    last_sync = time.monotonic()
                    try:
                        self._sync_hosts()
                    except OSError as exc:
                        self.error = exc  # e.g. a host added with a name too long for a socket path
                with self._cond:
                    self._passes += 1
                    self._cond.notify_all()
        except BaseException as exc:  # pragma: no cover - surfaced through .error and sync()
            self.error = exc
            raise
        finally:
            with self._cond:
                self._passes += 1
                self._cond.notify_all()

    def _accept(self, listener: socket.socket, host: str) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    return
                raise
            sock.setblocking(False)
            conn = _Conn(sock, host)
            self._conns[sock.fileno()] = conn
            assert self._sel is not None
            self._sel.register(sock, selectors.EVENT_READ, conn)

    def _on_read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        if not data:
            self._drop(conn)
            return
        host = self.fleet.hosts.get(conn.host)
        if host is None:
            self._drop(conn)
            return
        for req in parse_requests(data):
            self._handle(conn, host, req)

    def _flush(self, conn: _Conn) -> None:
        # at most FAIRNESS datagrams per wakeup, so one large dump does not starve the other hosts
        for _ in range(self.FAIRNESS):
            if not conn.out:
                if conn.dump is None:
                    break
                chunk = next(conn.dump, None)
                if chunk is None:
                    conn.dump = None
                    break
                conn.out.append(chunk)
            try:
                conn.sock.send(conn.out[0])
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._drop(conn)
                return
            conn.out.popleft()
        want = bool(conn.out) or conn.dump is not None
        if want != conn.want_write and self._sel is not None:
            conn.want_write = want
            self._sel.modify(conn.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if want else 0), conn)
