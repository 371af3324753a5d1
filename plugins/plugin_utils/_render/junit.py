# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A fleet report as JUnit XML: one test suite per host, one test case for the host and one per device.

Drift (audit), a rejected or refused device, a failed host (rollout) and a host that was never
audited are failures; a rollout's gates are the test cases of the suite ``<kind>.gates``; hosts a
rollout did not reach (waves after a halt) are skipped, with the reason. Every text passes
through ``common.clean`` before ElementTree escapes it, so the XML is well formed whatever the
devices say.
"""

from __future__ import annotations

import typing as t
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

from ansible_collections.coco.tdisp.plugins.plugin_utils._render.common import FAILING, clean, view


def _case(suite: ET.Element, classname: str, name: str, failure: t.Optional[str] = None, skipped: t.Optional[str] = None,
          output: str = '') -> None:
    case = ET.SubElement(suite, 'testcase', classname=clean(classname), name=clean(name), time='0')
    if failure is not None:
        ET.SubElement(case, 'failure', message=clean(failure)[:500], type='failure').text = clean(failure)
    elif skipped is not None:
        ET.SubElement(case, 'skipped', message=clean(skipped))
    if output:
        ET.SubElement(case, 'system-out').text = clean(output)


def _suite(root: ET.Element, name: str, timestamp: t.Any) -> ET.Element:
    attrs = {'name': clean(name)}
    if timestamp:
        attrs['timestamp'] = clean(timestamp).rstrip('Z')
    return ET.SubElement(root, 'testsuite', attrs)


def _totals(element: ET.Element, cases: Sequence[ET.Element]) -> None:
    element.set('tests', str(len(cases)))
    element.set('failures', str(sum(1 for c in cases if c.find('failure') is not None)))
    element.set('errors', '0')
    element.set('skipped', str(sum(1 for c in cases if c.find('skipped') is not None)))
    element.set('time', '0')


def _device_case(suite: ET.Element, classname: str, device: Mapping[str, t.Any]) -> None:
    detail = 'rule %s, trust %s, tdisp %s, verdict %s: %s' % (
        clean(device['rule']), clean(device['trust']), clean(device['tdisp_state']), clean(device['verdict']), clean(device['reason']))
    failure = '%s (%s): %s' % (clean(device['status']), clean(device['kind']), detail) if device['status'] in FAILING else None
    _case(suite, classname, 'device %s' % clean(device['bdf']), failure=failure, output=detail)


def render(report: Mapping[str, t.Any]) -> str:
    """The JUnit XML text of ``report``."""
    v = view(report)
    kind = v['kind']
    root = ET.Element('testsuites', name=clean('coco.tdisp %s: %s' % (kind, v['title'])))
    by_host: dict[str, list[Mapping[str, t.Any]]] = {}
    for device in v['devices']:
        by_host.setdefault(clean(device['host']), []).append(device)
    for host in v['hosts']:
        name = clean(host['host'])
        suite = _suite(root, '%s.%s' % (kind, name), v.get('when'))
        classname = 'coco.tdisp.%s.%s' % (kind, name)
        failure = '%s: %s' % (host['status'], host['note'] or '%d device(s) with problems' % host['problems']) \
            if host['status'] in FAILING else None
        _case(suite, classname, 'host %s' % name, failure=failure, output=host['note'])
        for device in by_host.get(name, []):
            _device_case(suite, classname, device)
    if v['not_reached']:
        suite = _suite(root, '%s.not_reached' % kind, v.get('when'))
        for name in v['not_reached']:
            why = 'not audited: the host was expected and has no audit' if kind == 'audit' else 'not reached'
            if kind == 'rollout':
                _case(suite, 'coco.tdisp.rollout.not_reached', 'host %s' % name,
                      skipped='not reached: a wave after a halt, or unreachable')
            else:
                _case(suite, 'coco.tdisp.%s.not_reached' % kind, 'host %s' % name, failure=why)
    if v['waves']:
        suite = _suite(root, '%s.gates' % kind, v.get('when'))
        for wave in v['waves']:
            _case(suite, 'coco.tdisp.%s.gates' % kind, 'wave %s gate' % clean(wave['wave']),
                  failure=None if wave['passed'] else '; '.join(wave['reasons']) or 'the wave did not pass its gate',
                  output='hosts: %s' % ', '.join(clean(h) for h in wave['hosts']))
    every: list[ET.Element] = []
    for suite in root.findall('testsuite'):
        cases = suite.findall('testcase')
        _totals(suite, cases)
        every.extend(cases)
    _totals(root, every)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding='unicode') + '\n'
