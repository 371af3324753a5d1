#!/usr/bin/python
# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: device_trust
short_description: Set the trust level of PCIe devices through whichever kernel trust ABI exists
version_added: 0.1.0
description:
  - Sets each listed device's trust level, named in the collection's words (V(blocked), V(adversary), V(normal), V(tcb))
    or as a number 0 to 3, through the trust interface this kernel has, probed per device.
    A per-device C(trust) file (the integer written as is), a per-device C(trust_policy) file (C(disabled), C(adversary),
    C(full); V(tcb) is C(full) on a device in TDISP RUN), or the C(trust) parameter of the driver's module (C(none),
    C(adversary), C(auto), C(tcb)).
  - "Enforces the seed thread's rules before it writes. V(tcb) needs the device in TDISP RUN (accept it first with
    M(coco.tdisp.tdisp_device)). A level below V(tcb) on a device in RUN is refused unless O(allow_disruptive=true), in which
    case the plan is [unbind] -> unlock -> set the level -> [rebind]."
  - "C(trust_policy) is writable only while no driver is bound (EBUSY). The module unbinds with O(unbind_driver=true) and
    rebinds afterwards (O(rebind_driver)), except after V(blocked), which the kernel refuses to bind."
  - "C(module_param): the parameter belongs to the driver's module and is shared by every device of that driver. A task
    that asks different levels for devices of one module is refused. The value takes effect at the next bind, so the module
    rebinds the task's bound devices when O(unbind_driver=true), and otherwise reports C(pending_rebind=true). Devices of that
    driver that are not in the task are named in a warning."
  - "Detects a level that the kernel reset. With the integer ABI the kernel resets trust to 0 when a device leaves RUN,
    TDISP ERROR included, which C(tsm/accept) does not show. When the ledger says the collection set a level and the device
    now reads what a loss of RUN leaves behind, the device reports C(reset_detected=true) and the module does not write the
    level back. It fails that device, telling the operator to re-run lock -> verify -> accept. Without a ledger entry, a V(tcb)
    write that the kernel refuses (EINVAL) on a device that reads accepted means the same, and is reported the same way."
  - A kernel without any trust ABI (C(trust_abi=none)) fails every device whose level would change.
author:
  - coco.tdisp developers (@coco-tdisp)
