#!/usr/bin/python
# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: tdisp_acceptance
short_description: Converge a host's TDISP devices to an acceptance policy in one task
requirements:
  - jmespath (>= 1.0.1, < 2) on the controller, for the policy's C(match) rules (C(pip install -r requirements/collection.txt))
  - cryptography (>= 41.0) on the controller, for evidence verification (C(pip install -r requirements/collection.txt))
version_added: 0.1.0
description:
  - The engine of the P(coco.tdisp.acceptance#role) role, an action plugin that runs on the controller and calls the collection's
    modules on the host. One task per host does the whole sequence, so that a fleet pays one task's overhead per host.
  - Reads every device of the host with its evidence and the host ledger (M(coco.tdisp.tdisp_device_info)); plans on the
    controller (every device decided by the policy, first match wins, each decision attributed to its rule; evidence verified
    against the reference manifests); locks the devices the policy wants in the TCB and reads them again with their evidence in
    the same module run (M(coco.tdisp.tdisp_device) with O(coco.tdisp.tdisp_device#module:facts=true)), verifies it, then in one
    more module run accepts those whose evidence verifies with the verified evidence generation pinned, unlocks the ones that
    must leave TDISP, sets the trust levels and records the policy version (M(coco.tdisp.tdisp_device) with
    O(coco.tdisp.tdisp_device#module:trust); M(coco.tdisp.device_trust) when no device changes state).
  - A first rollout of a host takes three module runs, a converged re-run one.
  - Refuses, before any module runs on the host, a policy that does not validate and reference manifests with mistakes. Refuses a
    policy older than the one the host's ledger records (O(allow_older_policy)), and a plan the lockout preflight finds would cut
    the host off (O(force)).
  - In check mode it is a plan; the modules it calls write nothing, and devices that would be locked are reported with the outcome
    they get if their evidence verifies.
  - Returns the per-host summary and sets it as the fact named by O(summary_fact).
author:
  - coco.tdisp developers (@coco-tdisp)
options:
  policy:
    description: The acceptance policy (see docs/policy.md), normally C(tdisp_policy).
    type: dict
    required: true
  manifests:
    description: The reference manifests by name (see docs/manifests.md), normally C(reference_manifests).
    type: dict
    default: {}
  critical_devices:
    description: PCI device names that must keep working whatever the policy says (lockout preflight).
    type: list
    elements: str
    default: []
  allow_disruptive:
    description:
      - Allow ending TDISP sessions (unlocking accepted or locked devices), withdrawing trust C(tcb), and re-accepting devices that
        left RUN through lock, verify, accept. Devices this run locked itself are always returned to the state they were found in.
    type: bool
    default: false
  allow_older_policy:
    description: Apply a policy whose version is older than the one the host's ledger records.
    type: bool
    default: false
  retry_rejected:
    description: Lock and verify again the devices the ledger records as rejected under this policy version.
    type: bool
    default: false
  force:
    description: Apply even when the lockout preflight finds problems.
    type: bool
    default: false
  fail_on_error:
    description:
      - Fail the task when the host could not be converged. With V(false) the failure is only recorded in the summary (C(failed),
        C(failure)); the rollout playbook lets its wave gate decide.
    type: bool
    default: true
  sysfs_root:
    description: The sysfs root, C(/sys) on a real host; a simulated host's tree in rehearsals.
    type: path
    default: /sys
  evidence_endpoint:
    description: Where evidence is read, V(netlink) or V(unix:PATH) (a simulated host).
    type: str
    default: netlink
  state_dir:
    description: The host-side ledger directory.
    type: path
    default: /var/lib/coco-tdisp
  tsm:
    description: The guest TSM to lock with; by default the only devsec TSM.
    type: str
  summary_fact:
    description: The name of the fact the summary is set as.
    type: str
    default: tdisp_acceptance_summary
  run_lease:
    description:
      - Seconds the host's run lock lasts after each module call renews it. Every module call of one host's acceptance carries
        one run id (C(acc-<controller pid>-<start time>-<tag>)) and the policy version, so that a second run on the host fails at
        once, naming the holder; the last call releases the lock, also when the acceptance fails.
    type: int
    default: 600
  break_run:
    description: The run id of a dead run whose lock may be broken before its lease expires.
    type: str
attributes:
  check_mode:
    support: full
    details:
      - The modules it calls run in check mode and write nothing; the summary is the plan.
  diff_mode:
    support: full
    details:
      - The diffs of the modules it calls, one per module call.
  idempotent:
    support: full
    details:
      - A second run on a converged host calls one module (the read) and reports no change.
  platform:
    support: full
    platforms: Linux
extends_documentation_fragment:
  - action_common_attributes
  - action_common_attributes.flow
  - coco.tdisp._attributes
  - coco.tdisp._attributes.controller_action
seealso:
  - module: coco.tdisp.tdisp_device_info
  - module: coco.tdisp.tdisp_device
  - module: coco.tdisp.device_trust
"""

EXAMPLES = r"""
- name: Converge the host to the fleet's policy
  coco.tdisp.tdisp_acceptance:
    policy: "{{ tdisp_policy }}"
    manifests: "{{ reference_manifests }}"
  register: acceptance

- name: Show what was decided
  ansible.builtin.debug:
    msg: "{{ acceptance.summary.devices | map(attribute='action_reason') }}"
"""

RETURN = r"""
summary:
  description:
    - The per-host summary, also set as the fact named by O(summary_fact). C(host), C(policy_version), C(check_mode), C(failed),
      C(failure), C(changed), C(converged), C(contraindicated) (devices with contraindicated evidence plus devices kept out under
      this policy version), C(counts) (per action, outcome and verdict status; C(changes), C(pending), C(refused), C(rejected)),
      C(module_calls), C(devices) (per device C(bdf), ids, C(rule), C(matched_by), C(trust), C(tdisp_state), C(action),
      C(action_reason), C(before), C(verdict), C(exempt); from the modules' final re-read C(converged), C(evidence_changed),
      C(recovered), C(failed)), C(refused) (with C(kind), e.g. V(unexplained_state), V(unknown_identity), V(evidence_changed)),
      C(rejected), C(preflight), C(expected), C(gate_notes) and C(run_id).
  returned: always
  type: dict
"""
