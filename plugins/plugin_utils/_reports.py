# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Fleet reports: the per-host audits aggregated into one document (private; may change at any time).

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

from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import TdispError

FORMAT = 1


class ReportError(TdispError):
    """Input the report cannot use (one line)."""


def _count(values: t.Iterable[t.Any]) -> dict[str, int]:
    return dict(sorted(Counter('none' if v is None else str(v) for v in values).items()))


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
                         'devices': len(devices), 'drift': len(host_drift)})
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
