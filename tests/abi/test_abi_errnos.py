"""Every row of the collection's errno table (``_abi/errnos.py``, kernel-abi.md sections 1c and 9)
driven through the simulator's kernel model: one table, whose rows say what state the device is
in, what is written, which errno the kernel model returns and which line the collection then
prints, so the simulator's errno and the collection's message cannot drift apart.

Read each row as one step of the kernel's own test script: given the steps, ``echo value >
attribute`` gives errno and the message contains text. ``test_every_table_row_is_driven`` fails
when a row of ``errnos.TABLE`` has no case here.

The module path (``converge_state``), where the kernel's state changes between planning and
writing (a driver rebinds itself, the interface falls into ERROR, an injected errno), follows
the table."""

from __future__ import annotations

import errno
import typing as t

import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._abi import errnos
from ansible_collections.coco.tdisp.plugins.module_utils._abi.device import Reader
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.options import Options
from ansible_collections.coco.tdisp.plugins.module_utils._tdisp.plan_state import converge_state

CVM, GPU, NIC = 'cvm-1', '0000:18:00.0', '0000:0c:00.0'
POLICY, MODULE = 'flav-policy', 'flav-module'


class Case(t.NamedTuple):
    given: t.Tuple[str, ...]   # steps, in order (STEPS)
    write: str                 # attribute, or drivers/<drv>/<verb>, or module/<mod>/parameters/trust
    value: str
    errno: int
    text: str                  # part of the one-line message (the whole line where it matters)
    host: str = CVM
    scenario: str = 'single-cvm'


def _inject(code: int) -> t.Callable[..., None]:
    def step(s, host, dev, fs, write):
        h = s.host(host)
        h.fault_write_errno(s.view.lookup(host, _rel(fs, dev, write))[0], code, 1)
    return step


STEPS: t.Dict[str, t.Callable[..., None]] = {
    'unbind': lambda s, host, dev, fs, write: s.host(host).unbind_driver(s.dev(host, dev.bdf), 'test'),
    'lock': lambda s, host, dev, fs, write: fs.write(dev.dir + '/tsm/lock', 'tsm0'),
    'accept': lambda s, host, dev, fs, write: fs.write(dev.dir + '/tsm/accept', '1'),
    'rebind': lambda s, host, dev, fs, write: s.host(host).fault_rebind(s.dev(host, dev.bdf)),
    'error': lambda s, host, dev, fs, write: s.host(host).fault_error(s.dev(host, dev.bdf)),
    'disable': lambda s, host, dev, fs, write: fs.write(dev.dir + '/trust_policy', 'disabled'),
    'validated, then changed': lambda s, host, dev, fs, write: _validated_then_changed(s, host, dev.bdf),
    'inject EACCES': _inject(errno.EACCES),
    'inject EPERM': _inject(errno.EPERM),
    'inject EROFS': _inject(errno.EROFS),
    'inject EINTR': _inject(errno.EINTR),
    'inject EIO': _inject(errno.EIO),
    'inject EINVAL': _inject(errno.EINVAL),
}


def _validated_then_changed(s, host, bdf):
    d = s.dev(host, bdf)
    d.validated_generation = d.generation
    s.host(host).fault_generation(d)


