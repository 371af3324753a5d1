# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Acceptance bound to the verified evidence (private; may change at any time).

The pins of an acceptance are the evidence generation and the leaf identity that were verified
(the ``sha384:`` digest of the device's ``cert0`` evidence object, as ``tdisp_device_info``
returns it). ``check_evidence`` compares them with the live evidence and asks the kernel to
``validate`` the generation where the family has that operation; ``confirm`` runs right before a
write that raises a device to ``tcb`` (the engine calls it) and once more at the end of the run;
``recover`` finishes (or abandons) a transaction a killed run left behind. docs/reliability.md
is the contract.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._abi.names import ACCEPT, ACCEPT_TRUE, LOCK

if t.TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.engine import Engine, Outcome

IDENTITY_RE = re.compile(r'\Asha384:[0-9a-f]{96}\Z')
MAX_GENERATION = 2 ** 63 - 1
_REVERIFY = 're-verify the evidence and pass the new generation'


class EvidenceChanged(TdispError):
    """The device's evidence (or its RUN state) is no longer the one that was verified."""


def check_generation(value: t.Any, bdf: str, attribute: str = 'generation') -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_GENERATION:
        raise TdispError('%s %r is not a non-negative integer below 2**63' % (attribute, value), device=bdf, attribute=attribute,
                         remedy='pass the generation tdisp_device_info returned with the verified evidence')
    return value


def check_identity(value: t.Any, bdf: str) -> str:
    if not isinstance(value, str) or not IDENTITY_RE.match(value):
        raise TdispError('identity %r is not sha384: and 96 lower-case hex digits' % (value,), device=bdf, attribute='identity',
                         remedy='pass evidence.objects.cert0.digest as tdisp_device_info returned it')
    return value


def leaf_identity(engine: 'Engine', bdf: str) -> t.Optional[str]:
    """The digest of the device's slot-0 certificate object, None when the slot is empty."""
    from ansible_collections.coco.tdisp.plugins.module_utils._evidence.objects import digest
    try:
        got = engine.evidence().read(bdf, ['cert0'])
    except TdispError as exc:
        raise TdispError('cannot read the leaf certificate: %s' % exc.cause, device=bdf, attribute='evidence cert0',
                         errno=exc.errno, remedy=exc.remedy or 'check evidence_endpoint')
    data = (got.get('objects') or {}).get('cert0')
    return digest(data) if data else None


def check_evidence(engine: 'Engine', bdf: str, generation: t.Optional[int], identity: t.Optional[str], attribute: str) -> t.Optional[bool]:
    """Raise EvidenceChanged unless the live evidence has these pins; returns whether the kernel validated it."""
    if generation is None:
        return None
    now = engine.current_generation(bdf)
    if now != generation:
        raise EvidenceChanged('evidence changed since verification (generation %d -> %d)' % (generation, now), device=bdf,
                              attribute=attribute, remedy=_REVERIFY)
    if identity is not None:
        leaf = leaf_identity(engine, bdf)
        if leaf != identity:
            raise EvidenceChanged('the leaf certificate changed since verification (%s -> %s)' % (identity[:19], (leaf or 'none')[:19]),
                                  device=bdf, attribute=attribute, remedy=_REVERIFY)
    if engine.opts.check_mode:   # validate records the generation in the kernel: not in check mode
        return None
    try:
        ok = engine.evidence().validate(bdf, generation)
    except TdispError as exc:
        raise EvidenceChanged('the kernel refused to validate generation %d: %s' % (generation, exc.cause), device=bdf,
                              attribute=attribute, errno=exc.errno, remedy=_REVERIFY)
    if ok is False:
        raise EvidenceChanged('the kernel refused to validate generation %d' % generation, device=bdf, attribute=attribute,
                              remedy=_REVERIFY)
    return ok is not None


def in_run(engine: 'Engine', out: 'Outcome') -> bool:
    """The device reads accepted and locked right now."""
    dev = out.device()
    accepted = engine.sysfs.read(dev.dir + '/' + ACCEPT)[0]
    holder = engine.sysfs.read(dev.dir + '/' + LOCK)[0]
    return accepted == ACCEPT_TRUE and bool(holder)


