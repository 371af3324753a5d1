# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Policy validation: one case per error kind, shadowing, warnings, normalisation."""

from __future__ import annotations

import pathlib
import re
import typing as t

import pytest
import yaml

from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation import manifest_check as _manifest
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy import match as _policy_match
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy import PolicyError, plan, validate

MANIFESTS = {'h100-96.00': {}, 'cx7-28.39': {}}
H100 = "vendor == '0x10de' && device == '0x2330'"


def policy(*rules: dict[str, t.Any], **top: t.Any) -> dict[str, t.Any]:
    return dict({'version': '2026.11.1', 'rules': list(rules)}, **top)


def tcb(ident: str = 'h100-tcb', **extra: t.Any) -> dict[str, t.Any]:
    return dict({'id': ident, 'match': H100, 'require': {'manifest': 'h100-96.00'}, 'trust': 'tcb'}, **extra)


def errors_of(raw: t.Any, manifests: t.Any = None) -> list[str]:
    with pytest.raises(PolicyError) as info:
        validate(raw, MANIFESTS if manifests is None else manifests)
    return info.value.errors


def one_error(raw: t.Any, manifests: t.Any = None) -> str:
    errors = errors_of(raw, manifests)
    assert len(errors) == 1, errors
    assert '\n' not in errors[0]
    return errors[0]


