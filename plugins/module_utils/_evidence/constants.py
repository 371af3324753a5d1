# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The facts of the ``device-evidence`` netlink family, defined once (private; may change at any time).

kernel-abi.md section 8: enum ``type`` cert0=0 .. cert7=7, vca=8, measurements=9, report=10;
``type-mask`` bit n = 1 << n; ``max-object-size`` 16 MiB; ``max-nonce-size`` 32. Everything
else in ``_evidence`` and the modules imports these names; nothing repeats them. This module
imports nothing heavier than the domain error types, so a module may validate its options
without loading the parsers or the socket client.
"""

from __future__ import annotations

import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError, TdispError

# enum ``type``: the position is the kernel's number.
TYPE_NAMES: t.Tuple[str, ...] = tuple(['cert%d' % n for n in range(8)] + ['vca', 'measurements', 'report'])
TYPE_NUMBERS: t.Dict[str, int] = {name: number for number, name in enumerate(TYPE_NAMES)}
CERT_SLOTS: t.Tuple[str, ...] = TYPE_NAMES[:8]

MAX_OBJECT_SIZE = 0x01000000   # max-object-size (16 MiB)
MAX_NONCE_SIZE = 32            # max-nonce-size (device-evidence); the older pci-tsm family took 256
FLAG_DIGEST = 1 << 0           # flags: digest
SUBSYS_PCI = 'pci'

# What a module reads per object unless told otherwise (the 16 MiB kernel maximum would let one
# object fill the module's memory and the controller's result).
DEFAULT_MAX_OBJECT_SIZE = 262144

# The endpoint option: ``netlink`` (the kernel) or ``unix:/absolute/path`` (a simulator host socket).
ENDPOINT_NETLINK = 'netlink'
ENDPOINT_UNIX_PREFIX = 'unix:/'
DEFAULT_ENDPOINT = ENDPOINT_NETLINK


def type_flag(type_name: t.Any) -> int:
    """The ``type-mask`` bit of one object type; an unknown name is a one-line ``EvidenceError``."""
    if not isinstance(type_name, str) or type_name not in TYPE_NUMBERS:
        raise EvidenceError('unknown evidence object type %r (known: %s)' % (type_name, ', '.join(TYPE_NAMES)),
                            attribute='evidence type', remedy='ask for one of the known types')
    return 1 << TYPE_NUMBERS[type_name]


def type_mask(type_names: t.Iterable[str]) -> int:
    """The ``type-mask`` for several object types."""
    mask = 0
    for name in type_names:
        mask |= type_flag(name)
    return mask


def is_endpoint(endpoint: t.Any) -> bool:
    """The endpoint rule: ``netlink``, or ``unix:/`` followed by the rest of an absolute path."""
    return isinstance(endpoint, str) and (endpoint == ENDPOINT_NETLINK or
                                          (endpoint.startswith(ENDPOINT_UNIX_PREFIX) and len(endpoint) > len(ENDPOINT_UNIX_PREFIX)))


def unix_socket_path(endpoint: str) -> t.Optional[str]:
    """The socket path of a ``unix:/path`` endpoint (that passed ``is_endpoint``); None for ``netlink``."""
    return None if endpoint == ENDPOINT_NETLINK else endpoint[len(ENDPOINT_UNIX_PREFIX) - 1:]


def check_endpoint(endpoint: t.Any) -> str:
    """The endpoint, or a one-line TdispError if it is neither ``netlink`` nor ``unix:/path``."""
    if is_endpoint(endpoint):
        return endpoint
    raise TdispError('evidence_endpoint %r is neither netlink nor unix:/path' % (endpoint,), attribute='evidence_endpoint',
                     remedy="use 'netlink' on a real host, or the simulator host's unix:/path socket (tdisp_evidence_endpoint)")
