"""Transitional alias for tests/abi and tests/simulator (``EvidenceServer`` now lives in
``tdisp_sim.views.netlink``, ``set_fault``/``clear_fault`` in ``tdisp_sim.faults.evidence``); drop it
once they import the new paths."""

from .faults.evidence import clear_fault, set_fault  # noqa: F401
from .views.netlink import FAMILIES, MAX_OBJECT_SIZE, EvidenceServer  # noqa: F401
