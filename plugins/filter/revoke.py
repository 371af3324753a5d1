# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The revoke role's filters; documented in revoke_plan.yml and revoke_summary.yml beside this one.

Each filter is one call into ``plugin_utils`` (``_policy.revoke_plan``, ``_reports.revoke_host``).
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.coco.tdisp.plugins.plugin_utils import _policy, _reports
from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import call


def revoke_plan(info: t.Any, expression: t.Any, level: t.Any = 'blocked', policy: t.Any = None) -> dict[str, t.Any]:
    """What a revocation does on one host: the devices selected, the unlock and trust entries."""
    return call(AnsibleFilterError, 'coco.tdisp.revoke_plan', _policy.revoke_plan, info, expression, level, policy)


def revoke_summary(plan: t.Any, host: t.Any, unlocked: t.Any = None, lowered: t.Any = None, check_mode: t.Any = False) -> dict[str, t.Any]:
    """One host's revocation summary (the tdisp_revoke_summary fact)."""
    return call(AnsibleFilterError, 'coco.tdisp.revoke_summary', _reports.revoke_host, host, plan, unlocked, lowered, bool(check_mode))


class FilterModule:
    """coco.tdisp revocation filters."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {'revoke_plan': revoke_plan, 'revoke_summary': revoke_summary}
