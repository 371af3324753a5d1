"""The fault registry: one entry point shared by the control socket (``tdisp-sim fault``) and the
scenario's triggers (``triggers.py``). No FUSE here.

``apply_fault(fleet, host, bdf, fault, args)`` runs one fault under the fleet lock. Usage errors
raise ``FaultError`` (a one-line message); a fault the kernel model refuses (for example
``error`` on an unlocked device, ``rebind`` while a driver is bound) raises the model's
``OSError`` with its errno. Every fault is logged in the fleet's event log by the model.
"""

from __future__ import annotations

import errno
from typing import Any, Optional

from ..kernel import Fleet, Host, module_params
from ..views.sysfs_nodes import File, dev_path
from ..views.sysfs_tree import SysfsView
from .evidence import clear_fault, set_fault
from .process import kill_armed, stall_armed

DEFAULT_GARBAGE = b"\xde\xad\xbe\xef\n"

# name -> (needs a device, usage)
FAULTS: dict[str, tuple[bool, str]] = {
    "error": (True, "error"),
    "generation": (True, "generation [N]"),
    "rebind": (True, "rebind [DRIVER]"),
    "remove": (True, "remove"),
    "add": (True, "add"),
    "tsm-remove": (False, "tsm-remove TSMID"),
    "tsm-restore": (False, "tsm-restore TSMID"),
    "garbage": (False, "garbage ATTR [HEX|clear]"),
    "write-errno": (False, "write-errno ATTR ERRNO [COUNT|all] | write-errno ATTR clear"),
    "evidence": (False, "evidence KIND [VALUE|clear]"),
    "modprobe": (False, "modprobe MODULE [PARAM=VALUE...] | modprobe -r MODULE"),
    "kill": (False, "kill SIGNAL NAME (armed by the file NAME in process.arm_dir())"),
    "stall": (False, "stall SECONDS NAME (armed by the file NAME in process.arm_dir())"),
}


class FaultError(ValueError):
    """A fault request that cannot be carried out as asked (bad name, arguments, target)."""


def _device(h: Host, bdf: str, fault: str, present: bool = True):
    if bdf in ("-", "", None):
        raise FaultError("fault %s needs a device: give its BDF, not '-'" % fault)
    d = h.devices.get(bdf)
    if d is None:
        raise FaultError("host %s has no device %s" % (h.name, bdf))
    if present and not d.present:
        raise OSError(errno.ENODEV, "ENODEV: %s is hot-removed (fault add brings it back)" % bdf)
    return d


def _tsm_id(arg: str) -> int:
    text = arg[3:] if arg.startswith("tsm") else arg
    if not text.isdigit():
        raise FaultError("TSMID must be tsmN or N, not %r" % arg)
    return int(text)


def _attr_path(fleet: Fleet, h: Host, bdf: str, attr: str, must_exist: bool = True) -> str:
    """The canonical path of ATTR: relative to the device's directory when a BDF is given,
    else relative to the host's sysfs root. The attribute must exist now, except when a fault
    is being cleared."""
    view = SysfsView(fleet)
    if bdf not in ("-", "", None):
        d = _device(h, bdf, "garbage", present=must_exist)
        rel = "bus/pci/devices/%s/%s" % (bdf, attr.strip("/"))
        fallback = "%s/%s" % (dev_path(d), attr.strip("/"))
    else:
        rel = fallback = attr.strip("/")
    try:
        canon, node = view.lookup(h.name, rel)
    except OSError:
        if not must_exist:
            return fallback
        raise FaultError("host %s has no attribute %s" % (h.name, rel)) from None
    if not isinstance(node, File):
        raise FaultError("%s is not an attribute file" % rel)
    return canon


def _errno(name: str) -> int:
    code = getattr(errno, name.upper(), None) if not name.isdigit() else int(name)
    if not isinstance(code, int) or code <= 0:
        raise FaultError("unknown errno %r (use a name such as EINTR, EAGAIN, EIO)" % name)
    return code


def apply_fault(fleet: Fleet, host: str, bdf: Optional[str], fault: str, args: list,
                run_triggers: bool = True) -> dict[str, Any]:
    """Inject ``fault`` on ``host`` (and device ``bdf``, or '-' for host-level faults)."""
    if fault not in FAULTS:
        raise FaultError("unknown fault %r (faults: %s)" % (fault, ", ".join(FAULTS)))
    args = [str(a) for a in args]
    with fleet.lock:
        h = fleet.hosts.get(host)
        if h is None:
            raise FaultError("no host %s in scenario %s" % (host, fleet.name))
        target = None if bdf in ("-", "", None) else bdf
        result: dict[str, Any] = {"host": host, "bdf": target, "fault": fault, "args": args}
        fleet.record(host, target, "fault", fault=fault, args=args)
        try:
            _apply(fleet, h, bdf, fault, args, result)
        except (OSError, FaultError) as e:
            fleet.record(host, target, "fault_refused", fault=fault,
                         error=errno.errorcode.get(e.errno, str(e.errno)) if isinstance(e, OSError) else str(e))
            raise
        if run_triggers:
            fleet.settle()
        return result


