"""The kernel lane's checks, run in the QEMU guest by tests/kernel/guest.sh (docs/kernel-lane.md).

Real: the 7.3 kernel's sysfs, driver core (bind, unbind, probe errors), PCI enumeration, the
kernel's own host-side tsm/ attributes, file permissions, and errno propagation through write(2).
From the test module (tests/kernel/tdisp_test_tsm): the TEE bit, the guest-side tsm/lock,
tsm/unlock, tsm/accept, trust_policy and tsmN/pci_mode.

The collection is used as a user would: its modules run as programs (the way Ansible runs them)
and the rollout and audit playbooks through ansible-playbook with a local connection. Nothing
here imports the collection's code. The last line is "N passed, M failed".
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
import time

SYS = '/sys/bus/pci/devices'
STATE = '/tmp/tdisp-state'
OUT = os.environ.get('TDISP_OUT', '/out')
PARAM = '/sys/module/tdisp_test_tsm/parameters/accept_errno'
RESULTS: list[tuple[bool, str]] = []


def check(name: str, ok: bool, detail: object = '') -> bool:
    RESULTS.append((bool(ok), name))
    print('%s %s%s' % ('PASS' if ok else 'FAIL', name, '' if ok or detail == '' else ': %s' % (detail,)),
          flush=True)
    return bool(ok)


def read(bdf: str, attr: str) -> str | None:
    try:
        with open(os.path.join(SYS, bdf, attr)) as f:
            return f.read().strip()
    except OSError:
        return None


def driver(bdf: str) -> str | None:
    link = os.path.join(SYS, bdf, 'driver')
    return os.path.basename(os.readlink(link)) if os.path.islink(link) else None


def write(path: str, value: str) -> int:
    """Write like echo does; return 0 or the errno that write(2) gave."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as exc:
        return exc.errno or -1
    try:
        os.write(fd, (value + '\n').encode())
        return 0
    except OSError as exc:
        return exc.errno or -1
    finally:
        os.close(fd)


def snapshot(bdfs: list[str]) -> dict:
    return {b: (read(b, 'tsm/lock'), read(b, 'tsm/accept'), read(b, 'tsm/connect'),
                read(b, 'trust_policy'), driver(b)) for b in bdfs}


def module(name: str, args: dict, check_mode: bool = False) -> dict:
    """Run a module of the collection as Ansible does: a program given its arguments file."""
    margs = dict(args, _ansible_check_mode=check_mode, _ansible_diff=True)
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as f:
        json.dump({'ANSIBLE_MODULE_ARGS': margs}, f)
    t0 = time.time()
    proc = subprocess.run([sys.executable, 'plugins/modules/%s.py' % name, f.name], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH='build/collections'), check=False)
    os.unlink(f.name)
    print('  (%s%s: %.1f s)' % (name, ' --check' if check_mode else '', time.time() - t0), flush=True)
    try:
        res = json.loads(proc.stdout)
    except ValueError:
        res = {'failed': True, 'msg': 'no JSON: %s %s' % (proc.stdout[-300:], proc.stderr[-300:])}
    res['_stderr'] = proc.stderr
    return res


def one_line(res: dict) -> bool:
    msg = res.get('msg', '')
    return bool(msg) and '\n' not in msg and 'Traceback' not in msg + res.get('_stderr', '')


def info(bdfs: list[str] | None = None) -> dict:
    args: dict = {'state_dir': STATE}
    args.update({'bdfs': bdfs} if bdfs else {'all_devices': True})
    res = module('tdisp_device_info', args)
    res['by_bdf'] = {d['bdf']: d for d in res.get('devices', [])}
    return res


def compare(dev: dict, bdf: str, label: str) -> None:
    """What the module reports against what the kernel shows."""
    lock = read(bdf, 'tsm/lock')
    accept = read(bdf, 'tsm/accept')
    want = {'driver': driver(bdf), 'lock_holder': lock or None, 'accepted': accept == '1',
            'trust_raw': read(bdf, 'trust_policy'),
            'tdisp_state': 'unlocked' if not lock else ('run' if accept == '1' else 'locked')}
    got = {k: dev.get(k) for k in want}
    check('%s: %s as the kernel shows it' % (label, bdf), got == want, 'module %s, sysfs %s' % (got, want))


