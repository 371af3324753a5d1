# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The acceptance policy engine (private; may change at any time).

Modules: ``model`` (vocabulary, data classes, ``PolicyError``), ``schema`` (validation), ``glob`` and
``match`` (device selectors), ``decide`` (plan), ``verify`` (a host's verdicts), ``classify``
(inventory and drift for the audit), ``selection`` (JMESPath selection, lockout preflight).

Entry points, all pure functions of their inputs (docs/policy.md is the operator's guide):

``validate(policy, manifests)``
    check the policy before any host is contacted (``schema``);
``plan(devices, policy, verdicts, manifests, now)``
    one decision per device, attributed to the rule that made it, plus a summary;
``check_expected(devices, policy)``
    inventory completeness findings (missing, extra, duplicate, unlisted);
``audit(devices, policy, verdicts, manifests, now, ledger)``
    compliance findings per device, drift classified, exemptions applied;
``verify_host(devices, policy, manifests, now, nonce)``
    the verdicts of a host's evidence, for ``plan`` and ``audit`` (``verify``);
``select(devices, expression)``
    the devices a JMESPath expression selects (``selection``);
``preflight(devices, decisions, critical)``
    the decisions that would lock the operator out (storage, network, critical devices).

``devices`` is a list of device dicts (docs/internals.md) or the ``tdisp_device_info`` shape
``{devices: [...], tsms: [{name, mode}]}``. ``verdicts`` is ``{bdf: {manifest name: verdict}}``.
Invalid input raises :class:`PolicyError` listing every problem.
"""

from __future__ import annotations

from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.classify import audit, check_expected
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.decide import plan
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.match import identity_problem
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.model import (
    DRIFT_KINDS,
    IMPLICIT_DEFAULT,
    Policy,
    PolicyError,
)
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.records import acceptance_of, unexplained
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.schema import ensure, validate, validated_dict
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.selection import preflight, revoke_plan, select
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.verify import verify_host

__all__ = ['DRIFT_KINDS', 'IMPLICIT_DEFAULT', 'Policy', 'PolicyError', 'acceptance_of', 'audit', 'check_expected', 'ensure', 'identity_problem',
           'plan', 'preflight', 'revoke_plan', 'select', 'unexplained', 'validate', 'validated_dict', 'verify_host']