_UNBIND = 'set unbind_driver: true or unbind it first'
CASES = {
    # tsm/lock: name -> context -> TSM -> driver (kernel-abi.md section 9)
    'lock, bad name': Case((), 'tsm/lock', 'bogus', errno.EINVAL, "rejected the TSM name 'bogus' (EINVAL)"),
    'lock, driver bound': Case((), 'tsm/lock', 'tsm0', errno.EBUSY,
                               '0000:18:00.0 tsm/lock: driver nvidia is bound (EBUSY); ' + _UNBIND),
    'lock, already locked': Case(('unbind', 'lock'), 'tsm/lock', 'tsm0', errno.EBUSY, 'already has a TSM context'),
    'lock, no such TSM': Case(('unbind',), 'tsm/lock', 'tsm5', errno.ENXIO, 'tsm5 is not a registered devsec TSM (ENXIO)'),
    # the context check comes before the driver check; the explanation names the bound driver
    'lock, locked and a driver bound': Case(('unbind', 'lock', 'rebind'), 'tsm/lock', 'tsm0', errno.EBUSY, 'driver nvidia is bound'),
    # tsm/unlock: holder -> driver
    'unlock, not locked': Case(('unbind',), 'tsm/unlock', 'tsm0', errno.EINVAL, 'not locked by tsm0 (EINVAL)'),
    'unlock, other holder': Case(('unbind', 'lock'), 'tsm/unlock', 'tsm1', errno.EINVAL, 'not locked by tsm1 (EINVAL)'),
    'unlock, driver bound': Case(('unbind', 'lock', 'rebind'), 'tsm/unlock', 'tsm0', errno.EBUSY,
                                 'driver nvidia is bound (EBUSY); set unbind_driver'),
    # tsm/accept: bool -> locked -> driver -> already -> run
    'accept, false value': Case(('unbind', 'lock'), 'tsm/accept', '0', errno.EINVAL, "accept takes only a true value, not '0' (EINVAL)"),
    'accept, not locked': Case(('unbind',), 'tsm/accept', '1', errno.EINVAL, 'not locked (accept needs CONFIG_LOCKED) (EINVAL)'),
    'accept, driver bound although accepted': Case(('unbind', 'lock', 'accept', 'rebind'), 'tsm/accept', '1', errno.EBUSY,
                                                   'driver nvidia is bound'),
    'accept, evidence changed after validate': Case(('unbind', 'lock', 'validated, then changed'), 'tsm/accept', '1', errno.EAGAIN,
                                                    'evidence changed since it was validated (EAGAIN)'),
    'accept, interface in ERROR': Case(('unbind', 'lock', 'error'), 'tsm/accept', '1', errno.EIO,
                                       'may be in ERROR) (EIO); unlock it (state: unlocked, allow_disruptive: true) and re-run lock -> verify -> accept'),
    # the trust file
    'trust 3, not in RUN': Case((), 'trust', '3', errno.EINVAL, 'level 3 (tcb) needs TDISP RUN (EINVAL)'),
    'trust below 3, in RUN': Case(('unbind', 'lock', 'accept'), 'trust', '1', errno.EINVAL, 'below tcb is refused while the device is in RUN'),
    'trust 3, left RUN, reads accepted': Case(('unbind', 'lock', 'accept', 'error'), 'trust', '3', errno.EINVAL,
                                              'accept reads 1: the interface left RUN'),
    'trust, out of range': Case((), 'trust', '7', errno.EINVAL, "the kernel rejected trust level '7' (EINVAL); use a level 0..3"),
    # trust_policy
    'trust_policy, driver bound': Case((), 'trust_policy', 'full', errno.EBUSY, 'driver nvidia is bound (trust_policy is writable only',
                                       POLICY, 'trust-flavours'),
    'trust_policy, unknown word': Case(('unbind',), 'trust_policy', 'strict', errno.EINVAL, "rejected the policy word 'strict'",
                                       POLICY, 'trust-flavours'),
    # module trust= (design A): the kernel's parameter store takes any word; the errno is injected
    'module trust=, refused': Case(('inject EINVAL',), 'module/nvidia/parameters/trust', 'tcb', errno.EINVAL,
                                   'the module rejected trust=tcb (EINVAL)', MODULE, 'trust-flavours'),
    # driver bind / unbind
    'bind, trust_policy disabled': Case(('unbind', 'disable'), 'drivers/nvidia/bind', GPU, errno.ENODEV,
                                        'the driver did not take the device', POLICY, 'trust-flavours'),
    'bind, already bound': Case((), 'drivers/nvidia/bind', GPU, errno.EBUSY, 'already bound to a driver (EBUSY)'),
    'unbind, not bound': Case(('unbind',), 'drivers/nvidia/unbind', GPU, errno.ENODEV, 'not bound to this driver (ENODEV)'),
    # any write (kernel-abi.md section 1c)
    'no such attribute': Case((), 'tsm/nonexistent', '1', errno.ENOENT, 'does not exist on this kernel (ENOENT)'),
    'permission denied (EACCES)': Case(('unbind', 'inject EACCES'), 'tsm/lock', 'tsm0', errno.EACCES, 'become: true'),
    'permission denied (EPERM)': Case(('unbind', 'inject EPERM'), 'tsm/lock', 'tsm0', errno.EPERM, "permission denied writing 'tsm0'"),
    'read-only sysfs': Case(('unbind', 'inject EROFS'), 'tsm/lock', 'tsm0', errno.EROFS, 'read-only'),
    'interrupted': Case(('unbind', 'inject EINTR'), 'tsm/lock', 'tsm0', errno.EINTR, 'interrupted while waiting for the device lock (EINTR); retry the task'),
    'anything else': Case(('unbind', 'inject EIO'), 'tsm/lock', 'tsm0', errno.EIO, "writing 'tsm0' failed (EIO); check the kernel log"),
}


def _rel(fs, dev, write):
    """The path (below the root) a case writes."""
    parts = write.split('/')
    if parts[0] == 'drivers':
        return fs.driver_dir(parts[1]) + '/' + parts[2]
    if parts[0] == 'module':
        return fs.module_trust_path(parts[1])
    return dev.dir + '/' + write


