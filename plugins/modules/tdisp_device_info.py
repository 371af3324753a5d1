#!/usr/bin/python
# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: tdisp_device_info
short_description: Report TSMs and the TDISP state, trust level and evidence of PCIe devices
version_added: 0.1.0
description:
  - Lists the TEE Security Managers (TSMs) registered in C(/sys/class/tsm) with their mode
    (V(devsec) for the guest TSM of a confidential VM, V(link) for a host TSM, V(none)).
  - Lists every PCI device that has a C(tsm/) directory (or the devices named in O(bdfs)) with one dict per device, the same
    dict that M(coco.tdisp.tdisp_device) and M(coco.tdisp.device_trust) return as C(before) and C(after).
  - The TDISP state is derived from the guest attributes as the kernel shows them, C(tsm/lock) empty means V(unlocked),
    C(tsm/lock=tsmN) with C(tsm/accept=0) means V(locked), with C(tsm/accept=1) means V(run).
    The kernel does not show a device that fell into TDISP ERROR after accept; compare the evidence generation
    (O(include_evidence)) and the trust level with what you verified.
  - The trust ABI is probed per device. A per-device C(trust) file (integer 0 to 3), a per-device C(trust_policy) file
    (C(default|disabled|adversary|full)), or the C(trust) parameter of the driver's module (C(none|adversary|auto|tcb)).
    The level is reported in the collection's words V(blocked), V(adversary), V(normal), V(tcb).
  - Nothing in a sysfs file can make the module fail. A missing attribute, garbage bytes, a lock holder that is not C(tsm<N>),
    an C(accept) that is not 0 or 1, or a trust value out of range leaves that field null (or the state V(unknown))
    and the reason under C(unknown).
  - With O(include_evidence=true) each device also gets its evidence (digests, the raw objects base64-encoded, and the
    parsed VCA, measurements, certificate chains and TDISP interface report). A malformed object is reported under
    C(evidence.errors) for that device only.
author:
  - coco.tdisp developers (@coco-tdisp)
options:
  bdfs:
    description:
      - Only these PCI devices (C(DDDD:BB:DD.F), lower-case hex as the kernel prints them), in this order.
      - A named device without a C(tsm/) directory is still reported (with C(tsm_side=none)); a name that does not exist
        is listed in RV(missing) instead of failing.
      - Without it, every device with a C(tsm/) directory is listed, sorted by name.
    type: list
    elements: str
  all_devices:
    description:
      - List every PCI endpoint of the host, not only the devices with a C(tsm/) directory, so that a policy can also give
        paravirtual and other non-TDISP devices (virtio) their trust level, and the lockout preflight can see every storage
        and network device. Bridges (PCI base class C(0x06)) are left out.
      - Ignored when O(bdfs) is given.
    type: bool
    default: false
  state_dir:
    description:
      - The directory of the host-side ledger that M(coco.tdisp.tdisp_device) and M(coco.tdisp.device_trust) keep. When given,
        the ledger is returned as RV(ledger) (read only; nothing is created), and each device's RV(devices[].acceptance).
    type: path
  vendor:
    description: Only devices with this PCI vendor id (V(0x10de) or V(10de)).
    type: str
  device:
    description: Only devices with this PCI device id (V(0x2330) or V(2330)).
    type: str
  tsm:
    description: Only devices locked, connected or bound by this TSM (V(tsm1)).
    type: str
  include_evidence:
    description:
      - Also read each listed device's evidence over the evidence endpoint. Evidence exists only while a device has a TSM
        context (locked, run, or connected); other devices get one C(evidence.errors) entry saying so.
      - Needs C(CAP_NET_ADMIN) on a real host (run as root).
    type: bool
    default: false
  evidence_types:
    description: The evidence objects to read, by default all of them.
    type: list
    elements: str
    choices: [cert0, cert1, cert2, cert3, cert4, cert5, cert6, cert7, vca, measurements, report]
  nonce:
    description:
      - A nonce for the evidence read, as a hexadecimal string (at most 32 bytes for the C(device-evidence) family).
      - Kernels that cannot refresh evidence on a nonce refuse it (C(EOPNOTSUPP)); the error is reported per device.
    type: str
  max_object_size:
    description:
      - Objects larger than this many bytes are reported with their digest and length only (C(data=null)); they are
        still parsed.
    type: int
    default: 262144
