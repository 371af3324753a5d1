"""The simulator's evidence endpoint: the ``device-evidence`` generic netlink family, served per host.

Each simulated host gets one ``AF_UNIX`` ``SOCK_SEQPACKET`` listening socket,
``<socket_dir>/<host>.sock``. A connection carries exactly the datagrams a
``socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC)`` socket would carry: the client writes netlink
requests, the server answers as the kernel would, one reply skb per datagram. The collection's
client selects it with the endpoint ``unix:<socket_dir>/<host>.sock``.

This file shares no code with the collection's client (``plugins/module_utils/_evidence/netlink.py``):
both follow ``shared/docs/kernel-abi.md`` sections 1d and 8 and the kernel sources cited there, so
tests of one against the other check two implementations of the wire format.

Behaviour, with the kernel code it follows (devsec-phase2 ``device-evidence`` netlink, kernel-abi.md §8):

* nlctrl ``CTRL_CMD_GETFAMILY`` answers for the configured family (``device-evidence``, or the older
  ``pci-tsm``) with its id and op list; any other name is ``ENOENT``.
* Before any attribute is looked at, an admin-perm op without CAP_NET_ADMIN is ``EPERM`` (genetlink
  checks ``GENL_ADMIN_PERM`` first; the ``eperm`` fault plays the missing capability).
* Attributes are validated strictly: unknown or out-of-op attributes, u32 attributes not 4 bytes
  long, a nonce over the family's maximum: ``EINVAL``.
* ``read`` (dump). Errors found before the dump starts are ``NLMSG_ERROR``: missing subsys or
  dev-name, names of 32 bytes or more, missing or zero type-mask, unknown type bits or flag bits:
  ``EINVAL``; subsys other than ``pci``: ``EOPNOTSUPP``; no such device: ``ENODEV``. Errors during the
  dump end it with ``NLMSG_DONE`` carrying the negative errno: a nonce when nonce refresh is off:
  ``EOPNOTSUPP``; no TSM context (not locked, not connected): ``ENXIO``; the generation changed
  since the dump started: ``EAGAIN``. Each object is a first message with ``type``, ``generation``,
  ``length``, then ``val`` chunks, one per message, sized to fill a ``chunk_size`` datagram; the last
  message and ``NLMSG_DONE`` share a datagram when there is room, as the kernel's dump skb does.
* ``validate`` (do; device-evidence only, when enabled): ``EPERM``, ``EINVAL`` (missing subsys,
  dev-name or generation), ``EOPNOTSUPP`` (subsys), ``ENODEV``, ``ENXIO`` (no TSM context), then
  ``EAGAIN`` when the generation is not the current one (an assumption: the kernel material does not
  say which errno); on success ``device.validated_generation`` is recorded and the reply is a
  ``validate`` message carrying the generation, then the acknowledgement when ``NLM_F_ACK`` is set.

Acknowledgements and errors are sent as a kernel sends them to a socket with ``NETLINK_CAP_ACK``
and ``NETLINK_EXT_ACK`` set (capped, with an ``NLMSGERR_ATTR_MSG`` text): an AF_UNIX peer cannot set
those options, so the server always behaves as if it had.

Faults (``host.evidence_faults``, a dict; use ``set_fault``/``clear_fault`` to change it and log it):

* ``generation_bump``: ``{bdf or "*": count}``: the next ``count`` dumps of the device (-1: every dump)
  bump the device's generation (``Host.fault_generation``) after their first message, so the dump
  ends with ``EAGAIN``. Dumps of a single message are not affected and do not use up the count.
* ``truncate``: ``{bdf or "*": type name or "*"}``: that object (``*``: every object) announces its
  full length but only the first half of its bytes (none of a 1-byte object) are sent.
* ``absent``: ``True``: the host's socket is closed and removed, open connections are dropped.
* ``eperm``: ``True``: ``read`` and ``validate`` fail with ``EPERM`` (no CAP_NET_ADMIN).

Scenario options, from ``fleet.evidence_spec["netlink"]`` (constructor arguments override them):
``family`` (``device-evidence`` | ``pci-tsm``), ``validate`` (bool, default true), ``chunk_size``
(bytes per reply datagram, default 4096, at least 256), ``nonce_refresh`` (bool; default true for
``device-evidence``, false for ``pci-tsm``, whose v2 code answered a nonce with ``EOPNOTSUPP``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import selectors
import socket
import stat
import struct
import threading
import time
from collections import deque
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from .kernel import Device, Fleet, Host

# --- wire constants (include/uapi/linux/netlink.h, genetlink.h) ---------------------------------------------

NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE = 1, 2, 3
NLMSG_MIN_TYPE = 0x10
F_REQUEST, F_MULTI, F_ACK = 0x01, 0x02, 0x04
F_DUMP = 0x300
F_CAPPED, F_ACK_TLVS = 0x100, 0x200
NLMSGERR_ATTR_MSG = 1
NLA_TYPE_MASK = 0x3FFF
GENL_ID_CTRL = 0x10
CTRL_CMD_NEWFAMILY, CTRL_CMD_GETFAMILY = 1, 3
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_ATTR_VERSION, CTRL_ATTR_HDRSIZE, CTRL_ATTR_MAXATTR, CTRL_ATTR_OPS = 1, 2, 3, 4, 5, 6
CTRL_ATTR_OP_ID, CTRL_ATTR_OP_FLAGS = 1, 2
GENL_ADMIN_PERM, GENL_CMD_CAP_DO, GENL_CMD_CAP_DUMP, GENL_CMD_CAP_HASPOL = 0x01, 0x02, 0x04, 0x08

HDR = struct.Struct("=IHHII")
GENL = struct.Struct("=BBH")
ATTR = struct.Struct("=HH")

TYPES = tuple(["cert%d" % n for n in range(8)] + ["vca", "measurements", "report"])
TYPE_MASK_ALL = (1 << len(TYPES)) - 1
FLAG_DIGEST = 1
MAX_OBJECT_SIZE = 0x01000000
NAME_LEN = 32  # DEVICE_EVIDENCE_NAME_LEN: subsys and dev-name are copied with nla_strscpy into 32 bytes

# The families this endpoint can play. Ids are what a kernel might allocate dynamically
# (GENL_START_ALLOC is 0x13); clients must resolve them, never assume them.
FAMILIES: Dict[str, Dict[str, Any]] = {
    "device-evidence": {
        "id": 0x22, "read": 1, "validate": 2, "max_nonce": 32, "maxattr": 10,
        "attrs": {"type": 1, "type-mask": 2, "flags": 3, "subsys": 4, "dev-name": 5, "nonce": 6,
                  "generation": 7, "count": 8, "length": 9, "val": 10},
        "read_request": ("type-mask", "flags", "subsys", "dev-name", "nonce"),
        "validate_request": ("subsys", "dev-name", "generation"),
    },
    "pci-tsm": {
        "id": 0x23, "read": 1, "validate": None, "max_nonce": 256, "maxattr": 6,
        "attrs": {"type": 1, "type-mask": 2, "flags": 3, "dev-name": 4, "nonce": 5, "val": 6},
        "read_request": ("type-mask", "flags", "dev-name", "nonce"),
        "validate_request": (),
    },
}

FAULTS = ("generation_bump", "truncate", "absent", "eperm")

Provider = Callable[[Host, Device, List[str], Optional[bytes]], Dict[str, bytes]]


# --- encoding ------------------------------------------------------------------------------------------------

def _pad(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    return ATTR.pack(n, kind) + payload + bytes(_pad(n) - n)


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value & 0xFFFFFFFF))


def attr_str(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def message(kind: int, flags: int, seq: int, pid: int, payload: bytes) -> bytes:
    n = 16 + len(payload)
    return HDR.pack(n, kind, flags, seq, pid) + payload + bytes(_pad(n) - n)


def genl_message(kind: int, flags: int, seq: int, pid: int, cmd: int, attrs: bytes) -> bytes:
    return message(kind, flags, seq, pid, GENL.pack(cmd, 1, 0) + attrs)


def _ext_ack(text: Optional[str]) -> Tuple[int, bytes]:
    return (F_ACK_TLVS, attr_str(NLMSGERR_ATTR_MSG, text)) if text else (0, b"")


def error_message(req: "Request", code: int, text: Optional[str] = None) -> bytes:
    """NLMSG_ERROR as sent to a NETLINK_CAP_ACK | NETLINK_EXT_ACK socket: -errno, the request's
    header, extended-ACK attributes. ``code`` 0 is an acknowledgement."""
    flags, tlvs = _ext_ack(text if code else None)
    body = struct.pack("=i", -code) + HDR.pack(req.length, req.type, req.flags, req.seq, req.pid) + tlvs
    return message(NLMSG_ERROR, F_CAPPED | flags, req.seq, req.pid, body)


def done_message(req: "Request", code: int = 0, text: Optional[str] = None) -> bytes:
    """NLMSG_DONE ending a dump; a failed dump carries its negative errno (and an extended-ACK text)."""
    flags, tlvs = _ext_ack(text if code else None)
    return message(NLMSG_DONE, F_MULTI | flags, req.seq, req.pid, struct.pack("=i", -code) + tlvs)


# --- decoding -------------------------------------------------------------------------------------------------

class Request:
    __slots__ = ("length", "type", "flags", "seq", "pid", "payload")

    def __init__(self, length: int, kind: int, flags: int, seq: int, pid: int, payload: bytes) -> None:
        self.length, self.type, self.flags, self.seq, self.pid, self.payload = length, kind, flags, seq, pid, payload


def parse_requests(data: bytes) -> List[Request]:
    """The messages of one datagram; stops at the first malformed one, as netlink_rcv_skb() does."""
    out = []
    off = 0
    while len(data) - off >= 16:
        length, kind, flags, seq, pid = HDR.unpack_from(data, off)
        if length < 16 or length > len(data) - off:
            break
        out.append(Request(length, kind, flags, seq, pid, data[off + 16:off + length]))
        off += _pad(length)
    return out


class Invalid(Exception):
    """A request the kernel would refuse: errno and extended-ACK text."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def parse_attrs(data: bytes) -> List[Tuple[int, bytes]]:
    out = []
    off = 0
    while off < len(data):
        if len(data) - off < 4:
            raise Invalid(errno.EINVAL, "trailing bytes after attributes")
        n, kind = ATTR.unpack_from(data, off)
        if n < 4 or n > len(data) - off:
            raise Invalid(errno.EINVAL, "attribute length %d out of range" % n)
        out.append((kind & NLA_TYPE_MASK, data[off + 4:off + n]))
        off += _pad(n)
    return out


