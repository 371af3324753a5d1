# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The report formats people read and tools consume, from one report model (private; may change at any time).

Every renderer takes a fleet report exactly as ``plugin_utils/_reports.py`` builds it (``kind``
``rollout``, ``audit`` or ``revoke``), reads it through one view (``common.view``: counts, hosts,
devices, findings by kind, waves) and escapes everything the report carries, since devices supply
most of it. Modules: ``common`` (escaping, the view), ``markdown`` (a ticket), ``junit`` (JUnit
XML, one test case per host and device), ``html`` (a self-contained page), ``schema`` (the JSON
Schema of the JSON report), ``provenance`` (who wrote a report, from what).

``render(report, fmt)`` returns the text of one format; ``FORMATS`` names them with their file
suffixes.
"""

from __future__ import annotations

import json
import typing as t
from collections.abc import Mapping

from ansible_collections.coco.tdisp.plugins.plugin_utils._render import common, html, junit, markdown

# format -> file suffix
FORMATS = {'json': '.json', 'markdown': '.md', 'junit': '.junit.xml', 'html': '.html'}


def render(report: Mapping[str, t.Any], fmt: str) -> str:
    """The text of ``report`` in format ``fmt`` (one of ``FORMATS``)."""
    if fmt == 'json':
        return json.dumps(report, indent=1, sort_keys=False, default=str) + '\n'
    renderers: dict[str, t.Callable[[Mapping[str, t.Any]], str]] = {
        'markdown': markdown.render, 'junit': junit.render, 'html': html.render}
    if fmt not in renderers:
        raise common.RenderError('formats: %r is not one of %s' % (fmt, ', '.join(FORMATS)))
    return renderers[fmt](report)


def file_name(json_name: str, fmt: str) -> str:
    """The file name of format ``fmt`` beside the JSON report ``json_name`` (``rollout-1.2.json`` -> ``rollout-1.2.md``)."""
    base = json_name[:-len('.json')] if json_name.endswith('.json') else json_name
    return base + FORMATS[fmt]
