# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Shared fixtures: plain directory trees shaped like a sysfs root (docs/internals.md "The simulated host tree"),
used by the ABI-layer and module unit tests.

No simulator here (it needs Python 3.11+ and these tests run on 3.9 too): the read paths are
tested against real files and symlinks built in tmp_path, the way ansible.posix tests sysctl.
"""

from __future__ import annotations

import builtins
import os
import typing as t

import pytest


class Tree:
    def __init__(self, root: str) -> None:
        self.root = root
        for d in ('class/tsm', 'devices/virtual/tsm', 'bus/pci/devices', 'bus/pci/drivers', 'module'):
            os.makedirs(os.path.join(root, d), exist_ok=True)

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def put(self, rel: str, content: t.Union[str, bytes]) -> None:
        full = self.path(rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        data = content.encode('latin-1') if isinstance(content, str) else content
        with open(full, 'wb') as f:
            f.write(data)

    def link(self, rel: str, target: str) -> None:
        full = self.path(rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if os.path.lexists(full):
            os.unlink(full)
        os.symlink(target, full)

    def remove(self, rel: str) -> None:
        os.unlink(self.path(rel))

    def tsm(self, name: str, mode: t.Optional[str] = 'devsec') -> None:
        os.makedirs(self.path('devices/virtual/tsm/' + name), exist_ok=True)
        if mode is not None:
            self.put('devices/virtual/tsm/%s/pci_mode' % name, mode + '\n')
        self.link('class/tsm/' + name, '../../devices/virtual/tsm/' + name)

    def driver(self, name: str, module: t.Optional[str] = None) -> None:
        for f in ('bind', 'unbind'):
            self.put('bus/pci/drivers/%s/%s' % (name, f), '')
        if module is not None:
            self.link('bus/pci/drivers/%s/module' % name, '../../../../module/' + module)

    def module_param(self, module: str, value: str) -> None:
        self.put('module/%s/parameters/trust' % module, value + '\n')

    def devdir(self, bdf: str) -> str:
        return 'devices/pci%s/%s' % (bdf.rsplit(':', 1)[0], bdf)

    def device(self, bdf: str, vendor: str = '0x10de', device: str = '0x2330', klass: str = '0x030200',
               driver: t.Optional[str] = None, override: t.Optional[str] = None, guest: bool = True, host: bool = False,
               lock: str = '', accept: str = '0', trust: t.Optional[str] = None, trust_policy: t.Optional[str] = None,
               tsm_dir: bool = True) -> str:
        d = self.devdir(bdf)
        for attr, value in (('vendor', vendor), ('device', device), ('class', klass), ('subsystem_vendor', vendor),
                            ('subsystem_device', '0x16c1'), ('revision', '0xa1')):
            self.put(d + '/' + attr, value + '\n')
        self.put(d + '/driver_override', (override or '(null)') + '\n')
        if driver:
            self.driver(driver) if not os.path.isdir(self.path('bus/pci/drivers/' + driver)) else None
            self.link(d + '/driver', '../../../bus/pci/drivers/' + driver)
        if trust is not None:
            self.put(d + '/trust', trust + '\n')
        if trust_policy is not None:
            self.put(d + '/trust_policy', trust_policy + '\n')
        if tsm_dir:
            os.makedirs(self.path(d + '/tsm'), exist_ok=True)
            if guest:
                self.put(d + '/tsm/lock', lock + '\n')
                self.put(d + '/tsm/unlock', '')
                self.put(d + '/tsm/accept', accept + '\n')
            if host:
                self.put(d + '/tsm/connect', '\n')
                self.put(d + '/tsm/disconnect', '')
                self.put(d + '/tsm/dsm', '\n')
                self.put(d + '/tsm/bound', '\n')
        self.link('bus/pci/devices/' + bdf, '../../../' + d)
        return d


@pytest.fixture
def tree(tmp_path) -> Tree:
    root = tmp_path / 'sys'
    root.mkdir()
    return Tree(str(root))


@pytest.fixture
def guest(tree: Tree) -> Tree:
    """A guest with one devsec TSM, one link TSM and three devices in the three states (integer trust ABI)."""
    tree.tsm('tsm0', 'link')
    tree.tsm('tsm1', 'devsec')
    tree.device('0000:41:00.0', driver='nvidia', trust='0')
    tree.device('0000:42:00.0', lock='tsm1', accept='0', trust='0')
    tree.device('10000:01:00.0', vendor='0x8086', device='0xffff', klass='0x120000', lock='tsm1', accept='1', trust='3')
    return tree


@pytest.fixture
def no_writes(monkeypatch) -> t.List[tuple]:
    """Record every call that writes, opens for writing or creates anything (the calls go on, so
    that a test sees everything its code would have written): check mode asserts the list is empty."""
    events: t.List[tuple] = []
    real_open, real_builtin_open = os.open, builtins.open
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def spy_open(path, flags, *a, **kw):
        if flags & write_flags:
            events.append(('os.open', path, flags))
        return real_open(path, flags, *a, **kw)

    def spy_builtin_open(file, mode='r', *a, **kw):
        if any(c in mode for c in 'wax+') and not str(file).startswith('/dev/'):
            events.append(('open', file, mode))
        return real_builtin_open(file, mode, *a, **kw)

    def spy(name, real):
        def fn(*a, **kw):
            events.append((name,) + a)
            return real(*a, **kw)
        return fn

    monkeypatch.setattr(os, 'open', spy_open)
    monkeypatch.setattr(builtins, 'open', spy_builtin_open)
    for name in ('write', 'replace', 'rename', 'makedirs', 'mkdir', 'unlink', 'remove', 'symlink', 'rmdir', 'truncate', 'fsync'):
        monkeypatch.setattr(os, name, spy('os.' + name, getattr(os, name)))
    return events
