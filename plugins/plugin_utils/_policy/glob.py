# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Shell-style globs with exact language inclusion (private; may change at any time).

The policy's plain match fields (``class: "0x0302*"``, ``bdf: "0000:4?:00.*"``) are globs. The
shadowing analysis must know whether every string one glob (or literal) matches is also matched
by another. ``fnmatch`` can only test one string, so this module parses a glob into a small
position automaton and answers the two questions the analysis asks exactly:

``covers(wide, narrow)``
    every string ``narrow`` matches is matched by at least one glob of ``wide``;
``overlaps(left, right)``
    some string is matched by a glob of ``left`` and by a glob of ``right``.

Syntax (a strict subset of ``fnmatch``): ``*`` any run of characters (also empty), ``?`` one
character, ``[abc]`` / ``[a-f]`` one character of the set, ``[!abc]`` one character not in it.
There are no escapes; ``[*]`` is a literal ``*``. An unclosed ``[`` is an error (``fnmatch`` would
treat it as a literal, which hides typos). Matching is case-sensitive and covers the whole string.
"""

from __future__ import annotations

import collections
import dataclasses
import typing as t

from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import TdispError

# One step of a glob: a character predicate ("in chars", or "not in chars" when negated), or a
# star. ``?`` is the step "not in {}".
_STAR = None


@dataclasses.dataclass(frozen=True)
class _Step:
    chars: frozenset[str]
    negated: bool

    def accepts(self, char: str) -> bool:
        return (char in self.chars) != self.negated


_Token = t.Optional[_Step]
_ANY = _Step(frozenset(), True)


class GlobError(TdispError, ValueError):
    """The pattern is not a valid glob; ``str()`` is one line saying why."""


@dataclasses.dataclass(frozen=True)
class Glob:
    """A parsed glob. Build with :func:`parse` or :func:`literal`."""

    text: str
    tokens: tuple[_Token, ...]

    @property
    def is_literal(self) -> bool:
        """True when the glob matches exactly one string (its text)."""
        return all(tok is not _STAR and not tok.negated and len(tok.chars) == 1 for tok in self.tokens)

    def matches(self, value: str) -> bool:
        states = _closure(self.tokens, frozenset((0,)))
        for char in value:
            states = _step(self.tokens, states, char)
            if not states:
                return False
        return len(self.tokens) in states


def literal(text: str) -> Glob:
    """The glob that matches exactly ``text`` (metacharacters in it are not special)."""
    return Glob(text, tuple(_Step(frozenset((c,)), False) for c in text))


def parse(text: str) -> Glob:
    """Parse ``text`` as a glob; raises :class:`GlobError` on an unclosed ``[`` or a bad range."""
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == '*':
            if not tokens or tokens[-1] is not _STAR:
                tokens.append(_STAR)
            pos += 1
        elif char == '?':
            tokens.append(_ANY)
            pos += 1
        elif char == '[':
            step, pos = _parse_set(text, pos)
            tokens.append(step)
        else:
            tokens.append(_Step(frozenset((char,)), False))
            pos += 1
    return Glob(text, tuple(tokens))


def _parse_set(text: str, start: int) -> tuple[_Step, int]:
    pos = start + 1
    negated = pos < len(text) and text[pos] == '!'
    if negated:
        pos += 1
    chars: set[str] = set()
    first = True
    while pos < len(text) and (first or text[pos] != ']'):
        first = False
        low = text[pos]
        if pos + 2 < len(text) and text[pos + 1] == '-' and text[pos + 2] != ']':
            high = text[pos + 2]
            if ord(high) < ord(low):
                raise GlobError("range %s-%s in %r runs backwards; write it as %s-%s" % (low, high, text, high, low))
            if ord(high) - ord(low) > 0xff:
                raise GlobError("range %s-%s in %r is wider than 256 characters; list the characters instead" % (low, high, text))
            chars.update(chr(code) for code in range(ord(low), ord(high) + 1))
            pos += 3
        else:
            chars.add(low)
            pos += 1
    if pos >= len(text):
        raise GlobError("unclosed '[' at position %d in %r; write [[] for a literal '['" % (start, text))
    return _Step(frozenset(chars), negated), pos + 1


def _closure(tokens: tuple[_Token, ...], states: frozenset[int]) -> frozenset[int]:
    # A star may match nothing: its position also stands for the position after it.
    out = set(states)
    for pos in sorted(states):
        while pos < len(tokens) and tokens[pos] is _STAR:
            pos += 1
            out.add(pos)
    return frozenset(out)


def _step(tokens: tuple[_Token, ...], states: frozenset[int], char: str) -> frozenset[int]:
    nxt = set()
    for pos in states:
        if pos >= len(tokens):
            continue
        tok = tokens[pos]
        if tok is _STAR:
            nxt.add(pos)
        elif tok.accepts(char):
            nxt.add(pos + 1)
    return _closure(tokens, frozenset(nxt))


def _alphabet(globs: t.Iterable[Glob]) -> tuple[str, ...]:
    """One representative of every class of characters the globs can tell apart.

    A step only asks whether a character is in its set, so all characters outside every set
    behave alike: the characters named in the sets plus one character named nowhere suffice.
    """
    named: set[str] = set()
    for glob in globs:
        for tok in glob.tokens:
            if tok is not _STAR:
                named.update(tok.chars)
    other = next(chr(code) for code in range(0x20, 0x110000) if chr(code) not in named)
    return tuple(sorted(named)) + (other,)


def _explore(left: t.Sequence[Glob], right: t.Sequence[Glob],
             goal: t.Callable[[bool, bool], bool]) -> t.Optional[str]:
    """A shortest string ``s`` with ``goal(any left glob matches s, any right glob matches s)``, or None.

    A breadth-first search over the product of the globs' subset automata; finite because every
    component is a set of positions in one pattern.
    """
    globs = tuple(left) + tuple(right)
    alphabet = _alphabet(globs)
    start = tuple(_closure(g.tokens, frozenset((0,))) for g in globs)
    seen = {start: ''}
    queue = collections.deque([start])
    split = len(left)
    while queue:
        state = queue.popleft()
        accepting = [len(g.tokens) in s for g, s in zip(globs, state)]
        if goal(any(accepting[:split]), any(accepting[split:])):
            return seen[state]
        for char in alphabet:
            nxt = tuple(_step(g.tokens, s, char) for g, s in zip(globs, state))
            if any(nxt) and nxt not in seen:
                seen[nxt] = seen[state] + char
                queue.append(nxt)
    return None


def _value(glob: Glob) -> str:
    """The one string a literal glob matches."""
    return ''.join(next(iter(tok.chars)) for tok in glob.tokens if tok is not _STAR)


def counterexample(wide: t.Sequence[Glob], narrow: Glob) -> t.Optional[str]:
    """A shortest string that ``narrow`` matches and no glob of ``wide`` does, or None."""
    if narrow.is_literal:
        # Fast path (the common case: ids written out): the only candidate is the literal itself.
        value = _value(narrow)
        return None if any(g.matches(value) for g in wide) else value
    return _explore([narrow], wide, lambda in_narrow, in_wide: in_narrow and not in_wide)


def covers(wide: t.Sequence[Glob], narrow: Glob) -> bool:
    """True when every string ``narrow`` matches is matched by some glob of ``wide``."""
    return counterexample(wide, narrow) is None


def common(left: t.Sequence[Glob], right: t.Sequence[Glob]) -> t.Optional[str]:
    """A shortest string matched both by a glob of ``left`` and by a glob of ``right``, or None."""
    for literals, others in ((left, right), (right, left)):
        if literals and all(g.is_literal for g in literals):
            # Fast path: every common string is one of the literals; take the shortest that matches.
            found = [v for v in sorted({_value(g) for g in literals}, key=lambda v: (len(v), v)) if any(o.matches(v) for o in others)]
            return found[0] if found else None
    return _explore(left, right, lambda in_left, in_right: in_left and in_right)


def overlaps(left: t.Sequence[Glob], right: t.Sequence[Glob]) -> bool:
    """True when some string is matched both by a glob of ``left`` and by a glob of ``right``."""
    return common(left, right) is not None
