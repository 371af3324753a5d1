# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Policy decisions: one attributed decision per device, and a summary (private; may change at any time)."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import typing as t

from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.manifest import is_int
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy import match
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.model import (
    IMPLICIT_DEFAULT,
    STATUSES,
    TRUST_LEVELS,
    Policy,
    PolicyError,
    Rule,
    as_date,
)
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.schema import ensure

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
    if not is_int(device_gen):
        failures.append('the device reports no evidence generation, so the verdict cannot be tied to its current evidence')
    elif not is_int(verdict_gen):
        failures.append('the verdict has no evidence generation, so it cannot be tied to the device evidence')
    elif verdict_gen != device_gen:
        failures.append('the verdict is stale: it is about evidence generation %d, the device is at generation %d; verify again'
                        % (verdict_gen, device_gen))
    failures.extend(_interface_failures(evidence, req.interface))
    out['ok'] = not failures
    return out


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
