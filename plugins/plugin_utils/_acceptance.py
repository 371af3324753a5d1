# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The acceptance role's planner: policy + evidence + current state -> module calls (private).

``step(info, policy, manifests, ...)`` is the one function the ``coco.tdisp.acceptance`` role
calls (through the ``coco.tdisp.acceptance_step`` filter) after each read of a host. It

1. decides every device by policy (``_policy.plan``), first without verdicts to learn which
   reference manifest each device's rule requires, then with the verdicts of the devices whose
   evidence can be read (``_policy.verify_host``, which the audit uses too);
2. turns the decisions into the arguments of the next module calls: the devices to lock (so
   that their evidence can be read and verified), to accept with their verified generation
   pinned, to unlock, and the trust levels to set;
3. refuses, per device, what would need ``allow_disruptive`` when it is not given, and lists
   what the lockout preflight finds.

It never decides anything the policy did not: a device is accepted only when its rule says
``tcb`` and its evidence verdict satisfies the rule at the device's current generation.
"""

from __future__ import annotations

import datetime
import os
import secrets
import time
import typing as t
from collections.abc import Mapping, Sequence

from ansible_collections.coco.tdisp.plugins.plugin_utils import _policy
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation import manifests_errors
from ansible_collections.coco.tdisp.plugins.plugin_utils._errors import TdispError

LOCKED_STATES = ('locked', 'run')
GUEST_SIDES = ('guest', 'both')

# What the planner does with a device, as reported per device (``action``).
ACTIONS = (
    'none',             # already where the policy wants it
    'lock_and_verify',  # tcb wanted: lock first, then read and verify the evidence
    'relock_and_verify',  # accepted, but its evidence changed since (lost RUN): unlock, lock, verify again (disruptive)
    'accept',           # locked, evidence verified: accept with the generation pinned, then trust tcb
    'set_trust',        # only the trust level changes
    'unlock',           # leave LOCKED/RUN (disruptive), then set the trust level
    'refused',          # a change that needs allow_disruptive, or a device the kernel cannot take there
    'abandon',          # locked by this run but its evidence cannot be read: unlock it again, keep its level, host not converged
    'rejected',         # kept out: its evidence failed (or it was revoked) under this policy version; not locked again
    'recover',          # in RUN with an unfinished accept/trust transaction (a run died): accept again at the verified generation
    'unexplained_state',  # in RUN or at tcb without a committed acceptance record: drift, never confirmed; no write
    'unknown_identity',   # its identity attributes are unreadable or malformed: no rule can be said to match; no write
)
# The actions that leave the host not converged (the wave gate fails on them).
REFUSING = ('refused', 'abandon', 'unexplained_state', 'unknown_identity')


class AcceptanceError(TdispError):
    """Input the planner cannot use; ``problems`` lists every problem, one line each."""


def _now(now: t.Any) -> datetime.datetime:
    if now is None:
        return datetime.datetime.now(datetime.timezone.utc)
    if isinstance(now, datetime.datetime):
        return now if now.tzinfo else now.replace(tzinfo=datetime.timezone.utc)
    if isinstance(now, str):
        try:
            moment = datetime.datetime.fromisoformat(now.replace('Z', '+00:00'))
        except ValueError:
            raise AcceptanceError(['now: %r is not an ISO 8601 timestamp' % (now,)]) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)
    raise AcceptanceError(['now: %r is not a timestamp' % (now,)])


def run_id(kind: str = 'acc', now: t.Optional[float] = None) -> str:
    """A run id for the host's run lock (docs/reliability.md): ``KIND-<playbook pid>-<start time, UTC>-<random tag>``.

    The action plugins and filters run in a worker process forked by ``ansible-playbook``: its
    parent's pid is the playbook's."""
    if not isinstance(kind, str) or not kind.isalnum() or len(kind) > 16:
        raise AcceptanceError(['run id kind: %r is not 1 to 16 letters or digits' % (kind,)])
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(time.time() if now is None else now))
    return '%s-%d-%s-%s' % (kind, os.getppid(), stamp, secrets.token_hex(3))


def check_inputs(policy: t.Any, manifests: t.Any) -> tuple[t.Optional[_policy.Policy], list[str]]:
    """The validated policy (None when it does not validate) and every problem of it and the manifests, one line each."""
    try:
        checked = _policy.validate(policy, manifests if manifests is not None else {})
    except _policy.PolicyError as err:
        return None, ['the policy: %s' % p for p in err.problems]
    if not isinstance(manifests, Mapping):
        return checked, []
    return checked, ['reference manifests: %s' % p for p in manifests_errors(manifests)]


def refusal(problems: Sequence[str]) -> str:
    """The message of a refusal of the inputs: a heading line, then one line per problem."""
    return 'refused before any host was read: %d problem%s:\n%s' % (len(problems), '' if len(problems) == 1 else 's', '\n'.join(problems))


def _devices(info: t.Any) -> list[Mapping[str, t.Any]]:
    if isinstance(info, Mapping):
        info = info.get('devices')
    if not isinstance(info, list) or not all(isinstance(d, Mapping) and isinstance(d.get('bdf'), str) for d in info):
        raise AcceptanceError(['info: expected the result of coco.tdisp.tdisp_device_info (a dict with devices) or its devices list'])
    return info


def _level_change(device: Mapping[str, t.Any], level: str) -> bool:
    return device.get('trust_abi') not in (None, 'none') and device.get('trust_level') != level


def _ledger(info: t.Any, ledger: t.Any) -> dict[str, Mapping[str, t.Any]]:
    if ledger is None and isinstance(info, Mapping):
        ledger = info.get('ledger')
    if isinstance(ledger, Mapping) and isinstance(ledger.get('devices'), Mapping):
        ledger = ledger['devices']
    if ledger is None:
        return {}
    if not isinstance(ledger, Mapping):
        raise AcceptanceError(['ledger: expected the host ledger (a mapping of BDF to record), got %s' % type(ledger).__name__])
    return {k: v for k, v in ledger.items() if isinstance(v, Mapping)}


def step(info: t.Any, policy: t.Any, manifests: t.Any, nonce: t.Any = None, now: t.Any = None, allow_disruptive: bool = False,
         locked_now: t.Optional[Sequence[str]] = None, critical: t.Optional[Sequence[str]] = None,
         ledger: t.Any = None, retry_rejected: bool = False) -> dict[str, t.Any]:
    """Plan the next module calls for one host. See the module docstring.

    ``info``: the ``tdisp_device_info`` result (with evidence where it could be read, and the
    host ledger under ``ledger`` when it returns one; ``ledger`` overrides it).
    ``locked_now``: the devices this run locked itself; returning one of them to unlocked when its
    evidence fails restores the state it was found in, so it needs no ``allow_disruptive``. The
    unlock entry then carries ``rejected`` (why, under which policy version) for the ledger, and
    later runs under the same policy version keep the device out without locking it again, unless
    ``retry_rejected``.
    Returns ``{policy_version, decisions, verdicts, lock, relock, accept, unlock, trust,
    trust_after_accept, refused, preflight, summary}``; the list entries are ready to pass as ``devices`` to
    ``tdisp_device`` (lock, accept, unlock) and ``device_trust`` (trust, trust_after_accept).
    """
    devices = _devices(info)
    records = _ledger(info, ledger)
    moment = _now(now)
    manifests = manifests or {}
    try:
        # Validated once (the shadowing analysis is the costly part): a Policy passes through as is.
        checked = policy if isinstance(policy, _policy.Policy) else _policy.validate(policy, manifests)
        verdicts = _policy.verify_host(devices, checked, manifests, moment, nonce)
        result = _policy.plan(devices, checked, verdicts, manifests, moment)
    except _policy.PolicyError as exc:
        raise AcceptanceError(exc.errors) from None
    rule_trust = {rule.id: rule.trust for rule in checked.rules}
    locked_now = set(locked_now or ())
    by_bdf = {d['bdf']: d for d in devices}
    out: dict[str, t.Any] = {
        'policy_version': result['policy_version'], 'decisions': [], 'verdicts': {b: next(iter(v.values())) for b, v in verdicts.items()},
        'lock': [], 'relock': [], 'accept': [], 'unlock': [], 'trust': [], 'trust_after_accept': [], 'refused': [], 'rejected': [],
        'preflight': [],
    }
    intended = []  # what the run sets out to do, for the lockout preflight
    for decision in result['decisions']:
        device = by_bdf[decision['bdf']]
        record = records.get(decision['bdf'])
        if retry_rejected and record:
            record = {k: v for k, v in record.items() if k != 'rejected'}
        action, why = _action(device, decision, rule_trust.get(decision['rule']), allow_disruptive, decision['bdf'] in locked_now,
                              record, result['policy_version'])
        decision = dict(decision, action=action, action_reason=why)
        out['decisions'].append(decision)
        if action in ('lock_and_verify', 'relock_and_verify'):
            # Judged by what the run sets out to do (lock, and accept if the evidence verifies):
            # the lock alone already interrupts the device (its driver is unbound).
            decision_intended = dict(decision, outcome={'trust': 'tcb', 'tdisp_state': 'run'}, disruptive=action == 'relock_and_verify')
            # Until its evidence is read, the policy's outcome is the rule's evidence-failure fallback; say what it will be if verified.
            decision['outcome_if_verified'] = decision_intended['outcome']
        else:
            decision_intended = decision
        intended.append(decision_intended)
        bdf = decision['bdf']
        level = decision['outcome']['trust']
        if action == 'lock_and_verify':
            out['lock'].append({'bdf': bdf, 'state': 'locked'})
        elif action == 'relock_and_verify':
            out['relock'].append({'bdf': bdf, 'state': 'locked'})
        elif action in ('accept', 'recover'):
            out['accept'].append(_accept_entry(device, decision))
            if _level_change(device, 'tcb') or action == 'recover':
                out['trust_after_accept'].append({'bdf': bdf, 'level': 'tcb'})
        elif action == 'unlock':
            entry: dict[str, t.Any] = {'bdf': bdf, 'state': 'unlocked'}
            if bdf in locked_now and rule_trust.get(decision['rule']) == 'tcb' and decision['evidence'].get('verdict_status'):
                # a verdict was made (not a read failure): remember it, so that the same policy does not lock it again
                entry['rejected'] = {'reason': _rejection_reason(decision), 'policy_version': result['policy_version']}
            out['unlock'].append(entry)
            if device.get('trust_abi') not in (None, 'none'):
                out['trust'].append({'bdf': bdf, 'level': level})
        elif action == 'abandon':
            # A host problem, not a verdict: restore the device (no trust change, no rejection record)
            # and refuse, so that the host is not taken for converged and the gate stops.
            out['unlock'].append({'bdf': bdf, 'state': 'unlocked'})
            out['refused'].append({'bdf': bdf, 'reason': why, 'rule': decision['rule'], 'kind': action})
        elif action == 'rejected':
            out['rejected'].append({'bdf': bdf, 'reason': why, 'rule': decision['rule']})
            if _level_change(device, level):
                out['trust'].append({'bdf': bdf, 'level': level})
        elif action == 'set_trust':
            out['trust'].append({'bdf': bdf, 'level': level})
        elif action == 'none' and level == 'tcb' and _level_change(device, 'tcb'):
            out['trust'].append({'bdf': bdf, 'level': 'tcb'})
        elif action in REFUSING:
            out['refused'].append({'bdf': bdf, 'reason': why, 'rule': decision['rule'], 'kind': action})
    try:
        out['preflight'] = _policy.preflight(devices, intended, [] if critical is None else critical)
    except _policy.PolicyError as exc:
        raise AcceptanceError(exc.errors) from None
    out['summary'] = _summary(out)
    return out


def lost_run(device: Mapping[str, t.Any], record: t.Optional[Mapping[str, t.Any]]) -> t.Optional[str]:
    """Why an accepted device may have left RUN although ``tsm/accept`` still reads 1, or None.

    The kernel does not show a TDISP ERROR through ``accept`` (kernel-abi.md §7.1). What shows it:
    the evidence generation moved on since the collection accepted the device (the ledger keeps
    the generation it pinned), or the trust level the collection set was reset by the kernel.
    """
    if device.get('tdisp_state') != 'run' or not (record or isinstance(device.get('acceptance'), Mapping)):
        return None
    record = record or {}
    evidence = device.get('evidence') if isinstance(device.get('evidence'), Mapping) else {}
    accepted_gen, current_gen = record.get('generation'), evidence.get('generation')
    if accepted_gen is None:
        accepted_gen = _policy.acceptance_of(device, record).get('generation')
    if isinstance(accepted_gen, int) and isinstance(current_gen, int) and accepted_gen != current_gen:
        return 'its evidence changed since it was accepted (generation %d -> %d): it may have left RUN' % (accepted_gen, current_gen)
    set_level = record.get('trust_level')
    if set_level == 'tcb' and device.get('trust_abi') == 'trust' and device.get('trust_level') != 'tcb':
        return 'the kernel reset its trust level from tcb to %s: it left RUN' % device.get('trust_level')
    return None


def evidence_read_error(device: Mapping[str, t.Any]) -> t.Optional[str]:
    """Why the evidence of a locked or accepted device could not be read, or None when it was.

    A read failure (endpoint absent, no CAP_NET_ADMIN, an ENXIO from the kernel) is not a verdict
    on the device: acting on it as if the evidence had failed would unlock devices because of a
    controller or host problem. The planner refuses to act instead, and says why."""
    evidence = device.get('evidence')
    if not isinstance(evidence, Mapping):
        return 'no evidence was read (tdisp_device_info include_evidence)'
    for error in evidence.get('errors') or []:
        if isinstance(error, Mapping) and error.get('object') == '*':
            return str(error.get('msg'))
    if not isinstance(evidence.get('generation'), int):
        return 'the evidence carries no generation'
    return None


def _accept_entry(device: Mapping[str, t.Any], decision: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The ``tdisp_device`` entry that accepts a device pinned to the evidence that was verified: generation and leaf identity."""
    entry: dict[str, t.Any] = {'bdf': device['bdf'], 'state': 'run', 'generation': decision['evidence']['device_generation']}
    evidence = device.get('evidence') if isinstance(device.get('evidence'), Mapping) else {}
    cert0 = ((evidence.get('objects') or {}).get('cert0') or {}) if isinstance(evidence.get('objects'), Mapping) else {}
    if isinstance(cert0, Mapping) and isinstance(cert0.get('digest'), str) and cert0['digest'].startswith('sha384:'):
        entry['identity'] = cert0['digest']  # the leaf identity that was verified: the accept and the trust raise pin it
    return entry


