# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What every report format shares: escaping of hostile text, and one view of a fleet report.

``clean(value)`` is the first step of every format's escaping: a one-line string with every
control character (C0, DEL, C1), lone surrogate and XML-invalid code point written as a visible
``\\xNN``/``\\uNNNN`` escape. ``view(report)`` turns a rollout, audit or revoke report into
``{kind, title, subtitle, counts, hosts, findings, devices, waves, not_reached, provenance}``,
the shape the renderers read; ``counts`` are the numbers a tool checks against the JSON.
"""

from __future__ import annotations

import re
import typing as t
from collections import Counter
from collections.abc import Mapping

from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import TdispError

# C0, DEL, C1, line/paragraph separators, bidirectional overrides (Trojan Source), surrogates, non-characters
_UNSAFE = re.compile('[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]')
# A device is a failing test case / flagged row in these statuses.
FAILING = ('drift', 'rejected', 'refused', 'failed', 'not_audited')
HOST_FAILING = FAILING
# Rollout device actions that keep a device out.
REJECTING_ACTIONS = ('rejected', 'refused', 'abandon')


class RenderError(TdispError):
    """A report a renderer cannot read (one line)."""


def clean(value: t.Any) -> str:
    """``value`` as one printable line: None is empty, control characters become visible escapes."""
    if value is None:
        return ''
    text = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(lambda m: '\\x%02x' % ord(m.group()) if ord(m.group()) < 0x100 else '\\u%04x' % ord(m.group()), text)


def _list(value: t.Any) -> list[t.Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _map(value: t.Any) -> Mapping[str, t.Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: t.Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def rollout_device(host: str, dev: Mapping[str, t.Any]) -> dict[str, t.Any]:
    verdict = _map(dev.get('verdict'))
    if dev.get('action') in REJECTING_ACTIONS or verdict.get('status') == 'contraindicated':
        status = 'refused' if dev.get('action') == 'refused' else 'rejected'
    else:
        status = 'ok'
    return {'host': host, 'bdf': dev.get('bdf'), 'vendor': dev.get('vendor'), 'device': dev.get('device'),
            'rule': dev.get('rule'), 'trust': dev.get('trust'), 'tdisp_state': dev.get('tdisp_state'), 'status': status,
            'kind': dev.get('action'), 'verdict': verdict.get('status'),
            'reason': '; '.join([clean(dev.get('action_reason'))] + [clean(r) for r in _list(verdict.get('reasons'))[:2]])}


def _rollout(report: Mapping[str, t.Any]) -> dict[str, t.Any]:
    hosts, devices, actions = [], [], Counter()  # type: ignore[var-annotated]
    for summary in [_map(s) for s in _list(report.get('hosts'))]:
        name = summary.get('host')
        rows = [rollout_device(name, _map(d)) for d in _list(summary.get('devices'))]
        devices.extend(rows)
        counts = _map(summary.get('counts'))
        actions.update({k: _int(v) for k, v in _map(counts.get('actions')).items() if _int(v)})
        bad = sum(1 for r in rows if r['status'] != 'ok')
        status = 'failed' if summary.get('failed') else 'rejected' if bad or summary.get('refused') else \
            'ok' if summary.get('converged') else 'pending'
        hosts.append({'host': name, 'status': status, 'levels': dict(_map(counts.get('outcomes'))), 'devices': len(rows),
                      'problems': bad, 'note': '; '.join(clean(n) for n in [summary.get('failure')] + _list(summary.get('gate_notes')) if n)})
    not_reached = [str(h) for h in _list(report.get('not_reached'))]
    waves = []
    for number, wave in enumerate([_map(w) for w in _list(report.get('waves'))], 1):
        waves.append({'wave': wave.get('wave', number), 'hosts': _list(wave.get('hosts')), 'passed': bool(wave.get('passed')),
                      'reasons': [clean(r) for r in _list(wave.get('reasons'))]})
    counts = {
        'hosts_reached': len(hosts), 'hosts_not_reached': len(not_reached),
        'hosts_converged': sum(1 for h in _list(report.get('hosts')) if _map(h).get('converged')),
        'hosts_failed': sum(1 for h in _list(report.get('hosts')) if _map(h).get('failed')),
        'devices_total': len(devices), 'devices_tcb': sum(1 for d in devices if d['trust'] == 'tcb'),
        'devices_rejected': sum(1 for d in devices if d['status'] != 'ok'),
        'waves_passed': sum(1 for w in waves if w['passed']), 'waves_failed': sum(1 for w in waves if not w['passed']),
    }
    mode = ' (check mode: the plan)' if report.get('check_mode') else ''
    return {'title': 'Rollout of policy %s%s' % (clean(report.get('policy_version')), mode), 'when': report.get('written_at'),
            'counts': counts, 'hosts': hosts, 'findings': dict(sorted(actions.items())), 'findings_label': 'devices by action',
            'devices': devices, 'waves': waves, 'not_reached': not_reached}


def _audit_devices(report: Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    rows: dict[tuple[str, str], dict[str, t.Any]] = {}

    def add(entry: Mapping[str, t.Any], status: str, kind: t.Any, **more: t.Any) -> None:
        key = (clean(entry.get('host')), clean(entry.get('bdf')))
        row = rows.setdefault(key, {'host': entry.get('host'), 'bdf': entry.get('bdf'), 'vendor': entry.get('vendor'),
                                    'device': entry.get('device'), 'rule': entry.get('rule'), 'trust': more.get('trust'),
                                    'tdisp_state': more.get('tdisp_state'), 'status': status, 'kind': [], 'verdict': entry.get('verdict'),
                                    'reason': []})
        if status == 'drift':
            row['status'] = 'drift'
        row['kind'].append(clean(kind))
        if entry.get('reason'):
            row['reason'].append(clean(entry.get('reason')))
        for field in ('vendor', 'device', 'verdict'):
            row[field] = row[field] or entry.get(field)

    detailed = [h for h in _list(report.get('per_host')) if isinstance(_map(h).get('findings'), list)]
    for host in detailed:
        for f in [_map(f) for f in host['findings']]:
            entry = dict(f, host=host.get('host'), reason=f.get('reason') or _map(f.get('exemption')).get('reason'))
            add(entry, {'compliant': 'ok'}.get(str(f.get('status')), str(f.get('status'))), f.get('kind'),
                trust=f.get('trust_level'), tdisp_state=f.get('tdisp_state'))
    if not detailed:
        for d in [_map(d) for d in _list(report.get('accepted_devices'))]:
            add(d, 'ok' if d.get('compliant') else 'drift', 'accepted', trust='tcb', tdisp_state='run')
        for d in [_map(d) for d in _list(report.get('drift'))]:
            add(d, 'drift', d.get('kind'))
        for d in [_map(d) for d in _list(report.get('exempt'))]:
            add(dict(d, reason=d.get('reason') or _map(d.get('exemption')).get('reason')), 'exempt', d.get('kind'))
    out = []
    for row in sorted(rows.values(), key=lambda r: (clean(r['host']), clean(r['bdf']))):
        out.append(dict(row, kind=', '.join(row['kind']), reason='; '.join(row['reason'])))
    return out


def _audit(report: Mapping[str, t.Any]) -> dict[str, t.Any]:
    hosts_doc, devices_doc, findings = _map(report.get('hosts')), _map(report.get('devices')), _map(report.get('findings'))
    hosts = []
    for h in [_map(h) for h in _list(report.get('per_host'))]:
        hosts.append({'host': h.get('host'), 'status': 'ok' if h.get('compliant') else 'drift',
                      'levels': dict(_map(h.get('by_trust_level'))), 'devices': _int(h.get('devices')), 'problems': _int(h.get('drift')),
                      'note': 'policy %s, applied %s, checked %s' % (clean(h.get('policy_version')), clean(h.get('applied_policy_version')),
                                                                     clean(h.get('checked_at')))})
    not_audited = [str(h) for h in _list(hosts_doc.get('not_audited'))]
    counts = {'hosts_expected': _int(hosts_doc.get('expected')), 'hosts_audited': _int(hosts_doc.get('audited')),
              'hosts_compliant': _int(hosts_doc.get('compliant')), 'hosts_with_drift': _int(hosts_doc.get('with_drift')),
              'hosts_not_audited': len(not_audited), 'devices_total': _int(devices_doc.get('total')),
              'devices_accepted': _int(devices_doc.get('accepted')), 'drift': _int(findings.get('drift'))}
    return {'title': 'Audit against policy %s' % ', '.join(clean(v) for v in _list(report.get('policy_versions'))),
            'when': report.get('generated_at'), 'counts': counts, 'hosts': hosts,
            'findings': {clean(k): _int(v) for k, v in _map(findings.get('by_kind')).items()}, 'findings_label': 'findings by kind',
            'devices': _audit_devices(report), 'waves': [], 'not_reached': not_audited,
            'fleet_levels': {clean(k): _int(v) for k, v in _map(devices_doc.get('by_trust_level')).items()}}


def _revoke(report: Mapping[str, t.Any]) -> dict[str, t.Any]:
    hosts, devices = [], []
    for h in [_map(h) for h in _list(report.get('hosts'))]:
        done = set(_list(h.get('unlocked'))) | set(_list(h.get('lowered')))
        for bdf in _list(h.get('devices')):
            devices.append({'host': h.get('host'), 'bdf': bdf, 'vendor': None, 'device': None, 'rule': h.get('match'),
                            'trust': h.get('level'), 'tdisp_state': 'unlocked' if bdf in _list(h.get('unlocked')) else None,
                            'status': 'ok', 'kind': 'revoked' if bdf in done else 'matched', 'verdict': None,
                            'reason': 'unlocked' * (bdf in _list(h.get('unlocked'))) + ' lowered' * (bdf in _list(h.get('lowered')))})
        hosts.append({'host': h.get('host'), 'status': 'ok', 'levels': {}, 'devices': len(_list(h.get('devices'))), 'problems': 0,
                      'note': 'check mode' if h.get('check_mode') else ''})
    not_reached = [str(h) for h in _list(report.get('not_reached'))]
    counts = {'hosts_reached': len(hosts), 'hosts_not_reached': len(not_reached), 'devices_matched': len(devices),
              'devices_unlocked': sum(len(_list(_map(h).get('unlocked'))) for h in _list(report.get('hosts'))),
              'devices_lowered': sum(len(_list(_map(h).get('lowered'))) for h in _list(report.get('hosts')))}
    return {'title': 'Revocation of %s to %s%s' % (clean(report.get('match')), clean(report.get('level')),
                                                   ' (check mode)' if report.get('check_mode') else ''),
            'when': _map(report.get('provenance')).get('time'), 'counts': counts, 'hosts': hosts,
            'findings': dict(Counter(d['kind'] for d in devices)), 'findings_label': 'devices by outcome', 'devices': devices,
            'waves': [], 'not_reached': not_reached}


def view(report: t.Any) -> dict[str, t.Any]:
    """The renderers' view of a fleet report (see the module docstring)."""
    if not isinstance(report, Mapping) or report.get('kind') not in ('rollout', 'audit', 'revoke'):
        raise RenderError('report: expected a coco.tdisp fleet report (kind rollout, audit or revoke)')
    out = {'rollout': _rollout, 'audit': _audit, 'revoke': _revoke}[report['kind']](report)
    out.setdefault('fleet_levels', dict(sum((Counter(h['levels']) for h in out['hosts']), Counter())))
    out.update(kind=report['kind'], provenance=dict(_map(report.get('provenance'))))
    return out
