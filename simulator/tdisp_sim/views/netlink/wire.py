"""The netlink wire format the evidence endpoint speaks: constants, the two families, encoding
and decoding of messages and attributes (include/uapi/linux/netlink.h, genetlink.h; abi §8)."""

from __future__ import annotations

import errno
import struct
from typing import Any, Dict, List, Optional, Tuple

from ...kernel import EVIDENCE_TYPES

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

TYPES = EVIDENCE_TYPES
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


def parse_genl(req: Request) -> Tuple[int, List[Tuple[int, bytes]]]:
    if len(req.payload) < 4:
        raise Invalid(errno.EINVAL, "message shorter than the generic netlink header")
    cmd = req.payload[0]
    return cmd, parse_attrs(req.payload[4:])


def check_policy(fam: Dict[str, Any], op: str, attrs: List[Tuple[int, bytes]]) -> Dict[str, bytes]:
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


def u32(value: bytes) -> int:
    return struct.unpack("=I", value)[0]


def name_attr(attrs: Dict[str, bytes], key: str, missing: str) -> str:
    """nla_strscpy() into a 32-byte buffer: the string up to its NUL; 32 bytes or more is -E2BIG."""
    if key not in attrs:
        raise Invalid(errno.EINVAL, missing)
    raw = attrs[key].split(b"\0", 1)[0]
    if len(raw) >= NAME_LEN:
        raise Invalid(errno.EINVAL, "%s longer than %d bytes" % (key, NAME_LEN - 1))
    return raw.decode("utf-8", "replace")
