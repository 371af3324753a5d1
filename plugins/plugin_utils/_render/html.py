# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A fleet report as one self-contained HTML page: inline CSS and SVG, nothing fetched.

The page shows the fleet at a glance (the counts), trust levels per host, findings by kind, a
rollout's waves with their gates, and every device with the rule that decided it. Every number a
tool may check carries it in an attribute: ``data-count="<name>"`` with ``data-value`` on the
glance counters (the names of ``common.view``'s ``counts``), ``data-finding``/``data-value`` on
the findings rows, ``data-level``/``data-value`` on the per-host level cells, ``data-gate`` on the
waves. A Content-Security-Policy forbids every fetch. Every text is ``html.escape(clean(...))``.
"""

from __future__ import annotations

import html
import typing as t
from collections.abc import Mapping, Sequence

from ansible_collections.coco.tdisp.plugins.plugin_utils._render.common import FAILING, clean, view

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
LEVEL_COLOURS = {'tcb': '#1a7f37', 'tcb_if_verified': '#7cc68d', 'normal': '#2f6fdd', 'adversary': '#d4870b', 'blocked': '#c62828',
                 'none': '#9e9e9e'}
# Findings and actions drawn green (the rest: amber for exempt/disruptive, red).
GOOD_KINDS = ('compliant', 'none', 'accept', 'set_trust', 'lock_and_verify', 'relock_and_verify', 'revoked')
STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
header{background:#24292f;color:#fff;padding:16px 24px}header h1{margin:0 0 4px;font-size:22px}
header dl{display:flex;flex-wrap:wrap;gap:4px 18px;margin:6px 0 0;font-size:12px;color:#d0d7de}
header dt{font-weight:600}header dd{margin:0 0 0 4px}header div{display:flex}
main{padding:16px 24px}section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px 16px;margin:0 0 16px}
h2{font-size:16px;margin:0 0 10px}.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;min-width:110px}.card .n{display:block;font-size:24px;font-weight:700}
.card.bad .n{color:#c62828}.card .l{font-size:12px;color:#57606a}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #eaeef2;padding:4px 6px;text-align:left;
vertical-align:top;white-space:nowrap}th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.s{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;background:#eaeef2}
.s.ok,.s.passed{background:#dafbe1;color:#1a7f37}.s.drift,.s.rejected,.s.refused,.s.failed,.s.not_audited,.s.FAILED{background:#ffebe9;
color:#c62828}.s.exempt,.s.pending{background:#fff8c5;color:#7d4e00}
.reason{color:#57606a;white-space:normal;overflow-wrap:anywhere;min-width:160px;max-width:520px}.mono{font-family:ui-monospace,"DejaVu Sans Mono",monospace}
td.wrap{white-space:normal;overflow-wrap:anywhere;min-width:120px;max-width:380px}
.legend span{margin-right:12px;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.wave{border-left:4px solid #1a7f37;padding:4px 10px;margin:6px 0}.wave.failed{border-color:#c62828}
"""


def e(value: t.Any) -> str:
    """``value`` as inert HTML text or attribute content."""
    return html.escape(clean(value), quote=True)


def _status(status: t.Any) -> str:
    return '<span class="s %s">%s</span>' % (e(status), e(status))


def _bar(levels: Mapping[str, int], width: int = 220) -> str:
    total = sum(levels.values())
    if not total:
        return ''
    parts, x = [], 0.0
    for level, n in sorted(levels.items()):
        w = width * n / total
        parts.append('<rect x="%.1f" y="0" width="%.1f" height="14" fill="%s"><title>%s: %d</title></rect>'
                     % (x, w, LEVEL_COLOURS.get(clean(level), '#6e7781'), e(level), n))
        x += w
    return '<svg width="%d" height="14" role="img" aria-label="trust levels">%s</svg>' % (width, ''.join(parts))


def _table(head: Sequence[str], rows: Sequence[str], cls: str = '') -> str:
    return '<table class="%s"><thead><tr>%s</tr></thead><tbody>%s</tbody></table>' % (
        cls, ''.join('<th>%s</th>' % e(h) for h in head), ''.join(rows) or '<tr><td colspan="%d">None.</td></tr>' % len(head))


def _header(v: Mapping[str, t.Any]) -> str:
    prov = v['provenance']
    policy = prov.get('policy') if isinstance(prov.get('policy'), Mapping) else {}
    fields = [('written', prov.get('time') or v.get('when')), ('by', prov.get('user')), ('on', prov.get('controller')),
              ('coco.tdisp', prov.get('collection_version')), ('policy', policy.get('version')), ('digest', policy.get('digest')),
              ('check mode', 'yes' if prov.get('check_mode') else None)]
    items = ''.join('<div><dt>%s</dt><dd class="mono" data-provenance="%s">%s</dd></div>' % (e(k), e(k), e(val))
                    for k, val in fields if val not in (None, ''))
    return '<header><h1>%s</h1><dl>%s</dl></header>' % (e(v['title']), items)


def _glance(v: Mapping[str, t.Any]) -> str:
    bad = ('with_drift', 'failed', 'rejected', 'not_audited', 'not_reached', 'drift')
    cards = []
    for name, n in v['counts'].items():
        cls = 'card bad' if n and any(name.endswith(b) for b in bad) else 'card'
        cards.append('<div class="%s"><span class="n" data-count="%s" data-value="%d">%d</span><span class="l">%s</span></div>'
                     % (cls, e(name), n, n, e(name.replace('_', ' '))))
    return '<section id="glance"><h2>The fleet at a glance</h2><div class="cards">%s</div></section>' % ''.join(cards)


def _number(attribute: str, key: str, n: int) -> str:
    return '<td class="num" %s="%s" data-value="%d">%d</td>' % (attribute, e(key), n, n)


def _levels(v: Mapping[str, t.Any]) -> str:
    levels = sorted({clean(k) for h in v['hosts'] for k in h['levels']} | set(v['fleet_levels']))
    legend = ''.join('<span><i style="background:%s"></i>%s</span>' % (LEVEL_COLOURS.get(k, '#6e7781'), e(k)) for k in levels)
    rows = []
    for h in v['hosts']:
        cells = ''.join(_number('data-level', k, h['levels'].get(k, 0)) for k in levels)
        rows.append('<tr data-host="%s"><td class="mono wrap">%s</td><td>%s</td><td class="num">%d</td>%s<td>%s</td></tr>'
                    % (e(h['host']), e(h['host']), _status(h['status']), h['devices'], cells, _bar(h['levels'])))
    fleet = ''.join(_number('data-fleet-level', k, v['fleet_levels'].get(k, 0)) for k in levels)
    rows.append('<tr><th>fleet</th><th></th><th class="num">%d</th>%s<td>%s</td></tr>'
                % (sum(h['devices'] for h in v['hosts']), fleet, _bar(v['fleet_levels'])))
    note = '' if any(h['levels'] for h in v['hosts']) else \
        '<p class="reason">Per-host levels are not in this report; the fleet row counts every device.</p>'
    return '<section id="levels"><h2>Trust levels per host</h2><p class="legend">%s</p>%s%s</section>' % (
        legend, _table(['host', 'status', 'devices'] + levels + ['levels'], rows), note)


def _findings(v: Mapping[str, t.Any]) -> str:
    items = sorted(v['findings'].items(), key=lambda kv: (-kv[1], kv[0]))
    top = max([n for _k, n in items] or [1]) or 1
    rows = []
    for kind, n in items:
        colour = '#1a7f37' if kind in GOOD_KINDS else '#d4870b' if kind in ('exempt', 'unlock', 'matched') else '#c62828'
        rows.append('<tr data-finding="%s" data-value="%d"><td class="mono">%s</td><td class="num">%d</td>'
                    '<td><svg width="260" height="12"><rect width="%.1f" height="12" fill="%s"></rect></svg></td></tr>'
                    % (e(kind), n, e(kind), n, 260.0 * n / top, colour))
    return '<section id="findings"><h2>%s</h2>%s</section>' % (e(v['findings_label'].capitalize()), _table(['kind', 'count', ''], rows))


def _waves(v: Mapping[str, t.Any]) -> str:
    if not v['waves'] and v['kind'] != 'rollout':
        return ''
    items = []
    for w in v['waves']:
        state = 'passed' if w['passed'] else 'failed'
        items.append('<div class="wave %s" data-gate="%s" data-wave="%s"><b>wave %s</b> %s <span class="num">%d host(s)</span>: '
                     '<span class="mono">%s</span>%s</div>' % (
                         state, state, e(w['wave']), e(w['wave']), _status(state if w['passed'] else 'FAILED'), len(w['hosts']),
                         e(', '.join(clean(h) for h in w['hosts'])),
                         ''.join('<div class="reason">%s</div>' % e(r) for r in w['reasons'])))
    if not items:
        items.append('<p class="reason">This report records no waves (written before wave gates were recorded).</p>')
    return '<section id="waves"><h2>Waves and their gates</h2>%s</section>' % ''.join(items)


def _devices(v: Mapping[str, t.Any]) -> str:
    order = sorted(v['devices'], key=lambda d: (d['status'] not in FAILING, d['status'] == 'ok', clean(d['host']), clean(d['bdf'])))
    rows = []
    for d in order:
        ident = '%s:%s' % (clean(d['vendor']), clean(d['device'])) if d['vendor'] or d['device'] else ''
        rows.append('<tr data-device="%s" data-status="%s"><td class="mono wrap">%s</td><td class="mono">%s</td><td class="mono wrap">%s</td>'
                    '<td class="mono wrap" data-rule="%s">%s</td><td>%s</td><td class="wrap">%s</td><td>%s</td><td>%s</td><td class="reason">%s</td></tr>'
                    % (e('%s %s' % (clean(d['host']), clean(d['bdf']))), e(d['status']), e(d['host']), e(d['bdf']), e(ident),
                       e(d['rule']), e(d['rule']), _status(d['status']), e(d['kind']), e(d['trust']), e(d['verdict']), e(d['reason'])))
    flagged = sum(1 for d in v['devices'] if d['status'] in FAILING)
    return ('<section id="devices"><h2>Devices and the rule that decided each (<span data-count="devices_listed" data-value="%d">%d</span>'
            ' listed, <span data-count="devices_flagged" data-value="%d">%d</span> need attention)</h2>%s</section>'
            % (len(v['devices']), len(v['devices']), flagged, flagged,
               _table(['host', 'bdf', 'vendor:device', 'rule', 'status', 'kind', 'trust', 'verdict', 'reason'], rows)))


def _not_reached(v: Mapping[str, t.Any]) -> str:
    if not v['not_reached']:
        return ''
    label = 'Hosts not audited' if v['kind'] == 'audit' else 'Hosts not reached'
    return '<section id="not-reached"><h2>%s</h2><p class="mono">%s</p></section>' % (
        e(label), e(', '.join(clean(h) for h in v['not_reached'])))


def render(report: Mapping[str, t.Any]) -> str:
    """The HTML page of ``report``."""
    v = view(report)
    body = ''.join([_header(v), '<main>', _glance(v), _waves(v), _findings(v), _levels(v), _not_reached(v), _devices(v), '</main>'])
    return ('<!DOCTYPE html>\n<html lang="en" data-kind="%s"><head><meta charset="utf-8">'
            '<meta http-equiv="Content-Security-Policy" content="%s">'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><title>%s</title><style>%s</style></head>'
            '<body>%s</body></html>\n' % (e(v['kind']), e(CSP), e('coco.tdisp: ' + v['title']), STYLE, body))
