# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Validation and normalisation of ``tdisp_policy`` (private; may change at any time).

:func:`validate` checks a policy before any host is contacted and reports every problem at
once, each as one line that names the path (``tdisp_policy.rules[2] (id h100-tcb).match``), the
cause and what to do. It returns a :class:`Policy` whose :meth:`Policy.as_dict` is the
normalised policy (defaults filled in, trust levels as names); the normalised form is itself a
valid policy and validates to the same result. docs/policy.md documents every field.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._abi import trust as _abi_trust
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.interface_report import INTERFACE_INFO_BITS
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy import match
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.model import (
    DRIFT_KINDS,
    IMPLICIT_DEFAULT,
    MIN_STATUSES,
    REJECT,
    _EXEMPTION_KEYS,
    _EXPECTED_KEYS,
    _ID,
    _KEY,
    _REQUIRE_KEYS,
    _RULE_KEYS,
    _TOP_KEYS,
    _VERSION,
    Exemption,
    Expected,
    P,
    Policy,
    PolicyError,
    Requirement,
    Rule,
    as_date,
    rank,
    trust_name,
)

# The collection's trust vocabulary, lowest first: the one table of the ABI layer (DESIGN.md
# "Trust vocabulary"); the policy needs only the names and their order.
TRUST_LEVELS: tuple[str, ...] = tuple(_abi_trust.LEVELS)

# require.interface: the INTERFACE_INFO flags and the scalar fields of the parsed interface report.
INTERFACE_KEYS: tuple[str, ...] = tuple(name for name, _bit in INTERFACE_INFO_BITS) + (
    'msix_message_control', 'lnr_control', 'tph_control', 'mmio_range_count', 'length', 'device_specific_info')
# Size limits, checked before anything is parsed: a policy beyond them is a mistake or an attack.
MAX_RULES = 1000        # (the limits of one match expression are match.MAX_EXPRESSION and match.MAX_NESTING)


def ensure(policy: t.Any, manifests: t.Optional[t.Mapping[str, t.Any]] = None) -> Policy:
    """``policy`` itself when already validated, else :func:`validate` of it."""
    return policy if isinstance(policy, Policy) else validate(policy, manifests)


def validate(raw: t.Any, manifests: t.Optional[t.Mapping[str, t.Any]] = None) -> Policy:
    """Validate ``raw`` (the value of ``tdisp_policy``) against ``manifests`` (``reference_manifests``).

    Raises :class:`PolicyError` with every problem found. When ``manifests`` is None the
    manifest names are not checked and a warning says so.
    """
    errors: list[str] = []
    warnings: list[str] = []
    if not isinstance(raw, t.Mapping):
        raise PolicyError(['%s: must be a mapping (version, default, rules, ...), got %s' % (P, type(raw).__name__)])
    if manifests is not None and not isinstance(manifests, t.Mapping):
        errors.append('reference_manifests: must be a mapping of manifest name to manifest, got %s' % type(manifests).__name__)
        manifests = {}
    if manifests is None:
        warnings.append('%s: reference_manifests not given, so require.manifest names were not checked' % P)
    if 'tdisp_policy' in raw and len(raw) == 1:
        raise PolicyError(['%s: is wrapped in a tdisp_policy key; pass the value of tdisp_policy, not the mapping that holds it' % P])
    _unknown_keys(raw, _TOP_KEYS, P, errors)

    version = raw.get('version')
    if 'version' not in raw:
        errors.append('%s.version: is required; decisions and audits carry it (e.g. version: "2026.11.1")' % P)
    elif not isinstance(version, str):
        errors.append('%s.version: must be a string, got %s %r; quote it in YAML (version: "%s")' % (P, type(version).__name__, version, version))
    elif not _VERSION.fullmatch(version):
        errors.append('%s.version: %r is not a version; use 2 to 4 dot-separated numbers and an optional -label, e.g. "2026.11.1"' % (P, version))
    description = _optional_str(raw, 'description', P, errors)

    default = trust_name(raw.get('default', REJECT))
    if default is None:
        errors.append('%s.default: %r is not an outcome; use reject, adversary or normal' % (P, raw.get('default')))
    elif default == 'tcb':
        errors.append('%s.default: tcb is not allowed: tcb needs verified evidence that a rule names; use reject, adversary or normal' % P)

    rules = _rules(raw, manifests, errors, warnings)
    expected = _expected_entries(raw, errors, warnings)
    expected_complete = raw.get('expected_complete', False)
    if not isinstance(expected_complete, bool):
        errors.append('%s.expected_complete: must be true or false, got %r' % (P, expected_complete))
    exemptions = _exemptions(raw, {e.id for e in expected}, errors)

    _shadowing(rules, errors)
    if errors:
        raise PolicyError(errors)
    policy = Policy(version=version, description=description, default=default, rules=tuple(rules), expected=tuple(expected),
                    expected_complete=expected_complete, exemptions=tuple(exemptions))
    warnings.extend(_unreachable_expected(policy))
    return dataclasses.replace(policy, warnings=tuple(warnings))