def drive(sim, case: Case) -> t.Tuple[int, t.Optional[str], t.Optional[errnos.Row]]:
    """Set the device up, write once; (errno, one-line message, matched table row)."""
    s = sim(case.scenario)
    fs = s.sysfs(case.host)
    dev = Reader(fs).read(GPU)
    for step in case.given:
        STEPS[step](s, case.host, dev, fs, case.write)
    fs.invalidate()
    dev = Reader(fs).read(GPU)   # the facts at the write
    try:
        fs.write(_rel(fs, dev, case.write), case.value)
    except OSError as exc:
        msg = str(errnos.explain(exc, GPU, case.write, case.value, dev.facts))
        return exc.errno, msg, errnos.match(case.write, exc.errno, case.value, dev.facts)
    return 0, None, None


@pytest.mark.parametrize('name', sorted(CASES))
def test_errno(sim, name):
    case = CASES[name]
    code, msg = drive(sim, case)[:2]
    assert code == case.errno, (errno.errorcode.get(code, code), msg)
    assert msg is not None and '\n' not in msg and msg.startswith('%s %s: ' % (GPU, case.write))
    assert '(%s)' % errno.errorcode[case.errno] in msg
    assert case.text in msg, msg


def test_every_table_row_is_driven(sim):
    """A row added to errnos.TABLE without a case here fails: the simulator must be able to produce it."""
    hit = {drive(sim, case)[2] for case in CASES.values()}
    missing = [row for row in errnos.TABLE + (errnos.FALLBACK,) if row not in hit]
    shown = ['%s %s %s' % (r.write, errno.errorcode.get(r.errno or 0, '*'), r.cause) for r in missing]
    assert not missing, 'errno rows without a case: %s' % ', '.join(shown)


@pytest.fixture
def cvm(sim):
    return sim('single-cvm')


# -- the module path: state changes between planning and writing -----------------------------------------------

class RebindOnFirstWrite:
    """Wrap a SimIO: before the first write, the driver rebinds itself (the 'rebind' fault)."""

    def __init__(self, s, host, bdf):
        self.s, self.host, self.bdf, self.fired = s, host, bdf, False

    def __call__(self, io):
        real = io.write

        def write(path, data):
            if not self.fired:
                self.fired = True
                h = self.s.host(self.host)
                h.fault_rebind(h.devices[self.bdf])
            return real(path, data)
        io.write = write
        return io


def test_race_driver_rebinds_before_lock(cvm):
    cvm.host(CVM).unbind_driver(cvm.dev(CVM, GPU), 'test')
    fs = cvm.sysfs(CVM)
    RebindOnFirstWrite(cvm, CVM, GPU)(fs.io)
    r = converge_state(fs, cvm.ledger(CVM), [{'bdf': GPU, 'state': 'locked'}], Options())
    assert r['failed']
    assert r['msg'] == '0000:18:00.0 tsm/lock: driver nvidia is bound (EBUSY); set unbind_driver: true or unbind it first'
    dev = r['devices'][0]
    assert dev['actions'][0]['done'] is False and dev['actions'][0]['error'] == r['msg']
    assert dev['after']['driver'] == 'nvidia' and dev['after']['tdisp_state'] == 'unlocked'


def test_injected_errnos(cvm):
    cvm.host(CVM).unbind_driver(cvm.dev(CVM, GPU), 'test')
    h = cvm.host(CVM)
    d = h.devices[GPU]
    for code, text in ((errno.EINTR, 'interrupted'), (errno.EACCES, 'become: true'), (errno.EIO, "writing 'tsm0' failed (EIO)")):
        h.fault_write_errno(_canon(cvm, GPU, 'tsm/lock'), code, 1)
        r = cvm.state(CVM, [{'bdf': GPU, 'state': 'locked'}])
        assert r['failed'] and text in r['msg'] and '(%s)' % errno.errorcode[code] in r['msg'], r['msg']
        assert d.lock_tsm is None
    r = cvm.state(CVM, [{'bdf': GPU, 'state': 'locked'}])
    assert not r.get('failed') and d.lock_tsm == 0


def _canon(s, bdf, attr):
    return s.view.lookup(CVM, 'bus/pci/devices/%s/%s' % (bdf, attr))[0]


def test_accept_fails_in_error_through_module(cvm):
    r = cvm.state(CVM, [{'bdf': GPU, 'state': 'locked'}], unbind_driver=True, rebind_driver=False)
    assert not r.get('failed')
    h = cvm.host(CVM)
    h.fault_error(h.devices[GPU])
    r = cvm.state(CVM, [{'bdf': GPU, 'state': 'run', 'unverified': True}])
    assert r['failed'] and r['msg'].startswith('0000:18:00.0 tsm/accept: the TSM could not start the interface')
    assert '(EIO)' in r['msg']
