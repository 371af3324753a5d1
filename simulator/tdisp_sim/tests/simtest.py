"""Helpers for the simulator's own tests: a host's sysfs driven the way devsec.sh drives it
(the fixtures that build one are in conftest.py).

``Sysfs.write(path, value)`` returns ``"ok"`` or the errno name of the failed write (one write(2),
one store()), ``Sysfs.read(path)`` returns the text read back; paths are relative to the host's
sysfs root, exactly as in kernel-abi.md §1.
"""

from __future__ import annotations

import errno
from typing import Optional

from tdisp_sim import kernel
from tdisp_sim.views.sysfs_tree import SysfsView

SAMPLE_HOST = "sample-cvm"
PF0 = "10000:01:00.0"        # samples/devsec endpoints (tools/testing/devsec/devsec.sh PCI_DEVS)
FN1 = "10000:01:00.1"        # its second function (FN_DEVS)
PF0_B = "10001:03:00.0"
GUEST = "cvm"
GPU = "0000:18:00.0"         # TEE device bound to nvidia at start
GPU2 = "0000:2a:00.0"        # TEE device, unbound at start
VIRTIO = "0000:00:03.0"      # no TEE


class Sysfs:
    def __init__(self, fleet: kernel.Fleet, host: str) -> None:
        self.fleet = fleet
        self.view = SysfsView(fleet, cache=True)  # the FUSE adapter's view
        self.name = host
        self.host = fleet.hosts[host]

    # -- file operations ------------------------------------------------------------------------
    def write(self, path: str, value, offset: int = 0) -> str:
        data = value if isinstance(value, bytes) else value.encode("latin-1")
        try:
            self.view.write(self.name, path, data, offset)
        except OSError as e:
            return errno.errorcode[e.errno]
        return "ok"

    def read(self, path: str) -> str:
        return self.view.read(self.name, path).decode("latin-1")

    def exists(self, path: str) -> bool:
        try:
            self.view.lookup(self.name, path)
        except OSError:
            return False
        return True

    def ls(self, path: str) -> list:
        return self.view.listdir(self.name, path)

    def link(self, path: str) -> str:
        return self.view.readlink(self.name, path)

    def resolve(self, path: str) -> str:
        return self.view.lookup(self.name, path)[0]

    def open_errno(self, path: str, read: bool, write: bool) -> str:
        try:
            self.view.check_open(self.name, path, read, write)
        except OSError as e:
            return errno.errorcode[e.errno]
        return "ok"

    # -- shorthands -----------------------------------------------------------------------------
    def dev(self, bdf: str) -> kernel.Device:
        return self.host.devices[bdf]

    def events(self, event: Optional[str] = None, since: int = 0) -> list:
        return [e for e in self.fleet.events_since(since, self.name) if event is None or e["event"] == event]

    def seq(self) -> int:
        return self.fleet.last_seq


def guest_scenario(**top) -> dict:
    """A guest CVM with a link TSM (tsm0) and a devsec TSM (tsm1), a bound TEE GPU, an unbound TEE
    GPU and virtio-net (no TEE). Keyword arguments replace top-level scenario fields."""
    data = {
        "name": "guest-test",
        "hosts": {"names": [GUEST]},
        "trust_abi": "trust",
        "tsms": [{"id": 0, "mode": "link"}, {"id": 1, "mode": "devsec"}],
        "drivers": [{"name": "nvidia"}, {"name": "virtio-pci", "modular": False}],
        "templates": {"gpu": {"vendor": "0x10de", "device": "0x2330", "class": "0x030200", "tee": True,
                              "preferred_driver": "nvidia", "pf0": False}},
        "devices": [
            {"template": "gpu", "bdf": GPU},
            {"template": "gpu", "bdf": GPU2, "driver": None},
            {"bdf": VIRTIO, "vendor": "0x1af4", "device": "0x1041", "class": "0x020000", "preferred_driver": "virtio-pci"},
        ],
    }
    data.update(top)
    return data


def dpath(bdf: str, attr: str = "") -> str:
    return "bus/pci/devices/%s%s" % (bdf, "/" + attr if attr else "")
