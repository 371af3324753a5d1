# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Every report shape of the collection, built from one model (private; may change at any time).

A report is a JSON-ready dict with ``kind`` (``rollout``, ``audit``, ``revoke``) built from the
per-host records the roles leave: the acceptance summary (``tdisp_acceptance_summary``), the
host audit (``tdisp_audit``, built here by :func:`host_audit`) and the revocation summary
(``tdisp_revoke_summary``, :func:`revoke_host`). :func:`records` reads them from ``hostvars``
(facts first, so that nothing depends on ``INJECT_FACTS_AS_VARS``), :func:`document` builds the
fleet report of a kind, :func:`file_name` names its file, :func:`gate` judges a rollout wave.

``fleet_audit(audits, hosts, now)`` takes the ``tdisp_audit`` fact of every audited host (set by
the ``coco.tdisp.audit`` role) and the names of the hosts that should have been audited, and
returns one JSON-ready document: what an auditor needs to show which devices were trusted, why,
and under which policy version.
"""

from __future__ import annotations

import datetime
import typing as t
from collections import Counter
from collections.abc import Mapping, Sequence

from ansible_collections.coco.tdisp.plugins.plugin_utils import _policy
from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import TdispError

FORMAT = 1


class ReportError(TdispError):
    """Input the report cannot use (one line)."""


KINDS = ('rollout', 'audit', 'revoke')
# The per-host record each kind reads, by default.
RECORD_FACTS = {'rollout': 'tdisp_acceptance_summary', 'audit': 'tdisp_audit', 'revoke': 'tdisp_revoke_summary'}
# The device fields an audit keeps of what tdisp_device_info read.
AUDIT_DEVICE_KEYS = ('bdf', 'vendor', 'device', 'class', 'driver', 'tsm_side', 'tdisp_state', 'trust_abi', 'trust_level')


def _utc(now: t.Any) -> datetime.datetime:
    moment = now if isinstance(now, datetime.datetime) else datetime.datetime.now(datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def _stamp(now: t.Any) -> str:
    return _utc(now).strftime('%Y-%m-%dT%H:%M:%SZ')


def _count(values: t.Iterable[t.Any]) -> dict[str, int]:
    return dict(sorted(Counter('none' if v is None else str(v) for v in values).items()))


def _finding(f: Mapping[str, t.Any], by_bdf: Mapping[t.Any, Mapping[str, t.Any]]) -> dict[str, t.Any]:
    """One finding of a host, with the device it is about, for the per-host detail of the reports."""
    device = by_bdf.get(f.get('bdf')) or {}
    return {'bdf': f.get('bdf'), 'kind': f.get('kind'), 'status': f.get('status'), 'rule': f.get('rule'), 'reason': f.get('reason'),
            'exemption': f.get('exemption'), 'vendor': device.get('vendor'), 'device': device.get('device'),
            'trust_level': device.get('trust_level'), 'tdisp_state': device.get('tdisp_state'),
            'verdict': (f.get('evidence') or {}).get('verdict_status')}


def fleet_audit(audits: t.Any, hosts: t.Optional[Sequence[str]] = None, now: t.Any = None) -> dict[str, t.Any]:
    """Aggregate per-host audits. ``audits``: a list of ``tdisp_audit`` facts, or a mapping of
    host name to hostvars (only hosts that carry ``tdisp_audit`` count as audited)."""
    if isinstance(audits, Mapping):
        audits = [hv.get('tdisp_audit') for hv in audits.values() if isinstance(hv, Mapping) and hv.get('tdisp_audit')]
    if not isinstance(audits, list) or not all(isinstance(a, Mapping) and isinstance(a.get('host'), str) for a in audits):
        raise ReportError('audits: expected a list of tdisp_audit facts (each with host, findings, devices), or hostvars')
    moment = now if isinstance(now, datetime.datetime) else datetime.datetime.now(datetime.timezone.utc)
    audited = sorted(audits, key=lambda a: a['host'])
    names = {a['host'] for a in audited}
    missing = sorted(set(hosts or ()) - names)
    drift: list[dict[str, t.Any]] = []
    exempt: list[dict[str, t.Any]] = []
    kinds: list[str] = []
    per_host = []
    levels: list[t.Any] = []
    states: list[t.Any] = []
    accepted: list[dict[str, t.Any]] = []
    versions = set()
    for audit in audited:
        findings = [f for f in audit.get('findings') or [] if isinstance(f, Mapping)]
        devices = [d for d in audit.get('devices') or [] if isinstance(d, Mapping)]
        versions.add(audit.get('policy_version'))
        host_drift = [f for f in findings if f.get('status') == 'drift']
        for f in findings:
            kinds.append(f.get('kind') if f.get('status') != 'exempt' else 'exempt')
        for f in host_drift:
            drift.append({'host': audit['host'], 'bdf': f.get('bdf'), 'kind': f.get('kind'), 'reason': f.get('reason'),
                          'rule': f.get('rule'), 'policy_version': f.get('policy_version')})
        for f in findings:
            if f.get('status') == 'exempt':
                exempt.append({'host': audit['host'], 'bdf': f.get('bdf'), 'kind': f.get('kind'), 'reason': f.get('reason'),
                               'rule': f.get('rule'), 'exemption': f.get('exemption')})
        by_bdf = {f.get('bdf'): f for f in findings if f.get('bdf')}
        for d in devices:
            levels.append(d.get('trust_level'))
            states.append(d.get('tdisp_state'))
            if d.get('tdisp_state') == 'run' and d.get('trust_level') == 'tcb':
                f = by_bdf.get(d.get('bdf')) or {}
                accepted.append({'host': audit['host'], 'bdf': d.get('bdf'), 'vendor': d.get('vendor'), 'device': d.get('device'),
                                 'rule': f.get('rule'), 'policy_version': f.get('policy_version'),
                                 'verdict': (f.get('evidence') or {}).get('verdict_status'),
                                 'compliant': f.get('status') in ('compliant', 'exempt')})
        per_host.append({'host': audit['host'], 'compliant': not host_drift, 'policy_version': audit.get('policy_version'),
                         'applied_policy_version': audit.get('applied_policy_version'), 'checked_at': audit.get('checked_at'),
                         'devices': len(devices), 'drift': len(host_drift),
                         'by_trust_level': _count(d.get('trust_level') for d in devices),
                         'findings': [_finding(f, {d.get('bdf'): d for d in devices}) for f in findings]})
    compliant = sum(1 for h in per_host if h['compliant'])
    return {
        'format': FORMAT,
        'kind': 'audit',
        'generated_at': moment.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'policy_versions': sorted(str(v) for v in versions if v is not None),
        'hosts': {'expected': len(set(hosts or ()) | names), 'audited': len(audited), 'compliant': compliant,
                  'with_drift': len(audited) - compliant, 'not_audited': missing},
        'devices': {'total': len(levels), 'by_trust_level': _count(levels), 'by_tdisp_state': _count(states),
                    'accepted': len(accepted)},
        'findings': {'by_kind': _count(kinds), 'drift': len(drift)},
        'drift': drift,
        'exempt': exempt,
        'accepted_devices': accepted,
        'per_host': per_host,
    }


# ---- per-host records --------------------------------------------------------------------------------------------

def host_audit(host: str, info: t.Any, policy: t.Any, manifests: t.Any = None, nonce: t.Any = None, now: t.Any = None) -> dict[str, t.Any]:
    """One host's audit (the ``tdisp_audit`` fact): the devices as read, verified and classified, read-only.

    ``info``: the ``tdisp_device_info`` result (devices with evidence, and the ledger). The
    evidence is verified by :func:`_policy.verify_host`, the entry point the planner uses too.
    """
    moment = _utc(now)
    checked = _policy.ensure(policy, manifests)
    verdicts = _policy.verify_host(info, checked, manifests, moment, nonce)
    ledger = info.get('ledger') if isinstance(info, Mapping) else None
    result = _policy.audit(info, checked, verdicts, manifests, moment, ledger)
    applied = (ledger or {}).get('policy') if isinstance(ledger, Mapping) else None
    devices = info.get('devices') if isinstance(info, Mapping) else info
    return {
        'host': host,
        'policy_version': checked.version,
        'applied_policy_version': applied.get('version') if isinstance(applied, Mapping) else None,
        'checked_at': _stamp(moment),
        'devices': [{k: d[k] for k in AUDIT_DEVICE_KEYS if k in d} for d in devices or [] if isinstance(d, Mapping)],
        'findings': result['findings'],
        'summary': result['summary'],
    }


def revoke_host(host: str, plan: t.Mapping[str, t.Any], unlocked: t.Any = None, lowered: t.Any = None,
                check_mode: bool = False) -> dict[str, t.Any]:
    """One host's revocation (the ``tdisp_revoke_summary`` fact) from its plan and the two module results."""
    def changed(result: t.Any) -> list[str]:
        items = result.get('devices') if isinstance(result, Mapping) else None
        return [d['bdf'] for d in items or [] if isinstance(d, Mapping) and d.get('changed')]
    return {'host': host, 'match': plan.get('match'), 'level': plan.get('level'), 'check_mode': bool(check_mode),
            'devices': list(plan.get('devices') or []), 'unlocked': changed(unlocked), 'lowered': changed(lowered)}