def _genl(req: Request) -> Tuple[int, List[Tuple[int, bytes]]]:
    if len(req.payload) < 4:
        raise Invalid(errno.EINVAL, "message shorter than the generic netlink header")
    cmd = req.payload[0]
    return cmd, parse_attrs(req.payload[4:])


def _policy(fam: Dict[str, Any], op: str, attrs: List[Tuple[int, bytes]]) -> Dict[str, bytes]:
    """Strict validation of a request against the op's attribute list (genetlink strict policy)."""
    allowed = {fam["attrs"][name]: name for name in fam[op + "_request"]}
    out: Dict[str, bytes] = {}
    for kind, value in attrs:
        name = allowed.get(kind)
        if name is None:
            raise Invalid(errno.EINVAL, "Unknown attribute type" if kind > max(allowed, default=0) else "Unsupported attribute")
        if name in ("type-mask", "flags", "generation") and len(value) != 4:
            raise Invalid(errno.EINVAL, "attribute %s: u32 of %d bytes" % (name, len(value)))
        if name == "nonce" and len(value) > fam["max_nonce"]:
            raise Invalid(errno.EINVAL, "nonce longer than %d bytes" % fam["max_nonce"])
        out[name] = value
    return out


def attrs_raw(req: Request) -> bytes:
    return req.payload[4:]


