# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The playbook variables as an AWX/AAP survey sends them (private; may change at any time).

A survey sends text: ``"1,25%,100%"`` or ``'[1, "25%"]'`` for a list, ``"yes"``/``"true"`` for a
boolean, ``"3"`` for an integer. :func:`parse` turns such a value, or the native value an
inventory or ``-e '{...}'`` gives, into the native form, or raises :class:`SurveyError` with one
line naming the variable and the forms it accepts, before any host is touched.
"""

from __future__ import annotations

import json
import re
import typing as t

from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import TdispError

KINDS = ('waves', 'batch', 'bool', 'int', 'list', 'formats', 'str')
# The report formats (``formats``): those of plugin_utils/_render.
FORMATS = ('json', 'markdown', 'junit', 'html')
_SERIAL = re.compile(r'[1-9][0-9]*%?')
_TRUE = ('true', 'yes', 'on', '1', 'y')
_FALSE = ('false', 'no', 'off', '0', 'n', '')


class SurveyError(TdispError):
    """A playbook variable in a form it cannot take (one line)."""


def _items(value: t.Any) -> list[t.Any]:
    """A list from a native list, a JSON/YAML flow list text, or comma-separated text."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if not isinstance(value, str):
        return [value]
    text = value.strip()
    if text.startswith('['):
        try:
            loaded = json.loads(text)
        except ValueError:
            loaded = _flow_list(text)
        return loaded if isinstance(loaded, list) else [loaded]
    return [p.strip() for p in text.split(',') if p.strip()] if text else []


def _flow_list(text: str) -> t.Any:
    """A YAML flow list (``[1, '25%', 100%]``) through the safe loader; the text itself when it is not one."""
    import yaml  # pylint: disable=import-outside-toplevel  # ansible-core's own dependency

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


_SERIAL_FORMS = {'waves': 'a list of batch sizes; use host counts and percentages such as "1,25%,100%" or [1, "25%", "100%"]',
                 'batch': 'one batch size; use a host count or a percentage such as "25%"'}


def _serial(item: t.Any, name: str, whole: t.Any, kind: str) -> t.Union[int, str]:
    if isinstance(item, int) and not isinstance(item, bool) and item > 0:
        return item
    text = str(item).strip()
    if isinstance(item, bool) or not _SERIAL.fullmatch(text) or (text.endswith('%') and int(text[:-1]) > 100):
        raise SurveyError('%s: %r is not %s' % (name, whole, _SERIAL_FORMS[kind]))
    return text if text.endswith('%') else int(text)


def parse(value: t.Any, kind: str, name: str = 'value', choices: t.Optional[t.Sequence[str]] = None) -> t.Any:
    """``value`` of the playbook variable ``name`` as ``kind`` (one of :data:`KINDS`), natively; for ``list``, each one of ``choices``."""
    if kind == 'waves':
        items = _items(value)
        if not items:
            raise SurveyError('%s: is empty; give at least one batch size, such as "1,25%%,100%%"' % name)
        return [_serial(i, name, value, kind) for i in items]
    if kind == 'batch':
        items = _items(value)
        if len(items) != 1:
            raise SurveyError('%s: %r is not %s' % (name, value, _SERIAL_FORMS[kind]))
        return _serial(items[0], name, value, kind)
    if kind == 'bool':
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise SurveyError('%s: %r is not a boolean; use true or false (yes/no)' % (name, value))
    if kind == 'int':
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        text = str(value).strip()
        if not text.isdigit() or isinstance(value, bool):
            raise SurveyError('%s: %r is not a whole number of 0 or more' % (name, value))
        return int(text)
    if kind == 'formats':
        return parse(value, 'list', name, FORMATS)
    if kind == 'list':
        items = _items(value)
        if not all(isinstance(i, str) and i for i in items):
            raise SurveyError('%s: %r is not a list of names; use "a,b" or ["a", "b"]' % (name, value))
        wrong = [i for i in items if choices is not None and i not in choices]
        if wrong:
            raise SurveyError('%s: %s not one of %s' % (name, ', '.join(repr(w) for w in wrong), ', '.join(choices or ())))
        return items
    if kind == 'str':
        if isinstance(value, (list, dict, bool)) or value is None:
            raise SurveyError('%s: %r is not a text value' % (name, value))
        return str(value)
    raise SurveyError('kind: %r is not one of %s' % (kind, ', '.join(KINDS)))
