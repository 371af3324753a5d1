"""Fixtures of the simulator's own tests: fresh simulated hosts as ``simtest.Sysfs``."""

from __future__ import annotations

import pytest

from tdisp_sim import scenario

from .simtest import GUEST, SAMPLE_HOST, Sysfs, guest_scenario


@pytest.fixture
def sample() -> Sysfs:
    """samples/devsec after modprobe (scenario devsec-fresh)."""
    return Sysfs(scenario.load("devsec-fresh"), SAMPLE_HOST)


@pytest.fixture
def guest() -> Sysfs:
    """A guest with the integer trust ABI (see guest_scenario)."""
    return Sysfs(scenario.build(guest_scenario()), GUEST)


@pytest.fixture
def make_guest():
    """guest_scenario(**top) as a Sysfs."""
    def make(**top) -> Sysfs:
        return Sysfs(scenario.build(guest_scenario(**top)), GUEST)
    return make
