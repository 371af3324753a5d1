# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Audit classification: inventory completeness and drift per device, exemptions applied (private)."""

from __future__ import annotations

import collections
import datetime
import hashlib
import typing as t

from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation import manifest_check as _manifest
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation.manifest import is_int
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy import match
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.decide import (
    _INVENTORY_DRIFT,
    _LOCKED_STATES,
    Device,
    _Host,
    _decide,
    _exemption_dict,
    _host,
)
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.model import (
    DRIFT_KINDS,
    TRUST_LEVELS,
    Policy,
    PolicyError,
    rank,
    trust_name,
)
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy.records import acceptance_of, unexplained

# ---- inventory completeness ------------------------------------------------------------------------------------


def check_expected(devices: t.Any, policy: t.Any) -> list[dict[str, t.Any]]:
    """Inventory findings: ``[{kind, expected, bdf, found, want, bdfs, reason}]``.

    ``kind`` is ``missing`` (fewer than wanted, or a listed BDF absent or holding another
    device), ``extra`` (more than wanted, or a device the selector matches outside an exact set),
    ``duplicate`` (the facts list a BDF twice), ``unlisted`` (with ``expected_complete``: a
    device no entry is about) or ``error`` (a selector failed on a device, which is then not
    counted).
    """
    host = _host(devices, policy, None, None, datetime.date.min)
    return _inventory(host)


def _inventory(host: _Host) -> list[dict[str, t.Any]]:
    findings: list[dict[str, t.Any]] = []
    claimed: set[str] = set()
    for entry in host.policy.expected:
        selected: list[str] = []
        if entry.matcher is not None:
            for view in host.views:
                try:
                    if entry.matcher.matches(view):
                        selected.append(view['bdf'])
                except match.MatchError as err:
                    findings.append(_finding('error', entry.id, view['bdf'], None, None, [],
                                             '%s: %s; the device is not counted' % (entry.label, err)))
        claimed.update(selected)
        claimed.update(entry.bdfs)
        findings.extend(_entry_findings(host, entry, selected))
    counts = collections.Counter(d['bdf'] for d in host.devices)
    for bdf in sorted(b for b, n in counts.items() if n > 1):
        owners = [e.id for e in host.policy.expected if bdf in e.bdfs] or [None]
        findings.append(_finding('duplicate', owners[0], bdf, counts[bdf], None, [bdf],
                                 'the facts list %s %d times; the inventory source is inconsistent, gather the facts again' % (bdf, counts[bdf])))
    if host.policy.expected_complete:
        for bdf in sorted(set(counts) - claimed):
            findings.append(_finding('unlisted', None, bdf, None, None, [bdf],
                                     '%s matches no expected entry, and expected_complete says the entries list every device' % bdf))
    return findings


def _entry_findings(host: _Host, entry: t.Any, selected: list[str]) -> list[dict[str, t.Any]]:
    out = []
    present = {d['bdf'] for d in host.devices}
    if entry.bdfs:
        for bdf in entry.bdfs:
            if bdf not in present:
                out.append(_finding('missing', entry.id, bdf, 0, 'present', [bdf], '%s: %s is not present' % (entry.label, bdf)))
            elif entry.matcher is not None and bdf not in selected:
                out.append(_finding('missing', entry.id, bdf, 0, 'present', [bdf], '%s: %s is present but does not match %s'
                                    % (entry.label, bdf, entry.matcher.describe())))
        for bdf in sorted(set(selected) - set(entry.bdfs)):
            out.append(_finding('extra', entry.id, bdf, None, 'one of %s' % ', '.join(entry.bdfs), [bdf],
                                '%s: %s matches %s but is not in the exact set bdfs' % (entry.label, bdf, entry.matcher.describe())))
        return out
    found = len(selected)
    want = ', '.join('%s %d' % (k, v) for k, v in (('count', entry.count), ('min', entry.minimum), ('max', entry.maximum)) if v is not None)
    low = entry.count if entry.count is not None else entry.minimum
    high = entry.count if entry.count is not None else entry.maximum
    listing = ', '.join(sorted(selected)) or 'none'
    if low is not None and found < low:
        out.append(_finding('missing', entry.id, None, found, want, sorted(selected), '%s: wants %s devices matching %s, found %d (%s)'
                            % (entry.label, want, entry.matcher.describe(), found, listing)))
    if high is not None and found > high:
        out.append(_finding('extra', entry.id, None, found, want, sorted(selected), '%s: wants %s devices matching %s, found %d (%s)'
                            % (entry.label, want, entry.matcher.describe(), found, listing)))
    return out


