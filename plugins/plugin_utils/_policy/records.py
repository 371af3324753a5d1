# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The target side's acceptance records, as the planner and the audit read them (private).

A device found in RUN or at trust ``tcb`` is believed only with a committed acceptance record in
the host's ledger (docs/reliability.md, "Target-side contract"); otherwise it is drift
(``unexplained_state``), whatever the kernel files say.
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping


def acceptance_of(device: Mapping[str, t.Any], record: t.Optional[Mapping[str, t.Any]]) -> dict[str, t.Any]:
    """The device's acceptance record as the target side reports it: ``{committed, matches, generation, identity, pending_step}``.

    ``tdisp_device_info`` (ledger format 2, docs/reliability.md) returns it per device; else it is
    read from the ledger entry's ``acceptance``. A ledger of format 1 (no acceptance records at
    all, older target side) counts the generation the collection pinned as the record."""
    found = device.get('acceptance')
    if isinstance(found, Mapping):
        return dict(found, committed=found.get('committed') is True)
    record = record or {}
    entry = record.get('acceptance')
    journal = record.get('journal') if isinstance(record.get('journal'), Mapping) else {}
    pending = journal.get('step') if journal.get('phase') == 'intent' else None
    if isinstance(entry, Mapping):
        return {'committed': entry.get('state') == 'committed', 'generation': entry.get('generation'),
                'identity': entry.get('identity'), 'matches': None, 'pending_step': pending}
    legacy = isinstance(record.get('generation'), int) and 'journal' not in record
    return {'committed': legacy, 'generation': record.get('generation'), 'identity': None, 'matches': None, 'pending_step': pending}


def unexplained(device: Mapping[str, t.Any], record: t.Optional[Mapping[str, t.Any]]) -> t.Optional[str]:
    """Why a device in RUN or at trust tcb cannot be believed (no committed acceptance record), or None."""
    state, level = device.get('tdisp_state'), device.get('trust_level')
    if state != 'run' and level != 'tcb':
        return None
    acceptance = acceptance_of(device, record)
    if acceptance['committed']:
        return None  # a record whose live evidence moved on is evidence_changed (the audit) or a lost RUN (the planner)
    return ('%s reads TDISP %s at trust %s, but the ledger holds no committed acceptance record for it%s: the collection did not '
            'put it there' % (device['bdf'], state, level,
                              ' (an unfinished %s)' % acceptance['pending_step'] if acceptance.get('pending_step') else ''))
