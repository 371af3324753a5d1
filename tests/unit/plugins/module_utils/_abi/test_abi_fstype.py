# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The filesystem type under a path from /proc/self/mountinfo, and bounded writes (issue 10: refuse what is not sysfs;
a permanent EINTR loops no more)."""

from __future__ import annotations

import errno

import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._abi import fstype
from ansible_collections.coco.tdisp.plugins.module_utils._abi.sysfs import RETRY_DELAYS, write_bounded

MOUNTINFO = """\
22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/root rw
23 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
24 23 0:23 / /sys/kernel/security rw shared:8 - securityfs securityfs rw
40 22 0:40 / /run/tdisp\\040sim rw,nosuid,nodev,relatime - fuse.tdisp-sim tdisp-sim rw,user_id=0,group_id=0
41 22 0:41 / /tmp rw - tmpfs tmpfs rw
garbage line
"""


@pytest.mark.parametrize('path, kind', [
    ('/sys', 'sysfs'), ('/sys/bus/pci', 'sysfs'), ('/sys/kernel/security', 'securityfs'), ('/sysfoo', 'ext4'),
    ('/run/tdisp sim/cvm-1/sys', 'fuse.tdisp-sim'), ('/tmp/copy/sys', 'tmpfs'), ('/', 'ext4'),
])
def test_longest_mount_point_prefix(path, kind):
    assert fstype.fstype_of(path, fstype.parse(MOUNTINFO)) == kind


def test_a_later_mount_over_the_same_point_wins():
    mounts = fstype.parse(MOUNTINFO + '50 23 0:50 / /sys rw - tmpfs tmpfs rw\n')
    assert fstype.fstype_of('/sys/bus', mounts) == 'tmpfs'


def test_no_mount_and_unreadable(monkeypatch):
    assert fstype.fstype_of('/x', []) is None
    monkeypatch.setattr(fstype, 'MOUNTINFO', '/nonexistent/mountinfo')
    kind, why = fstype.read_fstype('/sys')
    assert kind is None and 'unreadable' in why


def test_permanent_eintr_is_bounded():
    calls, sleeps = [], []

    def raw(fd, data):
        calls.append(data)
        return -1, errno.EINTR
    with pytest.raises(OSError) as info:
        write_bounded(3, b'3', raw=raw, sleep=sleeps.append)
    assert info.value.errno == errno.EINTR and 'on each of %d attempts' % (len(RETRY_DELAYS) + 1) in str(info.value)
    assert len(calls) == len(RETRY_DELAYS) + 1 and sleeps == list(RETRY_DELAYS)


def test_eagain_from_accept_is_not_retried_and_a_transient_eintr_is():
    seq = [(-1, errno.EINTR), (1, 0)]
    assert write_bounded(3, b'1', raw=lambda fd, data: seq.pop(0), sleep=lambda s: None) == 1
    calls = []

    def again(fd, data):
        calls.append(data)
        return -1, errno.EAGAIN
    with pytest.raises(OSError) as info:
        write_bounded(3, b'1', retry_eagain=False, raw=again, sleep=lambda s: None)
    assert info.value.errno == errno.EAGAIN and len(calls) == 1
    with pytest.raises(OSError) as info:
        write_bounded(3, b'1', raw=lambda fd, data: (-1, errno.EBUSY), sleep=lambda s: None)
    assert info.value.errno == errno.EBUSY
