# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Fleet report filters; documented in audit_report.yml beside this one."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.coco.tdisp.plugins.plugin_utils import _report


def audit_report(audits: t.Any, hosts: t.Any = None) -> dict[str, t.Any]:
    """One fleet audit document from the hosts' tdisp_audit facts."""
    if hosts is not None and not (isinstance(hosts, list) and all(isinstance(h, str) for h in hosts)):
        raise AnsibleFilterError('coco.tdisp.audit_report: hosts must be a list of host names')
    try:
        return _report.fleet_audit(audits, hosts)
    except _report.ReportError as err:
        raise AnsibleFilterError('coco.tdisp.audit_report: %s' % err) from None


class FilterModule:
    """coco.tdisp report filters."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {'audit_report': audit_report}