options:
  devices:
    description: The devices and their desired trust level. Each device may appear once.
    type: list
    elements: dict
    required: true
    suboptions:
      bdf:
        description: PCI device name, C(DDDD:BB:DD.F) in lower-case hex.
        type: str
        required: true
      level:
        description: V(blocked) (0), V(adversary) (1), V(normal) (2) or V(tcb) (3); a name or a number.
        type: raw
        required: true
      driver:
        description:
          - Only for the C(module_param) ABI, a device with no driver bound and no C(driver_override). The driver whose module's
            C(trust) parameter applies to the device at its next bind. The module does not bind it.
          - Refused when the device is bound to (or overridden for) another driver.
        type: str
  allow_disruptive:
    description:
      - Allow a level below V(tcb) on a device in TDISP RUN, by unlocking it first (the device leaves RUN; accept has no inverse).
    type: bool
    default: false
  unbind_driver:
    description:
      - Unbind a bound driver when the write needs it (C(trust_policy), an unlock), or to apply a new module C(trust) parameter
        by rebinding.
    type: bool
    default: false
  rebind_driver:
    description: Bind the unbound driver again afterwards (not after V(blocked) under C(trust_policy) or C(module_param)).
    type: bool
    default: true
  policy_version:
    description:
      - Record this acceptance policy version in the host's ledger once every device of the task has converged (nothing is
        recorded when a device fails, so that a re-run after a halt still sees the older version).
      - Recording a new version counts as a change. M(coco.tdisp.tdisp_device_info) returns the record as C(ledger.policy), which
        the P(coco.tdisp.acceptance#role) role compares so that an older policy cannot overwrite a newer one.
      - O(devices) may be empty when only the version is to be recorded.
    type: str
  unverified:
    description:
      - Dangerous. Raise devices to V(tcb) although the ledger holds no committed acceptance record for them (a device put into
        RUN by someone else). Reported as RV(unverified) and in a warning.
      - Without it, a device raised to (or found at) V(tcb) must be in RUN under a committed acceptance record whose
        generation and leaf identity the live evidence still has, checked right before the write and again at the end.
    type: bool
    default: false
extends_documentation_fragment:
  - coco.tdisp._attributes
  - coco.tdisp._attributes.action_module
  - coco.tdisp._attributes.platform
  - coco.tdisp._attributes.action_group
  - coco.tdisp._attributes.sysfs
  - coco.tdisp._attributes.state_dir
  - coco.tdisp._attributes.evidence
  - coco.tdisp._attributes.reliability
notes:
  - O(evidence_endpoint) is read only for devices raised to (or found at) V(tcb), to check that their evidence is still the
    one their acceptance was pinned to (kernel C(validate) where the family has it).
  - A V(tcb) this run set on a device whose evidence then moved is taken back; the kernel refuses a level below V(tcb) in RUN,
    so the device leaves RUN (unbind, unlock; the ledger owes the driver a rebind). RV(devices[].lowered) names the level.
  - A device's level is compared with what the kernel reports now; a device already at its level is not written.
  - "With C(module_param), the level reported is the module parameter's value: the level the next bind gets. A bound device
    keeps the level it got at its bind until it is rebound (C(pending_rebind))."
  - Take devices out of RUN with M(coco.tdisp.tdisp_device) (V(unlocked)) when the TDISP state is what you mean to change;
    O(allow_disruptive) here is for lowering trust.
seealso:
  - module: coco.tdisp.tdisp_device_info
  - module: coco.tdisp.tdisp_device
"""

EXAMPLES = r"""
- name: Give an accepted GPU private memory
  coco.tdisp.device_trust:
    devices:
      - {bdf: '0000:41:00.0', level: tcb}

- name: Shared-memory-only NICs, by number
  coco.tdisp.device_trust:
    devices:
      - {bdf: '0000:42:00.0', level: 2}
      - {bdf: '0000:43:00.0', level: 2}
    unbind_driver: true

- name: Block a device that is in RUN (unlocks it)
  coco.tdisp.device_trust:
    devices:
      - {bdf: '0000:41:00.0', level: blocked}
    allow_disruptive: true
    unbind_driver: true

- name: Against a simulated host
  coco.tdisp.device_trust:
    devices: "{{ trust_plan }}"
    unbind_driver: true
    sysfs_root: "{{ tdisp_sysfs_root }}"
    state_dir: "{{ tdisp_state_dir }}"
  register: trust

- name: Devices whose trust the kernel reset
  ansible.builtin.debug:
    msg: "{{ trust.devices | selectattr('reset_detected') | map(attribute='bdf') | list }}"
"""

RETURN = r"""
unverified:
  description: O(unverified) was set.
  returned: with O(unverified=true)
  type: bool
run_lock:
  description:
    - The run lock (O(run)), C(held), C(run_id), C(broken) (the stale holder that was broken, or null) and C(released).
  returned: when O(state_dir) is given (and, for M(coco.tdisp.tdisp_device_info), O(run.id))
  type: dict
rehearsal:
  description: O(rehearsal) was set; the facts are from a plain tree, not a kernel.
  returned: with O(rehearsal=true)
  type: bool
policy_recorded:
  description: Whether O(policy_version) was recorded now (in check mode, whether it would be).
  returned: when O(policy_version) is given
  type: bool
  sample: true
devices:
  description: One result per device of the task, in the task's order.
  returned: always
  type: list
  elements: dict
  contains:
    bdf:
      description: The device.
      type: str
      sample: '0000:41:00.0'
    before:
      description: The device dict (as M(coco.tdisp.tdisp_device_info) returns it) before the task.
      type: dict
    after:
      description: The device dict read again after the task; in check mode, the predicted dict.
      type: dict
    changed:
      description: Whether anything was written for this device (in check mode, whether something would be).
      type: bool
    actions:
      description:
        - The ordered actions, as for M(coco.tdisp.tdisp_device), V(unbind), V(bind), V(write) (C(attribute) is C(trust),
          C(trust_policy), C(tsm/unlock) or C(module/<name>/parameters/trust); a module write also lists the C(devices)
          that share it).
      type: list
      elements: dict
      sample:
        - {action: write, attribute: trust, value: '3', done: true}
    disruptive:
      description: Whether the plan unlocks the device.
      type: bool
    reset_detected:
      description:
        - True when the kernel reset the level the collection had set (the device left RUN) or refused V(tcb) on a device
          that reads accepted.
      type: bool
    pending_rebind:
      description: Only for C(module_param). The module parameter holds the level but a bound device still runs with the
        level of its last bind.
      type: bool
      returned: for devices with the module_param ABI
    failed:
      description: Whether this device failed.
      type: bool
    converged:
      description:
        - From the final read, never from the plan. The device is in the state (or at the level) asked for; in RUN or at
          V(tcb) only under a committed acceptance record whose evidence (generation, leaf identity) the live evidence still has.
      type: bool
    evidence_changed:
      description: The evidence (or the RUN state) moved away from what was verified; the device was not raised, or was taken back.
      type: bool
      returned: when it did
    recovered:
      description:
        - An unfinished transaction a killed run left behind, and what this run did with it, V(finished), V(reverify),
          V(abandoned) or V(rebind) (docs/reliability.md).
      type: str
      returned: when there was one
    needs_reverify:
      description: The device must go through verify -> accept again (it was found in TDISP ERROR, or its pending acceptance could not be finished).
      type: bool
      returned: when it does
    lowered:
      description: The level a V(tcb) this run set was taken back to (the evidence moved), or V(false) when it could not be.
      type: raw
      returned: when the evidence moved after the write
    acceptance:
      description:
        - For a device in RUN (or at V(tcb)), C(committed), C(matches), C(generation), C(identity), C(policy_version), C(unverified),
          C(pending_step) of its acceptance record in the ledger.
      type: dict
      returned: for a device in RUN or at tcb
    msg:
      description: The one-line error of this device.
      type: str
      returned: when the device failed
errors:
  description: Every error line, when more than one device failed or was refused.
  returned: on failure
  type: list
  elements: str
diff:
  description: C(before.devices) and C(after.devices), the device dicts of the task's devices.
  returned: in diff mode
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.converge import record_policy
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.constants import check_endpoint
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.evidence import client_factory
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.module import HostRun, run
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.options import RELIABILITY, TRUST_DEVICE_OPTIONS, argument_spec
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.plan_trust import converge_trust


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(
            devices=dict(type='list', elements='dict', required=True, options=TRUST_DEVICE_OPTIONS),
            allow_disruptive=dict(type='bool', default=False),
            unbind_driver=dict(type='bool', default=False),
            rebind_driver=dict(type='bool', default=True),
            policy_version=dict(type='str'),
            unverified=dict(type='bool', default=False),
            **RELIABILITY
        ),
        supports_check_mode=True,
    )
    p = module.params

    def body(host: HostRun) -> dict:
        options = host.options(unbind_driver=p['unbind_driver'], rebind_driver=p['rebind_driver'],
                               allow_disruptive=p['allow_disruptive'], unverified=p['unverified'])
        factory = client_factory(check_endpoint(p['evidence_endpoint']))
        ledger = host.ledger(p['policy_version'])
        result = converge_trust(host.sysfs(), ledger, p['devices'], options, factory)
        if p['unverified']:
            result['unverified'] = True
            result.setdefault('warnings', []).append('unverified: true raises devices to tcb without a committed acceptance record')
        if p['policy_version'] is not None:
            record_policy(ledger, p['policy_version'], result, module.check_mode)
        return result

    run(module, HostRun(p, module.check_mode)(body))


if __name__ == '__main__':
    main()
