"""The simulator's truth for the fault-matrix targets (tests/integration/targets/fault_matrix_*).

    python3 fault_matrix.py invariant [HOST...]        no device at tcb unless in RUN, at the generation of a committed record
    python3 fault_matrix.py lost [HOST...]              records lost: a device in RUN with no acceptance record or journal entry
    python3 fault_matrix.py converged HOST...           every TDISP device RUN at tcb with a committed record, virtio at normal
    python3 fault_matrix.py silent REPORT [HOST...]     silent oks: a device the report calls converged (or a host it calls
                                                        converged) that the simulator does not show there
    python3 fault_matrix.py count NAME [N]              add N (default 1) to the counter NAME in $WORK/counts.json

Each check prints one line per violation and exits 1 when there is any. The simulator is read with
``tdisp-sim list --json``; the ledgers from ``$TDISP_SIM_RUN_DIR/state/<host>/ledger.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

TCB = 3


def fleet() -> dict:
    out = subprocess.run([os.environ["TDISP_SIM"], "list", "--mount", os.environ["TDISP_SIM_MOUNT"], "--json"],
                         check=True, capture_output=True, text=True).stdout
    return {h["name"]: {d["bdf"]: d for d in h["devices"]} for h in json.loads(out)["hosts"]}


def ledger(host: str) -> dict:
    path = os.path.join(os.environ["TDISP_SIM_RUN_DIR"], "state", host, "ledger.json")
    try:
        with open(path) as f:
            return json.load(f).get("devices") or {}
    except FileNotFoundError:
        return {}


def _devices(args: list):
    """(host, bdf, simulated device, ledger record) for every device of the hosts in ``args`` (all when empty)."""
    sim = fleet()
    for host in args or sorted(sim):
        records = ledger(host)
        for bdf, d in sorted(sim[host].items()):
            yield host, bdf, d, records.get(bdf) or {}


def committed(record: dict, generation: int) -> bool:
    acc = record.get("acceptance") if isinstance(record.get("acceptance"), dict) else {}
    return acc.get("state") == "committed" and acc.get("generation") == generation


def invariant(args: list) -> list:
    return ["%s %s: trust tcb but TDISP %s, accepted %s, generation %s, record %s" % (
        host, bdf, d.get("tdisp_state"), d.get("accepted"), d.get("generation"), json.dumps(record.get("acceptance")))
        for host, bdf, d, record in _devices(args)
        if d.get("trust") == TCB and not (d.get("tdisp_state") == "run" and d.get("accepted") and committed(record, d.get("generation")))]


def lost(args: list) -> list:
    bad = []
    for host, bdf, d, record in _devices(args):
        journal = record.get("journal") if isinstance(record.get("journal"), dict) else {}
        if d.get("tdisp_state") == "run" and not record.get("acceptance") and journal.get("step") not in ("accept", "trust_raise", "bind"):
            bad.append("%s %s: in RUN (generation %s) but the ledger lost its acceptance: %s" % (host, bdf, d.get("generation"), json.dumps(record)))
    return bad


def converged(args: list) -> list:
    bad = []
    for host, bdf, d, record in _devices(args):
        if d.get("tee"):
            ok = (d.get("tdisp_state"), d.get("accepted"), d.get("trust")) == ("run", True, TCB) and \
                committed(record, d.get("generation")) and d.get("driver")
        else:
            ok = d.get("trust") == 2
        if not ok:
            bad.append("%s %s: not converged: TDISP %s, trust %s, driver %s, record %s" % (
                host, bdf, d.get("tdisp_state"), d.get("trust"), d.get("driver"), json.dumps(record.get("acceptance"))))
    return bad


def silent(args: list) -> list:
    with open(args[0]) as f:
        report = json.load(f)
    sim = fleet()
    wanted = set(args[1:])
    bad = []
    for h in report.get("hosts") or []:
        if wanted and h["host"] not in wanted:
            continue
        records = ledger(h["host"])
        live = sim.get(h["host"], {})
        for d in h.get("devices") or []:
            real = live.get(d["bdf"]) or {}
            says_tcb = d.get("trust") == "tcb" and d.get("tdisp_state") == "run" and (h.get("converged") or d.get("converged"))
            if says_tcb and not (real.get("trust") == TCB and committed(records.get(d["bdf"]) or {}, real.get("generation"))):
                bad.append("%s %s: reported converged at tcb, but the simulator has TDISP %s, trust %s" % (
                    h["host"], d["bdf"], real.get("tdisp_state"), real.get("trust")))
        if h.get("converged") and not h.get("check_mode"):
            bad.extend("silent ok: %s" % line for line in converged([h["host"]]))
    return bad


def count(args: list) -> list:
    path = os.path.join(os.environ["WORK"], "counts.json")
    counts = {}
    if os.path.exists(path):
        with open(path) as f:
            counts = json.load(f)
    counts[args[0]] = counts.get(args[0], 0) + (int(args[1]) if len(args) > 1 else 1)
    with open(path, "w") as f:
        json.dump(counts, f, sort_keys=True)
    return []


def main(argv: list) -> int:
    checks = {"invariant": invariant, "lost": lost, "converged": converged, "silent": silent, "count": count}
    if not argv or argv[0] not in checks:
        sys.stderr.write(__doc__)
        return 2
    bad = checks[argv[0]](argv[1:])
    for line in bad:
        print(line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
