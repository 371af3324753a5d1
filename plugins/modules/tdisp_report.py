#!/usr/bin/python
# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: tdisp_report
short_description: Build and write a fleet report on the controller, and gate a rollout wave
version_added: 0.2.0
description:
  - Builds the fleet report of O(kind) from the per-host records the roles leave (P(coco.tdisp.acceptance#role)'s
    C(tdisp_acceptance_summary), P(coco.tdisp.audit#role)'s C(tdisp_audit), P(coco.tdisp.revoke#role)'s
    C(tdisp_revoke_summary)) and writes it as JSON under O(dir). The records are read from the hosts' facts first and then
    from their variables, so the playbooks work with C(INJECT_FACTS_AS_VARS=False).
  - Report files are named C(rollout-<policy version>.json), C(audit-<UTC time>.json) and C(revoke-<UTC time>.json); a
    check-mode rollout or revocation writes its plan with the suffix C(-check).
  - With O(kind=rollout) and O(gate=true) it also judges the current wave (C(ansible_play_batch)) and fails, naming every
    reason in one line, when a host failed or was lost, a device was refused, more devices than O(gate_max_contraindicated)
    were contraindicated, or (with O(gate_require_expected)) an expected device is missing.
  - With O(kind=draft) it writes a drafted reference manifest (O(name), O(manifest)) as YAML, through the safe YAML dumper only
    (device values are quoted and escaped, lists indented as yamllint and ansible-lint want them); O(prepare=true) only creates
    the directory and checks that the file can be written, so that a play can refuse before it touches a device.
  - Every JSON report carries C(provenance) (collection version, policy version and digest, manifest digests, controller host,
    user, time, check mode) and follows the published schema C(docs/report-schema.json). O(formats) also renders it as Markdown
    (C(.md)), JUnit XML (C(.junit.xml)) and a self-contained HTML page (C(.html)) beside the JSON file; see C(docs/reports.md).
  - With O(gate=true) the report lists the waves gated so far in this run (C(waves)), read back from the report it rewrites;
    the waves of an earlier run are not kept.
  - An action plugin that runs in the controller process; no module runs on any host. Use it with C(run_once).
author:
  - coco.tdisp developers (@coco-tdisp)
options:
  kind:
    description: The report to build.
    type: str
    required: true
    choices: [rollout, audit, revoke, draft]
  dir:
    description:
      - The report directory on the controller, created as needed. A relative path is taken from the directory
        C(ansible-playbook) runs in. The default is C(tdisp-reports) in that directory, never a path inside the collection.
    type: path
  path:
    description: With O(kind=draft), the file to write; the default is C(<dir>/drafts/<name>.yml).
    type: path
  hosts:
    description: The hosts the report is about; those without a record are listed as not reached (not audited). The default
      is C(ansible_play_hosts_all).
    type: list
    elements: str
  fact:
    description: The per-host record to read; the default is the one of O(kind) named above.
    type: str
  policy_version:
    description: With O(kind=rollout), the policy version rolled out (the report and its file name carry it).
    type: str
  match:
    description: With O(kind=revoke), the JMESPath expression of the revocation.
    type: str
  level:
    description: With O(kind=revoke), the trust level the devices were lowered to.
    type: raw
  gate:
    description: With O(kind=rollout), judge the current wave after writing the report.
    type: bool
    default: false
  gate_max_contraindicated:
    description: The most contraindicated devices a wave may have.
    type: int
    default: 0
  gate_require_expected:
    description: Fail the wave when an expected device is missing.
    type: bool
    default: true
  gate_fail:
    description:
      - With O(gate=true), fail the task when the wave fails its gate. With V(false) the task returns RV(gate_passed=false) and
        the play stops the rollout itself, after it has printed the summary and published it with C(set_stats), as
        C(playbooks/rollout.yml) does.
    type: bool
    default: true
  name:
    description: With O(kind=draft), the manifest name.
    type: str
  manifest:
    description: With O(kind=draft), the drafted manifest.
    type: dict
  prepare:
    description: With O(kind=draft), only create the directory and check that the file can be written.
    type: bool
    default: false
  mode:
    description: The file's permissions, an octal string.
    type: str
    default: '0644'
  formats:
    description: The formats to write; the JSON report is always written.
    type: list
    elements: str
    choices: [json, markdown, junit, html]
    default: [json]
  policy:
    description: The policy whose version and digest the provenance records; the default is C(tdisp_policy) of the first host
      reported.
    type: raw
  manifests:
    description: The reference manifests whose digests the provenance records; the default is C(reference_manifests) of the
      first host reported.
    type: raw
attributes:
  check_mode:
    support: full
    details:
      - Reports are controller files, not changes to the fleet; a check-mode rollout or revocation writes its plan. A draft is
        not written in check mode.
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
seealso:
  - module: coco.tdisp.write_report
"""

EXAMPLES = r"""
- name: Write the rollout report and gate the wave
  coco.tdisp.tdisp_report:
    kind: rollout
    policy_version: "{{ tdisp_policy.version }}"
    gate: true
    formats: [json, markdown, junit, html]
  run_once: true

- name: Write the fleet audit report
  coco.tdisp.tdisp_report:
    kind: audit
    hosts: "{{ query('inventory_hostnames', 'all') }}"
  run_once: true
"""

RETURN = r"""
path:
  description: The absolute path of the report (or of the draft).
  returned: always
  type: str
paths:
  description: The file written for each format (not for O(kind=draft)).
  returned: success
  type: dict
  sample: {json: /srv/tdisp/rollout-2026.11.1.json, html: /srv/tdisp/rollout-2026.11.1.html}
report:
  description: The report as written (not for O(kind=draft)).
  returned: success
  type: dict
msg:
  description: One line saying what the report holds, or why the wave failed its gate.
  returned: always
  type: str
summary:
  description: The fleet summary, a few lines, as the playbooks print it at the end of a run.
  returned: success, not for O(kind=draft)
  type: list
  elements: str
stats:
  description:
    - The per-run aggregate the playbooks publish with C(set_stats) (AWX/AAP job artifacts) as C(tdisp_rollout_stats),
      C(tdisp_audit_stats) or C(tdisp_revoke_stats) - C(kind), C(title), C(counts) (hosts and devices reached, converged,
      failed, at tcb, rejected, audited, compliant, with drift...), C(trust_levels), C(findings), C(not_reached), C(reports)
      (the path of each format), C(waves) and C(passed) (rollout), C(passed) (audit).
  returned: success, not for O(kind=draft)
  type: dict
host_lines:
  description: One line per reported host saying what happened on it (accepted at tcb, at other levels, rejected by which rule,
    failed; or the audit's drift), by host name.
  returned: success, not for O(kind=draft)
  type: dict
problem_hosts:
  description: The hosts with drift (audit), or that failed or had a device rejected or refused (rollout).
  returned: success, not for O(kind=draft)
  type: list
  elements: str
gate_passed:
  description: Whether the wave passed its gate.
  returned: with O(kind=rollout) and O(gate=true)
  type: bool
final:
  description: The rollout ends with this wave (it was the last, or it failed its gate); the play prints the fleet summary.
  returned: with O(kind=rollout) and O(gate=true)
  type: bool
"""
