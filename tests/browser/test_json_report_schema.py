# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The JSON reports validate against the published schema (docs/report-schema.json), with the
project venv's jsonschema (ansible-test's unit environment does not have it)."""

from __future__ import annotations

import json
import os

import jsonschema
import pytest

from ansible_collections.coco.tdisp.tests.unit.plugins.plugin_utils import render_fixtures as fx

SCHEMA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'docs', 'report-schema.json')


@pytest.fixture(scope='module')
def validator() -> jsonschema.Draft202012Validator:
    with open(SCHEMA, encoding='utf-8') as handle:
        schema = json.load(handle)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize('kind', sorted(fx.REPORTS))
def test_every_report_kind_validates(validator, kind):
    validator.validate(json.loads(json.dumps(fx.REPORTS[kind]())))


@pytest.mark.parametrize('drop', ['provenance', 'kind'])
def test_a_report_without_provenance_or_kind_is_invalid(validator, drop):
    report = {k: v for k, v in fx.audit().items() if k != drop}
    assert not validator.is_valid(report)


def test_a_bad_digest_is_invalid(validator):
    report = fx.audit()
    report['provenance']['manifests']['h100-96.00'] = 'md5:00'
    assert not validator.is_valid(report)