def records(hostvars: t.Any, hosts: Sequence[str], fact: str) -> list[dict[str, t.Any]]:
    """The ``fact`` of each host that has it, in ``hosts`` order: from its facts, else its variables."""
    out = []
    for name in hosts:
        try:
            hv = hostvars[name]
        except KeyError:
            continue
        facts = hv.get('ansible_facts') if 'ansible_facts' in hv else None
        record = facts.get(fact) if isinstance(facts, Mapping) else None
        if record is None and fact in hv:
            record = hv.get(fact)
        if isinstance(record, Mapping):
            out.append(dict(record))
    return out


# ---- fleet reports -----------------------------------------------------------------------------------------------

def document(kind: str, hosts: Sequence[str], found: list[dict[str, t.Any]], check_mode: bool = False, now: t.Any = None,
             **extra: t.Any) -> dict[str, t.Any]:
    """The fleet report of ``kind`` from the per-host records ``found`` of the ``hosts`` it is about.

    ``extra``: rollout ``policy_version``; revoke ``match`` and ``level``.
    """
    reached = [r.get('host') for r in found]
    if kind == 'audit':
        return fleet_audit(found, list(hosts), now)
    if kind == 'rollout':
        return {'kind': 'rollout', 'policy_version': extra.get('policy_version'), 'check_mode': bool(check_mode),
                'written_at': _stamp(now), 'hosts': found, 'not_reached': sorted(set(hosts) - set(reached))}
    if kind == 'revoke':
        return {'kind': 'revoke', 'match': extra.get('match'), 'level': extra.get('level'), 'check_mode': bool(check_mode),
                'hosts': found, 'not_reached': [h for h in hosts if h not in reached]}
    raise ReportError('kind: %r is not one of %s' % (kind, ', '.join(KINDS)))