def _finding(kind: str, expected: t.Optional[str], bdf: t.Optional[str], found: t.Optional[int], want: t.Optional[str],
             bdfs: list[str], reason: str) -> dict[str, t.Any]:
    return {'kind': kind, 'expected': expected, 'bdf': bdf, 'found': found, 'want': want, 'bdfs': bdfs, 'reason': reason}


# ---- audit -----------------------------------------------------------------------------------------------------

def audit(devices: t.Any, policy: t.Any, verdicts: t.Any = None, manifests: t.Any = None, now: t.Any = None,
          ledger: t.Any = None) -> dict[str, t.Any]:
    """Compliance of every device with the policy now: ``{policy_version, date, findings, summary}``.

    Each finding: ``{bdf, kind, status, reason, policy_version, rule, matched_by, expected,
    outcome, actual, evidence: {required, verdict_status, reasons}, exemption}``. ``kind`` is
    ``compliant`` or a drift kind (``DRIFT_KINDS``); ``status`` is ``compliant``, ``drift``, or
    ``exempt`` when an unexpired exemption covers the drift. ``ledger`` is what the state
    modules recorded on the host: ``{bdf: {level, generation, policy_version}}``.
    """
    host = _host(devices, policy, verdicts, manifests, now)
    errors: list[str] = []
    records = _ledger(ledger, errors)
    if manifests is not None and not isinstance(manifests, t.Mapping):
        errors.append('reference_manifests: must be a mapping of manifest name to manifest, got %s' % type(manifests).__name__)
    if errors:
        raise PolicyError(errors)
    findings: list[dict[str, t.Any]] = []
    decisions: dict[str, dict[str, t.Any]] = {}
    manifest = _manifest_loader(manifests)
    for device, view in sorted(zip(host.devices, host.views), key=lambda pair: pair[0]['bdf']):
        decision = _decide(host, device, view)
        decisions.setdefault(device['bdf'], decision)
        drift = _drift(device, decision, records.get(device['bdf']), manifest, host.now)
        if not drift:
            findings.append(_audit_finding(decision, device, 'compliant', 'matches the policy: %s' % '; '.join(decision['reasons']), None))
        for kind, reasons in drift.items():
            findings.append(_audit_finding(decision, device, kind, '; '.join(reasons), None))
    devices_by_bdf = {d['bdf']: d for d in host.devices}
    for item in _inventory(host):
        bdf = item['bdf']
        decision = decisions.get(bdf) if bdf else None
        findings.append(_audit_finding(decision, devices_by_bdf.get(bdf) if bdf else None, _INVENTORY_DRIFT[item['kind']],
                                       item['reason'], item['expected'], host.policy.version, bdf))
    for finding in findings:
        _apply_exemptions(host.policy, finding, host.today)
    return {'policy_version': host.policy.version, 'date': host.today.isoformat(), 'findings': findings,
            'summary': _audit_summary(findings)}


