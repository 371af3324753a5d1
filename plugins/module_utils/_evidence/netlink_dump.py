# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The assembly of one evidence ``read`` dump into objects (private; may change at any time).

No socket here: the client feeds the payload of every data message of the dump and calls
``finish()`` at ``NLMSG_DONE``. Malformed dumps are ``WireError`` (EPROTO); objects over the size
limits are ``EvidenceError`` (EFBIG) naming no device, which the client adds.
"""

from __future__ import annotations

import errno as _errno
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.constants import MAX_OBJECT_SIZE, TYPE_NAMES, type_flag
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.netlink_families import Family
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.netlink_wire import PROTO_REMEDY, WireError, get_u32, parse_genl

TOTAL_REMEDY = 'read fewer object types per call'


def _too_big(cause: str, remedy: str) -> EvidenceError:
    return EvidenceError(cause, attribute='netlink', errno=_errno.EFBIG, remedy=remedy)


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
        if not self.mask & type_flag(name):
            raise WireError('object %s was not asked for' % name)
        if obj_type in self.objects:
            raise WireError('object %s sent twice' % name)
        if self.family.has_generation:
            if generation is None or length is None:
                raise WireError('object %s starts without generation and length' % name)
            if length > MAX_OBJECT_SIZE:
                raise _too_big('object %s announces %d bytes, over the %d-byte max-object-size' % (name, length, MAX_OBJECT_SIZE), PROTO_REMEDY)
            if self.total + length > self.max_total:
                raise _too_big('the reply announces more than %d bytes in all' % self.max_total, TOTAL_REMEDY)
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
                raise _too_big('object %s exceeds the %d-byte max-object-size' % (self._name(self.current), MAX_OBJECT_SIZE), PROTO_REMEDY)
            self.total += len(chunk)
            if self.total > self.max_total:
                raise _too_big('the reply carries more than %d bytes in all' % self.max_total, TOTAL_REMEDY)
        data.extend(chunk)

    def finish(self) -> t.Tuple[t.Optional[int], t.Dict[int, bytes]]:
        """At NLMSG_DONE: the generation and the complete objects, in type order."""
        self._close_current()
        missing = [name for number, name in enumerate(TYPE_NAMES) if self.mask & type_flag(name) and number not in self.objects]
        if missing:
            raise WireError('the dump ended without object(s) %s' % ', '.join(missing))
        return self.generation, {n: bytes(self.objects[n]) for n in sorted(self.objects)}