# One case per error kind: (policy, the error line's start, a phrase it must contain).
ERROR_CASES = {
    'not a mapping': (['rules'], 'tdisp_policy: must be a mapping', 'got list'),
    'wrapped in tdisp_policy': ({'tdisp_policy': policy()}, 'tdisp_policy: is wrapped', 'pass the value'),
    'unknown top-level key': (policy(defualt='reject'), 'tdisp_policy: unknown key', 'did you mean default?'),
    'version missing': ({'rules': []}, 'tdisp_policy.version: is required', 'version'),
    'version not a string': (dict(policy(), version=2026.11), 'tdisp_policy.version: must be a string', 'quote it'),
    'version malformed': (dict(policy(), version='v2026'), 'tdisp_policy.version:', 'is not a version'),
    'default tcb': (policy(default='tcb'), 'tdisp_policy.default: tcb is not allowed', 'verified evidence'),
    'default unknown': (policy(default='allow'), 'tdisp_policy.default:', 'is not an outcome'),
    'rules missing': ({'version': '1.0'}, 'tdisp_policy.rules: is required', '[] is allowed'),
    'rules not a list': (dict(policy(), rules={'a': 1}), 'tdisp_policy.rules: must be a list', 'got dict'),
    'rule not a mapping': (policy('virtio'), 'tdisp_policy.rules[0]: must be a mapping', 'got str'),
    'unknown rule key': (policy({'id': 'v', 'vendor': '0x1af4', 'trust': 'normal', 'devcie': '0x1'}),
                         'tdisp_policy.rules[0] (id v): unknown key', 'did you mean device?'),
    'rule id missing': (policy({'vendor': '0x1af4', 'trust': 'normal'}), 'tdisp_policy.rules[0].id: is required', 'name it'),
    'rule id malformed': (policy({'id': 'a b', 'vendor': '0x1af4', 'trust': 'normal'}), 'tdisp_policy.rules[0].id:', 'is not an id'),
    'rule id reserved': (policy({'id': 'implicit-default', 'vendor': '0x1af4', 'trust': 'normal'}),
                         'tdisp_policy.rules[0] (id implicit-default).id: implicit-default is reserved', 'choose another id'),
    'duplicate rule ids': (policy({'id': 'v', 'vendor': '0x1af4', 'trust': 'normal'}, {'id': 'v', 'vendor': '0x8086', 'trust': 'normal'}),
                           'tdisp_policy.rules[1] (id v).id: duplicate of rules[0]', 'must be unique'),
    'trust missing': (policy({'id': 'v', 'vendor': '0x1af4'}), 'tdisp_policy.rules[0] (id v).trust: is required', 'reject'),
    'trust unknown name': (policy({'id': 'v', 'vendor': '0x1af4', 'trust': 'full'}), 'tdisp_policy.rules[0] (id v).trust:',
                           'is not a trust level'),
    'trust out of range': (policy({'id': 'v', 'vendor': '0x1af4', 'trust': 4}), 'tdisp_policy.rules[0] (id v).trust: 4', 'not a trust level'),
    'trust boolean': (policy({'id': 'v', 'vendor': '0x1af4', 'trust': True}), 'tdisp_policy.rules[0] (id v).trust: True', 'not a trust level'),
    'match does not compile': (policy({'id': 'v', 'match': "vendor == ", 'trust': 'normal'}),
                               'tdisp_policy.rules[0] (id v).match: JMESPath does not compile:', 'fix the expression'),
    'match empty': (policy({'id': 'v', 'match': ' ', 'trust': 'normal'}), 'tdisp_policy.rules[0] (id v).match: must be a non-empty', 'all: true'),
    'match unknown function': (policy({'id': 'v', 'match': "startswith(class, '0x03')", 'trust': 'normal'}),
                               'tdisp_policy.rules[0] (id v).match: unknown JMESPath function startswith()', 'built-in'),
    'match wrong arity': (policy({'id': 'v', 'match': "starts_with(class)", 'trust': 'normal'}),
                          'tdisp_policy.rules[0] (id v).match: starts_with() takes 2 argument(s), got 1', ''),
    'match unknown field': (policy({'id': 'v', 'match': "vednor == '0x1af4'", 'trust': 'normal'}),
                            "tdisp_policy.rules[0] (id v).match: field 'vednor' is not in the device facts", 'always null'),
    'match bare true': (policy({'id': 'v', 'match': 'true', 'trust': 'normal'}),
                        'tdisp_policy.rules[0] (id v).match: true is a field reference', 'all: true'),
    'match upper-case hex literal': (policy({'id': 'v', 'match': "vendor == '0x1AF4'", 'trust': 'normal'}),
                                     'tdisp_policy.rules[0] (id v).match: the comparison of vendor with a literal is constant', "'0x1af4'"),
    'match literal of the wrong shape': (policy({'id': 'v', 'match': "class == '0x0302'", 'trust': 'normal'}),
                                         'tdisp_policy.rules[0] (id v).match: the comparison of class', '6 lower-case hex digits'),
    'both match and fields': (policy({'id': 'v', 'match': H100, 'vendor': '0x10de', 'trust': 'normal'}),
                              'tdisp_policy.rules[0] (id v): has both match and plain fields (vendor)', 'exactly one'),
    'both match and all': (policy({'id': 'v', 'match': H100, 'all': True, 'trust': 'normal'}),
                           'tdisp_policy.rules[0] (id v): has both match and all', 'exactly one'),
    'no selector': (policy({'id': 'v', 'trust': 'normal'}), 'tdisp_policy.rules[0] (id v): selects no devices', 'all: true'),
    'all false': (policy({'id': 'v', 'all': False, 'trust': 'normal'}), 'tdisp_policy.rules[0] (id v).all: must be true', 'remove it'),
    'plain field not a string': (policy({'id': 'v', 'vendor': 0x1af4, 'trust': 'normal'}),
                                 'tdisp_policy.rules[0] (id v).vendor: must be a string', 'quote it'),
    'plain field empty list': (policy({'id': 'v', 'vendor': [], 'trust': 'normal'}), 'tdisp_policy.rules[0] (id v).vendor: is an empty list',
                               'at least one'),
    'plain field bad glob': (policy({'id': 'v', 'class': '0x02[', 'trust': 'normal'}), "tdisp_policy.rules[0] (id v).class: unclosed '['",
                             '[[]'),
    'plain field upper-case': (policy({'id': 'v', 'vendor': ['0x1af4', '0x10DE'], 'trust': 'normal'}),
                               'tdisp_policy.rules[0] (id v).vendor[1]: never matches', "write '0x10de'"),
    'plain field wrong shape': (policy({'id': 'v', 'bdf': '41:00.0', 'trust': 'normal'}), 'tdisp_policy.rules[0] (id v).bdf: never matches',
                                'domain:bus:device.function'),
    'tcb without require': (policy({'id': 'g', 'match': H100, 'trust': 'tcb'}), 'tdisp_policy.rules[0] (id g).require.manifest: is required',
                            'verified evidence'),
    'require without manifest': (policy(tcb(require={'min_status': 'warning'})),
                                 'tdisp_policy.rules[0] (id h100-tcb).require.manifest: is required', 'reference manifest'),
    'manifest not given': (policy(tcb(require={'manifest': 'h100-95.00'})),
                           "tdisp_policy.rules[0] (id h100-tcb).require.manifest: 'h100-95.00' is not in reference_manifests",
                           'known: cx7-28.39, h100-96.00'),
    'unknown require key': (policy(tcb(require={'manifest': 'h100-96.00', 'min_svn': 3})),
                            'tdisp_policy.rules[0] (id h100-tcb).require: unknown key', 'allowed:'),
    'min_status contraindicated': (policy(tcb(require={'manifest': 'h100-96.00', 'min_status': 'contraindicated'})),
                                   'tdisp_policy.rules[0] (id h100-tcb).require.min_status:', 'never acceptable'),
    'interface key unknown (finding 9)': (policy(tcb(require={'manifest': 'h100-96.00', 'interface': {'no_fw_updat': True}})),
                                          "tdisp_policy.rules[0] (id h100-tcb).require.interface: unknown key 'no_fw_updat'",
                                          'did you mean no_fw_update? known keys: no_fw_update, dma_without_pasid'),
    'match nested 3000 deep': (policy(dict(tcb(), match='(' * 3000 + "vendor == '0x10de'" + ')' * 3000)),
                               'tdisp_policy.rules[0] (id h100-tcb).match: is 6018 characters long', 'limit of 4096'),
    'match nested beyond the limit': (policy(dict(tcb(), match='(' * 40 + "vendor == '0x10de'" + ')' * 40)),
                                      'tdisp_policy.rules[0] (id h100-tcb).match: nests 40 levels deep', 'limit of 32'),
    'match negated 3000 times': (policy(dict(tcb(), match='!' * 3000 + 'vendor')),
                                 'tdisp_policy.rules[0] (id h100-tcb): is nested too deeply to check', 'simplify'),
    'too many rules': (policy(*[dict(tcb('r%d' % i), match="vendor == '0x%04x'" % i) for i in range(1001)]),
                       'tdisp_policy.rules: has 1001 rules, more than the limit of 1000', 'group devices'),
    'interface value not a scalar': (policy(tcb(require={'manifest': 'h100-96.00', 'interface': {'mmio': [1]}})),
                                     'tdisp_policy.rules[0] (id h100-tcb).require.interface.mmio: must be a scalar', ''),
    'require on a rejecting rule': (policy({'id': 'r', 'vendor': '0x1af4', 'trust': 'reject', 'require': {'manifest': 'h100-96.00'}}),
                                    'tdisp_policy.rules[0] (id r).require: a rule that rejects needs no evidence', 'remove require'),
    'on_evidence_failure without require': (policy({'id': 'v', 'vendor': '0x1af4', 'trust': 'normal', 'on_evidence_failure': 'reject'}),
                                            'tdisp_policy.rules[0] (id v).on_evidence_failure: has no effect', 'add require.manifest'),
    'on_evidence_failure tcb': (policy(tcb(on_evidence_failure='tcb')), 'tdisp_policy.rules[0] (id h100-tcb).on_evidence_failure:',
                                'use reject, adversary or normal'),
    'on_evidence_failure not below trust': (policy({'id': 'v', 'vendor': '0x1af4', 'trust': 'normal', 'on_evidence_failure': 'normal',
                                                    'require': {'manifest': 'cx7-28.39'}}),
                                            'tdisp_policy.rules[0] (id v).on_evidence_failure: normal is not below trust normal', 'less trust'),
    'contradictory match': (policy({'id': 'v', 'match': "vendor == '0x10de' && vendor == '0x1af4'", 'trust': 'normal'}),
                            'tdisp_policy.rules[0] (id v) can never match: it requires vendor to equal two different values', ''),
    'constant false match': (policy({'id': 'v', 'match': '`false`', 'trust': 'normal'}),
                             'tdisp_policy.rules[0] (id v) can never match: the expression is the constant false', ''),
    'shadowed rule': (policy({'id': 'nvidia', 'vendor': '0x10de', 'trust': 'adversary'}, tcb()),
                      'tdisp_policy.rules[1] (id h100-tcb) is shadowed by rules[0] (id nvidia): every device h100-tcb matches, '
                      'nvidia matches first', 'move it above nvidia'),
    'expected not a list': (policy(expected={'id': 'x'}), 'tdisp_policy.expected: must be a list', ''),
    'expected id missing': (policy(expected=[{'vendor': '0x10de', 'count': 1}]), 'tdisp_policy.expected[0].id: is required', ''),
    'expected duplicate id': (policy(expected=[{'id': 'g', 'vendor': '0x10de', 'count': 1}, {'id': 'g', 'vendor': '0x15b3', 'count': 1}]),
                              'tdisp_policy.expected[1] (id g).id: duplicate of expected[0]', ''),
    'expected without numbers': (policy(expected=[{'id': 'g', 'vendor': '0x10de'}]), 'tdisp_policy.expected[0] (id g): says nothing',
                                 'count, min and/or max'),
    'expected count with min': (policy(expected=[{'id': 'g', 'vendor': '0x10de', 'count': 8, 'min': 1}]),
                                'tdisp_policy.expected[0] (id g): count is exact', ''),
    'expected min above max': (policy(expected=[{'id': 'g', 'vendor': '0x10de', 'min': 8, 'max': 4}]),
                               'tdisp_policy.expected[0] (id g): min 8 is above max 4', ''),
    'expected negative count': (policy(expected=[{'id': 'g', 'vendor': '0x10de', 'count': -1}]),
                                'tdisp_policy.expected[0] (id g).count: must be a whole number >= 0', ''),
    'expected bdfs with count': (policy(expected=[{'id': 'n', 'bdfs': ['0000:01:00.0'], 'count': 1}]),
                                 'tdisp_policy.expected[0] (id n): bdfs is an exact set', 'remove count'),
    'expected bdf listed twice': (policy(expected=[{'id': 'n', 'bdfs': ['0000:01:00.0']}, {'id': 'm', 'bdfs': ['0000:01:00.0']}]),
                                  'tdisp_policy.expected[1] (id m).bdfs[0]: duplicate: 0000:01:00.0 is already listed in '
                                  'tdisp_policy.expected[0] (id n).bdfs[0]', 'one exact set'),
    'expected bdf malformed': (policy(expected=[{'id': 'n', 'bdfs': ['01:00.0']}]), 'tdisp_policy.expected[0] (id n).bdfs[0]:',
                               'not a PCI device name'),
    'expected without selector': (policy(expected=[{'id': 'n', 'count': 1}]), 'tdisp_policy.expected[0] (id n): selects no devices', ''),
    'expected_complete not a bool': (policy(expected_complete='yes'), 'tdisp_policy.expected_complete: must be true or false', ''),
    'exemption with bdf and expected': (policy(expected=[{'id': 'n', 'bdfs': ['0000:01:00.0']}],
                                               exemptions=[{'bdf': '0000:01:00.0', 'expected': 'n', 'reason': 'x'}]),
                                        'tdisp_policy.exemptions[0]: give exactly one of bdf', ''),
    'exemption for unknown expected id': (policy(exemptions=[{'expected': 'gpus', 'reason': 'x'}]),
                                          "tdisp_policy.exemptions[0].expected: 'gpus' is not the id", ''),
    'exemption without reason': (policy(exemptions=[{'bdf': '0000:99:00.0'}]), 'tdisp_policy.exemptions[0].reason: is required', 'ticket'),
    'exemption bad date': (policy(exemptions=[{'bdf': '0000:99:00.0', 'reason': 'x', 'until': '31.12.2026'}]),
                           "tdisp_policy.exemptions[0].until: '31.12.2026' is not a date", 'YYYY-MM-DD'),
    'exemption bad kind': (policy(exemptions=[{'bdf': '0000:99:00.0', 'reason': 'x', 'kinds': ['drift']}]),
                           "tdisp_policy.exemptions[0].kinds[0]: 'drift' is not a drift kind", 'not_accepted'),
}


