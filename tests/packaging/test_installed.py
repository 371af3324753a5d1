"""The installed collection, used as a user would: a project of their own outside the checkout
(its own ansible.cfg, inventory and group_vars), FQCN playbooks from the installed tarball, a
simulated fleet as the target. Also the audit in pull mode: ansible-pull on the host itself.

The reports must appear under the user's project (or the directory they name), and nothing may
be written into the installed collection.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from _harness import Simulator
from _pkg import REPO, VENV_BIN, run, user_env

SAMPLE_VARS = REPO / "inventories" / "group_vars"


def snapshot(root: Path) -> dict:
    """Every file under root with its size and mtime (bytecode caches aside)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def fleet():
    with Simulator("rollout-small") as sim:
        yield sim


def write_project(root: Path, sim: Simulator, collections: Path) -> Path:
    """A user's project: ansible.cfg naming the installed collections, the fleet's inventory, and
    group_vars of their own (here copies of the simulated fleet's policy and manifests)."""
    root.mkdir(parents=True)
    (root / "ansible.cfg").write_text("[defaults]\ncollections_path = %s\ninterpreter_python = auto_silent\n"
                                      "retry_files_enabled = false\n" % collections)
    shutil.copy(sim.inventory, root / "inventory.yml")
    shutil.copytree(SAMPLE_VARS / "all", root / "group_vars" / "all")
    shutil.copy(SAMPLE_VARS / "sim_rollout_small.yml", root / "group_vars" / "sim_rollout_small.yml")
    return root


def new_json(root: Path, prefix: str, before: dict) -> list:
    return sorted(p for p in root.rglob(prefix + "*.json") if str(p.relative_to(root)) not in before)


def test_user_project_rollout_and_audit(installed, fleet, tmp_path):
    project = write_project(tmp_path / "project", fleet, installed)
    env = user_env(config=project / "ansible.cfg", collections=installed)
    collection = installed / "ansible_collections" / "coco" / "tdisp"
    before_collection = snapshot(collection)
    before_project = snapshot(project)

    p = run([VENV_BIN / "ansible-playbook", "-i", "inventory.yml", "coco.tdisp.rollout",
             "-e", "tdisp_rollout_hosts=canary"], cwd=project, env=env)
    assert p.returncode == 0, "coco.tdisp.rollout failed:\n" + p.stdout[-6000:]
    assert "roll-1" in p.stdout and "failed=0" in p.stdout, p.stdout[-3000:]
    p = run([VENV_BIN / "ansible-playbook", "-i", "inventory.yml", "coco.tdisp.audit",
             "-e", "tdisp_audit_hosts=canary"], cwd=project, env=env)
    assert p.returncode == 0, "coco.tdisp.audit failed:\n" + p.stdout[-6000:]

    written = sorted(set(snapshot(collection)) - set(before_collection))
    changed = sorted(k for k, v in before_collection.items() if snapshot(collection).get(k) != v)
    assert not written and not changed, "the playbooks wrote into the installed collection: %s %s" % (written, changed)
    rollout_reports = new_json(project, "rollout-", before_project)
    audit_reports = new_json(project, "audit-", before_project)
    assert rollout_reports and audit_reports, "no reports under the user's project %s: %s" % (
        project, sorted(set(snapshot(project)) - set(before_project)))
    audit = json.loads(audit_reports[-1].read_text())
    assert audit["hosts"]["audited"] == 1 and audit["hosts"]["compliant"] == 1, audit["hosts"]


def test_pull_mode_audit(installed, fleet, tmp_path):
    """ansible-pull: the host checks out its playbook repository and audits itself with a local
    connection. The repository holds local.yml (importing coco.tdisp.audit) and an inventory
    directory of its own (hosts.yml naming localhost, group_vars, host_vars): vars next to an
    FQCN playbook are not loaded, vars next to the inventory are. The repository is a local git
    repository; the host's sysfs, evidence endpoint and ledger are those of the simulated host
    roll-2 (on a real host they are the defaults: /sys, netlink, /var/lib/coco-tdisp)."""
    repo = tmp_path / "pull-repo"
    inv = repo / "inventory"
    (inv / "host_vars").mkdir(parents=True)
    shutil.copytree(SAMPLE_VARS / "all", inv / "group_vars" / "all")
    (inv / "hosts.yml").write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    (inv / "host_vars" / "localhost.yml").write_text(json.dumps(fleet_hostvars(fleet, "roll-2"), indent=1) + "\n")
    (repo / "local.yml").write_text("---\n- name: Audit this host\n  ansible.builtin.import_playbook: coco.tdisp.audit\n")
    env = user_env(collections=installed)
    env.update({"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@localhost", "ANSIBLE_CONFIG": str(tmp_path / "none.cfg")})
    (tmp_path / "none.cfg").write_text("[defaults]\ninterpreter_python = auto_silent\n")
    for cmd in (["git", "init", "-q", "-b", "main", repo], ["git", "-C", repo, "add", "-A"],
                ["git", "-C", repo, "commit", "-q", "-m", "pull-mode audit"]):
        p = run(cmd, env=env)
        assert p.returncode == 0, p.stdout
    checkout, reports = tmp_path / "checkout", tmp_path / "reports"
    # -i inventory: relative, so it is the checkout's (ansible-pull uses localhost, to clone).
    p = run([VENV_BIN / "ansible-pull", "-U", "file://%s" % repo, "-C", "main", "-d", checkout,
             "-i", "inventory", "local.yml", "-e", "tdisp_report_dir=%s" % reports], cwd=tmp_path, env=env)
    assert p.returncode == 0, "ansible-pull failed:\n" + p.stdout[-6000:]
    assert "localhost" in p.stdout and "failed=0" in p.stdout, p.stdout[-3000:]
    audit = json.loads(sorted(reports.glob("audit-*.json"))[-1].read_text())
    assert audit["hosts"]["audited"] == 1, audit["hosts"]


def fleet_hostvars(sim: Simulator, host: str) -> dict:
    inv = yaml.safe_load(Path(sim.inventory).read_text())
    hv = dict(inv["all"]["hosts"][host])
    hv.pop("ansible_connection", None)  # ansible-pull runs with -c local
    hv.pop("tdisp_sim_scenario", None)
    return hv
