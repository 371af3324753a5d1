# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The acceptance planning filter and the run id of the host's run lock; documented in acceptance_step.yml and run_id.yml."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.coco.tdisp.plugins.plugin_utils import _acceptance
from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import call


def acceptance_step(info: t.Any, policy: t.Any, manifests: t.Any, nonce: t.Any = None, now: t.Any = None,
                    allow_disruptive: bool = False, locked_now: t.Any = None, critical: t.Any = None,
                    ledger: t.Any = None, retry_rejected: bool = False) -> dict[str, t.Any]:
    """Plan the next module calls of one host from its facts, the policy and the manifests."""
    return call(AnsibleFilterError, 'coco.tdisp.acceptance_step', _acceptance.step, info, policy, manifests, nonce=nonce, now=now,
                allow_disruptive=bool(allow_disruptive), locked_now=locked_now, critical=critical, ledger=ledger,
                retry_rejected=bool(retry_rejected))


def run_id(kind: t.Any = 'run') -> str:
    """A run id for the host's run lock: kind, the playbook's pid, the start time and a random tag."""
    return call(AnsibleFilterError, 'coco.tdisp.run_id', _acceptance.run_id, kind)


class FilterModule:
    """coco.tdisp acceptance filters."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {'acceptance_step': acceptance_step, 'run_id': run_id}