def _unknown_keys(entry: t.Mapping[str, t.Any], allowed: t.Sequence[str], where: str, errors: list[str]) -> None:
    for key in entry:
        if key in allowed:
            continue
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = 'did you mean %s?' % close[0] if close else 'allowed: %s' % ', '.join(allowed)
        errors.append('%s: unknown key %r; %s' % (where, key, hint))


def _optional_str(entry: t.Mapping[str, t.Any], key: str, where: str, errors: list[str]) -> t.Optional[str]:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        errors.append('%s.%s: must be a string, got %s' % (where, key, type(value).__name__))
        return None
    return value


def _list(raw: t.Mapping[str, t.Any], key: str, errors: list[str], required: bool = False) -> list[t.Any]:
    if key not in raw:
        if required:
            errors.append('%s.%s: is required (a list; [] is allowed)' % (P, key))
        return []
    value = raw[key]
    if not isinstance(value, list):
        errors.append('%s.%s: must be a list, got %s' % (P, key, type(value).__name__))
        return []
    return value


def _label(section: str, index: int, entry: t.Mapping[str, t.Any]) -> str:
    ident = entry.get('id')
    if isinstance(ident, str) and _ID.fullmatch(ident):
        return '%s.%s[%d] (id %s)' % (P, section, index, ident)
    return '%s.%s[%d]' % (P, section, index)


def _check_id(entry: t.Mapping[str, t.Any], where: str, seen: dict[str, int], section: str, errors: list[str]) -> t.Optional[str]:
    ident = entry.get('id')
    if ident is None:
        errors.append('%s.id: is required; decisions and findings name it' % where)
        return None
    if not isinstance(ident, str) or not _ID.fullmatch(ident):
        errors.append('%s.id: %r is not an id; use 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit' % (where, ident))
        return None
    if ident == IMPLICIT_DEFAULT:
        errors.append('%s.id: %s is reserved for the policy default; choose another id' % (where, IMPLICIT_DEFAULT))
        return None
    if ident in seen:
        errors.append('%s.id: duplicate of %s[%d]; ids must be unique because decisions name them' % (where, section, seen[ident]))
        return None
    return ident


def _rules(raw: t.Mapping[str, t.Any], manifests: t.Optional[t.Mapping[str, t.Any]], errors: list[str], warnings: list[str]) -> list[Rule]:
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    entries = _list(raw, 'rules', errors, required=True)
    if len(entries) > MAX_RULES:
        errors.append('%s.rules: has %d rules, more than the limit of %d; group devices with globs or lists' % (P, len(entries), MAX_RULES))
        return rules
    for index, entry in enumerate(entries):
        if not isinstance(entry, t.Mapping):
            errors.append('%s.rules[%d]: must be a mapping (id, match or fields, trust, ...), got %s' % (P, index, type(entry).__name__))
            continue
        try:
            rule = _rule(index, entry, manifests, seen, errors, warnings)
        except RecursionError:
            rule = None
            errors.append('%s: is nested too deeply to check; simplify it (at most %d levels)' % (_label('rules', index, entry), match.MAX_NESTING))
        if rule is not None:
            rules.append(rule)
    return rules


