# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The run_id filter: the shape the modules' run.id accepts, the playbook's pid, one-line errors."""

from __future__ import annotations

import os
import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.coco.tdisp.plugins.filter.acceptance import FilterModule

RUN_ID = re.compile(r'[A-Za-z0-9][A-Za-z0-9._:-]{0,63}')   # docs/reliability.md, the run option


def test_a_run_id_names_the_kind_the_playbook_pid_and_the_start_time():
    run_id = FilterModule().filters()['run_id']
    first, second = run_id('revoke'), run_id('revoke')
    assert RUN_ID.fullmatch(first) and first != second
    kind, pid, stamp, tag = first.split('-')
    assert (kind, int(pid)) == ('revoke', os.getppid()) and re.fullmatch(r'\d{8}T\d{6}Z', stamp) and len(tag) == 6


@pytest.mark.parametrize('kind', ['', 'a-b', 'x' * 17, 5, None])
def test_a_bad_kind_is_one_line(kind):
    with pytest.raises(AnsibleFilterError) as err:
        FilterModule().filters()['run_id'](kind)
    assert 'coco.tdisp.run_id' in str(err.value) and '\n' not in str(err.value)