def _ledger(ledger: t.Any, errors: list[str]) -> dict[str, dict[str, t.Any]]:
    """``{bdf: {level, generation, policy_version}}``; also the host's ledger file ``{format, devices: {bdf: {trust_level, ...}}}``
    and the ledger as ``tdisp_device_info`` returns it, ``{devices: {...}, policy: {version, applied} | null}``, whose
    policy version is the one the records were set under."""
    if ledger is None:
        return {}
    applied = None
    if isinstance(ledger, t.Mapping) and isinstance(ledger.get('devices'), t.Mapping) and set(ledger) <= {'format', 'devices', 'policy'}:
        policy = ledger.get('policy')
        applied = policy.get('version') if isinstance(policy, t.Mapping) else None
        ledger = ledger['devices']
    if not isinstance(ledger, t.Mapping):
        errors.append('ledger: must be a mapping {bdf: {level, generation, policy_version}}, got %s' % type(ledger).__name__)
        return {}
    out = {}
    for bdf, record in ledger.items():
        if not isinstance(record, t.Mapping):
            errors.append('ledger[%s]: must be a mapping {level, generation, policy_version}, got %s' % (bdf, type(record).__name__))
            continue
        raw_level = record.get('level', record.get('trust_level'))
        level = None if raw_level is None else trust_name(raw_level)
        if raw_level is not None and level is None:
            errors.append('ledger[%s].level: %r is not a trust level' % (bdf, raw_level))
            continue
        generation = record.get('generation')
        if generation is not None and not is_int(generation):
            errors.append('ledger[%s].generation: must be a whole number, got %r' % (bdf, generation))
            continue
        rejected = record.get('rejected')
        out[bdf] = {'level': level, 'generation': generation, 'policy_version': record.get('policy_version', applied),
                    'rejected': rejected if isinstance(rejected, t.Mapping) else None}
        out[bdf].update({k: record[k] for k in ('acceptance', 'journal') if isinstance(record.get(k), t.Mapping)})
    return out


