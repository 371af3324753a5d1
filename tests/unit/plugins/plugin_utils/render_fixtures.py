# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Fleet reports for the renderer tests, built by ``_reports.document`` from per-host records in the
shapes the roles leave, with hostile text (markup, quotes, backticks, pipes, newlines, every control
character) where a device or an inventory supplies it. Also used by tests/browser."""

from __future__ import annotations

import datetime
import typing as t

from ansible_collections.coco.tdisp.plugins.plugin_utils import _reports
from ansible_collections.coco.tdisp.plugins.plugin_utils._render import provenance

NOW = datetime.datetime(2026, 11, 27, 12, 0, 5, tzinfo=datetime.timezone.utc)
CONTROLS = ''.join(chr(c) for c in range(0x20)) + '\x7f'
HOSTILE = ('CN=<script>alert(1)</script></table></td>]]><![CDATA[x]]>"\'`rm -rf`|a|b|*bold*_u_ [l](javascript:x) '
           '<img src=x onerror=alert(1)> &amp; \n# heading\r\n- item ' + CONTROLS + ' \u2028\ud800 end')
EVIL_HOST = 'cvm-<b>2</b>|"x"'
POLICY = {'version': '2026.11.1', 'default': 'reject', 'rules': [{'id': 'h100-tcb', 'trust': 'tcb'}, {'id': HOSTILE, 'trust': 'normal'}]}
MANIFESTS = {'h100-96.00': {'vendor': '0x10de', 'measurements': []}, HOSTILE: {'vendor': HOSTILE}}


def _device(bdf: str, rule: str, trust: str, action: str, status: t.Optional[str], vendor: str = '0x10de', reasons: t.Any = ()) -> dict:
    return {'bdf': bdf, 'vendor': vendor, 'device': '0x2330', 'class': '0x030200', 'rule': rule, 'matched_by': 'fields',
            'trust': trust, 'tdisp_state': 'run' if trust == 'tcb' else 'unlocked', 'action': action,
            'action_reason': 'rule %s: %s' % (rule, action), 'before': {'tdisp_state': 'unlocked', 'trust_level': 'adversary'},
            'verdict': None if status is None else {'status': status, 'manifest': 'h100-96.00', 'generation': 2, 'reasons': list(reasons)},
            'exempt': False}


def _summary(host: str, devices: list, failure: t.Optional[str] = None, notes: t.Any = ()) -> dict:
    actions: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    for d in devices:
        actions[d['action']] = actions.get(d['action'], 0) + 1
        outcomes[d['trust']] = outcomes.get(d['trust'], 0) + 1
    rejected = [{'bdf': d['bdf'], 'reason': 'kept out', 'rule': d['rule']} for d in devices if d['action'] == 'rejected']
    bad = sum(1 for d in devices if (d['verdict'] or {}).get('status') == 'contraindicated')
    return {'host': host, 'policy_version': '2026.11.1', 'check_mode': False, 'failed': failure is not None, 'failure': failure,
            'changed': True, 'converged': failure is None and not bad, 'contraindicated': bad + len(rejected),
            'counts': {'actions': actions, 'outcomes': outcomes, 'verdicts': {}, 'pending': 0, 'refused': 0, 'rejected': len(rejected),
                       'changes': len(devices), 'contraindicated': bad},
            'module_calls': [], 'devices': devices, 'refused': [], 'rejected': rejected, 'preflight': [], 'expected': [],
            'gate_notes': list(notes)}


def with_provenance(report: dict, check_mode: bool = False) -> dict:
    """``report`` as the wired tdisp_report writes it (provenance added)."""
    return dict(report, provenance=provenance.build(POLICY, MANIFESTS, check_mode, NOW, controller='ctl-' + HOSTILE, user='ops'))


def rollout() -> dict:
    """Three hosts reached in two waves (the second failed its gate), two not reached."""
    found = [
        _summary('cvm-1', [_device('0000:18:00.0', 'h100-tcb', 'tcb', 'accept', 'affirming'),
                           _device('0000:00:03.0', 'virtio-shared', 'normal', 'set_trust', None, vendor='0x1af4')]),
        _summary(EVIL_HOST, [_device('0000:2a:00.0', HOSTILE, 'blocked', 'unlock', 'contraindicated', vendor=HOSTILE, reasons=[HOSTILE]),
                             _device('0000:18:00.0', 'h100-tcb', 'tcb', 'accept', 'affirming')], notes=[HOSTILE]),
        _summary('cvm-3', [_device('0000:5e:00.0', 'nvme-tcb', 'tcb_if_verified', 'lock_and_verify', None)],
                 failure='cvm-3: Lock: EBUSY'),
    ]
    report = _reports.document('rollout', ['cvm-1', EVIL_HOST, 'cvm-3', 'cvm-4', 'cvm-5'], found, False, NOW, policy_version='2026.11.1')
    report['waves'] = [{'wave': 1, 'hosts': ['cvm-1'], 'passed': True, 'reasons': []},
                       {'wave': 2, 'hosts': [EVIL_HOST, 'cvm-3'], 'passed': False, 'reasons': [HOSTILE, 'cvm-3: Lock: EBUSY']}]
    return with_provenance(report)


GPU = {'bdf': '0000:18:00.0', 'vendor': '0x10de', 'device': '0x2330', 'tdisp_state': 'run', 'trust_level': 'tcb'}
NIC = {'bdf': '0000:0c:00.0', 'vendor': HOSTILE, 'device': '0x1021', 'tdisp_state': 'unlocked', 'trust_level': 'adversary'}
OK_GPU = {'bdf': '0000:18:00.0', 'kind': 'compliant', 'status': 'compliant', 'rule': 'h100-tcb', 'policy_version': '2026.11.1',
          'evidence': {'verdict_status': 'affirming'}}
NIC_DRIFT = {'bdf': '0000:0c:00.0', 'kind': 'not_accepted', 'status': 'drift', 'rule': HOSTILE, 'policy_version': '2026.11.1',
             'reason': HOSTILE}
NIC_EXEMPT = dict(NIC_DRIFT, status='exempt', reason=None, exemption={'reason': 'RMA ' + HOSTILE, 'until': '2026-12-31'})


def _audit(host: str, findings: list, devices: list) -> dict:
    return {'host': host, 'policy_version': '2026.11.1', 'applied_policy_version': '2026.11.1', 'checked_at': '2026-11-27T12:00:00Z',
            'findings': findings, 'devices': devices, 'summary': {}}


def audit() -> dict:
    """Three hosts audited (one with drift, one with an exemption), one expected host not audited."""
    audits = [_audit('cvm-a', [OK_GPU], [GPU]), _audit(EVIL_HOST, [OK_GPU, NIC_DRIFT], [GPU, NIC]),
              _audit('cvm-c', [OK_GPU, NIC_EXEMPT], [GPU, NIC])]
    return with_provenance(_reports.document('audit', ['cvm-a', EVIL_HOST, 'cvm-c', 'cvm-gone'], audits, now=NOW))


def audit_detailed() -> dict:
    """:func:`audit` with the per-host ``by_trust_level`` and ``findings`` that render-wiring.patch adds to ``fleet_audit``."""
    report = audit()
    levels = {'cvm-a': {'tcb': 1}, EVIL_HOST: {'adversary': 1, 'tcb': 1}, 'cvm-c': {'adversary': 1, 'tcb': 1}}
    findings = {'cvm-a': [OK_GPU], EVIL_HOST: [OK_GPU, NIC_DRIFT], 'cvm-c': [OK_GPU, NIC_EXEMPT]}
    devices = {d['bdf']: d for d in (GPU, NIC)}
    for host in report['per_host']:
        host['by_trust_level'] = levels[host['host']]
        host['findings'] = [dict({k: f.get(k) for k in ('bdf', 'kind', 'status', 'rule', 'reason', 'exemption')},
                                 vendor=devices[f['bdf']]['vendor'], device=devices[f['bdf']]['device'],
                                 trust_level=devices[f['bdf']]['trust_level'], tdisp_state=devices[f['bdf']]['tdisp_state'],
                                 verdict=(f.get('evidence') or {}).get('verdict_status')) for f in findings[host['host']]]
    return report


def revoke(check_mode: bool = False) -> dict:
    """Two hosts whose matching devices were revoked, one not reached."""
    plan = {'match': "vendor == '%s'" % HOSTILE, 'level': 'blocked', 'devices': ['0000:0c:00.0', '0000:0d:00.0']}
    found = [_reports.revoke_host('cvm-a', plan, {'devices': [{'bdf': '0000:0c:00.0', 'changed': True}]},
                                  {'devices': [{'bdf': '0000:0c:00.0', 'changed': True}]}, check_mode),
             _reports.revoke_host(EVIL_HOST, dict(plan, devices=['0000:0c:00.0']), None, None, check_mode)]
    return with_provenance(_reports.document('revoke', ['cvm-a', EVIL_HOST, 'cvm-z'], found, check_mode, NOW, match=plan['match'],
                                             level='blocked'), check_mode)


REPORTS: dict[str, t.Callable[[], dict]] = {'rollout': rollout, 'audit': audit, 'audit_detailed': audit_detailed, 'revoke': revoke}


def expected_counts(report: dict) -> dict[str, int]:
    """The glance counts read straight from the JSON fields (not through the renderers' view)."""
    if report['kind'] == 'audit':
        h = report['hosts']
        return {'hosts_expected': h['expected'], 'hosts_audited': h['audited'], 'hosts_compliant': h['compliant'],
                'hosts_with_drift': h['with_drift'], 'hosts_not_audited': len(h['not_audited']),
                'devices_total': report['devices']['total'], 'devices_accepted': report['devices']['accepted'],
                'drift': report['findings']['drift']}
    if report['kind'] == 'rollout':
        devices = [d for s in report['hosts'] for d in s['devices']]
        return {'hosts_reached': len(report['hosts']), 'hosts_not_reached': len(report['not_reached']),
                'hosts_converged': sum(s['converged'] for s in report['hosts']), 'hosts_failed': sum(s['failed'] for s in report['hosts']),
                'devices_total': len(devices), 'devices_tcb': sum(d['trust'] == 'tcb' for d in devices),
                'devices_rejected': sum(d['action'] in ('rejected', 'refused', 'abandon') or (d['verdict'] or {}).get('status') ==
                                        'contraindicated' for d in devices),
                'waves_passed': sum(w['passed'] for w in report['waves']), 'waves_failed': sum(not w['passed'] for w in report['waves'])}
    return {'hosts_reached': len(report['hosts']), 'hosts_not_reached': len(report['not_reached']),
            'devices_matched': sum(len(h['devices']) for h in report['hosts']),
            'devices_unlocked': sum(len(h['unlocked']) for h in report['hosts']),
            'devices_lowered': sum(len(h['lowered']) for h in report['hosts'])}
