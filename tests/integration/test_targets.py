"""One test per integration target (tests/integration/targets/<name>/runme.sh)."""

from __future__ import annotations

import pytest

from _harness import discover, run_target, scenario_of

TARGETS = discover()


def test_targets_discovered():
    """At least the simulator's own smoke target is found."""
    assert "simulator_smoke" in [t.name for t in TARGETS]


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_target(target):
    rc, output = run_target(target)
    if rc != 0:
        pytest.fail("target %s (scenario %s) failed with exit code %d; its output:\n%s"
                    % (target.name, scenario_of(target), rc, output), pytrace=False)
