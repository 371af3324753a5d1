"""Helpers of the ABI tests (the module name is unique so that no other conftest shadows it).

``SimIO``: an ``io`` for the ABI layer's ``Sysfs`` that drives the simulator's ``SysfsView`` directly (no FUSE).

It maps the primitive operations of ``OsIO`` (kind, readlink, listdir, read, write) onto
``SysfsView`` paths relative to a simulated host's sysfs root, with the same errno values the
FUSE mount would give (ELOOP for a final symlink opened with O_NOFOLLOW)."""

from __future__ import annotations

import errno
import gzip
import os
import struct


class SimIO:
    def __init__(self, view, host: str, root: str = "/sim") -> None:
        self.view = view
        self.host = host
        self.root = root.rstrip("/")
        self.opened_for_write = 0

    def canonical_root(self, root: str) -> str:
        return root.rstrip("/")

    def _rel(self, path: str) -> str:
        if path == self.root:
            return ""
        if not path.startswith(self.root + "/"):
            raise OSError(errno.ENOENT, "outside the simulated root", path)
        return path[len(self.root) + 1:]

    def kind(self, path: str) -> str:
        return self.view.stat(self.host, self._rel(path))[0]

    def readlink(self, path: str) -> str:
        return self.view.readlink(self.host, self._rel(path))

    def listdir(self, path: str) -> list:
        return self.view.listdir(self.host, self._rel(path))

    def read(self, path: str) -> bytes:
        if path == os.path.dirname(self.root).rstrip("/") + "/proc/config.gz":
            # the FUSE mount serves <host>/proc/config.gz beside <host>/sys (views/fuse.py)
            return gzip.compress(self.view.fleet.hosts[self.host].kernel_config().encode(), mtime=0)
        rel = self._rel(path)
        if self.view.stat(self.host, rel)[0] == "link":
            raise OSError(errno.ELOOP, "symlink", path)
        self.view.check_open(self.host, rel, True, False)
        return self.view.read(self.host, rel)

    def write(self, path: str, data: bytes) -> None:
        rel = self._rel(path)
        if self.view.stat(self.host, rel)[0] == "link":
            raise OSError(errno.ELOOP, "symlink", path)
        self.opened_for_write += 1
        self.view.check_open(self.host, rel, False, True)
        self.view.write(self.host, rel, data)


class SimEvidence:
    """A stand-in for EvidenceClient that reads the kernel model directly (generation, validate)."""

    def __init__(self, host) -> None:
        self.host = host
        self.validated = []
        self.reads = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def generation(self, bdf):
        self.reads += 1
        return self.host.devices[bdf].generation

    def validate(self, bdf, generation):
        d = self.host.devices[bdf]
        self.validated.append((bdf, generation))
        if d.generation != generation:
            from ansible_collections.coco.tdisp.plugins.module_utils._errors import EvidenceError
            import errno
            raise EvidenceError('generation %d is not current' % generation, device=bdf, errno=errno.EAGAIN)
        d.validated_generation = generation
        return True


class Provider:
    """Well-formed evidence per device (the simulator's own encoders and test PKI), per generation."""

    def __init__(self) -> None:
        from tdisp_sim.evidence import DeviceEvidence, TestPki
        self.pki = TestPki.generate(variants=())
        self._make = DeviceEvidence
        self._cache = {}
        self.profile = {'firmware_version': '1.0', 'svn': 1,
                        'measurements': [{'index': 1, 'type': 'immutable_rom', 'digest': bytes(range(48))}],
                        'mmio_ranges': [{'first_page': 0x1000, 'pages': 16}]}

    def __call__(self, host, device, types, nonce):
        ev = self._cache.get(device.bdf)
        if ev is None:
            ident = self.pki.add_device(device.bdf.replace(':', '-'))
            ev = self._make(self.profile, ident.key, self.pki.chain(device.bdf.replace(':', '-')))
            self._cache[device.bdf] = ev
        objs = ev.objects(nonce or b'')
        return {t: objs.get(t, b'') for t in types}


def good_report() -> bytes:
    # INTERFACE_INFO, RESERVED, MSI_X_MESSAGE_CONTROL, LNR_CONTROL, TPH_CONTROL, MMIO_RANGE_COUNT
    head = struct.pack('<HHHHII', 0x0003, 0, 0, 0, 0, 1)
    mmio = struct.pack('<QIHH', 0x1000, 16, 0, 0)  # FIRST_PAGE, NUMBER_OF_PAGES, RANGE_ATTRIBUTES, RANGE_ID
    return head + mmio + struct.pack('<I', 0)     # DEVICE_SPECIFIC_INFO_LEN