def kernel_side(bdfs: list[str], nic: str, nvme0: str, rng: str) -> None:
    """The kernel's own attributes and errnos, read and written directly."""
    uname = os.uname().release
    check('kernel is Debian 7.3 (%s)' % uname, uname.startswith('7.3'))
    try:
        with open('/boot/config-%s' % uname) as f:
            config = f.read()
    except OSError:
        config = ''
    check('kernel config has CONFIG_PCI_TSM=y', 'CONFIG_PCI_TSM=y\n' in config)
    modes = {}
    for tsm in sorted(os.listdir('/sys/class/tsm')):
        try:
            with open('/sys/class/tsm/%s/pci_mode' % tsm) as f:
                modes[tsm] = f.read().strip()
        except OSError:
            modes[tsm] = None
    check('TSMs in registration order: tsm0 link, tsm1 devsec', modes == {'tsm0': 'link', 'tsm1': 'devsec'}, modes)
    for bdf in bdfs:
        have = sorted(os.listdir(os.path.join(SYS, bdf, 'tsm')))
        check('%s tsm/ has the kernel host side and the module guest side' % bdf,
              have == ['accept', 'bound', 'connect', 'disconnect', 'dsm', 'lock', 'unlock'], have)
    check('the kernel shows authenticated on a TEE PF0', read(nic, 'authenticated') == '')
    check('no tsm/ on a device without TEE (the 9p transport)',
          not any(os.path.isdir(os.path.join(SYS, b, 'tsm')) for b in os.listdir(SYS) if b not in bdfs))
    # connect and disconnect: drivers/pci/tsm.c itself, calling the module's link ops
    c = os.path.join(SYS, rng, 'tsm')
    check('kernel: connect with a devsec TSM fails ENXIO', write(c + '/connect', 'tsm1') == errno.ENXIO)
    check('kernel: connect with a bad name fails EINVAL', write(c + '/connect', 'x') == errno.EINVAL)
    check('kernel: connect tsm0 succeeds', write(c + '/connect', 'tsm0') == 0)
    check('kernel: connect reads tsm0, authenticated too, dsm names the device',
          (read(rng, 'tsm/connect'), read(rng, 'authenticated'), read(rng, 'tsm/dsm')) == ('tsm0', 'tsm0', rng),
          (read(rng, 'tsm/connect'), read(rng, 'authenticated'), read(rng, 'tsm/dsm')))
    check('kernel: a second connect fails EBUSY', write(c + '/connect', 'tsm0') == errno.EBUSY)
    check('module: lock of a link-connected device fails EBUSY', write(c + '/lock', 'tsm1') == errno.EBUSY)
    dev = info([rng])['by_bdf'].get(rng, {})
    check('info reports the kernel connection', dev.get('connected') == 'tsm0', dev.get('connected'))
    check('kernel: disconnect with another name fails EINVAL', write(c + '/disconnect', 'tsm1') == errno.EINVAL)
    check('kernel: disconnect tsm0 succeeds', write(c + '/disconnect', 'tsm0') == 0 and read(rng, 'tsm/connect') == '')
    check('kernel: disconnect when not connected fails ENXIO', write(c + '/disconnect', 'tsm0') == errno.ENXIO)
    # guest side: EBUSY from the real dev->driver, permissions from sysfs
    n = os.path.join(SYS, nic, 'tsm')
    check('lock with e1000e bound fails EBUSY', write(n + '/lock', 'tsm1') == errno.EBUSY)
    check('lock with the link TSM fails ENXIO', write(n + '/lock', 'tsm0') == errno.ENXIO)
    check('accept of an unlocked device fails EINVAL', write(n + '/accept', '1') == errno.EINVAL)
    check('reading the write-only tsm/unlock fails (EACCES)', read_errno(n + '/unlock') == errno.EACCES)
    check('an unprivileged writer gets EACCES', as_nobody(n + '/lock', 'tsm1') == errno.EACCES)
    check('trust_policy of a device a driver matched fails EBUSY',
          write(os.path.join(SYS, nic, 'trust_policy'), 'adversary') == errno.EBUSY)
    check('trust_policy rejects an unknown word with EINVAL',
          write(os.path.join(SYS, nvme0, 'trust_policy'), 'tcb') == errno.EINVAL)


def read_errno(path: str) -> int:
    try:
        with open(path) as f:
            f.read()
        return 0
    except OSError as exc:
        return exc.errno or -1


