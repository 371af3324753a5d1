# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The glue between an ``AnsibleModule`` and the domain (private; may change at any time).

``run(module, body)`` calls ``body()`` and hands its result to ``finish``; a ``TdispError``, or
an ``OSError`` nothing below expected, becomes a one-line ``fail_json``, never a traceback.
"""

from __future__ import annotations

import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError, unexpected_oserror


def _diff(devices: t.Sequence[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    return {'before': {'devices': [d['before'] for d in devices]}, 'after': {'devices': [d['after'] for d in devices]}}


def finish(module: t.Any, result: t.Dict[str, t.Any], diff: bool = True) -> None:
    """Hand a result to the AnsibleModule: warnings, the structured diff of a converge result (``diff``), exit or fail."""
    for warning in result.pop('warnings', []):
        module.warn(warning)
    if diff and getattr(module, '_diff', False):
        trust_devices = (result.get('trust') or {}).get('devices')
        result['diff'] = [_diff(result['devices']), _diff(trust_devices)] if trust_devices else _diff(result['devices'])
    if result.pop('failed', False):
        msg = result.pop('msg')
        module.fail_json(msg=msg, **result)
    module.exit_json(**result)


def run(module: t.Any, body: t.Callable[[], t.Dict[str, t.Any]], diff: bool = True) -> None:
    """Run a module's body and finish with its result (``diff``: a converge result with before/after devices)."""
    try:
        result = body()
    except TdispError as exc:
        module.fail_json(msg=str(exc))
        return
    except OSError as exc:  # not one the ABI layer expects: still one line, never a traceback
        module.fail_json(msg=unexpected_oserror(exc))
        return
    finish(module, result, diff)
