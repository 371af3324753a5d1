"""Every errno of kernel-abi.md sections 1c and 9, raised by the kernel model, becomes one line
naming the device, the attribute, the errno and the remedy.

Two paths are covered: the raw write path (``Sysfs.write`` + ``explain_write``, with the state
read before the write) and the module path (``converge_state``/``converge_trust``), where the
kernel's state changes between planning and writing (a driver rebinds itself, the interface
falls into ERROR, an injected errno)."""

from __future__ import annotations

import errno

import pytest

from ansible_collections.coco.tdisp.plugins.module_utils._abi.device import Reader
from ansible_collections.coco.tdisp.plugins.module_utils._abi.sysfs import explain_write

CVM, GPU, NIC = 'cvm-1', '0000:18:00.0', '0000:0c:00.0'


def attempt(s, host, bdf, attr, value):
    """Write through the ABI layer; return (errno, one-line message)."""
    fs = s.sysfs(host)
    dev = Reader(fs).read(bdf)
    try:
        fs.write(dev.dir + '/' + attr, value)
    except OSError as exc:
        msg = str(explain_write(exc, bdf, attr, value, dev.facts))
        assert '\n' not in msg and msg.startswith('%s %s: ' % (bdf, attr))
        return exc.errno, msg
    return 0, None


def unbind(s, bdf=GPU):
    h = s.host(CVM)
    h.unbind_driver(h.devices[bdf], 'test')


@pytest.fixture
def cvm(sim):
    return sim('single-cvm')


# -- tsm/lock: name -> context -> TSM -> driver (abi section 9) ------------------------------------------

def test_lock_einval(cvm):
    code, msg = attempt(cvm, CVM, GPU, 'tsm/lock', 'bogus')
    assert code == errno.EINVAL and "rejected the TSM name 'bogus' (EINVAL)" in msg


def test_lock_ebusy_driver(cvm):
    code, msg = attempt(cvm, CVM, GPU, 'tsm/lock', 'tsm0')
    assert code == errno.EBUSY
    assert msg == '0000:18:00.0 tsm/lock: driver nvidia is bound (EBUSY); set unbind_driver: true or unbind it first'


def test_lock_ebusy_context(cvm):
    unbind(cvm)
    assert attempt(cvm, CVM, GPU, 'tsm/lock', 'tsm0') == (0, None)
    code, msg = attempt(cvm, CVM, GPU, 'tsm/lock', 'tsm0')
    assert code == errno.EBUSY and 'already has a TSM context' in msg


def test_lock_enxio(cvm):
    unbind(cvm)
    code, msg = attempt(cvm, CVM, GPU, 'tsm/lock', 'tsm5')
    assert code == errno.ENXIO and 'tsm5 is not a registered devsec TSM (ENXIO)' in msg


def test_lock_context_wins_over_driver(cvm):
    """abi section 9: the context check comes before the driver check."""
    unbind(cvm)
    attempt(cvm, CVM, GPU, 'tsm/lock', 'tsm0')
    h = cvm.host(CVM)
    h.fault_rebind(h.devices[GPU])
    code, msg = attempt(cvm, CVM, GPU, 'tsm/lock', 'tsm0')
    assert code == errno.EBUSY and 'driver nvidia is bound' in msg  # the explanation names the bound driver


# -- tsm/unlock --------------------------------------------------------------------------------------------

def test_unlock_einval_not_locked(cvm):
    unbind(cvm)
    code, msg = attempt(cvm, CVM, GPU, 'tsm/unlock', 'tsm0')
    assert code == errno.EINVAL and 'not locked by tsm0 (EINVAL)' in msg


def test_unlock_einval_wrong_name(cvm):
    unbind(cvm)
    attempt(cvm, CVM, GPU, 'tsm/lock', 'tsm0')
    code, msg = attempt(cvm, CVM, GPU, 'tsm/unlock', 'tsm1')
    assert code == errno.EINVAL


def test_unlock_ebusy(cvm):
    unbind(cvm)
    attempt(cvm, CVM, GPU, 'tsm/lock', 'tsm0')
    h = cvm.host(CVM)
    h.fault_rebind(h.devices[GPU])
    code, msg = attempt(cvm, CVM, GPU, 'tsm/unlock', 'tsm0')
    assert code == errno.EBUSY and 'driver nvidia is bound (EBUSY); set unbind_driver' in msg


# -- tsm/accept: bool -> locked -> driver -> already -> run ----------------------------------------------------

def test_accept_false_value(cvm):
    unbind(cvm)
    attempt(cvm, CVM, GPU, 'tsm/lock', 'tsm0')
    code, msg = attempt(cvm, CVM, GPU, 'tsm/accept', '0')
    assert code == errno.EINVAL


