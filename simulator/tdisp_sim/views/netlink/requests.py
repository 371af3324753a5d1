"""What the kernel answers to each evidence-endpoint request: nlctrl family lookup, ``validate``,
and the ``read`` dump (pre-checks, then one reply datagram per step, ending with NLMSG_DONE).

``RequestHandler`` is a part of ``server.EvidenceServer``; it reads the model under the fleet lock
and the host's ``evidence_faults`` table (it never arms a fault)."""

from __future__ import annotations

import errno
import hashlib
import struct
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ...kernel import Device, Fleet, Host
from .wire import (CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_ATTR_HDRSIZE, CTRL_ATTR_MAXATTR, CTRL_ATTR_OP_FLAGS,
                   CTRL_ATTR_OP_ID, CTRL_ATTR_OPS, CTRL_ATTR_VERSION, CTRL_CMD_GETFAMILY, CTRL_CMD_NEWFAMILY, F_ACK, F_DUMP,
                   F_MULTI, F_REQUEST, FLAG_DIGEST, GENL_ADMIN_PERM, GENL_CMD_CAP_DO, GENL_CMD_CAP_DUMP, GENL_CMD_CAP_HASPOL,
                   GENL_ID_CTRL, MAX_OBJECT_SIZE, NLMSG_MIN_TYPE, TYPE_MASK_ALL, TYPES, Invalid, Request, attr, attr_str,
                   attr_u32, attrs_raw, check_policy, done_message, error_message, genl_message, name_attr, parse_attrs,
                   parse_genl, u32)

Provider = Callable[[Host, Device, List[str], Optional[bytes]], Dict[str, bytes]]

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


class RequestHandler:
    """The request side of ``EvidenceServer`` (a part of it; ``server.py`` has the sockets)."""

    # Set by EvidenceServer.__init__.
    fleet: Fleet
    family: Dict[str, Any]
    family_name: str
    validate_enabled: bool
    nonce_refresh: bool
    chunk_size: int
    provider: Provider

    def _handle(self, conn: Any, host: Host, req: Request) -> None:
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
        cmd, attrs = parse_genl(req)
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

    def _family_request(self, conn: Any, host: Host, req: Request) -> List[bytes]:
        fam = self.family
        cmd, attrs = parse_genl(req)
        dump = req.flags & F_DUMP == F_DUMP
        if cmd == fam["read"] and dump:
            op = "read"
        elif cmd == fam["validate"] and self.validate_enabled and not dump:
            op = "validate"
        else:
            raise Invalid(errno.EOPNOTSUPP, "command %d (%s) not supported" % (cmd, "dump" if dump else "do"))
        # genetlink checks GENL_ADMIN_PERM before parsing any attribute
        with self.fleet.lock:
            eperm = host.evidence_faults.flag("eperm")
        try:
            if eperm:
                raise Invalid(errno.EPERM, "Operation not permitted")
            values = check_policy(fam, op, attrs)
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
            subsys = name_attr(values, "subsys", "missing subsys name")
        else:
            subsys = "pci"
        dev_name = name_attr(values, "dev-name", "missing device name")
        if subsys != "pci":
            raise Invalid(errno.EOPNOTSUPP, "no evidence provider for subsys '%s'" % subsys)
        device = host.devices.get(dev_name)
        if device is None or not device.present:
            raise Invalid(errno.ENODEV, "device '%s:%s' evidence not found" % (subsys, dev_name))
        return dev_name, device

    def _validate(self, host: Host, req: Request, values: Dict[str, bytes]) -> List[bytes]:
        label = values.get("dev-name", b"").split(b"\0", 1)[0].decode("utf-8", "replace") or None
        asked = u32(values["generation"]) if "generation" in values else None
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
                mask = u32(values["type-mask"])
                if mask & ~TYPE_MASK_ALL:
                    raise Invalid(errno.EINVAL, "unsupported object request %#x" % (mask & ~TYPE_MASK_ALL))
                if not mask:
                    raise Invalid(errno.EINVAL, "no evidence type requested")
                flags = u32(values["flags"]) if "flags" in values else 0
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
                # samples/devsec serves its own blobs (cert0, measurements); everything else is the provider's
                sample = host.sample_objects(device)
                objects = sample if sample is not None else self.provider(host, device, list(types), nonce)
            except Exception as exc:  # a broken provider is the simulator's bug: say so, do not hang the client
                host.log(dev_name, "evidence_error", error="%s: %s" % (type(exc).__name__, exc))
                yield fail(errno.EIO, "evidence provider failed")
                return
        truncate = host.evidence_faults.for_device("truncate", dev_name)
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
                    if sent_messages >= 1 and not bumped and host.evidence_faults.take_bump(dev_name):
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
