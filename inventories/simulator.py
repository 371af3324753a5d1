#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: contributors to coco.tdisp
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible dynamic inventory of the running simulated fleet.

    ansible-playbook -i inventories/simulator.py playbooks/...

Runs ``tdisp-sim inventory --mount ${TDISP_SIM_MOUNT:-build/sim/mnt}`` (and ``--run-dir
$TDISP_SIM_RUN_DIR`` when that is set), so playbooks run unchanged against whichever scenario is
being served. A relative TDISP_SIM_MOUNT is taken from the current directory; the default is the
checkout's build/sim/mnt. The tdisp-sim command is $TDISP_SIM, else the checkout's
.venv/bin/tdisp-sim, else the one on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tdisp_sim():
    for cand in (os.environ.get("TDISP_SIM"), os.path.join(TOP, ".venv", "bin", "tdisp-sim"), shutil.which("tdisp-sim")):
        if cand and os.access(cand, os.X_OK):
            return cand
    sys.stderr.write("inventories/simulator.py: tdisp-sim not found: run make env, or set TDISP_SIM\n")
    sys.exit(2)


def main(argv):
    mount = os.environ.get("TDISP_SIM_MOUNT")
    mount = os.path.abspath(mount) if mount else os.path.join(TOP, "build", "sim", "mnt")
    cmd = [tdisp_sim(), "inventory", "--mount", mount]
    if os.environ.get("TDISP_SIM_RUN_DIR"):
        cmd += ["--run-dir", os.environ["TDISP_SIM_RUN_DIR"]]
    if len(argv) > 2 and argv[1] == "--host":
        cmd += ["--host", argv[2]]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    if p.returncode != 0:
        sys.stderr.write(p.stderr or "tdisp-sim inventory failed\n")
        return p.returncode
    json.loads(p.stdout)  # fail here, not in Ansible, if the output is not JSON
    sys.stdout.write(p.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