def as_nobody(path: str, value: str) -> int:
    pid = os.fork()
    if pid == 0:
        os.setgid(65534)
        os.setuid(65534)
        os._exit(write(path, value))
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def walk(nic: str, bdfs: list[str]) -> None:
    """The module integration walk on the e1000e: info, lock, accept, trust, unlock."""
    if not load_module(bdfs):
        return
    base = {'state_dir': STATE, 'unbind_driver': True}
    dev = info()['by_bdf']
    for bdf in bdfs:
        compare(dev.get(bdf, {}), bdf, 'info')
    check('info: tsm_side both and trust ABI trust_policy on the test devices',
          all((dev[b]['tsm_side'], dev[b]['trust_abi']) == ('both', 'trust_policy') for b in bdfs))

    before = snapshot(bdfs)
    res = module('tdisp_device', dict(base, devices=[{'bdf': nic, 'state': 'run', 'unverified': True}], tsm='tsm1'), check_mode=True)
    check('check mode: lock+accept planned', res.get('changed') is True and not res.get('failed'), res.get('msg'))
    check('check mode wrote nothing (sysfs and driver unchanged)', snapshot(bdfs) == before)

    res = module('tdisp_device', dict(base, devices=[{'bdf': nic, 'state': 'run', 'unverified': True}], tsm='tsm1'))
    check('lock+accept with e1000e bound (unbind, lock, accept, rebind)',
          res.get('changed') is True and not res.get('failed'), res.get('msg'))
    check('kernel: locked by tsm1, accepted, e1000e bound again',
          (read(nic, 'tsm/lock'), read(nic, 'tsm/accept'), driver(nic)) == ('tsm1', '1', 'e1000e'),
          (read(nic, 'tsm/lock'), read(nic, 'tsm/accept'), driver(nic)))
    compare(res.get('devices', [{}])[0].get('after', {}), nic, 'tdisp_device after')
    before = snapshot(bdfs)
    res = module('tdisp_device', dict(base, devices=[{'bdf': nic, 'state': 'run', 'unverified': True}], tsm='tsm1'))
    check('re-run changes nothing', res.get('changed') is False and not res.get('failed') and snapshot(bdfs) == before,
          res.get('msg'))

    res = module('device_trust', dict(base, devices=[{'bdf': nic, 'level': 'adversary'}]))
    check('trust on a device a driver matched: the kernel EBUSY as one line', res.get('failed') and one_line(res),
          res.get('msg'))
    check('the refused trust change left trust_policy and the driver alone',
          (read(nic, 'trust_policy'), driver(nic)) == ('default', 'e1000e'), (read(nic, 'trust_policy'), driver(nic)))

    res = module('tdisp_device', dict(base, devices=[{'bdf': nic, 'state': 'unlocked'}], tsm='tsm1'))
    check('leaving run without allow_disruptive is refused in one line', res.get('failed') and one_line(res)
          and read(nic, 'tsm/lock') == 'tsm1', res.get('msg'))
    res = module('tdisp_device', dict(base, devices=[{'bdf': nic, 'state': 'unlocked'}], tsm='tsm1',
                                      allow_disruptive=True))
    check('unlock (disruptive): unbind, unlock, rebind', res.get('changed') is True and not res.get('failed'),
          res.get('msg'))
    check('kernel: unlocked, not accepted, e1000e bound',
          (read(nic, 'tsm/lock'), read(nic, 'tsm/accept'), driver(nic)) == ('', '0', 'e1000e'))

    # a kernel error in the middle of a sequence: the TSM's run step fails with EIO
    write(PARAM, str(errno.EIO))
    res = module('tdisp_device', dict(base, devices=[{'bdf': nic, 'state': 'run', 'unverified': True}], tsm='tsm1'))
    write(PARAM, '0')
    msg = res.get('msg', '')
    check('accept failing in the kernel (EIO) arrives as one line naming tsm/accept',
          res.get('failed') and one_line(res) and 'tsm/accept' in msg and ('EIO' in msg or 'Input/output' in msg), msg)
    check('after the EIO: locked, not accepted', (read(nic, 'tsm/lock'), read(nic, 'tsm/accept')) == ('tsm1', '0'))
    res = module('tdisp_device', dict(base, devices=[{'bdf': nic, 'state': 'unlocked'}], tsm='tsm1',
                                      allow_disruptive=True))
    check('back to unlocked, the driver the ledger owes bound again',
          not res.get('failed') and (read(nic, 'tsm/lock'), driver(nic)) == ('', 'e1000e'),
          (res.get('msg'), read(nic, 'tsm/lock'), driver(nic)))
    compare(info([nic])['by_bdf'].get(nic, {}), nic, 'info at the end of the walk')


