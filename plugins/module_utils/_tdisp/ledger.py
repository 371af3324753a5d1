# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The host-side ledger: what the collection did to each device (private; may change at any time).

``<state_dir>/ledger.json`` (default ``/var/lib/coco-tdisp``), mode 0600 in a 0700 directory,
replaced atomically (a temporary file in the same directory, fsync, rename). It is never written
in check mode, and only written when its content changes; a host the collection never changed
has none. Format::

    {"format": 2,
     "devices": {
       "0000:41:00.0": {
         "unbound_driver": "nvidia",   # driver the collection unbound and owes a rebind (DESIGN fact 2)
         "trust_level": "tcb",         # level the collection last set (device_trust)
         "trust_abi": "trust",         # the ABI it was set through
         "generation": 7,              # evidence generation pinned when it was accepted / set
         "pending_rebind": true,       # module trust= written, the bound driver not yet rebound
         "rejected": {"reason": "...", "policy_version": "2026.11.1", "at": "..."},  # refused by policy (tdisp_device)
         "acceptance": {"state": "committed", "generation": 7, ...},  # docs/reliability.md
         "journal": {"step": "accept", "phase": "intent", ...},       # docs/reliability.md
         "updated": "2026-11-27T12:00:00Z"}},
     "policy": {"version": "2026.11.1",          # the acceptance policy last applied (device_trust policy_version)
                "applied": "2026-11-27T12:00:00Z"}}

The unbound driver is recorded *before* the unbind is written, so a run that dies half-way
still lets the next run restore the driver. A format-1 ledger is read and written back as
format 2. Each save is a read-modify-write under an exclusive ``flock`` of ``state_dir``: the
file is read again under the lock and only the entries this run changed are applied, so a
concurrent run's update is never lost (docs/reliability.md, "Target-side contract").
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._abi.names import is_bdf, is_name

FILE = 'ledger.json'
FORMAT = 2
FORMATS = (1, 2)
KEYS = ('unbound_driver', 'trust_level', 'trust_abi', 'generation', 'pending_rebind', 'rejected', 'acceptance', 'journal')


def now_stamp() -> str:
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