@pytest.mark.parametrize('raw, start, phrase', list(ERROR_CASES.values()), ids=list(ERROR_CASES))
def test_error_kind(raw: t.Any, start: str, phrase: str) -> None:
    line = one_error(raw)
    assert line.startswith(start), line
    assert phrase in line, line


def test_every_error_is_reported_at_once() -> None:
    raw = policy({'id': 'a', 'match': 'vendor ==', 'trust': 'normal'},
                 {'id': 'a', 'vendor': '0x1af4', 'trust': 'full'},
                 {'id': 'g', 'match': H100, 'trust': 'tcb'},
                 version='x', bogus=1)
    errors = errors_of(raw)
    assert len(errors) == 6, errors
    assert [e.split(':')[0] for e in errors] == [
        'tdisp_policy', 'tdisp_policy.version', 'tdisp_policy.rules[0] (id a).match', 'tdisp_policy.rules[1] (id a).id',
        'tdisp_policy.rules[1] (id a).trust', 'tdisp_policy.rules[2] (id g).require.manifest']


def test_manifests_must_be_a_mapping() -> None:
    errors = errors_of(policy(), manifests=['h100-96.00'])
    assert errors == ['reference_manifests: must be a mapping of manifest name to manifest, got list']


def test_trust_accepts_names_numbers_and_reject() -> None:
    rules = [{'id': 'r%d' % i, 'vendor': v, 'trust': level}
             for i, (v, level) in enumerate([('0x0001', 0), ('0x0002', '1'), ('0x0003', 'normal'), ('0x0004', 'reject')])]
    result = validate(policy(*rules, default=2), MANIFESTS)
    assert [r.trust for r in result.rules] == ['blocked', 'adversary', 'normal', 'blocked']
    assert result.default == 'normal'


