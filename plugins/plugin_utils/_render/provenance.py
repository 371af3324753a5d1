# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Who wrote a report, when, and from what: the ``provenance`` field of every JSON report.

``build(policy, manifests, check_mode, now)`` returns ``{collection_version, policy: {version,
digest}, manifests: {name: digest}, controller, user, time, check_mode}``. A digest is
``sha256:<hex>`` of the canonical JSON (sorted keys, no spaces) of the data, so the same policy
gives the same digest on every controller, whatever YAML it was written in.
"""

from __future__ import annotations

import datetime
import getpass
import hashlib
import json
import os
import socket
import typing as t
from collections.abc import Mapping

# plugins/plugin_utils/_render/provenance.py -> the collection's root
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def digest(data: t.Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``data``."""
    text = json.dumps(data, sort_keys=True, separators=(',', ':'), ensure_ascii=False, default=str)
    return 'sha256:' + hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()


def collection_version(root: str = ROOT) -> t.Optional[str]:
    """The version in ``MANIFEST.json`` (an installed collection), else in ``galaxy.yml`` (a checkout); None if neither says."""
    try:
        with open(os.path.join(root, 'MANIFEST.json'), encoding='utf-8') as handle:
            return str(json.load(handle)['collection_info']['version'])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        with open(os.path.join(root, 'galaxy.yml'), encoding='utf-8') as handle:
            for line in handle:
                if line.startswith('version:'):
                    return line.split(':', 1)[1].split('#', 1)[0].strip().strip('\'"') or None
    except OSError:
        pass
    return None


def _user() -> t.Optional[str]:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return None


def build(policy: t.Any, manifests: t.Any, check_mode: bool, now: t.Optional[datetime.datetime] = None,
          controller: t.Optional[str] = None, user: t.Optional[str] = None, root: str = ROOT) -> dict[str, t.Any]:
    """The provenance of a report written now from ``policy`` and ``manifests`` (see the module docstring)."""
    moment = (now or datetime.datetime.now(datetime.timezone.utc)).astimezone(datetime.timezone.utc)
    policy_map = policy if isinstance(policy, Mapping) else {}
    return {
        'collection_version': collection_version(root),
        'policy': {'version': None if policy_map.get('version') is None else str(policy_map.get('version')),
                   'digest': digest(policy) if policy is not None else None},
        'manifests': {str(name): digest(body) for name, body in sorted((manifests or {}).items(), key=lambda kv: str(kv[0]))}
        if isinstance(manifests, Mapping) else {},
        'controller': controller if controller is not None else socket.gethostname(),
        'user': user if user is not None else _user(),
        'time': moment.strftime('%Y-%m-%dT%H:%M:%SZ'),
        'check_mode': bool(check_mode),
    }
