#!/usr/bin/python
# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: write_report
short_description: Write a report file on the controller
version_added: 0.1.0
description:
  - Writes O(content) to O(path) on the controller, whichever host the task runs for, as the playbooks of this collection do
    for their rollout, audit and revocation reports. Missing parent directories are created (mode 0755).
  - The file is replaced atomically (a temporary file in the same directory, then a rename), and only when its content or mode
    differs.
  - An action plugin that runs in the controller process; no module runs on any host. Use it with C(run_once) for a fleet-wide
    report.
author:
  - coco.tdisp developers (@coco-tdisp)
options:
  path:
    description: The report file on the controller. A relative path is taken from the directory C(ansible-playbook) runs in.
    type: path
    required: true
  content:
    description: The text to write, for example C({{ report | to_nice_json }}).
    type: str
    required: true
  mode:
    description: The file's permissions, an octal string.
    type: str
    default: '0644'
attributes:
  check_mode:
    support: full
    details:
      - Writes nothing; reports whether the file would change. The playbooks of this collection set C(check_mode=false) on
        the tasks that write the plan of a check-mode run.
  diff_mode:
    support: full
  idempotent:
    support: full
  platform:
    support: full
    platforms: posix
extends_documentation_fragment:
  - action_common_attributes
  - action_common_attributes.flow
  - coco.tdisp._attributes
  - coco.tdisp._attributes.controller_action
seealso:
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Write the audit report
  coco.tdisp.write_report:
    path: "tdisp-reports/audit-{{ tdisp_policy.version }}.json"
    content: "{{ report | to_nice_json(indent=1) }}"
  run_once: true
"""

RETURN = r"""
path:
  description: The absolute path of the report.
  returned: always
  type: str
size:
  description: The length of the content in bytes.
  returned: always
  type: int
sha256:
  description: The SHA-256 digest of the content.
  returned: always
  type: str
"""