def _apply(fleet: Fleet, h: Host, bdf: Optional[str], fault: str, args: list, result: dict) -> None:
    try:
        _run(fleet, h, bdf, fault, args, result)
    except ValueError as e:
        if isinstance(e, FaultError):
            raise
        raise FaultError("fault %s: bad argument: %s (usage: %s)" % (fault, e, FAULTS[fault][1])) from None


def _run(fleet: Fleet, h: Host, bdf: Optional[str], fault: str, args: list, result: dict) -> None:
    if fault == "error":
        h.fault_error(_device(h, bdf, fault))
    elif fault == "generation":
        n = int(args[0]) if args else 1
        if n < 1:
            raise FaultError("generation takes a positive count")
        d = _device(h, bdf, fault)
        h.fault_generation(d, n)
        result["generation"] = d.generation
    elif fault == "rebind":
        d = _device(h, bdf, fault)
        h.fault_rebind(d, args[0] if args else None)
        result["driver"] = d.driver
    elif fault == "remove":
        h.fault_remove(_device(h, bdf, fault))
    elif fault == "add":
        h.fault_add(_device(h, bdf, fault, present=False))
    elif fault in ("tsm-remove", "tsm-restore"):
        if len(args) != 1:
            raise FaultError("usage: %s" % FAULTS[fault][1])
        tid = _tsm_id(args[0])
        if fault == "tsm-remove":
            h.fault_tsm_remove(tid)
        else:
            h.fault_tsm_restore(tid)
    elif fault == "garbage":
        if not args:
            raise FaultError("usage: %s" % FAULTS[fault][1])
        clearing = len(args) > 1 and args[1] == "clear"
        canon = _attr_path(fleet, h, bdf, args[0], must_exist=not clearing)
        if clearing:
            data = None
        elif len(args) > 1:
            try:
                data = bytes.fromhex(args[1][2:] if args[1].lower().startswith("0x") else args[1])
            except ValueError:
                raise FaultError("garbage takes hex bytes (e.g. deadbeef0a) or 'clear'") from None
        else:
            data = DEFAULT_GARBAGE
        h.fault_garbage(canon, data)
        result["path"] = canon
    elif fault == "write-errno":
        if len(args) < 2:
            raise FaultError("usage: %s" % FAULTS[fault][1])
        canon = _attr_path(fleet, h, bdf, args[0], must_exist=args[1] != "clear")
        if args[1] == "clear":
            h.fault_write_errno(canon, None)
        else:
            count = 1
            if len(args) > 2:
                count = -1 if args[2] in ("all", "-1") else int(args[2])
                if count == 0 or count < -1:
                    raise FaultError("COUNT must be >= 1 or 'all'")
            h.fault_write_errno(canon, _errno(args[1]), count)
        result["path"] = canon
    elif fault == "evidence":
        _evidence_fault(h, bdf, args)
    elif fault == "modprobe":
        if not args or args[0] == "-r" and len(args) != 2:
            raise FaultError("usage: %s" % FAULTS[fault][1])
        if args[0] == "-r":
            h.modprobe_remove(args[1])
        else:
            h.modprobe(args[0], module_params(args[1:]))
    elif fault == "kill":
        kill_armed(args, result)
        if result.get("armed"):
            fleet.record(h.name, None, "killed", name=args[1], pgid=result["pgid"], signal=result["signal"])
    elif fault == "stall":
        stall_armed(args, result)
        if result.get("armed"):
            fleet.record(h.name, None, "stalled", name=args[1], seconds=result["seconds"])


def _evidence_fault(h: Host, bdf: Optional[str], args: list) -> None:
    """Arm or disarm an evidence-endpoint fault (``evidence.py``)."""
    if not args:
        raise FaultError("usage: %s" % FAULTS["evidence"][1])
    kind = args[0].replace("-", "_")
    target = None if bdf in ("-", "", None) else bdf
    if len(args) > 1 and args[1] == "clear":
        clear_fault(h, kind, target)
        return
    value: Any = True
    if len(args) > 1:
        value = int(args[1]) if args[1].lstrip("-").isdigit() else args[1]
    try:
        set_fault(h, kind, target, value)
    except ValueError as e:
        raise FaultError(str(e)) from None