class Ledger:
    def __init__(self, state_dir: str) -> None:
        if not isinstance(state_dir, str) or not state_dir.startswith('/'):
            raise TdispError('state_dir %r is not an absolute path' % (state_dir,), attribute='state_dir',
                             remedy='use an absolute directory such as /var/lib/coco-tdisp')
        self.state_dir = state_dir.rstrip('/') or '/'
        self.path = os.path.join(self.state_dir, FILE)
        self.devices: t.Dict[str, t.Dict[str, t.Any]] = {}
        self.policy: t.Optional[t.Dict[str, str]] = None
        self._saved = '{}'
        self._dirty: t.Set[str] = set()
        self.run_id: t.Optional[str] = None            # set by the run lock (docs/reliability.md)
        self.policy_version: t.Optional[str] = None
        self._policy_dirty = False
        self._load()

    def _load(self) -> None:
        data = self._read()
        if data is not None:
            self.devices, self.policy = _clean(data)
        self._saved = self._render()

    def _read(self) -> t.Optional[t.Dict[str, t.Any]]:
        """The ledger file's content, None when there is none."""
        try:
            with open(self.path, 'rb') as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TdispError('cannot read the ledger %s (%s)' % (self.path, exc.strerror), attribute='state_dir',
                             remedy='check permissions, or point state_dir at a readable directory')
        try:
            data = json.loads(raw.decode('utf-8'))
            if not isinstance(data, dict) or data.get('format') not in FORMATS or not isinstance(data.get('devices'), dict):
                raise ValueError('unexpected structure')
        except (ValueError, UnicodeDecodeError) as exc:
            raise TdispError('the ledger %s is not a format-%d ledger (%s)' % (self.path, FORMAT, exc), attribute='state_dir',
                             remedy='inspect it and move it aside; it records drivers the collection must rebind')
        return data

    def _render(self) -> str:
        return _render(self.devices, self.policy)

    def as_dict(self) -> t.Dict[str, t.Any]:
        """The ledger as the info module returns it: ``{devices, policy}``."""
        return {'devices': {b: dict(e) for b, e in self.devices.items()}, 'policy': dict(self.policy) if self.policy else None}

    def set_policy(self, version: str) -> bool:
        """Record the policy version applied to this host; returns whether the record changes."""
        if self.policy is not None and self.policy.get('version') == version:
            return False
        self.policy = {'version': version, 'applied': now_stamp()}
        self._policy_dirty = True
        return True

    # -- access ---------------------------------------------------------------------------------
    def entry(self, bdf: str) -> t.Dict[str, t.Any]:
        return dict(self.devices.get(bdf, {}))

    def unbound_drivers(self) -> t.Dict[str, str]:
        return {b: e['unbound_driver'] for b, e in self.devices.items() if e.get('unbound_driver')}

    def update(self, bdf: str, **fields: t.Any) -> None:
        """Set fields of a device's entry; a value of None removes the field."""
        entry = dict(self.devices.get(bdf, {}))
        before = {k: v for k, v in entry.items() if k != 'updated'}
        for key, value in fields.items():
            if key not in KEYS:
                raise KeyError(key)
            if value is None:
                entry.pop(key, None)
            else:
                entry[key] = value
        after = {k: v for k, v in entry.items() if k != 'updated'}
        if after == before:
            return
        self._dirty.add(bdf)
        if after:
            entry['updated'] = now_stamp()
            self.devices[bdf] = entry
        else:
            self.devices.pop(bdf, None)

    # -- the transaction journal and the acceptance record (docs/reliability.md) -------------------
    def journal(self, bdf: str, step: str, phase: str, **fields: t.Any) -> None:
        """Record a step's intent (before the write) or outcome (after it) and make it durable at once."""
        entry: t.Dict[str, t.Any] = {'step': step, 'phase': phase, 'pid': os.getpid(), 'at': now_stamp()}
        entry.update({k: v for k, v in fields.items() if v is not None})
        entry['run_id'] = self.run_id
        self.update(bdf, journal=entry)
        self.save()

    def acceptance(self, bdf: str) -> t.Optional[t.Dict[str, t.Any]]:
        rec = self.devices.get(bdf, {}).get('acceptance')
        return dict(rec) if isinstance(rec, dict) else None

    def committed(self, bdf: str) -> t.Optional[t.Dict[str, t.Any]]:
        """The device's committed acceptance record, None without one."""
        rec = self.acceptance(bdf)
        return rec if rec is not None and rec.get('state') == 'committed' else None

    def accept_record(self, bdf: str, state: str, generation: t.Optional[int], identity: t.Optional[str],
                      unverified: bool = False) -> None:
        self.update(bdf, acceptance={'state': state, 'generation': generation, 'identity': identity,
                                     'policy_version': self.policy_version, 'unverified': bool(unverified),
                                     'run_id': self.run_id, 'at': now_stamp()})

    def save(self) -> bool:
        """Write the ledger if it changed (never call in check mode). Returns whether it wrote.

        Under an exclusive flock of ``state_dir``: read the file again, apply this run's changed
        entries (and policy) over it, write it atomically; afterwards ``devices`` is the merged content."""
        text = self._render()
        if text == self._saved and not self._dirty and not self._policy_dirty:
            return False
        if not self.devices and self.policy is None and not os.path.exists(self.path):
            self._saved = text
            return False
        try:
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
            with DirLock(self.state_dir):
                self._merge()
                text = self._render()
                if text != self._saved:
                    self._write(text)
        except OSError as exc:
            raise TdispError('cannot write the ledger %s (%s)' % (self.path, exc.strerror), attribute='state_dir',
                             remedy='point state_dir at a writable directory (it records drivers to rebind)')
        self._saved = text
        self._dirty.clear()
        self._policy_dirty = False
        return True

    def _merge(self) -> None:
        """This run's changed entries over the file's current content (another run may have saved since we read)."""
        data = self._read()
        if data is None:
            return
        devices, policy = _clean(data)
        for bdf in self._dirty:
            if bdf in self.devices:
                devices[bdf] = self.devices[bdf]
            else:
                devices.pop(bdf, None)
        self.devices = devices
        if not self._policy_dirty:
            self.policy = policy
        self._saved = self._render_of(data)

    def _render_of(self, data: t.Dict[str, t.Any]) -> str:
        """The file's content as we would render it (so that a merge with nothing new writes nothing)."""
        if data.get('format') != FORMAT:
            return ''
        devices, policy = _clean(data)
        return _render(devices, policy)

    def _write(self, text: str) -> None:
        write_atomic(self.path, text + '\n')


def _render(devices: t.Mapping[str, t.Any], policy: t.Optional[t.Mapping[str, str]]) -> str:
    data: t.Dict[str, t.Any] = {'format': FORMAT, 'devices': devices}
    if policy is not None:
        data['policy'] = policy
    return json.dumps(data, sort_keys=True, indent=1)


def _clean(data: t.Mapping[str, t.Any]) -> t.Tuple[t.Dict[str, t.Dict[str, t.Any]], t.Optional[t.Dict[str, str]]]:
    """The devices and policy of a parsed ledger file, junk entries dropped."""
    devices: t.Dict[str, t.Dict[str, t.Any]] = {}
    for bdf, entry in data['devices'].items():
        if not is_bdf(bdf) or not isinstance(entry, dict):
            continue
        clean = {k: entry[k] for k in KEYS + ('updated',) if k in entry}
        drv = clean.get('unbound_driver')
        if drv is not None and not (isinstance(drv, str) and is_name(drv)):
            clean.pop('unbound_driver')
        for key in ('acceptance', 'journal'):
            if key in clean and not isinstance(clean[key], dict):
                clean.pop(key)
        devices[bdf] = clean
    policy = data.get('policy')
    clean_policy = None
    if isinstance(policy, dict) and isinstance(policy.get('version'), str):
        clean_policy = {k: str(policy[k]) for k in ('version', 'applied') if isinstance(policy.get(k), str)}
    return devices, clean_policy


class DirLock:
    """An exclusive ``flock`` of a directory, for a read-modify-write of the files in it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> 'DirLock':
        self.fd = os.open(self.path, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0) | getattr(os, 'O_CLOEXEC', 0))
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: t.Any) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` durably: temporary file in the same directory, fsync, rename, fsync of the directory."""
    tmp = '%s.tmp.%d' % (path, os.getpid())
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0), 0o600)
        try:
            data = text.encode('utf-8')
            while data:
                n = os.write(fd, data)
                data = data[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(os.path.dirname(path) or '/', os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