def _rejection_reason(decision: Mapping[str, t.Any]) -> str:
    evidence = decision.get('evidence') or {}
    reasons = list(evidence.get('reasons') or []) or list(evidence.get('failures') or []) or ['the evidence did not satisfy the rule']
    status = evidence.get('verdict_status') or 'unverified'
    return 'rule %s: evidence %s against %s: %s' % (decision['rule'], status, evidence.get('required'), '; '.join(reasons[:3]))


def _action(device: Mapping[str, t.Any], decision: Mapping[str, t.Any], wanted: t.Optional[str], allow_disruptive: bool,
            locked_by_us: bool, record: t.Optional[Mapping[str, t.Any]] = None, version: t.Optional[str] = None) -> tuple[str, str]:
    """What to do with one device, and why (one line)."""
    state = device.get('tdisp_state')
    level = decision['outcome']['trust']
    guest = device.get('tsm_side') in GUEST_SIDES
    bdf = device['bdf']
    rejected = (record or {}).get('rejected')
    strange = _policy.identity_problem(device)
    if strange:
        return 'unknown_identity', ('unknown_identity: %s: its identity cannot be read (%s), so no rule can be said to match it (not even the default); '
                                    'nothing is changed: fix the device or the kernel' % (bdf, strange))
    if state == 'error':
        return 'relock_and_verify', '%s is in TDISP ERROR: unlock, lock, verify again (no driver is bound: nothing disrupted)' % bdf
    if (wanted == 'tcb' and guest and state == 'unlocked' and isinstance(rejected, Mapping)
            and rejected.get('policy_version') == version and not locked_by_us):
        return 'rejected', ('at %s: rejected under policy %s (%s): %s; a new policy version, or '
                            'acceptance_retry_rejected: true, verifies it again' % (level, version, rejected.get('at'), rejected.get('reason')))
    if wanted == 'tcb' and guest and state in LOCKED_STATES:
        unreadable = evidence_read_error(device)
        if unreadable:
            if locked_by_us:
                return 'abandon', ('%s was locked by this run, but its evidence cannot be read (%s): unlocked again at its level, nothing '
                                   'accepted; check tdisp_evidence_endpoint and run as root (reading evidence needs CAP_NET_ADMIN)'
                                   % (bdf, unreadable))
            return 'refused', ('%s is TDISP %s but its evidence cannot be read (%s); nothing is changed: check tdisp_evidence_endpoint '
                               'and run as root (reading evidence needs CAP_NET_ADMIN)' % (bdf, state, unreadable))
    drift = _policy.unexplained(device, record) if wanted == 'tcb' else None
    if drift:
        acceptance = _policy.acceptance_of(device, record)
        if (state == 'run' and wanted == 'tcb' and acceptance.get('pending_step') in ('accept', 'trust_raise')
                and decision['outcome']['trust'] == 'tcb'):
            return 'recover', ('%s: a run died during its %s; its evidence verifies at generation %s: the transaction is finished '
                               '(accept at that generation, then trust)'
                               % (bdf, acceptance['pending_step'], decision['evidence']['device_generation']))
        if state == 'run' and wanted == 'tcb' and allow_disruptive:
            return 'relock_and_verify', '%s; unlock, lock, verify again (disruptive, allowed)' % drift
        return 'unexplained_state', ('unexplained_state: %s; it is drift, not compliance: nothing is changed%s' % (
            drift, ': set allow_disruptive (acceptance_allow_disruptive: true) to take it through lock, verify, accept'
            if state == 'run' and wanted == 'tcb' else '; find out who set it'))
    if state == 'unknown':
        return 'refused', '%s: its TDISP state cannot be read (%s); fix the device or the kernel before the policy can act' % (
            bdf, '; '.join('%s: %s' % kv for kv in sorted((device.get('unknown') or {}).items())) or 'no reason given')
    lost = lost_run(device, record) if wanted == 'tcb' else None
    if lost:
        if not allow_disruptive:
            return 'refused', ('%s reads accepted, but %s; it is not trusted until it is re-accepted through lock, verify, accept: '
                               'set allow_disruptive (acceptance_allow_disruptive: true) to unlock and re-verify it' % (bdf, lost))
        return 'relock_and_verify', '%s: unlock, lock, verify again (disruptive, allowed)' % lost
    if level == 'tcb':
        if state == 'run':
            return 'none', 'already accepted (RUN) and its evidence verifies at generation %s' % decision['evidence']['device_generation']
        return 'accept', 'locked; evidence verified against %s at generation %s' % (
            decision['evidence']['required'], decision['evidence']['device_generation'])
    if wanted == 'tcb' and guest and state == 'unlocked' and not decision['evidence'].get('verdict_status'):
        # The rule wants the TCB but there is no evidence yet: it only exists once the device is locked.
        return 'lock_and_verify', 'rule %s wants tcb: lock, then verify the evidence against %s' % (
            decision['rule'], decision['evidence'].get('required'))
    if state in LOCKED_STATES and guest:
        if locked_by_us:
            return 'unlock', 'locked by this run to read its evidence, which does not satisfy rule %s: unlock and set %s' % (
                decision['rule'], level)
        if not allow_disruptive:
            return 'refused', ('%s is TDISP %s but the policy gives %s (rule %s): leaving %s is disruptive; '
                               'set allow_disruptive (acceptance_allow_disruptive: true) or use playbooks/revoke.yml'
                               % (bdf, state, level, decision['rule'], state))
        return 'unlock', 'TDISP %s but rule %s gives %s: unlock (disruptive, allowed)' % (state, decision['rule'], level)
    fallback = ''
    if wanted == 'tcb' and level != 'tcb':
        failures = (decision.get('evidence') or {}).get('failures') or []
        fallback = ' because %s' % (failures[0] if failures else 'the evidence does not satisfy the rule')
    if device.get('trust_abi') in (None, 'none'):
        return 'none', 'no trust interface on this kernel: the level (%s%s) cannot be set' % (level, fallback)
    if _level_change(device, level):
        if device.get('trust_level') == 'tcb' and not allow_disruptive:
            return 'refused', ('%s has trust tcb but the policy gives %s (rule %s): withdrawing private memory is disruptive; '
                               'set allow_disruptive' % (bdf, level, decision['rule']))
        return 'set_trust', 'trust %s -> %s (rule %s%s)' % (device.get('trust_level'), level, decision['rule'], fallback)
    return 'none', 'already at %s%s' % (level, fallback)


