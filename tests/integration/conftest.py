"""pytest side of the integration runner (tests/integration/_harness.py).

``make integration`` runs ``pytest tests/integration``: test_targets.py makes one test per target
directory, each against its own simulated fleet. The ``simulator`` fixture gives other tests the
same running fleet: ``with simulator("mixed-fleet") as sim: ... sim.mount, sim.inventory``.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from _harness import Simulator  # noqa: E402


@pytest.fixture
def simulator():
    """A factory: ``simulator(scenario)`` returns a context manager that starts and stops it."""
    return Simulator
