"""Transitional alias of ``tdisp_sim.views.sysfs_tree`` for tests/abi/conftest.py; drop it once that imports the new path."""

from .views.sysfs_tree import SysfsView  # noqa: F401
