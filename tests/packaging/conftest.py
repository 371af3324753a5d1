"""Fixtures of the packaging checks: the built tarball, and the collection installed from it.

``make package`` runs ``pytest tests/packaging``. The tarball is built once per session
(tools/package.sh) and installed once into a fresh path with ``ansible-galaxy collection
install -p``, as a user would.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from _pkg import REPO, VENV_BIN, run, user_env  # noqa: E402


@pytest.fixture(scope="session")
def tarball():
    p = run([REPO / "tools" / "package.sh"], cwd=REPO)
    assert p.returncode == 0, p.stdout
    return Path(p.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def installed(tarball, tmp_path_factory):
    """The collections path the tarball was installed into (…/ansible_collections/coco/tdisp)."""
    dest = tmp_path_factory.mktemp("installed") / "collections"
    # From a directory of its own: the checkout's ansible.cfg would find the checkout's collection.
    p = run([VENV_BIN / "ansible-galaxy", "collection", "install", "--offline", "-p", dest, tarball],
            cwd=dest.parent, env=user_env())
    assert p.returncode == 0, p.stdout
    assert (dest / "ansible_collections" / "coco" / "tdisp" / "MANIFEST.json").is_file(), p.stdout
    return dest
