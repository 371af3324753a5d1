# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The host-side ledger: what the collection did to each device (private; may change at any time).

``<state_dir>/ledger.json`` (default ``/var/lib/coco-tdisp``), mode 0600 in a 0700 directory,
replaced atomically (a temporary file in the same directory, fsync, rename). It is never written
in check mode, and only written when its content changes; a host the collection never changed
has none. Format::

    {"format": 1,
     "devices": {
       "0000:41:00.0": {
         "unbound_driver": "nvidia",   # driver the collection unbound and owes a rebind (DESIGN fact 2)
         "trust_level": "tcb",         # level the collection last set (device_trust)
         "trust_abi": "trust",         # the ABI it was set through
         "generation": 7,              # evidence generation pinned when it was accepted / set
         "pending_rebind": true,       # module trust= written, the bound driver not yet rebound
         "rejected": {"reason": "...", "policy_version": "2026.11.1", "at": "..."},  # refused by policy (tdisp_device)
         "updated": "2026-11-27T12:00:00Z"}},
     "policy": {"version": "2026.11.1",          # the acceptance policy last applied (device_trust policy_version)
                "applied": "2026-11-27T12:00:00Z"}}

The unbound driver is recorded *before* the unbind is written, so a run that dies half-way
still lets the next run restore the driver.
"""

from __future__ import annotations

import json
import os
import time
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._abi.names import is_bdf, is_name

FILE = 'ledger.json'
FORMAT = 1
KEYS = ('unbound_driver', 'trust_level', 'trust_abi', 'generation', 'pending_rebind', 'rejected')


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
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path, 'rb') as f:
                raw = f.read()
        except FileNotFoundError:
            self._saved = self._render()
            return
        except OSError as exc:
            raise TdispError('cannot read the ledger %s (%s)' % (self.path, exc.strerror), attribute='state_dir',
                             remedy='check permissions, or point state_dir at a readable directory')
        try:
            data = json.loads(raw.decode('utf-8'))
            if not isinstance(data, dict) or data.get('format') != FORMAT or not isinstance(data.get('devices'), dict):
                raise ValueError('unexpected structure')
        except (ValueError, UnicodeDecodeError) as exc:
            raise TdispError('the ledger %s is not a format-%d ledger (%s)' % (self.path, FORMAT, exc), attribute='state_dir',
                             remedy='inspect it and move it aside; it records drivers the collection must rebind')
        for bdf, entry in data['devices'].items():
            if not is_bdf(bdf) or not isinstance(entry, dict):
                continue
            clean = {k: entry[k] for k in KEYS + ('updated',) if k in entry}
            drv = clean.get('unbound_driver')
            if drv is not None and not (isinstance(drv, str) and is_name(drv)):
                clean.pop('unbound_driver')
            self.devices[bdf] = clean
        policy = data.get('policy')
        if isinstance(policy, dict) and isinstance(policy.get('version'), str):
            self.policy = {k: str(policy[k]) for k in ('version', 'applied') if isinstance(policy.get(k), str)}
        self._saved = self._render()

    def _render(self) -> str:
        data: t.Dict[str, t.Any] = {'format': FORMAT, 'devices': self.devices}
        if self.policy is not None:
            data['policy'] = self.policy
        return json.dumps(data, sort_keys=True, indent=1)

    def as_dict(self) -> t.Dict[str, t.Any]:
        """The ledger as the info module returns it: ``{devices, policy}``."""
        return {'devices': {b: dict(e) for b, e in self.devices.items()}, 'policy': dict(self.policy) if self.policy else None}

    def set_policy(self, version: str) -> bool:
        """Record the policy version applied to this host; returns whether the record changes."""
        if self.policy is not None and self.policy.get('version') == version:
            return False
        self.policy = {'version': version, 'applied': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}
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
        if after:
            entry['updated'] = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
            self.devices[bdf] = entry
        else:
            self.devices.pop(bdf, None)

    def save(self) -> bool:
        """Write the ledger if it changed (never call in check mode). Returns whether it wrote."""
        text = self._render()
        if text == self._saved:
            return False
        if not self.devices and self.policy is None and not os.path.exists(self.path):
            self._saved = text
            return False
        tmp = '%s.tmp.%d' % (self.path, os.getpid())
        try:
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0), 0o600)
            try:
                data = (text + '\n').encode('utf-8')
                while data:
                    n = os.write(fd, data)
                    data = data[n:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise TdispError('cannot write the ledger %s (%s)' % (self.path, exc.strerror), attribute='state_dir',
                             remedy='point state_dir at a writable directory (it records drivers to rebind)')
        try:
            dfd = os.open(self.state_dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
        self._saved = text
        return True
