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
