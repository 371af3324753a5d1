# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The acceptance policy engine (private; may change at any time).

Entry points, all pure functions of their inputs (docs/policy.md is the operator's guide):

``validate(policy, manifests)``
    check the policy before any host is contacted (``_policy_schema``);
``plan(devices, policy, verdicts, manifests, now)``
    one decision per device, attributed to the rule that made it, plus a summary;
``check_expected(devices, policy)``
    inventory completeness findings (missing, extra, duplicate, unlisted);
``audit(devices, policy, verdicts, manifests, now, ledger)``
    compliance findings per device, drift classified, exemptions applied;
``preflight(devices, decisions, critical)``
    the decisions that would lock the operator out (storage, network, critical devices).

``devices`` is a list of device dicts (docs/internals.md) or the ``tdisp_device_info`` shape
``{devices: [...], tsms: [{name, mode}]}``. ``verdicts`` is ``{bdf: {manifest name: verdict}}``.
Invalid input raises :class:`PolicyError` listing every problem.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import hashlib
import typing as t

from ansible_collections.coco.tdisp.plugins.plugin_utils import _manifest
from ansible_collections.coco.tdisp.plugins.plugin_utils import _policy_match as match
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy_schema import (
    DRIFT_KINDS,
    IMPLICIT_DEFAULT,
    STATUSES,
    TRUST_LEVELS,
    Policy,
    PolicyError,
    Rule,
    as_date,
    ensure,
    rank,
    trust_name,
    validate,
)

__all__ = ['DRIFT_KINDS', 'IMPLICIT_DEFAULT', 'Policy', 'PolicyError', 'audit', 'check_expected', 'plan', 'preflight', 'select', 'validate']

_GUEST_SIDES = ('guest', 'both')
_LOCKED_STATES = ('run', 'locked')
# PCI base class codes (the first byte of the 24-bit class) whose loss locks an operator out.
_LOCKOUT_CLASSES = {0x01: 'storage', 0x02: 'network'}
_INVENTORY_DRIFT = {'missing': 'missing_device', 'extra': 'unexpected_device', 'unlisted': 'unexpected_device',
                    'duplicate': 'duplicate_device', 'error': 'missing_device'}

Device = t.Mapping[str, t.Any]
Verdicts = t.Mapping[str, t.Mapping[str, t.Mapping[str, t.Any]]]


@dataclasses.dataclass(frozen=True)
class _Host:
    """One host's validated inputs."""

    policy: Policy
    devices: tuple[Device, ...]
    views: tuple[dict[str, t.Any], ...]
    verdicts: Verdicts
    now: datetime.datetime      # aware, UTC

    @property
    def today(self) -> datetime.date:
        return self.now.date()


def _host(devices: t.Any, policy: t.Any, verdicts: t.Any, manifests: t.Any, now: t.Any) -> _Host:
    pol = ensure(policy, manifests)
    errors: list[str] = []
    facts, tsms = _facts(devices, errors)
    checked = _verdicts(verdicts, errors)
    instant = _instant(now, errors)
    if errors:
        raise PolicyError(errors)
    return _Host(pol, facts, tuple(match.match_view(d, tsms) for d in facts), checked, instant)


def _facts(devices: t.Any, errors: list[str]) -> tuple[tuple[Device, ...], t.Optional[t.Sequence[t.Mapping[str, t.Any]]]]:
    tsms = None
    if isinstance(devices, t.Mapping):
        tsms = devices.get('tsms')
        if tsms is not None and not isinstance(tsms, list):
            errors.append('devices.tsms: must be a list of {name, mode}, got %s' % type(tsms).__name__)
            tsms = None
        if 'devices' not in devices:
            errors.append('devices: a mapping must hold the device list under devices (the tdisp_device_info result)')
            return (), tsms
        devices = devices['devices']
    if not isinstance(devices, list):
        errors.append('devices: must be a list of device dicts, got %s' % type(devices).__name__)
        return (), tsms
    out = []
    for index, device in enumerate(devices):
        if not isinstance(device, t.Mapping):
            errors.append('devices[%d]: must be a device dict, got %s' % (index, type(device).__name__))
        elif not isinstance(device.get('bdf'), str):
            errors.append('devices[%d]: has no bdf; pass the devices that tdisp_device_info reports' % index)
        elif match.bdf_shape_error(device['bdf']):
            errors.append('devices[%d].bdf: %s' % (index, match.bdf_shape_error(device['bdf'])))
        else:
            out.append(device)
    return tuple(out), tsms


def _verdicts(verdicts: t.Any, errors: list[str]) -> Verdicts:
    """``{bdf: {manifest name: verdict}}``; a ``{bdf: verdict}`` mapping (``verify_devices``) is keyed by its ``manifest``."""
    if verdicts is None:
        return {}
    if not isinstance(verdicts, t.Mapping):
        errors.append('verdicts: must be a mapping {bdf: {manifest name: verdict}} or {bdf: verdict}, got %s' % type(verdicts).__name__)
        return {}
    out: dict[str, t.Mapping[str, t.Mapping[str, t.Any]]] = {}
    for bdf, per_manifest in verdicts.items():
        if not isinstance(per_manifest, t.Mapping):
            errors.append('verdicts[%s]: must be a verdict or a mapping {manifest name: verdict}, got %s' % (bdf, type(per_manifest).__name__))
            continue
        if isinstance(per_manifest.get('status'), str):
            out[bdf] = {per_manifest.get('manifest'): per_manifest}
            continue
        for name, verdict in per_manifest.items():
            if not isinstance(verdict, t.Mapping):
                errors.append('verdicts[%s][%s]: must be a verdict mapping (status, manifest, generation, checks), got %s'
                              % (bdf, name, type(verdict).__name__))
        out[bdf] = per_manifest
    return out


def _instant(now: t.Any, errors: list[str]) -> datetime.datetime:
    """``now`` as an aware UTC datetime: a date is its first instant; None is the current time."""
    if now is None:
        return datetime.datetime.now(datetime.timezone.utc)
    if isinstance(now, datetime.datetime):
        return now.astimezone(datetime.timezone.utc) if now.tzinfo else now.replace(tzinfo=datetime.timezone.utc)
    if isinstance(now, str) and ('T' in now or ' ' in now.strip()):
        try:
            return _instant(datetime.datetime.fromisoformat(now.strip().replace('Z', '+00:00')), errors)
        except ValueError:
            pass
    day = as_date(now)
    if day is None:
        errors.append('now: %r is not a date or an ISO 8601 timestamp' % (now,))
        return datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=datetime.timezone.utc)


