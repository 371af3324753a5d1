"""The simulator daemon: one process serves one scenario's fleet over FUSE.

Started by ``tdisp-sim start`` as ``python -m tdisp_sim.daemon --scenario S --mount M --run-dir R``
in its own session. The run directory holds::

    pid            the daemon's process id (removed at a clean exit)
    control.sock   the control socket (control.py)
    events.jsonl   the event log, one JSON object per line, appended as events happen
    daemon.log     the daemon's own messages (start-up errors end up here)
    evidence/      per-host evidence sockets (views.netlink.EvidenceServer)
    state/<host>/  a plain writable directory per host (the collection's host-side ledger)

The daemon exits when its mount goes away (``tdisp-sim stop`` asks it over the control socket to
unmount itself; SIGTERM does the same through libfuse's signal handlers).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Any, Optional

from . import control, scenario
from .kernel import Fleet
from .views.netlink import EvidenceServer

log = logging.getLogger("tdisp_sim.daemon")
FSTYPE = "fuse.tdisp-sim"


# ---------------------------------------------------------------------------------------------
# helpers shared with the CLI
# ---------------------------------------------------------------------------------------------

def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts() -> dict[str, str]:
    """Mount point -> filesystem type, from /proc/self/mountinfo."""
    out = {}
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields = left.split()
                if len(fields) >= 5 and right:
                    out[_unescape(fields[4])] = right.split()[0]
    except OSError:
        pass
    return out


def mount_type(path: str) -> Optional[str]:
    return mounts().get(os.path.abspath(path))


def default_run_dir(mount: str) -> str:
    return os.path.abspath(mount).rstrip("/") + ".run"


def read_pid(run_dir: str) -> Optional[int]:
    try:
        with open(os.path.join(run_dir, "pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def pid_alive(pid: Optional[int]) -> bool:
    """True when ``pid`` is a live (not zombie) tdisp-sim daemon."""
    if not pid:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"tdisp_sim.daemon" in f.read()
    except (OSError, IndexError):
        return False


def unmount(path: str) -> bool:
    """fusermount3 -u, then a lazy unmount if the mount is busy. True when nothing is mounted."""
    if mount_type(path) is None:
        return True
    for args in (["-u"], ["-u", "-z"]):
        subprocess.run(["fusermount3", *args, path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        if mount_type(path) is None:
            return True
    return mount_type(path) is None


# ---------------------------------------------------------------------------------------------
# the daemon
# ---------------------------------------------------------------------------------------------

class Daemon:
    def __init__(self, scenario_ref: str, mount: str, run_dir: str, threads: bool = True) -> None:
        self.scenario_ref = scenario_ref
        self.mount = os.path.abspath(mount)
        self.run_dir = os.path.abspath(run_dir)
        self.threads = threads
        self.python = sys.executable
        self.fleet: Optional[Fleet] = None
        self.evidence: Any = None
        self.evidence_error: Optional[str] = None
        self.mounted = False
        self.started = time.time()
        self.fuse_ops: Any = None
        self._events_file: Any = None
        self._lock = threading.Lock()

    # -- context for control.py ------------------------------------------------------------------
    def endpoint(self, host: str) -> Optional[str]:
        if self.evidence is None:
            return None
        return self.evidence.path(host)

    def status(self) -> dict:
        f = self.fleet
        return {
            "pid": os.getpid(), "scenario": f.name if f else None, "mount": self.mount, "run_dir": self.run_dir,
            "mounted": self.mounted, "hosts": len(f.hosts) if f else 0,
            "devices": sum(len(h.endpoints()) for h in f.hosts.values()) if f else 0,
            "last_seq": f.last_seq if f else 0, "started": self.started, "uptime": time.time() - self.started,
            "evidence": self.evidence is not None, "evidence_error": self.evidence_error,
            "python": self.python, "threads": self.threads,
        }

    def shutdown(self) -> None:
        with self._lock:
            log.info("shutdown requested: unmounting %s", self.mount)
            if not unmount(self.mount):
                log.error("could not unmount %s", self.mount)

    # -- events -----------------------------------------------------------------------------------
    def _write_event(self, entry: dict) -> None:
        try:
            self._events_file.write(json.dumps(entry, separators=(",", ":"), default=str) + "\n")
        except (OSError, ValueError):
            pass

    # -- main -------------------------------------------------------------------------------------
    def run(self) -> int:
        from .views import fuse  # imported here so that the CLI's other commands work without libfuse

        os.makedirs(self.run_dir, exist_ok=True)
        self.fleet = fleet = scenario.load(self.scenario_ref)
        with open(os.path.join(self.run_dir, "pid"), "w") as f:
            f.write("%d\n" % os.getpid())
        self._events_file = open(os.path.join(self.run_dir, "events.jsonl"), "w", buffering=1)
        with fleet.lock:
            for e in fleet.events:
                self._write_event(e)
            fleet.listeners.append(self._write_event)
        for name in fleet.hosts:
            os.makedirs(os.path.join(self.run_dir, "state", name), exist_ok=True)
        self._start_evidence()
        ctl = control.ControlServer(fleet, os.path.join(self.run_dir, control.SOCKET_NAME), self).start()
        fleet.record(None, None, "daemon_start", pid=os.getpid(), mount=self.mount, evidence=self.evidence is not None)

        def ready() -> None:
            self.mounted = True
            fleet.record(None, None, "mounted", mount=self.mount)
            log.info("serving %s (%d hosts) at %s", fleet.name, len(fleet.hosts), self.mount)

        rc = 0
        try:
            fuse.serve(fleet, self.mount, on_ready=ready, threads=self.threads)
        except Exception as e:  # noqa: BLE001 - report any mount failure in one line
            log.error("FUSE mount of %s failed: %s", self.mount, e)
            rc = 2
        finally:
            self.mounted = False
            fleet.record(None, None, "daemon_stop", pid=os.getpid())
            ctl.stop()
            if self.evidence is not None:
                try:
                    self.evidence.stop()
                except Exception as e:  # noqa: BLE001
                    log.error("evidence server stop: %s", e)
            try:
                os.unlink(os.path.join(self.run_dir, "pid"))
            except FileNotFoundError:
                pass
            self._events_file.close()
        return rc

    def _evidence_provider(self) -> Any:
        """Real evidence built from the scenario's profiles, chained to the scenario's test PKI.

        The certificate authorities come from the scenario (``evidence.pki_dir``, relative to the
        scenario file; default: the shipped ``scenarios/pki``) so that the trust anchor is the
        same on every run and machine; they are copied into ``<run-dir>/pki``, where the device
        leaves are issued on first use."""
        from .evidence.provider import EvidenceProvider

        spec = getattr(self.fleet, "evidence_spec", None) or {}
        src = spec.get("pki_dir")
        if src:
            base = scenario.resolve(self.scenario_ref).parent
            ca_src = (base / str(src) / "ca").resolve()
        else:
            ca_src = scenario.SCENARIO_DIR / "pki" / "ca"
        pki_dir = os.path.join(self.run_dir, "pki")
        ca_dst = os.path.join(pki_dir, "ca")
        if not os.path.isdir(ca_dst):
            if not ca_src.is_dir():
                raise RuntimeError("evidence.pki_dir: %s has no ca/ directory" % ca_src.parent)
            shutil.copytree(str(ca_src), ca_dst)
        return EvidenceProvider(self.fleet, pki_dir=pki_dir)

    def _start_evidence(self) -> None:
        sockdir = os.path.join(self.run_dir, "evidence")
        try:
            self.evidence = EvidenceServer(self.fleet, sockdir, provider=self._evidence_provider())
            self.evidence.start()
        except Exception as e:  # noqa: BLE001 - the sysfs side works without evidence
            self.evidence = None
            self.evidence_error = "evidence server failed to start: %s" % e
            log.error("evidence unavailable: %s", self.evidence_error)
            self.fleet.record(None, None, "evidence_unavailable", reason=self.evidence_error)
            return
        log.info("evidence sockets in %s", sockdir)


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tdisp_sim.daemon")
    p.add_argument("--scenario", required=True)
    p.add_argument("--mount", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--single-thread", action="store_true")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        return Daemon(a.scenario, a.mount, a.run_dir, threads=not a.single_thread).run()
    except scenario.ScenarioError as e:
        log.error("%s", e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
