# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Device selection by JMESPath (revoke) and the lockout preflight (private; may change at any time)."""

from __future__ import annotations

import typing as t

from ansible_collections.coco.tdisp.plugins.plugin_utils._policy import match
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.decide import _LOCKOUT_CLASSES, Device, _facts
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.model import PolicyError, trust_name

# The levels a revocation may lower a device to (never tcb), by name and by number.
REVOKE_LEVELS = ('blocked', 'adversary', 'normal', 0, 1, 2)
# Where a revocation's ledger records say they came from.
REVOKE_SOURCE = 'playbooks/revoke.yml'


# ---- selection and revocation ----------------------------------------------------------------------------------

def select(devices: t.Any, expression: t.Any) -> list[dict[str, t.Any]]:
    """The devices a JMESPath expression selects, with the same view and checks as a rule's ``match``.

    For incident response (``playbooks/revoke.yml``): a vendor, a device id, a firmware digest in
    ``evidence.measurements.blocks``. An expression that does not compile, or names a field the
    device facts do not have, raises :class:`PolicyError` before anything is selected.
    """
    errors: list[str] = []
    warnings: list[str] = []
    matcher = match.build({'match': expression}, 'match', errors, warnings)
    facts, tsms = _facts(devices, errors)
    if errors or matcher is None:
        raise PolicyError(errors or ['match: cannot be used'])
    out = []
    for device in facts:
        try:
            if matcher.matches(match.match_view(device, tsms)):
                out.append(dict(device))
        except match.MatchError as err:
            raise PolicyError(['%s: %s' % (device['bdf'], err)]) from None
    return out


def revoke_plan(info: t.Any, expression: t.Any, level: t.Any = 'blocked', policy: t.Any = None) -> dict[str, t.Any]:
    """What a revocation does on one host: ``{match, level, policy_version, devices, unlock, lower}``.

    ``info``: the ``tdisp_device_info`` result (with the ledger). ``devices``: the BDFs selected;
    ``unlock``: ``tdisp_device`` entries for those in LOCKED/RUN, each with the ledger's
    ``rejected`` record (why, under which policy version: the policy about to be applied, else
    the one the host last applied, else ``none``), so that rollouts of that version keep it out;
    ``lower``: ``device_trust`` entries for those with a trust ABI.
    """
    if level not in REVOKE_LEVELS or trust_name(level) is None:
        raise PolicyError(['level: %r is not blocked, adversary or normal (a revocation never sets tcb)' % (level,)])
    targets = select(info, expression)
    ledger = (info.get('ledger') if isinstance(info, t.Mapping) else None) or {}
    applied = ledger.get('policy') if isinstance(ledger, t.Mapping) else None
    version = (policy or {}).get('version') if isinstance(policy, t.Mapping) else None
    if version is None:
        version = (applied or {}).get('version', 'none') if isinstance(applied, t.Mapping) else 'none'
    reason = 'revoked by %s (%s)' % (REVOKE_SOURCE, expression)
    return {
        'match': expression,
        'level': level,
        'policy_version': version,
        'devices': [d['bdf'] for d in targets],
        'unlock': [{'bdf': d['bdf'], 'state': 'unlocked', 'rejected': {'reason': reason, 'policy_version': version}}
                   for d in targets if d.get('tdisp_state') in ('locked', 'run')],
        'lower': [{'bdf': d['bdf'], 'level': level} for d in targets if d.get('trust_abi') != 'none'],
    }


