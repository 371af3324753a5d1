"""Print the demo's summary from the rollout and audit reports (make demo)."""

import glob
import json
import os
import sys


def main(reports: str) -> int:
    with open(os.path.join(reports, "rollout-2026.11.1.json")) as f:
        rollout = json.load(f)
    audit_path = sorted(glob.glob(os.path.join(reports, "audit-*.json")))[-1]
    with open(audit_path) as f:
        audit = json.load(f)
    hosts = rollout["hosts"]
    converged = [h["host"] for h in hosts if h["converged"] and not h["failed"]]
    failed = [h for h in hosts if h["failed"]]
    print("rollout of policy %s:" % rollout["policy_version"])
    print("  hosts converged: %d of %d reached; %d not reached (the rollout stopped at a gate)"
          % (len(converged), len(hosts), len(rollout["not_reached"])))
    for h in failed:
        print("  failed: %s" % h["failure"][:300])
    for h in hosts:
        for note in h.get("gate_notes", []):
            print("  gate: %s" % note[:300])
    print("fleet audit (%s):" % os.path.basename(audit_path))
    print("  hosts: %(audited)d audited, %(compliant)d compliant, %(with_drift)d with drift" % audit["hosts"])
    print("  devices accepted into the TCB (RUN, trust tcb): %d" % audit["devices"]["accepted"])
    print("  devices per trust level: %s" % ", ".join("%s %d" % kv for kv in audit["devices"]["by_trust_level"].items()))
    print("  findings by kind: %s" % ", ".join("%s %d" % kv for kv in audit["findings"]["by_kind"].items()))
    print("reports: %s" % reports)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