def file_name(kind: str, check_mode: bool = False, now: t.Any = None, policy_version: t.Any = None) -> str:
    """The report's file name: ``rollout-<policy version>``, ``audit-<time>``, ``revoke-<time>``, ``-check`` for a plan."""
    suffix = '-check' if check_mode and kind != 'audit' else ''
    label = str(policy_version) if kind == 'rollout' else _utc(now).strftime('%Y%m%dT%H%M%SZ')
    return '%s-%s%s.json' % (kind, label, suffix)


def gate(wave: Sequence[t.Mapping[str, t.Any]], lost: Sequence[str], max_contraindicated: int = 0,
         require_expected: bool = True) -> list[str]:
    """Why a rollout wave fails its gate (empty when it passes). ``wave``: the summaries of the wave's
    hosts; ``lost``: the hosts that failed outside the acceptance role or could not be reached."""
    reasons = ['%s: unreachable or failed outside the acceptance role' % h for h in lost]
    failed = False
    for summary in wave:
        if summary.get('failed'):
            failed = True
            reasons.append(str(summary.get('failure')))
        for refused in summary.get('refused') or []:
            reasons.append('%s: refused: %s' % (summary.get('host'), refused.get('reason')))
        reasons.extend(str(n) for n in summary.get('gate_notes') or [])
    too_many = sum(int(s.get('contraindicated') or 0) for s in wave) > max_contraindicated
    missing = require_expected and any(s.get('expected') for s in wave)
    if lost or failed or any(s.get('refused') for s in wave) or too_many or missing:
        return reasons or ['the wave did not pass its gate']
    return []