def _u32(value: bytes) -> int:
    return struct.unpack("=I", value)[0]


def _name(attrs: Dict[str, bytes], key: str, missing: str) -> str:
    """nla_strscpy() into a 32-byte buffer: the string up to its NUL; 32 bytes or more is -E2BIG."""
    if key not in attrs:
        raise Invalid(errno.EINVAL, missing)
    raw = attrs[key].split(b"\0", 1)[0]
    if len(raw) >= NAME_LEN:
        raise Invalid(errno.EINVAL, "%s longer than %d bytes" % (key, NAME_LEN - 1))
    return raw.decode("utf-8", "replace")


# --- evidence bytes --------------------------------------------------------------------------------------------

_DEFAULT_SIZES = {"cert0": 1536, "vca": 96, "measurements": 512, "report": 128}


def _expand(seed: bytes, size: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(4, "little")).digest()
        counter += 1
    return bytes(out[:size])


def default_provider(host: Host, device: Device, types: List[str], nonce: Optional[bytes]) -> Dict[str, bytes]:
    """Deterministic opaque bytes per (host, device, generation, type); cert1..cert7 are empty slots;
    measurements also depend on the nonce. Used until the scenario's evidence builder is wired in."""
    out = {}
    for name in types:
        size = _DEFAULT_SIZES.get(name, 0)
        seed = ("%s/%s/%d/%s" % (host.name, device.bdf, device.generation, name)).encode()
        if name == "measurements" and nonce:
            seed += b"/" + nonce
        out[name] = _expand(seed, size) if size else b""
    return out