# ---- shadowing: the analysis must find real shadowing and nothing else ---------------------------------------

SHADOWED = {
    'more specific after broader (fields)': [{'vendor': '0x10de'}, {'vendor': '0x10de', 'device': '0x2330'}],
    'same fields': [{'vendor': '0x10de', 'device': '0x2330'}, {'device': '0x2330', 'vendor': '0x10de'}],
    'literal after glob': [{'class': '0x03*'}, {'class': '0x030200'}],
    'narrow glob after broad glob': [{'bdf': '0000:4?:*'}, {'bdf': '0000:41:00.[0-3]'}],
    'list of values covered': [{'vendor': ['0x10de', '0x15b3']}, {'vendor': '0x15b3', 'class': '0x02*'}],
    'match after fields': [{'vendor': '0x10de'}, {'match': H100}],
    'fields after match': [{'match': "vendor == '0x10de'"}, {'vendor': '0x10de', 'device': '0x23??'}],
    'or-expression on one field': [{'match': "vendor == '0x10de' || vendor == '0x15b3'"}, {'vendor': '0x15b3'}],
    'everything after all: true': [{'all': True}, {'match': "contains(['0x10de'], vendor)"}],
    'everything after `true`': [{'match': '`true`'}, {'vendor': '0x8086'}],
    'tsm field': [{'tsm': 'tsm*'}, {'tsm': 'tsm1', 'vendor': '0x1af4'}],
}

