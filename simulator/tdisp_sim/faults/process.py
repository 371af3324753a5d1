"""Process faults: stop the controller at an exact step (fault ``kill``).

A trigger row ``{on: accept, fault: kill, args: [KILL, after-accept]}`` fires right after the
store that caused the event, before the simulator answers the write: the writer (a module run by
``ansible-playbook``) never sees its write return. The fault does something only when the test
has *armed* it: the file ``arm_dir()/NAME`` holds the id of a process group (``setsid
ansible-playbook ...`` makes one) and is consumed when the fault fires, so one arming kills once
however often the trigger matches (``times: 0``). Unarmed, the fault is logged and does nothing.
"""

from __future__ import annotations

import os
import signal
from typing import Any

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


def kill_armed(args: list, result: dict[str, Any]) -> None:
    """``kill SIGNAL NAME``: send SIGNAL to the process group in the arm file NAME, if armed."""
    if len(args) != 2 or not args[1] or "/" in args[1] or args[1].startswith("."):
        raise ValueError("usage: kill SIGNAL NAME (NAME: a file name in the arm directory)")
    sig = _signal(args[0])
    path = os.path.join(arm_dir(), args[1])
    try:
        with open(path) as f:
            text = f.read().strip()
        os.unlink(path)
    except FileNotFoundError:
        result["armed"] = False
        return
    if not text.isdigit() or int(text) <= 1:
        raise ValueError("arm file %s must hold a process group id, not %r" % (path, text))
    result.update(armed=True, pgid=int(text), signal=sig)
    try:
        os.killpg(int(text), sig)
    except ProcessLookupError:
        result["gone"] = True
