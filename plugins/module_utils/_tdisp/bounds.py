# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Bounds of one module run: an overall deadline, and a stop when the controller went away (private).

``Bounds.start`` arms a SIGALRM interval timer; its handler, and ``check`` (called before every
write), raise ``RunStopped`` once the deadline passed or the parent process changed (the
controller's process died and the module was re-parented, e.g. to 1). The exception is a
``TdispError``: the module fails with one line, and a write is never half-done (each is one
``write(2)``). docs/reliability.md is the contract.
"""

from __future__ import annotations

import os
import signal
import time
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError

DEFAULT_DEADLINE = 900
MAX_DEADLINE = 86400
TICK = 2.0


class RunStopped(TdispError):
    """The module run must stop now (deadline, or the controller went away)."""


def check_deadline(value: t.Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DEADLINE:
        raise TdispError('deadline %r is not a number of seconds from 1 to %d' % (value, MAX_DEADLINE), attribute='deadline',
                         remedy='pass a whole number of seconds, e.g. 900')
    return value


class Bounds:
    def __init__(self, deadline: int = DEFAULT_DEADLINE, clock: t.Callable[[], float] = time.monotonic) -> None:
        self.seconds = check_deadline(deadline)
        self.clock = clock
        self.until = clock() + self.seconds
        self.ppid = os.getppid()
        self._old: t.Any = None

    def check(self) -> None:
        if self.clock() > self.until:
            raise RunStopped('the module run exceeded its deadline of %d s' % self.seconds, attribute='deadline',
                             remedy='check the kernel log for a hung device, or raise deadline')
        if os.getppid() != self.ppid:
            raise RunStopped('the controller went away (parent process %d is gone): stopping before the next write' % self.ppid,
                             remedy='re-run the play; the ledger records every finished step')

    def _tick(self, _signum: int, _frame: t.Any) -> None:
        self.check()

    def start(self) -> 'Bounds':
        if hasattr(signal, 'setitimer'):
            self._old = signal.signal(signal.SIGALRM, self._tick)
            signal.setitimer(signal.ITIMER_REAL, TICK, TICK)
        return self

    def stop(self) -> None:
        if self._old is not None:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            signal.signal(signal.SIGALRM, self._old)
            self._old = None

    def __enter__(self) -> 'Bounds':
        return self.start()

    def __exit__(self, *exc: t.Any) -> None:
        self.stop()
