# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The playbook-variable filter for AWX/AAP surveys; documented in survey_value.yml beside this one.

One call into ``plugin_utils/_survey``.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.coco.tdisp.plugins.plugin_utils import _survey
from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import call


def survey_value(value: t.Any, kind: str, name: str = 'value', choices: t.Optional[list[str]] = None) -> t.Any:
    """``value`` of the playbook variable ``name`` in its native form (``kind``: waves, batch, bool, int, list, str)."""
    return call(AnsibleFilterError, 'coco.tdisp.survey_value', _survey.parse, value, kind, name, choices)


class FilterModule:
    """coco.tdisp survey filter."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {'survey_value': survey_value}