def test_accept_not_locked(cvm):
    unbind(cvm)
    code, msg = attempt(cvm, CVM, GPU, 'tsm/accept', '1')
    assert code == errno.EINVAL and 'not locked (accept needs CONFIG_LOCKED) (EINVAL)' in msg


def test_accept_ebusy_even_when_accepted(cvm):
    unbind(cvm)
    attempt(cvm, CVM, GPU, 'tsm/lock', 'tsm0')
    assert attempt(cvm, CVM, GPU, 'tsm/accept', '1') == (0, None)
    h = cvm.host(CVM)
    h.fault_rebind(h.devices[GPU])
    code, msg = attempt(cvm, CVM, GPU, 'tsm/accept', '1')
    assert code == errno.EBUSY and 'driver nvidia is bound' in msg


def test_accept_eagain_after_validate(cvm):
    unbind(cvm)
    attempt(cvm, CVM, GPU, 'tsm/lock', 'tsm0')
    d = cvm.dev(CVM, GPU)
    d.validated_generation = d.generation
    cvm.host(CVM).fault_generation(d)
    code, msg = attempt(cvm, CVM, GPU, 'tsm/accept', '1')
    assert code == errno.EAGAIN and 'evidence changed since it was validated (EAGAIN)' in msg


def test_accept_in_error(cvm):
    unbind(cvm)
    attempt(cvm, CVM, GPU, 'tsm/lock', 'tsm0')
    h = cvm.host(CVM)
    h.fault_error(h.devices[GPU])
    code, msg = attempt(cvm, CVM, GPU, 'tsm/accept', '1')
    assert code == errno.EIO and 'may be in ERROR' in msg and 're-run lock -> verify -> accept' in msg


# -- trust files ---------------------------------------------------------------------------------------------

def test_trust_3_without_run(cvm):
    code, msg = attempt(cvm, CVM, GPU, 'trust', '3')
    assert code == errno.EINVAL and 'level 3 (tcb) needs TDISP RUN (EINVAL)' in msg


def test_trust_below_3_in_run(cvm):
    unbind(cvm)
    attempt(cvm, CVM, GPU, 'tsm/lock', 'tsm0')
    attempt(cvm, CVM, GPU, 'tsm/accept', '1')
    code, msg = attempt(cvm, CVM, GPU, 'trust', '1')
    assert code == errno.EINVAL and 'below tcb is refused while the device is in RUN' in msg


def test_trust_3_after_error_reads_accepted(cvm):
    unbind(cvm)
    attempt(cvm, CVM, GPU, 'tsm/lock', 'tsm0')
    attempt(cvm, CVM, GPU, 'tsm/accept', '1')
    h = cvm.host(CVM)
    h.fault_error(h.devices[GPU])
    code, msg = attempt(cvm, CVM, GPU, 'trust', '3')
    assert code == errno.EINVAL and 'accept reads 1: the interface left RUN' in msg


def test_trust_policy_errnos(sim):
    s = sim('trust-flavours')
    code, msg = attempt(s, 'flav-policy', GPU, 'trust_policy', 'full')
    assert code == errno.EBUSY and 'driver nvidia is bound (trust_policy is writable only' in msg
    code, msg = attempt(s, 'flav-policy', GPU, 'trust_policy', 'strict')
    assert code == errno.EINVAL and "rejected the policy word 'strict'" in msg


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
    unbind(cvm)
    fs = cvm.sysfs(CVM)
    RebindOnFirstWrite(cvm, CVM, GPU)(fs.io)
    from ansible_collections.coco.tdisp.plugins.module_utils._abi.plan import Options, converge_state
    r = converge_state(fs, cvm.ledger(CVM), [{'bdf': GPU, 'state': 'locked'}], Options())
    assert r['failed']
    assert r['msg'] == '0000:18:00.0 tsm/lock: driver nvidia is bound (EBUSY); set unbind_driver: true or unbind it first'
    dev = r['devices'][0]
    assert dev['actions'][0]['done'] is False and dev['actions'][0]['error'] == r['msg']
    assert dev['after']['driver'] == 'nvidia' and dev['after']['tdisp_state'] == 'unlocked'


def test_injected_errnos(cvm):
    unbind(cvm)
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
    r = cvm.state(CVM, [{'bdf': GPU, 'state': 'run'}])
    assert r['failed'] and r['msg'].startswith('0000:18:00.0 tsm/accept: the TSM could not start the interface')
    assert '(EIO)' in r['msg']
