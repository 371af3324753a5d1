# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Generic-netlink client for device evidence (private; may change at any time).

Speaks the ``device-evidence`` generic netlink family (kernel-abi.md section 8) and its
predecessor ``pci-tsm`` (kernel-abi.md section 1d) with the standard library only, over either

* the kernel: ``socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC)`` (endpoint ``netlink``), or
* the simulator: an ``AF_UNIX`` ``SOCK_SEQPACKET`` socket carrying exactly the datagrams a netlink
  socket would carry (endpoint ``unix:/path/to/host.sock``).

Both use the same encoder and decoder. The wire format is described in docs/evidence-transport.md;
the sources relied on are:

* netlink and generic-netlink headers, flags, attribute layout and the nlctrl family:
  ``include/uapi/linux/netlink.h`` and ``include/uapi/linux/genetlink.h`` (torvalds/linux), and
  the kernel document ``Documentation/userspace-api/netlink/intro.rst`` (dumps end with
  ``NLMSG_DONE``; one ``recv()`` may return several messages).
* errors of a running dump arrive as a negative errno in the ``NLMSG_DONE`` payload, followed by
  extended-ACK attributes when ``NLM_F_ACK_TLVS`` is set (kernel commit 4a19edb60d02 "netlink: Pass
  extack to dump handlers"); errors found before the dump starts arrive as ``NLMSG_ERROR``.
* ``NLM_F_DUMP_INTR`` marks an inconsistent dump (kernel commit 670dc2833d14).
* the ``device-evidence`` family: intel-staging/tdx
  ``Documentation/netlink/specs/device-evidence.yaml`` @ 9167426a and the devsec-phase2 kernel
  implementation (one object = a first message with ``type``, ``generation`` and ``length``, then
  ``val`` chunks, one per message, until ``length`` bytes; the generation is captured at the start
  of the dump and a change ends the dump with ``EAGAIN``); the ``validate`` command (cmd 2, a "do"
  with ``subsys``, ``dev-name``, ``generation``) from the devsec tool ``tools/testing/devsec/main.c``.
* the ``pci-tsm`` family: devsec/tsm ``Documentation/netlink/specs/pci-tsm.yaml`` (attributes type=1,
  type-mask=2, flags=3, dev-name=4, nonce=5, val=6; command ``evidence-read`` = 1; no generation,
  no length: an object is the ``val`` chunks that follow its ``type``).

Every failure is an ``EvidenceError`` naming the device, the operation, the errno and a remedy.
"""

from __future__ import annotations

import errno as _errno
import math
import os
import socket
import struct
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError

# ------------------------------------------------------------------------------------------------
# Wire constants (include/uapi/linux/netlink.h, include/uapi/linux/genetlink.h)
# ------------------------------------------------------------------------------------------------

NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4
NLMSG_MIN_TYPE = 0x10

NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_ECHO = 0x08
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP_FILTERED = 0x20
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
# flags of an NLMSG_ERROR (acknowledgement) message
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200

NLMSGERR_ATTR_MSG = 1
NLMSGERR_ATTR_OFFS = 2

NLA_F_NESTED = 0x8000
NLA_F_NET_BYTEORDER = 0x4000
NLA_TYPE_MASK = 0x3FFF

GENL_ID_CTRL = NLMSG_MIN_TYPE
CTRL_CMD_NEWFAMILY = 1
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
CTRL_ATTR_VERSION = 3
CTRL_ATTR_HDRSIZE = 4
CTRL_ATTR_MAXATTR = 5
CTRL_ATTR_OPS = 6
CTRL_ATTR_OP_ID = 1
CTRL_ATTR_OP_FLAGS = 2
GENL_ADMIN_PERM = 0x01
GENL_CMD_CAP_DO = 0x02
GENL_CMD_CAP_DUMP = 0x04

# Header layouts. Netlink is host byte order ("=": native order, standard sizes, no padding).
NLMSGHDR = struct.Struct('=IHHII')   # nlmsg_len, nlmsg_type, nlmsg_flags, nlmsg_seq, nlmsg_pid
GENLMSGHDR = struct.Struct('=BBH')   # cmd, version, reserved
NLATTR = struct.Struct('=HH')        # nla_len, nla_type
U16 = struct.Struct('=H')
U32 = struct.Struct('=I')
S32 = struct.Struct('=i')
NLMSG_HDRLEN = NLMSGHDR.size
GENL_HDRLEN = GENLMSGHDR.size
NLA_HDRLEN = NLATTR.size

# ------------------------------------------------------------------------------------------------
# Evidence families (kernel-abi.md sections 1d and 8)
# ------------------------------------------------------------------------------------------------

TYPE_NAMES = tuple(['cert%d' % n for n in range(8)] + ['vca', 'measurements', 'report'])
TYPE_NUMBERS = dict((name, number) for number, name in enumerate(TYPE_NAMES))
MAX_OBJECT_SIZE = 0x01000000  # max-object-size, 16 MiB
FLAG_DIGEST = 1 << 0
SUBSYS = 'pci'
MAX_DEV_NAME = 31  # the kernel copies dev-name and subsys into 32-byte buffers (nla_strscpy)


class Family:
    """One generic-netlink evidence family: its name, commands, attribute numbers and limits.

    ``attrs`` maps the collection's attribute names to the family's numbers; a name the family lacks
    is absent (``pci-tsm`` has no ``subsys``, ``generation`` or ``length``).
    """

    __slots__ = ('name', 'read_cmd', 'validate_cmd', 'attrs', 'max_nonce')

    def __init__(self, name: str, read_cmd: int, validate_cmd: t.Optional[int], attrs: t.Dict[str, int], max_nonce: int) -> None:
        self.name = name
        self.read_cmd = read_cmd
        self.validate_cmd = validate_cmd
        self.attrs = attrs
        self.max_nonce = max_nonce

    def __repr__(self) -> str:
        return 'Family(%r)' % self.name


DEVICE_EVIDENCE = Family(
    'device-evidence', read_cmd=1, validate_cmd=2,
    attrs={'type': 1, 'type-mask': 2, 'flags': 3, 'subsys': 4, 'dev-name': 5, 'nonce': 6,
           'generation': 7, 'count': 8, 'length': 9, 'val': 10},
    max_nonce=32)
PCI_TSM = Family(
    'pci-tsm', read_cmd=1, validate_cmd=None,
    attrs={'type': 1, 'type-mask': 2, 'flags': 3, 'dev-name': 4, 'nonce': 5, 'val': 6},
    max_nonce=256)
FAMILIES = (DEVICE_EVIDENCE, PCI_TSM)

# What to do about each errno a peer returns (the operation-specific ones are chosen in _remedy).
CAP_REMEDY = 'needs CAP_NET_ADMIN (run as root / become: true)'
NO_FAMILY_REMEDY = 'the kernel has no device-evidence netlink family (kernel without the TSM evidence series)'
_REMEDIES = {
    _errno.EPERM: CAP_REMEDY,
    _errno.EACCES: CAP_REMEDY,
    _errno.ENODEV: 'no such device: check the PCI device name and that the device is present',
    _errno.ENXIO: 'no TSM context or no evidence: lock the device first',
    _errno.EINVAL: 'the kernel rejected the request as malformed: its evidence ABI differs from the one coco.tdisp speaks; report it with the kernel version',
    _errno.EBUSY: 'another evidence dump is still running on this socket: retry',
    _errno.ENOENT: NO_FAMILY_REMEDY,
    _errno.ENOMEM: 'the kernel is out of memory: retry later',
}
PROTO_REMEDY = ('the reply is not the netlink wire format coco.tdisp expects: read again; '
                'if it persists, check the endpoint option and the kernel or simulator version')


def _error(cause: str, device: t.Optional[str], operation: str, code: t.Optional[int], remedy: t.Optional[str]) -> EvidenceError:
    return EvidenceError(cause, device=device, attribute=operation, errno=code, remedy=remedy)


class WireError(EvidenceError):
    """Malformed netlink data (EPROTO). Raised by the decoders; the client re-raises it with the
    device and operation named. Still an ``EvidenceError``, so nothing else ever escapes."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__('malformed netlink reply: %s' % problem, attribute='netlink', errno=_errno.EPROTO, remedy=PROTO_REMEDY)


# ------------------------------------------------------------------------------------------------
# Encoding
# ------------------------------------------------------------------------------------------------

def align(length: int) -> int:
    """NLMSG_ALIGN / NLA_ALIGN: round up to 4 bytes."""
    return (length + 3) & ~3


def nla(attr_type: int, payload: bytes) -> bytes:
    """One attribute: header, payload, zero padding to 4 bytes. ``nla_len`` excludes the padding."""
    length = NLA_HDRLEN + len(payload)
    if length > 0xFFFF:
        raise ValueError('attribute %d: %d bytes do not fit a netlink attribute' % (attr_type, len(payload)))
    return NLATTR.pack(length, attr_type) + payload + b'\0' * (align(length) - length)


def nla_u16(attr_type: int, value: int) -> bytes:
    return nla(attr_type, U16.pack(value))


def nla_u32(attr_type: int, value: int) -> bytes:
    return nla(attr_type, U32.pack(value))


def nla_string(attr_type: int, value: str) -> bytes:
    """A NUL-terminated string attribute (what libnl and YNL send for NLA_STRING / NLA_NUL_STRING)."""
    return nla(attr_type, value.encode('utf-8') + b'\0')


def nla_nested(attr_type: int, attrs: t.Iterable[bytes], flag: bool = True) -> bytes:
    return nla(attr_type | (NLA_F_NESTED if flag else 0), b''.join(attrs))


def nlmsg(msg_type: int, flags: int, seq: int, pid: int, payload: bytes) -> bytes:
    """One netlink message: header, payload, padding to 4 bytes (``nlmsg_len`` excludes the padding)."""
    length = NLMSG_HDRLEN + len(payload)
    return NLMSGHDR.pack(length, msg_type, flags, seq, pid) + payload + b'\0' * (align(length) - length)


def genlmsg(family_id: int, flags: int, seq: int, pid: int, cmd: int, attrs: t.Iterable[bytes], version: int = 1) -> bytes:
    """One generic-netlink message: nlmsghdr, genlmsghdr, attributes."""
    return nlmsg(family_id, flags, seq, pid, GENLMSGHDR.pack(cmd, version, 0) + b''.join(attrs))


# ------------------------------------------------------------------------------------------------
# Decoding
# ------------------------------------------------------------------------------------------------

class Message:
    """One decoded netlink message; ``payload`` excludes the header and the padding."""

    __slots__ = ('type', 'flags', 'seq', 'pid', 'payload')

    def __init__(self, msg_type: int, flags: int, seq: int, pid: int, payload: bytes) -> None:
        self.type = msg_type
        self.flags = flags
        self.seq = seq
        self.pid = pid
        self.payload = payload

    def __repr__(self) -> str:
        return 'Message(type=%d, flags=%#x, seq=%d, pid=%d, %d bytes)' % (self.type, self.flags, self.seq, self.pid, len(self.payload))


def split_messages(data: bytes) -> t.List[Message]:
    """All netlink messages of one datagram (one recv() may carry several)."""
    out = []
    offset = 0
    end = len(data)
    while offset < end:
        if end - offset < NLMSG_HDRLEN:
            raise WireError('%d trailing bytes at offset %d are shorter than a netlink header' % (end - offset, offset))
        length, msg_type, flags, seq, pid = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSG_HDRLEN:
            raise WireError('message at offset %d has nlmsg_len %d, below the 16-byte header' % (offset, length))
        if length > end - offset:
            raise WireError('message at offset %d is truncated: nlmsg_len %d, %d bytes received' % (offset, length, end - offset))
        out.append(Message(msg_type, flags, seq, pid, bytes(data[offset + NLMSG_HDRLEN:offset + length])))
        offset += align(length)
    return out


def parse_attrs(data: bytes) -> t.List[t.Tuple[int, bytes]]:
    """The attributes of a payload as ``(type, payload)`` pairs, in order (multi-attr keeps every
    occurrence). ``NLA_F_NESTED`` and ``NLA_F_NET_BYTEORDER`` are masked off the type."""
    out = []
    offset = 0
    end = len(data)
    while offset < end:
        if end - offset < NLA_HDRLEN:
            raise WireError('%d trailing bytes at attribute offset %d are shorter than an attribute header' % (end - offset, offset))
        length, attr_type = NLATTR.unpack_from(data, offset)
        if length < NLA_HDRLEN:
            raise WireError('attribute at offset %d has nla_len %d, below the 4-byte header' % (offset, length))
        if length > end - offset:
            raise WireError('attribute %d at offset %d is truncated: nla_len %d, %d bytes left' % (attr_type & NLA_TYPE_MASK, offset, length, end - offset))
        out.append((attr_type & NLA_TYPE_MASK, bytes(data[offset + NLA_HDRLEN:offset + length])))
        offset += align(length)
    return out


def get_u16(payload: bytes, what: str) -> int:
    if len(payload) != U16.size:
        raise WireError('%s: a u16 attribute has %d bytes' % (what, len(payload)))
    return U16.unpack(payload)[0]


def get_u32(payload: bytes, what: str) -> int:
    if len(payload) != U32.size:
        raise WireError('%s: a u32 attribute has %d bytes' % (what, len(payload)))
    return U32.unpack(payload)[0]


def get_string(payload: bytes) -> str:
    """A string attribute, with or without its NUL terminator; undecodable bytes are replaced."""
    return payload.split(b'\0', 1)[0].decode('utf-8', 'replace')


def parse_genl(payload: bytes) -> t.Tuple[int, int, t.List[t.Tuple[int, bytes]]]:
    """``(cmd, version, attributes)`` of a generic-netlink message payload."""
    if len(payload) < GENL_HDRLEN:
        raise WireError('generic netlink payload of %d bytes is shorter than the 4-byte genlmsghdr' % len(payload))
    cmd, version, _reserved = GENLMSGHDR.unpack_from(payload)
    return cmd, version, parse_attrs(payload[GENL_HDRLEN:])


def _clean_text(raw: bytes) -> str:
    text = get_string(raw)
    text = ''.join(ch if ch.isprintable() else ' ' for ch in text)
    return ' '.join(text.split())[:200]


def _ext_ack_message(tlvs: bytes) -> t.Optional[str]:
    for attr_type, value in parse_attrs(tlvs):
        if attr_type == NLMSGERR_ATTR_MSG:
            return _clean_text(value) or None
    return None


def parse_error(msg: Message) -> t.Tuple[int, t.Optional[str]]:
    """``(errno, extended-ack message)`` of an ``NLMSG_ERROR``; errno 0 is an acknowledgement.

    Layout: ``int error`` (negative errno), the request's nlmsghdr, the request's payload unless
    ``NLM_F_CAPPED``, then extended-ACK attributes when ``NLM_F_ACK_TLVS`` is set."""
    data = msg.payload
    if len(data) < S32.size + NLMSG_HDRLEN:
        raise WireError('NLMSG_ERROR payload of %d bytes is shorter than struct nlmsgerr' % len(data))
    code = S32.unpack_from(data)[0]
    if code > 0:
        raise WireError('NLMSG_ERROR carries a positive error %d' % code)
    text = None
    if msg.flags & NLM_F_ACK_TLVS:
        offset = S32.size + NLMSG_HDRLEN
        if not msg.flags & NLM_F_CAPPED:
            orig_len = NLMSGHDR.unpack_from(data, S32.size)[0]
            if orig_len < NLMSG_HDRLEN:
                raise WireError('NLMSG_ERROR echoes a request header with nlmsg_len %d' % orig_len)
            offset = S32.size + align(orig_len)
        if offset > len(data):
            raise WireError('NLMSG_ERROR extended-ACK attributes start past its end')
        text = _ext_ack_message(data[offset:])
    return -code, text


def parse_done(msg: Message) -> t.Tuple[int, t.Optional[str]]:
    """``(errno, extended-ack message)`` of an ``NLMSG_DONE``: a dump that failed part-way ends with
    its negative errno here. A DONE without payload (old kernels, some peers) means success."""
    data = msg.payload
    if not data:
        return 0, None
    if len(data) < S32.size:
        raise WireError('NLMSG_DONE payload of %d bytes is shorter than its int error' % len(data))
    code = S32.unpack_from(data)[0]
    if code > 0:
        raise WireError('NLMSG_DONE carries a positive error %d' % code)
    text = None
    if msg.flags & NLM_F_ACK_TLVS:
        text = _ext_ack_message(data[S32.size:])
    return -code, text


class FamilyInfo:
    """What nlctrl says about a family: id, name, version, max attribute, and ops ``{cmd: flags}``."""

    __slots__ = ('id', 'name', 'version', 'maxattr', 'ops')

    def __init__(self, family_id: int, name: str, version: int, maxattr: int, ops: t.Dict[int, int]) -> None:
        self.id = family_id
        self.name = name
        self.version = version
        self.maxattr = maxattr
        self.ops = ops


def parse_family(attrs: t.List[t.Tuple[int, bytes]]) -> FamilyInfo:
    """The attributes of an nlctrl ``CTRL_CMD_NEWFAMILY`` reply. ``CTRL_ATTR_OPS`` is a nest of
    nests (one per op, numbered from 1, sent without ``NLA_F_NESTED`` by the kernel), each holding
    ``CTRL_ATTR_OP_ID`` and ``CTRL_ATTR_OP_FLAGS``."""
    family_id = None
    name = None
    version = 0
    maxattr = 0
    ops = {}  # type: t.Dict[int, int]
    for attr_type, value in attrs:
        if attr_type == CTRL_ATTR_FAMILY_ID:
            family_id = get_u16(value, 'CTRL_ATTR_FAMILY_ID')
        elif attr_type == CTRL_ATTR_FAMILY_NAME:
            name = get_string(value)
        elif attr_type == CTRL_ATTR_VERSION:
            version = get_u32(value, 'CTRL_ATTR_VERSION')
        elif attr_type == CTRL_ATTR_MAXATTR:
            maxattr = get_u32(value, 'CTRL_ATTR_MAXATTR')
        elif attr_type == CTRL_ATTR_OPS:
            for _index, op in parse_attrs(value):
                op_id = None
                op_flags = 0
                for op_attr, op_value in parse_attrs(op):
                    if op_attr == CTRL_ATTR_OP_ID:
                        op_id = get_u32(op_value, 'CTRL_ATTR_OP_ID')
                    elif op_attr == CTRL_ATTR_OP_FLAGS:
                        op_flags = get_u32(op_value, 'CTRL_ATTR_OP_FLAGS')
                if op_id is None:
                    raise WireError('an entry of CTRL_ATTR_OPS has no CTRL_ATTR_OP_ID')
                ops[op_id] = op_flags
    if family_id is None or name is None:
        raise WireError('the nlctrl family description lacks CTRL_ATTR_FAMILY_ID or CTRL_ATTR_FAMILY_NAME')
    if family_id < NLMSG_MIN_TYPE:
        raise WireError('family id %d is a netlink control message type' % family_id)
    return FamilyInfo(family_id, name, version, maxattr, ops)


class DumpAssembler:
    """Joins the messages of one ``read`` dump into objects.

    device-evidence: a message carrying ``type`` starts an object and must also carry
    ``generation`` and ``length``; ``val`` chunks (several per message allowed) follow until
    ``length`` bytes. pci-tsm: ``type`` starts an object; its chunks run until the next ``type`` or
    the end of the dump. Every object must be one that was asked for, once; sizes are bounded.
    """

    def __init__(self, family: Family, mask: int, max_total: int) -> None:
        self.family = family
        self.mask = mask
        self.max_total = max_total
        self.objects = {}  # type: t.Dict[int, bytearray]
        self.lengths = {}  # type: t.Dict[int, t.Optional[int]]
        self.generation = None  # type: t.Optional[int]
        self.current = None  # type: t.Optional[int]
        self.total = 0
        self.generation_changed = None  # type: t.Optional[t.Tuple[int, int]]

    def _name(self, number: int) -> str:
        return TYPE_NAMES[number] if 0 <= number < len(TYPE_NAMES) else 'type %d' % number

    def _close_current(self) -> None:
        if self.current is None:
            return
        expected = self.lengths[self.current]
        got = len(self.objects[self.current])
        if expected is not None and got != expected:
            raise WireError('object %s is truncated: length %d announced, %d bytes received' % (self._name(self.current), expected, got))
        self.current = None

    def feed(self, payload: bytes) -> None:
        cmd, _version, attrs = parse_genl(payload)
        if cmd != self.family.read_cmd:
            raise WireError('dump message has command %d, not %s read (%d)' % (cmd, self.family.name, self.family.read_cmd))
        numbers = self.family.attrs
        a_type = numbers['type']
        a_gen = numbers.get('generation')
        a_len = numbers.get('length')
        a_val = numbers['val']
        obj_type = generation = length = None
        chunks = []
        for attr_type, value in attrs:
            if attr_type == a_type:
                if obj_type is not None:
                    raise WireError('one dump message starts two objects')
                obj_type = get_u32(value, 'type')
            elif attr_type == a_gen:
                generation = get_u32(value, 'generation')
            elif attr_type == a_len:
                length = get_u32(value, 'length')
            elif attr_type == a_val:
                chunks.append(value)
            # other attributes (e.g. device-evidence 'count') are not needed and are skipped
        if obj_type is not None:
            self._start(obj_type, generation, length)
        elif generation is not None or length is not None:
            raise WireError('generation or length outside the first message of an object')
        for chunk in chunks:
            self._append(chunk)

    def _start(self, obj_type: int, generation: t.Optional[int], length: t.Optional[int]) -> None:
        self._close_current()
        name = self._name(obj_type)
        if not 0 <= obj_type < len(TYPE_NAMES):
            raise WireError('unknown object type %d' % obj_type)
        if not self.mask & (1 << obj_type):
            raise WireError('object %s was not asked for' % name)
        if obj_type in self.objects:
            raise WireError('object %s sent twice' % name)
        if 'generation' in self.family.attrs:
            if generation is None or length is None:
                raise WireError('object %s starts without generation and length' % name)
            if length > MAX_OBJECT_SIZE:
                raise EvidenceError('object %s announces %d bytes, over the %d-byte max-object-size' % (name, length, MAX_OBJECT_SIZE),
                                    attribute='netlink', errno=_errno.EFBIG, remedy=PROTO_REMEDY)
            if self.total + length > self.max_total:
                raise EvidenceError('the reply announces more than %d bytes in all' % self.max_total,
                                    attribute='netlink', errno=_errno.EFBIG, remedy='read fewer object types per call')
            self.total += length
            if self.generation is None:
                self.generation = generation
            elif generation != self.generation and self.generation_changed is None:
                self.generation_changed = (self.generation, generation)
        self.objects[obj_type] = bytearray()
        self.lengths[obj_type] = length
        self.current = obj_type

    def _append(self, chunk: bytes) -> None:
        if self.current is None:
            raise WireError('a val chunk arrived before any object type')
        data = self.objects[self.current]
        expected = self.lengths[self.current]
        if expected is not None:
            if len(data) + len(chunk) > expected:
                raise WireError('object %s overruns its announced length %d' % (self._name(self.current), expected))
        else:
            if len(data) + len(chunk) > MAX_OBJECT_SIZE:
                raise EvidenceError('object %s exceeds the %d-byte max-object-size' % (self._name(self.current), MAX_OBJECT_SIZE),
                                    attribute='netlink', errno=_errno.EFBIG, remedy=PROTO_REMEDY)
            self.total += len(chunk)
            if self.total > self.max_total:
                raise EvidenceError('the reply carries more than %d bytes in all' % self.max_total,
                                    attribute='netlink', errno=_errno.EFBIG, remedy='read fewer object types per call')
        data.extend(chunk)

    def finish(self) -> t.Tuple[t.Optional[int], t.Dict[int, bytes]]:
        """At NLMSG_DONE: the generation and the complete objects, in type order."""
        self._close_current()
        missing = [self._name(n) for n in range(len(TYPE_NAMES)) if self.mask & (1 << n) and n not in self.objects]
        if missing:
            raise WireError('the dump ended without object(s) %s' % ', '.join(missing))
        return self.generation, dict((n, bytes(self.objects[n])) for n in sorted(self.objects))


# ------------------------------------------------------------------------------------------------
# The client
# ------------------------------------------------------------------------------------------------

class EvidenceClient:
    """Reads device evidence over generic netlink; one socket per client, reused across calls.

    ``endpoint`` is ``netlink`` (the kernel) or ``unix:/path`` (a simulator host socket).
    ``timeout`` bounds each wait for a reply datagram, in seconds. ``retries`` is how many times a
    read is repeated after the evidence changed during it (EAGAIN, ``NLM_F_DUMP_INTR``, or objects
    of one reply with different generations); the read is tried at most ``1 + retries`` times.
    """

    MAX_TOTAL_SIZE = 64 * 1024 * 1024   # all objects of one read together
    RECV_BUFFER = 64 * 1024             # grows on demand up to MAX_DATAGRAM (kernel dump skbs are <= 32 KiB)
    MAX_DATAGRAM = 1024 * 1024

    def __init__(self, endpoint: str = 'netlink', timeout: float = 5.0, retries: int = 3) -> None:
        if not isinstance(endpoint, str) or not (endpoint == 'netlink' or (endpoint.startswith('unix:') and len(endpoint) > 5)):
            raise _error('evidence endpoint %r is neither netlink nor unix:PATH' % (endpoint,), None, 'evidence endpoint', _errno.EINVAL,
                         "set the evidence endpoint option to 'netlink' (the kernel) or 'unix:/path/to/host.sock' (the simulator)")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
            raise _error('evidence timeout %r is not a positive number of seconds' % (timeout,), None, 'evidence endpoint', _errno.EINVAL,
                         'pass a timeout above 0')
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise _error('evidence retries %r is not a non-negative integer' % (retries,), None, 'evidence endpoint', _errno.EINVAL,
                         'pass retries >= 0')
        self.endpoint = endpoint
        self.timeout = float(timeout)
        self.retries = retries
        self._path = endpoint[5:] if endpoint != 'netlink' else None
        self._sock = None  # type: t.Optional[socket.socket]
        self._port = 0
        self._seq = 0
        self._buf = bytearray(self.RECV_BUFFER)
        self._family = None  # type: t.Optional[Family]
        self._info = None  # type: t.Optional[FamilyInfo]

    # -- public API ----------------------------------------------------------------------------------

    @property
    def family(self) -> str:
        """The name of the evidence family in use (resolved on first use: device-evidence, then pci-tsm)."""
        return self._resolve(None, 'evidence family lookup').name

    @property
    def has_validate(self) -> bool:
        """Whether the resolved family lists the ``validate`` operation."""
        family = self._resolve(None, 'evidence family lookup')
        return self._has_op(family.validate_cmd)

    def read(self, dev_name: str, types: t.List[str], nonce: t.Optional[bytes] = None, digest: bool = False) -> t.Dict[str, t.Any]:
        """Read evidence objects of one device.

        Returns ``{"generation": int, "family": str, "objects": {type name: bytes}}``; with
        ``digest=True`` each object is the TSM's digest of it (empty when the TSM has none). The
        ``pci-tsm`` family carries no generation: ``generation`` is None there.
        """
        op = 'evidence read'
        self._check_dev(dev_name, op)
        mask = self._mask(dev_name, types, op)
        family = self._resolve(dev_name, op)
        if nonce is not None:
            if not isinstance(nonce, (bytes, bytearray)) or not 1 <= len(nonce) <= family.max_nonce:
                raise _error('nonce must be 1 to %d bytes for the %s family, got %s'
                             % (family.max_nonce, family.name, '%d bytes' % len(nonce) if isinstance(nonce, (bytes, bytearray)) else type(nonce).__name__),
                             dev_name, op, _errno.EINVAL, 'pass a shorter nonce, or none')
            nonce = bytes(nonce)
        flags = FLAG_DIGEST if digest else 0
        last = None  # type: t.Optional[EvidenceError]
        for _attempt in range(1 + self.retries):
            try:
                generation, objects = self._read_once(family, dev_name, mask, flags, nonce, op)
            except EvidenceError as exc:
                if not getattr(exc, 'retryable', False):
                    raise
                last = exc
                continue
            return {
                'generation': generation,
                'family': family.name,
                'objects': dict((TYPE_NAMES[n], data) for n, data in objects.items()),
            }
        raise _error('the evidence changed during each of %d read attempts (last: %s)' % (1 + self.retries, getattr(last, 'cause', last)),
                     dev_name, op, _errno.EAGAIN,
                     'the device is being re-measured or its interface is flapping: check it is not in TDISP ERROR, then read again later')

    def generation(self, dev_name: str) -> int:
        """The current evidence generation, by the cheapest read: the digest of the ``report`` object."""
        result = self.read(dev_name, ['report'], digest=True)
        if result['generation'] is None:
            raise _error('the %s netlink family reports no evidence generation' % result['family'], dev_name, 'evidence generation',
                         _errno.EOPNOTSUPP, 'pinning a verified generation needs the device-evidence family (a newer kernel)')
        return result['generation']

    def validate(self, dev_name: str, generation: int) -> t.Optional[bool]:
        """Ask the kernel to record ``generation`` as validated (device-evidence ``validate``).

        Returns None when the family has no ``validate`` operation, True when the kernel accepted
        it; raises ``EvidenceError`` when the kernel refuses (e.g. the generation changed)."""
        op = 'evidence validate'
        self._check_dev(dev_name, op)
        if isinstance(generation, bool) or not isinstance(generation, int) or not 0 <= generation <= 0xFFFFFFFF:
            raise _error('generation %r is not a u32' % (generation,), dev_name, op, _errno.EINVAL, 'pass the generation the evidence was read at')
        family = self._resolve(dev_name, op)
        if family.validate_cmd is None or not self._has_op(family.validate_cmd):
            return None
        numbers = family.attrs
        attrs = [nla_string(numbers['subsys'], SUBSYS), nla_string(numbers['dev-name'], dev_name), nla_u32(numbers['generation'], generation)]
        family_id = self._family_id()
        seq = self._request(family_id, NLM_F_REQUEST | NLM_F_ACK, family.validate_cmd, attrs, dev_name, op)
        clean = False
        try:
            for msg in self._messages(seq, dev_name, op):
                if msg.type == NLMSG_ERROR:
                    code, text = parse_error(msg)
                    clean = True
                    if code:
                        raise self._refusal(code, text, dev_name, op, generation=generation)
                    return True
                if msg.type != family_id:
                    raise WireError('message type %d in a validate reply' % msg.type)
                parse_genl(msg.payload)  # the (empty) reply is checked, not used
            raise WireError('no reply')  # pragma: no cover - _messages only ends by raising
        except WireError as exc:
            raise self._wire(exc, dev_name, op)
        finally:
            if not clean:
                self._reset()

    def close(self) -> None:
        """Close the socket. The client reopens it if used again."""
        self._reset()

    def __enter__(self) -> 'EvidenceClient':
        return self

    def __exit__(self, *exc_info: t.Any) -> None:
        self.close()

    # -- family resolution -----------------------------------------------------------------------------

    def _family_id(self) -> int:
        if self._info is None:  # pragma: no cover - _resolve runs first
            raise WireError('family not resolved')
        return self._info.id

    def _has_op(self, cmd: t.Optional[int]) -> bool:
        return cmd is not None and self._info is not None and cmd in self._info.ops

    def _resolve(self, dev: t.Optional[str], op: str) -> Family:
        if self._family is not None:
            return self._family
        for family in FAMILIES:
            try:
                info = self._get_family(family.name, dev, op)
            except EvidenceError as exc:
                if getattr(exc, 'peer_errno', None) == _errno.ENOENT:
                    continue
                raise
            if info.ops and family.read_cmd not in info.ops:
                raise _error('the %s family lists no read operation (ops: %s)' % (family.name, ', '.join(str(o) for o in sorted(info.ops))),
                             dev, op, _errno.EOPNOTSUPP, 'this kernel\'s evidence ABI is not one coco.tdisp knows: report it with the kernel version')
            self._family = family
            self._info = info
            return family
        raise _error('no generic netlink family device-evidence or pci-tsm on %s' % self.endpoint, dev, op, _errno.ENOENT, NO_FAMILY_REMEDY)

    def _get_family(self, name: str, dev: t.Optional[str], op: str) -> FamilyInfo:
        seq = self._request(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, CTRL_CMD_GETFAMILY, [nla_string(CTRL_ATTR_FAMILY_NAME, name)], dev, op)
        info = None
        clean = False
        try:
            for msg in self._messages(seq, dev, op):
                if msg.type == NLMSG_ERROR:
                    code, text = parse_error(msg)
                    clean = True
                    if code:
                        raise self._refusal(code, text, dev, op, family=name)
                    if info is None:
                        raise WireError('nlctrl acknowledged GETFAMILY %s without describing it' % name)
                    return info
                if msg.type != GENL_ID_CTRL:
                    raise WireError('message type %d in an nlctrl reply' % msg.type)
                cmd, _version, attrs = parse_genl(msg.payload)
                if cmd != CTRL_CMD_NEWFAMILY:
                    raise WireError('nlctrl replied with command %d, not NEWFAMILY' % cmd)
                info = parse_family(attrs)
                if info.name != name:
                    raise WireError('nlctrl described family %r when asked for %r' % (info.name, name))
            raise WireError('no reply')  # pragma: no cover - _messages only ends by raising
        except WireError as exc:
            raise self._wire(exc, dev, op)
        finally:
            if not clean:
                self._reset()

    # -- the read dump ---------------------------------------------------------------------------------

    def _read_once(self, family: Family, dev: str, mask: int, flags: int, nonce: t.Optional[bytes], op: str) -> t.Tuple[t.Optional[int], t.Dict[int, bytes]]:
        numbers = family.attrs
        attrs = [nla_u32(numbers['type-mask'], mask), nla_u32(numbers['flags'], flags)]
        if 'subsys' in numbers:
            attrs.append(nla_string(numbers['subsys'], SUBSYS))
        attrs.append(nla_string(numbers['dev-name'], dev))
        if nonce is not None:
            attrs.append(nla(numbers['nonce'], nonce))
        family_id = self._family_id()
        seq = self._request(family_id, NLM_F_REQUEST | NLM_F_DUMP, family.read_cmd, attrs, dev, op)
        assembler = DumpAssembler(family, mask, self.MAX_TOTAL_SIZE)
        interrupted = False
        received = 0
        clean = False
        try:
            for msg in self._messages(seq, dev, op):
                received += NLMSG_HDRLEN + len(msg.payload)
                if received > self.MAX_TOTAL_SIZE + MAX_OBJECT_SIZE:
                    raise _error('the reply exceeds %d bytes' % (self.MAX_TOTAL_SIZE + MAX_OBJECT_SIZE), dev, op, _errno.EFBIG, PROTO_REMEDY)
                if msg.flags & NLM_F_DUMP_INTR:
                    interrupted = True
                if msg.type == NLMSG_ERROR:
                    code, text = parse_error(msg)
                    clean = True
                    if not code:
                        raise WireError('an acknowledgement arrived inside a dump')
                    raise self._refusal(code, text, dev, op, nonce=nonce is not None)
                if msg.type == NLMSG_DONE:
                    code, text = parse_done(msg)
                    clean = True
                    if code:
                        raise self._refusal(code, text, dev, op, nonce=nonce is not None)
                    if interrupted:
                        raise self._retryable('the dump was interrupted by a change (NLM_F_DUMP_INTR)', dev, op)
                    generation, objects = assembler.finish()
                    if assembler.generation_changed is not None:
                        raise self._retryable('objects of one reply have generations %d and %d' % assembler.generation_changed, dev, op)
                    return generation, objects
                if msg.type == NLMSG_OVERRUN:
                    raise WireError('NLMSG_OVERRUN: data lost')
                if msg.type != family_id:
                    raise WireError('message type %d in a %s dump (family id %d)' % (msg.type, family.name, family_id))
                assembler.feed(msg.payload)
            raise WireError('no reply')  # pragma: no cover - _messages only ends by raising
        except WireError as exc:
            raise self._wire(exc, dev, op)
        except EvidenceError as exc:
            if exc.device is None:
                raise _error(exc.cause, dev, op, exc.errno, exc.remedy)
            raise
        finally:
            if not clean:
                self._reset()

    # -- errors ------------------------------------------------------------------------------------------

    @staticmethod
    def _wire(exc: WireError, dev: t.Optional[str], op: str) -> EvidenceError:
        return _error('malformed netlink reply: %s' % exc.problem, dev, op, _errno.EPROTO, PROTO_REMEDY)

    @staticmethod
    def _retryable(cause: str, dev: str, op: str) -> EvidenceError:
        err = _error(cause, dev, op, _errno.EAGAIN, 'read the evidence again')
        err.retryable = True  # type: ignore[attr-defined]
        return err

    def _refusal(self, code: int, text: t.Optional[str], dev: t.Optional[str], op: str, nonce: bool = False,
                 generation: t.Optional[int] = None, family: t.Optional[str] = None) -> EvidenceError:
        """An errno the peer returned, as an EvidenceError with the remedy for this operation."""
        peer = 'the kernel' if self._path is None else 'the evidence endpoint'
        if family is not None:
            peer = 'nlctrl'
        remedy = _REMEDIES.get(code)
        cause = None  # type: t.Optional[str]
        retryable = False
        if family is not None:
            cause = 'nlctrl lookup of the %s family failed' % family
        if code == _errno.EAGAIN:
            if generation is not None:
                cause = 'the evidence changed since generation %d' % generation
                remedy = 'read and verify the evidence again, then validate the new generation'
            else:
                cause = 'the evidence changed during the read'
                remedy = 'read the evidence again'
                retryable = True
        elif code == _errno.EOPNOTSUPP:
            if nonce:
                cause = 'nonce-driven evidence refresh is not supported'
                remedy = 'retry without a nonce if evidence gathered at lock time is acceptable'
            else:
                remedy = 'the kernel has no evidence provider for the %s subsystem, or lacks this operation' % SUBSYS
        elif remedy is None:
            remedy = 'see the errno; if it persists, report it with the kernel version'
        if cause is None:
            cause = 'refused by %s' % peer
            said = ': %s' % text if text else ''
        else:
            said = ' (%s: %s)' % (peer, text) if text else ''
        err = _error(cause + said, dev, op, code, remedy)
        err.peer_errno = code  # type: ignore[attr-defined]
        err.retryable = retryable  # type: ignore[attr-defined]
        return err

    # -- argument checks -----------------------------------------------------------------------------

    @staticmethod
    def _check_dev(dev_name: t.Any, op: str) -> None:
        if not isinstance(dev_name, str) or not dev_name or '\0' in dev_name or len(dev_name.encode('utf-8')) > MAX_DEV_NAME:
            raise _error('device name %r is not a 1 to %d character name' % (dev_name, MAX_DEV_NAME), None, op, _errno.EINVAL,
                         'pass the PCI device name, e.g. 0000:41:00.0')

    @staticmethod
    def _mask(dev: str, types: t.Any, op: str) -> int:
        if isinstance(types, (str, bytes)) or not isinstance(types, (list, tuple, set, frozenset)) or not types:
            raise _error('types must be a non-empty list of evidence object types, got %r' % (types,), dev, op, _errno.EINVAL,
                         'name types from: %s' % ', '.join(TYPE_NAMES))
        mask = 0
        for name in types:
            if not isinstance(name, str) or name not in TYPE_NUMBERS:
                raise _error('unknown evidence object type %r' % (name,), dev, op, _errno.EINVAL, 'name types from: %s' % ', '.join(TYPE_NAMES))
            mask |= 1 << TYPE_NUMBERS[name]
        return mask

    # -- socket ---------------------------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = self._seq + 1 if self._seq < 0xFFFFFFFF else 1
        return self._seq

    def _reset(self) -> None:
        sock = self._sock
        self._sock = None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _os_error(self, exc: OSError, dev: t.Optional[str], op: str, doing: str) -> EvidenceError:
        code = exc.errno
        where = self.endpoint
        if code in (_errno.ENOENT, _errno.ECONNREFUSED) and self._path is not None:
            return _error('evidence endpoint %s is absent (not listening)' % where, dev, op, code,
                          'start the simulator for this host, or fix the evidence endpoint option')
        if code in (_errno.EACCES, _errno.EPERM):
            return _error('%s %s: permission denied' % (doing, where), dev, op, code,
                          CAP_REMEDY if self._path is None else 'run as a user that may open the socket (become: true)')
        if code in (_errno.EAFNOSUPPORT, _errno.EPROTONOSUPPORT):
            return _error('this system has no generic netlink sockets', dev, op, code, 'run on Linux with CONFIG_NETLINK / generic netlink')
        if code in (_errno.ECONNRESET, _errno.EPIPE, _errno.ENOTCONN):
            return _error('evidence endpoint %s closed the connection' % where, dev, op, code, 'check that the evidence endpoint is running, then retry')
        return _error('%s %s failed: %s' % (doing, where, exc.strerror or exc), dev, op, code, 'check the evidence endpoint option and retry')

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

    def _request(self, msg_type: int, flags: int, cmd: int, attrs: t.List[bytes], dev: t.Optional[str], op: str) -> int:
        """Send one generic-netlink request on the (re)opened socket; returns its sequence number.

        A simulator connection that the endpoint closed since the last call (it restarted, or its
        socket was removed) is reopened once before the error is reported."""
        fresh = self._sock is None
        sock = self._open(dev, op)
        seq = self._next_seq()
        data = genlmsg(msg_type, flags, seq, self._port, cmd, attrs)
        try:
            sent = sock.send(data)
        except socket.timeout:
            self._reset()
            raise _error('sending to %s timed out after %.1f s' % (self.endpoint, self.timeout), dev, op, _errno.ETIMEDOUT,
                         'check that the evidence endpoint is alive')
        except OSError as exc:
            self._reset()
            if not fresh and self._path is not None and exc.errno in (_errno.EPIPE, _errno.ECONNRESET, _errno.ENOTCONN):
                return self._request(msg_type, flags, cmd, attrs, dev, op)
            raise self._os_error(exc, dev, op, 'sending to')
        if sent != len(data):
            self._reset()
            raise _error('sent %d of %d bytes to %s' % (sent, len(data), self.endpoint), dev, op, _errno.EMSGSIZE, PROTO_REMEDY)
        return seq

    def _recv(self, dev: t.Optional[str], op: str) -> bytes:
        sock = self._sock
        if sock is None:  # pragma: no cover - callers always send first
            sock = self._open(dev, op)
        try:
            while True:
                size = sock.recv_into(self._buf, len(self._buf), socket.MSG_PEEK | socket.MSG_TRUNC)
                if size > self.MAX_DATAGRAM:
                    raise _error('a reply datagram of %d bytes exceeds %d' % (size, self.MAX_DATAGRAM), dev, op, _errno.EMSGSIZE, PROTO_REMEDY)
                if size > len(self._buf):
                    self._buf = bytearray(size)
                nbytes, _ancdata, msg_flags, address = sock.recvmsg_into([self._buf])
                if nbytes == 0:
                    raise OSError(_errno.ECONNRESET, 'connection closed')
                if msg_flags & socket.MSG_TRUNC:
                    raise _error('a reply datagram was truncated', dev, op, _errno.EMSGSIZE, PROTO_REMEDY)
                if self._path is None and isinstance(address, tuple) and address and address[0] != 0:
                    continue  # not from the kernel (another process unicast to our port): ignore
                return bytes(self._buf[:nbytes])
        except socket.timeout:
            raise _error('no reply from %s within %.1f s' % (self.endpoint, self.timeout), dev, op, _errno.ETIMEDOUT,
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