def _summary(plan: Mapping[str, t.Any]) -> dict[str, t.Any]:
    counts: dict[str, int] = {a: 0 for a in ACTIONS}
    outcomes: dict[str, int] = {}
    statuses: dict[str, int] = {}
    for d in plan['decisions']:
        counts[d['action']] += 1
        level = d['outcome']['trust'] if 'outcome_if_verified' not in d else 'tcb_if_verified'
        outcomes[level] = outcomes.get(level, 0) + 1
    for v in plan['verdicts'].values():
        statuses[v.get('status')] = statuses.get(v.get('status'), 0) + 1
    touched = {entry['bdf'] for key in ('lock', 'relock', 'accept', 'unlock', 'trust', 'trust_after_accept') for entry in plan[key]}
    return {'actions': counts, 'outcomes': outcomes, 'verdicts': statuses,
            'contraindicated': statuses.get('contraindicated', 0),
            'rejected': counts['rejected'],
            'pending': counts['lock_and_verify'] + counts['relock_and_verify'], 'refused': sum(counts[a] for a in REFUSING),
            'changes': len(touched)}


def version_key(version: str) -> tuple[t.Any, ...]:
    """Order policy versions (``2026.11.1``, ``2026.11.1-rc1``): numbers numerically; a suffix sorts before the release."""
    text = str(version)
    base, _sep, suffix = text.partition('-')
    numbers = tuple(int(p) if p.isdigit() else 0 for p in base.split('.'))
    return numbers, 0 if suffix else 1, suffix


