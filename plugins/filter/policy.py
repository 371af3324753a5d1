# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filters of the TDISP acceptance policy engine; documented in the policy_*.yml files beside this one.

Each filter is one call into ``plugin_utils/_policy``.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

from ansible_collections.coco.tdisp.plugins.plugin_utils import _policy
from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import call

_display = Display()


def _warn(text: str) -> None:
    _display.warning(text)


def policy_validate(policy: t.Any, manifests: t.Any = None) -> dict[str, t.Any]:
    """The normalised policy; fails listing every problem; shows warnings."""
    return call(AnsibleFilterError, 'coco.tdisp.policy_validate', _policy.validated_dict, policy, manifests, _warn)


def policy_plan(devices: t.Any, policy: t.Any, verdicts: t.Any = None, manifests: t.Any = None, now: t.Any = None) -> dict[str, t.Any]:
    """One attributed decision per device, and a summary."""
    return call(AnsibleFilterError, 'coco.tdisp.policy_plan', _policy.plan, devices, policy, verdicts, manifests, now)


def policy_expected(devices: t.Any, policy: t.Any) -> list[dict[str, t.Any]]:
    """Inventory completeness findings."""
    return call(AnsibleFilterError, 'coco.tdisp.policy_expected', _policy.check_expected, devices, policy)


def policy_audit(devices: t.Any, policy: t.Any, verdicts: t.Any = None, manifests: t.Any = None, ledger: t.Any = None,
                 now: t.Any = None) -> dict[str, t.Any]:
    """Compliance findings per device, drift classified, exemptions applied."""
    return call(AnsibleFilterError, 'coco.tdisp.policy_audit', _policy.audit, devices, policy, verdicts, manifests, now, ledger)


def policy_preflight(devices: t.Any, plan: t.Any, critical: t.Any = None) -> list[dict[str, t.Any]]:
    """Decisions that would lock the operator out."""
    return call(AnsibleFilterError, 'coco.tdisp.policy_preflight', _policy.preflight, devices, plan, critical)


def select_devices(devices: t.Any, expression: t.Any) -> list[dict[str, t.Any]]:
    """The devices a JMESPath expression selects (the view and checks of a rule's match)."""
    return call(AnsibleFilterError, 'coco.tdisp.select_devices', _policy.select, devices, expression)


class FilterModule:
    """coco.tdisp policy filters."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            'policy_validate': policy_validate,
            'policy_plan': policy_plan,
            'policy_expected': policy_expected,
            'policy_audit': policy_audit,
            'policy_preflight': policy_preflight,
            'select_devices': select_devices,
        }
