#!/usr/bin/python
# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: tdisp_policy
short_description: Validate an acceptance policy and its reference manifests on the controller
version_added: 0.3.0
description:
  - Checks O(policy) (the value of C(tdisp_policy)) and O(manifests) before any host is read, and fails with one line per
    problem, each naming the rule and the key at fault (unknown keys anywhere in a rule, C(require.interface) included; match
    expressions beyond the size and nesting limits; reference manifests with mistakes).
  - An action plugin that runs in the controller process; no module runs on any host. Use it with C(run_once).
author:
  - coco.tdisp developers (@coco-tdisp)
options:
  policy:
    description: The acceptance policy (docs/policy.md).
    type: raw
    required: true
  manifests:
    description: The reference manifests, by name.
    type: raw
    default: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
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
"""

EXAMPLES = r"""
- name: Check the policy before any host is touched
  coco.tdisp.tdisp_policy:
    policy: "{{ tdisp_policy }}"
    manifests: "{{ reference_manifests | default({}) }}"
  run_once: true
  register: checked_policy
"""

RETURN = r"""
version:
  description: The policy version.
  returned: success
  type: str
policy:
  description: The normalised policy (defaults filled in, trust levels as names).
  returned: success
  type: dict
warnings_found:
  description: The validation warnings (also shown as warnings).
  returned: success
  type: list
  elements: str
problems:
  description: Every problem, one line each.
  returned: failure
  type: list
  elements: str
"""
