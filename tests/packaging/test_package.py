"""The tarball is publishable: galaxy-importer passes with no warning, the tarball holds no
simulator-only content, the metadata points nowhere fake, and the declared dependencies are
where ansible-builder looks."""

from __future__ import annotations

import re
import shutil
import tarfile

import yaml
from _pkg import REPO, VENV_BIN, run, user_env
from packaging.requirements import Requirement


def test_galaxy_importer_clean(tarball, tmp_path):
    env = user_env()
    env["GALAXY_IMPORTER_CONFIG"] = str(REPO / "tests" / "packaging" / "galaxy-importer.cfg")
    p = run([VENV_BIN / "python", "-m", "galaxy_importer.main", tarball], cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stdout
    assert "Importer processing completed successfully" in p.stdout, p.stdout
    bad = [line for line in p.stdout.splitlines() if re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line)]
    assert not bad, "galaxy-importer warned:\n" + "\n".join(bad)


def _members(tarball):
    with tarfile.open(tarball) as tf:
        return {m.name: (tf.extractfile(m).read() if m.isfile() else b"") for m in tf.getmembers()}


def test_tarball_has_no_simulator_trust(tarball):
    """Nothing shipped (but the prose in docs/) names the simulator's test trust anchors."""
    members = _members(tarball)
    names = set(members)
    for gone in ("inventories/", "simulator/", "tests/integration/", "tests/simulator/", "tools/", "Makefile"):
        assert not any(n == gone.rstrip("/") or n.startswith(gone) for n in names), gone
    sample = yaml.safe_load((REPO / "inventories" / "group_vars" / "all" / "manifests.yml").read_text())
    anchors = {a for m in sample["reference_manifests"].values() for a in m.get("trust_anchors", [])}
    assert anchors
    leaks = [n for n, data in members.items() if not n.startswith("docs/")
             and any(a.encode() in data for a in anchors)]
    assert not leaks, "files in the tarball trust the simulator's test root: %s" % leaks
    for must in ("meta/execution-environment.yml", "requirements/collection.txt", "bindep.txt",
                 "roles/acceptance/README.md", "roles/audit/README.md", "CHANGELOG.rst"):
        assert must in names, must


def test_galaxy_metadata_urls():
    meta = yaml.safe_load((REPO / "galaxy.yml").read_text())
    urls = [meta[k] for k in ("repository", "documentation", "homepage", "issues")]
    assert all(u.startswith("https://") and "example.invalid" not in u for u in urls), urls
    assert len({u.split("/")[3] for u in urls}) == 1, "the project URLs disagree: %s" % urls


def _reqs(name):
    lines = (REPO / "requirements" / name).read_text().splitlines()
    return [Requirement(line.split("#")[0].strip()) for line in lines if line.split("#")[0].strip()]


def test_requirement_ranges_hold_the_pins():
    """requirements/collection.txt (ranges, for EEs) admits every pin of requirements/controller.txt
    and carries nothing of the simulator or the tests."""
    pins = {r.name.lower(): next(iter(r.specifier)).version for r in _reqs("controller.txt")}
    ranges = _reqs("collection.txt")
    assert ranges
    for r in ranges:
        assert r.name.lower() in pins, "%s has no pin in requirements/controller.txt" % r.name
        assert r.specifier.contains(pins[r.name.lower()]), "%s: pin %s outside %s" % (r.name, pins[r.name.lower()], r.specifier)
        assert not any(s.operator == "==" for s in r.specifier), "%s is pinned, not a range" % r
    assert "mfusepy" not in {r.name.lower() for r in ranges}


def test_ansible_builder_introspect(installed):
    """ansible-builder finds the collection's Python and system requirements (it leaves out
    PyYAML, which ansible-core brings anyway)."""
    p = run([VENV_BIN / "ansible-builder", "introspect", installed], env=user_env())
    assert p.returncode == 0, p.stdout
    data = yaml.safe_load(p.stdout[p.stdout.index("---"):])
    python = [r.split("#")[0].split(">")[0].split("=")[0].strip().lower() for r in data.get("python", [])]
    system = " ".join(data.get("system", []))
    assert {"jmespath", "cryptography"} <= set(python), p.stdout
    assert "libffi-devel" in system, p.stdout
    assert not {"mfusepy", "pytest", "hypothesis", "ansible-lint"} & set(python), p.stdout


def test_ansible_builder_create(tarball, tmp_path):
    """execution-environment.yml is accepted and gives a complete build context (no image is
    built: there is no container engine here)."""
    ctx = tmp_path / "context"
    p = run([VENV_BIN / "ansible-builder", "create", "-f", REPO / "execution-environment.yml", "-c", ctx,
             "--output-filename", "Containerfile"], cwd=REPO, env=user_env())
    assert p.returncode == 0, p.stdout
    containerfile = (ctx / "Containerfile").read_text()
    assert "ansible-galaxy collection install" in containerfile
    assert "introspect" in containerfile
    assert (ctx / "_build" / "collections" / "coco-tdisp.tar.gz").read_bytes() == (tarball.parent / "coco-tdisp.tar.gz").read_bytes()
    req = yaml.safe_load((ctx / "_build" / "requirements.yml").read_text())
    assert req["collections"] == [{"name": "collections/coco-tdisp.tar.gz", "type": "file"}], req


def test_simulator_sdist_installs_with_pip(tmp_path):
    """The simulator is its own Python package: an sdist builds from the checkout (as make
    sim-sdist does) and pip installs it, scenarios and test PKI included (into a target
    directory, leaving the venv alone; from a copy, since setuptools writes into the source)."""
    src = tmp_path / "simulator"
    shutil.copytree(REPO / "simulator", src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    p = run([VENV_BIN / "python", "-m", "build", "--sdist", "--outdir", tmp_path / "dist", src], env=user_env())
    assert p.returncode == 0, p.stdout
    (sdist,) = (tmp_path / "dist").glob("tdisp_sim-*.tar.gz")
    p = run([VENV_BIN / "python", "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check",
             "--target", tmp_path / "site", sdist], env=user_env())
    assert p.returncode == 0, p.stdout
    assert (tmp_path / "site" / "tdisp_sim" / "cli.py").is_file()
    assert (tmp_path / "site" / "bin" / "tdisp-sim").is_file()
    assert list((tmp_path / "site" / "tdisp_sim" / "scenarios").glob("*.yml"))
    assert list((tmp_path / "site" / "tdisp_sim" / "scenarios" / "pki" / "ca").glob("*.pem"))


def test_role_readmes_name_every_argument():
    """Galaxy shows a role's README: each role has one, and it names every option of its
    argument specs (so that the README does not fall behind meta/argument_specs.yml)."""
    roles = sorted(p for p in (REPO / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file())
    assert roles
    for role in roles:
        readme = role / "README.md"
        assert readme.is_file(), "%s has no README.md" % role.name
        text = readme.read_text()
        specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        missing = sorted({o for spec in specs.values() for o in spec.get("options", {})} - set(re.findall(r"`(\w+)`", text)))
        assert not missing, "roles/%s/README.md does not name %s" % (role.name, ", ".join(missing))
