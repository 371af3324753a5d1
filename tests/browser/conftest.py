# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The browser tests run with the project's venv (``.venv/bin/python -m pytest -q tests/browser``):
the collection is imported from ``build/collections`` (``make env`` links it)."""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, 'build', 'collections')
if not os.path.isdir(os.path.join(COLLECTIONS, 'ansible_collections', 'coco', 'tdisp')):
    raise SystemExit('tests/browser: build/collections/ansible_collections/coco/tdisp is missing; run make env first')
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
