#!/usr/bin/python
# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: tdisp_device
short_description: Lock, accept (TDISP RUN) or unlock PCIe devices in a confidential VM
version_added: 0.1.0
description:
  - Brings each listed device to its desired TDISP state in one call per host, V(unlocked), V(locked) (CONFIG_LOCKED,
    C(echo tsmN > tsm/lock)) or V(run) (accepted, C(echo 1 > tsm/accept)).
  - "Plans per device, as ordered actions. From unlocked to V(locked): [unbind the driver] -> lock -> [rebind].
    To V(run) from unlocked: [unbind] -> lock -> [verify the generation pin] -> accept -> [rebind]; from locked:
    [unbind] -> [verify] -> accept -> [rebind]. A device already in the desired state is not written (C(accept) is read first;
    the kernel returns EBUSY for a repeated accept while a driver is bound)."
  - Leaving V(run) or V(locked) (to V(unlocked), or V(run) to V(locked), which is unlock then lock) ends the device's TDISP
    session and is refused unless O(allow_disruptive=true); such actions carry C(disruptive=true).
  - The kernel refuses lock, unlock and accept while a driver is bound (EBUSY). The module unbinds the driver only with
    O(unbind_driver=true), records it in the ledger under O(state_dir) before unbinding, and binds it again afterwards
    (O(rebind_driver)); a later run rebinds a driver the ledger still owes, even after a failed run.
  - The generation pin (C(devices[].generation)) is the TOCTOU guard. Before C(accept) the module reads the current
    evidence generation and refuses when it differs from the one that was verified, then asks the kernel to C(validate) the
    pinned generation where the evidence family has that operation, so that the kernel enforces it as well.
  - Every input is checked and every device planned before the first write; a refused plan fails the task with nothing
    written. A write that fails fails that device (the task fails, with the first error line as C(msg)); the other devices
    are still converged and reported.
  - "Errors are one line naming the device, the attribute, the errno name and the remedy, for example
    '0000:41:00.0 tsm/lock: driver nvidia is bound (EBUSY); set unbind_driver: true or unbind it first'."
author:
  - coco.tdisp developers (@coco-tdisp)