NOT_SHADOWED = {
    'different vendor': [{'vendor': '0x1af4'}, {'vendor': '0x10de', 'device': '0x2330'}],
    'narrower before broader': [{'vendor': '0x10de', 'device': '0x2330'}, {'vendor': '0x10de'}],
    'narrow glob before broad glob': [{'class': '0x0302*'}, {'class': '0x03*'}],
    'overlapping globs': [{'class': '0x0[23]*'}, {'class': '0x0[34]*'}],
    'earlier constrains a field the later does not': [{'vendor': '0x10de', 'driver': 'nvidia'}, {'vendor': '0x10de', 'device': '0x2330'}],
    'unanalysable earlier expression': [{'match': "starts_with(vendor, '0x10')"}, {'vendor': '0x10de'}],
    'unanalysable later expression': [{'vendor': '0x10de'}, {'match': "vendor == '0x10de' || device == '0x0001'"}],
    'or-expression across fields': [{'match': "vendor == '0x10de' || device == '0x2330'"}, {'vendor': '0x10de'}],
    'negated comparison': [{'match': "vendor != '0x10de'"}, {'vendor': '0x1af4'}],
    'covered only by two rules together': [{'vendor': '0x10de', 'device': '0x2330'}, {'vendor': '0x10de', 'device': '0x2331'},
                                           {'vendor': '0x10de', 'device': ['0x2330', '0x2331'], 'class': '0x0302*'}],
}


