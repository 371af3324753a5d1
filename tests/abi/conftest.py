"""The collection's ABI layer driven against the simulator's kernel model (no FUSE).

Run with ``PYTHONPATH=build/collections:simulator .venv/bin/python -m pytest tests/abi``
(``make pytest`` does). ``Sim`` loads a shipped scenario into a ``Fleet`` and hands out a
``Sysfs`` per host whose ``io`` is ``SimIO`` (tests/abi/abi_sim.py), so every write runs the
kernel model's ``store()`` handlers in the kernel's order of checks, and every write, failed or
not, is an event in the model's log.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
# The collection is importable as ansible_collections.coco.tdisp through build/collections (make env).
_COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'build', 'collections')
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)

from abi_sim import Provider, SimEvidence, SimIO  # noqa: E402,F401
from tdisp_sim import scenario  # noqa: E402
from tdisp_sim.views.sysfs_tree import SysfsView  # noqa: E402

from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.ledger import Ledger  # noqa: E402
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.options import Options  # noqa: E402
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.plan_state import converge_state  # noqa: E402
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.plan_trust import converge_trust  # noqa: E402
from ansible_collections.coco.tdisp.plugins.module_utils._abi.sysfs import Sysfs  # noqa: E402
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.info import gather  # noqa: E402


class Sim:
    def __init__(self, name: str, state_root: str) -> None:
        self.fleet = scenario.load(name)
        self.view = SysfsView(self.fleet)
        self.state_root = state_root
        self.ios = {}

    def host(self, name: str):
        return self.fleet.hosts[name]

    def dev(self, host: str, bdf: str):
        return self.fleet.hosts[host].devices[bdf]

    def sysfs(self, host: str) -> Sysfs:
        io = SimIO(self.view, host)
        self.ios.setdefault(host, []).append(io)
        return Sysfs('/sim', io=io)

    def opened_for_write(self, host: str) -> int:
        return sum(io.opened_for_write for io in self.ios.get(host, []))

    def state_dir(self, host: str) -> str:
        return os.path.join(self.state_root, host)

    def ledger(self, host: str) -> Ledger:
        return Ledger(self.state_dir(host))

    def writes(self, host: str, since: int = 0) -> list:
        return [e for e in self.fleet.events_since(since, host) if e['event'] == 'write']

    def seq(self) -> int:
        return max((e['seq'] for e in self.fleet.events), default=0)

    # -- the domain calls the modules make ---------------------------------------------------------
    def state(self, host: str, devices, evidence=None, **opts):
        return converge_state(self.sysfs(host), self.ledger(host), devices, Options(**opts), self._factory(host, evidence))

    def trust(self, host: str, devices, evidence=None, **opts):
        return converge_trust(self.sysfs(host), self.ledger(host), devices, Options(**opts), self._factory(host, evidence))

    def _factory(self, host: str, evidence=None):
        """The evidence client of a call: the one given, else one reading the kernel model directly."""
        client = evidence if evidence is not None else SimEvidence(self.host(host))

        def factory():
            return client
        return factory

    def info(self, host: str, **kw):
        return gather(self.sysfs(host), **kw)

    def facts(self, host: str, bdf: str):
        devs = self.info(host, bdfs=[bdf])['devices']
        return devs[0] if devs else None


@pytest.fixture
def state_root():
    d = tempfile.mkdtemp(prefix='tdisp-abi-')
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def sim(state_root):
    def make(name: str) -> Sim:
        return Sim(name, state_root)
    return make


@pytest.fixture(scope='session')
def provider():
    return Provider()


@pytest.fixture
def evidence_server(state_root, provider):
    """Start the simulator's evidence endpoint for a fleet: ``serve(sim) -> server``."""
    from tdisp_sim.views.netlink import EvidenceServer
    servers = []

    def serve(s: Sim):
        srv = EvidenceServer(s.fleet, os.path.join(state_root, 'ev'), provider=provider).start()
        servers.append(srv)
        return srv
    yield serve
    for srv in servers:
        srv.stop()
