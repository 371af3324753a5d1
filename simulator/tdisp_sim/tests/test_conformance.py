"""Conformance of the simulator's kernel model to shared/docs/kernel-abi.md, as tables.

One row per fact of §1a, §1b and §1c (several for rows with several errors), per transition of
§3, per check order of §9, plus the driver core, kernfs file semantics, faults and triggers. Each
row reads like tools/testing/devsec/devsec.sh: one step, one expected outcome (the value read
back, or the errno of the write). The rows are in rows_host.py, rows_guest.py, rows_model.py and rows_devsec.py (devsec.sh,
trust_policy design B, kernel profiles);
their vocabulary (worlds, steps) is in rows.py.
"""

from __future__ import annotations

import pytest

from . import rows_devsec, rows_guest, rows_host, rows_model
from .rows import run_row

ROWS = rows_host.ROWS + rows_guest.ROWS + rows_model.ROWS + rows_devsec.ROWS


def test_row_ids_are_unique():
    ids = [r[0] for r in ROWS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("world, given, step, expected", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_row(world, given, step, expected):
    assert run_row(world, given, step) == expected
