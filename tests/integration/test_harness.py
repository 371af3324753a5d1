"""The runner itself: environment given to runme.sh, failure output, and the simulator always stopped."""

from __future__ import annotations

import os

from _harness import TDISP_SIM, discover, run_target, scenario_of

from tdisp_sim.daemon import mount_type


def make_target(root, name, script, scenario=None):
    t = root / name
    t.mkdir(parents=True)
    (t / "runme.sh").write_text("#!/usr/bin/env bash\n" + script)
    os.chmod(t / "runme.sh", 0o755)
    if scenario:
        (t / "scenario").write_text("# comment\n%s\n" % scenario)
    return t


def test_discover_needs_runme(tmp_path):
    make_target(tmp_path, "b", "true\n")
    (tmp_path / "a").mkdir()
    assert [t.name for t in discover(tmp_path)] == ["b"]


def test_scenario_default_and_file(tmp_path):
    assert scenario_of(make_target(tmp_path, "a", "true\n")) == "devsec-sample"
    assert scenario_of(make_target(tmp_path, "b", "true\n", "single-cvm")) == "single-cvm"


def test_environment_of_runme(tmp_path):
    t = make_target(tmp_path, "env", 'set -e\necho "$TDISP_SIM"; echo "$INVENTORY"; echo "$ANSIBLE_CONFIG"; '
                    'pwd; ls "$TDISP_SIM_MOUNT"; test -d "$TDISP_SIM_RUN_DIR"; command -v tdisp-sim\n', "single-cvm")
    rc, out = run_target(t)
    lines = out.splitlines()
    assert rc == 0, out
    assert (lines[0], lines[2].endswith("/ansible.cfg"), lines[3], lines[4], lines[5]) == (
        str(TDISP_SIM), True, str(t), "cvm-1", str(TDISP_SIM))
    assert lines[1].endswith("/inventory.yml")


def test_failing_target_reports_output_and_stops_simulator(tmp_path):
    t = make_target(tmp_path, "fails", 'echo "mount=$TDISP_SIM_MOUNT"; echo boom >&2; exit 3\n')
    rc, out = run_target(t)
    mount = out.splitlines()[0].split("=", 1)[1]
    assert (rc, "boom" in out, mount_type(mount), os.path.exists(mount)) == (3, True, None, False)