extends_documentation_fragment:
  - coco.tdisp._attributes
  - coco.tdisp._attributes.info_module
  - coco.tdisp._attributes.platform
  - coco.tdisp._attributes.action_group
  - coco.tdisp._attributes.sysfs
  - coco.tdisp._attributes.evidence
  - coco.tdisp._attributes.reliability
notes:
  - Reads each attribute of each device once. One call handles all the devices of a host; never loop over devices.
  - A TSM without C(pci_mode) (mainline kernels) is reported as V(link) when some device shows host C(tsm/) attributes, else
    as V(unknown) with the reason.
seealso:
  - module: coco.tdisp.tdisp_device
  - module: coco.tdisp.device_trust
"""

EXAMPLES = r"""
- name: Read every TDISP-capable device of the host
  coco.tdisp.tdisp_device_info:
  register: tdisp

- name: Show the devices that are not accepted yet
  ansible.builtin.debug:
    msg: "{{ tdisp.devices | rejectattr('tdisp_state', 'equalto', 'run') | map(attribute='bdf') | list }}"

- name: Read two devices with their evidence, against a simulated host
  coco.tdisp.tdisp_device_info:
    bdfs: ['10000:01:00.0', '10001:03:00.0']
    include_evidence: true
    evidence_types: [cert0, vca, measurements, report]
    sysfs_root: "{{ tdisp_sysfs_root }}"
    evidence_endpoint: "{{ tdisp_evidence_endpoint }}"
  register: evidence

- name: Only NVIDIA devices under the guest TSM tsm1
  coco.tdisp.tdisp_device_info:
    vendor: '0x10de'
    tsm: tsm1
"""

RETURN = r"""
run_lock:
  description: The run lock, when O(run.id) is given (never taken here), C(held=false), C(run_id), C(broken) and C(released).
  returned: with O(state_dir) and O(run.id)
  type: dict
rehearsal:
  description: O(rehearsal) was set; the facts are from a plain tree, not a kernel.
  returned: with O(rehearsal=true)
  type: bool
ledger:
  description:
    - The host-side ledger, when O(state_dir) is given; empty (C(devices={}), C(policy=null)) when there is none yet.
    - C(devices) maps each device to what the collection recorded (C(unbound_driver), C(trust_level), C(trust_abi),
      C(generation), C(pending_rebind), C(updated)); C(policy) is C({version, applied}) of the last policy applied.
  returned: when O(state_dir) is given
  type: dict
  sample: {"devices": {"0000:41:00.0": {"trust_level": "tcb", "generation": 7}}, "policy": {"version": "2026.11.1"}}
tsms:
  description: The registered TSMs.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The TSM class device name.
      type: str
      sample: tsm1
    mode:
      description: V(devsec) (guest), V(link) (host), V(none), or V(unknown) with the reason in C(unknown.mode).
      type: str
      sample: devsec
    unknown:
      description: Field name to the reason it could not be read.
      type: dict
      sample: {}
