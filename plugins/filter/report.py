# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Report filters; documented in audit_report.yml and audit_host.yml beside this one.

Each filter is one call into ``plugin_utils/_reports``.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.coco.tdisp.plugins.plugin_utils import _reports
from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import call


def audit_report(audits: t.Any, hosts: t.Any = None) -> dict[str, t.Any]:
    """One fleet audit document from the hosts' tdisp_audit facts."""
    return call(AnsibleFilterError, 'coco.tdisp.audit_report', _reports.fleet_audit, audits, hosts)


def audit_host(info: t.Any, policy: t.Any, manifests: t.Any = None, host: t.Any = None, nonce: t.Any = None,
               now: t.Any = None) -> dict[str, t.Any]:
    """One host's audit (the tdisp_audit fact) from what tdisp_device_info read."""
    return call(AnsibleFilterError, 'coco.tdisp.audit_host', _reports.host_audit, host, info, policy, manifests, nonce, now)


class FilterModule:
    """coco.tdisp report filters."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {'audit_report': audit_report, 'audit_host': audit_host}
