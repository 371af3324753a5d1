"""The control interface of a running simulator: a Unix stream socket in the run directory.

Protocol: the client connects, sends one JSON object on one line (``{"op": ..., ...}``), and reads
one JSON object back (then the server closes). Every reply has ``ok`` (true or false); a refused
request has ``error`` (one line) and, for a kernel refusal, ``errno`` (a name such as EINVAL).

Ops: ``status``, ``list``, ``fault``, ``log``, ``inventory``, ``stop``. The same snapshot builders
(``fleet_listing``, ``inventory``) serve the CLI; nothing here touches FUSE.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import socketserver
import threading
import time
from typing import Any, Callable, Optional

from . import kernel as k
from .faults import FaultError, apply_fault

STATE_NAMES = {k.UNLOCKED: "unlocked", k.LOCKED: "locked", k.RUN: "run", k.ERROR: "error"}
SOCKET_NAME = "control.sock"
MAX_REQUEST = 1 << 20


class ControlError(RuntimeError):
    """The control socket could not be reached or answered badly."""


# ---------------------------------------------------------------------------------------------
# snapshots
# ---------------------------------------------------------------------------------------------

def trust_value(h: k.Host, d: k.Device) -> Any:
    if h.trust_abi == "trust":
        return d.trust
    if h.trust_abi == "trust_policy":
        return d.trust_policy
    if h.trust_abi == "module_param":
        return d.effective_module_trust
    return None


def device_entry(h: k.Host, d: k.Device) -> dict:
    return {
        "bdf": d.bdf, "vendor": d.vendor, "device": d.device, "class": d.klass,
        "subsystem_vendor": d.subsystem_vendor, "subsystem_device": d.subsystem_device,
        "present": d.present, "tee": d.tee, "pf0": h.is_pf0(d), "physfn": d.physfn, "vfs": list(d.vfs),
        "driver": d.driver, "driver_override": d.driver_override, "preferred_driver": d.preferred_driver,
        "tdisp_state": STATE_NAMES[d.tdisp],
        "lock_holder": None if d.lock_tsm is None else "tsm%d" % d.lock_tsm,
        "accepted": d.accepted,
        "connected": None if d.connect_tsm is None else "tsm%d" % d.connect_tsm,
        "bound": None if d.bound_tsm is None else "tsm%d" % d.bound_tsm,
        "trust_abi": h.trust_abi, "trust": trust_value(h, d),
        "generation": d.generation, "validated_generation": d.validated_generation,
        "profile": d.profile, "pki": d.pki,
    }


def host_entry(h: k.Host, mount: str, endpoint: Optional[Callable[[str], Optional[str]]] = None,
               groups: Optional[dict] = None) -> dict:
    return {
        "name": h.name,
        "sysfs_root": os.path.join(mount, h.name, "sys"),
        "evidence_socket": endpoint(h.name) if endpoint else None,
        "trust_abi": h.trust_abi, "accept_repeat": h.accept_repeat,
        "groups": sorted(g for g, members in (groups or {}).items() if h.name in members),
        "tsms": [{"name": t.name, "mode": t.mode, "present": t.present} for t in sorted(h.tsms.values(), key=lambda t: t.id)],
        "devices": [device_entry(h, d) for d in sorted(h.endpoints(), key=lambda d: d.bdf)],
    }


def fleet_listing(fleet: k.Fleet, mount: str, endpoint: Optional[Callable[[str], Optional[str]]] = None,
                  host: Optional[str] = None) -> dict:
    with fleet.lock:
        hosts = [h for h in fleet.hosts.values() if host is None or h.name == host]
        return {
            "scenario": fleet.name, "mount": mount,
            "hosts": [host_entry(h, mount, endpoint, fleet.groups) for h in hosts],
        }


def inventory(fleet: k.Fleet, mount: str, run_dir: str, python: str,
              endpoint: Optional[Callable[[str], Optional[str]]] = None) -> dict:
    """An Ansible dynamic inventory (``--list`` format) of the running fleet."""
    hostvars = {}
    with fleet.lock:
        names = list(fleet.hosts)
        groups = {g: list(m) for g, m in fleet.groups.items()}
        scenario = fleet.name
    for name in names:
        hv = {
            "ansible_connection": "local",
            "ansible_python_interpreter": python,
            "tdisp_sysfs_root": os.path.join(mount, name, "sys"),
            "tdisp_state_dir": os.path.join(run_dir, "state", name),
            "tdisp_sim_scenario": scenario,
        }
        ep = endpoint(name) if endpoint else None
        if ep:
            hv["tdisp_evidence_endpoint"] = "unix:" + ep
        hostvars[name] = hv
    grouped = set()
    out: dict[str, Any] = {"_meta": {"hostvars": hostvars}}
    # Every host is also in a group named after the scenario (sim_mixed_fleet, ...), so that an
    # inventory directory can hold group_vars per simulated fleet (inventories/group_vars/).
    scenario_group = "sim_" + "".join(c if c.isalnum() else "_" for c in str(scenario or "fleet"))
    if scenario_group not in groups:
        groups[scenario_group] = list(names)
    for g, members in groups.items():
        out[g] = {"hosts": members}
        grouped.update(members)
    out["ungrouped"] = {"hosts": [n for n in names if n not in grouped]}
    out["all"] = {"children": ["ungrouped"] + list(groups)}
    return out


# ---------------------------------------------------------------------------------------------
# server
# ---------------------------------------------------------------------------------------------

class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True


class ControlServer:
    """Serves the control socket of one daemon. ``ctx`` supplies mount, run_dir, python,
    ``endpoint(host)``, ``status()`` and ``shutdown()``."""

    def __init__(self, fleet: k.Fleet, path: str, ctx: Any) -> None:
        self.fleet = fleet
        self.path = path
        self.ctx = ctx
        if os.path.exists(path):
            os.unlink(path)
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(MAX_REQUEST)
                try:
                    req = json.loads(line)
                    if not isinstance(req, dict):
                        raise ValueError("request must be a JSON object")
                    reply = outer.dispatch(req)
                except (ValueError, KeyError, TypeError) as e:
                    reply = {"ok": False, "error": "bad request: %s" % e}
                self.wfile.write(json.dumps(reply, separators=(",", ":")).encode() + b"\n")

        self.server = _Server(path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="tdisp-sim-control", daemon=True)

    def start(self) -> "ControlServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def dispatch(self, req: dict) -> dict:
        op = req.get("op")
        c = self.ctx
        if op == "status":
            return dict(ok=True, **c.status())
        if op == "list":
            return dict(ok=True, **fleet_listing(self.fleet, c.mount, c.endpoint, req.get("host")))
        if op == "inventory":
            return dict(ok=True, inventory=inventory(self.fleet, c.mount, c.run_dir, c.python, c.endpoint))
        if op == "log":
            return {"ok": True, "events": self.fleet.events_since(int(req.get("since", 0)), req.get("host"))}
        if op == "fault":
            try:
                result = apply_fault(self.fleet, str(req["host"]), str(req.get("bdf", "-")), str(req["fault"]),
                                     list(req.get("args", [])))
            except FaultError as e:
                return {"ok": False, "error": str(e)}
            except OSError as e:
                name = errno.errorcode.get(e.errno or 0, str(e.errno))
                text = e.strerror or str(e)
                if text.startswith(name + ": "):
                    text = text[len(name) + 2:]
                return {"ok": False, "errno": name, "error": text}
            return {"ok": True, "result": result, "seq": self.fleet.last_seq}
        if op == "stop":
            threading.Thread(target=c.shutdown, name="tdisp-sim-shutdown", daemon=True).start()
            return {"ok": True}
        return {"ok": False, "error": "unknown op %r" % (op,)}


# ---------------------------------------------------------------------------------------------
# client
# ---------------------------------------------------------------------------------------------

def request(path: str, op: str, timeout: float = 60.0, **args: Any) -> dict:
    """Send one request to the control socket at ``path``; raise ControlError when unreachable."""
    msg = dict(args, op=op)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(json.dumps(msg).encode() + b"\n")
        chunks = []
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            chunks.append(b)
    except OSError as e:
        raise ControlError("control socket %s: %s" % (path, e.strerror or e)) from None
    finally:
        s.close()
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        raise ControlError("control socket %s: no answer" % path) from None


def wait_for(path: str, predicate: Callable[[dict], bool], timeout: float, alive: Callable[[], bool]) -> Optional[dict]:
    """Poll ``status`` until ``predicate(status)``; None when ``alive()`` turns false or on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return None
        try:
            st = request(path, "status", timeout=5.0)
            if st.get("ok") and predicate(st):
                return st
        except ControlError:
            pass
        time.sleep(0.05)
    return None
