# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The netlink and generic-netlink wire codec (private; may change at any time).

Encoders and decoders for netlink messages, generic-netlink headers, attributes, the
``NLMSG_ERROR`` / ``NLMSG_DONE`` payloads and the nlctrl family description; pure functions over
bytes, with no socket and no knowledge of the evidence families (those are in
``netlink_families``). Sources:

* headers, flags, attribute layout and the nlctrl family: ``include/uapi/linux/netlink.h`` and
  ``include/uapi/linux/genetlink.h`` (torvalds/linux), and the kernel document
  ``Documentation/userspace-api/netlink/intro.rst`` (dumps end with ``NLMSG_DONE``; one ``recv()``
  may return several messages).
* errors of a running dump arrive as a negative errno in the ``NLMSG_DONE`` payload, followed by
  extended-ACK attributes when ``NLM_F_ACK_TLVS`` is set (kernel commit 4a19edb60d02 "netlink: Pass
  extack to dump handlers"); errors found before the dump starts arrive as ``NLMSG_ERROR``.
* ``NLM_F_DUMP_INTR`` marks an inconsistent dump (kernel commit 670dc2833d14).

Every decoding failure is a ``WireError``, an ``EvidenceError`` with errno EPROTO.
"""

from __future__ import annotations

import errno as _errno
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

PROTO_REMEDY = ('the reply is not the netlink wire format coco.tdisp expects: read again; '
                'if it persists, check the endpoint option and the kernel or simulator version')


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
