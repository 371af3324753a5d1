# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The shared options: the defaults are constants in ``_tdisp/options.py``, documented once in the
doc fragment, and the action group of ``meta/runtime.yml`` lists exactly the modules that document it."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.coco.tdisp.plugins.doc_fragments._attributes import ModuleDocFragment
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp import options
from ansible_collections.coco.tdisp.plugins.modules import device_trust, tdisp_device, tdisp_device_info

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


@pytest.mark.parametrize('fragment, option, constant', [
    (ModuleDocFragment.SYSFS, 'sysfs_root', options.SYSFS_ROOT),
    (ModuleDocFragment.STATE_DIR, 'state_dir', options.STATE_DIR),
    (ModuleDocFragment.EVIDENCE, 'evidence_endpoint', options.EVIDENCE_ENDPOINT),
])
def test_documented_default_is_the_constant(fragment, option, constant):
    doc = yaml.safe_load(fragment)['options'][option]
    assert doc['default'] == constant
    assert options.COMMON[option] == {'type': doc['type'], 'default': constant}


def _spec_of(doc):
    out = {'type': doc['type']}
    if 'default' in doc:
        out['default'] = doc['default']
    if 'suboptions' in doc:
        out['options'] = {k: _spec_of(v) for k, v in doc['suboptions'].items()}
    return out


def test_reliability_options_are_documented_once_as_specified():
    doc = yaml.safe_load(ModuleDocFragment.RELIABILITY)['options']
    assert {k: _spec_of(v) for k, v in doc.items()} == options.RELIABILITY
    for mod in (tdisp_device_info, tdisp_device, device_trust):
        assert 'coco.tdisp._attributes.reliability' in yaml.safe_load(mod.DOCUMENTATION)['extends_documentation_fragment']


def test_defaults():
    assert (options.SYSFS_ROOT, options.STATE_DIR, options.EVIDENCE_ENDPOINT) == ('/sys', '/var/lib/coco-tdisp', 'netlink')


def test_argument_spec_own_entry_wins():
    spec = options.argument_spec(state_dir={'type': 'path'}, devices={'type': 'list'})
    assert spec == {'sysfs_root': {'type': 'path', 'default': '/sys'}, 'state_dir': {'type': 'path'},
                    'evidence_endpoint': {'type': 'str', 'default': 'netlink'}, 'devices': {'type': 'list'}}
    spec['sysfs_root']['default'] = 'changed'
    assert options.COMMON['sysfs_root']['default'] == '/sys'   # a copy, never the shared entry


def test_action_group_lists_the_modules_that_document_it():
    with open(os.path.join(ROOT, 'meta', 'runtime.yml')) as f:
        runtime = yaml.safe_load(f)
    members = [m for m in (tdisp_device_info, tdisp_device, device_trust)
               if 'coco.tdisp._attributes.action_group' in yaml.safe_load(m.DOCUMENTATION)['extends_documentation_fragment']]
    assert runtime['action_groups'] == {'tdisp': [m.__name__.rsplit('.', 1)[-1] for m in members]}
    assert yaml.safe_load(ModuleDocFragment.ACTION_GROUP)['attributes']['action_group']['membership'] == ['coco.tdisp.tdisp']