def summarize(host: str, policy: Mapping[str, t.Any], facts: Mapping[str, t.Any], plan: Mapping[str, t.Any],
              found: Mapping[str, Mapping[str, t.Any]], check_mode: bool, failure: t.Optional[str], changed: bool,
              calls: Sequence[str] = (), outcomes: t.Optional[Mapping[str, Mapping[str, t.Any]]] = None,
              run_id: t.Optional[str] = None) -> dict[str, t.Any]:
    """The per-host summary (``tdisp_acceptance_summary``) that the rollout gate and reports read.

    ``facts``: the last ``tdisp_device_info`` result; ``plan``: the last :func:`step` result (empty
    when the run stopped before planning); ``found``: each device's state as the run found it;
    ``outcomes``: per device what the modules reported (``converged`` from their final re-read,
    ``evidence_changed``, ``recovered``, ``failed``, ``msg``). A device's ``converged`` is the
    module's when it reported one, never the plan's.
    """
    outcomes = outcomes or {}
    by_bdf = {d['bdf']: d for d in facts.get('devices') or [] if isinstance(d, Mapping)}
    expected: list[dict[str, t.Any]] = []
    if by_bdf:
        try:
            expected = _policy.check_expected(facts, policy)
        except _policy.PolicyError as exc:
            expected = [{'kind': 'error', 'reason': e} for e in exc.errors]
    verdicts = plan.get('verdicts') or {}
    devices = []
    for d in plan.get('decisions') or []:
        dev = by_bdf.get(d['bdf'], {})
        verdict = verdicts.get(d['bdf'])
        target = d.get('outcome_if_verified')
        before = found.get(d['bdf'], d['current'])
        devices.append({
            'bdf': d['bdf'], 'vendor': dev.get('vendor'), 'device': dev.get('device'), 'class': dev.get('class'),
            'rule': d['rule'], 'matched_by': d['matched_by'],
            'trust': target['trust'] + '_if_verified' if target else d['outcome']['trust'],
            'tdisp_state': target['tdisp_state'] if target else d['outcome']['tdisp_state'],
            'action': d['action'], 'action_reason': d['action_reason'],
            'before': {'tdisp_state': before.get('tdisp_state'), 'trust_level': before.get('trust_level')},
            'verdict': None if verdict is None else {'status': verdict.get('status'), 'manifest': verdict.get('manifest'),
                                                     'generation': verdict.get('generation'), 'reasons': verdict.get('reasons')},
            'exempt': d['exempt'],
        })
        done = outcomes.get(d['bdf']) or {}
        devices[-1].update({k: done[k] for k in ('converged', 'evidence_changed', 'recovered', 'unverified') if k in done})
        if done.get('failed'):
            devices[-1]['failed'] = done.get('msg') or 'failed'
    notes = []
    for d in devices:
        if d['verdict'] is not None and d['verdict']['status'] == 'contraindicated':
            notes.append('%s %s: contraindicated evidence against %s (rule %s): %s' % (
                host, d['bdf'], d['verdict']['manifest'], d['rule'], '; '.join((d['verdict']['reasons'] or [])[:2])))
    for r in plan.get('rejected') or []:
        notes.append('%s %s: kept out (rule %s) %s' % (host, r['bdf'], r['rule'], r['reason']))
    for f in expected:
        notes.append('%s: %s' % (host, f.get('reason')))
    counts = dict(plan.get('summary') or {})
    refused = [dict(r, host=host) for r in plan.get('refused') or []]
    for d in devices:
        if d.get('evidence_changed'):
            # The evidence moved between verification and trust: the device was not raised (or was lowered again).
            refused.append({'bdf': d['bdf'], 'rule': d['rule'], 'kind': 'evidence_changed', 'host': host,
                            'reason': '%s: evidence_changed: its evidence moved after it was verified; it is not trusted: %s'
                                      % (d['bdf'], d.get('failed') or 'the module lowered it again')})
        elif d.get('failed'):
            refused.append({'bdf': d['bdf'], 'rule': d['rule'], 'kind': 'failed', 'host': host, 'reason': '%s: %s' % (d['bdf'], d['failed'])})
    converged = (failure is None and bool(plan) and not refused and counts.get('pending', 1) == 0
                 and (not check_mode or counts.get('changes', 1) == 0)
                 and all(d.get('converged') is not False for d in devices))
    return {
        'host': host,
        'policy_version': plan.get('policy_version') or policy.get('version'),
        'check_mode': check_mode,
        'failed': failure is not None,
        'failure': failure,
        'changed': changed,
        'converged': converged,
        'contraindicated': counts.get('contraindicated', 0) + counts.get('rejected', 0),
        'counts': counts,
        'module_calls': list(calls),
        'run_id': run_id,
        'devices': devices,
        'refused': refused,
        'rejected': list(plan.get('rejected') or []),
        'preflight': list(plan.get('preflight') or []),
        'expected': expected,
        'gate_notes': notes,
    }
