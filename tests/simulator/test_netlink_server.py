"""The simulator's evidence endpoint (tdisp_sim.views.netlink) against the collection's real client,
over real AF_UNIX SOCK_SEQPACKET sockets, with the kernel model of tdisp_sim.kernel behind it.

Requests the client never sends (missing or malformed attributes) are written by hand with the
client's encoder, so each errno of kernel-abi.md §1d/§8 is exercised on the wire.
"""

from __future__ import annotations

import errno
import hashlib
import os
import resource
import shutil
import socket
import stat
import struct
import tempfile

import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tdisp_sim.faults.evidence import clear_fault, set_fault
from tdisp_sim.views.netlink import FAMILIES, MAX_OBJECT_SIZE, EvidenceServer
from tdisp_sim.evidence.provider import EvidenceProvider, ProviderError, profile_from_scenario
from tdisp_sim.kernel import Device, Fleet, Tsm


def _collections_path() -> str:
    """A directory holding ansible_collections/coco/tdisp -> this checkout (``make env`` creates build/collections)."""
    root = Path(__file__).resolve().parents[2]
    built = root / "build" / "collections"
    if (built / "ansible_collections" / "coco" / "tdisp" / "plugins").is_dir():
        return str(built)
    tmp = Path(tempfile.mkdtemp(prefix="coco-tdisp-collections-"))
    (tmp / "ansible_collections" / "coco").mkdir(parents=True)
    (tmp / "ansible_collections" / "coco" / "tdisp").symlink_to(root)
    return str(tmp)


if _collections_path() not in sys.path:
    sys.path.insert(0, _collections_path())

# pylint: disable=wrong-import-position
from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError  # noqa: E402
from ansible_collections.coco.tdisp.plugins.module_utils._evidence import netlink_wire as nl  # noqa: E402
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.netlink import EvidenceClient  # noqa: E402

LOCKED = "0000:41:00.0"
UNLOCKED = "0000:42:00.0"
HOST = "cvm-01"


def make_fleet(hosts=(HOST,), evidence_spec=None) -> Fleet:
    fleet = Fleet()
    for name in hosts:
        h = fleet.add_host(name)
        h.tsms[1] = Tsm(1, "devsec")
        for bdf in (LOCKED, UNLOCKED):
            h.devices[bdf] = Device(bdf, "0x10de", "0x2330", "0x030200", tee=True)
        h.store_lock(h.devices[LOCKED], "tsm1")
    if evidence_spec is not None:
        fleet.evidence_spec = evidence_spec
    return fleet