# ---- decisions -------------------------------------------------------------------------------------------------

def _evidence(device: Device, rule: Rule, verdicts: t.Mapping[str, t.Mapping[str, t.Any]]) -> dict[str, t.Any]:
    """Whether the evidence satisfies ``rule.require``; failures say why not."""
    req = rule.require
    evidence = device.get('evidence') if isinstance(device.get('evidence'), t.Mapping) else {}
    device_gen = evidence.get('generation')
    verdict = verdicts.get(req.manifest)
    failures: list[str] = []
    out: dict[str, t.Any] = {'required': req.manifest, 'min_status': req.min_status, 'verdict_status': None,
                             'verdict_generation': None, 'device_generation': device_gen, 'ok': False,
                             'failures': failures, 'reasons': []}
    if rule.trust == 'tcb' and device.get('tsm_side') not in _GUEST_SIDES:
        failures.append('the device has no guest-side TSM interface (tsm_side %s), so it cannot be locked or accepted'
                        % device.get('tsm_side'))
    if verdict is None:
        failures.append('no verdict for manifest %s: the evidence was not verified against it' % req.manifest)
        return out
    status, verdict_gen = verdict.get('status'), verdict.get('generation')
    out.update(verdict_status=status, verdict_generation=verdict_gen, reasons=_verdict_reasons(verdict))
    if verdict.get('manifest', req.manifest) != req.manifest:
        failures.append('the verdict is about manifest %s, not %s' % (verdict.get('manifest'), req.manifest))
    if status not in STATUSES:
        failures.append('verdict status %r is not one of %s' % (status, ', '.join(STATUSES)))
    elif STATUSES.index(status) < STATUSES.index(req.min_status):
        failures.append('verdict status %s is below min_status %s' % (status, req.min_status))
    if not _is_int(device_gen):
        failures.append('the device reports no evidence generation, so the verdict cannot be tied to its current evidence')
    elif not _is_int(verdict_gen):
        failures.append('the verdict has no evidence generation, so it cannot be tied to the device evidence')
    elif verdict_gen != device_gen:
        failures.append('the verdict is stale: it is about evidence generation %d, the device is at generation %d; verify again'
                        % (verdict_gen, device_gen))
    failures.extend(_interface_failures(evidence, req.interface))
    out['ok'] = not failures
    return out


