# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The two generic-netlink evidence families, their requests and how one is chosen (private; may change at any time).

* ``device-evidence`` (kernel-abi.md section 8): intel-staging/tdx
  ``Documentation/netlink/specs/device-evidence.yaml`` @ 9167426a and the devsec-phase2 kernel
  implementation (one object = a first message with ``type``, ``generation`` and ``length``, then
  ``val`` chunks, one per message, until ``length`` bytes; the generation is captured at the start
  of the dump and a change ends the dump with ``EAGAIN``); the ``validate`` command (cmd 2, a "do"
  with ``subsys``, ``dev-name``, ``generation``) from the devsec tool ``tools/testing/devsec/main.c``.
* ``pci-tsm`` (kernel-abi.md section 1d), its predecessor: devsec/tsm
  ``Documentation/netlink/specs/pci-tsm.yaml`` (attributes type=1, type-mask=2, flags=3, dev-name=4,
  nonce=5, val=6; command ``evidence-read`` = 1; no generation, no length: an object is the ``val``
  chunks that follow its ``type``).

The object types, the mask rule and the size limits are in ``constants``; the wire format in
``netlink_wire``.
"""

from __future__ import annotations

import errno as _errno
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.constants import MAX_NONCE_SIZE, SUBSYS_PCI
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.netlink_wire import FamilyInfo, nla, nla_string, nla_u32

MAX_DEV_NAME = 31  # the kernel copies dev-name and subsys into 32-byte buffers (nla_strscpy)
PCI_TSM_MAX_NONCE = 256
NO_FAMILY_REMEDY = 'the kernel has no device-evidence netlink family (kernel without the TSM evidence series)'


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

    @property
    def has_generation(self) -> bool:
        """Whether an object starts with ``generation`` and ``length`` (device-evidence) or not (pci-tsm)."""
        return 'generation' in self.attrs

    def read_attrs(self, dev_name: str, mask: int, flags: int, nonce: t.Optional[bytes]) -> t.List[bytes]:
        """The attributes of a ``read`` dump request."""
        numbers = self.attrs
        attrs = [nla_u32(numbers['type-mask'], mask), nla_u32(numbers['flags'], flags)]
        if 'subsys' in numbers:
            attrs.append(nla_string(numbers['subsys'], SUBSYS_PCI))
        attrs.append(nla_string(numbers['dev-name'], dev_name))
        if nonce is not None:
            attrs.append(nla(numbers['nonce'], nonce))
        return attrs

    def validate_attrs(self, dev_name: str, generation: int) -> t.List[bytes]:
        """The attributes of a ``validate`` request (device-evidence only)."""
        numbers = self.attrs
        return [nla_string(numbers['subsys'], SUBSYS_PCI), nla_string(numbers['dev-name'], dev_name), nla_u32(numbers['generation'], generation)]


DEVICE_EVIDENCE = Family(
    'device-evidence', read_cmd=1, validate_cmd=2,
    attrs={'type': 1, 'type-mask': 2, 'flags': 3, 'subsys': 4, 'dev-name': 5, 'nonce': 6,
           'generation': 7, 'count': 8, 'length': 9, 'val': 10},
    max_nonce=MAX_NONCE_SIZE)
PCI_TSM = Family(
    'pci-tsm', read_cmd=1, validate_cmd=None,
    attrs={'type': 1, 'type-mask': 2, 'flags': 3, 'dev-name': 4, 'nonce': 5, 'val': 6},
    max_nonce=PCI_TSM_MAX_NONCE)
FAMILIES = (DEVICE_EVIDENCE, PCI_TSM)   # in the order they are looked up


def resolve(lookup: t.Callable[[str], t.Optional[FamilyInfo]], where: str, dev: t.Optional[str], op: str) -> t.Tuple[Family, FamilyInfo]:
    """The first of ``FAMILIES`` the peer at ``where`` knows, with what nlctrl says about it.

    ``lookup(name)`` asks nlctrl and returns None when the family is absent (ENOENT). A family
    whose op list lacks the read command is refused rather than skipped: that kernel speaks an
    evidence ABI coco.tdisp does not know.
    """
    for family in FAMILIES:
        info = lookup(family.name)
        if info is None:
            continue
        if info.ops and family.read_cmd not in info.ops:
            raise EvidenceError('the %s family lists no read operation (ops: %s)' % (family.name, ', '.join(str(o) for o in sorted(info.ops))),
                                device=dev, attribute=op, errno=_errno.EOPNOTSUPP,
                                remedy='this kernel\'s evidence ABI is not one coco.tdisp knows: report it with the kernel version')
        return family, info
    raise EvidenceError('no generic netlink family %s on %s' % (' or '.join(f.name for f in FAMILIES), where),
                        device=dev, attribute=op, errno=_errno.ENOENT, remedy=NO_FAMILY_REMEDY)
