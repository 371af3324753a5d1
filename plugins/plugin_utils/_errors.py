# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one error type of the controller side (private; may change at any time).

Every controller error (policy, manifests, verification, drafts, the acceptance planner,
reports) is a :class:`TdispError`: a list of one-line problems. Action plugins and filters turn
it into an ``AnsibleError`` with :func:`ansible_message`: one line per problem, never a traceback.
"""

from __future__ import annotations

import typing as t


def one_line(text: t.Any) -> str:
    """``text`` with every run of white space (newlines included) folded to one space."""
    return ' '.join(str(text).split())


class TdispError(Exception):
    """Input the controller cannot use. ``problems`` lists every problem, one line each.

    ``str()`` is the problems one per line, or ``summary`` when given. ``argument`` names the
    argument at fault when it is one (``now``), for the message. ``counted`` errors (the
    policy's) are shown to the user under an ``N problems:`` line.
    """

    counted = False

    def __init__(self, problems: t.Union[str, t.Iterable[t.Any]], summary: t.Optional[str] = None,
                 argument: t.Optional[str] = None) -> None:
        items = [problems] if isinstance(problems, str) else list(problems)
        self.problems: list[str] = [one_line(p) for p in items] or ['unknown problem']
        self.argument = argument
        super().__init__(summary if summary is not None else '\n'.join(self.problems))

    @property
    def errors(self) -> list[str]:
        """The problems (the name older callers use)."""
        return self.problems


def ansible_message(where: str, err: TdispError) -> str:
    """The message of the ``AnsibleError`` that ``err`` becomes: ``where: ...``, one line per problem."""
    if err.argument:
        where = '%s %s' % (where, err.argument)
    if err.counted:
        count = len(err.problems)
        return '%s: %d problem%s:\n%s' % (where, count, '' if count == 1 else 's', '\n'.join(err.problems))
    return '%s: %s' % (where, err)


def call(error_class: t.Callable[[str], Exception], where: str, func: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> t.Any:
    """``func(*args, **kwargs)``, a :class:`TdispError` turned into ``error_class`` (``AnsibleFilterError``...)."""
    try:
        return func(*args, **kwargs)
    except TdispError as err:
        raise error_class(ansible_message(where, err)) from None
