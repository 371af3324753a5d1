# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Playbook variables in the text forms an AWX/AAP survey sends, and their one-line refusals."""

from __future__ import annotations

import pytest

from ansible_collections.coco.tdisp.plugins.plugin_utils import _survey

FORMATS = ['json', 'markdown', 'junit', 'html']


@pytest.mark.parametrize('value, kind, expected', [
    ('1,25%,100%', 'waves', [1, '25%', '100%']),
    (' 1 , 25% ', 'waves', [1, '25%']),
    ('[1, "25%", "100%"]', 'waves', [1, '25%', '100%']),
    ('[1, 25%, 100%]', 'waves', [1, '25%', '100%']),
    ([1, '10%', '30%', '100%'], 'waves', [1, '10%', '30%', '100%']),
    ('3', 'waves', [3]),
    (3, 'waves', [3]),
    ('25%', 'batch', '25%'),
    ('3', 'batch', 3),
    ('100%', 'batch', '100%'),
    ('yes', 'bool', True), ('True', 'bool', True), ('on', 'bool', True), ('1', 'bool', True),
    ('no', 'bool', False), ('false', 'bool', False), (False, 'bool', False), ('', 'bool', False),
    ('0', 'int', 0), (' 7 ', 'int', 7), (2, 'int', 2),
    ('json,html', 'list', ['json', 'html']), ('json,html', 'formats', ['json', 'html']),
    ('["json"]', 'list', ['json']), (['junit'], 'list', ['junit']), ('', 'list', []),
    ('/srv/tdisp', 'str', '/srv/tdisp'), (12, 'str', '12'),
])
def test_survey_forms_are_taken(value, kind, expected):
    assert _survey.parse(value, kind, 'v', FORMATS if kind == 'list' else None) == expected


@pytest.mark.parametrize('value, kind, message', [
    ('one,all', 'waves', "v: 'one,all' is not a list of batch sizes; use host counts and percentages"),
    ('0,100%', 'waves', 'is not a list of batch sizes'),
    ('1,150%', 'waves', 'is not a list of batch sizes'),
    ('1,0%', 'waves', 'is not a list of batch sizes'),
    ('', 'waves', 'v: is empty'),
    ([True], 'waves', 'is not a list of batch sizes'),
    ('[1,', 'waves', 'is not a list of batch sizes'),
    ('half', 'batch', "v: 'half' is not one batch size"),
    ('1,2', 'batch', 'is not one batch size'),
    ('maybe', 'bool', "v: 'maybe' is not a boolean"),
    ('two', 'int', "v: 'two' is not a whole number"),
    ('-1', 'int', 'is not a whole number'),
    (True, 'int', 'is not a whole number'),
    ('json,pdf', 'list', "v: 'pdf' not one of json, markdown, junit, html"),
    ('json,pdf', 'formats', "v: 'pdf' not one of json, markdown, junit, html"),
    ('[1]', 'list', 'is not a list of names'),
    (['a'], 'str', 'is not a text value'),
    ('x', 'nope', "kind: 'nope' is not one of"),
])
def test_other_forms_are_refused_in_one_line(value, kind, message):
    with pytest.raises(_survey.SurveyError) as err:
        _survey.parse(value, kind, 'v', FORMATS if kind == 'list' else None)
    assert message in str(err.value) and '\n' not in str(err.value)