devices:
  description: One dict per device (the contract of docs/internals.md).
  returned: always
  type: list
  elements: dict
  contains:
    bdf:
      description: The PCI device name.
      type: str
      sample: '0000:41:00.0'
    acceptance:
      description:
        - With O(state_dir), the device's acceptance record in the ledger, C(committed) (a committed record exists),
          C(matches) (the device reads RUN and, with O(include_evidence=true), its live generation is the committed one; null
          when no evidence was read; false for a device in RUN without a committed record, an unexplained state),
          C(generation), C(identity), C(policy_version), C(unverified) and C(pending_step) (the step of an unfinished
          transaction a killed run left, or null).
      type: dict
      returned: with O(state_dir)
    vendor:
      description: PCI vendor id as sysfs prints it; null when unreadable.
      type: str
      sample: '0x10de'
    device:
      description: PCI device id.
      type: str
      sample: '0x2330'
    class:
      description: PCI class code.
      type: str
      sample: '0x030200'
    subsystem_vendor:
      description: PCI subsystem vendor id.
      type: str
      sample: '0x10de'
    subsystem_device:
      description: PCI subsystem device id.
      type: str
      sample: '0x16c1'
    driver:
      description: The bound driver, null when none is bound.
      type: str
      sample: nvidia
    driver_override:
      description: The driver_override, null when unset.
      type: str
      sample: null
    tsm_side:
      description: Which C(tsm/) attributes exist, V(guest) (lock, accept), V(host) (connect, bound), V(both) or V(none).
      type: str
      sample: guest
    lock_holder:
      description: The TSM that locked the device (C(tsm/lock)), null when unlocked.
      type: str
      sample: tsm1
    accepted:
      description: C(tsm/accept) as a boolean; null when absent or unreadable.
      type: bool
      sample: true
    connected:
      description: Host side, the TSM in C(tsm/connect); null otherwise.
      type: str
      sample: null
    bound:
      description: Host side, the TSM in C(tsm/bound); null otherwise.
      type: str
      sample: null
    tdisp_state:
      description: V(unlocked), V(locked), V(run) or V(unknown) (reason in C(unknown.tdisp_state)).
      type: str
      sample: run
    trust_abi:
      description: The trust interface found, V(trust), V(trust_policy), V(module_param) or V(none).
      type: str
      sample: trust
    trust_level:
      description: V(blocked), V(adversary), V(normal), V(tcb), or null (reason in C(unknown.trust_level)).
      type: str
      sample: tcb
    trust_raw:
      description: The raw trust value read, for audits.
      type: str
      sample: '3'
    unknown:
      description: Field name to a one-line reason why it is null or unknown (missing file, garbage, errno).
      type: dict
      sample: {}
    evidence:
      description:
        - Only with O(include_evidence=true).
        - C(generation) and C(family) of the read; C(objects) maps each object type to C(digest) (C(sha384:<hex>)), C(length)
          and C(data) (base64, null above O(max_object_size)).
        - C(vca), C(measurements), C(certificates) (per slot) and C(interface_report) are the parsed objects.
        - C(errors) lists C({object, msg}) for each object that could not be read or parsed (C(object=*) for the whole read).
      type: dict
      returned: when include_evidence is true
      sample:
        generation: 7
        family: device-evidence
        objects:
          report: {digest: 'sha384:9f86d0...', length: 76, data: 'AQAAAAAA...'}
        errors: []
missing:
  description: Names given in O(bdfs) that are not PCI devices on this host.
  returned: always
  type: list
  elements: str
  sample: []
ignored:
  description: Entries of C(bus/pci/devices) that are not valid PCI device names and were not read.
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.constants import DEFAULT_MAX_OBJECT_SIZE, TYPE_NAMES, check_endpoint
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.evidence import client_factory
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.info import gather, parse_nonce
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.ledger import Ledger
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.binding import add_acceptance
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.module import HostRun, run
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.options import RELIABILITY, argument_spec


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(
            bdfs=dict(type='list', elements='str'),
            vendor=dict(type='str'),
            device=dict(type='str'),
            tsm=dict(type='str'),
            include_evidence=dict(type='bool', default=False),
            evidence_types=dict(type='list', elements='str', choices=list(TYPE_NAMES)),
            nonce=dict(type='str'),
            max_object_size=dict(type='int', default=DEFAULT_MAX_OBJECT_SIZE),
            all_devices=dict(type='bool', default=False),
            state_dir=dict(type='path'),  # no default here: the ledger is returned only when asked for
            **RELIABILITY
        ),
        supports_check_mode=True,
    )
    p = module.params

    def body(host: HostRun) -> dict:
        evidence = None
        factory = None
        if p['include_evidence']:
            if p['max_object_size'] < 0:
                raise TdispError('max_object_size must be 0 or more', attribute='max_object_size')
            factory = client_factory(check_endpoint(p['evidence_endpoint']))
            evidence = {'types': p['evidence_types'], 'nonce': parse_nonce(p['nonce']), 'max_object_size': p['max_object_size']}
        result = gather(host.sysfs(), bdfs=p['bdfs'], vendor=p['vendor'], device=p['device'], tsm=p['tsm'],
                        evidence=evidence, evidence_factory=factory, all_devices=p['all_devices'])
        if p['state_dir'] is not None:
            ledger = Ledger(p['state_dir'])
            result['ledger'] = ledger.as_dict()
            add_acceptance(result['devices'], ledger)
        result['changed'] = False
        return result

    run(module, HostRun(p, module.check_mode, read_only=True)(body), diff=False)


if __name__ == '__main__':
    main()