options:
  devices:
    description: The devices and their desired state. Each device may appear once.
    type: list
    elements: dict
    required: true
    suboptions:
      bdf:
        description: PCI device name, C(DDDD:BB:DD.F) in lower-case hex as the kernel prints it (V(0000:41:00.0), V(10000:01:00.0)).
        type: str
        required: true
      state:
        description: The desired TDISP state.
        type: str
        required: true
        choices: [unlocked, locked, run]
      generation:
        description:
          - Required with O(devices[].state=run) (unless O(devices[].unverified=true)); only with it. The evidence generation
            that was verified (as returned by M(coco.tdisp.tdisp_device_info) with
            O(coco.tdisp.tdisp_device_info#module:include_evidence=true) while the device was locked), 0 to 2**63-1.
          - Accept is refused when the device's current generation differs. After the accept the evidence is read again; if it
            moved, the device fails with RV(devices[].evidence_changed=true) and no acceptance record is committed. For a
            device already in RUN, a different generation fails the device (re-run lock, verify, accept).
        type: int
      identity:
        description:
          - With O(devices[].generation). The verified leaf identity, C(sha384:) and 96 hex digits, the C(digest) of the device's
            C(cert0) evidence object (C(evidence.objects.cert0.digest) of M(coco.tdisp.tdisp_device_info)); checked before and
            after the accept, and before any V(tcb) write.
        type: str
      unverified:
        description:
          - Dangerous. Accept (O(devices[].state=run)) without a verified generation; the device is accepted on evidence nobody
            verified. Reported as RV(devices[].unverified) and in a warning; its acceptance record says C(unverified=true).
        type: bool
        default: false
      rejected:
        description:
          - Only with O(devices[].state=unlocked). Record in the ledger under O(state_dir) that a policy keeps this device out,
            as C({reason, policy_version}). The P(coco.tdisp.acceptance#role) role records the devices whose evidence failed
            verification, and C(playbooks/revoke.yml) the devices it revoked, so that later runs under the same policy version
            do not lock them again. A device that reaches RUN later has the record removed.
          - Recording a new reason or policy version counts as a change.
        type: dict
  tsm:
    description:
      - The guest (devsec) TSM to lock with, V(tsm1).
      - Default, the only registered devsec TSM; with none or several registered, a lock fails and names them.
      - When given, a device locked by another TSM is re-locked (disruptive).
    type: str
  unbind_driver:
    description:
      - Unbind a bound driver before lock, accept or unlock (the kernel refuses them with EBUSY while a driver is bound).
      - Without it, a bound driver on a device that needs a write fails the task before anything is written.
    type: bool
    default: false
  rebind_driver:
    description:
      - Bind the driver that was unbound (by this run, or by an earlier one as the ledger records) once the device is in
        its desired state.
      - Skipped when the trust level is V(blocked) under the C(module_param) or C(trust_policy) ABI (the kernel refuses the
        bind); the ledger keeps the driver.
    type: bool
    default: true
  allow_disruptive:
    description:
      - Allow unlocking a locked or accepted device (leaving LOCKED or RUN). Accept has no inverse; unlock ends the TDISP
        session, and where the integer trust ABI exists the kernel resets the device's trust to 0.
    type: bool
    default: false
  trust:
    description:
      - Set trust levels in the same call, after the state changes, exactly as M(coco.tdisp.device_trust) sets them with
        these devices, O(unbind_driver) and O(rebind_driver) of this task, and the O(trust.allow_disruptive) given here.
      - Its input is checked with the rest before the first write. It runs for every device whose state change did not fail
        (one device's failure never holds the others back); a device whose state change failed is listed in C(trust.devices)
        with C(skipped), and C(trust.skipped) says why. A task refused before any write sets no level.
      - One module run instead of two per host, for a role that accepts devices and then raises their trust level.
    type: dict
    suboptions:
      devices:
        description: As O(coco.tdisp.device_trust#module:devices).
        type: list
        elements: dict
        default: []
        suboptions:
          bdf:
            description: PCI device name.
            type: str
            required: true
          level:
            description: The trust level, V(blocked), V(adversary), V(normal), V(tcb) or 0 to 3.
            type: raw
            required: true
          driver:
            description: As O(coco.tdisp.device_trust#module:devices[].driver).
            type: str
      allow_disruptive:
        description: As O(coco.tdisp.device_trust#module:allow_disruptive), for the trust levels.
        type: bool
        default: false
      policy_version:
        description: As O(coco.tdisp.device_trust#module:policy_version).
        type: str
  facts:
    description:
      - After the writes, also return the host's facts as M(coco.tdisp.tdisp_device_info) returns them with
        O(coco.tdisp.tdisp_device_info#module:all_devices=true) (C(tsms), C(devices), the ledger), under RV(facts).
      - With O(include_evidence=true), each device's evidence too. A device's interface report exists only once it is locked,
        so a role that locks devices and then verifies their evidence needs one module run instead of two.
      - Not returned when a device failed. In check mode nothing was written, and the facts are the state as it is.
    type: bool
    default: false
  include_evidence:
    description: With O(facts=true), as O(coco.tdisp.tdisp_device_info#module:include_evidence).
    type: bool
    default: false
  nonce:
    description: With O(include_evidence=true), as O(coco.tdisp.tdisp_device_info#module:nonce).
    type: str
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
  - The evidence endpoint is used for devices with a generation pin, for the recovery of an accept a killed run left
    unfinished, and for the V(tcb) checks of O(trust).
  - "Every disruptive step (unbind, lock, accept, trust raise, unlock, bind) is journalled in the ledger: its intent before
    the write and its outcome after it, each made durable at once. The next run finishes or abandons what a killed run left
    (RV(devices[].recovered)); see docs/reliability.md."
  - A locked device whose accept fails with EIO (TDISP ERROR) is taken back through unlock and lock (no driver is bound, so
    nothing is disrupted) and reported with RV(devices[].needs_reverify=true).
  - One call converges all the devices of a host; never loop a task per device.
seealso:
  - module: coco.tdisp.tdisp_device_info
  - module: coco.tdisp.device_trust
"""

EXAMPLES = r"""
- name: Lock two devices, unbinding and rebinding their drivers
  coco.tdisp.tdisp_device:
    devices:
      - {bdf: '0000:41:00.0', state: locked}
      - {bdf: '0000:42:00.0', state: locked}
    unbind_driver: true

- name: Read the evidence of the locked devices
  coco.tdisp.tdisp_device_info:
    bdfs: ['0000:41:00.0']
    include_evidence: true
  register: info

# ... verify info.devices[0].evidence on the controller ...

- name: Accept the device at the generation that was verified
  coco.tdisp.tdisp_device:
    devices:
      - bdf: '0000:41:00.0'
        state: run
        generation: "{{ info.devices[0].evidence.generation }}"
    unbind_driver: true

- name: Take a device out of the TCB (disruptive)
  coco.tdisp.tdisp_device:
    devices:
      - {bdf: '0000:41:00.0', state: unlocked}
    unbind_driver: true
    allow_disruptive: true

- name: Lock devices and return the host's facts with their evidence, in one module run
  coco.tdisp.tdisp_device:
    devices:
      - {bdf: '0000:41:00.0', state: locked}
    unbind_driver: true
    facts: true
    include_evidence: true
    nonce: "{{ verifier_nonce }}"  # 32 random bytes in hex, chosen by the verifier
  register: locked

- name: Accept at the verified generation, then raise the trust level, in one module run
  coco.tdisp.tdisp_device:
    devices:
      - {bdf: '0000:41:00.0', state: run, generation: 7}
    unbind_driver: true
    trust:
      devices:
        - {bdf: '0000:41:00.0', level: tcb}
      policy_version: '2026.11.1'

- name: Converge a simulated host
  coco.tdisp.tdisp_device:
    devices: "{{ wanted }}"
    unbind_driver: true
    sysfs_root: "{{ tdisp_sysfs_root }}"
    evidence_endpoint: "{{ tdisp_evidence_endpoint }}"
    state_dir: "{{ tdisp_state_dir }}"
"""

RETURN = r"""
refused:
  description: The task was refused before any write (bad input, or a plan the kernel's rules forbid).
  returned: when it was
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
      description: The device dict (as M(coco.tdisp.tdisp_device_info) returns it) before the task; null for a missing device.
      type: dict
    after:
      description: The device dict read again after the task; in check mode, the dict the kernel's rules predict.
      type: dict
    changed:
      description: Whether anything was written for this device (in check mode, whether something would be).
      type: bool
    actions:
      description:
        - The ordered actions, done or (in check mode, or after a failure) planned.
        - C(action) is V(unbind), V(bind) (with C(driver)), V(write) (with C(attribute) and C(value)) or V(verify_generation)
          (with C(generation), and C(kernel_validate) telling whether the kernel's validate operation was used).
        - C(done) tells whether it was carried out; C(disruptive=true) marks an unlock; C(skipped) says why an action was not
          needed; C(error) is the failure of the action that stopped the device.
      type: list
      elements: dict
      sample:
        - {action: unbind, driver: nvidia, done: true}
        - {action: write, attribute: tsm/lock, value: tsm1, done: true}
        - {action: verify_generation, generation: 7, kernel_validate: true, done: true}
        - {action: write, attribute: tsm/accept, value: '1', done: true}
        - {action: bind, driver: nvidia, done: true}
    disruptive:
      description: Whether the plan leaves LOCKED or RUN.
      type: bool
    failed:
      description: Whether this device failed (refused before any write, or a write failed).
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
    unverified:
      description: The device was accepted with O(devices[].unverified=true).
      type: bool
      returned: when it was
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
trust:
  description:
    - The result of O(trust), as M(coco.tdisp.device_trust) returns it (C(changed), C(devices), C(policy_recorded), C(errors)).
    - C(skipped) says why nothing was set (a state change failed).
  returned: with O(trust)
  type: dict
facts:
  description:
    - The host after the writes, as M(coco.tdisp.tdisp_device_info) returns it with
      O(coco.tdisp.tdisp_device_info#module:all_devices=true) (C(tsms), C(devices), C(missing), C(ignored), C(ledger)).
  returned: with O(facts=true), when no device failed
  type: dict
diff:
  description:
    - C(before.devices) and C(after.devices), the device dicts of the task's devices.
    - With O(trust), a list of two such dicts, the state changes and then the trust levels.
  returned: in diff mode
  type: raw
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.constants import DEFAULT_MAX_OBJECT_SIZE, check_endpoint
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.evidence import client_factory
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.info import gather, parse_nonce
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.binding import add_acceptance
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.module import HostRun, run
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.options import RELIABILITY, TRUST_DEVICE_OPTIONS, argument_spec
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.plan_state import converge_state
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.plan_trust import converge_state_and_trust
from ansible_collections.coco.tdisp.plugins.module_utils._abi.names import TDISP_STATES


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(
            devices=dict(type='list', elements='dict', required=True, options=dict(
                bdf=dict(type='str', required=True),
                state=dict(type='str', required=True, choices=list(TDISP_STATES)),
                generation=dict(type='int'),
                identity=dict(type='str'),
                unverified=dict(type='bool', default=False),
                rejected=dict(type='dict'),
            )),
            tsm=dict(type='str'),
            unbind_driver=dict(type='bool', default=False),
            rebind_driver=dict(type='bool', default=True),
            allow_disruptive=dict(type='bool', default=False),
            trust=dict(type='dict', options=dict(
                devices=dict(type='list', elements='dict', default=[], options=TRUST_DEVICE_OPTIONS),
                allow_disruptive=dict(type='bool', default=False),
                policy_version=dict(type='str'),
            )),
            facts=dict(type='bool', default=False),
            include_evidence=dict(type='bool', default=False),
            nonce=dict(type='str'),
            **RELIABILITY
        ),
        supports_check_mode=True,
    )
    p = module.params

    def body(host: HostRun) -> dict:
        options = host.options(tsm=p['tsm'], unbind_driver=p['unbind_driver'], rebind_driver=p['rebind_driver'],
                               allow_disruptive=p['allow_disruptive'])
        factory = client_factory(check_endpoint(p['evidence_endpoint']))
        evidence = None
        if p['include_evidence']:
            if not p['facts']:
                raise TdispError('include_evidence applies to the facts returned after the writes', attribute='include_evidence',
                                 remedy='set facts: true, or drop include_evidence')
            evidence = {'types': None, 'nonce': parse_nonce(p['nonce']), 'max_object_size': DEFAULT_MAX_OBJECT_SIZE}
        ledger = host.ledger((p['trust'] or {}).get('policy_version'))
        sysfs = host.sysfs()
        if p['trust'] is not None:
            result = converge_state_and_trust(sysfs, ledger, p['devices'], options, factory, p['trust'])
        else:
            result = converge_state(sysfs, ledger, p['devices'], options, factory)
        if p['facts'] and not result.get('failed'):
            sysfs.invalidate()  # read afresh after the writes
            facts = gather(sysfs, evidence=evidence, evidence_factory=factory if evidence else None, all_devices=True)
            facts['ledger'] = ledger.as_dict()
            add_acceptance(facts['devices'], ledger)
            result['facts'] = facts
        unverified = [d['bdf'] for d in p['devices'] if d.get('unverified') and d.get('state') == 'run']
        for dev in result['devices']:
            if dev['bdf'] in unverified:
                dev['unverified'] = True
        if unverified:
            result.setdefault('warnings', []).append('unverified: true accepts %s without verified evidence' % ', '.join(unverified))
        return result

    run(module, HostRun(p, module.check_mode)(body))


if __name__ == '__main__':
    main()
