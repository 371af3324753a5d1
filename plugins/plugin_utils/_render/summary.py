# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What a person reads during a run, and what AWX/AAP keeps of it (private; may change at any time).

``host_line(record)``: one line saying what happened on one host, from its per-host record (the
acceptance summary of a rollout, or the ``tdisp_audit`` of an audit). ``fleet_lines(report, paths)``:
the fleet summary at the end of a play (what ``tools/demo_summary.py`` used to print).
``stats(report, paths)``: the per-run aggregate the playbooks publish with ``set_stats``. Every
value a device supplied goes through ``common.clean`` (one printable line).
"""

from __future__ import annotations

import typing as t
from collections import Counter
from collections.abc import Mapping

from ansible_collections.coco.tdisp.plugins.plugin_utils._render import common
from ansible_collections.coco.tdisp.plugins.plugin_utils._render.common import _list, _map, clean

# The longest reason a one-line host message quotes.
REASON_CHARS = 160


def _counted(counter: Mapping[str, int]) -> str:
    return ', '.join('%s %d' % (clean(k), v) for k, v in sorted(counter.items()) if v)


def _short(text: t.Any) -> str:
    line = clean(text)
    return line if len(line) <= REASON_CHARS else line[:REASON_CHARS - 3] + '...'


def _rollout_host(record: Mapping[str, t.Any]) -> str:
    host = clean(record.get('host'))
    rows = [common.rollout_device(host, _map(d)) for d in _list(record.get('devices'))]
    kept = [r for r in rows if r['status'] == 'ok']
    tcb = sum(1 for r in kept if r['trust'] == 'tcb')
    pending = sum(1 for r in kept if r['trust'] == 'tcb_if_verified')
    other = Counter(clean(r['trust']) for r in kept if r['trust'] not in ('tcb', 'tcb_if_verified'))
    plan = bool(record.get('check_mode'))
    if plan:
        parts = ['would accept %d at tcb%s' % (tcb + pending, ' (%d once verified)' % pending if pending else '')]
    else:
        # a host that failed did not reach the plan's outcome: say what it was to be
        verb = 'was to accept' if record.get('failed') else 'accepted'
        parts = ['%s %d at tcb' % (verb, tcb)] + (['%d not verified yet' % pending] if pending else [])
    if other:
        parts.append('%d at other levels (%s)' % (sum(other.values()), _counted(other)))
    for status, verb in (('rejected', 'rejected'), ('refused', 'refused')):
        bad = [r for r in rows if r['status'] == status]
        if bad:
            parts.append('%s %d (%s)' % (verb, len(bad), '; '.join('%s by rule %s' % (clean(r['bdf']), clean(r['rule'])) for r in bad)))
    missing = _list(record.get('expected'))
    if missing:
        parts.append('expected inventory: %s' % _short('; '.join(clean(_map(e).get('reason')) for e in missing)))
    if record.get('failed'):
        parts.append('FAILED: %s' % _short(record.get('failure')))
    elif record.get('converged'):
        parts.append('converged')
    else:
        parts.append('not converged')
    return '%s%s: %s' % (host, ' (plan)' if plan else '', ', '.join(parts))


def _audit_host(record: Mapping[str, t.Any]) -> str:
    findings = [_map(f) for f in _list(record.get('findings'))]
    devices = [_map(d) for d in _list(record.get('devices'))]
    levels = Counter(clean(d.get('trust_level')) for d in devices)
    drift = [f for f in findings if f.get('status') == 'drift']
    tcb = sum(1 for d in devices if d.get('trust_level') == 'tcb' and d.get('tdisp_state') == 'run')
    line = '%s: %d device(s), %d accepted at tcb (%s)' % (clean(record.get('host')), len(devices), tcb, _counted(levels) or 'none')
    if not drift:
        return line + ', compliant with policy %s' % clean(record.get('policy_version'))
    kinds = Counter(clean(f.get('kind')) for f in drift)
    rules = sorted({clean(f.get('rule')) for f in drift if f.get('rule')})
    return line + ', DRIFT: %d finding(s) (%s)%s' % (len(drift), _counted(kinds), ' by rule %s' % ', '.join(rules) if rules else '')


def host_line(record: t.Any) -> str:
    """One line about one host: its acceptance summary (rollout) or its ``tdisp_audit`` (audit)."""
    if not isinstance(record, Mapping) or not record.get('host'):
        raise common.RenderError('record: expected a per-host record (tdisp_acceptance_summary or tdisp_audit) with a host')
    return _audit_host(record) if 'findings' in record else _rollout_host(record)


def _wave_lines(view: Mapping[str, t.Any]) -> list[str]:
    out = []
    for wave in view['waves']:
        verdict = 'passed its gate' if wave['passed'] else 'FAILED its gate: %s' % _short('; '.join(wave['reasons']))
        out.append('  wave %s (%d host(s)): %s' % (wave['wave'], len(wave['hosts']), verdict))
    return out


def fleet_lines(report: t.Any, paths: t.Optional[Mapping[str, t.Any]] = None) -> list[str]:
    """The fleet summary of a rollout, audit or revocation report, a few lines."""
    view = common.view(report)
    counts = view['counts']
    lines = ['%s:' % view['title']]
    if view['kind'] == 'rollout':
        stopped = ' (the rollout stopped at a gate)' if counts['waves_failed'] and counts['hosts_not_reached'] else ''
        lines.append('  hosts: %(hosts_converged)d converged, %(hosts_failed)d failed, of %(hosts_reached)d reached; '
                     '%(hosts_not_reached)d not reached' % counts + stopped)
        lines.append('  devices: %(devices_tcb)d at tcb, %(devices_rejected)d rejected or refused, of %(devices_total)d' % counts)
        lines.extend(_wave_lines(view))
        lines.extend('  failed: %s' % _short(h['note']) for h in view['hosts'] if h['status'] == 'failed')
    elif view['kind'] == 'audit':
        lines.append('  hosts: %(hosts_audited)d audited, %(hosts_compliant)d compliant, %(hosts_with_drift)d with drift, '
                     '%(hosts_not_audited)d not audited' % counts)
        lines.append('  devices accepted into the TCB (RUN, trust tcb): %(devices_accepted)d of %(devices_total)d' % counts)
        lines.append('  devices per trust level: %s' % (_counted(view['fleet_levels']) or 'none'))
        lines.append('  findings by kind: %s' % (_counted(view['findings']) or 'none'))
        with_drift = [clean(h['host']) for h in view['hosts'] if h['status'] == 'drift']
        if with_drift:
            lines.append('  hosts with drift: %s' % _short(', '.join(with_drift)))
    else:
        lines.append('  hosts: %(hosts_reached)d reached, %(hosts_not_reached)d not reached; devices: %(devices_matched)d matched, '
                     '%(devices_unlocked)d unlocked, %(devices_lowered)d lowered' % counts)
    if view['not_reached']:
        lines.append('  not %s: %s' % ('audited' if view['kind'] == 'audit' else 'reached', _short(', '.join(view['not_reached']))))
    if paths:
        lines.append('  reports: %s' % ', '.join(clean(p) for p in paths.values()))
    return lines


def problem_hosts(report: t.Any) -> list[str]:
    """The hosts of the report with a problem: drift (audit), failed or rejected (rollout)."""
    return [clean(h['host']) for h in common.view(report)['hosts'] if h['status'] in common.HOST_FAILING]


def stats(report: t.Any, paths: t.Optional[Mapping[str, t.Any]] = None) -> dict[str, t.Any]:
    """The per-run aggregate for ``set_stats`` (AWX/AAP job artifacts): counts, trust levels, findings, waves, report paths."""
    view = common.view(report)
    out: dict[str, t.Any] = {'kind': view['kind'], 'title': clean(view['title']), 'counts': dict(view['counts']),
                             'trust_levels': dict(view['fleet_levels']), 'findings': dict(view['findings']),
                             'not_reached': list(view['not_reached']), 'reports': dict(paths or {})}
    if view['kind'] == 'rollout':
        out['waves'] = [{'wave': w['wave'], 'hosts': len(w['hosts']), 'passed': w['passed']} for w in view['waves']]
        out['passed'] = not view['counts']['waves_failed'] and not view['counts']['hosts_failed']
    elif view['kind'] == 'audit':
        out['passed'] = not view['counts']['hosts_with_drift'] and not view['counts']['hosts_not_audited']
    return out