# --- faults -----------------------------------------------------------------------------------------------------

def faults(host: Host) -> Dict[str, Any]:
    """The host's evidence fault table (created empty on first use)."""
    table = getattr(host, "evidence_faults", None)
    if table is None:
        table = {}
        host.evidence_faults = table  # type: ignore[attr-defined]
    return table


def set_fault(host: Host, kind: str, bdf: Optional[str] = None, value: Any = True) -> None:
    """Arm an evidence fault (see the module docstring) and log it in the fleet event log.

    ``generation_bump``: ``value`` is a count (-1: every dump; True: 1); ``truncate``: ``value`` is a
    type name or ``"*"`` (True: ``"*"``); both apply to ``bdf`` (None: every device). ``absent``, ``eperm``: host-wide."""
    if kind not in FAULTS:
        raise ValueError("unknown evidence fault %r (known: %s)" % (kind, ", ".join(FAULTS)))
    with host.fleet.lock:
        table = faults(host)
        if kind in ("generation_bump", "truncate"):
            if kind == "generation_bump" and value is True:
                value = 1
            if kind == "generation_bump" and (isinstance(value, bool) or not isinstance(value, int) or value == 0 or value < -1):
                raise ValueError("generation_bump takes a count >= 1, or -1 for every dump")
            if kind == "truncate" and value is not True and value != "*" and value not in TYPES:
                raise ValueError("truncate takes an evidence type name or '*'")
            table.setdefault(kind, {})[bdf or "*"] = "*" if value is True else value
        else:
            table[kind] = bool(value)
        host.log(bdf, "evidence_fault", fault=kind, value=value)


def clear_fault(host: Host, kind: str, bdf: Optional[str] = None) -> None:
    """Disarm an evidence fault (``bdf`` None: for every device) and log it."""
    if kind not in FAULTS:
        raise ValueError("unknown evidence fault %r" % kind)
    with host.fleet.lock:
        table = faults(host)
        if kind in ("generation_bump", "truncate") and bdf is not None:
            table.get(kind, {}).pop(bdf, None)
        else:
            table.pop(kind, None)
        host.log(bdf, "evidence_fault", fault=kind, value=None)


def _device_fault(host: Host, kind: str, bdf: str) -> Any:
    table = getattr(host, "evidence_faults", None) or {}
    per = table.get(kind) or {}
    if bdf in per:
        return per[bdf]
    return per.get("*")


def _take_bump(host: Host, bdf: str) -> bool:
    table = getattr(host, "evidence_faults", None) or {}
    per = table.get("generation_bump") or {}
    key = bdf if bdf in per else ("*" if "*" in per else None)
    if key is None:
        return False
    count = per[key]
    if count > 0:
        count -= 1
        if count == 0:
            del per[key]
        else:
            per[key] = count
    return True


# --- connections --------------------------------------------------------------------------------------------------