def _drift(device: Device, decision: dict[str, t.Any], record: t.Optional[dict[str, t.Any]],
           manifest: t.Callable[[str], t.Any], now: datetime.datetime) -> dict[str, list[str]]:
    """Drift kind -> reasons for one device (empty when compliant). ``manifest(name)`` loads a manifest or gives None."""
    drift: dict[str, list[str]] = collections.defaultdict(list)
    want = decision['outcome']['trust']
    state, level = device.get('tdisp_state'), device.get('trust_level')
    record = record or {'level': None, 'generation': None, 'policy_version': None, 'rejected': None}
    strange = match.identity_problem(device)
    if strange:
        drift['unknown_identity'].append('its identity cannot be read (%s), so no rule can be said to match it; the decision shown '
                                         'is not to be believed: fix the device or the kernel' % strange)
        return dict(drift)
    # Only where the policy would take the device as accepted; elsewhere RUN or tcb is drift already (accepted_not_allowed).
    why = decision.get('rule_trust') == 'tcb' and unexplained(device, record)
    if why:
        drift['unexplained_state'].append('%s; it is not compliance, whatever the kernel files say' % why)
    unreadable = _evidence_unreadable(device) if decision['evidence']['required'] and state in _LOCKED_STATES else None
    if unreadable:
        # Not a verdict on the device: its evidence could not be read, so nothing that needs the
        # evidence can be said about it. What the ledger alone shows (a trust reset) still counts.
        drift['evidence_unreadable'].append('the device is TDISP %s at trust %s but its evidence cannot be read (%s); fix the '
                                            'evidence endpoint or the permissions and audit again' % (state, level, unreadable))
        _trust_reset(drift, record, level)
        return dict(drift)
    rejected = record.get('rejected') if isinstance(record.get('rejected'), t.Mapping) else None
    kept_out = bool(rejected) and rejected.get('policy_version') == decision['policy_version'] and state == 'unlocked'
    by = 'rule %s (policy %s) gives' % (decision['rule'], decision['policy_version'])
    if decision['evidence']['ok'] is False:
        by = 'rule %s (policy %s), with evidence not good enough, gives' % (decision['rule'], decision['policy_version'])
    unverified = decision['evidence']['required'] and decision['evidence']['verdict_status'] is None
    if kept_out and want != 'tcb':
        # Rejected under this policy version (its evidence failed, or it was revoked): the policy keeps it
        # out at the rule's evidence-failure level; that is compliance, unless the level is wrong.
        if level != want:
            drift['wrong_trust_level'].append('rejected under policy %s (%s), so %s %s; the device is at %s'
                                              % (rejected.get('policy_version'), rejected.get('reason'), by, want, level))
    elif want != 'tcb' and decision.get('rule_trust') == 'tcb' and unverified and state == 'unlocked' and level != 'tcb':
        # The rule wants the device in the TCB and there is no evidence yet (it only exists once the
        # device is locked): the acceptance has not happened, which is not the same as a wrong level.
        failures = decision['evidence'].get('failures') or []
        cannot = [f for f in failures if 'cannot be locked' in f]
        drift['not_accepted'].append('rule %s (policy %s) wants tcb once its evidence verifies against %s; the device is TDISP %s '
                                     'at trust %s and %s'
                                     % (decision['rule'], decision['policy_version'], decision['evidence']['required'], state, level,
                                        cannot[0] if cannot else 'has not been through lock, verify, accept (the rollout does it, '
                                        'unless this policy version rejected it before)'))
    elif want == 'tcb':
        if state != 'run' or level != 'tcb':
            drift['not_accepted'].append('%s tcb (TDISP run, trust tcb); the device is TDISP %s at trust %s' % (by, state, level))
    elif state in _LOCKED_STATES or level == 'tcb':
        drift['accepted_not_allowed'].append('%s %s; the device is TDISP %s at trust %s and must be unlocked (disruptive)'
                                             % (by, want, state, level))
    elif level != want:
        shown = level if level is not None else 'unreadable (trust_abi %s)' % device.get('trust_abi')
        drift['wrong_trust_level'].append('%s trust %s; the device is at %s' % (by, want, shown))
    evidence = device.get('evidence') if isinstance(device.get('evidence'), t.Mapping) else {}
    _trust_reset(drift, record, level)
    accepted = record['generation'] if record['generation'] is not None else acceptance_of(device, record).get('generation')
    if is_int(accepted) and evidence.get('generation') != accepted:
        drift['evidence_changed'].append('the evidence generation is now %s, the ledger accepted generation %s; verify and accept again'
                                         % (evidence.get('generation'), accepted))
    was_accepted = state == 'run' or level == 'tcb' or record['level'] == 'tcb' or record['generation'] is not None
    required = decision['evidence']['required']
    if was_accepted and required and decision['evidence']['ok'] is False:
        drift['evidence_changed'].append('the verdict is no longer acceptable: %s' % '; '.join(decision['evidence']['failures']))
    loaded = manifest(required) if was_accepted and required else None
    if loaded is not None:
        expired = _expired_digests(evidence, loaded, now)
        if expired:
            drift['manifest_expired'].append('manifest %s allows the accepted evidence only through expired entries: %s'
                                             % (required, '; '.join(expired)))
    return dict(drift)


def _trust_reset(drift: dict[str, list[str]], record: t.Mapping[str, t.Any], level: t.Any) -> None:
    if record.get('level') is not None and level in TRUST_LEVELS and rank(level) < rank(record['level']):
        drift['trust_reset'].append('the ledger records trust %s (generation %s, policy %s); the kernel now reports %s: %s'
                                    % (record['level'], record.get('generation'), record.get('policy_version'), level,
                                       'the device probably left RUN; accept it again through lock, verify, accept'
                                       if record['level'] == 'tcb' else 'someone or something lowered it; set it again'))


def _evidence_unreadable(device: Device) -> t.Optional[str]:
    """Why the evidence of a locked or accepted device could not be read (a read error, no generation), or None."""
    evidence = device.get('evidence')
    if not isinstance(evidence, t.Mapping):
        return None  # evidence was not asked for
    for error in evidence.get('errors') or []:
        if isinstance(error, t.Mapping) and error.get('object') == '*':
            return str(error.get('msg'))
    if not is_int(evidence.get('generation')):
        return 'the evidence carries no generation'
    return None


