"""Process faults: stop the controller at an exact step (``kill``), or stall it there (``stall``).

A trigger row ``{on: accept, fault: kill, args: [KILL, after-accept]}`` fires right after the
store that caused the event, before the simulator answers the write: the writer (a module run by
``ansible-playbook``) never sees its write return. The fault does something only when the test
has *armed* it: the file ``arm_dir()/NAME`` holds the id of a process group (``setsid
ansible-playbook ...`` makes one) and is consumed when the fault fires, so one arming kills once
however often the trigger matches (``times: 0``). Unarmed, the fault is logged and does nothing.
The signal goes to the group and to every descendant of its leader: ansible-playbook's workers
run in sessions of their own (and the modules under them), and a killed controller is all of them.

``stall SECONDS NAME`` (armed the same way; the file's content is ignored) holds the simulator
for SECONDS (at most 30) right after the step: every other access waits, so a second run started
meanwhile meets the first one in the middle of its transaction.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any, Optional

ARM_PREFIX = "tdisp-sim-arm-"


def arm_dir(pid: int = 0) -> str:
    """Where tests arm kills for the simulator daemon ``pid`` (this process by default):
    ``$TMPDIR/tdisp-sim-arm-<daemon pid>`` (``/tmp`` without TMPDIR)."""
    return os.path.join(os.environ.get("TMPDIR") or "/tmp", "%s%d" % (ARM_PREFIX, pid or os.getpid()))


def _signal(name: str) -> int:
    text = name.upper()
    number = getattr(signal, text if text.startswith("SIG") else "SIG" + text, None)
    if not isinstance(number, int):
        raise ValueError("unknown signal %r (use KILL, INT or TERM)" % name)
    return int(number)


def _take(args: list, usage: str, result: dict[str, Any]) -> Optional[str]:
    """The content of the arm file ``args[1]``, which is consumed; None (``armed: false``) when it is not armed."""
    if len(args) != 2 or not args[1] or "/" in args[1] or args[1].startswith("."):
        raise ValueError("usage: %s (NAME: a file name in the arm directory)" % usage)
    path = os.path.join(arm_dir(), args[1])
    try:
        with open(path) as f:
            text = f.read().strip()
        os.unlink(path)
    except FileNotFoundError:
        result["armed"] = False
        return None
    return text


def stall_armed(args: list, result: dict[str, Any]) -> None:
    """``stall SECONDS NAME``: hold the simulator (the caller holds the fleet lock) for SECONDS, if armed."""
    seconds = float(args[0]) if args else -1.0
    if not 0 < seconds <= 30:
        raise ValueError("stall takes 0 < SECONDS <= 30")
    if _take(args, "stall SECONDS NAME", result) is None:
        return
    result.update(armed=True, seconds=seconds)
    time.sleep(seconds)


def kill_armed(args: list, result: dict[str, Any]) -> None:
    """``kill SIGNAL NAME``: send SIGNAL to the process group in the arm file NAME, if armed."""
    sig = _signal(args[0]) if args else 0
    text = _take(args, "kill SIGNAL NAME", result)
    if text is None:
        return
    path = os.path.join(arm_dir(), args[1])
    if not text.isdigit() or int(text) <= 1:
        raise ValueError("arm file %s must hold a process group id, not %r" % (path, text))
    pgid = int(text)
    victims = _descendants(pgid)
    result.update(armed=True, pgid=pgid, signal=sig, descendants=len(victims))
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        result["gone"] = True
    for pid in victims:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _descendants(root: int) -> list:
    """Every live descendant of process ``root`` (from /proc), children first."""
    children: dict[int, list] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    out: list = []
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out