INVENTORY = """
all:
  hosts:
    kguest:
      ansible_connection: local
      ansible_python_interpreter: {python}
      tdisp_state_dir: {state}
      tdisp_evidence_endpoint: netlink
      tdisp_acceptance_force: true  # the lane blocks a spare nvme on purpose (lockout preflight)
  vars:
    tdisp_report_dir: {reports}
    tdisp_policy:
      version: "2026.12.1"
      description: kernel lane, one host
      default: normal
      rules:
        - {{id: nvme-first, bdf: "{nvme0}", trust: adversary}}
        - {{id: nvme-second, bdf: "{nvme1}", trust: reject}}
      expected:
        - {{id: nvme, vendor: "0x1b36", device: "0x0010", count: 2}}
"""


def playbook(name: str, inv: str, check_mode: bool = False) -> int:
    cmd = ['ansible-playbook', '-i', inv, 'playbooks/%s.yml' % name] + (['--check'] if check_mode else [])
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    took = time.time() - t0
    print('  (ansible-playbook %s%s: %.1f s, rc %d)' % (name, ' --check' if check_mode else '', took, proc.returncode),
          flush=True)
    if proc.returncode:
        print(proc.stdout[-3000:], proc.stderr[-2000:])
    return proc.returncode


def load_module(bdfs: list[str], *params: str) -> bool:
    """(Re)load the test TSM on these devices; True when the kernel took it."""
    if os.path.isdir('/sys/module/tdisp_test_tsm'):
        subprocess.run(['rmmod', 'tdisp_test_tsm'], check=True)
    gone = not os.listdir('/sys/class/tsm') and not any(
        os.path.isdir(os.path.join(SYS, b, 'tsm')) or os.path.exists(os.path.join(SYS, b, 'trust_policy'))
        for b in os.listdir(SYS))
    check('after rmmod the kernel hides tsm/ (last link TSM gone) and no TSM is left', gone)
    subprocess.run(['insmod', os.environ['TDISP_KO'], 'bdfs=' + ','.join(bdfs)] + list(params), check=True)
    return check('insmod on %s %s: tsm0 and tsm1 again' % (','.join(bdfs), ' '.join(params)),
                 sorted(os.listdir('/sys/class/tsm')) == ['tsm0', 'tsm1'])


def mainline(bdfs: list[str], nic: str) -> None:
    """What mainline 7.3 itself shows (guest=0 pci_mode=0): the kernel's host side only."""
    if not load_module(bdfs, 'guest=0', 'pci_mode=0'):
        return
    have = sorted(os.listdir(os.path.join(SYS, nic, 'tsm')))
    check("mainline profile: tsm/ holds only the kernel's connect, disconnect, dsm, bound",
          have == ['bound', 'connect', 'disconnect', 'dsm'], have)
    check('mainline profile: no trust_policy, no pci_mode',
          not os.path.exists(os.path.join(SYS, nic, 'trust_policy'))
          and not any(os.path.exists('/sys/class/tsm/%s/pci_mode' % t) for t in os.listdir('/sys/class/tsm')))
    res = info()
    dev = res['by_bdf'].get(nic, {})
    tsms = {t.get('name'): t.get('mode') for t in res.get('tsms', [])}
    print('  mainline profile: tsms %s; %s: tsm_side %s, trust_abi %s'
          % (tsms, nic, dev.get('tsm_side'), dev.get('trust_abi')))
    check('mainline profile: info sees the kernel host side', dev.get('tsm_side') == 'host', dev.get('tsm_side'))
    check('mainline profile: tsm0 is a link TSM (from tsm/connect, no pci_mode)', tsms.get('tsm0') == 'link', tsms)
    if tsms.get('tsm1') == 'link':  # a finding for the lead (docs/kernel-lane.md), not a lane failure
        print('  NOTE mainline profile: the devsec TSM tsm1 is reported as link; sysfs does not say which TSM'
              ' made tsm/connect appear')
    before = snapshot(bdfs)
    res = module('tdisp_device', {'state_dir': STATE, 'devices': [{'bdf': nic, 'state': 'locked'}],
                                  'unbind_driver': True})
    print('  mainline profile: lock -> %s' % res.get('msg'))
    check('mainline profile: a lock is refused in one line, nothing written',
          res.get('failed') and one_line(res) and snapshot(bdfs) == before, res.get('msg'))