class _Conn:
    __slots__ = ("sock", "host", "out", "dump", "want_write")

    def __init__(self, sock: socket.socket, host: str) -> None:
        self.sock = sock
        self.host = host
        self.out: deque = deque()
        self.dump: Optional[Iterator[bytes]] = None
        self.want_write = False


class EvidenceServer:
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
        wanted = {name for name, host in hosts if not (getattr(host, "evidence_faults", None) or {}).get("absent")}
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

    # -- requests -------------------------------------------------------------------------------------------------------
    def _handle(self, conn: _Conn, host: Host, req: Request) -> None:
        if not req.flags & F_REQUEST:
            return
        if req.type < NLMSG_MIN_TYPE:
            if req.flags & F_ACK:
                conn.out.append(error_message(req, 0))
            return
        try:
            if req.type == GENL_ID_CTRL:
                replies = self._ctrl(req)
            elif req.type == self.family["id"]:
                replies = self._family_request(conn, host, req)
            else:
                raise Invalid(errno.ENOENT, "no generic netlink family with id %d" % req.type)
        except Invalid as exc:
            conn.out.append(error_message(req, exc.code, exc.text))
            return
        conn.out.extend(replies)

    def _ctrl(self, req: Request) -> List[bytes]:
        cmd, attrs = _genl(req)
        if cmd != CTRL_CMD_GETFAMILY:
            raise Invalid(errno.EOPNOTSUPP, "nlctrl command %d not simulated" % cmd)
        fam = self.family
        description = self._family_description(req)
        if req.flags & F_DUMP == F_DUMP:
            return [description + done_message(req)]
        name = next((v.split(b"\0", 1)[0].decode("utf-8", "replace") for k, v in attrs if k == CTRL_ATTR_FAMILY_NAME), None)
        fid = next((struct.unpack("=H", v[:2])[0] for k, v in attrs if k == CTRL_ATTR_FAMILY_ID and len(v) >= 2), None)
        if name is None and fid is None:
            raise Invalid(errno.EINVAL, "missing family name or id")
        if (name is not None and name != self.family_name) or (name is None and fid != fam["id"]):
            raise Invalid(errno.ENOENT, "unknown family")
        out = [description]
        if req.flags & F_ACK:
            out.append(error_message(req, 0))
        return out

    def _family_description(self, req: Request) -> bytes:
        fam = self.family
        ops = [(fam["read"], GENL_ADMIN_PERM | GENL_CMD_CAP_DUMP | GENL_CMD_CAP_HASPOL)]
        if self.validate_enabled:
            ops.append((fam["validate"], GENL_ADMIN_PERM | GENL_CMD_CAP_DO | GENL_CMD_CAP_HASPOL))
        # nlctrl nests the op list without NLA_F_NESTED (nla_nest_start_noflag), one nest per op numbered from 1
        op_nests = b"".join(attr(i + 1, attr_u32(CTRL_ATTR_OP_ID, op) + attr_u32(CTRL_ATTR_OP_FLAGS, flags)) for i, (op, flags) in enumerate(ops))
        attrs = (attr_str(CTRL_ATTR_FAMILY_NAME, self.family_name) + attr(CTRL_ATTR_FAMILY_ID, struct.pack("=H", fam["id"]))
                 + attr_u32(CTRL_ATTR_VERSION, 1) + attr_u32(CTRL_ATTR_HDRSIZE, 0) + attr_u32(CTRL_ATTR_MAXATTR, fam["maxattr"])
                 + attr(CTRL_ATTR_OPS, op_nests))
        return genl_message(GENL_ID_CTRL, F_MULTI if req.flags & F_DUMP == F_DUMP else 0, req.seq, req.pid, CTRL_CMD_NEWFAMILY, attrs)

    def _family_request(self, conn: _Conn, host: Host, req: Request) -> List[bytes]:
        fam = self.family
        cmd, attrs = _genl(req)
        dump = req.flags & F_DUMP == F_DUMP
        if cmd == fam["read"] and dump:
            op = "read"
        elif cmd == fam["validate"] and self.validate_enabled and not dump:
            op = "validate"
        else:
            raise Invalid(errno.EOPNOTSUPP, "command %d (%s) not supported" % (cmd, "dump" if dump else "do"))
        # genetlink checks GENL_ADMIN_PERM before parsing any attribute
        with self.fleet.lock:
            eperm = bool((getattr(host, "evidence_faults", None) or {}).get("eperm"))
        try:
            if eperm:
                raise Invalid(errno.EPERM, "Operation not permitted")
            values = _policy(fam, op, attrs)
        except Invalid as exc:
            host.log(self._dev_label(req), "evidence_" + op, result=errno.errorcode.get(exc.code, str(exc.code)))
            raise
        if op == "validate":
            return self._validate(host, req, values)
        if conn.dump is not None:
            raise Invalid(errno.EBUSY, "a dump is already running on this socket")
        conn.dump = self._read(host, req, values)
        return []

    def _dev_label(self, req: Request) -> Optional[str]:
        """The dev-name of a request, for the log only (the kernel refuses before parsing it)."""
        try:
            raw = next(v for k, v in parse_attrs(attrs_raw(req)) if k == self.family["attrs"]["dev-name"])
        except (Invalid, StopIteration):
            return None
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace") or None

    def _lookup(self, host: Host, values: Dict[str, bytes]) -> Tuple[str, Device]:
        """device_evidence_ctx_setup(): subsys, dev-name, provider, device, in the kernel's order."""
        if "subsys" in self.family["attrs"]:
            subsys = _name(values, "subsys", "missing subsys name")
        else:
            subsys = "pci"
        dev_name = _name(values, "dev-name", "missing device name")
        if subsys != "pci":
            raise Invalid(errno.EOPNOTSUPP, "no evidence provider for subsys '%s'" % subsys)
        device = host.devices.get(dev_name)
        if device is None or not device.present:
            raise Invalid(errno.ENODEV, "device '%s:%s' evidence not found" % (subsys, dev_name))
        return dev_name, device

    def _validate(self, host: Host, req: Request, values: Dict[str, bytes]) -> List[bytes]:
        label = values.get("dev-name", b"").split(b"\0", 1)[0].decode("utf-8", "replace") or None
        asked = _u32(values["generation"]) if "generation" in values else None
        with self.fleet.lock:
            try:
                dev_name, device = self._lookup(host, values)
                if asked is None:
                    raise Invalid(errno.EINVAL, "missing generation")
                if not device.has_context:
                    raise Invalid(errno.ENXIO, "no TSM context")
                current = device.generation & 0xFFFFFFFF
                if asked != current:
                    raise Invalid(errno.EAGAIN, "evidence generation %d is not the current %d" % (asked, current))
            except Invalid as exc:
                host.log(label, "evidence_validate", generation=asked, result=errno.errorcode.get(exc.code, str(exc.code)))
                raise
            device.validated_generation = device.generation
            host.log(dev_name, "evidence_validate", generation=asked, result="ok")
        reply = genl_message(self.family["id"], 0, req.seq, req.pid, self.family["validate"], attr_u32(self.family["attrs"]["generation"], asked))
        out = [reply]
        if req.flags & F_ACK:
            out.append(error_message(req, 0))
        return out

    def _read(self, host: Host, req: Request, values: Dict[str, bytes]) -> Iterator[bytes]:
        """The read dump: pre-checks raise Invalid now (NLMSG_ERROR); the rest runs lazily, one
        reply datagram per step, and ends with NLMSG_DONE (carrying the errno of a failed dump)."""
        with self.fleet.lock:
            try:
                dev_name, device = self._lookup(host, values)
                if "type-mask" not in values:
                    raise Invalid(errno.EINVAL, "missing object request mask")
                mask = _u32(values["type-mask"])
                if mask & ~TYPE_MASK_ALL:
                    raise Invalid(errno.EINVAL, "unsupported object request %#x" % (mask & ~TYPE_MASK_ALL))
                if not mask:
                    raise Invalid(errno.EINVAL, "no evidence type requested")
                flags = _u32(values["flags"]) if "flags" in values else 0
                if flags & ~FLAG_DIGEST:
                    raise Invalid(errno.EINVAL, "unsupported flags %#x" % flags)
            except Invalid as exc:
                name = values.get("dev-name", b"").split(b"\0", 1)[0].decode("utf-8", "replace") or None
                host.log(name, "evidence_read", result=errno.errorcode.get(exc.code, str(exc.code)))
                raise
        nonce = values.get("nonce")
        types = [TYPES[n] for n in range(len(TYPES)) if mask & (1 << n)]
        return self._dump(host, req, dev_name, device, types, flags, nonce)

    def _dump(self, host: Host, req: Request, dev_name: str, device: Device, types: List[str], flags: int,
              nonce: Optional[bytes]) -> Iterator[bytes]:
        fam = self.family
        numbers = fam["attrs"]
        detail: Dict[str, Any] = {"types": types, "digest": bool(flags & FLAG_DIGEST), "nonce": nonce is not None}

        def fail(code: int, text: str, pending: bytes = b"") -> bytes:
            host.log(dev_name, "evidence_read", result=errno.errorcode.get(code, str(code)), **detail)
            return pending + done_message(req, code, text)

        # first dumpit call: nonce refresh, evidence_read_begin(), capture the generation
        with self.fleet.lock:
            if nonce is not None and not self.nonce_refresh:
                yield fail(errno.EOPNOTSUPP, "evidence refresh failed: -EOPNOTSUPP")
                return
            if not device.present:
                yield fail(errno.ENODEV, "failed to acquire evidence context")
                return
            if not device.has_context:
                yield fail(errno.ENXIO, "failed to acquire evidence context")
                return
            generation = device.generation
            detail["generation"] = generation
            try:
                objects = self.provider(host, device, list(types), nonce)
            except Exception as exc:  # a broken provider is the simulator's bug: say so, do not hang the client
                host.log(dev_name, "evidence_error", error="%s: %s" % (type(exc).__name__, exc))
                yield fail(errno.EIO, "evidence provider failed")
                return
        truncate = _device_fault(host, "truncate", dev_name)
        sent_messages = 0
        bumped = False
        for index, name in enumerate(types):
            data = objects.get(name, b"") or b""
            if flags & FLAG_DIGEST:
                data = hashlib.sha384(data).digest() if data else b""
            if len(data) > MAX_OBJECT_SIZE:
                yield fail(errno.EFBIG, "object too large")
                return
            length = len(data)
            if truncate is not None and truncate in ("*", name):
                if length == 0:
                    length = 1
                data = data[:length // 2]
                host.log(dev_name, "evidence_truncated", type=name, length=length, sent=len(data))
            offset = 0
            first = True
            while first or offset < len(data):
                # each message is one dumpit call: evidence_read_begin() and the generation check
                with self.fleet.lock:
                    if sent_messages >= 1 and not bumped and _take_bump(host, dev_name):
                        bumped = True
                        host.fault_generation(device)
                    if not device.present or not device.has_context:
                        yield fail(errno.ENXIO, "failed to acquire evidence context")
                        return
                    if device.generation != generation:
                        yield fail(errno.EAGAIN, "evidence updated during read")
                        return
                attrs = b""
                if first:
                    attrs += attr_u32(numbers["type"], TYPES.index(name))
                    if "generation" in numbers:
                        attrs += attr_u32(numbers["generation"], generation) + attr_u32(numbers["length"], length)
                # the kernel fills the skb: val gets the tailroom minus nla_total_size(0) + NLA_ALIGNTO
                available = self.chunk_size - 16 - 4 - len(attrs)
                chunk = data[offset:offset + max(available - 8, 0)]
                attrs += attr(numbers["val"], chunk)
                offset += len(chunk)
                first = False
                msg = genl_message(fam["id"], F_MULTI, req.seq, req.pid, fam["read"], attrs)
                sent_messages += 1
                if offset >= len(data) and index == len(types) - 1:
                    host.log(dev_name, "evidence_read", result="ok", **detail)
                    done = done_message(req)
                    if len(msg) + len(done) <= self.chunk_size:
                        yield msg + done
                    else:
                        yield msg
                        yield done
                    return
                yield msg