def _rules(selectors: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    return [dict(s, id='r%d' % i, trust='normal') for i, s in enumerate(selectors)]


@pytest.mark.parametrize('selectors', list(SHADOWED.values()), ids=list(SHADOWED))
def test_shadowed(selectors: list[dict[str, t.Any]]) -> None:
    line = one_error(policy(*_rules(selectors)))
    assert line.startswith('tdisp_policy.rules[1] (id r1) is shadowed by rules[0] (id r0): every device r1 matches, r0 matches first'), line


@pytest.mark.parametrize('selectors', list(NOT_SHADOWED.values()), ids=list(NOT_SHADOWED))
def test_not_shadowed(selectors: list[dict[str, t.Any]]) -> None:
    assert len(validate(policy(*_rules(selectors)), MANIFESTS).rules) == len(selectors)


def test_shadowing_names_the_first_shadowing_rule_only() -> None:
    errors = errors_of(policy(*_rules([{'vendor': '0x10de'}, {'all': True}, {'vendor': '0x10de', 'device': '0x2330'}, {'vendor': '0x8086'}])))
    assert errors == [
        'tdisp_policy.rules[2] (id r2) is shadowed by rules[0] (id r0): every device r2 matches, r0 matches first; '
        'remove r2, or move it above r0',
        'tdisp_policy.rules[3] (id r3) is shadowed by rules[1] (id r1): every device r3 matches, r1 matches first; '
        'remove r3, or move it above r1',
    ]


def test_shadowing_is_sound_on_devices() -> None:
    """Whenever the analysis says 'shadowed', no device reaches the later rule (checked on a device grid)."""
    selectors = [s for case in SHADOWED.values() for s in case] + [s for case in NOT_SHADOWED.values() for s in case]
    values = {'vendor': ['0x10de', '0x15b3', '0x1af4', '0x8086'], 'device': ['0x2330', '0x2331', '0x0001'],
              'class': ['0x030200', '0x020000', '0x030000'], 'bdf': ['0000:41:00.0', '0000:41:00.5', '0000:42:00.0'],
              'driver': ['nvidia', None], 'tsm': ['tsm1', None]}
    grid = [dict(vendor=v, device=d, **{'class': c}, bdf=b, driver=r, tsm=m) for v in values['vendor'] for d in values['device']
            for c in values['class'] for b in values['bdf'] for r in values['driver'] for m in values['tsm']]
    for earlier in selectors:
        for later in selectors:
            try:
                validate(policy(*_rules([earlier, later])), MANIFESTS)
                continue
            except PolicyError as err:
                assert 'is shadowed by' in str(err), err
            pair = validate(policy(*_rules([later])), MANIFESTS).rules[0], validate(policy(*_rules([earlier])), MANIFESTS).rules[0]
            for view in grid:
                if pair[0].matcher.matches(view):
                    assert pair[1].matcher.matches(view), (earlier, later, view)


# ---- warnings ---------------------------------------------------------------------------------------------------

def test_warns_on_expected_entry_no_rule_can_admit() -> None:
    result = validate(policy({'id': 'v', 'vendor': '0x1af4', 'trust': 'normal'}, {'id': 'nv', 'vendor': '0x10de', 'trust': 'reject'},
                             expected=[{'id': 'gpus', 'match': H100, 'count': 8}]), MANIFESTS)
    assert result.warnings == ('tdisp_policy.expected[0] (id gpus): no rule can give these devices an outcome other than reject (blocked); '
                               'add a rule for them, or remove the entry if they are meant to be rejected',)


@pytest.mark.parametrize('raw', [
    policy(tcb(), expected=[{'id': 'gpus', 'match': H100, 'count': 8}]),
    policy({'id': 'x', 'match': "starts_with(class, '0x03')", 'trust': 'normal'}, expected=[{'id': 'gpus', 'match': H100, 'count': 8}]),
    policy(default='adversary', expected=[{'id': 'gpus', 'match': H100, 'count': 8}]),
    policy({'id': 'nvme', 'bdf': '0000:01:*', 'trust': 'normal'}, expected=[{'id': 'boot', 'bdfs': ['0000:01:00.0']}]),
], ids=['tcb rule', 'unanalysable rule', 'permissive default', 'bdf glob'])
def test_no_warning_when_a_rule_may_admit(raw: dict[str, t.Any]) -> None:
    assert validate(raw, MANIFESTS).warnings == ()


def test_warns_on_exact_set_outside_every_rule() -> None:
    result = validate(policy({'id': 'nvme', 'bdf': '0000:01:*', 'trust': 'normal'}, expected=[{'id': 'boot', 'bdfs': ['0000:02:00.0']}]),
                      MANIFESTS)
    assert len(result.warnings) == 1 and result.warnings[0].startswith('tdisp_policy.expected[0] (id boot): no rule')


def test_warns_when_a_match_reads_state_the_collection_changes() -> None:
    result = validate(policy({'id': 'v', 'match': "vendor == '0x1af4' && tdisp_state == 'run'", 'trust': 'normal'}), MANIFESTS)
    assert result.warnings == ("tdisp_policy.rules[0] (id v).match: reads tdisp_state, which the collection changes while converging; the "
                               "decision can differ on the next run. Match on identity (vendor, device, class, subsystem_*, bdf) instead",)


def test_warns_when_manifest_names_are_not_checked() -> None:
    result = validate(policy(tcb()))
    assert result.warnings == ('tdisp_policy: reference_manifests not given, so require.manifest names were not checked',)


def test_fields_in_projections_are_not_taken_for_device_fields() -> None:
    expr = "vendor == '0x10de' && length(evidence.measurements[?index == `1`].digest) > `0`"
    assert validate(policy({'id': 'v', 'match': expr, 'trust': 'normal'}), MANIFESTS).rules[0].matcher.kind == 'match'


# ---- normalisation ------------------------------------------------------------------------------------------------

def test_normalised_form_fills_defaults_and_validates_to_itself() -> None:
    raw = policy(tcb(), {'id': 'nics', 'class': '0x0200*', 'trust': 2}, {'id': 'rest', 'all': True, 'trust': 'reject'},
                 expected=[{'id': 'gpus', 'match': H100, 'min': 1, 'max': 8}, {'id': 'boot', 'bdfs': ['0000:01:00.0']}],
                 exemptions=[{'bdf': '0000:99:00.0', 'reason': 'INC-1', 'until': '2026-12-31', 'kinds': ['not_accepted']}])
    normal = validate(raw, MANIFESTS).as_dict()
    assert normal['default'] == 'blocked'
    assert normal['rules'][0]['require'] == {'manifest': 'h100-96.00', 'min_status': 'affirming', 'interface': {}}
    assert normal['rules'][0]['on_evidence_failure'] == 'blocked'
    assert normal['rules'][1] == {'id': 'nics', 'class': ['0x0200*'], 'trust': 'normal'}
    assert normal['rules'][2] == {'id': 'rest', 'all': True, 'trust': 'blocked'}
    assert normal['expected_complete'] is False
    assert normal['exemptions'] == [{'bdf': '0000:99:00.0', 'reason': 'INC-1', 'until': '2026-12-31', 'kinds': ['not_accepted']}]
    assert validate(normal, MANIFESTS).as_dict() == normal


def test_plain_fields_validate_without_jmespath(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_policy_match, 'HAS_JMESPATH', False)
    assert validate(policy({'id': 'v', 'vendor': '0x1af4', 'trust': 'normal'}), MANIFESTS).rules[0].id == 'v'
    line = one_error(policy({'id': 'g', 'match': H100, 'trust': 'normal'}))
    assert line == ('tdisp_policy.rules[0] (id g).match: the Python package "jmespath" is not installed on the controller; '
                    'install the collection\'s requirements/collection.txt (pip install "jmespath>=1.0.1,<2")')


# ---- the complete example of docs/policy.md ----------------------------------------------------------------------

def _doc_block(name: str) -> t.Any:
    doc = pathlib.Path(__file__).resolve().parents[4] / 'docs' / 'policy.md'
    blocks = re.findall(r'<!-- example: %s -->\n```yaml\n(.*?)```' % name, doc.read_text(encoding='utf-8'), re.S)
    assert len(blocks) == 1, 'docs/policy.md must hold exactly one block marked <!-- example: %s -->' % name
    return yaml.safe_load(blocks[0])


def test_docs_example_validates_and_decides_as_documented() -> None:
    example, host = _doc_block('policy'), _doc_block('host')
    result = validate(example['tdisp_policy'], example['reference_manifests'])
    assert result.warnings == ()
    for name, manifest in example['reference_manifests'].items():
        assert _manifest.validate_manifest(name, manifest) == []
    decided = plan(host['devices'], example['tdisp_policy'], host['verdicts'], example['reference_manifests'], now='2026-11-30')
    assert {d['bdf']: {'rule': d['rule'], 'trust': d['outcome']['trust']} for d in decided['decisions']} == host['decisions']
    shown = _doc_block('decision')
    assert [d for d in decided['decisions'] if d['bdf'] == shown['bdf']] == [shown]
