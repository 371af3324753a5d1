# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A bounds-checked little-endian byte reader for the evidence parsers (private; may change at any time).

Every read names the field it reads. A read past the end of the window raises ``EvidenceError`` with
the object, the field, the offset and how many bytes were missing, so no parser ever lets an
``IndexError`` or ``struct.error`` escape. Offsets in messages are offsets into the whole object.
"""

from __future__ import annotations

import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError


def evidence_error(obj: str, field: str, offset: t.Optional[int], problem: str) -> EvidenceError:
    """Build the one-line error ``evidence <obj>: <field> at offset <n>: <problem>``."""
    where = field if offset is None else '%s at offset %d' % (field, offset)
    err = EvidenceError('%s: %s' % (where, problem), attribute='evidence %s' % obj)
    # Machine-readable copies for callers and tests (the message stays the contract for humans).
    err.evidence_object = obj  # type: ignore[attr-defined]
    err.field = field  # type: ignore[attr-defined]
    err.offset = offset  # type: ignore[attr-defined]
    return err


def as_bytes(data: t.Any, obj: str) -> bytes:
    """Accept bytes, bytearray or memoryview; anything else is an EvidenceError."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise evidence_error(obj, 'object', None, 'expected bytes, got %s' % type(data).__name__)


class Reader:
    """Sequential reader over ``data[start:end]``; ``pos`` is an absolute offset into ``data``."""

    __slots__ = ('data', 'obj', 'pos', 'end', 'limit')

    def __init__(self, data: bytes, obj: str, start: int = 0, end: t.Optional[int] = None, limit: t.Optional[str] = None) -> None:
        self.data = data
        self.obj = obj
        self.pos = start
        self.end = len(data) if end is None else end
        self.limit = limit  # the length field that set ``end``, named in truncation messages

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def fail(self, field: str, problem: str, offset: t.Optional[int] = None) -> EvidenceError:
        return evidence_error(self.obj, field, self.pos if offset is None else offset, problem)

    def need(self, size: int, field: str) -> None:
        """Raise unless ``size`` more bytes are available (the length check before any trust)."""
        if size < 0 or size > self.remaining:
            where = ' before the end set by %s' % self.limit if self.limit else ''
            raise self.fail(field, 'truncated: needs %d bytes, %d remain%s' % (size, self.remaining, where))

    def take(self, size: int, field: str) -> bytes:
        self.need(size, field)
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def skip(self, size: int, field: str) -> None:
        self.need(size, field)
        self.pos += size

    def uint(self, size: int, field: str) -> int:
        return int.from_bytes(self.take(size, field), 'little')

    def u8(self, field: str) -> int:
        return self.uint(1, field)

    def u16(self, field: str) -> int:
        return self.uint(2, field)

    def u24(self, field: str) -> int:
        return self.uint(3, field)

    def u32(self, field: str) -> int:
        return self.uint(4, field)

    def u64(self, field: str) -> int:
        return self.uint(8, field)

    def done(self, what: str) -> None:
        """Raise if bytes are left over after the last field of ``what``."""
        if self.pos != self.end:
            raise self.fail(what, '%d unexpected trailing bytes after the last field' % (self.end - self.pos))
