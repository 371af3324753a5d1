# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The generic-netlink evidence client: encoder and decoder tables from hand-written bytes, then every
path of the client against a fake in-process peer over socketpair(AF_UNIX, SOCK_SEQPACKET).

Netlink is host byte order; the hand-written vectors are little-endian (x86_64, aarch64).
"""

from __future__ import annotations

import errno
import socket
import struct
import threading
import typing as t

import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError
from ansible_collections.coco.tdisp.plugins.module_utils._evidence import netlink_dump
from ansible_collections.coco.tdisp.plugins.module_utils._evidence import netlink_wire as nl
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.constants import FLAG_DIGEST, MAX_OBJECT_SIZE
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.netlink import EvidenceClient
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.netlink_families import DEVICE_EVIDENCE, PCI_TSM, Family

DEV = '0000:41:00.0'
FID = 0x22          # the family id the fake kernel allocates to device-evidence
PCI_TSM_FID = 0x23  # ... and to pci-tsm

# ---------------------------------------------------------------------------------------------
# Encoding tables
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize('encoded, expected_hex', [
    (nl.nla(1, b''), '04000100'),
    (nl.nla(5, b'abc'), '07000500 61626300'),                      # nla_len 7 excludes the pad byte
    (nl.nla(6, b'\x01\x02\x03\x04'), '08000600 01020304'),
    (nl.nla_u16(1, 0x22), '06000100 2200 0000'),
    (nl.nla_u32(2, 0x601), '08000200 01060000'),
    (nl.nla_string(4, 'pci'), '08000400 70636900'),                 # NUL-terminated, fits exactly
    (nl.nla_string(5, DEV), '11000500' + DEV.encode().hex() + '00 000000'),
    (nl.nla_nested(6, [nl.nla_u32(1, 1)]), '0c000680 08000100 01000000'),   # NLA_F_NESTED = 0x8000
    (nl.nla_nested(6, [nl.nla_u32(1, 1)], flag=False), '0c000600 08000100 01000000'),
])
def test_attribute_encoding(encoded, expected_hex):
    assert encoded.hex() == expected_hex.replace(' ', '')


def test_read_request_encoding():
    msg = nl.genlmsg(FID, nl.NLM_F_REQUEST | nl.NLM_F_DUMP, 7, 0x1234, 1,
                     [nl.nla_u32(2, 0x600), nl.nla_u32(3, 1), nl.nla_string(4, 'pci'), nl.nla_string(5, DEV)])
    expected = (
        '40000000'   # nlmsg_len 64 = 16 + 4 + 8 + 8 + 8 + 20
        '2200'       # nlmsg_type = family id
        '0103'       # NLM_F_REQUEST | NLM_F_DUMP (0x301)
        '07000000'   # seq
        '34120000'   # port id
        '01010000'   # genlmsghdr: cmd 1 (read), version 1, reserved
        '08000200 00060000'    # type-mask: measurements | report
        '08000300 01000000'    # flags: digest
        '08000400 70636900'    # subsys "pci\0"
        '11000500 303030303a34313a30302e3000 000000')   # dev-name, padded
    assert msg.hex() == expected.replace(' ', '')


def test_message_padding_is_not_counted_in_nlmsg_len():
    msg = nl.nlmsg(0x10, 0, 1, 2, b'\x01')
    assert msg.hex() == '11000000 1000 0000 01000000 02000000 01 000000'.replace(' ', '')
    assert len(msg) == 20


# ---------------------------------------------------------------------------------------------
# Decoding tables
# ---------------------------------------------------------------------------------------------

# A real nlctrl reply (Linux 6.x, CTRL_CMD_GETFAMILY "nlctrl"), captured from a kernel: NEWFAMILY
# with the op list nested without NLA_F_NESTED, then the capped acknowledgement.
NLCTRL_REPLY = bytes.fromhex(
    '880000001000000001000000653a0000010200000b0002006e6c6374726c0000060001001000000008000300'
    '02000000080004000000000008000500000000002c000600140001000800010003000000080002000e000000'
    '14000200080001000a000000080002000c0000001c0007001800010008000200100000000b0001006e6f7469'
    '66790000')
NLCTRL_ACK = bytes.fromhex('240000000200000101000000653a000000000000200000001000050001000000653a0000')


def test_real_nlctrl_family_reply_decodes():
    (msg,) = nl.split_messages(NLCTRL_REPLY)
    assert (msg.type, msg.flags, msg.seq, msg.pid) == (nl.GENL_ID_CTRL, 0, 1, 0x3a65)
    cmd, version, attrs = nl.parse_genl(msg.payload)
    assert (cmd, version) == (nl.CTRL_CMD_NEWFAMILY, 2)
    info = nl.parse_family(attrs)
    assert (info.id, info.name, info.version, info.maxattr) == (0x10, 'nlctrl', 2, 0)
    assert info.ops == {3: 0x0e, 10: 0x0c}
    (ack,) = nl.split_messages(NLCTRL_ACK)
    assert ack.flags == nl.NLM_F_CAPPED
    assert nl.parse_error(ack) == (0, None)


def test_two_messages_in_one_datagram_with_padding_between():
    data = bytes.fromhex('19000000 2200 0200 09000000 01000000 01010000 05000a00 aa 000000'   # 25 bytes + 3 pad
                         '14000000 0300 0200 09000000 01000000 00000000')
    first, second = nl.split_messages(data)
    assert (first.type, first.flags, first.seq, first.pid) == (0x22, nl.NLM_F_MULTI, 9, 1)
    assert first.payload == bytes.fromhex('0101000005000a00aa')
    assert nl.parse_genl(first.payload) == (1, 1, [(10, b'\xaa')])
    assert second.type == nl.NLMSG_DONE
    assert nl.parse_done(second) == (0, None)


@pytest.mark.parametrize('data, problem', [
    (bytes.fromhex('1000000002000000'), 'shorter than a netlink header'),
    (bytes.fromhex('0c000000 0200 0000 01000000 01000000'), 'below the 16-byte header'),
    (bytes.fromhex('40000000 0200 0000 01000000 01000000 00000000'), 'truncated: nlmsg_len 64, 20 bytes received'),
])
def test_malformed_messages(data, problem):
    with pytest.raises(nl.WireError) as exc:
        nl.split_messages(data)
    assert problem in str(exc.value)
    assert exc.value.errno == errno.EPROTO
    assert isinstance(exc.value, EvidenceError)


@pytest.mark.parametrize('data, expected', [
    ('', []),
    ('04000100', [(1, b'')]),
    ('07000500616263 00', [(5, b'abc')]),
    ('05000a00ff000000 06000a00eeee0000', [(10, b'\xff'), (10, b'\xee\xee')]),   # multi-attr keeps both, in order
    ('0c000680 08000100 01000000', [(6, bytes.fromhex('0800010001000000'))]),   # NLA_F_NESTED masked
    ('08000640 01000000', [(6, b'\x01\x00\x00\x00')]),                            # NLA_F_NET_BYTEORDER masked
    ('07000500616263', [(5, b'abc')]),   # the last attribute may lack its padding
])
def test_attribute_decoding(data, expected):
    assert nl.parse_attrs(bytes.fromhex(data)) == expected


@pytest.mark.parametrize('data, problem', [
    ('0400', 'shorter than an attribute header'),
    ('02000100', 'below the 4-byte header'),
    ('0c000500 6162', 'truncated: nla_len 12, 6 bytes left'),
])
def test_malformed_attributes(data, problem):
    with pytest.raises(nl.WireError) as exc:
        nl.parse_attrs(bytes.fromhex(data))
    assert problem in str(exc.value)


def test_nested_ops_with_and_without_nested_flag():
    ops = (nl.nla_nested(1, [nl.nla_u32(nl.CTRL_ATTR_OP_ID, 1), nl.nla_u32(nl.CTRL_ATTR_OP_FLAGS, 0x0d)], flag=False)
           + nl.nla_nested(2, [nl.nla_u32(nl.CTRL_ATTR_OP_ID, 2), nl.nla_u32(nl.CTRL_ATTR_OP_FLAGS, 0x0b)]))
    attrs = nl.parse_attrs(nl.nla_string(2, 'device-evidence') + nl.nla_u16(1, FID) + nl.nla_nested(6, [ops]))
    info = nl.parse_family(attrs)
    assert (info.id, info.name, info.ops) == (FID, 'device-evidence', {1: 0x0d, 2: 0x0b})


@pytest.mark.parametrize('attrs, problem', [
    (nl.nla_string(2, 'x'), 'lacks CTRL_ATTR_FAMILY_ID'),
    (nl.nla_u16(1, 0x22), 'lacks CTRL_ATTR_FAMILY_ID or CTRL_ATTR_FAMILY_NAME'),
    (nl.nla_string(2, 'x') + nl.nla_u32(1, 0x22), 'a u16 attribute has 4 bytes'),
    (nl.nla_string(2, 'x') + nl.nla_u16(1, 3), 'is a netlink control message type'),
    (nl.nla_string(2, 'x') + nl.nla_u16(1, 0x22) + nl.nla(6, nl.nla(1, nl.nla_u32(2, 1))), 'no CTRL_ATTR_OP_ID'),
])
def test_malformed_family_descriptions(attrs, problem):
    with pytest.raises(nl.WireError) as exc:
        nl.parse_family(nl.parse_attrs(attrs))
    assert problem in str(exc.value)


@pytest.mark.parametrize('flags, payload, expected', [
    # capped, no TLVs
    (nl.NLM_F_CAPPED, 'edffffff' + '24000000220001030100000001000000', (errno.ENODEV, None)),
    # capped with an extended-ACK message
    (nl.NLM_F_CAPPED | nl.NLM_F_ACK_TLVS, 'eaffffff' + '24000000220001030100000001000000' + '0d000100' + b'bad mask\x00'.hex() + '000000',
     (errno.EINVAL, 'bad mask')),
    # not capped: the request payload (4 bytes here) is echoed before the TLVs
    (nl.NLM_F_ACK_TLVS, 'f0ffffff' + '14000000220001030100000001000000' + '01010000' + '0a000100' + b'busy\x00\x00'.hex() + '0000',
     (errno.EBUSY, 'busy')),
    # not capped, no TLVs
    (0, '00000000' + '14000000220001030100000001000000' + '01010000', (0, None)),
])
def test_error_message_decoding(flags, payload, expected):
    msg = nl.Message(nl.NLMSG_ERROR, flags, 1, 1, bytes.fromhex(payload))
    assert nl.parse_error(msg) == expected


@pytest.mark.parametrize('payload, problem', [
    ('edffffff', 'shorter than struct nlmsgerr'),
    ('01000000' + '14000000220001030100000001000000', 'positive error 1'),
])
def test_malformed_error_messages(payload, problem):
    with pytest.raises(nl.WireError) as exc:
        nl.parse_error(nl.Message(nl.NLMSG_ERROR, 0, 1, 1, bytes.fromhex(payload)))
    assert problem in str(exc.value)


@pytest.mark.parametrize('flags, payload, expected', [
    (nl.NLM_F_MULTI, '', (0, None)),
    (nl.NLM_F_MULTI, '00000000', (0, None)),
    (nl.NLM_F_MULTI, 'f5ffffff', (errno.EAGAIN, None)),
    (nl.NLM_F_MULTI | nl.NLM_F_ACK_TLVS, 'f5ffffff' + '21000100' + b'evidence updated during read\x00'.hex() + '000000',
     (errno.EAGAIN, 'evidence updated during read')),
    (nl.NLM_F_MULTI | nl.NLM_F_ACK_TLVS, 'faffffff' + '0a000100' + b'a\nb\x01c\x00'.hex() + '0000', (errno.ENXIO, 'a b c')),
])
def test_done_message_decoding(flags, payload, expected):
    assert nl.parse_done(nl.Message(nl.NLMSG_DONE, flags, 1, 1, bytes.fromhex(payload))) == expected


def test_malformed_done():
    with pytest.raises(nl.WireError):
        nl.parse_done(nl.Message(nl.NLMSG_DONE, 0, 1, 1, b'\x01\x00'))
    with pytest.raises(nl.WireError):
        nl.parse_done(nl.Message(nl.NLMSG_DONE, 0, 1, 1, b'\x01\x00\x00\x00'))


def test_genl_header_too_short():
    with pytest.raises(nl.WireError):
        nl.parse_genl(b'\x01\x01')


# ---------------------------------------------------------------------------------------------
# A fake kernel over socketpair(AF_UNIX, SOCK_SEQPACKET)
# ---------------------------------------------------------------------------------------------

def u32(value: int) -> bytes:
    return struct.pack('=I', value)


def family_reply(req: nl.Message, name: str, fid: int, ops: t.Dict[int, int]) -> bytes:
    op_nests = b''.join(nl.nla_nested(i + 1, [nl.nla_u32(nl.CTRL_ATTR_OP_ID, op), nl.nla_u32(nl.CTRL_ATTR_OP_FLAGS, flags)], flag=False)
                        for i, (op, flags) in enumerate(sorted(ops.items())))
    attrs = [nl.nla_string(nl.CTRL_ATTR_FAMILY_NAME, name), nl.nla_u16(nl.CTRL_ATTR_FAMILY_ID, fid), nl.nla_u32(nl.CTRL_ATTR_VERSION, 1),
             nl.nla_u32(nl.CTRL_ATTR_HDRSIZE, 0), nl.nla_u32(nl.CTRL_ATTR_MAXATTR, 10), nl.nla(nl.CTRL_ATTR_OPS, op_nests)]
    return nl.genlmsg(nl.GENL_ID_CTRL, 0, req.seq, req.pid, nl.CTRL_CMD_NEWFAMILY, attrs)


def ack(req: nl.Message, code: int = 0, text: t.Optional[str] = None) -> bytes:
    flags = nl.NLM_F_CAPPED
    tlvs = b''
    if text:
        flags |= nl.NLM_F_ACK_TLVS
        tlvs = nl.nla_string(nl.NLMSGERR_ATTR_MSG, text)
    body = struct.pack('=i', -code) + nl.NLMSGHDR.pack(nl.NLMSG_HDRLEN + len(req.payload), 0, 0, req.seq, req.pid) + tlvs
    return nl.nlmsg(nl.NLMSG_ERROR, flags, req.seq, req.pid, body)


def done(req: nl.Message, code: int = 0, text: t.Optional[str] = None, flags: int = nl.NLM_F_MULTI) -> bytes:
    tlvs = b''
    if text:
        flags |= nl.NLM_F_ACK_TLVS
        tlvs = nl.nla_string(nl.NLMSGERR_ATTR_MSG, text)
    return nl.nlmsg(nl.NLMSG_DONE, flags, req.seq, req.pid, struct.pack('=i', -code) + tlvs)


def data_msg(req: nl.Message, attrs: t.List[bytes], fid: int = FID, flags: int = nl.NLM_F_MULTI) -> bytes:
    return nl.genlmsg(fid, flags, req.seq, req.pid, 1, attrs)


def object_msgs(req: nl.Message, type_no: int, data: bytes, generation: int = 5, chunk: int = 4000, length: t.Optional[int] = None,
                family: Family = DEVICE_EVIDENCE, fid: int = FID) -> t.List[bytes]:
    """One object as the kernel sends it: type/generation/length and the first chunk, then one chunk per message."""
    a = family.attrs
    first = [nl.nla_u32(a['type'], type_no)]
    if 'generation' in a:
        first += [nl.nla_u32(a['generation'], generation), nl.nla_u32(a['length'], len(data) if length is None else length)]
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] or [b'']
    out = [data_msg(req, first + [nl.nla(a['val'], pieces[0])], fid)]
    out += [data_msg(req, [nl.nla(a['val'], p)], fid) for p in pieces[1:]]
    return out


def attrs_of(req: nl.Message) -> t.Dict[int, bytes]:
    return dict(nl.parse_genl(req.payload)[2])


READ_OPS = {1: nl.GENL_ADMIN_PERM | nl.GENL_CMD_CAP_DUMP | 0x08}
VALIDATE_OPS = {1: READ_OPS[1], 2: nl.GENL_ADMIN_PERM | nl.GENL_CMD_CAP_DO | 0x08}


class FakeKernel:
    """Answers nlctrl and the evidence family like the kernel. ``objects`` maps type numbers to bytes;
    ``on_read(req, attempt)`` may replace the dump reply (a list of datagrams)."""

    def __init__(self, families: t.Optional[t.Dict[str, t.Tuple[int, t.Dict[int, int]]]] = None,
                 objects: t.Optional[t.Dict[int, bytes]] = None, generation: int = 5, chunk: int = 4000,
                 on_read: t.Optional[t.Callable[[nl.Message, int], t.List[bytes]]] = None,
                 on_validate: t.Optional[t.Callable[[nl.Message], t.List[bytes]]] = None) -> None:
        self.families = {'device-evidence': (FID, VALIDATE_OPS)} if families is None else families
        self.objects = objects if objects is not None else {10: b'R' * 100}
        self.generation = generation
        self.chunk = chunk
        self.on_read = on_read
        self.on_validate = on_validate
        self.requests = []  # type: t.List[nl.Message]
        self.reads = 0
        self.connections = 0
        self.peers = []  # type: t.List[socket.socket]
        self.lock = threading.Lock()

    # the peer side of the socket pair
    def connect(self) -> socket.socket:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.connections += 1
        self.peers.append(theirs)
        threading.Thread(target=self._serve, args=(theirs,), daemon=True).start()
        return mine

    def _serve(self, sock: socket.socket) -> None:
        with sock:
            while True:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                for req in nl.split_messages(data):
                    with self.lock:
                        self.requests.append(req)
                        replies = self.handle(req)
                    for datagram in replies:
                        try:
                            sock.send(datagram)
                        except OSError:
                            return

    def handle(self, req: nl.Message) -> t.List[bytes]:
        if req.type == nl.GENL_ID_CTRL:
            name = nl.get_string(attrs_of(req)[nl.CTRL_ATTR_FAMILY_NAME])
            if name not in self.families:
                return [ack(req, errno.ENOENT)]
            fid, ops = self.families[name]
            return [family_reply(req, name, fid, ops), ack(req)]
        cmd = req.payload[0]
        if cmd == 2:
            if self.on_validate is not None:
                return self.on_validate(req)
            return [data_msg(req, [], flags=0), ack(req)]
        self.reads += 1
        if self.on_read is not None:
            return self.on_read(req, self.reads)
        return self.dump(req)

    def dump(self, req: nl.Message, generation: t.Optional[int] = None) -> t.List[bytes]:
        fam = DEVICE_EVIDENCE if req.type == FID else PCI_TSM
        mask = struct.unpack('=I', attrs_of(req)[fam.attrs['type-mask']])[0]
        msgs = []
        for n in range(11):
            if mask & (1 << n):
                msgs += object_msgs(req, n, self.objects.get(n, b''), self.generation if generation is None else generation, self.chunk,
                                    family=fam, fid=req.type)
        # the last message and NLMSG_DONE share the final datagram, as in the kernel's dump skb
        return msgs[:-1] + [msgs[-1] + done(req)]


class Client(EvidenceClient):
    def __init__(self, kernel: FakeKernel, **kwargs: t.Any) -> None:
        super().__init__('unix:/fake/host.sock', **kwargs)
        self.kernel = kernel

    def _connect(self) -> socket.socket:
        return self.kernel.connect()


def client(kernel: t.Optional[FakeKernel] = None, **kwargs: t.Any) -> Client:
    kwargs.setdefault('timeout', 5.0)
    return Client(kernel or FakeKernel(), **kwargs)


def reads_of(kernel: FakeKernel) -> t.List[nl.Message]:
    return [r for r in kernel.requests if r.type != nl.GENL_ID_CTRL]


# ---------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------

def test_read_request_on_the_wire():
    kernel = FakeKernel(objects={9: b'M' * 10, 10: b'R' * 3})
    with client(kernel) as c:
        result = c.read(DEV, ['report', 'measurements'], nonce=b'\x07' * 32, digest=True)
    assert result == {'generation': 5, 'family': 'device-evidence', 'objects': {'measurements': b'M' * 10, 'report': b'RRR'}}
    ctrl, read = kernel.requests
    assert ctrl.type == nl.GENL_ID_CTRL and ctrl.flags == nl.NLM_F_REQUEST | nl.NLM_F_ACK
    assert nl.parse_genl(ctrl.payload)[0] == nl.CTRL_CMD_GETFAMILY
    assert attrs_of(ctrl) == {nl.CTRL_ATTR_FAMILY_NAME: b'device-evidence\0'}
    assert (read.type, read.flags) == (FID, nl.NLM_F_REQUEST | nl.NLM_F_DUMP)   # a dump needs no NLM_F_ACK
    assert read.seq == ctrl.seq + 1
    cmd, _version, attrs = nl.parse_genl(read.payload)
    assert cmd == 1
    assert attrs == [(2, u32(0x600)), (3, u32(1)), (4, b'pci\0'), (5, DEV.encode() + b'\0'), (6, b'\x07' * 32)]


@pytest.mark.parametrize('size, chunk', [(0, 4000), (1, 1), (5, 3), (4096, 4093), (10007, 1021), (65536, 4056), (1 << 20, 32740)])
def test_objects_spanning_many_messages_are_joined(size, chunk):
    blob = bytes(i * 7 % 251 for i in range(size))
    kernel = FakeKernel(objects={0: blob, 8: b'V' * 37, 10: b'r' * 9}, chunk=chunk)
    with client(kernel) as c:
        result = c.read(DEV, ['cert0', 'vca', 'report'])
    assert result['objects'] == {'cert0': blob, 'vca': b'V' * 37, 'report': b'r' * 9}


def test_several_val_attributes_in_one_message_are_joined_in_order():
    def on_read(req, _attempt):
        first = data_msg(req, [nl.nla_u32(1, 10), nl.nla_u32(7, 3), nl.nla_u32(9, 6), nl.nla(10, b'ab'), nl.nla(10, b'c')])
        return [first, data_msg(req, [nl.nla(10, b''), nl.nla(10, b'def')]), done(req)]
    with client(FakeKernel(on_read=on_read)) as c:
        assert c.read(DEV, ['report']) == {'generation': 3, 'family': 'device-evidence', 'objects': {'report': b'abcdef'}}


def test_unknown_attributes_and_noop_messages_are_skipped():
    def on_read(req, _attempt):
        count = nl.nla(8, struct.pack('=Q', 12))   # device-evidence 'count' (u64), not needed
        return [nl.nlmsg(nl.NLMSG_NOOP, 0, req.seq, req.pid, b''),
                data_msg(req, [nl.nla_u32(1, 10), count, nl.nla_u32(7, 4), nl.nla_u32(9, 2), nl.nla(10, b'ok'), nl.nla(30, b'future')]),
                done(req)]
    with client(FakeKernel(on_read=on_read)) as c:
        assert c.read(DEV, ['report'])['objects'] == {'report': b'ok'}


def test_done_without_payload_ends_the_dump():
    def on_read(req, _attempt):
        return object_msgs(req, 10, b'xyz') + [nl.nlmsg(nl.NLMSG_DONE, nl.NLM_F_MULTI, req.seq, req.pid, b'')]
    with client(FakeKernel(on_read=on_read)) as c:
        assert c.read(DEV, ['report'])['objects'] == {'report': b'xyz'}


def test_one_socket_is_reused_across_reads_and_devices():
    kernel = FakeKernel()
    with client(kernel) as c:
        for dev in (DEV, '0000:42:00.0', '0000:43:00.0'):
            c.read(dev, ['report'])
        assert c.generation(DEV) == 5
    assert kernel.connections == 1
    ctrl_requests = [r for r in kernel.requests if r.type == nl.GENL_ID_CTRL]
    assert len(ctrl_requests) == 1
    seqs = [r.seq for r in kernel.requests]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_generation_is_a_digest_read_of_the_report():
    kernel = FakeKernel(generation=0xFFFFFFFF)
    with client(kernel) as c:
        assert c.generation(DEV) == 0xFFFFFFFF
    (read,) = reads_of(kernel)
    attrs = attrs_of(read)
    assert attrs[2] == u32(1 << 10) and attrs[3] == u32(FLAG_DIGEST)


def test_family_property_and_validate_capability():
    with client(FakeKernel()) as c:
        assert c.family == 'device-evidence'
        assert c.has_validate is True
    with client(FakeKernel(families={'device-evidence': (FID, READ_OPS)})) as c:
        assert c.has_validate is False


# ---------------------------------------------------------------------------------------------
# Errors from the peer
# ---------------------------------------------------------------------------------------------

ERRNO_CASES = [
    (errno.EPERM, 'needs CAP_NET_ADMIN (run as root / become: true)'),
    (errno.EACCES, 'needs CAP_NET_ADMIN (run as root / become: true)'),
    (errno.ENODEV, 'no such device'),
    (errno.ENXIO, 'no TSM context or no evidence: lock the device first'),
    (errno.EINVAL, 'its evidence ABI differs'),
    (errno.EOPNOTSUPP, 'no evidence provider for the pci subsystem'),
    (errno.EBUSY, 'another evidence dump is still running'),
    (errno.ENOMEM, 'out of memory'),
    (errno.EIO, 'see the errno'),
]


@pytest.mark.parametrize('code, remedy', ERRNO_CASES)
@pytest.mark.parametrize('where', ['NLMSG_ERROR', 'NLMSG_DONE'])
def test_peer_errno_becomes_one_line_evidence_error(code, remedy, where):
    def on_read(req, _attempt):
        if where == 'NLMSG_ERROR':
            return [ack(req, code, 'why\nnot')]
        return object_msgs(req, 0, b'c' * 10)[:1] + [done(req, code, 'why not')]
    with client(FakeKernel(on_read=on_read)) as c:
        with pytest.raises(EvidenceError) as exc:
            c.read(DEV, ['cert0', 'report'])
    err = exc.value
    text = str(err)
    assert err.errno == code and err.device == DEV and err.attribute == 'evidence read'
    assert text.startswith('0000:41:00.0 evidence read: refused by the evidence endpoint: why not (%s); ' % errno.errorcode[code])
    assert remedy in text
    assert '\n' not in text


def test_nonce_refresh_not_supported():
    def on_read(req, _attempt):
        return [done(req, errno.EOPNOTSUPP, 'evidence refresh failed: -EOPNOTSUPP')]
    with client(FakeKernel(on_read=on_read)) as c:
        with pytest.raises(EvidenceError) as exc:
            c.read(DEV, ['measurements'], nonce=b'n' * 32)
    assert exc.value.errno == errno.EOPNOTSUPP
    assert 'nonce-driven evidence refresh is not supported' in str(exc.value)
    assert 'retry without a nonce' in str(exc.value)


def test_eagain_is_retried_then_succeeds():
    def on_read(req, attempt):
        if attempt == 1:
            return object_msgs(req, 0, b'c' * 10)[:1] + [done(req, errno.EAGAIN, 'evidence updated during read')]
        return kernel.dump(req, generation=6)
    kernel = FakeKernel(objects={0: b'c' * 10, 10: b'r'}, on_read=on_read)
    with client(kernel) as c:
        result = c.read(DEV, ['cert0', 'report'])
    assert result['generation'] == 6 and result['objects'] == {'cert0': b'c' * 10, 'report': b'r'}
    assert kernel.reads == 2
    assert kernel.connections == 1   # a dump that ended with DONE leaves the socket usable


@pytest.mark.parametrize('retries', [0, 1, 3])
def test_eagain_retries_are_bounded(retries):
    kernel = FakeKernel(on_read=lambda req, _a: [ack(req, errno.EAGAIN)])
    with client(kernel, retries=retries) as c:
        with pytest.raises(EvidenceError) as exc:
            c.read(DEV, ['report'])
    assert kernel.reads == retries + 1
    assert exc.value.errno == errno.EAGAIN
    assert 'the evidence changed during each of %d read attempts' % (retries + 1) in str(exc.value)
    assert 'TDISP ERROR' in str(exc.value)


def test_generation_mismatch_inside_a_reply_is_retried():
    def on_read(req, attempt):
        if attempt == 1:
            return object_msgs(req, 0, b'a', generation=5) + object_msgs(req, 10, b'b', generation=6) + [done(req)]
        return kernel.dump(req, generation=6)
    kernel = FakeKernel(objects={0: b'a', 10: b'b'}, on_read=on_read)
    with client(kernel) as c:
        assert c.read(DEV, ['cert0', 'report'])['generation'] == 6
    assert kernel.reads == 2


def test_persistent_generation_mismatch_exhausts_retries():
    def on_read(req, attempt):
        return object_msgs(req, 0, b'a', generation=attempt) + object_msgs(req, 10, b'b', generation=attempt + 1) + [done(req)]
    kernel = FakeKernel(on_read=on_read)
    with client(kernel, retries=2) as c:
        with pytest.raises(EvidenceError) as exc:
            c.read(DEV, ['cert0', 'report'])
    assert kernel.reads == 3
    assert 'generations 3 and 4' in str(exc.value)


def test_dump_interrupted_flag_is_retried():
    def on_read(req, attempt):
        if attempt == 1:
            return object_msgs(req, 10, b'x') + [done(req, flags=nl.NLM_F_MULTI | nl.NLM_F_DUMP_INTR)]
        return kernel.dump(req)
    kernel = FakeKernel(on_read=on_read)
    with client(kernel) as c:
        assert c.read(DEV, ['report'])['objects'] == {'report': b'R' * 100}
    assert kernel.reads == 2


# ---------------------------------------------------------------------------------------------
# Malformed and hostile replies
# ---------------------------------------------------------------------------------------------

def _proto(on_read: t.Callable[[nl.Message, int], t.List[bytes]], types: t.Sequence[str] = ('report',), **kwargs: t.Any) -> EvidenceError:
    kernel = FakeKernel(on_read=on_read)
    with client(kernel, **kwargs) as c:
        with pytest.raises(EvidenceError) as exc:
            c.read(DEV, list(types))
        # whatever happened, the next call works on a fresh connection
        kernel.on_read = None
        assert c.read(DEV, ['report'])['objects'] == {'report': b'R' * 100}
    return exc.value


@pytest.mark.parametrize('reply, problem', [
    (lambda r: object_msgs(r, 10, b'x' * 50, length=100) + [done(r)], 'object report is truncated: length 100 announced, 50 bytes received'),
    (lambda r: object_msgs(r, 0, b'x' * 5, length=9) + object_msgs(r, 10, b'y') + [done(r)], 'object cert0 is truncated: length 9'),
    (lambda r: object_msgs(r, 10, b'x' * 50, length=20) + [done(r)], 'overruns its announced length 20'),
    (lambda r: object_msgs(r, 9, b'x') + [done(r)], 'object measurements was not asked for'),
    (lambda r: object_msgs(r, 11, b'x') + [done(r)], 'unknown object type 11'),
    (lambda r: object_msgs(r, 10, b'x') + object_msgs(r, 10, b'x') + [done(r)], 'object report sent twice'),
    (lambda r: [done(r)], 'the dump ended without object(s) report'),
    (lambda r: [data_msg(r, [nl.nla(10, b'x')]), done(r)], 'a val chunk arrived before any object type'),
    (lambda r: [data_msg(r, [nl.nla_u32(1, 10), nl.nla(10, b'x')]), done(r)], 'starts without generation and length'),
    (lambda r: [data_msg(r, [nl.nla_u32(1, 10), nl.nla_u32(1, 9)]), done(r)], 'one dump message starts two objects'),
    (lambda r: [data_msg(r, [nl.nla_u32(7, 1)]), done(r)], 'generation or length outside the first message'),
    (lambda r: [data_msg(r, [nl.nla_u32(1, 10), nl.nla(7, b'\x01'), nl.nla_u32(9, 0)]), done(r)], 'generation: a u32 attribute has 1 bytes'),
    (lambda r: [nl.genlmsg(FID, nl.NLM_F_MULTI, r.seq, r.pid, 2, []), done(r)], 'dump message has command 2'),
    (lambda r: [nl.genlmsg(0x99, nl.NLM_F_MULTI, r.seq, r.pid, 1, []), done(r)], 'message type 153 in a device-evidence dump'),
    (lambda r: [ack(r)], 'an acknowledgement arrived inside a dump'),
    (lambda r: [nl.nlmsg(nl.NLMSG_OVERRUN, 0, r.seq, r.pid, b'')], 'NLMSG_OVERRUN'),
    (lambda r: [nl.nlmsg(nl.NLMSG_DONE, 0, r.seq + 1, r.pid, b'\0' * 4)], 'reply sequence number %d does not answer request %d'),
    (lambda r: [nl.nlmsg(nl.NLMSG_DONE, 0, r.seq, r.pid + 1, b'\0' * 4)], 'port id'),
    (lambda r: [object_msgs(r, 10, b'x' * 40)[0][:-8]], 'is truncated: nlmsg_len'),
    (lambda r: [nl.NLMSGHDR.pack(40, FID, 2, r.seq, r.pid) + b'\x01\x01\x00\x00' + nl.NLATTR.pack(100, 10) + b'\0' * 16],
     'attribute 10 at offset 0 is truncated'),
])
def test_malformed_replies_are_protocol_errors(reply, problem):
    err = _proto(lambda req, _a: reply(req), types=('cert0', 'report') if 'cert0' in problem else ('report',))
    assert err.errno == errno.EPROTO
    if '%d' in problem:
        assert 'reply sequence number' in str(err)
    else:
        assert problem in str(err)
    assert str(err).startswith('0000:41:00.0 evidence read: malformed netlink reply: ')


def test_oversize_object_length_is_refused():
    err = _proto(lambda req, _a: object_msgs(req, 10, b'', length=MAX_OBJECT_SIZE + 1) + [done(req)])
    assert err.errno == errno.EFBIG
    assert 'announces 16777217 bytes, over the 16777216-byte max-object-size' in str(err)
    assert err.device == DEV


def test_total_of_all_objects_is_bounded():
    kernel = FakeKernel(objects={0: b'a' * 600, 1: b'b' * 600})
    with client(kernel) as c:
        c.MAX_TOTAL_SIZE = 1000
        with pytest.raises(EvidenceError) as exc:
            c.read(DEV, ['cert0', 'cert1'])
        assert exc.value.errno == errno.EFBIG
        assert 'more than 1000 bytes in all' in str(exc.value)
        assert c.read(DEV, ['cert0'])['objects']['cert0'] == b'a' * 600


def test_datagrams_beyond_the_receive_buffer_grow_it_up_to_a_bound():
    blob = bytes(range(256)) * 600   # 153600 bytes

    def on_read(req, _attempt):
        return [b''.join(object_msgs(req, 0, blob, chunk=50000)) + done(req)]   # one 153 KB datagram of four messages
    kernel = FakeKernel(on_read=on_read)
    with client(kernel) as c:
        assert c.read(DEV, ['cert0'])['objects']['cert0'] == blob
        c.MAX_DATAGRAM = 100000
        with pytest.raises(EvidenceError) as exc:
            c.read(DEV, ['cert0'])
    assert exc.value.errno == errno.EMSGSIZE
    assert 'a reply datagram of 153' in str(exc.value)


def test_a_protocol_error_mid_reply_drops_the_connection():
    def on_read(req, attempt):
        if attempt == 1:
            return [nl.nlmsg(nl.NLMSG_NOOP, 0, req.seq + 7, req.pid, b'')] + kernel.dump(req)
        return kernel.dump(req)
    kernel = FakeKernel(on_read=on_read)
    with client(kernel) as c:
        with pytest.raises(EvidenceError) as exc:
            c.read(DEV, ['report'])
        assert 'reply sequence number' in str(exc.value)
        # the rest of the broken reply is never mistaken for the answer to the next request
        assert c.read(DEV, ['report'])['objects'] == {'report': b'R' * 100}
    assert kernel.connections == 2


def test_silent_peer_times_out():
    kernel = FakeKernel(on_read=lambda req, _a: [])
    with client(kernel, timeout=0.2) as c:
        with pytest.raises(EvidenceError) as exc:
            c.read(DEV, ['report'])
    assert exc.value.errno == errno.ETIMEDOUT
    assert 'no reply from unix:/fake/host.sock within 0.2 s' in str(exc.value)


def test_peer_closing_mid_reply_is_reported():
    class Closing(FakeKernel):
        def _serve(self, sock):
            with sock:
                for req in nl.split_messages(sock.recv(65536)):
                    for datagram in self.handle(req):
                        sock.send(datagram)
                req = nl.split_messages(sock.recv(65536))[0]
                sock.send(object_msgs(req, 10, b'x' * 10, length=20)[0])
    with client(Closing()) as c:
        with pytest.raises(EvidenceError) as exc:
            c.read(DEV, ['report'])
    assert exc.value.errno == errno.ECONNRESET
    assert 'closed the connection' in str(exc.value)


def test_only_evidence_error_escapes_from_random_replies():
    import random
    rng = random.Random(1234)
    for _case in range(300):
        junk = bytes(rng.randrange(256) for _byte in range(rng.randrange(1, 80)))
        msg_type = rng.choice([FID, nl.NLMSG_ERROR, nl.NLMSG_DONE, nl.NLMSG_NOOP])
        flags = rng.randrange(0x400)

        def on_read(req, _a, junk=junk, msg_type=msg_type, flags=flags):
            # the junk message, then a well-formed end so that no case waits for a timeout
            return [nl.NLMSGHDR.pack(16 + len(junk), msg_type, flags, req.seq, req.pid) + junk + b'\0' * (nl.align(len(junk)) - len(junk)) + done(req)]
        with client(FakeKernel(on_read=on_read), retries=0) as c:
            try:
                c.read(DEV, ['report', 'cert0'])
            except EvidenceError as exc:
                assert exc.device == DEV and exc.errno is not None


# ---------------------------------------------------------------------------------------------
# Family resolution
# ---------------------------------------------------------------------------------------------

def test_unknown_family():
    kernel = FakeKernel(families={})
    with client(kernel) as c:
        with pytest.raises(EvidenceError) as exc:
            c.read(DEV, ['report'])
    err = exc.value
    assert err.errno == errno.ENOENT
    assert str(err) == ('0000:41:00.0 evidence read: no generic netlink family device-evidence or pci-tsm on unix:/fake/host.sock (ENOENT); '
                        'the kernel has no device-evidence netlink family (kernel without the TSM evidence series)')
    asked = [nl.get_string(attrs_of(r)[nl.CTRL_ATTR_FAMILY_NAME]) for r in kernel.requests]
    assert asked == ['device-evidence', 'pci-tsm']


def test_pci_tsm_fallback():
    kernel = FakeKernel(families={'pci-tsm': (PCI_TSM_FID, READ_OPS)}, objects={9: b'm' * 5000, 10: b'r'})
    with client(kernel) as c:
        assert c.family == 'pci-tsm'
        result = c.read(DEV, ['measurements', 'report'], nonce=b'n' * 256)
        assert result == {'generation': None, 'family': 'pci-tsm', 'objects': {'measurements': b'm' * 5000, 'report': b'r'}}
        assert c.validate(DEV, 3) is None
        with pytest.raises(EvidenceError) as exc:
            c.generation(DEV)
        assert exc.value.errno == errno.EOPNOTSUPP and 'device-evidence family' in str(exc.value)
        with pytest.raises(EvidenceError) as exc:
            c.read(DEV, ['report'], nonce=b'n' * 257)
        assert 'nonce must be 1 to 256 bytes for the pci-tsm family' in str(exc.value)
    read = reads_of(kernel)[0]
    assert read.type == PCI_TSM_FID
    # pci-tsm numbering: type-mask 2, flags 3, dev-name 4, nonce 5; no subsys
    assert nl.parse_genl(read.payload)[2] == [(2, u32(0x600)), (3, u32(0)), (4, DEV.encode() + b'\0'), (5, b'n' * 256)]
    assert all(r.payload[0] != 2 for r in kernel.requests if r.type == PCI_TSM_FID)   # validate never sent


def test_pci_tsm_object_size_is_bounded_without_a_length(monkeypatch):
    monkeypatch.setattr(netlink_dump, 'MAX_OBJECT_SIZE', 1000)
    kernel = FakeKernel(families={'pci-tsm': (PCI_TSM_FID, READ_OPS)}, objects={10: b'r' * 1001}, chunk=300)
    with client(kernel) as c:
        with pytest.raises(EvidenceError) as exc:
            c.read(DEV, ['report'])
    assert exc.value.errno == errno.EFBIG


def test_family_without_read_op_is_refused():
    with client(FakeKernel(families={'device-evidence': (FID, {5: 2})})) as c:
        with pytest.raises(EvidenceError) as exc:
            c.read(DEV, ['report'])
    assert exc.value.errno == errno.EOPNOTSUPP and 'lists no read operation' in str(exc.value)


@pytest.mark.parametrize('reply, problem', [
    (lambda r: [ack(r)], 'acknowledged GETFAMILY device-evidence without describing it'),
    (lambda r: [family_reply(r, 'other', FID, READ_OPS), ack(r)], "described family 'other'"),
    (lambda r: [nl.genlmsg(nl.GENL_ID_CTRL, 0, r.seq, r.pid, 7, []), ack(r)], 'not NEWFAMILY'),
    (lambda r: [nl.genlmsg(FID, 0, r.seq, r.pid, 1, []), ack(r)], 'message type 34 in an nlctrl reply'),
])
def test_malformed_family_replies(reply, problem):
    class Bad(FakeKernel):
        def handle(self, req):
            return reply(req)
    with client(Bad()) as c:
        with pytest.raises(EvidenceError) as exc:
            c.read(DEV, ['report'])
    assert exc.value.errno == errno.EPROTO and problem in str(exc.value)


# ---------------------------------------------------------------------------------------------
# validate
# ---------------------------------------------------------------------------------------------

def test_validate_present():
    kernel = FakeKernel()
    with client(kernel) as c:
        assert c.validate(DEV, 7) is True
    (req,) = reads_of(kernel)
    assert (req.type, req.flags) == (FID, nl.NLM_F_REQUEST | nl.NLM_F_ACK)
    cmd, _v, attrs = nl.parse_genl(req.payload)
    assert cmd == 2
    assert attrs == [(4, b'pci\0'), (5, DEV.encode() + b'\0'), (7, u32(7))]


def test_validate_with_only_an_acknowledgement():
    with client(FakeKernel(on_validate=lambda req: [ack(req)])) as c:
        assert c.validate(DEV, 0) is True


def test_validate_absent_sends_nothing():
    kernel = FakeKernel(families={'device-evidence': (FID, READ_OPS)})
    with client(kernel) as c:
        assert c.validate(DEV, 7) is None
    assert reads_of(kernel) == []


@pytest.mark.parametrize('code, words', [
    (errno.EAGAIN, 'the evidence changed since generation 7'),
    (errno.ENXIO, 'lock the device first'),
    (errno.EPERM, 'CAP_NET_ADMIN'),
])
def test_validate_refused(code, words):
    kernel = FakeKernel(on_validate=lambda req: [ack(req, code, 'no')])
    with client(kernel) as c:
        with pytest.raises(EvidenceError) as exc:
            c.validate(DEV, 7)
        assert exc.value.errno == code and words in str(exc.value)
        assert exc.value.attribute == 'evidence validate'
        kernel.on_validate = None
        assert c.validate(DEV, 7) is True   # a refusal leaves the socket usable
    assert kernel.connections == 1


def test_validate_protocol_error():
    with client(FakeKernel(on_validate=lambda req: [nl.genlmsg(0x55, 0, req.seq, req.pid, 2, [])])) as c:
        with pytest.raises(EvidenceError) as exc:
            c.validate(DEV, 7)
    assert exc.value.errno == errno.EPROTO


# ---------------------------------------------------------------------------------------------
# Arguments and endpoints
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('kwargs, words', [
    ({'endpoint': 'tcp:1.2.3.4'}, 'neither netlink nor unix:PATH'),
    ({'endpoint': 'unix:'}, 'neither netlink nor unix:PATH'),
    ({'endpoint': None}, 'neither netlink nor unix:PATH'),
    ({'timeout': 0}, 'not a positive number'),
    ({'timeout': True}, 'not a positive number'),
    ({'retries': -1}, 'non-negative integer'),
    ({'retries': 1.5}, 'non-negative integer'),
])
def test_bad_client_arguments(kwargs, words):
    with pytest.raises(EvidenceError) as exc:
        EvidenceClient(**kwargs)
    assert exc.value.errno == errno.EINVAL and words in str(exc.value)


@pytest.mark.parametrize('call, words', [
    (lambda c: c.read('', ['report']), 'device name'),
    (lambda c: c.read('x' * 32, ['report']), 'device name'),
    (lambda c: c.read(None, ['report']), 'device name'),
    (lambda c: c.read(DEV, []), 'non-empty list'),
    (lambda c: c.read(DEV, 'report'), 'non-empty list'),
    (lambda c: c.read(DEV, ['report', 'cert8']), "unknown evidence object type 'cert8'"),
    (lambda c: c.read(DEV, [['report']]), "unknown evidence object type ['report']"),
    (lambda c: c.read(DEV, ['report'], nonce=b''), 'nonce must be 1 to 32 bytes'),
    (lambda c: c.read(DEV, ['report'], nonce=b'n' * 33), 'nonce must be 1 to 32 bytes for the device-evidence family, got 33 bytes'),
    (lambda c: c.read(DEV, ['report'], nonce='text'), 'got str'),
    (lambda c: c.validate(DEV, -1), 'is not a u32'),
    (lambda c: c.validate(DEV, 1 << 32), 'is not a u32'),
    (lambda c: c.validate(DEV, '3'), 'is not a u32'),
])
def test_bad_call_arguments(call, words):
    kernel = FakeKernel()
    with client(kernel) as c:
        with pytest.raises(EvidenceError) as exc:
            call(c)
    assert exc.value.errno == errno.EINVAL and words in str(exc.value)
    assert reads_of(kernel) == []


def test_absent_unix_endpoint(tmp_path):
    c = EvidenceClient('unix:%s' % (tmp_path / 'nohost.sock'))
    with pytest.raises(EvidenceError) as exc:
        c.read(DEV, ['report'])
    assert exc.value.errno == errno.ENOENT
    assert 'is absent (not listening)' in str(exc.value) and 'start the simulator' in str(exc.value)


def test_stale_unix_connection_is_reopened_once():
    kernel = FakeKernel()
    with client(kernel) as c:
        c.read(DEV, ['report'])
        kernel.peers[-1].shutdown(socket.SHUT_RDWR)   # the endpoint restarted: our next send fails with EPIPE
        assert c.read(DEV, ['report'])['objects'] == {'report': b'R' * 100}
    assert kernel.connections == 2


def test_kernel_endpoint_raises_only_evidence_error():
    """Against this machine's kernel: either the family resolves or a clear EvidenceError says why."""
    with EvidenceClient('netlink', timeout=2.0) as c:
        try:
            assert c.family in ('device-evidence', 'pci-tsm')
        except EvidenceError as exc:
            assert exc.errno in (errno.ENOENT, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, errno.EPERM, errno.EACCES)
            if exc.errno == errno.ENOENT:
                assert 'kernel without the TSM evidence series' in str(exc)
