# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Device matchers of the acceptance policy (private; may change at any time).

A rule (or an ``expected`` entry) selects devices in exactly one of three ways:

* ``match``: a JMESPath expression over the device's match view; the device matches when the
  expression evaluates to ``true`` (the boolean; any other value does not match);
* plain fields (``vendor``, ``device``, ``class``, ``subsystem_vendor``, ``subsystem_device``,
  ``bdf``, ``driver``, ``tsm``): each a glob or a list of globs (any of them); all fields must match;
* ``all: true``: every device.

Besides matching, a matcher knows its *constraint set* when its form is analysable: a mapping
field -> globs (the field's value must match one of them), which the shadowing analysis in
``_policy_schema`` compares. Plain fields are always analysable; a JMESPath expression is when it
is the literal ``true``, or a conjunction (``&&``) of terms that are ``field == 'literal'``
comparisons (either order) or disjunctions (``||``) of such comparisons on one field. Anything
else has no constraint set and the analysis does not reason about it.

The match view is the device dict of docs/internals.md plus the derived field ``tsm`` (see
:func:`match_view`).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._abi import device as _abi_device
from ansible_collections.coco.tdisp.plugins.module_utils._abi.names import ID_DIGITS, format_id, id_pattern, is_bdf
from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy import glob as globs

try:
    import jmespath
    from jmespath import exceptions as jmespath_exceptions
    from jmespath import functions as jmespath_functions
    HAS_JMESPATH = True
except ImportError:
    HAS_JMESPATH = False

JMESPATH_MISSING = ('the Python package "jmespath" is not installed on the controller; '
                    'install the collection\'s requirements/collection.txt (pip install "jmespath>=1.0.1,<2")')

# Plain match fields, in the order they are shown.
PLAIN_FIELDS = ('vendor', 'device', 'class', 'subsystem_vendor', 'subsystem_device', 'bdf', 'driver', 'tsm')

# Top-level fields of the match view: the device dict of docs/internals.md (as the ABI layer
# builds it), its optional evidence, and the derived ``tsm``. A JMESPath expression that names
# another top-level field is rejected: the field would always be null and the rule would
# silently never match.
VIEW_FIELDS = tuple(_abi_device.FIELDS) + ('evidence', 'tsm')

# Fields that the collection itself changes while converging: a decision that depends on them can
# flip on the next run.
STATE_FIELDS = ('lock_holder', 'accepted', 'connected', 'bound', 'tdisp_state', 'trust_level', 'trust_raw')

# How sysfs prints the identity fields; a literal of another shape can never be equal.
_EXAMPLES = {'vendor': 0x10de, 'device': 0x2330, 'subsystem_vendor': 0x10de, 'subsystem_device': 0x16c1, 'class': 0x030200}
_SHAPES: dict[str, tuple[str, str]] = {
    attr: (id_pattern(attr), "'0x' and %d lower-case hex digits, e.g. %r" % (ID_DIGITS[attr], format_id(attr, example)))
    for attr, example in _EXAMPLES.items()}
_SHAPES['tsm'] = (r'tsm[0-9]+', "'tsm' and a number, e.g. 'tsm1'")
_BDF_SHAPE = "domain:bus:device.function in lower-case hex, e.g. '0000:41:00.0'"  # the ABI layer's is_bdf decides
_HEX_FIELDS = ('vendor', 'device', 'subsystem_vendor', 'subsystem_device', 'class', 'bdf')

# The identity a rule selects by; unreadable or malformed, no rule can be trusted to have matched.
IDENTITY_FIELDS = ('vendor', 'device', 'class', 'subsystem_vendor', 'subsystem_device')


def identity_problem(device: t.Mapping[str, t.Any]) -> t.Optional[str]:
    """Why the device's identity attributes cannot be believed (unreadable or malformed), or None.

    A device like that must not fall to the default rule (or any rule) silently: the planner and
    the audit report it as ``unknown_identity``. An absent ``subsystem_*`` attribute is no problem."""
    unknown = device.get('unknown') if isinstance(device.get('unknown'), t.Mapping) else {}
    problems = []
    for name in IDENTITY_FIELDS:
        value = device.get(name)
        if name in unknown and not (name.startswith('subsystem_') and unknown[name] == 'missing' and value is None):
            problems.append('%s: %s' % (name, unknown[name]))
        elif value is None and not name.startswith('subsystem_'):
            problems.append('%s: not read' % name)
        elif value is not None and (not isinstance(value, str) or not re.fullmatch(_SHAPES[name][0], value)):
            problems.append('%s: malformed %r' % (name, value))
    return '; '.join(problems) or None


# pci_mode of a guest-side TSM (kernel-abi.md 1b).
_GUEST_TSM_MODE = 'devsec'

Constraints = t.Mapping[str, tuple[globs.Glob, ...]]


class MatchError(TdispError):
    """A JMESPath expression failed while evaluating one device; ``str()`` is one line."""


def bdf_shape_error(value: str) -> t.Optional[str]:
    """None when ``value`` is a BDF as sysfs names it, else what is wrong with it."""
    if is_bdf(value):
        return None
    return '%r is not a PCI device name as sysfs prints it (%s)' % (value, _BDF_SHAPE)


def match_view(device: t.Mapping[str, t.Any], tsms: t.Optional[t.Sequence[t.Mapping[str, t.Any]]]) -> dict[str, t.Any]:
    """The dict rules match against: the device dict plus ``tsm``.

    ``tsm`` is the TSM the device is locked through (``lock_holder``) or, when it is not locked
    and the host has exactly one guest-side TSM, that TSM (the one it would be locked through);
    otherwise null.
    """
    view = dict(device)
    if 'tsm' not in view:
        tsm = device.get('lock_holder')
        if not tsm and tsms:
            guests = [x.get('name') for x in tsms if isinstance(x, t.Mapping) and x.get('mode') == _GUEST_TSM_MODE]
            if len(guests) == 1:
                tsm = guests[0]
        view['tsm'] = tsm or None
    return view


@dataclasses.dataclass(frozen=True)
class Matcher:
    """How one rule or expected entry selects devices."""

    kind: str                                   # 'match' | 'fields' | 'all'
    expression: t.Optional[str] = None          # kind 'match'
    compiled: t.Any = None                      # kind 'match': jmespath ParsedResult
    fields: t.Mapping[str, tuple[globs.Glob, ...]] = dataclasses.field(default_factory=dict)
    constraints: t.Optional[Constraints] = None  # None: the form is not analysable
    never_reason: str = ''                      # set when the form is analysable and provably matches no device

    @property
    def never(self) -> bool:
        return bool(self.never_reason)

    def matches(self, view: t.Mapping[str, t.Any]) -> bool:
        """True when the device (its match view) is selected; raises :class:`MatchError`."""
        if self.kind == 'all':
            return True
        if self.kind == 'fields':
            return all(_field_matches(view.get(name), patterns) for name, patterns in self.fields.items())
        try:
            return self.compiled.search(view) is True
        except jmespath_exceptions.JMESPathError as err:
            raise MatchError('match %r failed: %s' % (self.expression, _one_line(err))) from None

    def as_dict(self) -> dict[str, t.Any]:
        """The selector as it appears in the normalised policy."""
        if self.kind == 'all':
            return {'all': True}
        if self.kind == 'match':
            return {'match': self.expression}
        return {name: [g.text for g in patterns] for name, patterns in self.fields.items()}

    def describe(self) -> str:
        """One short phrase for decision reasons."""
        if self.kind == 'all':
            return 'all: true'
        if self.kind == 'match':
            return 'match: %s' % self.expression
        return ', '.join('%s: %s' % (name, '|'.join(g.text for g in patterns)) for name, patterns in self.fields.items())


def _field_matches(value: t.Any, patterns: tuple[globs.Glob, ...]) -> bool:
    # A missing (null) or non-string value matches no pattern, not even '*'.
    return isinstance(value, str) and any(p.matches(value) for p in patterns)


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    for prefix in ('Invalid jmespath expression: ', 'Bad jmespath expression: '):
        if text.startswith(prefix) and len(text) > len(prefix):
            text = text[len(prefix):]
    text = text.rstrip(':')
    position = getattr(err, 'lex_position', None)
    if isinstance(position, int) and len(lines) > 1:
        text += ' (at column %d)' % (position + 1)
    return text


def constraints_cover(earlier: Constraints, later: Constraints) -> bool:
    """True when every device satisfying ``later`` also satisfies ``earlier``.

    Sound: ``earlier`` restricts only the fields it names, so ``later`` must restrict each of
    them at least as much (each of its globs covered by the union of ``earlier``'s globs).
    """
    for name, wide in earlier.items():
        narrow = later.get(name)
        if narrow is None or not all(globs.covers(wide, g) for g in narrow):
            return False
    return True


def constraints_overlap(left: Constraints, right: Constraints) -> bool:
    """False only when no device can satisfy both (some shared field has disjoint globs)."""
    return all(globs.overlaps(left[name], right[name]) for name in left if name in right)


def constraints_and(left: Constraints, right: Constraints) -> dict[str, tuple[globs.Glob, ...]]:
    """The conjunction of two constraint sets whose shared fields are literal-only."""
    out = dict(left)
    for name, patterns in right.items():
        if name in out:
            keep = {g.text for g in patterns}
            out[name] = tuple(g for g in out[name] if g.text in keep)
        else:
            out[name] = patterns
    return out


def build(entry: t.Mapping[str, t.Any], where: str, errors: list[str], warnings: list[str]) -> t.Optional[Matcher]:
    """The matcher of ``entry``, or None when it names no selector or has errors (appended).

    ``where`` is the entry's path for messages, e.g. ``tdisp_policy.rules[2] (id h100-tcb)``.
    The caller decides whether a missing selector is an error.
    """
    has_match = 'match' in entry
    has_all = 'all' in entry
    plain = [name for name in PLAIN_FIELDS if name in entry]
    chosen = [name for name, used in (('match', has_match), ('all', has_all), ('plain fields (%s)' % ', '.join(plain), bool(plain))) if used]
    if len(chosen) > 1:
        errors.append('%s: has both %s; use exactly one way to select devices (match, plain fields, or all: true)'
                      % (where, ' and '.join(chosen)))
        return None
    if has_all:
        if entry['all'] is not True:
            errors.append('%s.all: must be true when present (got %r); remove it, or select devices with match or plain fields'
                          % (where, entry['all']))
            return None
        return Matcher('all', constraints={})
    if has_match:
        return _build_jmespath(entry['match'], where + '.match', errors, warnings)
    if plain:
        return _build_fields(entry, plain, where, errors)
    return None


def _build_fields(entry: t.Mapping[str, t.Any], names: list[str], where: str, errors: list[str]) -> t.Optional[Matcher]:
    fields: dict[str, tuple[globs.Glob, ...]] = {}
    count = len(errors)
    for name in names:
        raw = entry[name]
        values = raw if isinstance(raw, list) else [raw]
        if not values:
            errors.append('%s.%s: is an empty list, which matches nothing; give at least one value' % (where, name))
            continue
        parsed = []
        for pos, value in enumerate(values):
            path = '%s.%s' % (where, name) + ('[%d]' % pos if isinstance(raw, list) else '')
            if not isinstance(value, str):
                errors.append('%s: must be a string (a glob), got %s %r; quote it in YAML' % (path, type(value).__name__, value))
                continue
            try:
                glob = globs.parse(value)
            except globs.GlobError as err:
                errors.append('%s: %s' % (path, err))
                continue
            problem = _shape_problem(name, glob)
            if problem:
                errors.append('%s: never matches: %s' % (path, problem))
                continue
            parsed.append(glob)
        fields[name] = tuple(parsed)
    if len(errors) != count:
        return None
    return Matcher('fields', fields=fields, constraints=fields)


def _shape_problem(name: str, glob: globs.Glob) -> t.Optional[str]:
    """Why a value for field ``name`` can never equal what sysfs prints, or None."""
    if name in _HEX_FIELDS and glob.text != glob.text.lower():
        return '%r has upper-case letters but sysfs prints lower-case hex; write %r' % (glob.text, glob.text.lower())
    if not glob.is_literal:
        return None
    if name == 'bdf' and not is_bdf(glob.text):
        return '%r is not how sysfs prints bdf (%s)' % (glob.text, _BDF_SHAPE)
    if name in _SHAPES and not re.fullmatch(_SHAPES[name][0], glob.text):
        return '%r is not how sysfs prints %s (%s)' % (glob.text, name, _SHAPES[name][1])
    return None


def _build_jmespath(expr: t.Any, where: str, errors: list[str], warnings: list[str]) -> t.Optional[Matcher]:
    if not isinstance(expr, str) or not expr.strip():
        errors.append('%s: must be a non-empty JMESPath string; for a match-all rule write all: true' % where)
        return None
    if not HAS_JMESPATH:
        errors.append('%s: %s' % (where, JMESPATH_MISSING))
        return None
    too_big = _size_problem(expr)
    if too_big:
        errors.append('%s: %s' % (where, too_big))
        return None
    try:
        compiled = jmespath.compile(expr)
    except jmespath_exceptions.JMESPathError as err:
        errors.append('%s: JMESPath does not compile: %s; fix the expression (syntax: https://jmespath.org/specification.html)'
                      % (where, _one_line(err)))
        return None
    count = len(errors)
    state_refs: list[str] = []
    _check_ast(compiled.parsed, True, where, errors, state_refs)
    if len(errors) != count:
        return None
    if state_refs:
        warnings.append('%s: reads %s, which the collection changes while converging; the decision can differ on the next run. '
                        'Match on identity (vendor, device, class, subsystem_*, bdf) instead' % (where, ', '.join(sorted(set(state_refs)))))
    analysed = _analyse(compiled.parsed)
    if analysed is None:
        return Matcher('match', expression=expr, compiled=compiled)
    constraints, never_reason = analysed
    return Matcher('match', expression=expr, compiled=compiled, constraints=constraints, never_reason=never_reason)


MAX_EXPRESSION = 4096    # characters of one match expression
MAX_NESTING = 32         # brackets, parentheses and braces open at once in one match expression


def _size_problem(expr: str) -> t.Optional[str]:
    """Why ``expr`` is beyond the size limits (checked before it is compiled), or None."""
    if len(expr) > MAX_EXPRESSION:
        return 'is %d characters long, more than the limit of %d; split the rule or use plain fields' % (len(expr), MAX_EXPRESSION)
    depth = deepest = 0
    quote = None
    for char in expr:
        if quote:
            quote = None if char == quote else quote
        elif char in '\'`"':
            quote = char
        elif char in '([{':
            depth += 1
            deepest = max(deepest, depth)
        elif char in ')]}':
            depth -= 1
    if deepest > MAX_NESTING:
        return 'nests %d levels deep, more than the limit of %d; simplify the expression' % (deepest, MAX_NESTING)
    return None


_CURRENT_CONTEXT = {'comparator', 'and_expression', 'or_expression', 'not_expression', 'function_expression',
                    'multi_select_list', 'multi_select_dict', 'key_val_pair'}
# Node types whose first child is evaluated in the current context and the rest on its result.
_LEFT_ONLY = {'subexpression', 'index_expression', 'projection', 'value_projection', 'filter_projection', 'pipe', 'flatten'}


def _check_ast(node: t.Mapping[str, t.Any], at_root: bool, where: str, errors: list[str], state_refs: list[str]) -> None:
    """Static checks: unknown functions and arity; at the root, unknown fields and impossible literals."""
    kind = node.get('type')
    children = node.get('children', [])
    if kind == 'field' and at_root:
        name = node.get('value')
        if name in ('true', 'false', 'null'):
            errors.append('%s: %s is a field reference (always null), not the JSON %s; write `%s` (backticks)%s'
                          % (where, name, name, name, ', or all: true for a match-all rule' if name == 'true' else ''))
        elif name not in VIEW_FIELDS:
            errors.append('%s: field %r is not in the device facts, so it is always null; known fields: %s'
                          % (where, name, ', '.join(VIEW_FIELDS)))
        elif name in STATE_FIELDS:
            state_refs.append(name)
        return
    if kind == 'function_expression':
        _check_function(node, where, errors)
    if kind == 'comparator' and at_root and node.get('value') in ('eq', 'ne'):
        pair = _field_literal(node)
        if pair is not None and (pair[0] in _SHAPES or pair[0] == 'bdf') and isinstance(pair[1], str):
            problem = _shape_problem(pair[0], globs.literal(pair[1]))
            if problem:
                errors.append('%s: the comparison of %s with a literal is constant: %s' % (where, pair[0], problem))
    if kind in _CURRENT_CONTEXT:
        for child in children:
            _check_ast(child, at_root, where, errors, state_refs)
    elif kind in _LEFT_ONLY and children:
        _check_ast(children[0], at_root, where, errors, state_refs)
        for child in children[1:]:
            _check_ast(child, False, where, errors, state_refs)
    else:
        for child in children:
            _check_ast(child, False, where, errors, state_refs)


@functools.lru_cache(maxsize=1)
def _function_table() -> t.Mapping[str, t.Any]:
    """JMESPath's built-in functions: name -> {'signature': ...}."""
    return jmespath_functions.Functions().FUNCTION_TABLE


def _check_function(node: t.Mapping[str, t.Any], where: str, errors: list[str]) -> None:
    name = node.get('value')
    table = _function_table()
    if name not in table:
        errors.append('%s: unknown JMESPath function %s(); the built-in functions are listed at https://jmespath.org/specification.html'
                      % (where, name))
        return
    signature = table[name]['signature']
    given = len(node.get('children', []))
    variadic = bool(signature) and signature[-1].get('variadic')
    if (variadic and given < len(signature)) or (not variadic and given != len(signature)):
        errors.append('%s: %s() takes %s%d argument(s), got %d' % (where, name, 'at least ' if variadic else '', len(signature), given))


def _field_literal(node: t.Mapping[str, t.Any]) -> t.Optional[tuple[str, t.Any]]:
    """For ``field == literal`` (either order) with a top-level field: (field, literal value)."""
    children = node.get('children', [])
    if len(children) != 2:
        return None
    for one, other in (children, children[::-1]):
        if one.get('type') == 'field' and other.get('type') == 'literal':
            return one.get('value'), other.get('value')
    return None


def _analyse(node: t.Mapping[str, t.Any]) -> t.Optional[tuple[dict[str, tuple[globs.Glob, ...]], str]]:
    """(constraints, never_reason) for an analysable expression, else None.

    ``never_reason`` is empty unless the expression can match no device.
    """
    kind = node.get('type')
    if kind == 'literal' and isinstance(node.get('value'), bool):
        return ({}, '') if node['value'] else ({}, 'the expression is the constant false')
    if kind == 'comparator' and node.get('value') == 'eq':
        pair = _field_literal(node)
        if pair is None or not isinstance(pair[1], str):
            return None
        return {pair[0]: (globs.literal(pair[1]),)}, ''
    if kind == 'or_expression':
        parts = [_analyse(child) for child in node['children']]
        if any(p is None or p[1] or len(p[0]) != 1 for p in parts):
            return None
        names = {name for p in parts for name in p[0]}
        if len(names) != 1:
            return None
        name = names.pop()
        merged: dict[str, globs.Glob] = {}
        for p in parts:
            merged.update((g.text, g) for g in p[0][name])
        return {name: tuple(merged.values())}, ''
    if kind == 'and_expression':
        parts = [_analyse(child) for child in node['children']]
        if any(p is None for p in parts):
            return None
        left, right = parts[0], parts[1]
        if left[1] or right[1]:
            return {}, left[1] or right[1]
        combined = constraints_and(left[0], right[0])
        for name, patterns in combined.items():
            if not patterns:
                return {}, 'it requires %s to equal two different values at once' % name
        return combined, ''
    return None
