# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Selecting devices with a JMESPath expression (incident response)."""

from __future__ import annotations

import pytest

from ansible_collections.coco.tdisp.plugins.plugin_utils._policy import PolicyError, select

LEAKED = 'ab' * 48
GPU = {'bdf': '0000:18:00.0', 'vendor': '0x10de', 'device': '0x2330', 'class': '0x030200', 'tdisp_state': 'run', 'trust_level': 'tcb',
       'evidence': {'generation': 3, 'measurements': {'blocks': [{'index': 2, 'value': LEAKED, 'raw': False}]}}}
GPU2 = dict(GPU, bdf='0000:2a:00.0', evidence={'generation': 3, 'measurements': {'blocks': [{'index': 2, 'value': 'cd' * 48, 'raw': False}]}})
NIC = {'bdf': '0000:0c:00.0', 'vendor': '0x15b3', 'device': '0x1021', 'class': '0x020000', 'tdisp_state': 'unlocked'}


def bdfs(devices):
    return [d['bdf'] for d in devices]


def test_by_vendor():
    assert bdfs(select([GPU, GPU2, NIC], "vendor == '0x10de'")) == ['0000:18:00.0', '0000:2a:00.0']


def test_by_a_leaked_firmware_digest_in_the_evidence():
    expr = "contains(evidence.measurements.blocks[?index == `2`].value || `[]`, '%s')" % LEAKED
    assert bdfs(select({'devices': [GPU, GPU2, NIC]}, expr)) == ['0000:18:00.0']


def test_an_expression_that_fails_on_a_device_stops_the_selection_naming_the_device():
    """A device without evidence cannot be judged by an expression that needs it: say so rather than skip it."""
    with pytest.raises(PolicyError) as exc:
        select([GPU, NIC], "length(evidence.measurements.blocks) > `0`")
    assert str(exc.value).startswith('0000:0c:00.0: match')


@pytest.mark.parametrize('expr, text', [
    ("vendor ==", 'does not compile'),
    ("vendr == '0x10de'", "field 'vendr' is not in the device facts"),
    ('', 'non-empty JMESPath'),
])
def test_a_bad_expression_selects_nothing_and_says_why(expr, text):
    with pytest.raises(PolicyError) as exc:
        select([GPU], expr)
    assert text in str(exc.value)
