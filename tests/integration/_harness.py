"""The integration runner: one simulated fleet per target, then the target's runme.sh.

A target is a directory ``tests/integration/targets/<name>/`` with an executable ``runme.sh``.
Its optional ``scenario`` file names the scenario to start (first non-comment line; default
``devsec-sample``). For each target the runner

1. starts ``tdisp-sim`` with that scenario on a fresh temporary mount,
2. writes a static inventory of the running fleet (``tdisp-sim inventory --static``),
3. runs ``runme.sh`` in the target directory with this environment:
   ``TDISP_SIM`` (path of the tdisp-sim command), ``TDISP_SIM_MOUNT``, ``TDISP_SIM_RUN_DIR``,
   ``INVENTORY`` (the inventory file), ``ANSIBLE_CONFIG`` (the repository's ansible.cfg),
   ``ANSIBLE_INJECT_FACT_VARS=False`` (the coming default of ``INJECT_FACTS_AS_VARS``: every target
   proves that nothing reads a fact as a top-level variable), and ``PATH`` with the virtualenv's bin
   directory first,
4. always stops the simulator (and removes the temporary directory).

``run_target`` returns the exit code and the combined output; the pytest side fails with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[2]
TARGETS = REPO / "tests" / "integration" / "targets"
VENV_BIN = Path(sys.executable).parent
TDISP_SIM = VENV_BIN / "tdisp-sim"
DEFAULT_SCENARIO = "devsec-sample"
DEFAULT_TIMEOUT = float(os.environ.get("TDISP_TARGET_TIMEOUT", "1800"))


def discover(root: Path = TARGETS) -> list:
    """Target directories that have a runme.sh, sorted by name."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "runme.sh").is_file())


def scenario_of(target: Path) -> str:
    f = target / "scenario"
    if f.is_file():
        for line in f.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                return line if os.sep not in line else str((target / line).resolve())
    return DEFAULT_SCENARIO


def _sim(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(TDISP_SIM), *args], capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Simulator:
    """A running simulator on a fresh temporary mount (a context manager)."""

    scenario: str
    base: str = ""
    mount: str = ""
    run_dir: str = ""
    inventory: str = ""

    def __enter__(self) -> "Simulator":
        # Short paths: evidence sockets live under the run dir (AF_UNIX paths are <= 107 bytes).
        self.base = tempfile.mkdtemp(prefix="tdsi-", dir="/tmp")
        self.mount = os.path.join(self.base, "mnt")
        self.run_dir = self.mount + ".run"  # tdisp-sim's default, so `--mount` alone finds it
        p = _sim("start", "--scenario", self.scenario, "--mount", self.mount, "--run-dir", self.run_dir)
        if p.returncode != 0:
            self._cleanup()
            raise RuntimeError("tdisp-sim start --scenario %s failed:\n%s%s" % (self.scenario, p.stdout, p.stderr))
        inv = _sim("inventory", "--static", "--mount", self.mount, "--run-dir", self.run_dir)
        if inv.returncode != 0:
            self.__exit__(None, None, None)
            raise RuntimeError("tdisp-sim inventory failed:\n%s%s" % (inv.stdout, inv.stderr))
        self.inventory = os.path.join(self.base, "inventory.yml")
        with open(self.inventory, "w") as f:
            f.write(inv.stdout)
        return self

    def __exit__(self, *exc: object) -> None:
        _sim("stop", "--mount", self.mount, "--run-dir", self.run_dir)
        self._cleanup()

    def _cleanup(self) -> None:
        from tdisp_sim.daemon import mount_type
        if self.mount and mount_type(self.mount) is None:
            shutil.rmtree(self.base, ignore_errors=True)

    def env(self) -> dict:
        env = dict(os.environ)
        env.update({
            "TDISP_SIM": str(TDISP_SIM),
            "TDISP_SIM_MOUNT": self.mount,
            "TDISP_SIM_RUN_DIR": self.run_dir,
            "INVENTORY": self.inventory,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_INJECT_FACT_VARS": "False",
            "ANSIBLE_LOCAL_TEMP": os.path.join(self.base, "ansible-tmp"),
            "PATH": str(VENV_BIN) + os.pathsep + env.get("PATH", ""),
        })
        return env


def run_target(target: Path, timeout: Optional[float] = None) -> tuple:
    """Run one target against its own simulator: (exit code, combined output)."""
    with Simulator(scenario_of(target)) as sim:
        try:
            p = subprocess.run(["bash", str(target / "runme.sh")] if not os.access(target / "runme.sh", os.X_OK)
                               else [str(target / "runme.sh")], cwd=str(target), env=sim.env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=timeout or DEFAULT_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as e:
            out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b"").decode(errors="replace")
            return 124, out + "\n[timed out after %.0f s]" % (timeout or DEFAULT_TIMEOUT)
        return p.returncode, p.stdout