@pytest.fixture
def sockdir():
    # AF_UNIX paths are limited to 107 bytes: pytest's tmp_path can be longer
    path = tempfile.mkdtemp(prefix="nls", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fleet():
    return make_fleet()


@pytest.fixture
def server(fleet, sockdir):
    srv = EvidenceServer(fleet, sockdir).start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with EvidenceClient(server.endpoint(HOST), timeout=10.0) as c:
        yield c


def events(fleet, kind):
    return [e for e in fleet.events if e["event"] == kind]


# --- raw requests -----------------------------------------------------------------------------------------------

class Raw:
    """A hand-driven connection: send any request, collect every reply message up to the end."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.seq = 100

    def send(self, msg_type, flags, cmd, attrs):
        self.seq += 1
        self.sock.send(nl.genlmsg(msg_type, flags, self.seq, 4242, cmd, attrs))
        return self.seq

    def datagrams(self, until_end=True):
        out = []
        while True:
            data = self.sock.recv(1 << 20)
            out.append(data)
            msgs = nl.split_messages(data)
            if not until_end or msgs[-1].type in (nl.NLMSG_DONE, nl.NLMSG_ERROR):
                return out

    def messages(self):
        return [m for d in self.datagrams() for m in nl.split_messages(d)]

    def error(self, msg_type, flags, cmd, attrs):
        """Send and return (errno, text, where) of the final NLMSG_ERROR or NLMSG_DONE."""
        self.send(msg_type, flags, cmd, attrs)
        last = self.messages()[-1]
        if last.type == nl.NLMSG_ERROR:
            return nl.parse_error(last) + ("NLMSG_ERROR",)
        return nl.parse_done(last) + ("NLMSG_DONE",)

    def close(self):
        self.sock.close()


@pytest.fixture
def raw(server):
    r = Raw(server.path(HOST))
    yield r
    r.close()


FID = FAMILIES["device-evidence"]["id"]
DUMP = nl.NLM_F_REQUEST | nl.NLM_F_DUMP
DO = nl.NLM_F_REQUEST | nl.NLM_F_ACK


def read_attrs(mask=1 << 10, flags=None, subsys="pci", dev=LOCKED, nonce=None):
    attrs = []
    if mask is not None:
        attrs.append(nl.nla_u32(2, mask))
    if flags is not None:
        attrs.append(nl.nla_u32(3, flags))
    if subsys is not None:
        attrs.append(nl.nla_string(4, subsys))
    if dev is not None:
        attrs.append(nl.nla_string(5, dev))
    if nonce is not None:
        attrs.append(nl.nla(6, nonce))
    return attrs


# --- family ---------------------------------------------------------------------------------------------------------

def test_family_lookup_lists_read_and_validate(raw):
    seq = raw.send(nl.GENL_ID_CTRL, DO, nl.CTRL_CMD_GETFAMILY, [nl.nla_string(nl.CTRL_ATTR_FAMILY_NAME, "device-evidence")])
    reply, ack = raw.messages()
    assert (reply.type, reply.seq, reply.pid) == (nl.GENL_ID_CTRL, seq, 4242)
    cmd, _v, attrs = nl.parse_genl(reply.payload)
    info = nl.parse_family(attrs)
    assert cmd == nl.CTRL_CMD_NEWFAMILY
    assert (info.name, info.id, info.maxattr) == ("device-evidence", FID, 10)
    assert info.ops == {1: nl.GENL_ADMIN_PERM | nl.GENL_CMD_CAP_DUMP | 0x08, 2: nl.GENL_ADMIN_PERM | nl.GENL_CMD_CAP_DO | 0x08}
    assert nl.parse_error(ack) == (0, None) and ack.flags & nl.NLM_F_CAPPED


def test_unknown_family_is_enoent(raw):
    assert raw.error(nl.GENL_ID_CTRL, DO, nl.CTRL_CMD_GETFAMILY, [nl.nla_string(nl.CTRL_ATTR_FAMILY_NAME, "pci-tsm")])[0] == errno.ENOENT
    assert raw.error(0x77, DUMP, 1, read_attrs())[0] == errno.ENOENT


def test_validate_op_is_listed_only_when_the_scenario_enables_it(sockdir):
    fleet = make_fleet(evidence_spec={"netlink": {"validate": False}})
    with EvidenceServer(fleet, sockdir) as srv, EvidenceClient(srv.endpoint(HOST)) as c:
        assert c.family == "device-evidence"
        assert c.has_validate is False
        assert c.validate(LOCKED, fleet.hosts[HOST].devices[LOCKED].generation) is None
        raw = Raw(srv.path(HOST))
        assert raw.error(FID, DO, 2, [nl.nla_string(4, "pci"), nl.nla_string(5, LOCKED), nl.nla_u32(7, 2)])[0] == errno.EOPNOTSUPP
        raw.close()
    assert fleet.hosts[HOST].devices[LOCKED].validated_generation is None


def test_pci_tsm_family(sockdir):
    fleet = make_fleet(evidence_spec={"netlink": {"family": "pci-tsm"}})
    with EvidenceServer(fleet, sockdir) as srv, EvidenceClient(srv.endpoint(HOST)) as c:
        result = c.read(LOCKED, ["cert0", "report"])
        assert result["family"] == "pci-tsm" and result["generation"] is None
        assert set(result["objects"]) == {"cert0", "report"} and len(result["objects"]["cert0"]) == 1536
        assert c.validate(LOCKED, 2) is None
        with pytest.raises(EvidenceError) as exc:
            c.read(LOCKED, ["measurements"], nonce=b"n" * 200)   # v2: nonce-driven refresh not implemented
        assert exc.value.errno == errno.EOPNOTSUPP
        with pytest.raises(EvidenceError) as exc:
            c.read(UNLOCKED, ["report"])
        assert exc.value.errno == errno.ENXIO


# --- reads ----------------------------------------------------------------------------------------------------------

def test_read_returns_each_requested_object(client, fleet):
    device = fleet.hosts[HOST].devices[LOCKED]
    result = client.read(LOCKED, ["cert0", "cert1", "vca", "measurements", "report"])
    assert result["generation"] == device.generation == 2   # store_lock bumped it from 1
    assert {k: len(v) for k, v in result["objects"].items()} == {"cert0": 1536, "cert1": 0, "vca": 96, "measurements": 512, "report": 128}
    assert result["objects"] == client.read(LOCKED, ["cert0", "cert1", "vca", "measurements", "report"])["objects"]
    (ev,) = [e for e in events(fleet, "evidence_read") if e.get("types") == ["cert0", "cert1", "vca", "measurements", "report"]][:1]
    assert (ev["host"], ev["bdf"], ev["generation"], ev["result"], ev["digest"], ev["nonce"]) == (HOST, LOCKED, 2, "ok", False, False)


def test_digest_flag_returns_sha384_of_each_object(client):
    full = client.read(LOCKED, ["cert0", "cert3", "report"])["objects"]
    digests = client.read(LOCKED, ["cert0", "cert3", "report"], digest=True)["objects"]
    assert digests == {"cert0": hashlib.sha384(full["cert0"]).digest(), "cert3": b"", "report": hashlib.sha384(full["report"]).digest()}


def test_nonce_changes_only_the_measurements(client):
    a = client.read(LOCKED, ["measurements", "report"], nonce=b"a" * 32)["objects"]
    b = client.read(LOCKED, ["measurements", "report"], nonce=b"b" * 32)["objects"]
    assert a["report"] == b["report"] and a["measurements"] != b["measurements"]


def test_generation_follows_the_kernel_model(client, fleet):
    h = fleet.hosts[HOST]
    device = h.devices[LOCKED]
    before = client.read(LOCKED, ["report"])
    h.store_unlock(device, "tsm1")
    with pytest.raises(EvidenceError) as exc:
        client.generation(LOCKED)
    assert exc.value.errno == errno.ENXIO and "lock the device first" in str(exc.value)
    h.store_lock(device, "tsm1")
    after = client.read(LOCKED, ["report"])
    assert after["generation"] == before["generation"] + 1 == client.generation(LOCKED)
    assert after["objects"] != before["objects"]


@pytest.mark.parametrize("chunk_size", [256, 257, 1001, 4096, 32768])
def test_large_objects_are_chunked_into_datagrams_of_chunk_size(fleet, sockdir, chunk_size):
    blob = bytes(i * 31 % 253 for i in range(300000))

    def provider(host, device, types, nonce):
        return {"cert0": blob, "report": b"r" * 7}
    with EvidenceServer(fleet, sockdir, provider, chunk_size=chunk_size) as srv:
        with EvidenceClient(srv.endpoint(HOST)) as c:
            assert c.read(LOCKED, ["cert0", "report"])["objects"] == {"cert0": blob, "report": b"r" * 7}
        raw = Raw(srv.path(HOST))
        seq = raw.send(FID, DUMP, 1, read_attrs(mask=1 | 1 << 10))
        datagrams = raw.datagrams()
        raw.close()
    assert all(len(d) <= chunk_size for d in datagrams)
    msgs = [m for d in datagrams for m in nl.split_messages(d)]
    assert all(m.seq == seq and m.pid == 4242 for m in msgs)
    data_msgs = [m for m in msgs if m.type == FID]
    assert len(data_msgs) >= 300000 // chunk_size
    assert all(m.flags & nl.NLM_F_MULTI for m in msgs)
    first = dict(nl.parse_genl(data_msgs[0].payload)[2])
    assert first[1] == struct.pack("=I", 0) and first[9] == struct.pack("=I", 300000) and first[7] == struct.pack("=I", 2)
    assert all(7 not in dict(nl.parse_genl(m.payload)[2]) for m in data_msgs[1:-1])   # generation only on first messages
    # the last message of the dump and NLMSG_DONE share the final datagram, as the kernel's dump skb
    assert [m.type for m in nl.split_messages(datagrams[-1])] == [FID, nl.NLMSG_DONE]


def test_an_object_of_max_object_size(fleet, sockdir):
    blob = hashlib.sha256(b"x").digest() * (MAX_OBJECT_SIZE // 32)
    with EvidenceServer(fleet, sockdir, lambda h, d, t, n: {"measurements": blob}, chunk_size=32768) as srv:
        with EvidenceClient(srv.endpoint(HOST)) as c:
            got = c.read(LOCKED, ["measurements"])["objects"]["measurements"]
    assert len(got) == MAX_OBJECT_SIZE and got == blob


# --- errors ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("attrs, code, where, text", [
    (read_attrs(subsys=None), errno.EINVAL, "NLMSG_ERROR", "missing subsys name"),
    (read_attrs(subsys="p" * 32), errno.EINVAL, "NLMSG_ERROR", "subsys longer than 31 bytes"),
    (read_attrs(dev=None), errno.EINVAL, "NLMSG_ERROR", "missing device name"),
    (read_attrs(dev="0" * 32), errno.EINVAL, "NLMSG_ERROR", "dev-name longer than 31 bytes"),
    (read_attrs(subsys="usb"), errno.EOPNOTSUPP, "NLMSG_ERROR", "no evidence provider for subsys 'usb'"),
    (read_attrs(dev="0000:99:00.0"), errno.ENODEV, "NLMSG_ERROR", "device 'pci:0000:99:00.0' evidence not found"),
    (read_attrs(mask=None), errno.EINVAL, "NLMSG_ERROR", "missing object request mask"),
    (read_attrs(mask=0), errno.EINVAL, "NLMSG_ERROR", "no evidence type requested"),
    (read_attrs(mask=1 << 11 | 1), errno.EINVAL, "NLMSG_ERROR", "unsupported object request 0x800"),
    (read_attrs(flags=2), errno.EINVAL, "NLMSG_ERROR", "unsupported flags 0x2"),
    (read_attrs(nonce=b"n" * 33), errno.EINVAL, "NLMSG_ERROR", "nonce longer than 32 bytes"),
    (read_attrs() + [nl.nla(2, b"\x01\x00")], errno.EINVAL, "NLMSG_ERROR", "attribute type-mask: u32 of 2 bytes"),
    (read_attrs() + [nl.nla_u32(1, 1)], errno.EINVAL, "NLMSG_ERROR", "Unsupported attribute"),
    (read_attrs() + [nl.nla_u32(7, 1)], errno.EINVAL, "NLMSG_ERROR", "Unknown attribute type"),
    (read_attrs() + [nl.nla_u32(40, 1)], errno.EINVAL, "NLMSG_ERROR", "Unknown attribute type"),
    (read_attrs(dev=UNLOCKED), errno.ENXIO, "NLMSG_DONE", "failed to acquire evidence context"),
])
def test_read_errors_on_the_wire(raw, fleet, attrs, code, where, text):
    assert raw.error(FID, DUMP, 1, attrs) == (code, text, where)
    assert events(fleet, "evidence_read")[-1]["result"] == errno.errorcode[code]


def test_read_without_the_dump_flag_and_unknown_commands(raw):
    assert raw.error(FID, DO, 1, read_attrs())[0] == errno.EOPNOTSUPP
    assert raw.error(FID, DUMP, 9, read_attrs())[0] == errno.EOPNOTSUPP


def test_second_dump_on_one_socket_is_ebusy(fleet, sockdir):
    # 8 MiB cannot all sit in the socket buffers: the first dump is still running when the second asks
    with EvidenceServer(fleet, sockdir, lambda h, d, t, n: {"cert0": b"c" * (8 << 20)}) as srv:
        raw = Raw(srv.path(HOST))
        first = raw.send(FID, DUMP, 1, read_attrs(mask=1))
        raw.datagrams(until_end=False)
        second = raw.send(FID, DUMP, 1, read_attrs(mask=1))
        seen = []
        while not any(m.seq == second for m in seen):
            seen += nl.split_messages(raw.datagrams(until_end=False)[0])
        raw.close()
    refusal = [m for m in seen if m.seq == second]
    assert len(refusal) == 1 and refusal[0].type == nl.NLMSG_ERROR and nl.parse_error(refusal[0])[0] == errno.EBUSY
    assert {m.seq for m in seen} == {first, second}


@pytest.mark.parametrize("dev, code, remedy", [
    ("0000:99:00.0", errno.ENODEV, "no such device"),
    (UNLOCKED, errno.ENXIO, "no TSM context or no evidence: lock the device first"),
])
def test_client_sees_each_errno_with_its_remedy(client, dev, code, remedy):
    with pytest.raises(EvidenceError) as exc:
        client.read(dev, ["report"])
    assert exc.value.errno == code and remedy in str(exc.value) and exc.value.device == dev


def test_removed_device_is_enodev(client, fleet):
    h = fleet.hosts[HOST]
    h.fault_remove(h.devices[LOCKED])
    with pytest.raises(EvidenceError) as exc:
        client.read(LOCKED, ["report"])
    assert exc.value.errno == errno.ENODEV


def test_nonce_refresh_disabled_is_eopnotsupp(fleet, sockdir):
    with EvidenceServer(fleet, sockdir, nonce_refresh=False) as srv, EvidenceClient(srv.endpoint(HOST)) as c:
        with pytest.raises(EvidenceError) as exc:
            c.read(LOCKED, ["measurements"], nonce=b"n" * 32)
        assert exc.value.errno == errno.EOPNOTSUPP and "retry without a nonce" in str(exc.value)
        assert len(c.read(LOCKED, ["measurements"])["objects"]["measurements"]) == 512


def test_permission_denied_fault(client, raw, fleet):
    h = fleet.hosts[HOST]
    set_fault(h, "eperm")
    for call in (lambda: client.read(LOCKED, ["report"]), lambda: client.validate(LOCKED, 2)):
        with pytest.raises(EvidenceError) as exc:
            call()
        assert exc.value.errno == errno.EPERM
        assert "needs CAP_NET_ADMIN (run as root / become: true)" in str(exc.value)
    # genetlink checks the capability before it parses anything: even a request without attributes
    assert raw.error(FID, DUMP, 1, [])[0] == errno.EPERM
    # nlctrl needs no capability
    assert client.family == "device-evidence"
    clear_fault(h, "eperm")
    assert client.read(LOCKED, ["report"])["generation"] == 2
    assert [e["fault"] for e in events(fleet, "evidence_fault")] == ["eperm", "eperm"]
    assert [e["bdf"] for e in events(fleet, "evidence_read") if e["result"] == "EPERM"] == [LOCKED, None]


# --- faults: generation changes, truncation, absence ----------------------------------------------------------------

def test_generation_bump_mid_dump_is_retried_and_succeeds(client, fleet):
    h = fleet.hosts[HOST]
    set_fault(h, "generation_bump", LOCKED, 2)
    result = client.read(LOCKED, ["cert0", "measurements", "report"])
    assert result["generation"] == 4 == h.devices[LOCKED].generation
    reads = [e["result"] for e in events(fleet, "evidence_read")]
    assert reads == ["EAGAIN", "EAGAIN", "ok"]
    assert len(events(fleet, "generation")) == 2
    assert "generation_bump" not in h.evidence_faults or not h.evidence_faults["generation_bump"]


def test_generation_bump_on_every_dump_exhausts_the_retries(fleet, sockdir):
    h = fleet.hosts[HOST]
    set_fault(h, "generation_bump", None, -1)
    with EvidenceServer(fleet, sockdir) as srv, EvidenceClient(srv.endpoint(HOST), retries=2) as c:
        with pytest.raises(EvidenceError) as exc:
            c.read(LOCKED, ["cert0", "report"])
        assert exc.value.errno == errno.EAGAIN
        assert "the evidence changed during each of 3 read attempts" in str(exc.value)
        assert "evidence updated during read" in str(exc.value)
        # a dump of a single message cannot be interrupted between two messages
        assert c.generation(LOCKED) == h.devices[LOCKED].generation == 5


def test_eagain_reaches_the_raw_reader_in_nlmsg_done(raw, fleet):
    set_fault(fleet.hosts[HOST], "generation_bump", LOCKED, 1)
    assert raw.error(FID, DUMP, 1, read_attrs(mask=1 | 1 << 10)) == (errno.EAGAIN, "evidence updated during read", "NLMSG_DONE")


@pytest.mark.parametrize("target, bad", [("measurements", "measurements"), ("*", "cert0")])
def test_truncated_object_fault(client, fleet, target, bad):
    h = fleet.hosts[HOST]
    set_fault(h, "truncate", LOCKED, target)
    with pytest.raises(EvidenceError) as exc:
        client.read(LOCKED, ["cert0", "measurements", "report"])
    assert exc.value.errno == errno.EPROTO
    assert "object %s is truncated" % bad in str(exc.value)
    clear_fault(h, "truncate", LOCKED)
    assert len(client.read(LOCKED, ["cert0", "measurements", "report"])["objects"]) == 3


def test_endpoint_absent_fault(client, server, fleet):
    h = fleet.hosts[HOST]
    assert client.generation(LOCKED) == 2
    set_fault(h, "absent")
    server.sync()
    assert not os.path.exists(server.path(HOST))
    with pytest.raises(EvidenceError) as exc:
        client.read(LOCKED, ["report"])
    assert exc.value.errno in (errno.ENOENT, errno.ECONNREFUSED)
    assert "is absent (not listening)" in str(exc.value)
    clear_fault(h, "absent")
    server.sync()
    assert stat.S_ISSOCK(os.lstat(server.path(HOST)).st_mode)
    assert client.generation(LOCKED) == 2


def test_fault_arguments_are_checked(fleet):
    h = fleet.hosts[HOST]
    for kind, value in (("nonsense", True), ("generation_bump", 0), ("generation_bump", -2), ("generation_bump", "x"), ("truncate", "cert9")):
        with pytest.raises(ValueError):
            set_fault(h, kind, LOCKED, value)
    set_fault(h, "generation_bump", LOCKED, True)
    assert h.evidence_faults["generation_bump"] == {LOCKED: 1}
    with pytest.raises(ValueError):
        clear_fault(h, "nonsense")


# --- validate -------------------------------------------------------------------------------------------------------

def test_validate_records_the_generation_and_guards_accept(client, fleet):
    h = fleet.hosts[HOST]
    device = h.devices[LOCKED]
    generation = client.generation(LOCKED)
    assert client.validate(LOCKED, generation) is True
    assert device.validated_generation == generation
    assert events(fleet, "evidence_validate")[-1]["result"] == "ok"
    h.fault_generation(device)    # the evidence changes after validation ...
    with pytest.raises(OSError) as exc:
        h.store_accept(device, "1")   # ... so the kernel model refuses accept
    assert exc.value.errno == errno.EAGAIN
    with pytest.raises(EvidenceError) as err:
        client.validate(LOCKED, generation)
    assert err.value.errno == errno.EAGAIN and "the evidence changed since generation %d" % generation in str(err.value)
    assert client.validate(LOCKED, client.generation(LOCKED)) is True
    h.store_accept(device, "1")
    assert device.accepted


@pytest.mark.parametrize("attrs, code", [
    ([nl.nla_string(5, LOCKED), nl.nla_u32(7, 2)], errno.EINVAL),
    ([nl.nla_string(4, "pci"), nl.nla_u32(7, 2)], errno.EINVAL),
    ([nl.nla_string(4, "pci"), nl.nla_string(5, LOCKED)], errno.EINVAL),
    ([nl.nla_string(4, "pci"), nl.nla_string(5, LOCKED), nl.nla_u32(7, 2), nl.nla_u32(2, 1)], errno.EINVAL),
    ([nl.nla_string(4, "usb"), nl.nla_string(5, LOCKED), nl.nla_u32(7, 2)], errno.EOPNOTSUPP),
    ([nl.nla_string(4, "pci"), nl.nla_string(5, "0000:99:00.0"), nl.nla_u32(7, 2)], errno.ENODEV),
    ([nl.nla_string(4, "pci"), nl.nla_string(5, UNLOCKED), nl.nla_u32(7, 1)], errno.ENXIO),
    ([nl.nla_string(4, "pci"), nl.nla_string(5, LOCKED), nl.nla_u32(7, 1)], errno.EAGAIN),
])
def test_validate_errors_on_the_wire(raw, fleet, attrs, code):
    assert raw.error(FID, DO, 2, attrs)[:2][0] == code
    assert fleet.hosts[HOST].devices[LOCKED].validated_generation is None


def test_validate_reply_then_acknowledgement(raw, fleet):
    seq = raw.send(FID, DO, 2, [nl.nla_string(4, "pci"), nl.nla_string(5, LOCKED), nl.nla_u32(7, 2)])
    reply, ack = raw.messages()
    assert (reply.type, reply.seq) == (FID, seq)
    assert nl.parse_genl(reply.payload) == (2, 1, [(7, struct.pack("=I", 2))])
    assert nl.parse_error(ack) == (0, None)


# --- many hosts -----------------------------------------------------------------------------------------------------

def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_one_socket_per_host_for_a_fleet_of_1000(sockdir):
    names = ["cvm-%04d" % i for i in range(1000)]
    fleet = make_fleet(hosts=names)
    for i, name in enumerate(names):
        fleet.hosts[name].devices[LOCKED].generation = 1000 + i
    baseline = open_fds()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        assert hard >= 1064, "this machine cannot open a socket per host"
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))   # a default soft limit too low for 1000 sockets
    srv = EvidenceServer(fleet, sockdir).start()
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 1064   # start() raised it
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        sockets = sorted(p for p in os.listdir(sockdir) if p.endswith(".sock"))
        assert sockets == sorted(n + ".sock" for n in names)
        assert all(stat.S_ISSOCK(os.lstat(os.path.join(sockdir, p)).st_mode) for p in sockets)
        assert open_fds() - baseline >= 1000
        # every socket serves its own host
        for i, name in enumerate(names):
            with EvidenceClient(srv.endpoint(name)) as c:
                assert c.generation(LOCKED) == 1000 + i
        # a host added while running gets its socket
        late = fleet.add_host("cvm-late")
        late.tsms[1] = Tsm(1, "devsec")
        late.devices[LOCKED] = Device(LOCKED, "0x10de", "0x2330", "0x030200", tee=True)
        late.store_lock(late.devices[LOCKED], "tsm1")
        srv.sync()
        with EvidenceClient(srv.endpoint("cvm-late")) as c:
            assert c.generation(LOCKED) == 2
    finally:
        srv.stop()
    assert [p for p in os.listdir(sockdir) if p.endswith(".sock")] == []
    assert open_fds() == baseline
    assert srv.error is None


def test_socket_path_too_long_is_refused():
    fleet = make_fleet(hosts=("h" * 120,))
    with pytest.raises(OSError) as exc:
        EvidenceServer(fleet, "/tmp").start()
    assert exc.value.errno == errno.ENAMETOOLONG


# --- the scenario evidence provider -----------------------------------------------------------------------------------

PROFILES = {
    "gpu-1.0": {
        "firmware_version": "1.0.0", "svn": 3,
        "measurements": [{"index": 1, "type": "immutable_rom", "value_seed": "gpu/rom"},
                         {"index": 2, "type": "mutable_firmware", "value_seed": "gpu/fw/1.0"}],
        "interface": {"no_fw_update": True, "dma_without_pasid": True, "p2p": False,
                      "mmio_ranges": [{"bar": 0, "size": "0x1000000"}, {"bar": 2, "size": "0x2000000000"}]},
    },
    "gpu-tampered": {
        "firmware_version": "1.0.0", "svn": 3,
        "measurements": [{"index": 1, "type": "immutable_rom", "value_seed": "gpu/rom"},
                         {"index": 2, "type": "mutable_firmware", "value_seed": "gpu/fw/1.0+implant"}],
    },
}
SPEC = {"netlink": {"family": "device-evidence", "validate": True}, "profiles": PROFILES,
        "pki": {"valid": {"chain": "valid"}, "expired": {"chain": "expired"}, "wrong-root": {"chain": "wrong_root"}}}


def der_chain(cert_chain: bytes):
    """Split an SPDM certificate chain (Length u16, Reserved u16, RootHash 48 bytes, DER certs) without the parsers."""
    assert struct.unpack_from("<H", cert_chain)[0] == len(cert_chain)
    rest = cert_chain[4 + 48:]
    certs = []
    while rest:
        assert rest[0] == 0x30 and rest[1] == 0x82
        n = 4 + struct.unpack(">H", rest[2:4])[0]
        certs.append(x509.load_der_x509_certificate(rest[:n]))
        rest = rest[n:]
    assert hashlib.sha384(certs[0].public_bytes(serialization.Encoding.DER)).digest() == cert_chain[4:52]   # RootHash
    return certs


@pytest.fixture(scope="module")
def provider_env():
    fleet = make_fleet(hosts=("cvm-a", "cvm-b"), evidence_spec=SPEC)
    for h in fleet.hosts.values():
        h.devices[LOCKED].profile = "gpu-1.0"
        h.devices[LOCKED].pki = "valid"
    pki_dir = tempfile.mkdtemp(prefix="pki", dir="/tmp")
    yield fleet, pki_dir
    shutil.rmtree(pki_dir, ignore_errors=True)


def test_provider_builds_scenario_evidence(provider_env):
    fleet, pki_dir = provider_env
    provider = EvidenceProvider(fleet, pki_dir)
    h = fleet.hosts["cvm-a"]
    d = h.devices[LOCKED]
    got = provider(h, d, ["cert0", "cert1", "vca", "measurements", "report"], None)
    assert got["cert1"] == b"" and all(got[k] for k in ("cert0", "vca", "measurements", "report"))
    root, intermediate, leaf = der_chain(got["cert0"])
    assert "SPDM responder cvm-a_%s" % LOCKED in leaf.subject.rfc4514_string()
    assert root.subject == root.issuer and leaf.issuer == intermediate.subject
    assert provider.trust_anchor_pem().startswith(b"-----BEGIN CERTIFICATE-----")
    # cached per generation: same bytes again; a nonce changes only the measurements
    assert provider(h, d, ["cert0", "vca", "measurements", "report"], None) == {k: got[k] for k in ("cert0", "vca", "measurements", "report")}
    with_nonce = provider(h, d, ["measurements", "report"], b"\x01" * 32)
    assert with_nonce["report"] == got["report"] and with_nonce["measurements"] != got["measurements"]
    assert provider(h, d, ["measurements"], b"\x01" * 32) == {"measurements": with_nonce["measurements"]}
    # the measurement digests are H(value_seed)
    assert hashlib.sha384(b"gpu/fw/1.0").digest() in got["measurements"]
    # another host's device has its own leaf
    other = provider(fleet.hosts["cvm-b"], fleet.hosts["cvm-b"].devices[LOCKED], ["cert0"], None)["cert0"]
    assert der_chain(other)[2].public_key().public_numbers() != leaf.public_key().public_numbers()
    # a new generation re-gathers the lock-time measurements but keeps the certificates
    h.fault_generation(d)
    regen = provider(h, d, ["cert0", "measurements"], None)
    assert regen["cert0"] == got["cert0"] and regen["measurements"] != got["measurements"]


def test_provider_pki_variants_and_profile_switches(provider_env):
    fleet, pki_dir = provider_env
    provider = EvidenceProvider(fleet, pki_dir)
    h = fleet.hosts["cvm-a"]
    d = h.devices[LOCKED]
    good = provider(h, d, ["cert0", "measurements"], None)
    d.pki = "expired"
    expired_leaf = der_chain(provider(h, d, ["cert0"], None)["cert0"])[-1]
    assert expired_leaf.not_valid_after_utc.year == 2021
    d.pki = "wrong-root"
    wrong = der_chain(provider(h, d, ["cert0"], None)["cert0"])
    assert wrong[0].subject != der_chain(good["cert0"])[0].subject
    d.pki = "valid"
    d.profile = "gpu-tampered"
    tampered = provider(h, d, ["measurements"], None)["measurements"]
    assert hashlib.sha384(b"gpu/fw/1.0+implant").digest() in tampered
    d.profile = "gpu-1.0"
    # the PKI directory keeps the chains across provider instances (and restarts)
    assert EvidenceProvider(fleet, pki_dir)(h, d, ["cert0"], None)["cert0"] == good["cert0"]


def test_provider_errors_become_eio_on_the_wire(provider_env, sockdir):
    fleet, pki_dir = provider_env
    h = fleet.hosts["cvm-b"]
    h.devices[LOCKED].profile = "no-such-profile"
    try:
        with EvidenceServer(fleet, sockdir, EvidenceProvider(fleet, pki_dir)) as srv, EvidenceClient(srv.endpoint("cvm-b")) as c:
            with pytest.raises(EvidenceError) as exc:
                c.read(LOCKED, ["report"])
            assert exc.value.errno == errno.EIO
        assert "no-such-profile" in events(fleet, "evidence_error")[-1]["error"]
    finally:
        h.devices[LOCKED].profile = "gpu-1.0"


def test_generic_profile_and_profile_checks(provider_env):
    fleet, pki_dir = provider_env
    h = fleet.hosts["cvm-a"]
    d = h.devices[UNLOCKED]
    got = EvidenceProvider(fleet, pki_dir)(h, d, ["measurements", "report"], None)
    assert hashlib.sha384(b"generic/fw/0x10de:0x2330").digest() in got["measurements"]
    for bad in ({"firmware_version": "1", "svn": 1, "measurements": [{"index": 1}]},
                {"firmware_version": "1", "svn": 1, "measurements": [{"index": 1, "type": "immutable_rom"}]},
                {"firmware_version": "1", "svn": 1, "interface": {"colour": "blue"}},
                {"firmware_version": "1", "svn": 1, "interface": {"mmio_ranges": [{"bar": 0, "size": "0x1001"}]}},
                {"firmware_version": "1", "svn": 1, "unknown_key": 1}):
        with pytest.raises(ProviderError):
            profile_from_scenario("bad", bad)


def test_provider_served_evidence_parses_with_the_collection_parsers(provider_env, sockdir):
    from ansible_collections.coco.tdisp.plugins.module_utils._evidence.objects import parse_object
    fleet, pki_dir = provider_env
    with EvidenceServer(fleet, sockdir, EvidenceProvider(fleet, pki_dir)) as srv, EvidenceClient(srv.endpoint("cvm-a")) as c:
        objects = c.read(LOCKED, ["cert0", "vca", "measurements", "report"], nonce=os.urandom(32))["objects"]
    vca = parse_object("vca", objects["vca"])
    measurements = parse_object("measurements", objects["measurements"], vca)
    report = parse_object("report", objects["report"])
    chain = parse_object("cert0", objects["cert0"], vca)
    assert measurements["firmware_version"] == "1.0.0" and measurements["firmware_svn"] == 3
    assert report["interface_info"]["no_fw_update"] is True and len(report["mmio_ranges"]) == 2
    assert len(chain["certificates"]) == 3


@pytest.mark.parametrize("code", [errno.EINVAL, errno.EOPNOTSUPP, errno.ENODEV, errno.EAGAIN, errno.EINTR, errno.ENOMEM])
def test_every_read_errno_of_the_kernel_table_has_its_own_remedy(code):
    """kernel-abi.md §8, the errors of `read`: each one reaches the operator with a remedy of its own."""
    c = EvidenceClient("unix:/nonexistent")
    try:
        e = c._refusal(code, None, "0000:18:00.0", "evidence read")
    finally:
        c.close()
    assert "report it with the kernel version" not in e.remedy or code == errno.EINVAL, e.remedy
    assert "(%s)" % errno.errorcode[code] in str(e)
