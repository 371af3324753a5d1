# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The evidence client factory used by the modules (private; may change at any time).

The netlink client is imported only when a module actually needs evidence (a generation pin,
``include_evidence``), so that a plain state run does not pay for it.
"""

from __future__ import annotations

import typing as t


def client_factory(endpoint: str, timeout: float = 5.0, retries: int = 3) -> t.Callable[[], t.Any]:
    """A callable that returns a new ``EvidenceClient`` (a context manager) for ``endpoint``."""
    def make() -> t.Any:
        from ansible_collections.coco.tdisp.plugins.module_utils._evidence.netlink import EvidenceClient
        return EvidenceClient(endpoint, timeout=timeout, retries=retries)
    return make
