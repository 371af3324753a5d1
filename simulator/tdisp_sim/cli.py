"""``tdisp-sim``: start, inspect, fault and stop a simulated fleet (see docs/simulator.md).

Exit codes: 0 success; 1 the simulator refused (a fault the kernel model rejects, ``status`` of a
fleet that is not running); 2 a usage or environment error (one line on stderr saying what to do).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from typing import Any, Optional

from . import control, scenario
from .daemon import FSTYPE, default_run_dir, mount_type, pid_alive, read_pid, unmount

PROG = "tdisp-sim"
SOCK_MAX = 107


class Fail(Exception):
    def __init__(self, msg: str, code: int = 2) -> None:
        super().__init__(msg)
        self.code = code


def _paths(a: argparse.Namespace) -> tuple[str, str]:
    mount = os.path.abspath(a.mount)
    run_dir = os.path.abspath(a.run_dir) if getattr(a, "run_dir", None) else default_run_dir(mount)
    return mount, run_dir


def _sock(run_dir: str) -> str:
    return os.path.join(run_dir, control.SOCKET_NAME)


def _ask(run_dir: str, mount: str, op: str, **args: Any) -> dict:
    """A request to the running daemon, or a one-line error saying what to do."""
    try:
        reply = control.request(_sock(run_dir), op, **args)
    except control.ControlError:
        if mount_type(mount) is not None and not pid_alive(read_pid(run_dir)):
            raise Fail("%s is the stale mount of a simulator that died: run %s stop --mount %s" % (mount, PROG, mount))
        raise Fail("no simulator is running at %s (start one: %s start --scenario NAME --mount %s)" % (mount, PROG, mount))
    return reply


# ---------------------------------------------------------------------------------------------
# start / stop / status
# ---------------------------------------------------------------------------------------------

def _preflight(mount: str, run_dir: str) -> None:
    if not os.path.exists("/dev/fuse") or not stat.S_ISCHR(os.stat("/dev/fuse").st_mode):
        raise Fail("/dev/fuse is missing: load the fuse module (modprobe fuse) or give the container --device /dev/fuse")
    if shutil.which("fusermount3") is None:
        raise Fail("fusermount3 not found: install the fuse3 package (apt-get install fuse3)")
    kind = mount_type(mount)
    pid = read_pid(run_dir)
    if kind is not None:
        if pid_alive(pid):
            raise Fail("a simulator is already running at %s (pid %d): stop it first with %s stop --mount %s" % (mount, pid, PROG, mount))
        if kind == FSTYPE:
            raise Fail("%s is the stale mount of a simulator that died: run %s stop --mount %s, then start again" % (mount, PROG, mount))
        raise Fail("%s is already a mount point (%s): choose another directory" % (mount, kind))
    if pid_alive(pid):
        raise Fail("a simulator with run directory %s is still running (pid %d): %s stop --mount %s" % (run_dir, pid, PROG, mount))
    if os.path.exists(mount):
        if not os.path.isdir(mount):
            raise Fail("%s exists and is not a directory: give a new or empty directory" % mount)
        if os.listdir(mount):
            raise Fail("mount point %s is not empty: give a new or empty directory" % mount)
    if len(_sock(run_dir).encode()) > SOCK_MAX:
        raise Fail("run directory %s is too long for a unix socket path: pass a shorter --run-dir" % run_dir)


def cmd_start(a: argparse.Namespace) -> int:
    mount, run_dir = _paths(a)
    _preflight(mount, run_dir)
    try:
        path = scenario.resolve(a.scenario)
        fleet = scenario.build(scenario.read(str(path)))
    except scenario.ScenarioError as e:
        raise Fail(str(e)) from None
    os.makedirs(mount, exist_ok=True)
    os.makedirs(run_dir, exist_ok=True)
    for stale in ("pid", control.SOCKET_NAME):
        try:
            os.unlink(os.path.join(run_dir, stale))
        except FileNotFoundError:
            pass
    logf = open(os.path.join(run_dir, "daemon.log"), "w")
    cmd = [sys.executable, "-m", "tdisp_sim.daemon", "--scenario", str(path.resolve()), "--mount", mount,
           "--run-dir", run_dir]
    if a.single_thread:
        cmd.append("--single-thread")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                            start_new_session=True, close_fds=True, cwd="/")
    logf.close()
    st = control.wait_for(_sock(run_dir), lambda s: s.get("mounted"), a.timeout, lambda: proc.poll() is None)
    if st is None:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        unmount(mount)
        raise Fail("the simulator did not start: %s (full log: %s)" % (_log_tail(run_dir), os.path.join(run_dir, "daemon.log")))
    ev = ("evidence sockets in %s" % os.path.join(run_dir, "evidence")) if st.get("evidence") else \
         ("evidence unavailable: %s" % st.get("evidence_error"))
    print("%s: %s (%d hosts, %d devices) mounted at %s, pid %d, run dir %s; %s"
          % (PROG, fleet.name, st["hosts"], st["devices"], mount, st["pid"], run_dir, ev))
    return 0


def _log_tail(run_dir: str) -> str:
    try:
        with open(os.path.join(run_dir, "daemon.log")) as f:
            lines = [ln.strip() for ln in f if ln.strip()]
    except OSError:
        return "no daemon log"
    errors = [ln for ln in lines if " ERROR " in ln]
    line = (errors or lines or ["the daemon exited without a message"])[-1]
    return line.split(" ERROR ", 1)[-1]


def cmd_stop(a: argparse.Namespace) -> int:
    mount, run_dir = _paths(a)
    pid = read_pid(run_dir)
    did = []
    if pid_alive(pid):
        try:
            control.request(_sock(run_dir), "stop", timeout=5.0)
        except control.ControlError:
            pass
        if not _wait_exit(pid, a.timeout):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if not _wait_exit(pid, 5.0):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                _wait_exit(pid, 5.0)
                did.append("killed pid %d" % pid)
        if not did:
            did.append("stopped pid %d" % pid)
    if mount_type(mount) is not None:
        if not unmount(mount):
            raise Fail("could not unmount %s: a process may still use it (fuser -m %s), then run stop again" % (mount, mount))
        did.append("unmounted %s" % mount)
    for leftover in ("pid", control.SOCKET_NAME):
        try:
            os.unlink(os.path.join(run_dir, leftover))
        except FileNotFoundError:
            pass
    sockdir = os.path.join(run_dir, "evidence")
    if os.path.isdir(sockdir):
        for n in os.listdir(sockdir):
            if n.endswith(".sock"):
                try:
                    os.unlink(os.path.join(sockdir, n))
                except OSError:
                    pass
    print("%s: %s" % (PROG, ", ".join(did) if did else "nothing running at %s" % mount))
    return 0


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def cmd_status(a: argparse.Namespace) -> int:
    mount, run_dir = _paths(a)
    pid = read_pid(run_dir)
    kind = mount_type(mount)
    st: Optional[dict] = None
    if pid_alive(pid):
        try:
            st = control.request(_sock(run_dir), "status", timeout=10.0)
        except control.ControlError:
            st = None
    if st and st.get("ok"):
        state = "running" if st.get("mounted") else "starting"
        code = 0 if st.get("mounted") else 1
    elif kind is not None:
        state, code = "stale", 2
    else:
        state, code = "stopped", 1
    if a.json:
        out = {"state": state, "mount": mount, "run_dir": run_dir, "mount_type": kind}
        if st:
            out.update({key: v for key, v in st.items() if key != "ok"})
        print(json.dumps(out, indent=2))
        return code
    if state == "stale":
        print("%s: stale: %s is the mount of a simulator that died; run %s stop --mount %s" % (PROG, mount, PROG, mount))
    elif state == "stopped":
        print("%s: stopped: nothing is served at %s" % (PROG, mount))
    else:
        print("%s: %s: scenario %s, %d hosts, %d devices" % (PROG, state, st["scenario"], st["hosts"], st["devices"]))
        print("  mount:    %s" % mount)
        print("  run dir:  %s (pid %d, up %.1f s)" % (run_dir, st["pid"], st["uptime"]))
        print("  evidence: %s" % (os.path.join(run_dir, "evidence") if st["evidence"] else "unavailable: %s" % st["evidence_error"]))
        print("  events:   %d (%s)" % (st["last_seq"], os.path.join(run_dir, "events.jsonl")))
    return code


# ---------------------------------------------------------------------------------------------
# list / fault / log / inventory
# ---------------------------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


def cmd_list(a: argparse.Namespace) -> int:
    mount, run_dir = _paths(a)
    args = {"host": a.host} if a.host else {}
    reply = _ask(run_dir, mount, "list", **args)
    if not reply.get("ok"):
        raise Fail(reply.get("error", "list failed"))
    if a.host and not reply["hosts"]:
        raise Fail("no host %s in scenario %s" % (a.host, reply["scenario"]))
    if a.json:
        reply.pop("ok", None)
        json.dump(reply, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    rows = [("HOST", "BDF", "ID", "CLASS", "DRIVER", "TDISP", "LOCK", "ACC", "TRUST", "GEN")]
    for h in reply["hosts"]:
        if not h["devices"]:
            rows.append((h["name"], "-", "-", "-", "-", "-", "-", "-", "-", "-"))
        for d in h["devices"]:
            rows.append((h["name"], d["bdf"], "%s:%s" % (d["vendor"][2:], d["device"][2:]), d["class"][2:],
                         _fmt(d["driver"]), d["tdisp_state"] if d["present"] else "removed",
                         _fmt(d["lock_holder"]), _fmt(d["accepted"]) if d["tee"] else "-",
                         "%s=%s" % (h["trust_abi"], _fmt(d["trust"])) if h["trust_abi"] != "none" else "-",
                         _fmt(d["generation"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = sys.stdout
    for r in rows:
        out.write("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() + "\n")
    return 0


def cmd_fault(a: argparse.Namespace) -> int:
    mount, run_dir = _paths(a)
    reply = _ask(run_dir, mount, "fault", host=a.host, bdf=a.bdf, fault=a.fault, args=a.args)
    target = a.host if a.bdf in ("-", "") else "%s %s" % (a.host, a.bdf)
    if not reply.get("ok"):
        if "errno" in reply:
            print("%s: fault %s on %s refused: %s: %s" % (PROG, a.fault, target, reply["errno"], reply["error"]), file=sys.stderr)
            return 1
        raise Fail(reply.get("error", "fault failed"))
    extra = " ".join(a.args)
    print("%s: injected %s%s on %s (event log up to seq %d)" % (PROG, a.fault, " " + extra if extra else "", target, reply["seq"]))
    return 0


def _read_events(run_dir: str) -> list:
    path = os.path.join(run_dir, "events.jsonl")
    try:
        with open(path) as f:
            lines = f.readlines()
    except FileNotFoundError:
        raise Fail("no event log at %s: start a simulator with this --mount first" % path) from None
    out = []
    for ln in lines:
        try:
            out.append(json.loads(ln))
        except ValueError:
            continue  # a line cut short by a killed daemon
    return out


def _show(v: Any) -> str:
    if isinstance(v, str):
        return v if v and v.isprintable() and " " not in v else json.dumps(v)
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return _fmt(v)


def cmd_log(a: argparse.Namespace) -> int:
    _, run_dir = _paths(a)
    events = [e for e in _read_events(run_dir)
              if e.get("seq", 0) > a.since and (a.host is None or e.get("host") == a.host)]
    if a.json:
        for e in events:
            sys.stdout.write(json.dumps(e, separators=(",", ":")) + "\n")
        return 0
    for e in events:
        ts = datetime.datetime.fromtimestamp(e["ts"]).isoformat(timespec="milliseconds")
        detail = " ".join("%s=%s" % (key, _show(v)) for key, v in e.items() if key not in ("seq", "ts", "host", "bdf", "event"))
        sys.stdout.write("%6d %s %-12s %-14s %-16s %s\n" % (e["seq"], ts, e.get("host") or "-", e.get("bdf") or "-", e["event"], detail))
    return 0


def cmd_inventory(a: argparse.Namespace) -> int:
    mount, run_dir = _paths(a)
    reply = _ask(run_dir, mount, "inventory")
    if not reply.get("ok"):
        raise Fail(reply.get("error", "inventory failed"))
    inv = reply["inventory"]
    if a.static:
        import yaml
        hv = inv["_meta"]["hostvars"]
        children = {g: {"hosts": {n: None for n in v["hosts"]}} for g, v in inv.items()
                    if g not in ("_meta", "all", "ungrouped")}
        doc = {"all": {"hosts": hv, "children": children}}
        sys.stdout.write("# Generated by %s inventory --static --mount %s\n" % (PROG, mount))
        sys.stdout.write(yaml.safe_dump(doc, default_flow_style=False, sort_keys=False))
        return 0
    if a.host is not None:
        json.dump(inv["_meta"]["hostvars"].get(a.host, {}), sys.stdout, indent=1)
    else:
        json.dump(inv, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


# ---------------------------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------------------------

def cmd_scenarios(a: argparse.Namespace) -> int:
    rows = []
    for name in scenario.available():
        data = scenario.read(name)
        rows.append((name, " ".join(str(data.get("description", "")).split())))
    if a.json:
        json.dump([{"name": n, "description": d} for n, d in rows], sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    for n, d in rows:
        print("%-16s %s" % (n, d[:100] + ("..." if len(d) > 100 else "")))
    return 0


def cmd_check(a: argparse.Namespace) -> int:
    try:
        fleet = scenario.load(a.scenario)
    except scenario.ScenarioError as e:
        raise Fail(str(e)) from None
    print("%s: scenario %s is valid: %d hosts, %d devices, groups: %s" % (
        PROG, fleet.name, len(fleet.hosts), sum(len(h.endpoints()) for h in fleet.hosts.values()),
        ", ".join(sorted(fleet.groups)) or "none"))
    return 0


# ---------------------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Simulated fleet of confidential VMs with PCIe TDISP devices, served over FUSE.")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def mount_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--mount", required=True, metavar="DIR", help="the mount point (<DIR>/<host>/sys is each host's sysfs)")
        sp.add_argument("--run-dir", metavar="DIR", help="pid, control socket, event log, evidence sockets (default <mount>.run)")

    sp = sub.add_parser("start", help="mount a scenario and serve it from a background daemon")
    sp.add_argument("--scenario", required=True, metavar="NAME_OR_PATH")
    mount_args(sp)
    sp.add_argument("--single-thread", action="store_true",
                    help="serve FUSE requests from one thread (default: libfuse's multi-threaded loop, faster here)")
    sp.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the mount (default 120)")
    sp.set_defaults(fn=cmd_start)

    sp = sub.add_parser("stop", help="stop the daemon and unmount, also after a crash")
    mount_args(sp)
    sp.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for a clean exit before killing")
    sp.set_defaults(fn=cmd_stop)

    sp = sub.add_parser("status", help="running, stopped or stale (exit 0, 1, 2)")
    mount_args(sp)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(fn=cmd_status)

    sp = sub.add_parser("list", help="every host and device with its state")
    mount_args(sp)
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--host", help="only this host")
    sp.set_defaults(fn=cmd_list)

    sp = sub.add_parser("fault", help="inject a fault (BDF '-' for host-level faults)")
    mount_args(sp)
    sp.add_argument("host", metavar="HOST")
    sp.add_argument("bdf", metavar="BDF")
    sp.add_argument("fault", metavar="FAULT", help="error, generation [N], rebind [DRIVER], remove, add, tsm-remove TSMID, "
                    "tsm-restore TSMID, garbage ATTR [HEX|clear], write-errno ATTR ERRNO [COUNT|all]|clear, evidence KIND [VALUE|clear], modprobe MODULE [PARAM=VALUE...], modprobe -r MODULE")
    sp.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS")
    sp.set_defaults(fn=cmd_fault)

    sp = sub.add_parser("log", help="the event log (also after the daemon stopped)")
    mount_args(sp)
    sp.add_argument("--json", action="store_true", help="JSON lines, as stored in events.jsonl")
    sp.add_argument("--since", type=int, default=0, metavar="SEQ", help="only events after sequence number SEQ")
    sp.add_argument("--host", help="only events of this host")
    sp.set_defaults(fn=cmd_log)

    sp = sub.add_parser("inventory", help="an Ansible dynamic inventory (JSON) of the running fleet")
    mount_args(sp)
    sp.add_argument("--list", action="store_true", help="accepted for Ansible; the default")
    sp.add_argument("--host", help="the variables of one host")
    sp.add_argument("--static", action="store_true", help="a static YAML inventory (for -i FILE.yml) instead of script JSON")
    sp.set_defaults(fn=cmd_inventory)

    sp = sub.add_parser("scenarios", help="the scenarios shipped with the simulator")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(fn=cmd_scenarios)

    sp = sub.add_parser("check", help="validate a scenario without starting it")
    sp.add_argument("--scenario", required=True, metavar="NAME_OR_PATH")
    sp.set_defaults(fn=cmd_check)
    return p


def main(argv: Optional[list] = None) -> int:
    a = parser().parse_args(argv)
    try:
        return a.fn(a)
    except Fail as e:
        print("%s: error: %s" % (PROG, e), file=sys.stderr)
        return e.code
    except BrokenPipeError:  # `tdisp-sim list | head`
        try:
            sys.stdout.close()
        except OSError:
            pass
        return 0
