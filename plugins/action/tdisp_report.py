# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of coco.tdisp.tdisp_report: build a fleet report, write it, gate a rollout wave.

Runs on the controller (no module runs). Every report shape is ``plugin_utils/_reports.py``;
the per-host records are read from ``hostvars`` there (facts first, then variables), so that the
playbooks work with ``INJECT_FACTS_AS_VARS=False``. Writing is ``plugin_utils/_files.py``; the JSON
report carries ``provenance`` (``plugin_utils/_render/provenance.py``) and is also rendered in the
``formats`` asked for (``plugin_utils/_render``: Markdown, JUnit XML, HTML) beside the JSON file.
"""

from __future__ import annotations

import datetime
import json
import os
import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.action import ActionBase
from ansible.plugins.filter.core import to_nice_json

from ansible_collections.coco.tdisp.plugins.plugin_utils import _files, _render, _reports
from ansible_collections.coco.tdisp.plugins.plugin_utils._render import provenance, summary
from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import TdispError, ansible_message

ARGUMENT_SPEC: dict[str, t.Any] = {
    'kind': {'type': 'str', 'required': True, 'choices': list(_reports.KINDS) + ['draft']},
    'dir': {'type': 'path'},
    'path': {'type': 'path'},
    'hosts': {'type': 'list', 'elements': 'str'},
    'fact': {'type': 'str'},
    'policy_version': {'type': 'str'},
    'match': {'type': 'str'},
    'level': {'type': 'raw'},
    'gate': {'type': 'bool', 'default': False},
    'gate_max_contraindicated': {'type': 'int', 'default': 0},
    'gate_require_expected': {'type': 'bool', 'default': True},
    'gate_fail': {'type': 'bool', 'default': True},
    'name': {'type': 'str'},
    'manifest': {'type': 'dict'},
    'prepare': {'type': 'bool', 'default': False},
    'mode': {'type': 'str', 'default': '0644'},
    'formats': {'type': 'list', 'elements': 'str', 'default': ['json'], 'choices': list(_render.FORMATS)},
    'policy': {'type': 'raw'},
    'manifests': {'type': 'raw'},
}


def run_id() -> str:
    """This ansible-playbook run: the controller process (the workers' parent) and its start time."""
    parent = os.getppid()
    try:
        with open('/proc/%d/stat' % parent, encoding='ascii') as handle:
            return '%d-%s' % (parent, handle.read().rsplit(')', 1)[1].split()[19])
    except (OSError, IndexError):
        return str(parent)


def earlier_waves(path: str, run: str) -> list[dict[str, t.Any]]:
    """The waves of this run in the report at ``path`` (rewritten after every wave); none from other runs."""
    try:
        with open(path, encoding='utf-8') as handle:
            previous = json.load(handle)
    except (OSError, ValueError):
        return []
    waves = previous.get('waves') if isinstance(previous, dict) else None
    return [w for w in waves if isinstance(w, dict) and w.get('run') == run] if isinstance(waves, list) else []


class ActionModule(ActionBase):
    """Build, write and (for a rollout wave) gate a report on the controller (see the module documentation)."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: t.Any = None, task_vars: t.Optional[dict[str, t.Any]] = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            result.update(self._report(args, task_vars))
        except TdispError as err:
            raise AnsibleActionFail(ansible_message('tdisp_report', err)) from None
        return result

    def _report(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        kind = args['kind']
        mode = _files.parse_mode(args['mode'])
        now = datetime.datetime.now(datetime.timezone.utc)
        check_mode = bool(self._task.check_mode)
        if kind == 'draft':
            return self._draft(args, mode)
        hosts = args['hosts'] if args['hosts'] is not None else list(task_vars.get('ansible_play_hosts_all') or [])
        found = _reports.records(task_vars.get('hostvars') or {}, hosts, args['fact'] or _reports.RECORD_FACTS[kind])
        report = _reports.document(kind, hosts, found, check_mode, now, policy_version=args['policy_version'],
                                   match=args['match'], level=args['level'])
        if kind == 'audit' and report['hosts']['audited'] == 0:
            raise _reports.ReportError('no host was audited (not audited: %s); check the inventory and tdisp_audit_hosts'
                                       % ', '.join(report['hosts']['not_audited']))
        policy, manifests = self._inputs(args, task_vars, found)
        report['provenance'] = provenance.build(policy, manifests, check_mode, now)
        reasons: list[str] = []
        name = _reports.file_name(kind, check_mode, now, args['policy_version'])
        path = os.path.join(_files.report_dir(args['dir']), name)
        if kind == 'rollout' and args['gate']:
            batch = list(task_vars.get('ansible_play_batch') or [])
            playing = set(task_vars.get('ansible_play_hosts') or [])
            lost = sorted(h for h in hosts if h not in playing)
            wave = _reports.records(task_vars.get('hostvars') or {}, batch, args['fact'] or _reports.RECORD_FACTS[kind])
            reasons = _reports.gate(wave, lost, args['gate_max_contraindicated'], args['gate_require_expected'])
            run = run_id()
            earlier = earlier_waves(path, run)
            report['waves'] = earlier + [{'wave': len(earlier) + 1, 'hosts': batch, 'passed': not reasons, 'reasons': reasons, 'run': run}]
        written = _files.write(path, to_bytes(to_nice_json(report, indent=1)), mode)
        paths = {'json': written['path']}
        for fmt in args['formats']:
            if fmt != 'json':
                paths[fmt] = _files.write(os.path.join(os.path.dirname(path), _render.file_name(name, fmt)),
                                          to_bytes(_render.render(report, fmt)), mode)['path']
        out: dict[str, t.Any] = {'changed': False, 'path': written['path'], 'paths': paths, 'report': report,
                                 'msg': self._summary(kind, report, path), 'summary': summary.fleet_lines(report, paths),
                                 'stats': summary.stats(report, paths),
                                 'host_lines': {r['host']: summary.host_line(r) for r in found if r.get('host')},
                                 'problem_hosts': summary.problem_hosts(report)}
        if kind == 'rollout' and args['gate']:
            out['gate_passed'] = not reasons
            # The last wave, or the rollout stops here: the play ends with the fleet summary.
            out['final'] = bool(reasons) or not report['not_reached']
            if reasons:
                out['msg'] = 'the wave of %d host(s) failed its gate; the rollout stops here: %s' % (len(batch), '; '.join(reasons))
                if args['gate_fail']:
                    del out['report']  # the failure shows one line, not the whole report (it is in the file)
                    out['failed'] = True
            else:
                out['msg'] = 'the wave of %d host(s) passed its gate; %s' % (len(batch), out['msg'])
        return out

    @staticmethod
    def _inputs(args: dict[str, t.Any], task_vars: dict[str, t.Any], found: list[dict[str, t.Any]]) -> tuple[t.Any, t.Any]:
        """The policy and manifests the provenance digests: the arguments, else the first reported host's (templated) variables."""
        source: t.Any = {}
        if found:
            try:
                source = (task_vars.get('hostvars') or {})[found[0]['host']]
            except (KeyError, TypeError):
                source = {}
        policy = args['policy'] if args['policy'] is not None else source.get('tdisp_policy')
        manifests = args['manifests'] if args['manifests'] is not None else source.get('reference_manifests')
        return policy, manifests

    @staticmethod
    def _summary(kind: str, report: dict[str, t.Any], path: str) -> str:
        if kind == 'audit':
            return ('%d/%d hosts compliant, %d devices accepted, findings by kind %s; not audited %s; report %s'
                    % (report['hosts']['compliant'], report['hosts']['audited'], report['devices']['accepted'],
                       report['findings']['by_kind'], report['hosts']['not_audited'], path))
        view = _render.common.view(report)
        if kind == 'rollout':
            return ('%(hosts_converged)d/%(hosts_reached)d host(s) converged, %(devices_tcb)d device(s) at tcb, '
                    '%(devices_rejected)d rejected or refused, %(hosts_not_reached)d host(s) not reached yet; report ' % view['counts']) + path
        return '%d host(s) reported, not reached %s; report %s' % (len(report['hosts']), report['not_reached'], path)

    def _draft(self, args: dict[str, t.Any], mode: int) -> dict[str, t.Any]:
        if not args['name']:
            raise _reports.ReportError('name: the manifest name is required for a draft')
        path = args['path'] or os.path.join(_files.report_dir(args['dir']), 'drafts', '%s.yml' % args['name'])
        path = os.path.abspath(path)
        if args['prepare']:
            return {'changed': False, 'path': _files.prepare(path, bool(self._task.check_mode)), 'msg': 'the draft will be written to %s' % path}
        if args['manifest'] is None:
            raise _reports.ReportError('manifest: the drafted manifest is required (or prepare: true)')
        content = _files.safe_yaml({'reference_manifests': {args['name']: args['manifest']}})
        written = _files.write(path, to_bytes(content), mode, bool(self._task.check_mode), bool(self._task.diff))
        return dict(written, msg='draft %s written to %s for review' % (args['name'], written['path']))