def confirm(engine: 'Engine', out: 'Outcome', attribute: str) -> t.Dict[str, t.Any]:
    """Check that the device is in RUN under a committed acceptance record that matches the live evidence.

    Returns the record; raises EvidenceChanged (the device moved) or TdispError (no record)."""
    if not in_run(engine, out):
        raise EvidenceChanged('the device is not in TDISP RUN (it left RUN since it was accepted)', device=out.bdf,
                              attribute=attribute, remedy=_REVERIFY)
    rec = engine.ledger.committed(out.bdf)
    if rec is None:
        if engine.opts.unverified:
            out.extra['unverified'] = True
            return {}
        raise TdispError('no committed acceptance record in the ledger: the collection did not accept this device '
                         '(unexplained state)', device=out.bdf, attribute=attribute,
                         remedy='accept it with tdisp_device state: run and the verified generation, or set unverified: true')
    if not rec.get('unverified'):
        check_evidence(engine, out.bdf, rec.get('generation'), rec.get('identity'), attribute)
    return rec


def acceptance_view(rec: t.Optional[t.Mapping[str, t.Any]], journal: t.Optional[t.Mapping[str, t.Any]],
                    tdisp_state: t.Optional[str], generation: t.Optional[int]) -> t.Dict[str, t.Any]:
    committed = rec is not None and rec.get('state') == 'committed'
    matches: t.Optional[bool] = None
    if committed and rec is not None:
        if tdisp_state != 'run':
            matches = False
        elif rec.get('unverified') or generation is None:
            matches = None if not rec.get('unverified') else True
        else:
            matches = rec.get('generation') == generation
    elif tdisp_state == 'run':
        matches = False
    pending = journal.get('step') if isinstance(journal, dict) and journal.get('phase') == 'intent' else None
    return {'committed': committed, 'matches': matches,
            'generation': rec.get('generation') if rec else None, 'identity': rec.get('identity') if rec else None,
            'policy_version': rec.get('policy_version') if rec else None,
            'unverified': bool(rec.get('unverified')) if rec else False, 'pending_step': pending}


def add_acceptance(devices: t.Sequence[t.Dict[str, t.Any]], ledger: t.Any) -> None:
    """Each device dict of the facts gets ``acceptance`` from the ledger (tdisp_device_info with state_dir, tdisp_device facts)."""
    for dev in devices:
        entry = ledger.entry(dev['bdf'])
        dev['acceptance'] = acceptance_view(ledger.acceptance(dev['bdf']), entry.get('journal'), dev.get('tdisp_state'),
                                            (dev.get('evidence') or {}).get('generation'))


def recover(engine: 'Engine', out: 'Outcome') -> None:
    """Finish or abandon the transaction a killed run left behind (``out.extra['recovered']``)."""
    entry = engine.ledger.entry(out.bdf)
    journal = entry.get('journal')
    if not isinstance(journal, dict) or journal.get('phase') != 'intent' or out.dev is None:
        return
    step = journal.get('step')
    facts = out.dev.facts
    how = 'abandoned'
    if step == 'accept':
        rec = engine.ledger.acceptance(out.bdf) or {}
        how = 'reverify'
        if facts.get('tdisp_state') == 'run':
            try:
                check_evidence(engine, out.bdf, rec.get('generation'), rec.get('identity'), ACCEPT)
                if rec.get('generation') is not None or rec.get('unverified'):
                    engine.ledger.accept_record(out.bdf, 'committed', rec.get('generation'), rec.get('identity'),
                                                bool(rec.get('unverified')))
                    how = 'finished'
            except TdispError:
                pass
        if how != 'finished':
            engine.ledger.update(out.bdf, acceptance=None)
            out.extra['needs_reverify'] = True
    elif step == 'lock':
        how = 'finished' if facts.get('lock_holder') == journal.get('value') else 'abandoned'
    elif step in ('unbind', 'bind'):
        how = 'rebind'
    elif step == 'unlock':
        if facts.get('tdisp_state') != 'run':
            engine.ledger.update(out.bdf, acceptance=None, trust_level=None, trust_abi=None, generation=None)
        how = 'finished'
    elif step == 'trust_raise':
        how = 'reverify'
        if engine.ledger.committed(out.bdf) is not None and facts.get('tdisp_state') == 'run':
            how = 'finished'
    engine.ledger.update(out.bdf, journal=dict(journal, phase='recovered', recovered=how))
    out.extra['recovered'] = how
