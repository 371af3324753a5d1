"""Print the demo's summary from the rollout and audit reports (make demo).

The summary is the collection's own (plugins/plugin_utils/_render/summary.py), the one the
playbooks print at the end of a rollout and an audit; this only finds the demo's two reports.
"""

import glob
import json
import os
import sys

from ansible_collections.coco.tdisp.plugins.plugin_utils._render import summary


def main(reports: str) -> int:
    rollout = sorted(glob.glob(os.path.join(reports, "rollout-*.json")))
    audit = sorted(glob.glob(os.path.join(reports, "audit-*.json")))
    for path in [p for p in rollout if not p.endswith("-check.json")][-1:] + audit[-1:]:
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
        print("\n".join(summary.fleet_lines(report, {"json": path})))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