def _manifest_loader(manifests: t.Any) -> t.Callable[[str], t.Any]:
    """``name -> Manifest`` (``_manifest``), None when absent or invalid (verification reports invalid manifests); cached."""
    cache: dict[str, t.Any] = {}

    def load(name: str) -> t.Any:
        if name not in cache:
            cache[name] = None
            if isinstance(manifests, t.Mapping) and name in manifests:
                try:
                    cache[name] = _manifest.load_manifest(name, manifests[name])
                except _manifest.ManifestError:
                    pass
        return cache[name]
    return load


def _expired_digests(evidence: t.Mapping[str, t.Any], manifest: t.Any, now: datetime.datetime) -> list[str]:
    """The measured digests that only expired entries of ``manifest`` allow, one line each.

    The blocks are ``evidence.measurements.blocks`` as ``tdisp_device_info`` parses them; a digest
    block is compared as it is, a raw bit-stream block by its digest with the entry's algorithm
    (as evidence verification compares them).
    """
    measurements = evidence.get('measurements')
    blocks = measurements.get('blocks') if isinstance(measurements, t.Mapping) else None
    out = []
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, t.Mapping) or not isinstance(block.get('value'), str) or not is_int(block.get('index')):
            continue
        hits = [(entry, alg, value) for entry in manifest.entries_for(block['index']) for alg, value in entry.digests
                if _block_digest(block, alg) == value]
        if hits and all(entry.validity.state(now) == 'expired' for entry, _alg, _value in hits):
            entry, alg, value = hits[0]
            out.append('index %d: %s:%s... is allowed only by %s' % (block['index'], alg, value[:16], '; '.join(
                '%s, which expired on %s' % (e.label(), e.validity.end_text) for e, _a, _v in hits)))
    return out


def _block_digest(block: t.Mapping[str, t.Any], alg: str) -> t.Optional[str]:
    try:
        value = bytes.fromhex(block['value'])
    except ValueError:
        return None
    return hashlib.new(alg, value).hexdigest() if block.get('raw') else value.hex()


def _audit_finding(decision: t.Optional[dict[str, t.Any]], device: t.Optional[Device], kind: str, reason: str,
                   expected: t.Optional[str], version: t.Optional[str] = None, bdf: t.Optional[str] = None) -> dict[str, t.Any]:
    return {
        'bdf': decision['bdf'] if decision else bdf,
        'kind': kind,
        'status': 'compliant' if kind == 'compliant' else 'drift',
        'reason': reason,
        'policy_version': decision['policy_version'] if decision else version,
        'rule': decision['rule'] if decision else None,
        'matched_by': decision['matched_by'] if decision else None,
        'expected': expected,
        'outcome': decision['outcome'] if decision else None,
        'actual': {'tdisp_state': device.get('tdisp_state'), 'trust_level': device.get('trust_level')} if device else None,
        'evidence': {'required': decision['evidence']['required'], 'verdict_status': decision['evidence']['verdict_status'],
                     'reasons': decision['evidence']['failures'] + decision['evidence']['reasons']} if decision else None,
        'exemption': None,
    }


def _apply_exemptions(policy: Policy, finding: dict[str, t.Any], today: datetime.date) -> None:
    if finding['status'] != 'drift':
        return
    for ex in policy.exemptions:
        if not ex.applies(finding['kind'], finding['bdf'], finding['expected']):
            continue
        if ex.expired(today):
            finding['reason'] += '; exemptions[%d] (%s) expired on %s' % (ex.index, ex.reason, ex.until.isoformat())
            continue
        finding['status'] = 'exempt'
        finding['exemption'] = _exemption_dict(ex)
        return


def _audit_summary(findings: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    statuses = collections.Counter(f['status'] for f in findings)
    kinds = collections.Counter(f['kind'] for f in findings if f['status'] == 'drift')
    drifting = {f['bdf'] for f in findings if f['status'] == 'drift' and f['bdf']}
    return {
        'compliant': statuses['compliant'],
        'drift': statuses['drift'],
        'exempt': statuses['exempt'],
        'by_kind': {kind: kinds[kind] for kind in DRIFT_KINDS},  # drift only; exempt findings are not counted
        'devices_in_drift': sorted(drifting),
    }
