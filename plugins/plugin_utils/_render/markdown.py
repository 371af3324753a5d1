# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A fleet report as Markdown for a ticket: summary, findings by kind, waves, hosts, devices."""

from __future__ import annotations

import re
import typing as t
from collections.abc import Mapping, Sequence

from ansible_collections.coco.tdisp.plugins.plugin_utils._render.common import FAILING, clean, view

# What CommonMark/GFM gives a meaning to inside a line or a table cell, backslash-escaped; HTML's
# characters as entities (no cell starts a line, so line-start markers cannot apply).
_SPECIAL = re.compile(r'([\\`*_\[\]|~$])')
_ENTITIES = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}


def text(value: t.Any) -> str:
    """``value`` as inert Markdown on one line (also inside a table cell)."""
    escaped = _SPECIAL.sub(r'\\\1', clean(value))
    return ''.join(_ENTITIES.get(c, c) for c in escaped)


def table(head: Sequence[str], rows: Sequence[Sequence[t.Any]]) -> list[str]:
    """A GFM table; every cell is escaped, so each row keeps ``len(head)`` columns."""
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    lines.extend('| ' + ' | '.join(text(c) for c in row) + ' |' for row in rows)
    return lines


def _levels(levels: Mapping[str, int]) -> str:
    return ', '.join('%s %s' % (k, v) for k, v in sorted(levels.items())) or '-'


def render(report: Mapping[str, t.Any]) -> str:
    """The Markdown text of ``report``."""
    v = view(report)
    out = ['# %s' % text(v['title']), '']
    prov = v['provenance']
    if prov:
        out += ['Written %s by %s on %s with coco.tdisp %s%s.' % (
            text(prov.get('time')), text(prov.get('user')), text(prov.get('controller')), text(prov.get('collection_version')),
            ', check mode' if prov.get('check_mode') else ''), '']
        policy = prov.get('policy') if isinstance(prov.get('policy'), Mapping) else {}
        if policy:
            out += ['Policy %s, digest %s.' % (text(policy.get('version')), text(policy.get('digest'))), '']
    elif v.get('when'):
        out += ['Written %s.' % text(v['when']), '']
    out += ['## Summary', ''] + table(['count', 'value'], [(k.replace('_', ' '), n) for k, n in v['counts'].items()]) + ['']
    out += ['## %s' % v['findings_label'].capitalize(), '']
    out += table(['kind', 'count'], sorted(v['findings'].items())) if v['findings'] else ['None.']
    out.append('')
    if v['waves']:
        out += ['## Waves and their gates', '']
        out += table(['wave', 'hosts', 'gate', 'why'],
                     [(w['wave'], ', '.join(clean(h) for h in w['hosts']), 'passed' if w['passed'] else 'FAILED', '; '.join(w['reasons']))
                      for w in v['waves']]) + ['']
    out += ['## Hosts', '']
    out += table(['host', 'status', 'devices', 'problems', 'trust levels', 'note'],
                 [(h['host'], h['status'], h['devices'], h['problems'], _levels(h['levels']), h['note']) for h in v['hosts']])
    out.append('')
    if v['not_reached']:
        label = 'Not audited' if v['kind'] == 'audit' else 'Not reached'
        out += ['%s: %s.' % (label, ', '.join(text(h) for h in v['not_reached'])), '']
    flagged = [d for d in v['devices'] if d['status'] in FAILING]
    out += ['## Devices that need attention (%d)' % len(flagged), '']
    out += _devices(flagged) if flagged else ['None.']
    out += ['', '## Every device (%d)' % len(v['devices']), '']
    out += _devices(v['devices']) if v['devices'] else ['None.']
    return '\n'.join(out) + '\n'


def _devices(rows: Sequence[Mapping[str, t.Any]]) -> list[str]:
    return table(['host', 'bdf', 'vendor:device', 'rule', 'status', 'kind', 'trust', 'verdict', 'reason'],
                 [(d['host'], d['bdf'], '%s:%s' % (clean(d['vendor']), clean(d['device'])) if d['vendor'] or d['device'] else '',
                   d['rule'], d['status'], d['kind'], d['trust'], d['verdict'], d['reason']) for d in rows])
