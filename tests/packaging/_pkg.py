"""Helpers of the packaging checks (tests/packaging): paths, running commands as a user."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "tests" / "integration"))


def run(cmd, cwd=None, env=None, timeout=600):
    """Run a command; return the CompletedProcess (stdout and stderr combined, text)."""
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)


def user_env(config=None, collections=None):
    """The environment of a user outside the checkout: no checkout ansible.cfg or collection path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "TDISP_"))}
    env["PATH"] = str(VENV_BIN) + os.pathsep + env.get("PATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["ANSIBLE_NOCOLOR"] = "1"
    if config:
        env["ANSIBLE_CONFIG"] = str(config)
    if collections:
        env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
    return env