def _rule(index: int, entry: t.Mapping[str, t.Any], manifests: t.Optional[t.Mapping[str, t.Any]], seen: dict[str, int],
          errors: list[str], warnings: list[str]) -> t.Optional[Rule]:
    where = _label('rules', index, entry)
    count = len(errors)
    _unknown_keys(entry, _RULE_KEYS, where, errors)
    ident = _check_id(entry, where, seen, 'rules', errors)
    if ident is not None:
        seen[ident] = index
    description = _optional_str(entry, 'description', where, errors)
    matcher = match.build(entry, where, errors, warnings)
    if matcher is None and len(errors) == count:
        errors.append('%s: selects no devices; give match, plain fields (vendor, device, class, ...), or all: true for a match-all rule' % where)

    trust = None
    if 'trust' not in entry:
        errors.append('%s.trust: is required; one of %s (or 0..3), or reject' % (where, ', '.join(TRUST_LEVELS)))
    else:
        trust = trust_name(entry['trust'])
        if trust is None:
            errors.append('%s.trust: %r is not a trust level; use %s (or 0..3), or reject' % (where, entry['trust'], ', '.join(TRUST_LEVELS)))

    require = _require(entry, where, manifests, errors)
    if trust == 'tcb' and require is None and 'require' not in entry:
        errors.append('%s.require.manifest: is required for trust tcb; nothing enters the TCB without verified evidence that the rule names' % where)
    if trust == 'blocked' and 'require' in entry:
        errors.append('%s.require: a rule that rejects needs no evidence; remove require' % where)

    failure = 'blocked'
    if 'on_evidence_failure' in entry:
        failure = trust_name(entry['on_evidence_failure'])
        if 'require' not in entry:
            errors.append('%s.on_evidence_failure: has no effect without require; remove it, or add require.manifest' % where)
        elif failure is None or failure == 'tcb':
            errors.append('%s.on_evidence_failure: %r is not allowed; use reject, adversary or normal' % (where, entry['on_evidence_failure']))
        elif trust is not None and rank(failure) >= rank(trust):
            errors.append('%s.on_evidence_failure: %s is not below trust %s; failed evidence must give less trust, not the same' % (where, failure, trust))
    if len(errors) != count or matcher is None or trust is None or ident is None or failure is None:
        return None
    return Rule(index=index, id=ident, description=description, matcher=matcher, require=require, trust=trust, on_evidence_failure=failure)


def _require(entry: t.Mapping[str, t.Any], where: str, manifests: t.Optional[t.Mapping[str, t.Any]], errors: list[str]) -> t.Optional[Requirement]:
    if 'require' not in entry:
        return None
    where = where + '.require'
    raw = entry['require']
    if not isinstance(raw, t.Mapping):
        errors.append('%s: must be a mapping (manifest, min_status, interface), got %s' % (where, type(raw).__name__))
        return None
    count = len(errors)
    _unknown_keys(raw, _REQUIRE_KEYS, where, errors)
    manifest = raw.get('manifest')
    if manifest is None:
        errors.append('%s.manifest: is required; name the reference manifest the evidence must verify against' % where)
    elif not isinstance(manifest, str) or not manifest:
        errors.append('%s.manifest: must be a manifest name (a string), got %r' % (where, manifest))
    elif manifests is not None and manifest not in manifests:
        known = ', '.join(sorted(str(k) for k in manifests)) or 'none'
        errors.append('%s.manifest: %r is not in reference_manifests (known: %s); add the manifest or fix the name' % (where, manifest, known))
    min_status = raw.get('min_status', 'affirming')
    if min_status not in MIN_STATUSES:
        errors.append('%s.min_status: %r is not allowed; use affirming or warning (contraindicated evidence is never acceptable)' % (where, min_status))
    interface = raw.get('interface', {})
    if not isinstance(interface, t.Mapping):
        errors.append('%s.interface: must be a mapping of interface-report field to required value, got %s' % (where, type(interface).__name__))
    else:
        for key, value in interface.items():
            if not isinstance(key, str) or not _KEY.fullmatch(key):
                errors.append('%s.interface: %r is not a field name' % (where, key))
            elif value is None or isinstance(value, (t.Mapping, list)):
                errors.append('%s.interface.%s: must be a scalar (true/false, a number or a string), got %r' % (where, key, value))
            elif key not in INTERFACE_KEYS:
                close = difflib.get_close_matches(key, INTERFACE_KEYS, n=1)
                errors.append('%s.interface: unknown key %r;%s known keys: %s' % (
                    where, key, ' did you mean %s?' % close[0] if close else '', ', '.join(INTERFACE_KEYS)))
    if len(errors) != count:
        return None
    return Requirement(manifest=manifest, min_status=min_status, interface=dict(interface))


