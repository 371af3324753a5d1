# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The HTML report in a real headless browser (Debian's Chromium), offline: the DOM it renders shows
the counts the JSON report has, nothing hostile became an element, and a screenshot of each page is
kept in tests/output/browser/ for a person to look at. Chromium is installed by ensure-chromium.sh;
when it cannot be, the tests fail with its one-line error (never skipped)."""

from __future__ import annotations

import html.parser
import json
import os
import subprocess
import tempfile

import pytest

from ansible_collections.coco.tdisp.plugins.plugin_utils import _render
from ansible_collections.coco.tdisp.tests.unit.plugins.plugin_utils import render_fixtures as fx

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(os.path.dirname(HERE), 'output', 'browser')
# Any fetch would fail: no name resolves, every connection goes to a closed port.
OFFLINE = ['--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost', '--proxy-server=127.0.0.1:9', '--no-proxy-server=false',
           '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
           '--disable-default-apps', '--disable-extensions', '--metrics-recording-only']


@pytest.fixture(scope='session')
def chromium() -> str:
    done = subprocess.run([os.path.join(HERE, 'ensure-chromium.sh')], capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        pytest.fail((done.stderr.strip().splitlines() or ['ensure-chromium.sh failed'])[-1], pytrace=False)
    return done.stdout.strip().splitlines()[-1]


def _run(browser: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix='tdisp-chromium-') as profile:
        cmd = [browser, '--headless', '--disable-gpu', '--no-sandbox', '--disable-dev-shm-usage', '--user-data-dir=' + profile,
               *OFFLINE, *args]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=180)
    if done.returncode != 0:
        pytest.fail('chromium exited %d: %s' % (done.returncode, (done.stderr.strip().splitlines() or [''])[-1]), pytrace=False)
    return done


class Dom(html.parser.HTMLParser):
    """The counts, tags and text of the DOM Chromium rendered."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.counts: dict[str, tuple[int, str]] = {}
        self.findings: dict[str, int] = {}
        self.gates: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self._open.append(a.get('data-count') or '')
        if 'data-finding' in a:
            self.findings[a['data-finding']] = int(a['data-value'])
        if 'data-gate' in a:
            self.gates.append(a['data-gate'])

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        self.text.append(data)
        if self._open and self._open[-1]:
            self.counts[self._open[-1]] = (int(data), self._open[-1])


def _page(kind: str) -> tuple[dict, str]:
    os.makedirs(OUTPUT, exist_ok=True)
    report = json.loads(_render.render(fx.REPORTS[kind](), 'json'))  # what a tool reads: the JSON file
    path = os.path.join(OUTPUT, '%s.html' % kind)
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write(_render.render(report, 'html'))
    return report, path


@pytest.mark.parametrize('kind', ['rollout', 'audit_detailed', 'revoke'])
def test_the_rendered_dom_shows_the_counts_of_the_json(chromium, kind):
    report, path = _page(kind)
    dom = Dom()
    dom.feed(_run(chromium, '--dump-dom', 'file://' + path).stdout)
    assert 'main' in dom.tags and 'section' in dom.tags, 'the page did not render'
    assert {name: n for name, (n, _k) in dom.counts.items() if name in fx.expected_counts(report)} == fx.expected_counts(report)
    if kind == 'audit_detailed':
        assert dom.findings == report['findings']['by_kind']
    if kind == 'rollout':
        assert dom.gates == ['passed' if w['passed'] else 'failed' for w in report['waves']]
    assert 'script' not in dom.tags and 'img' not in dom.tags
    assert any('<script>alert(1)</script>' in t for t in dom.text)


@pytest.mark.parametrize('kind', ['rollout', 'audit_detailed'])
def test_a_screenshot_is_kept(chromium, kind):
    _report, path = _page(kind)
    shot = os.path.join(OUTPUT, '%s.png' % kind)
    if os.path.exists(shot):
        os.unlink(shot)
    _run(chromium, '--hide-scrollbars', '--window-size=1280,1600', '--screenshot=' + shot, 'file://' + path)
    with open(shot, 'rb') as handle:
        head = handle.read(8)
    assert head == b'\x89PNG\r\n\x1a\n' and os.path.getsize(shot) > 20000, shot
