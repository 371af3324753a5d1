# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Generic-netlink client for device evidence (private; may change at any time).

``EvidenceClient`` reads evidence objects and validates generations over the ``device-evidence``
generic netlink family (kernel-abi.md section 8) or its predecessor ``pci-tsm`` (section 1d),
with the standard library only. The parts, each in its own module (docs/evidence-transport.md):

* ``constants``: the object types, the mask rule, the size limits, the endpoint rule;
* ``netlink_wire``: the netlink / generic-netlink / nlctrl codec, pure functions over bytes;
* ``netlink_families``: the two families, their requests, and which one is used;
* ``netlink_dump``: the assembly of a read dump into objects;
* ``netlink_socket``: the socket (kernel or simulator endpoint) and the one request/reply loop;
* this module: what each reply means, the errno remedies, and the bounded retry of a read.

Every failure is an ``EvidenceError`` naming the device, the operation, the errno and a remedy.
"""

from __future__ import annotations

import errno as _errno
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.constants import (
    FLAG_DIGEST, MAX_OBJECT_SIZE, SUBSYS_PCI, TYPE_NAMES, type_mask)
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.netlink_dump import DumpAssembler
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.netlink_families import MAX_DEV_NAME, NO_FAMILY_REMEDY, Family, resolve
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.netlink_socket import CAP_REMEDY, NetlinkSocket, op_error
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.netlink_wire import (
    CTRL_ATTR_FAMILY_NAME, CTRL_CMD_GETFAMILY, CTRL_CMD_NEWFAMILY, GENL_ID_CTRL, FamilyInfo, Message, WireError, nla_string,
    parse_family, parse_genl)

# What to do about each errno a peer returns (the operation-specific ones are chosen in _refusal).
_REMEDIES = {
    _errno.EPERM: CAP_REMEDY,
    _errno.EACCES: CAP_REMEDY,
    _errno.ENODEV: 'no such device: check the PCI device name and that the device is present',
    _errno.ENXIO: 'no TSM context or no evidence: lock the device first',
    _errno.EINVAL: 'the kernel rejected the request as malformed: its evidence ABI differs from the one coco.tdisp speaks; report it with the kernel version',
    _errno.EBUSY: 'another evidence dump is still running on this socket: retry',
    _errno.ENOENT: NO_FAMILY_REMEDY,
    _errno.ENOMEM: 'the kernel is out of memory: retry later',
    _errno.EINTR: 'the read was interrupted: retry the task',
}


class _Changed:
    """One read attempt saw the evidence change under it (EAGAIN, ``NLM_F_DUMP_INTR``, or objects of
    one reply with different generations): ``read`` tries again, within its bound."""

    __slots__ = ('cause',)

    def __init__(self, cause: str) -> None:
        self.cause = cause


class EvidenceClient(NetlinkSocket):
    """Reads device evidence over generic netlink; one socket per client, reused across calls.

    ``endpoint`` is ``netlink`` (the kernel) or ``unix:/path`` (a simulator host socket).
    ``timeout`` bounds each wait for a reply datagram, in seconds. ``retries`` is how many times a
    read is repeated after the evidence changed during it (EAGAIN, ``NLM_F_DUMP_INTR``, or objects
    of one reply with different generations); the read is tried at most ``1 + retries`` times.
    """

    MAX_TOTAL_SIZE = 64 * 1024 * 1024   # all objects of one read together

    def __init__(self, endpoint: str = 'netlink', timeout: float = 5.0, retries: int = 3) -> None:
        super().__init__(endpoint, timeout)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise op_error('evidence retries %r is not a non-negative integer' % (retries,), None, 'evidence endpoint', _errno.EINVAL,
                           'pass retries >= 0')
        self.retries = retries
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
                raise op_error('nonce must be 1 to %d bytes for the %s family, got %s'
                               % (family.max_nonce, family.name, '%d bytes' % len(nonce) if isinstance(nonce, (bytes, bytearray)) else type(nonce).__name__),
                               dev_name, op, _errno.EINVAL, 'pass a shorter nonce, or none')
            nonce = bytes(nonce)
        attrs = family.read_attrs(dev_name, mask, FLAG_DIGEST if digest else 0, nonce)
        changed = None  # type: t.Optional[_Changed]
        for _attempt in range(1 + self.retries):
            outcome = self._read_once(family, attrs, mask, dev_name, op, nonce is not None)
            if isinstance(outcome, _Changed):
                changed = outcome
                continue
            generation, objects = outcome
            return {
                'generation': generation,
                'family': family.name,
                'objects': {TYPE_NAMES[n]: data for n, data in objects.items()},
            }
        raise op_error('the evidence changed during each of %d read attempts (last: %s)' % (1 + self.retries, changed.cause if changed else None),
                       dev_name, op, _errno.EAGAIN,
                       'the device is being re-measured or its interface is flapping: check it is not in TDISP ERROR, then read again later')

    def generation(self, dev_name: str) -> int:
        """The current evidence generation, by the cheapest read: the digest of the ``report`` object."""
        result = self.read(dev_name, ['report'], digest=True)
        if result['generation'] is None:
            raise op_error('the %s netlink family reports no evidence generation' % result['family'], dev_name, 'evidence generation',
                           _errno.EOPNOTSUPP, 'pinning a verified generation needs the device-evidence family (a newer kernel)')
        return result['generation']

    def validate(self, dev_name: str, generation: int) -> t.Optional[bool]:
        """Ask the kernel to record ``generation`` as validated (device-evidence ``validate``).

        Returns None when the family has no ``validate`` operation, True when the kernel accepted
        it; raises ``EvidenceError`` when the kernel refuses (e.g. the generation changed)."""
        op = 'evidence validate'
        self._check_dev(dev_name, op)
        if isinstance(generation, bool) or not isinstance(generation, int) or not 0 <= generation <= 0xFFFFFFFF:
            raise op_error('generation %r is not a u32' % (generation,), dev_name, op, _errno.EINVAL, 'pass the generation the evidence was read at')
        family = self._resolve(dev_name, op)
        if family.validate_cmd is None or not self._has_op(family.validate_cmd):
            return None

        def data(msg: Message) -> None:
            parse_genl(msg.payload)  # the (empty) reply is checked, not used

        def refused(code: int, text: t.Optional[str]) -> bool:
            raise self._refusal(code, text, dev_name, op, generation=generation)

        return self.exchange(self._family_id(), family.validate_cmd, family.validate_attrs(dev_name, generation), dev_name, op,
                             dump=False, what='a validate reply', max_bytes=self._max_reply(),
                             data=data, end=lambda _interrupted: True, refused=refused)

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
        if self._family is None:
            self._family, self._info = resolve(lambda name: self._get_family(name, dev, op), self.endpoint, dev, op)
        return self._family

    def _get_family(self, name: str, dev: t.Optional[str], op: str) -> t.Optional[FamilyInfo]:
        """What nlctrl says about family ``name``; None when the peer has no such family (ENOENT)."""
        described = []  # type: t.List[FamilyInfo]

        def data(msg: Message) -> None:
            cmd, _version, attrs = parse_genl(msg.payload)
            if cmd != CTRL_CMD_NEWFAMILY:
                raise WireError('nlctrl replied with command %d, not NEWFAMILY' % cmd)
            info = parse_family(attrs)
            if info.name != name:
                raise WireError('nlctrl described family %r when asked for %r' % (info.name, name))
            described.append(info)

        def end(_interrupted: bool) -> FamilyInfo:
            if not described:
                raise WireError('nlctrl acknowledged GETFAMILY %s without describing it' % name)
            return described[-1]

        def refused(code: int, text: t.Optional[str]) -> t.Optional[FamilyInfo]:
            if code == _errno.ENOENT:
                return None
            raise self._refusal(code, text, dev, op, family=name)

        return self.exchange(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, [nla_string(CTRL_ATTR_FAMILY_NAME, name)], dev, op,
                             dump=False, what='an nlctrl reply', max_bytes=self._max_reply(), data=data, end=end, refused=refused)

    # -- the read dump ---------------------------------------------------------------------------------

    def _max_reply(self) -> int:
        return self.MAX_TOTAL_SIZE + MAX_OBJECT_SIZE

    def _read_once(self, family: Family, attrs: t.List[bytes], mask: int, dev: str, op: str,
                   nonce: bool) -> t.Union[_Changed, t.Tuple[t.Optional[int], t.Dict[int, bytes]]]:
        """One read dump: the generation and the objects, or ``_Changed`` when the read should be repeated."""
        family_id = self._family_id()
        assembler = DumpAssembler(family, mask, self.MAX_TOTAL_SIZE)

        def end(interrupted: bool) -> t.Union[_Changed, t.Tuple[t.Optional[int], t.Dict[int, bytes]]]:
            if interrupted:
                return _Changed('the dump was interrupted by a change (NLM_F_DUMP_INTR)')
            generation, objects = assembler.finish()
            if assembler.generation_changed is not None:
                return _Changed('objects of one reply have generations %d and %d' % assembler.generation_changed)
            return generation, objects

        def refused(code: int, text: t.Optional[str]) -> _Changed:
            err = self._refusal(code, text, dev, op, nonce=nonce)
            if code == _errno.EAGAIN:
                return _Changed(err.cause)
            raise err

        return self.exchange(family_id, family.read_cmd, attrs, dev, op, dump=True,
                             what='a %s dump (family id %d)' % (family.name, family_id), max_bytes=self._max_reply(),
                             data=lambda msg: assembler.feed(msg.payload), end=end, refused=refused)

    # -- errors and argument checks --------------------------------------------------------------------

    def _refusal(self, code: int, text: t.Optional[str], dev: t.Optional[str], op: str, nonce: bool = False,
                 generation: t.Optional[int] = None, family: t.Optional[str] = None) -> EvidenceError:
        """An errno the peer returned, as an EvidenceError with the remedy for this operation."""
        peer = 'the kernel' if self._path is None else 'the evidence endpoint'
        if family is not None:
            peer = 'nlctrl'
        remedy = _REMEDIES.get(code)
        cause = None  # type: t.Optional[str]
        if family is not None:
            cause = 'nlctrl lookup of the %s family failed' % family
        if code == _errno.EAGAIN:
            if generation is not None:
                cause = 'the evidence changed since generation %d' % generation
                remedy = 'read and verify the evidence again, then validate the new generation'
            else:
                cause = 'the evidence changed during the read'
                remedy = 'read the evidence again'
        elif code == _errno.EOPNOTSUPP:
            if nonce:
                cause = 'nonce-driven evidence refresh is not supported'
                remedy = 'retry without a nonce if evidence gathered at lock time is acceptable'
            else:
                remedy = 'the kernel has no evidence provider for the %s subsystem, or lacks this operation' % SUBSYS_PCI
        elif remedy is None:
            remedy = 'see the errno; if it persists, report it with the kernel version'
        if cause is None:
            cause = 'refused by %s' % peer
            said = ': %s' % text if text else ''
        else:
            said = ' (%s: %s)' % (peer, text) if text else ''
        return op_error(cause + said, dev, op, code, remedy)

    @staticmethod
    def _check_dev(dev_name: t.Any, op: str) -> None:
        if not isinstance(dev_name, str) or not dev_name or '\0' in dev_name or len(dev_name.encode('utf-8')) > MAX_DEV_NAME:
            raise op_error('device name %r is not a 1 to %d character name' % (dev_name, MAX_DEV_NAME), None, op, _errno.EINVAL,
                           'pass the PCI device name, e.g. 0000:41:00.0')

    @staticmethod
    def _mask(dev: str, types: t.Any, op: str) -> int:
        if isinstance(types, (str, bytes)) or not isinstance(types, (list, tuple, set, frozenset)) or not types:
            raise op_error('types must be a non-empty list of evidence object types, got %r' % (types,), dev, op, _errno.EINVAL,
                           'name types from: %s' % ', '.join(TYPE_NAMES))
        try:
            return type_mask(types)
        except EvidenceError as exc:
            raise op_error(exc.cause, dev, op, _errno.EINVAL, exc.remedy) from None