def _is_int(value: t.Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _verdict_reasons(verdict: t.Mapping[str, t.Any]) -> list[str]:
    reasons = [str(r) for r in verdict.get('reasons') or []]
    for check in verdict.get('checks') or []:
        if isinstance(check, t.Mapping) and check.get('status') != 'affirming':
            reasons.extend('%s: %s' % (check.get('check'), r) for r in check.get('reasons') or [])
    return list(dict.fromkeys(reasons))


def _interface_failures(evidence: t.Mapping[str, t.Any], wanted: t.Mapping[str, t.Any]) -> list[str]:
    """``require.interface``: each field of the parsed interface report, an INTERFACE_INFO flag first, must equal its value."""
    if not wanted:
        return []
    report = evidence.get('interface_report')
    if not isinstance(report, t.Mapping):
        return ['the device reports no parsed interface report (evidence.interface_report), which require.interface needs']
    flags = report.get('interface_info') if isinstance(report.get('interface_info'), t.Mapping) else {}
    out = []
    for key, want in wanted.items():
        source = flags if key in flags else report
        if key not in source:
            out.append('the interface report has no field %s (require.interface.%s)' % (key, key))
            continue
        have = source[key]
        if have != want or isinstance(have, bool) != isinstance(want, bool):
            out.append('interface report field %s is %r, the rule requires %r' % (key, have, want))
    return out


def _exemption_for(policy: Policy, bdf: str, today: datetime.date) -> t.Optional[dict[str, t.Any]]:
    for ex in policy.exemptions:
        if ex.bdf == bdf and not ex.expired(today):
            return _exemption_dict(ex)
    return None


def _exemption_dict(ex: t.Any) -> dict[str, t.Any]:
    return {'index': ex.index, 'reason': ex.reason, 'until': ex.until.isoformat() if ex.until else None}


def _decide(host: _Host, device: Device, view: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    policy = host.policy
    rule: t.Optional[Rule] = None
    reasons: list[str] = []
    evidence: dict[str, t.Any] = {'required': None, 'min_status': None, 'verdict_status': None, 'verdict_generation': None,
                                  'device_generation': None, 'ok': None, 'failures': [], 'reasons': []}
    matched_by = 'default'
    trust = policy.default
    for candidate in policy.rules:
        try:
            hit = candidate.matcher.matches(view)
        except match.MatchError as err:
            rule, matched_by, trust = candidate, 'error', 'blocked'
            reasons.append('%s: %s; the device is rejected (fail closed): fix the expression' % (candidate.label, err))
            break
        if hit:
            rule, matched_by, trust = candidate, candidate.matcher.kind, candidate.trust
            reasons.append('%s matched (%s)' % (candidate.label, candidate.matcher.describe()))
            break
    if rule is None:
        reasons.append('no rule matched: %s gives %s' % (IMPLICIT_DEFAULT, 'reject (blocked)' if trust == 'blocked' else trust))
    if rule is not None and matched_by != 'error' and rule.require is not None:
        evidence = _evidence(device, rule, host.verdicts.get(device['bdf']) or {})
        if evidence['ok']:
            reasons.append('evidence verified: manifest %s, verdict %s at generation %s (min_status %s)'
                           % (evidence['required'], evidence['verdict_status'], evidence['verdict_generation'], evidence['min_status']))
        else:
            trust = rule.on_evidence_failure
            reasons.extend('evidence: %s' % f for f in evidence['failures'])
            reasons.append('evidence not good enough: on_evidence_failure gives %s' % ('reject (blocked)' if trust == 'blocked' else trust))
    target_state = 'run' if trust == 'tcb' else 'unlocked'
    disruptive = _disruptive(device, trust)
    reasons.extend(disruptive)
    exemption = _exemption_for(policy, device['bdf'], host.today)
    return {
        'bdf': device['bdf'],
        'rule': rule.id if rule is not None else IMPLICIT_DEFAULT,
        'policy_version': policy.version,
        'matched_by': matched_by,
        'outcome': {'trust': trust, 'tdisp_state': target_state},
        'rule_trust': rule.trust if rule is not None and matched_by != 'error' else trust,
        'evidence': evidence,
        'reasons': reasons,
        'current': {'tdisp_state': device.get('tdisp_state'), 'trust_level': device.get('trust_level'), 'driver': device.get('driver')},
        'disruptive': bool(disruptive),
        'exempt': exemption is not None,
        'exemption': exemption,
    }


def _disruptive(device: Device, trust: str) -> list[str]:
    """Why reaching ``trust`` from the device's current state disrupts it (empty when it does not)."""
    if trust == 'tcb':
        return []
    out = []
    state = device.get('tdisp_state')
    if state in _LOCKED_STATES:
        out.append('disruptive: the device is TDISP %s and outcome %s needs tsm/unlock, which ends its TDISP session' % (state, trust))
    elif state != 'unlocked':
        out.append('disruptive: the TDISP state is %s, so reaching outcome %s may need tsm/unlock' % (state or 'not reported', trust))
    if device.get('trust_level') == 'tcb':
        out.append('disruptive: lowering trust from tcb to %s withdraws private memory from the device' % trust)
    return out


def plan(devices: t.Any, policy: t.Any, verdicts: t.Any = None, manifests: t.Any = None, now: t.Any = None) -> dict[str, t.Any]:
    """Decide every device: ``{policy_version, decisions: [...], summary}``.

    Each decision: ``{bdf, rule, policy_version, matched_by, outcome: {trust, tdisp_state},
    evidence: {required, min_status, verdict_status, verdict_generation, device_generation, ok,
    failures, reasons}, reasons, current, disruptive, exempt, exemption}``, sorted by BDF.
    Exemptions are reported, never applied: they do not change an outcome.
    """
    host = _host(devices, policy, verdicts, manifests, now)
    dupes = sorted(bdf for bdf, n in collections.Counter(d['bdf'] for d in host.devices).items() if n > 1)
    if dupes:
        raise PolicyError(['devices: %s listed more than once; the facts are inconsistent, gather them again' % bdf for bdf in dupes])
    decisions = sorted((_decide(host, d, v) for d, v in zip(host.devices, host.views)), key=lambda d: d['bdf'])
    return {'policy_version': host.policy.version, 'decisions': decisions, 'summary': _plan_summary(host.policy, decisions)}


def _plan_summary(policy: Policy, decisions: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    by_trust = dict.fromkeys(TRUST_LEVELS, 0)
    by_rule = dict.fromkeys([r.id for r in policy.rules] + [IMPLICIT_DEFAULT], 0)
    for d in decisions:
        by_trust[d['outcome']['trust']] += 1
        by_rule[d['rule']] += 1
    return {
        'devices': len(decisions),
        'by_trust': by_trust,
        'by_rule': by_rule,
        'evidence_failures': sum(1 for d in decisions if d['evidence']['ok'] is False),
        'match_errors': sum(1 for d in decisions if d['matched_by'] == 'error'),
        'disruptive': sum(1 for d in decisions if d['disruptive']),
        'exempt': sum(1 for d in decisions if d['exempt']),
    }


# ---- inventory completeness ------------------------------------------------------------------------------------

def check_expected(devices: t.Any, policy: t.Any) -> list[dict[str, t.Any]]:
    """Inventory findings: ``[{kind, expected, bdf, found, want, bdfs, reason}]``.

    ``kind`` is ``missing`` (fewer than wanted, or a listed BDF absent or holding another
    device), ``extra`` (more than wanted, or a device the selector matches outside an exact set),
    ``duplicate`` (the facts list a BDF twice), ``unlisted`` (with ``expected_complete``: a
    device no entry is about) or ``error`` (a selector failed on a device, which is then not
    counted).
    """
    host = _host(devices, policy, None, None, datetime.date.min)
    return _inventory(host)


def _inventory(host: _Host) -> list[dict[str, t.Any]]:
    findings: list[dict[str, t.Any]] = []
    claimed: set[str] = set()
    for entry in host.policy.expected:
        selected: list[str] = []
        if entry.matcher is not None:
            for view in host.views:
                try:
                    if entry.matcher.matches(view):
                        selected.append(view['bdf'])
                except match.MatchError as err:
                    findings.append(_finding('error', entry.id, view['bdf'], None, None, [],
                                             '%s: %s; the device is not counted' % (entry.label, err)))
        claimed.update(selected)
        claimed.update(entry.bdfs)
        findings.extend(_entry_findings(host, entry, selected))
    counts = collections.Counter(d['bdf'] for d in host.devices)
    for bdf in sorted(b for b, n in counts.items() if n > 1):
        owners = [e.id for e in host.policy.expected if bdf in e.bdfs] or [None]
        findings.append(_finding('duplicate', owners[0], bdf, counts[bdf], None, [bdf],
                                 'the facts list %s %d times; the inventory source is inconsistent, gather the facts again' % (bdf, counts[bdf])))
    if host.policy.expected_complete:
        for bdf in sorted(set(counts) - claimed):
            findings.append(_finding('unlisted', None, bdf, None, None, [bdf],
                                     '%s matches no expected entry, and expected_complete says the entries list every device' % bdf))
    return findings


def _entry_findings(host: _Host, entry: t.Any, selected: list[str]) -> list[dict[str, t.Any]]:
    out = []
    present = {d['bdf'] for d in host.devices}
    if entry.bdfs:
        for bdf in entry.bdfs:
            if bdf not in present:
                out.append(_finding('missing', entry.id, bdf, 0, 'present', [bdf], '%s: %s is not present' % (entry.label, bdf)))
            elif entry.matcher is not None and bdf not in selected:
                out.append(_finding('missing', entry.id, bdf, 0, 'present', [bdf], '%s: %s is present but does not match %s'
                                    % (entry.label, bdf, entry.matcher.describe())))
        for bdf in sorted(set(selected) - set(entry.bdfs)):
            out.append(_finding('extra', entry.id, bdf, None, 'one of %s' % ', '.join(entry.bdfs), [bdf],
                                '%s: %s matches %s but is not in the exact set bdfs' % (entry.label, bdf, entry.matcher.describe())))
        return out
    found = len(selected)
    want = ', '.join('%s %d' % (k, v) for k, v in (('count', entry.count), ('min', entry.minimum), ('max', entry.maximum)) if v is not None)
    low = entry.count if entry.count is not None else entry.minimum
    high = entry.count if entry.count is not None else entry.maximum
    listing = ', '.join(sorted(selected)) or 'none'
    if low is not None and found < low:
        out.append(_finding('missing', entry.id, None, found, want, sorted(selected), '%s: wants %s devices matching %s, found %d (%s)'
                            % (entry.label, want, entry.matcher.describe(), found, listing)))
    if high is not None and found > high:
        out.append(_finding('extra', entry.id, None, found, want, sorted(selected), '%s: wants %s devices matching %s, found %d (%s)'
                            % (entry.label, want, entry.matcher.describe(), found, listing)))
    return out


def _finding(kind: str, expected: t.Optional[str], bdf: t.Optional[str], found: t.Optional[int], want: t.Optional[str],
             bdfs: list[str], reason: str) -> dict[str, t.Any]:
    return {'kind': kind, 'expected': expected, 'bdf': bdf, 'found': found, 'want': want, 'bdfs': bdfs, 'reason': reason}


# ---- audit -----------------------------------------------------------------------------------------------------

def audit(devices: t.Any, policy: t.Any, verdicts: t.Any = None, manifests: t.Any = None, now: t.Any = None,
          ledger: t.Any = None) -> dict[str, t.Any]:
    """Compliance of every device with the policy now: ``{policy_version, date, findings, summary}``.

    Each finding: ``{bdf, kind, status, reason, policy_version, rule, matched_by, expected,
    outcome, actual, evidence: {required, verdict_status, reasons}, exemption}``. ``kind`` is
    ``compliant`` or a drift kind (``DRIFT_KINDS``); ``status`` is ``compliant``, ``drift``, or
    ``exempt`` when an unexpired exemption covers the drift. ``ledger`` is what the state
    modules recorded on the host: ``{bdf: {level, generation, policy_version}}``.
    """
    host = _host(devices, policy, verdicts, manifests, now)
    errors: list[str] = []
    records = _ledger(ledger, errors)
    if manifests is not None and not isinstance(manifests, t.Mapping):
        errors.append('reference_manifests: must be a mapping of manifest name to manifest, got %s' % type(manifests).__name__)
    if errors:
        raise PolicyError(errors)
    findings: list[dict[str, t.Any]] = []
    decisions: dict[str, dict[str, t.Any]] = {}
    manifest = _manifest_loader(manifests)
    for device, view in sorted(zip(host.devices, host.views), key=lambda pair: pair[0]['bdf']):
        decision = _decide(host, device, view)
        decisions.setdefault(device['bdf'], decision)
        drift = _drift(device, decision, records.get(device['bdf']), manifest, host.now)
        if not drift:
            findings.append(_audit_finding(decision, device, 'compliant', 'matches the policy: %s' % '; '.join(decision['reasons']), None))
        for kind, reasons in drift.items():
            findings.append(_audit_finding(decision, device, kind, '; '.join(reasons), None))
    devices_by_bdf = {d['bdf']: d for d in host.devices}
    for item in _inventory(host):
        bdf = item['bdf']
        decision = decisions.get(bdf) if bdf else None
        findings.append(_audit_finding(decision, devices_by_bdf.get(bdf) if bdf else None, _INVENTORY_DRIFT[item['kind']],
                                       item['reason'], item['expected'], host.policy.version, bdf))
    for finding in findings:
        _apply_exemptions(host.policy, finding, host.today)
    return {'policy_version': host.policy.version, 'date': host.today.isoformat(), 'findings': findings,
            'summary': _audit_summary(findings)}


def _ledger(ledger: t.Any, errors: list[str]) -> dict[str, dict[str, t.Any]]:
    """``{bdf: {level, generation, policy_version}}``; also the host's ledger file ``{format, devices: {bdf: {trust_level, ...}}}``
    and the ledger as ``tdisp_device_info`` returns it, ``{devices: {...}, policy: {version, applied} | null}``, whose
    policy version is the one the records were set under."""
    if ledger is None:
        return {}
    applied = None
    if isinstance(ledger, t.Mapping) and isinstance(ledger.get('devices'), t.Mapping) and set(ledger) <= {'format', 'devices', 'policy'}:
        policy = ledger.get('policy')
        applied = policy.get('version') if isinstance(policy, t.Mapping) else None
        ledger = ledger['devices']
    if not isinstance(ledger, t.Mapping):
        errors.append('ledger: must be a mapping {bdf: {level, generation, policy_version}}, got %s' % type(ledger).__name__)
        return {}
    out = {}
    for bdf, record in ledger.items():
        if not isinstance(record, t.Mapping):
            errors.append('ledger[%s]: must be a mapping {level, generation, policy_version}, got %s' % (bdf, type(record).__name__))
            continue
        raw_level = record.get('level', record.get('trust_level'))
        level = None if raw_level is None else trust_name(raw_level)
        if raw_level is not None and level is None:
            errors.append('ledger[%s].level: %r is not a trust level' % (bdf, raw_level))
            continue
        generation = record.get('generation')
        if generation is not None and not _is_int(generation):
            errors.append('ledger[%s].generation: must be a whole number, got %r' % (bdf, generation))
            continue
        rejected = record.get('rejected')
        out[bdf] = {'level': level, 'generation': generation, 'policy_version': record.get('policy_version', applied),
                    'rejected': rejected if isinstance(rejected, t.Mapping) else None}
    return out


def _drift(device: Device, decision: dict[str, t.Any], record: t.Optional[dict[str, t.Any]],
           manifest: t.Callable[[str], t.Any], now: datetime.datetime) -> dict[str, list[str]]:
    """Drift kind -> reasons for one device (empty when compliant). ``manifest(name)`` loads a manifest or gives None."""
    drift: dict[str, list[str]] = collections.defaultdict(list)
    want = decision['outcome']['trust']
    state, level = device.get('tdisp_state'), device.get('trust_level')
    record = record or {'level': None, 'generation': None, 'policy_version': None, 'rejected': None}
    unreadable = _evidence_unreadable(device) if decision['evidence']['required'] and state in _LOCKED_STATES else None
    if unreadable:
        # Not a verdict on the device: its evidence could not be read, so nothing that needs the
        # evidence can be said about it. What the ledger alone shows (a trust reset) still counts.
        drift['evidence_unreadable'].append('the device is TDISP %s at trust %s but its evidence cannot be read (%s); fix the '
                                            'evidence endpoint or the permissions and audit again' % (state, level, unreadable))
        _trust_reset(drift, record, level)
        return dict(drift)
    rejected = record.get('rejected') if isinstance(record.get('rejected'), t.Mapping) else None
    kept_out = bool(rejected) and rejected.get('policy_version') == decision['policy_version'] and state == 'unlocked'
    by = 'rule %s (policy %s) gives' % (decision['rule'], decision['policy_version'])
    if decision['evidence']['ok'] is False:
        by = 'rule %s (policy %s), with evidence not good enough, gives' % (decision['rule'], decision['policy_version'])
    unverified = decision['evidence']['required'] and decision['evidence']['verdict_status'] is None
    if kept_out and want != 'tcb':
        # Rejected under this policy version (its evidence failed, or it was revoked): the policy keeps it
        # out at the rule's evidence-failure level; that is compliance, unless the level is wrong.
        if level != want:
            drift['wrong_trust_level'].append('rejected under policy %s (%s), so %s %s; the device is at %s'
                                              % (rejected.get('policy_version'), rejected.get('reason'), by, want, level))
    elif want != 'tcb' and decision.get('rule_trust') == 'tcb' and unverified and state == 'unlocked' and level != 'tcb':
        # The rule wants the device in the TCB and there is no evidence yet (it only exists once the
        # device is locked): the acceptance has not happened, which is not the same as a wrong level.
        failures = decision['evidence'].get('failures') or []
        cannot = [f for f in failures if 'cannot be locked' in f]
        drift['not_accepted'].append('rule %s (policy %s) wants tcb once its evidence verifies against %s; the device is TDISP %s '
                                     'at trust %s and %s'
                                     % (decision['rule'], decision['policy_version'], decision['evidence']['required'], state, level,
                                        cannot[0] if cannot else 'has not been through lock, verify, accept (the rollout does it, '
                                        'unless this policy version rejected it before)'))
    elif want == 'tcb':
        if state != 'run' or level != 'tcb':
            drift['not_accepted'].append('%s tcb (TDISP run, trust tcb); the device is TDISP %s at trust %s' % (by, state, level))
    elif state in _LOCKED_STATES or level == 'tcb':
        drift['accepted_not_allowed'].append('%s %s; the device is TDISP %s at trust %s and must be unlocked (disruptive)'
                                             % (by, want, state, level))
    elif level != want:
        shown = level if level is not None else 'unreadable (trust_abi %s)' % device.get('trust_abi')
        drift['wrong_trust_level'].append('%s trust %s; the device is at %s' % (by, want, shown))
    evidence = device.get('evidence') if isinstance(device.get('evidence'), t.Mapping) else {}
    _trust_reset(drift, record, level)
    if record['generation'] is not None and evidence.get('generation') != record['generation']:
        drift['evidence_changed'].append('the evidence generation is now %s, the ledger accepted generation %s; verify and accept again'
                                         % (evidence.get('generation'), record['generation']))
    was_accepted = state == 'run' or level == 'tcb' or record['level'] == 'tcb' or record['generation'] is not None
    required = decision['evidence']['required']
    if was_accepted and required and decision['evidence']['ok'] is False:
        drift['evidence_changed'].append('the verdict is no longer acceptable: %s' % '; '.join(decision['evidence']['failures']))
    loaded = manifest(required) if was_accepted and required else None
    if loaded is not None:
        expired = _expired_digests(evidence, loaded, now)
        if expired:
            drift['manifest_expired'].append('manifest %s allows the accepted evidence only through expired entries: %s'
                                             % (required, '; '.join(expired)))
    return dict(drift)


def _trust_reset(drift: dict[str, list[str]], record: t.Mapping[str, t.Any], level: t.Any) -> None:
    if record.get('level') is not None and level in TRUST_LEVELS and rank(level) < rank(record['level']):
        drift['trust_reset'].append('the ledger records trust %s (generation %s, policy %s); the kernel now reports %s: %s'
                                    % (record['level'], record.get('generation'), record.get('policy_version'), level,
                                       'the device probably left RUN; accept it again through lock, verify, accept'
                                       if record['level'] == 'tcb' else 'someone or something lowered it; set it again'))


def _evidence_unreadable(device: Device) -> t.Optional[str]:
    """Why the evidence of a locked or accepted device could not be read (a read error, no generation), or None."""
    evidence = device.get('evidence')
    if not isinstance(evidence, t.Mapping):
        return None  # evidence was not asked for
    for error in evidence.get('errors') or []:
        if isinstance(error, t.Mapping) and error.get('object') == '*':
            return str(error.get('msg'))
    if not _is_int(evidence.get('generation')):
        return 'the evidence carries no generation'
    return None


def _manifest_loader(manifests: t.Any) -> t.Callable[[str], t.Any]:
    """``name -> Manifest`` (``_manifest``), None when absent or invalid (verification reports invalid manifests); cached."""
    cache: dict[str, t.Any] = {}

    def load(name: str) -> t.Any:
        if name not in cache:
            cache[name] = None
            if isinstance(manifests, t.Mapping) and name in manifests:
                try:
                    cache[name] = _manifest.load_manifest(name, manifests[name])
                except _manifest.ManifestError:
                    pass
        return cache[name]
    return load


def _expired_digests(evidence: t.Mapping[str, t.Any], manifest: t.Any, now: datetime.datetime) -> list[str]:
    """The measured digests that only expired entries of ``manifest`` allow, one line each.

    The blocks are ``evidence.measurements.blocks`` as ``tdisp_device_info`` parses them; a digest
    block is compared as it is, a raw bit-stream block by its digest with the entry's algorithm
    (as evidence verification compares them).
    """
    measurements = evidence.get('measurements')
    blocks = measurements.get('blocks') if isinstance(measurements, t.Mapping) else None
    out = []
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, t.Mapping) or not isinstance(block.get('value'), str) or not _is_int(block.get('index')):
            continue
        hits = [(entry, alg, value) for entry in manifest.entries_for(block['index']) for alg, value in entry.digests
                if _block_digest(block, alg) == value]
        if hits and all(entry.validity.state(now) == 'expired' for entry, _alg, _value in hits):
            entry, alg, value = hits[0]
            out.append('index %d: %s:%s... is allowed only by %s' % (block['index'], alg, value[:16], '; '.join(
                '%s, which expired on %s' % (e.label(), e.validity.end_text) for e, _a, _v in hits)))
    return out


def _block_digest(block: t.Mapping[str, t.Any], alg: str) -> t.Optional[str]:
    try:
        value = bytes.fromhex(block['value'])
    except ValueError:
        return None
    return hashlib.new(alg, value).hexdigest() if block.get('raw') else value.hex()


def _audit_finding(decision: t.Optional[dict[str, t.Any]], device: t.Optional[Device], kind: str, reason: str,
                   expected: t.Optional[str], version: t.Optional[str] = None, bdf: t.Optional[str] = None) -> dict[str, t.Any]:
    return {
        'bdf': decision['bdf'] if decision else bdf,
        'kind': kind,
        'status': 'compliant' if kind == 'compliant' else 'drift',
        'reason': reason,
        'policy_version': decision['policy_version'] if decision else version,
        'rule': decision['rule'] if decision else None,
        'matched_by': decision['matched_by'] if decision else None,
        'expected': expected,
        'outcome': decision['outcome'] if decision else None,
        'actual': {'tdisp_state': device.get('tdisp_state'), 'trust_level': device.get('trust_level')} if device else None,
        'evidence': {'required': decision['evidence']['required'], 'verdict_status': decision['evidence']['verdict_status'],
                     'reasons': decision['evidence']['failures'] + decision['evidence']['reasons']} if decision else None,
        'exemption': None,
    }


def _apply_exemptions(policy: Policy, finding: dict[str, t.Any], today: datetime.date) -> None:
    if finding['status'] != 'drift':
        return
    for ex in policy.exemptions:
        if not ex.applies(finding['kind'], finding['bdf'], finding['expected']):
            continue
        if ex.expired(today):
            finding['reason'] += '; exemptions[%d] (%s) expired on %s' % (ex.index, ex.reason, ex.until.isoformat())
            continue
        finding['status'] = 'exempt'
        finding['exemption'] = _exemption_dict(ex)
        return


def _audit_summary(findings: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    statuses = collections.Counter(f['status'] for f in findings)
    kinds = collections.Counter(f['kind'] for f in findings if f['status'] == 'drift')
    drifting = {f['bdf'] for f in findings if f['status'] == 'drift' and f['bdf']}
    return {
        'compliant': statuses['compliant'],
        'drift': statuses['drift'],
        'exempt': statuses['exempt'],
        'by_kind': {kind: kinds[kind] for kind in DRIFT_KINDS},  # drift only; exempt findings are not counted
        'devices_in_drift': sorted(drifting),
    }


# ---- lockout preflight -----------------------------------------------------------------------------------------

def select(devices: t.Any, expression: t.Any) -> list[dict[str, t.Any]]:
    """The devices a JMESPath expression selects, with the same view and checks as a rule's ``match``.

    For incident response (``playbooks/revoke.yml``): a vendor, a device id, a firmware digest in
    ``evidence.measurements.blocks``. An expression that does not compile, or names a field the
    device facts do not have, raises :class:`PolicyError` before anything is selected.
    """
    errors: list[str] = []
    warnings: list[str] = []
    matcher = match.build({'match': expression}, 'match', errors, warnings)
    facts, tsms = _facts(devices, errors)
    if errors or matcher is None:
        raise PolicyError(errors or ['match: cannot be used'])
    out = []
    for device in facts:
        try:
            if matcher.matches(match.match_view(device, tsms)):
                out.append(dict(device))
        except match.MatchError as err:
            raise PolicyError(['%s: %s' % (device['bdf'], err)]) from None
    return out


def preflight(devices: t.Any, decisions: t.Any, critical: t.Any = None) -> list[dict[str, t.Any]]:
    """Decisions that would cut the operator off: ``[{bdf, kind, categories, class, driver, rule, policy_version, reason}]``.

    A device is at risk when its class is storage (0x01xxxx) or network (0x02xxxx) and no other
    storage (network) device stays in service (driver bound, not rejected, not interrupted), its
    class is unreadable, or its BDF is in ``critical``. ``kind`` is ``blocked`` (the outcome rejects it),
    ``driver_unbind`` (the TDISP transition needs its bound driver unbound; lock, accept and
    unlock fail with EBUSY otherwise) or ``undecided`` (no decision for it). ``decisions`` is a
    :func:`plan` result or its ``decisions`` list.
    """
    errors: list[str] = []
    facts, _tsms = _facts(devices, errors)
    if isinstance(decisions, t.Mapping):
        decisions = decisions.get('decisions')
    if not isinstance(decisions, list) or not all(isinstance(d, t.Mapping) and 'bdf' in d and 'outcome' in d for d in decisions):
        errors.append('decisions: must be a policy plan result or its list of decisions')
        decisions = []
    critical = [] if critical is None else critical
    if not isinstance(critical, list):
        errors.append('critical: must be a list of PCI device names, got %s' % type(critical).__name__)
        critical = []
    for pos, bdf in enumerate(critical):
        problem = match.bdf_shape_error(bdf) if isinstance(bdf, str) else 'must be a string, got %r' % (bdf,)
        if problem:
            errors.append('critical[%d]: %s' % (pos, problem))
    if errors:
        raise PolicyError(errors)
    by_bdf = {d['bdf']: d for d in decisions}
    problems = []
    kept: dict[str, list[str]] = {}  # category -> devices of it that stay in service
    for device in sorted(facts, key=lambda d: d['bdf']):
        categories = _categories(device, critical)
        if categories:
            problem = _lockout(device, by_bdf.get(device['bdf']), categories)
            if problem is not None:
                problems.append(problem)
            elif device.get('driver'):
                for category in categories:
                    kept.setdefault(category, []).append(device['bdf'])
    # A storage or network device is only a lockout risk when it is the host's last one in
    # service: when another device of the same kind keeps its driver and is not rejected (the
    # virtio disk the host boots from, the virtio NIC it is managed through), interrupting a
    # data-path device is what the policy asks for, not a lockout.
    return [p for p in problems if not _covered(p, kept)]


def _covered(problem: dict[str, t.Any], kept: t.Mapping[str, list[str]]) -> bool:
    categories = problem['categories']
    if any(c not in _LOCKOUT_CLASSES.values() for c in categories):
        return False  # critical or unclassified: always a problem
    return all(kept.get(c) for c in categories)


def _categories(device: Device, critical: t.Sequence[str]) -> list[str]:
    out = []
    code = device.get('class')
    try:
        base = int(code[2:4], 16) if isinstance(code, str) and code.startswith('0x') and len(code) == 8 else None
    except ValueError:
        base = None
    if base is None:
        out.append('unclassified')
    elif base in _LOCKOUT_CLASSES:
        out.append(_LOCKOUT_CLASSES[base])
    if device['bdf'] in critical:
        out.append('critical')
    return out


def _lockout(device: Device, decision: t.Optional[t.Mapping[str, t.Any]], categories: list[str]) -> t.Optional[dict[str, t.Any]]:
    what = '%s device' % '/'.join(categories)
    driver = device.get('driver')
    base = {'bdf': device['bdf'], 'categories': categories, 'class': device.get('class'), 'driver': driver,
            'rule': decision.get('rule') if decision else None, 'policy_version': decision.get('policy_version') if decision else None}
    if decision is None:
        return dict(base, kind='undecided', reason='%s %s has no decision; plan it before enforcing' % (what, device['bdf']))
    outcome = decision['outcome']
    if outcome.get('trust') == 'blocked':
        return dict(base, kind='blocked', reason='%s %s would be rejected by rule %s: blocked, its driver cannot bind and its DMA stops'
                    % (what, device['bdf'], decision.get('rule')))
    if not driver:
        return None
    if decision.get('disruptive'):
        return dict(base, kind='driver_unbind', reason='%s %s would be unlocked by rule %s: driver %s must be unbound and the device '
                    'stops meanwhile' % (what, device['bdf'], decision.get('rule'), driver))
    if outcome.get('tdisp_state') == 'run' and device.get('tdisp_state') != 'run':
        return dict(base, kind='driver_unbind', reason='%s %s would be locked and accepted by rule %s: driver %s must be unbound '
                    '(lock and accept fail with EBUSY while it is bound) and the device stops meanwhile'
                    % (what, device['bdf'], decision.get('rule'), driver))
    return None
