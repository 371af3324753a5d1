# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The validated policy: its vocabulary, its error type and its data classes (private)."""

from __future__ import annotations

import dataclasses
import datetime
import re
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._abi import trust as _abi_trust
from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy import glob as globs
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy import match

# The collection's trust vocabulary, lowest first: the one table of the ABI layer (DESIGN.md
# "Trust vocabulary"); the policy needs only the names and their order.
TRUST_LEVELS: tuple[str, ...] = tuple(_abi_trust.LEVELS)
REJECT = 'reject'  # the policy's word for "blocked, not accepted, no TDISP lock"

# Verdict statuses (EAR trust tiers), worst first.
STATUSES = ('contraindicated', 'warning', 'affirming')
MIN_STATUSES = ('affirming', 'warning')

IMPLICIT_DEFAULT = 'implicit-default'

# Drift kinds of the audit; exemptions may name them.
DRIFT_KINDS = ('not_accepted', 'accepted_not_allowed', 'trust_reset', 'evidence_changed', 'evidence_unreadable', 'manifest_expired',
               'unexpected_device', 'missing_device', 'duplicate_device', 'wrong_trust_level', 'unexplained_state', 'unknown_identity')

_VERSION = re.compile(r'[0-9]+(\.[0-9]+){1,3}(-[0-9A-Za-z][0-9A-Za-z.-]*)?')
_ID = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,63}')
_KEY = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')

_TOP_KEYS = ('version', 'description', 'default', 'rules', 'expected', 'expected_complete', 'exemptions')
_RULE_KEYS = ('id', 'description', 'match', 'all') + match.PLAIN_FIELDS + ('require', 'trust', 'on_evidence_failure')
_REQUIRE_KEYS = ('manifest', 'min_status', 'interface')
_EXPECTED_KEYS = ('id', 'description', 'match', 'all') + match.PLAIN_FIELDS + ('bdfs', 'count', 'min', 'max')
_EXEMPTION_KEYS = ('bdf', 'expected', 'reason', 'until', 'kinds')

P = 'tdisp_policy'


class PolicyError(TdispError):
    """Invalid input: ``problems`` holds one line per problem; ``str()`` joins them with newlines."""

    counted = True


def trust_name(value: t.Any) -> t.Optional[str]:
    """The level name for a name, ``reject``, an int 0..3 or its digit string; None when invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return TRUST_LEVELS[value] if 0 <= value < len(TRUST_LEVELS) else None
    if isinstance(value, str):
        if value == REJECT:
            return 'blocked'
        if value in TRUST_LEVELS:
            return value
        if value.isdigit():
            return trust_name(int(value))
    return None


def rank(level: str) -> int:
    """Position of a trust level name in the vocabulary (blocked 0 .. tcb 3)."""
    return TRUST_LEVELS.index(level)


def as_date(value: t.Any) -> t.Optional[datetime.date]:
    """A date from a ``datetime.date``/``datetime`` (UTC) or an ISO 8601 string; None when invalid."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc)
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return as_date(datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))) if 'T' in text or ' ' in text \
                else datetime.date.fromisoformat(text)
        except ValueError:
            return None
    return None


@dataclasses.dataclass(frozen=True)
class Requirement:
    """``require``: the verified evidence a rule needs."""

    manifest: str
    min_status: str = 'affirming'
    interface: t.Mapping[str, t.Any] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, t.Any]:
        return {'manifest': self.manifest, 'min_status': self.min_status, 'interface': dict(self.interface)}


@dataclasses.dataclass(frozen=True)
class Rule:
    """One validated rule."""

    index: int
    id: str
    description: t.Optional[str]
    matcher: match.Matcher
    require: t.Optional[Requirement]
    trust: str
    on_evidence_failure: str

    @property
    def label(self) -> str:
        return 'rules[%d] (id %s)' % (self.index, self.id)

    def as_dict(self) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {'id': self.id}
        if self.description is not None:
            out['description'] = self.description
        out.update(self.matcher.as_dict())
        if self.require is not None:
            out['require'] = self.require.as_dict()
        out['trust'] = self.trust
        if self.require is not None:
            out['on_evidence_failure'] = self.on_evidence_failure
        return out


@dataclasses.dataclass(frozen=True)
class Expected:
    """One validated ``expected`` entry (inventory completeness)."""

    index: int
    id: str
    description: t.Optional[str]
    matcher: t.Optional[match.Matcher]
    bdfs: tuple[str, ...]
    count: t.Optional[int]
    minimum: t.Optional[int]
    maximum: t.Optional[int]

    @property
    def label(self) -> str:
        return 'expected[%d] (id %s)' % (self.index, self.id)

    @property
    def constraints(self) -> t.Optional[match.Constraints]:
        """The devices this entry wants present, as a constraint set; None when not analysable.

        With bdfs, those devices are the listed ones (which must also match the selector): the
        bdf constraint is the list, the selector's other fields still apply.
        """
        base: t.Optional[match.Constraints] = {} if self.matcher is None else self.matcher.constraints
        if not self.bdfs:
            return base
        return dict(base or {}, bdf=tuple(globs.literal(b) for b in self.bdfs))

    def as_dict(self) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {'id': self.id}
        if self.description is not None:
            out['description'] = self.description
        if self.matcher is not None:
            out.update(self.matcher.as_dict())
        if self.bdfs:
            out['bdfs'] = list(self.bdfs)
        for key, value in (('count', self.count), ('min', self.minimum), ('max', self.maximum)):
            if value is not None:
                out[key] = value
        return out


@dataclasses.dataclass(frozen=True)
class Exemption:
    """One audit waiver."""

    index: int
    bdf: t.Optional[str]
    expected: t.Optional[str]
    reason: str
    until: t.Optional[datetime.date]
    kinds: tuple[str, ...]

    def applies(self, kind: str, bdf: t.Optional[str], expected: t.Optional[str]) -> bool:
        """True when this waiver is about a finding of ``kind`` for ``bdf`` / expected entry ``expected``."""
        if kind not in self.kinds:
            return False
        if self.bdf is not None:
            return bdf == self.bdf
        return expected == self.expected

    def expired(self, today: datetime.date) -> bool:
        return self.until is not None and today > self.until

    def as_dict(self) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {'bdf': self.bdf} if self.bdf is not None else {'expected': self.expected}
        out['reason'] = self.reason
        if self.until is not None:
            out['until'] = self.until.isoformat()
        out['kinds'] = list(self.kinds)
        return out


@dataclasses.dataclass(frozen=True)
class Policy:
    """A validated policy. ``warnings`` are findings that do not stop it from being used."""

    version: str
    description: t.Optional[str]
    default: str
    rules: tuple[Rule, ...]
    expected: tuple[Expected, ...]
    expected_complete: bool
    exemptions: tuple[Exemption, ...]
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {'version': self.version}
        if self.description is not None:
            out['description'] = self.description
        out['default'] = self.default
        out['rules'] = [r.as_dict() for r in self.rules]
        out['expected'] = [e.as_dict() for e in self.expected]
        out['expected_complete'] = self.expected_complete
        out['exemptions'] = [x.as_dict() for x in self.exemptions]
        return out