def _expected_entries(raw: t.Mapping[str, t.Any], errors: list[str], warnings: list[str]) -> list[Expected]:
    out: list[Expected] = []
    seen: dict[str, int] = {}
    listed: dict[str, str] = {}
    for index, entry in enumerate(_list(raw, 'expected', errors)):
        if not isinstance(entry, t.Mapping):
            errors.append('%s.expected[%d]: must be a mapping (id, match or fields or bdfs, count), got %s' % (P, index, type(entry).__name__))
            continue
        where = _label('expected', index, entry)
        count = len(errors)
        _unknown_keys(entry, _EXPECTED_KEYS, where, errors)
        ident = _check_id(entry, where, seen, 'expected', errors)
        if ident is not None:
            seen[ident] = index
        description = _optional_str(entry, 'description', where, errors)
        matcher = match.build(entry, where, errors, warnings)
        bdfs = _bdfs(entry, where, listed, errors)
        numbers = {key: entry.get(key) for key in ('count', 'min', 'max') if key in entry}
        for key, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                errors.append('%s.%s: must be a whole number >= 0, got %r' % (where, key, value))
        if 'bdfs' in entry and numbers:
            errors.append('%s: bdfs is an exact set, so %s does not apply; remove %s' % (where, ', '.join(numbers), ', '.join(numbers)))
        elif 'count' in numbers and len(numbers) > 1:
            errors.append('%s: count is exact, so min and max do not apply; give count, or min and/or max' % where)
        elif 'bdfs' not in entry and not numbers and len(errors) == count:
            errors.append('%s: says nothing about the inventory; give count, min and/or max, or an exact set of bdfs' % where)
        elif isinstance(numbers.get('min'), int) and isinstance(numbers.get('max'), int) and numbers['min'] > numbers['max']:
            errors.append('%s: min %d is above max %d' % (where, numbers['min'], numbers['max']))
        if matcher is None and 'bdfs' not in entry and len(errors) == count:
            errors.append('%s: selects no devices; give match, plain fields, all: true, or bdfs' % where)
        if len(errors) != count or ident is None:
            continue
        out.append(Expected(index=index, id=ident, description=description, matcher=matcher, bdfs=bdfs,
                            count=numbers.get('count'), minimum=numbers.get('min'), maximum=numbers.get('max')))
    return out


def _bdfs(entry: t.Mapping[str, t.Any], where: str, listed: dict[str, str], errors: list[str]) -> tuple[str, ...]:
    if 'bdfs' not in entry:
        return ()
    raw = entry['bdfs']
    if not isinstance(raw, list) or not raw:
        errors.append('%s.bdfs: must be a non-empty list of PCI device names, got %r' % (where, raw))
        return ()
    out: list[str] = []
    for pos, bdf in enumerate(raw):
        path = '%s.bdfs[%d]' % (where, pos)
        if not isinstance(bdf, str):
            errors.append('%s: must be a string, got %r' % (path, bdf))
            continue
        problem = match.bdf_shape_error(bdf)
        if problem:
            errors.append('%s: %s' % (path, problem))
        elif bdf in listed:
            errors.append('%s: duplicate: %s is already listed in %s; a device belongs to one exact set' % (path, bdf, listed[bdf]))
        else:
            listed[bdf] = path
            out.append(bdf)
    return tuple(out)


