# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The generic-netlink socket and its one request/reply loop (private; may change at any time).

``NetlinkSocket`` speaks to either

* the kernel: ``socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC)`` (endpoint ``netlink``), or
* the simulator: an ``AF_UNIX`` ``SOCK_SEQPACKET`` socket carrying exactly the datagrams a netlink
  socket would carry (endpoint ``unix:/path/to/host.sock``),

with the same encoder and decoder (``netlink_wire``). ``exchange()`` sends one request and reads
its reply to the end; what the reply means is the caller's (``netlink.EvidenceClient``). Every
failure is an ``EvidenceError`` naming the device, the operation, the errno and a remedy.
"""

from __future__ import annotations

import errno as _errno
import math
import os
import socket
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.constants import is_endpoint, unix_socket_path
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.netlink_wire import (
    NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GENERIC, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE,
    NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP, NLMSG_OVERRUN, PROTO_REMEDY, SOL_NETLINK, Message, WireError, genlmsg, parse_done,
    parse_error, split_messages)

CAP_REMEDY = 'needs CAP_NET_ADMIN (run as root / become: true)'
_STALE = (_errno.EPIPE, _errno.ECONNRESET, _errno.ENOTCONN)   # a simulator connection the endpoint closed

Result = t.TypeVar('Result')


def op_error(cause: str, device: t.Optional[str], operation: str, code: t.Optional[int], remedy: t.Optional[str]) -> EvidenceError:
    """An ``EvidenceError`` naming the device (if any) and the operation."""
    return EvidenceError(cause, device=device, attribute=operation, errno=code, remedy=remedy)


class NetlinkSocket:
    """One socket per instance, opened on first use, reused across requests, reopened after a broken reply.

    ``timeout`` bounds each wait for a reply datagram, in seconds.
    """

    RECV_BUFFER = 64 * 1024             # grows on demand up to MAX_DATAGRAM (kernel dump skbs are <= 32 KiB)
    MAX_DATAGRAM = 1024 * 1024

    def __init__(self, endpoint: str, timeout: float) -> None:
        if not is_endpoint(endpoint):
            raise op_error('evidence endpoint %r is neither netlink nor unix:PATH' % (endpoint,), None, 'evidence endpoint', _errno.EINVAL,
                           "set the evidence endpoint option to 'netlink' (the kernel) or 'unix:/path/to/host.sock' (the simulator)")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
            raise op_error('evidence timeout %r is not a positive number of seconds' % (timeout,), None, 'evidence endpoint', _errno.EINVAL,
                           'pass a timeout above 0')
        self.endpoint = endpoint
        self.timeout = float(timeout)
        self._path = unix_socket_path(endpoint)
        self._sock = None  # type: t.Optional[socket.socket]
        self._port = 0
        self._seq = 0
        self._buf = bytearray(self.RECV_BUFFER)

    def close(self) -> None:
        """Close the socket. It is reopened if used again."""
        sock = self._sock
        self._sock = None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # -- the request/reply loop ------------------------------------------------------------------------

    def exchange(self, msg_type: int, cmd: int, attrs: t.List[bytes], dev: t.Optional[str], op: str, *, dump: bool, what: str,
                 max_bytes: int, data: t.Callable[[Message], None], end: t.Callable[[bool], Result],
                 refused: t.Callable[[int, t.Optional[str]], Result]) -> Result:
        """Send one request and read its reply to the end.

        A "do" (``dump=False``) is answered by data messages then an acknowledgement; a dump by data
        messages then ``NLMSG_DONE``. Each data message (of type ``msg_type``; ``what`` names the
        reply in errors) goes to ``data``; the closing message returns ``end(interrupted)``
        (``interrupted``: a message carried ``NLM_F_DUMP_INTR``), or ``refused(errno, text)`` when it
        carries an error. A reply not read to its end closes the socket, so that its rest is never
        taken for the answer to the next request.
        """
        seq = self._send(msg_type, NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK), cmd, attrs, dev, op)
        received = 0
        interrupted = False
        clean = False
        try:
            for msg in self._messages(seq, dev, op):
                received += NLMSG_HDRLEN + len(msg.payload)
                if received > max_bytes:
                    raise op_error('the reply exceeds %d bytes' % max_bytes, dev, op, _errno.EFBIG, PROTO_REMEDY)
                interrupted = interrupted or (dump and bool(msg.flags & NLM_F_DUMP_INTR))
                if msg.type == NLMSG_ERROR or (dump and msg.type == NLMSG_DONE):
                    code, text = parse_error(msg) if msg.type == NLMSG_ERROR else parse_done(msg)
                    clean = True
                    if code:
                        return refused(code, text)
                    if dump and msg.type == NLMSG_ERROR:
                        raise WireError('an acknowledgement arrived inside a dump')
                    return end(interrupted)
                if msg.type == NLMSG_OVERRUN:
                    raise WireError('NLMSG_OVERRUN: data lost')
                if msg.type != msg_type:
                    raise WireError('message type %d in %s' % (msg.type, what))
                data(msg)
            raise WireError('no reply')  # pragma: no cover - _messages only ends by raising
        except WireError as exc:
            raise op_error('malformed netlink reply: %s' % exc.problem, dev, op, _errno.EPROTO, PROTO_REMEDY)
        except EvidenceError as exc:
            if exc.device is None and dev is not None:   # e.g. a size limit of the dump assembler
                raise op_error(exc.cause, dev, op, exc.errno, exc.remedy)
            raise
        finally:
            if not clean:
                self.close()

    # -- the socket ------------------------------------------------------------------------------------

    def _os_error(self, exc: OSError, dev: t.Optional[str], op: str, doing: str) -> EvidenceError:
        code = exc.errno
        where = self.endpoint
        if code in (_errno.ENOENT, _errno.ECONNREFUSED) and self._path is not None:
            return op_error('evidence endpoint %s is absent (not listening)' % where, dev, op, code,
                            'start the simulator for this host, or fix the evidence endpoint option')
        if code in (_errno.EACCES, _errno.EPERM):
            return op_error('%s %s: permission denied' % (doing, where), dev, op, code,
                            CAP_REMEDY if self._path is None else 'run as a user that may open the socket (become: true)')
        if code in (_errno.EAFNOSUPPORT, _errno.EPROTONOSUPPORT):
            return op_error('this system has no generic netlink sockets', dev, op, code, 'run on Linux with CONFIG_NETLINK / generic netlink')
        if code in _STALE:
            return op_error('evidence endpoint %s closed the connection' % where, dev, op, code, 'check that the evidence endpoint is running, then retry')
        return op_error('%s %s failed: %s' % (doing, where, exc.strerror or exc), dev, op, code, 'check the evidence endpoint option and retry')

    def _connect(self) -> socket.socket:
        """A connected AF_UNIX SOCK_SEQPACKET socket to the simulator endpoint (tests replace this)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        return sock

    def _open(self, dev: t.Optional[str], op: str) -> socket.socket:
        if self._sock is not None:
            return self._sock
        sock = None
        try:
            if self._path is None:
                family = getattr(socket, 'AF_NETLINK', None)
                if family is None:
                    raise OSError(_errno.EAFNOSUPPORT, 'no AF_NETLINK')
                sock = socket.socket(family, socket.SOCK_RAW, NETLINK_GENERIC)
                sock.bind((0, 0))
                self._port = sock.getsockname()[0]
                for option in (NETLINK_EXT_ACK, NETLINK_CAP_ACK):
                    try:
                        sock.setsockopt(SOL_NETLINK, option, 1)
                    except OSError:
                        pass  # older kernels: plain acknowledgements
            else:
                sock = self._connect()
                # No port allocation over AF_UNIX: the simulator answers with the port id the request carries.
                self._port = os.getpid() & 0x7FFFFFFF or 1
            sock.settimeout(self.timeout)
        except OSError as exc:
            if sock is not None:
                sock.close()
            raise self._os_error(exc, dev, op, 'opening')
        self._sock = sock
        self._seq = 0
        return sock

    def _send(self, msg_type: int, flags: int, cmd: int, attrs: t.List[bytes], dev: t.Optional[str], op: str) -> int:
        """Send one generic-netlink request on the (re)opened socket; returns its sequence number.

        A simulator connection that the endpoint closed since the last call (it restarted, or its
        socket was removed) is reopened once before the error is reported."""
        reopen = self._sock is not None and self._path is not None
        while True:
            sock = self._open(dev, op)
            self._seq = self._seq + 1 if self._seq < 0xFFFFFFFF else 1
            data = genlmsg(msg_type, flags, self._seq, self._port, cmd, attrs)
            try:
                sent = sock.send(data)
            except socket.timeout:
                self.close()
                raise op_error('sending to %s timed out after %.1f s' % (self.endpoint, self.timeout), dev, op, _errno.ETIMEDOUT,
                               'check that the evidence endpoint is alive')
            except OSError as exc:
                self.close()
                if reopen and exc.errno in _STALE:
                    reopen = False
                    continue
                raise self._os_error(exc, dev, op, 'sending to')
            if sent != len(data):
                self.close()
                raise op_error('sent %d of %d bytes to %s' % (sent, len(data), self.endpoint), dev, op, _errno.EMSGSIZE, PROTO_REMEDY)
            return self._seq

    def _recv(self, dev: t.Optional[str], op: str) -> bytes:
        sock = self._open(dev, op)   # already open: a request was just sent
        try:
            while True:
                size = sock.recv_into(self._buf, len(self._buf), socket.MSG_PEEK | socket.MSG_TRUNC)
                if size > self.MAX_DATAGRAM:
                    raise op_error('a reply datagram of %d bytes exceeds %d' % (size, self.MAX_DATAGRAM), dev, op, _errno.EMSGSIZE, PROTO_REMEDY)
                if size > len(self._buf):
                    self._buf = bytearray(size)
                nbytes, _ancdata, msg_flags, address = sock.recvmsg_into([self._buf])
                if nbytes == 0:
                    raise OSError(_errno.ECONNRESET, 'connection closed')
                if msg_flags & socket.MSG_TRUNC:
                    raise op_error('a reply datagram was truncated', dev, op, _errno.EMSGSIZE, PROTO_REMEDY)
                if self._path is None and isinstance(address, tuple) and address and address[0] != 0:
                    continue  # not from the kernel (another process unicast to our port): ignore
                return bytes(self._buf[:nbytes])
        except socket.timeout:
            raise op_error('no reply from %s within %.1f s' % (self.endpoint, self.timeout), dev, op, _errno.ETIMEDOUT,
                           'check that the evidence endpoint is alive, or raise the timeout')
        except OSError as exc:
            raise self._os_error(exc, dev, op, 'receiving from')

    def _messages(self, seq: int, dev: t.Optional[str], op: str) -> t.Iterator[Message]:
        """The messages answering request ``seq``, across datagrams; never ends by itself."""
        while True:
            for msg in split_messages(self._recv(dev, op)):
                if msg.seq != seq:
                    raise WireError('reply sequence number %d does not answer request %d' % (msg.seq, seq))
                if msg.pid != self._port:
                    raise WireError('reply port id %d is not this socket\'s port id %d' % (msg.pid, self._port))
                if msg.type == NLMSG_NOOP:
                    continue
                yield msg
