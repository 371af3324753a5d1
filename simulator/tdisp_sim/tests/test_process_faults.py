"""The process faults (faults/process.py): kill and stall fire only when armed, once per arming."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tdisp_sim.faults import process


@pytest.fixture
def arm(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    os.makedirs(process.arm_dir())
    return process.arm_dir()


def test_an_unarmed_kill_does_nothing(arm):
    result: dict = {}
    process.kill_armed(["KILL", "after-accept"], result)
    assert result == {"armed": False}


def test_an_armed_kill_stops_the_group_and_its_descendants_once(arm):
    # a group leader whose child lives in a session of its own, like ansible-playbook's workers
    leader = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                               "subprocess.Popen(['sleep', '60'], start_new_session=True); time.sleep(60)"],
                              start_new_session=True)
    time.sleep(0.5)
    with open(os.path.join(arm, "after-accept"), "w") as f:
        f.write("%d\n" % leader.pid)
    result: dict = {}
    process.kill_armed(["KILL", "after-accept"], result)
    assert result["armed"] is True and result["pgid"] == leader.pid and result["descendants"] >= 1
    assert leader.wait(timeout=10) == -9
    assert not os.path.exists(os.path.join(arm, "after-accept"))
    again: dict = {}
    process.kill_armed(["KILL", "after-accept"], again)
    assert again == {"armed": False}


def test_an_armed_stall_holds_for_its_seconds(arm):
    open(os.path.join(arm, "hold"), "w").close()
    result: dict = {}
    start = time.monotonic()
    process.stall_armed(["0.3", "hold"], result)
    assert result == {"armed": True, "seconds": 0.3} and time.monotonic() - start >= 0.3


@pytest.mark.parametrize("call, args", [(process.kill_armed, ["NOPE", "x"]), (process.kill_armed, ["KILL", "../x"]),
                                        (process.stall_armed, ["60", "x"]), (process.stall_armed, ["1"])])
def test_bad_arguments_are_refused(arm, call, args):
    with pytest.raises(ValueError):
        call(args, {})
