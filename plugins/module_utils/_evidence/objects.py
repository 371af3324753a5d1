# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""One dispatching parser over the evidence object types, and the digest helper (private; may change at any time).

The type names, numbers and size limit are the family's facts in ``constants``.
"""

from __future__ import annotations

import hashlib
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._evidence._reader import as_bytes, evidence_error
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.certchain import parse_cert_chain
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.constants import MAX_OBJECT_SIZE, type_flag
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.interface_report import parse_interface_report
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.spdm import parse_measurements, parse_vca


def digest(data: bytes) -> str:
    """``sha384:<hex>`` of an object, the form reports and manifests use."""
    return 'sha384:' + hashlib.sha384(as_bytes(data, 'object')).hexdigest()


def _size(context: t.Mapping[str, t.Any], key: str, type_name: str) -> t.Optional[int]:
    value = context.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise evidence_error(type_name, 'context.%s' % key, None, 'must be a positive integer or None, got %r' % (value,))
    return value


def parse_object(type_name: str, data: bytes, context: t.Optional[t.Mapping[str, t.Any]] = None) -> t.Dict[str, t.Any]:
    """Parse one evidence object by its type name.

    ``context`` carries what the VCA negotiated; the dict ``parse_vca`` returns can be passed as is:
    ``hash_size`` (certificate chains), ``measurement_hash_size`` and ``signature_size`` (measurements).
    Raises only ``EvidenceError``.
    """
    type_flag(type_name)  # an unknown type is an EvidenceError
    if context is None:
        context = {}
    elif not isinstance(context, t.Mapping):
        raise evidence_error(type_name, 'context', None, 'expected a mapping or None, got %s' % type(context).__name__)
    data = as_bytes(data, type_name)
    if len(data) > MAX_OBJECT_SIZE:
        raise evidence_error(type_name, 'object', None, '%d bytes exceed the %d-byte maximum object size' % (len(data), MAX_OBJECT_SIZE))
    if type_name == 'vca':
        return parse_vca(data)
    if type_name == 'measurements':
        return parse_measurements(data, hash_size=_size(context, 'measurement_hash_size', type_name),
                                  signature_size=_size(context, 'signature_size', type_name))
    if type_name == 'report':
        return parse_interface_report(data)
    return parse_cert_chain(data, hash_size=_size(context, 'hash_size', type_name))