def rollout_audit(nvme0: str, nvme1: str, bdfs: list[str]) -> None:
    """One host, policy by BDF: the nvme devices get adversary and blocked before nvme loads.

    Only the two nvme devices carry the test attributes here: the e1000e and the virtio-rng were
    probed at boot, so design B's trust_policy can never change on them (EBUSY), and a policy
    that gives them any level cannot converge (see docs/kernel-lane.md).
    """
    if not load_module([nvme0, nvme1]):
        return
    bdfs = [nvme0, nvme1]
    reports = '/tmp/tdisp-reports'
    inv = '/tmp/kernel-lane-inventory.yml'
    with open(inv, 'w') as f:
        f.write(INVENTORY.format(python=sys.executable, state=STATE, reports=reports, nvme0=nvme0, nvme1=nvme1))
    before = snapshot(bdfs)
    rc = playbook('rollout', inv, check_mode=True)
    check('rollout --check passes and writes nothing', rc == 0 and snapshot(bdfs) == before)
    rc = playbook('rollout', inv)
    check('rollout passes', rc == 0)
    check('kernel: trust_policy adversary and disabled on the nvme devices',
          (read(nvme0, 'trust_policy'), read(nvme1, 'trust_policy')) == ('adversary', 'disabled'),
          (read(nvme0, 'trust_policy'), read(nvme1, 'trust_policy')))
    subprocess.run(['modprobe', 'nvme'], check=False)
    for _attempt in range(50):
        if driver(nvme0):
            break
        time.sleep(0.2)
    check('driver core: nvme binds the adversary device, not the disabled one',
          (driver(nvme0), driver(nvme1)) == ('nvme', None), (driver(nvme0), driver(nvme1)))
    check('driver core: a manual bind of the disabled device fails EPERM',
          write('/sys/bus/pci/drivers/nvme/bind', nvme1) == errno.EPERM)
    check('trust_policy after a driver matched fails EBUSY, also on the device it refused',
          write(os.path.join(SYS, nvme1, 'trust_policy'), 'adversary') == errno.EBUSY)
    dev = info()['by_bdf']
    for bdf in (nvme0, nvme1):
        compare(dev.get(bdf, {}), bdf, 'info after rollout')
    check('info: trust levels adversary and blocked',
          (dev[nvme0]['trust_level'], dev[nvme1]['trust_level']) == ('adversary', 'blocked'),
          (dev[nvme0]['trust_level'], dev[nvme1]['trust_level']))
    rc = playbook('audit', inv)
    check('audit passes', rc == 0)
    found = []
    for root, _dirs, files in os.walk(reports):
        found += [os.path.join(root, f) for f in files if f.startswith('audit') and f.endswith('.json')]
    report = {}
    if found:
        with open(sorted(found)[-1]) as f:
            report = json.load(f)
    check('audit report written', bool(report), found)
    drift = report.get('drift', [])
    check('audit: no drift on the two nvme devices', not [d for d in drift if d.get('bdf') in (nvme0, nvme1)],
          [d for d in drift if d.get('bdf') in (nvme0, nvme1)])
    others = sorted({'%s %s' % (d.get('bdf'), d.get('kind')) for d in drift})
    print('  audit drift elsewhere (devices without a trust ABI): %s' % ', '.join(others))


def main() -> int:
    t0 = time.time()
    bdfs = os.environ['TDISP_BDFS'].split(',')
    by_id = {(read(b, 'vendor'), read(b, 'device')): [] for b in bdfs}
    for b in bdfs:
        by_id[(read(b, 'vendor'), read(b, 'device'))].append(b)
    nic = by_id.get(('0x8086', '0x10d3'), [None])[0]
    nvmes = by_id.get(('0x1b36', '0x0010'), [])
    rng = by_id.get(('0x1af4', '0x1044'), [None])[0]
    if not check('QEMU endpoints e1000e, 2 nvme, virtio-rng enumerated', nic and len(nvmes) == 2 and rng, bdfs):
        return finish(t0)
    sections = (('kernel', lambda: kernel_side(bdfs, nic, nvmes[0], rng)),
                ('rollout and audit', lambda: rollout_audit(nvmes[0], nvmes[1], bdfs)),
                ('walk', lambda: walk(nic, bdfs)),
                ('mainline profile', lambda: mainline(bdfs, nic)))
    for name, run in sections:
        print('== %s' % name, flush=True)
        try:
            run()
        except Exception as exc:  # a broken section is a failed check, the others still run
            check('%s section ran to the end' % name, False, '%s: %s' % (type(exc).__name__, exc))
    return finish(t0)


def finish(t0: float) -> int:
    passed = sum(ok for ok, _name in RESULTS)
    failed = len(RESULTS) - passed
    line = '%d passed, %d failed' % (passed, failed)
    print('kernel %s, checks %.0f s' % (os.uname().release, time.time() - t0))
    print(line, flush=True)
    for name, content in (('summary', line + '\n'), ('rc', '%d\n' % (1 if failed else 0))):
        with open(os.path.join(OUT, name), 'w') as f:
            f.write(content)
    return 0


if __name__ == '__main__':
    sys.exit(main())
