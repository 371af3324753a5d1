# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The JSON Schema (draft 2020-12) of the JSON reports, published as ``docs/report-schema.json``.

``SCHEMA`` describes the three kinds of ``_reports.document`` and the ``provenance`` field
(``provenance.build``) and the rollout's ``waves``. Fields not named here may be added in later
versions (``additionalProperties`` is left open), so tools should ignore what they do not know.
"""

from __future__ import annotations

import typing as t

ID = 'https://github.com/coco-tdisp/coco.tdisp/blob/main/docs/report-schema.json'

_STR = {'type': 'string'}
_OPT_STR = {'type': ['string', 'null']}
_INT = {'type': 'integer', 'minimum': 0}
_STRS = {'type': 'array', 'items': _STR}
_COUNTS = {'type': 'object', 'additionalProperties': _INT}
_TIME = {'type': 'string', 'pattern': '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'}
_DIGEST = {'type': 'string', 'pattern': '^sha256:[0-9a-f]{64}$'}


def _obj(required: t.Sequence[str], **properties: t.Any) -> dict[str, t.Any]:
    return {'type': 'object', 'required': list(required), 'properties': properties}


PROVENANCE = _obj(
    ['collection_version', 'policy', 'manifests', 'controller', 'user', 'time', 'check_mode'],
    collection_version=dict(_OPT_STR, description='coco.tdisp version that wrote the report'),
    policy=_obj(['version', 'digest'], version=_OPT_STR, digest={'oneOf': [_DIGEST, {'type': 'null'}]}),
    manifests={'type': 'object', 'description': 'reference manifest name -> digest', 'additionalProperties': _DIGEST},
    controller=dict(_OPT_STR, description='host name of the Ansible controller'),
    user=dict(_OPT_STR, description='user that ran ansible-playbook'),
    time=_TIME,
    check_mode={'type': 'boolean'},
)

DEVICE = _obj(['bdf', 'rule', 'trust', 'action'], bdf=_STR, vendor=_OPT_STR, device=_OPT_STR, rule=_STR, matched_by=_OPT_STR,
              trust=_OPT_STR, tdisp_state=_OPT_STR, action=_STR, action_reason=_OPT_STR, exempt={'type': 'boolean'},
              verdict={'type': ['object', 'null']})

HOST_SUMMARY = _obj(['host', 'failed', 'converged', 'counts', 'devices'], host=_STR, policy_version=_OPT_STR,
                    check_mode={'type': 'boolean'}, failed={'type': 'boolean'}, failure=_OPT_STR, changed={'type': 'boolean'},
                    converged={'type': 'boolean'}, contraindicated=_INT, counts={'type': 'object'},
                    devices={'type': 'array', 'items': DEVICE}, refused={'type': 'array'}, rejected={'type': 'array'},
                    preflight={'type': 'array'}, expected={'type': 'array'}, gate_notes=_STRS)

WAVE = _obj(['wave', 'hosts', 'passed', 'reasons'], wave={'type': 'integer', 'minimum': 1}, hosts=_STRS,
            passed={'type': 'boolean'}, reasons=_STRS)

ROLLOUT = _obj(['kind', 'policy_version', 'check_mode', 'written_at', 'hosts', 'not_reached'],
               kind={'const': 'rollout'}, policy_version=_OPT_STR, check_mode={'type': 'boolean'}, written_at=_TIME,
               hosts={'type': 'array', 'items': HOST_SUMMARY}, not_reached=_STRS, waves={'type': 'array', 'items': WAVE})

_FINDING = _obj(['host', 'bdf', 'kind', 'rule'], host=_STR, bdf=_OPT_STR, kind=_STR, rule=_OPT_STR, reason=_OPT_STR,
                policy_version=_OPT_STR)

AUDIT = _obj(
    ['format', 'kind', 'generated_at', 'policy_versions', 'hosts', 'devices', 'findings', 'drift', 'exempt', 'accepted_devices',
     'per_host'],
    format={'const': 1}, kind={'const': 'audit'}, generated_at=_TIME, policy_versions=_STRS,
    hosts=_obj(['expected', 'audited', 'compliant', 'with_drift', 'not_audited'], expected=_INT, audited=_INT, compliant=_INT,
               with_drift=_INT, not_audited=_STRS),
    devices=_obj(['total', 'by_trust_level', 'by_tdisp_state', 'accepted'], total=_INT, by_trust_level=_COUNTS,
                 by_tdisp_state=_COUNTS, accepted=_INT),
    findings=_obj(['by_kind', 'drift'], by_kind=_COUNTS, drift=_INT),
    drift={'type': 'array', 'items': _FINDING}, exempt={'type': 'array', 'items': _FINDING},
    accepted_devices={'type': 'array', 'items': _obj(['host', 'bdf', 'rule', 'compliant'], host=_STR, bdf=_STR, rule=_OPT_STR,
                                                     compliant={'type': 'boolean'})},
    per_host={'type': 'array', 'items': _obj(['host', 'compliant', 'devices', 'drift'], host=_STR, compliant={'type': 'boolean'},
                                             devices=_INT, drift=_INT, by_trust_level=_COUNTS, findings={'type': 'array'})},
)

REVOKE = _obj(['kind', 'match', 'level', 'check_mode', 'hosts', 'not_reached'], kind={'const': 'revoke'}, match=_OPT_STR,
              level={'type': ['string', 'integer', 'null']}, check_mode={'type': 'boolean'},
              hosts={'type': 'array', 'items': _obj(['host', 'devices', 'unlocked', 'lowered'], host=_STR, devices=_STRS,
                                                    unlocked=_STRS, lowered=_STRS)},
              not_reached=_STRS)

SCHEMA: dict[str, t.Any] = {
    '$schema': 'https://json-schema.org/draft/2020-12/schema',
    '$id': ID,
    'title': 'coco.tdisp fleet report',
    'description': 'A rollout, audit or revoke report written by coco.tdisp.tdisp_report (docs/reports.md).',
    'type': 'object',
    'required': ['kind', 'provenance'],
    'properties': {'kind': {'enum': ['rollout', 'audit', 'revoke']}, 'provenance': PROVENANCE},
    'oneOf': [ROLLOUT, AUDIT, REVOKE],
}
