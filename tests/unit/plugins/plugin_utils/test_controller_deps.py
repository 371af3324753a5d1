# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A missing controller dependency is one line naming the package and requirements/collection.txt."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.coco.tdisp.plugins.filter import policy as policy_filters
from ansible_collections.coco.tdisp.plugins.plugin_utils._attestation import common
from ansible_collections.coco.tdisp.plugins.plugin_utils._policy import match


def test_missing_jmespath_names_the_package_and_the_requirements(monkeypatch):
    monkeypatch.setattr(match, 'HAS_JMESPATH', False)
    policy = {'version': '1.0', 'rules': [{'id': 'g', 'match': "vendor == '0x10de'", 'trust': 'normal'}]}
    with pytest.raises(AnsibleFilterError) as err:
        policy_filters.policy_validate(policy, {})
    text = str(err.value)
    assert '"jmespath" is not installed on the controller' in text and 'requirements/collection.txt' in text
    assert 'Traceback' not in text


def test_missing_cryptography_names_the_package_and_the_requirements(monkeypatch):
    monkeypatch.setattr(common, 'HAS_CRYPTOGRAPHY', False)
    monkeypatch.setattr(common, 'CRYPTOGRAPHY_IMPORT_ERROR', ImportError("No module named 'cryptography'"))
    with pytest.raises(common.VerifyError) as err:
        common.require_cryptography()
    assert str(err.value).count('\n') == 0
    assert '"cryptography" on the controller' in str(err.value) and 'requirements/collection.txt' in str(err.value)
