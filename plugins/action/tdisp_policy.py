# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of coco.tdisp.tdisp_policy: validate a policy and its manifests on the controller.

The playbooks' first step: a policy problem reaches the user as one line per problem under one
heading line, not inside Ansible's filter or templating error wrapper (which a filter inside
``set_fact`` would give).
"""

from __future__ import annotations

import typing as t

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.coco.tdisp.plugins.plugin_utils._acceptance import check_inputs, refusal

display = Display()

ARGUMENT_SPEC: dict[str, t.Any] = {
    'policy': {'type': 'raw', 'required': True},
    'manifests': {'type': 'raw', 'default': {}},
}


class ActionModule(ActionBase):
    """Validate a policy and its reference manifests (see the module documentation)."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: t.Any = None, task_vars: t.Optional[dict[str, t.Any]] = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars or {})
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        checked, problems = check_inputs(args['policy'], args['manifests'])
        if problems or checked is None:
            result.update(failed=True, msg=refusal(problems), problems=problems)
            return result
        for warning in checked.warnings:
            display.warning(warning)
        result.update(changed=False, version=checked.version, policy=checked.as_dict(), warnings_found=list(checked.warnings))
        return result
