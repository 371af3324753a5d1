# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Everything a device supplies is hostile: markup, quotes, backticks, pipes, newlines and control
characters leave the HTML, Markdown and JUnit reports intact."""

from __future__ import annotations

import html.parser
import re
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.coco.tdisp.plugins.plugin_utils import _render
from ansible_collections.coco.tdisp.plugins.plugin_utils._render import common, markdown
from ansible_collections.coco.tdisp.tests.unit.plugins.plugin_utils import render_fixtures as fx

KINDS = sorted(fx.REPORTS)
# Every element the HTML renderer writes; anything else was injected.
HTML_ELEMENTS = {'html', 'head', 'meta', 'title', 'style', 'body', 'header', 'h1', 'h2', 'dl', 'dt', 'dd', 'div', 'main', 'section',
                 'span', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'svg', 'rect', 'b', 'p', 'i'}
CONTROL = re.compile('[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\ud800-\udfff]')


class Collect(html.parser.HTMLParser):
    """Every start and end tag, attribute and text of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.ends: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((k, v or '') for k, v in attrs)

    def handle_endtag(self, tag):
        self.ends.append(tag)

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.parametrize('value, expected', [
    (None, ''), (3, '3'), ('plain', 'plain'), ('a\nb', 'a\\x0ab'), ('\x00\x1f\x7f\x9b', '\\x00\\x1f\\x7f\\x9b'),
    ('\u202eevil', '\\u202eevil'), ('\ud800', '\\ud800'), ('ok é ✓', 'ok é ✓'),
])
def test_clean_makes_one_printable_line(value, expected):
    assert common.clean(value) == expected


@pytest.mark.parametrize('kind', KINDS)
def test_html_has_no_injected_element_and_keeps_the_hostile_text_as_text(kind):
    page = _render.render(fx.REPORTS[kind](), 'html')
    parser = Collect()
    parser.feed(page)
    parser.close()
    assert set(parser.tags) <= HTML_ELEMENTS, set(parser.tags) - HTML_ELEMENTS
    assert 'script' not in parser.tags and 'img' not in parser.tags and 'a' not in parser.tags
    assert not [k for k, _v in parser.attrs if k.startswith('on') or k in ('src', 'href')]
    assert sorted(parser.tags).count('table') == sorted(parser.ends).count('table')  # no table closed early
    text = ''.join(parser.text)
    assert '<script>alert(1)</script></table>' in text  # shown, not run
    assert not CONTROL.search(page)


@pytest.mark.parametrize('kind', KINDS)
def test_junit_parses_and_carries_no_control_character(kind):
    xml = _render.render(fx.REPORTS[kind](), 'junit')
    assert not CONTROL.search(xml)
    root = ET.fromstring(xml.encode('utf-8'))
    assert root.tag == 'testsuites'
    texts = [e.text or '' for e in root.iter()] + [v for e in root.iter() for v in e.attrib.values()]
    assert any('<script>alert(1)</script>' in s and ']]>' in s for s in texts)


def _cells(row: str) -> list[str]:
    return re.split(r'(?<!\\)\|', row.strip())[1:-1]


@pytest.mark.parametrize('kind', KINDS)
def test_markdown_tables_keep_their_columns_and_no_markup_survives(kind):
    text = _render.render(fx.REPORTS[kind](), 'markdown')
    assert not CONTROL.search(text)
    lines = text.split('\n')
    table = None
    for line in lines:
        if line.startswith('|'):
            if table is None:
                table = len(_cells(line))
            assert len(_cells(line)) == table, line
        else:
            table = None
    assert '<' not in text and '>' not in text
    assert not [line for line in lines if re.match(r'#+ ', line) and not line.startswith(('# ', '## '))]
    assert not re.search(r'(?<!\\)`', text)
    assert [line for line in lines if line.startswith('#')] == [line for line in lines if re.match(r'#{1,2} [A-Z]', line)]


def test_markdown_text_escapes_every_special_character():
    assert markdown.text('a|b`c*d_e[f]g<h>&i\\') == 'a\\|b\\`c\\*d\\_e\\[f\\]g&lt;h&gt;&amp;i\\\\'
