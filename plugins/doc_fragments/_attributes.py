# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private documentation fragments shared by the coco.tdisp modules (not a public API)."""

from __future__ import annotations


class ModuleDocFragment:
    # Standard attributes of every coco.tdisp module.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
      - This assumes that the system controlled/queried by the module has not changed in a relevant way.
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
"""

    # Modules that only read.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
"""

    # Modules that change device state (tdisp_device, device_trust).
    ACTION_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - In check mode nothing on the host is written, opened for writing or created (not even the ledger).
        The planned actions are returned with C(done=false) and C(after) is the device dict the kernel's rules predict.
  diff_mode:
    support: full
    details:
      - The diff is structured, C(before.devices) and C(after.devices), with the same device dicts that
        M(coco.tdisp.tdisp_device_info) returns, for the devices of the task.
  idempotent:
    support: full
    details:
      - The module reads the live kernel state every time and writes only what differs; a second identical run reports
        C(changed=false) and writes nothing.
"""

    # Action plugins that run on the controller (tdisp_acceptance, write_report).
    CONTROLLER_ACTION = r"""
options: {}
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
"""

    # The modules of the action group (meta/runtime.yml): module_defaults for group/coco.tdisp.tdisp.
    ACTION_GROUP = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/coco.tdisp.tdisp) in C(module_defaults) to set defaults for this module, such as
      C(sysfs_root), C(state_dir) and C(evidence_endpoint), once for every coco.tdisp module of a play.
    support: full
    membership:
      - coco.tdisp.tdisp
"""

    PLATFORM = r"""
options: {}
attributes:
  platform:
    support: full
    platforms: Linux
    details:
      - Confidential VM guests (Intel TDX, AMD SEV-SNP, Arm CCA) running a kernel with the PCI TSM guest interface,
        or the coco.tdisp simulator through O(sysfs_root).
"""

    # The sysfs root option of every module.
    SYSFS = r"""
options:
  sysfs_root:
    description:
      - The sysfs mount to read and write, V(/sys) on a real host.
      - Point it at a simulated host (the C(tdisp_sysfs_root) inventory variable of the coco.tdisp simulator,
        C(<mount>/<host>/sys)) for tests and rehearsals.
      - Every path the module uses is built below this root from validated names; a symlink that leads out of it is refused.
    type: path
    default: /sys
"""

    # The host-side ledger of the state-changing modules.
    STATE_DIR = r"""
options:
  state_dir:
    description:
      - Directory of the host-side ledger C(ledger.json), written atomically and never in check mode.
      - It records the drivers the collection unbound (so that a later run rebinds them even after a failed run),
        the trust levels it set and the evidence generation it accepted (to detect a level the kernel reset).
      - Created with mode 0700 the first time there is something to record.
    type: path
    default: /var/lib/coco-tdisp
"""

    # The evidence endpoint.
    EVIDENCE = r"""
options:
  evidence_endpoint:
    description:
      - Where device evidence is read. V(netlink) is the kernel's C(device-evidence) (or older C(pci-tsm))
        generic netlink family; this needs C(CAP_NET_ADMIN), so run the task as root.
      - V(unix:/path/to/host.sock) is a simulated host's evidence socket (the C(tdisp_evidence_endpoint) inventory variable
        of the coco.tdisp simulator).
    type: str
    default: netlink
"""

    # The reliability options of the host modules (docs/reliability.md).
    RELIABILITY = r"""
options:
  run:
    description:
      - The run lock of the host, C(<state_dir>/run.lock). One run at a time per host; a second one fails at once with one
        line naming the holder (pid, run id, start time, policy version).
      - Without O(run.id) the lock lasts this module call. With it, the lock is a lease that every call of that run renews and
        the last one releases (O(run.release)), so that the several module runs of one host's acceptance hold it throughout.
      - A stale lock (its process is gone and, for a lease, it expired or O(run.break) names it; or from before a reboot) is
        broken and reported in RV(run_lock).
      - Check mode writes nothing, but still fails when another live run holds the host. M(coco.tdisp.tdisp_device_info)
        never takes the lock; with O(run.id) it fails when another live run holds the host.
    type: dict
    suboptions:
      id:
        description: The controller's run id, letters, digits and C(._:-), up to 64 characters.
        type: str
      policy_version:
        description: The policy version the run applies, recorded in the lock and in the acceptance records.
        type: str
      lease:
        description: Seconds (10 to 86400) the lease lasts after each call of the run.
        type: int
        default: 600
      release:
        description: Release the lease at the end of this call (the last module run of the host).
        type: bool
        default: false
      break:
        description: The run id of a lease that may be broken before it expires, because that run is known to be dead.
        type: str
  deadline:
    description:
      - Seconds (1 to 86400) this module run may take; it then fails with one line, before its next write. It also stops
        when its parent process went away (the controller was killed).
    type: int
    default: 900
  rehearsal:
    description:
      - Accept a O(sysfs_root) that is neither sysfs nor the coco.tdisp simulator's filesystem, a plain directory tree shaped like
        sysfs (benchmarks, rehearsals). Without it such a root is refused, since its facts are not the kernel's.
      - The result then carries RV(rehearsal=true). Never set it against a real host.
    type: bool
    default: false
"""