def _exemptions(raw: t.Mapping[str, t.Any], expected_ids: set[str], errors: list[str]) -> list[Exemption]:
    out: list[Exemption] = []
    for index, entry in enumerate(_list(raw, 'exemptions', errors)):
        where = '%s.exemptions[%d]' % (P, index)
        if not isinstance(entry, t.Mapping):
            errors.append('%s: must be a mapping (bdf or expected, reason, until), got %s' % (where, type(entry).__name__))
            continue
        count = len(errors)
        _unknown_keys(entry, _EXEMPTION_KEYS, where, errors)
        bdf, expected = entry.get('bdf'), entry.get('expected')
        if (bdf is None) == (expected is None):
            errors.append('%s: give exactly one of bdf (a device) or expected (an expected entry id)' % where)
        elif bdf is not None and (not isinstance(bdf, str) or match.bdf_shape_error(bdf)):
            errors.append('%s.bdf: %s' % (where, match.bdf_shape_error(bdf) if isinstance(bdf, str) else 'must be a string, got %r' % (bdf,)))
        elif expected is not None and expected not in expected_ids:
            errors.append('%s.expected: %r is not the id of an expected entry' % (where, expected))
        reason = entry.get('reason')
        if not isinstance(reason, str) or not reason.strip():
            errors.append('%s.reason: is required; say why the finding is waived (ticket, owner)' % where)
        until = None
        if 'until' in entry:
            until = as_date(entry['until'])
            if until is None:
                errors.append('%s.until: %r is not a date; use YYYY-MM-DD (the exemption holds through that day, UTC)' % (where, entry['until']))
        kinds = entry.get('kinds', list(DRIFT_KINDS))
        if not isinstance(kinds, list) or not kinds:
            errors.append('%s.kinds: must be a non-empty list of drift kinds' % where)
        else:
            for pos, kind in enumerate(kinds):
                if kind not in DRIFT_KINDS:
                    errors.append('%s.kinds[%d]: %r is not a drift kind; use %s' % (where, pos, kind, ', '.join(DRIFT_KINDS)))
        if len(errors) == count:
            out.append(Exemption(index=index, bdf=bdf, expected=expected, reason=reason, until=until,
                                 kinds=tuple(k for k in DRIFT_KINDS if k in kinds)))
    return out


def _shadowing(rules: list[Rule], errors: list[str]) -> None:
    """Rules that can never match: contradictory, or shadowed by one earlier rule."""
    for k, later in enumerate(rules):
        if later.matcher.never:
            errors.append('%s.%s can never match: %s; remove it or fix its match' % (P, later.label, later.matcher.never_reason))
            continue
        for earlier in rules[:k]:
            if earlier.matcher.never or earlier.matcher.constraints is None:
                continue
            everything = not earlier.matcher.constraints
            if everything or (later.matcher.constraints is not None
                              and match.constraints_cover(earlier.matcher.constraints, later.matcher.constraints)):
                errors.append('%s.%s is shadowed by %s: every device %s matches, %s matches first; remove %s, or move it above %s'
                              % (P, later.label, earlier.label, later.id, earlier.id, later.id, earlier.id))
                break


def _unreachable_expected(policy: Policy) -> list[str]:
    """Warnings for expected entries that no rule can give an outcome other than reject."""
    if policy.default != 'blocked':
        return []
    out = []
    for entry in policy.expected:
        wanted = entry.constraints
        possible = [rule for rule in policy.rules
                    if rule.trust != 'blocked'
                    and (wanted is None or rule.matcher.constraints is None or match.constraints_overlap(rule.matcher.constraints, wanted))]
        if not possible:
            out.append('%s.%s: no rule can give these devices an outcome other than reject (blocked); add a rule for them, '
                       'or remove the entry if they are meant to be rejected' % (P, entry.label))
    return out


def validated_dict(raw: t.Any, manifests: t.Optional[t.Mapping[str, t.Any]] = None,
                   warn: t.Optional[t.Callable[[str], t.Any]] = None) -> dict[str, t.Any]:
    """The normalised policy of :func:`validate`; each warning is passed to ``warn``."""
    checked = validate(raw, manifests)
    for warning in checked.warnings:
        if warn is not None:
            warn(warning)
    return checked.as_dict()
