# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The glob engine behind plain match fields and the shadowing analysis."""

from __future__ import annotations

import fnmatch
import itertools

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.coco.tdisp.plugins.plugin_utils._policy import glob as globs


@pytest.mark.parametrize('pattern, value, expected', [
    ('0x10de', '0x10de', True),
    ('0x10de', '0x10df', False),
    ('0x0302*', '0x030200', True),
    ('0x0302*', '0x030300', False),
    ('0000:4?:00.*', '0000:41:00.0', True),
    ('0000:4?:00.*', '0000:41:01.0', False),
    ('0x[0-9]*', '0x1', True),
    ('0x[!0-9]*', '0x1', False),
    ('0x[!0-9]*', '0xa', True),
    ('[]]', ']', True),
    ('[!]]', ']', False),
    ('[a-]', '-', True),
    ('[*]', '*', True),
    ('[*]', 'x', False),
    ('a**b', 'ab', True),
    ('*', '', True),
    ('?', '', False),
])
def test_matches(pattern: str, value: str, expected: bool) -> None:
    assert globs.parse(pattern).matches(value) is expected


@pytest.mark.parametrize('pattern, message', [
    ('0x01[', r"unclosed '\['"),
    ('[z-a]', 'runs backwards'),
])
def test_parse_errors(pattern: str, message: str) -> None:
    with pytest.raises(globs.GlobError, match=message):
        globs.parse(pattern)


def test_literal_is_not_a_pattern() -> None:
    lit = globs.literal('0x03*')
    assert lit.matches('0x03*')
    assert not lit.matches('0x0300')
    assert lit.is_literal
    assert not globs.parse('0x03*').is_literal


@pytest.mark.parametrize('wide, narrow, expected', [
    (['*'], '0x10de', True),
    (['0x10de'], '0x10de', True),
    (['0x10de'], '0x10df', False),
    (['0x03*'], '0x0302*', True),      # an earlier broader glob covers a later narrower one
    (['0x0302*'], '0x03*', False),     # ... not the other way round
    (['0x0[23]*'], '0x02*', True),
    (['0x0[23]*'], '0x0[234]*', False),
    (['0x02*', '0x03*'], '0x0[23]*', True),  # the union of several globs
    (['?*'], '*', False),              # '*' also matches the empty string
    (['*?'], '?*', True),
    (['0000:4?:00.*'], '0000:41:00.0', True),
    (['0000:4?:00.*'], '0000:4*:00.0', False),
    (['[!a]*'], 'b*', True),
    (['[!a]*'], '[ab]*', False),
])
def test_covers(wide: list[str], narrow: str, expected: bool) -> None:
    assert globs.covers([globs.parse(w) for w in wide], globs.parse(narrow)) is expected


@pytest.mark.parametrize('left, right, expected', [
    (['0x10de'], ['0x10de'], True),
    (['0x10de'], ['0x1af4'], False),
    (['0x03*'], ['0x0302*'], True),
    (['0x03*'], ['0x02*'], False),
    (['*a'], ['b*'], True),
    (['a?'], ['?b', 'c*'], True),
    (['a?'], ['??b'], False),
])
def test_overlaps(left: list[str], right: list[str], expected: bool) -> None:
    assert globs.overlaps([globs.parse(x) for x in left], [globs.parse(x) for x in right]) is expected


# Properties against brute force, over a small alphabet where brute force is exhaustive enough.
_TOKENS = st.sampled_from(['a', 'b', '*', '?', '[ab]', '[!a]', '[b-c]'])
_PATTERNS = st.lists(_TOKENS, max_size=4).map(''.join)
_STRINGS = [''.join(p) for n in range(6) for p in itertools.product('abcd', repeat=n)]


@settings(max_examples=300, deadline=None)
@given(_PATTERNS)
def test_matching_agrees_with_fnmatch(pattern: str) -> None:
    glob = globs.parse(pattern)
    for value in _STRINGS:
        assert glob.matches(value) is fnmatch.fnmatchcase(value, pattern), (pattern, value)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PATTERNS, min_size=1, max_size=2), _PATTERNS)
def test_counterexample_is_exact(wide: list[str], narrow: str) -> None:
    wide_globs = [globs.parse(w) for w in wide]
    narrow_glob = globs.parse(narrow)
    witness = globs.counterexample(wide_globs, narrow_glob)
    if witness is None:
        for value in _STRINGS:
            if narrow_glob.matches(value):
                assert any(g.matches(value) for g in wide_globs), (wide, narrow, value)
    else:
        assert narrow_glob.matches(witness)
        assert not any(g.matches(witness) for g in wide_globs)


@settings(max_examples=300, deadline=None)
@given(_PATTERNS, _PATTERNS)
def test_common_is_exact(left: str, right: str) -> None:
    a, b = globs.parse(left), globs.parse(right)
    witness = globs.common([a], [b])
    if witness is None:
        assert not any(a.matches(v) and b.matches(v) for v in _STRINGS)
    else:
        assert a.matches(witness) and b.matches(witness)