def preflight(devices: t.Any, decisions: t.Any, critical: t.Any = None) -> list[dict[str, t.Any]]:
    """Decisions that would cut the operator off: ``[{bdf, kind, categories, class, driver, rule, policy_version, reason}]``.

    A device is at risk when its class is storage (0x01xxxx) or network (0x02xxxx) and no other
    storage (network) device stays in service (driver bound, not rejected, not interrupted), its
    class is unreadable, or its BDF is in ``critical``. ``kind`` is ``blocked`` (the outcome rejects it),
    ``driver_unbind`` (the TDISP transition needs its bound driver unbound; lock, accept and
    unlock fail with EBUSY otherwise) or ``undecided`` (no decision for it). ``decisions`` is a
    :func:`plan` result or its ``decisions`` list.
    """
    errors: list[str] = []
    facts, _tsms = _facts(devices, errors)
    if isinstance(decisions, t.Mapping):
        decisions = decisions.get('decisions')
    if not isinstance(decisions, list) or not all(isinstance(d, t.Mapping) and 'bdf' in d and 'outcome' in d for d in decisions):
        errors.append('decisions: must be a policy plan result or its list of decisions')
        decisions = []
    critical = [] if critical is None else critical
    if not isinstance(critical, list):
        errors.append('critical: must be a list of PCI device names, got %s' % type(critical).__name__)
        critical = []
    for pos, bdf in enumerate(critical):
        problem = match.bdf_shape_error(bdf) if isinstance(bdf, str) else 'must be a string, got %r' % (bdf,)
        if problem:
            errors.append('critical[%d]: %s' % (pos, problem))
    if errors:
        raise PolicyError(errors)
    by_bdf = {d['bdf']: d for d in decisions}
    problems = []
    kept: dict[str, list[str]] = {}  # category -> devices of it that stay in service
    for device in sorted(facts, key=lambda d: d['bdf']):
        categories = _categories(device, critical)
        if categories:
            problem = _lockout(device, by_bdf.get(device['bdf']), categories)
            if problem is not None:
                problems.append(problem)
            elif device.get('driver'):
                for category in categories:
                    kept.setdefault(category, []).append(device['bdf'])
    # A storage or network device is only a lockout risk when it is the host's last one in
    # service: when another device of the same kind keeps its driver and is not rejected (the
    # virtio disk the host boots from, the virtio NIC it is managed through), interrupting a
    # data-path device is what the policy asks for, not a lockout.
    return [p for p in problems if not _covered(p, kept)]


def _covered(problem: dict[str, t.Any], kept: t.Mapping[str, list[str]]) -> bool:
    categories = problem['categories']
    if any(c not in _LOCKOUT_CLASSES.values() for c in categories):
        return False  # critical or unclassified: always a problem
    return all(kept.get(c) for c in categories)


def _categories(device: Device, critical: t.Sequence[str]) -> list[str]:
    out = []
    code = device.get('class')
    try:
        base = int(code[2:4], 16) if isinstance(code, str) and code.startswith('0x') and len(code) == 8 else None
    except ValueError:
        base = None
    if base is None:
        out.append('unclassified')
    elif base in _LOCKOUT_CLASSES:
        out.append(_LOCKOUT_CLASSES[base])
    if device['bdf'] in critical:
        out.append('critical')
    return out


def _lockout(device: Device, decision: t.Optional[t.Mapping[str, t.Any]], categories: list[str]) -> t.Optional[dict[str, t.Any]]:
    what = '%s device' % '/'.join(categories)
    driver = device.get('driver')
    base = {'bdf': device['bdf'], 'categories': categories, 'class': device.get('class'), 'driver': driver,
            'rule': decision.get('rule') if decision else None, 'policy_version': decision.get('policy_version') if decision else None}
    if decision is None:
        return dict(base, kind='undecided', reason='%s %s has no decision; plan it before enforcing' % (what, device['bdf']))
    outcome = decision['outcome']
    if outcome.get('trust') == 'blocked':
        return dict(base, kind='blocked', reason='%s %s would be rejected by rule %s: blocked, its driver cannot bind and its DMA stops'
                    % (what, device['bdf'], decision.get('rule')))
    if not driver:
        return None
    if decision.get('disruptive'):
        return dict(base, kind='driver_unbind', reason='%s %s would be unlocked by rule %s: driver %s must be unbound and the device '
                    'stops meanwhile' % (what, device['bdf'], decision.get('rule'), driver))
    if outcome.get('tdisp_state') == 'run' and device.get('tdisp_state') != 'run':
        return dict(base, kind='driver_unbind', reason='%s %s would be locked and accepted by rule %s: driver %s must be unbound '
                    '(lock and accept fail with EBUSY while it is bound) and the device stops meanwhile'
                    % (what, device['bdf'], decision.get('rule'), driver))
    return None
