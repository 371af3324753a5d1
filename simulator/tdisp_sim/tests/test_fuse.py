"""The real daemon on a temporary FUSE mount, driven through the CLI and real file I/O.

Checks what only a mount can show: errno values of open/os.write/read as a program sees them,
kernfs modes and EACCES, st_size 4096, symlinks, stale handles, every fault through the CLI as
a reader sees it, the event log, and clean stops (also after SIGKILL: no stale mount).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tdisp_sim import cli
from tdisp_sim.daemon import mount_type

TDISP_SIM = str(Path(sys.executable).with_name("tdisp-sim"))
LIBC = ctypes.CDLL(None, use_errno=True)


def sim(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([TDISP_SIM, *args], capture_output=True, text=True, timeout=120, check=False)
    if check and p.returncode != 0:
        raise AssertionError("tdisp-sim %s: rc %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


class Mounted:
    def __init__(self, scenario_name: str) -> None:
        self.base = tempfile.mkdtemp(prefix="tds-", dir="/tmp")
        self.mount = os.path.join(self.base, "m")
        self.run_dir = self.mount + ".run"
        sim("start", "--scenario", scenario_name, "--mount", self.mount)

    def root(self, host: str) -> Path:
        return Path(self.mount, host, "sys")

    def fault(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return sim("fault", "--mount", self.mount, *args, check=check)

    def listing(self) -> dict:
        return json.loads(sim("list", "--mount", self.mount, "--json").stdout)

    def log(self) -> list:
        return [json.loads(ln) for ln in sim("log", "--mount", self.mount, "--json").stdout.splitlines()]

    def stop(self) -> None:
        sim("stop", "--mount", self.mount, check=False)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def mounted():
    made = []

    def start(name: str) -> Mounted:
        m = Mounted(name)
        made.append(m)
        return m
    yield start
    for m in made:
        m.stop()


@pytest.fixture
def cvm(mounted) -> Mounted:
    """single-cvm for a test that changes state."""
    return mounted("single-cvm")


@pytest.fixture(scope="module")
def ro():
    """single-cvm shared by the tests that change nothing."""
    m = Mounted("single-cvm")
    yield m
    m.stop()


GPU = "bus/pci/devices/0000:18:00.0"


def raw_write(path: Path, data: bytes) -> str:
    """One write(2) through libc (Python's os.write retries EINTR, PEP 475): 'ok' or the errno."""
    fd = os.open(path, os.O_WRONLY)
    try:
        n = LIBC.write(fd, data, len(data))
        return "ok" if n == len(data) else errno.errorcode[ctypes.get_errno()]
    finally:
        os.close(fd)


def os_write(path: Path, data: bytes) -> str:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
    finally:
        os.close(fd)


def unbind(root: Path, bdf: str = "0000:18:00.0", drv: str = "nvidia") -> None:
    (root / "bus/pci/drivers" / drv / "unbind").write_text(bdf)


# ---------------------------------------------------------------------------------------------
# the tree as a program sees it
# ---------------------------------------------------------------------------------------------

def test_top_level_lists_hosts_and_sys(ro):
    assert (os.listdir(ro.mount), os.listdir(os.path.join(ro.mount, "cvm-1"))) == (["cvm-1"], ["sys", "proc"])


def test_proc_config_gz_has_pci_tsm(ro):
    import gzip
    p = Path(ro.mount, "cvm-1", "proc", "config.gz")
    assert (os.listdir(p.parent), "CONFIG_PCI_TSM=y" in gzip.decompress(p.read_bytes()).decode()) == (["config.gz"], True)


def test_proc_config_gz_without_pci_tsm(mounted):
    import gzip
    m = mounted("mainline-7.3")
    text = gzip.decompress(Path(m.mount, "cloud-cvm", "proc", "config.gz").read_bytes()).decode()
    assert "# CONFIG_PCI_TSM is not set" in text and not os.path.exists(m.root("cloud-cvm") / "class/tsm")


def test_attribute_st_size_4096(ro):
    assert os.stat(ro.root("cvm-1") / GPU / "vendor").st_size == 4096


@pytest.mark.parametrize("attr, mode", [("vendor", 0o444), ("tsm/lock", 0o644), ("tsm/unlock", 0o200),
                                        ("trust", 0o644)])
def test_attribute_modes(ro, attr, mode):
    st = os.stat(ro.root("cvm-1") / GPU / attr)
    assert (stat.S_ISREG(st.st_mode), stat.S_IMODE(st.st_mode)) == (True, mode)


def test_directories_0755(ro):
    assert stat.S_IMODE(os.stat(ro.root("cvm-1") / GPU / "tsm").st_mode) == 0o755


def test_bus_device_is_symlink_into_devices(ro):
    p = ro.root("cvm-1") / GPU
    assert stat.S_ISLNK(os.lstat(p).st_mode)
    assert os.readlink(p) == "../../../devices/pci0000:00/0000:00:10.0/0000:18:00.0"


def test_driver_symlink_resolves_to_driver_dir(ro):
    assert os.path.realpath(ro.root("cvm-1") / GPU / "driver") == str(ro.root("cvm-1") / "bus/pci/drivers/nvidia")


def test_read_returns_value_and_honours_offset(ro):
    fd = os.open(ro.root("cvm-1") / GPU / "vendor", os.O_RDONLY)
    try:
        assert (os.pread(fd, 4096, 0), os.pread(fd, 3, 2)) == (b"0x10de\n", b"10d")
    finally:
        os.close(fd)


def test_production_paths_under_unshare(ro):
    """The mount can be placed over /sys in a private mount namespace (unshare -m)."""
    out = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind %s /sys && cat /sys/class/tsm/tsm0/pci_mode"
                          % ro.root("cvm-1")], capture_output=True, text=True, timeout=30, check=False)
    assert (out.returncode, out.stdout) == (0, "devsec\n")


# ---------------------------------------------------------------------------------------------
# errno as a program sees it
# ---------------------------------------------------------------------------------------------

def test_os_write_gets_errno_at_once(ro):
    assert os_write(ro.root("cvm-1") / GPU / "tsm/lock", b"bogus") == "EINVAL"


def test_buffered_write_error_reaches_close(cvm):
    f = open(cvm.root("cvm-1") / GPU / "tsm/lock", "w")
    f.write("tsm0\n")  # the driver is bound: EBUSY, reported when the buffer is flushed
    with pytest.raises(OSError) as e:
        f.close()
    assert e.value.errno == errno.EBUSY


def test_echo_redirect_truncates_and_writes(cvm):
    root = cvm.root("cvm-1")
    unbind(root)
    subprocess.run(["sh", "-c", "echo tsm0 > %s" % (root / GPU / "tsm/lock")], check=True)
    assert (root / GPU / "tsm/lock").read_text() == "tsm0\n"


def test_open_write_only_for_reading_eacces(ro):
    with pytest.raises(PermissionError):
        open(ro.root("cvm-1") / GPU / "tsm/unlock")


def test_open_read_only_for_writing_eacces(ro):
    with pytest.raises(OSError) as e:
        os.open(ro.root("cvm-1") / GPU / "vendor", os.O_WRONLY)
    assert e.value.errno == errno.EACCES


def test_create_file_eacces(ro):
    with pytest.raises(OSError) as e:
        os.open(ro.root("cvm-1") / GPU / "newattr", os.O_WRONLY | os.O_CREAT)
    assert e.value.errno == errno.EACCES


@pytest.mark.parametrize("op", ["mkdir", "unlink", "rename", "chmod"])
def test_namespace_changes_eperm(ro, op):
    p = ro.root("cvm-1") / GPU / "vendor"
    call = {"mkdir": lambda: os.mkdir(p.with_name("x")), "unlink": lambda: os.unlink(p),
            "rename": lambda: os.rename(p, p.with_name("vendor2")), "chmod": lambda: os.chmod(p, 0o600)}[op]
    with pytest.raises(OSError) as e:
        call()
    assert e.value.errno == errno.EPERM


def test_stale_handle_reads_enodev(cvm):
    """kernfs: a handle on an attribute that went away reads ENODEV."""
    fd = os.open(cvm.root("cvm-1") / GPU / "tsm/lock", os.O_RDONLY)
    try:
        cvm.fault("cvm-1", "-", "tsm-remove", "tsm0")
        with pytest.raises(OSError) as e:
            os.pread(fd, 4096, 0)
        assert e.value.errno == errno.ENODEV
    finally:
        os.close(fd)


def test_lock_accept_unlock_cycle(cvm):
    root = cvm.root("cvm-1")
    unbind(root)
    steps = [os_write(root / GPU / "tsm/lock", b"tsm0\n"), os_write(root / GPU / "tsm/accept", b"1\n"),
             os_write(root / GPU / "trust", b"3\n"), (root / GPU / "tsm/accept").read_text(),
             os_write(root / GPU / "tsm/unlock", b"tsm0\n"), (root / GPU / "trust").read_text()]
    assert steps == ["ok", "ok", "ok", "1\n", "ok", "0\n"]


# ---------------------------------------------------------------------------------------------
# every fault through the CLI, as a reader sees it
# ---------------------------------------------------------------------------------------------

def test_fault_error_resets_trust(cvm):
    root = cvm.root("cvm-1")
    unbind(root)
    for attr, value in (("tsm/lock", "tsm0"), ("tsm/accept", "1"), ("trust", "3")):
        (root / GPU / attr).write_text(value)
    cvm.fault("cvm-1", "0000:18:00.0", "error")
    assert ((root / GPU / "trust").read_text(), (root / GPU / "tsm/accept").read_text()) == ("0\n", "1\n")


def test_fault_error_refused_exit_1(ro):
    p = ro.fault("cvm-1", "0000:18:00.0", "error", check=False)
    assert p.returncode == 1 and "refused: EINVAL" in p.stderr


def test_fault_generation_in_listing(cvm):
    cvm.fault("cvm-1", "0000:18:00.0", "generation", "3")
    gpu = next(d for d in cvm.listing()["hosts"][0]["devices"] if d["bdf"] == "0000:18:00.0")
    assert gpu["generation"] == 4


def test_fault_rebind_driver_link_returns(cvm):
    root = cvm.root("cvm-1")
    unbind(root)
    cvm.fault("cvm-1", "0000:18:00.0", "rebind")
    assert os.path.islink(root / GPU / "driver")


def test_fault_tsm_remove_and_restore(cvm):
    root = cvm.root("cvm-1")
    cvm.fault("cvm-1", "-", "tsm-remove", "tsm0")
    gone = (os.listdir(root / "class/tsm"), os.path.exists(root / GPU / "tsm"))
    cvm.fault("cvm-1", "-", "tsm-restore", "tsm0")
    back = (os.listdir(root / "class/tsm"), os.path.exists(root / GPU / "tsm/lock"))
    assert (gone, back) == (([], False), (["tsm0"], True))


def test_fault_remove_and_add(cvm):
    root = cvm.root("cvm-1")
    cvm.fault("cvm-1", "0000:18:00.0", "remove")
    gone = "0000:18:00.0" in os.listdir(root / "bus/pci/devices") or os.path.exists(root / GPU / "vendor")
    cvm.fault("cvm-1", "0000:18:00.0", "add")
    assert (gone, (root / GPU / "vendor").read_text()) == (False, "0x10de\n")


def test_fault_garbage_and_clear(cvm):
    p = cvm.root("cvm-1") / GPU / "tsm/accept"
    cvm.fault("cvm-1", "0000:18:00.0", "garbage", "tsm/accept", "ff313200")
    garbage = p.read_bytes()
    cvm.fault("cvm-1", "0000:18:00.0", "garbage", "tsm/accept", "clear")
    assert (garbage, p.read_bytes()) == (b"\xff12\x00", b"0\n")


def test_fault_write_errno_eintr_then_ok(cvm):
    p = cvm.root("cvm-1") / GPU / "driver_override"
    cvm.fault("cvm-1", "0000:18:00.0", "write-errno", "driver_override", "EINTR", "1")
    assert [raw_write(p, b"nvidia\n"), raw_write(p, b"nvidia\n")] == ["EINTR", "ok"]


def test_fault_write_errno_eagain_every_write_until_clear(cvm):
    p = cvm.root("cvm-1") / GPU / "driver_override"
    cvm.fault("cvm-1", "0000:18:00.0", "write-errno", "driver_override", "EAGAIN", "all")
    first = [os_write(p, b"x\n") for attempt in range(3)]
    cvm.fault("cvm-1", "0000:18:00.0", "write-errno", "driver_override", "clear")
    assert (first, os_write(p, b"x\n")) == (["EAGAIN"] * 3, "ok")


def test_fault_unknown_name_exit_2(ro):
    p = ro.fault("cvm-1", "0000:18:00.0", "explode", check=False)
    assert p.returncode == 2 and "unknown fault 'explode'" in p.stderr


def test_log_records_fault_and_transition(cvm):
    root = cvm.root("cvm-1")
    unbind(root)
    (root / GPU / "tsm/lock").write_text("tsm0")
    cvm.fault("cvm-1", "0000:18:00.0", "error")
    kinds = [(e["event"], e.get("fault", e.get("after"))) for e in cvm.log() if e["bdf"] == "0000:18:00.0"]
    assert kinds[-5:] == [("tdisp", "CONFIG_LOCKED"), ("write", None), ("fault", "error"), ("tdisp", "ERROR"),
                          ("trust_reset", 0)]


def test_log_entries_have_timestamps(ro):
    assert all(isinstance(e["ts"], float) and e["ts"] > 1.6e9 for e in ro.log())


def test_trigger_fires_through_mount(mounted):
    m = mounted("mixed-fleet")
    root = m.root("mixed-007")
    dev = root / "bus/pci/devices/0000:2a:00.0"
    (root / "bus/pci/drivers/nvidia/unbind").write_text("0000:2a:00.0")
    (dev / "tsm/lock").write_text("tsm0")
    (dev / "tsm/accept").write_text("1")
    gpu = next(d for d in m.listing()["hosts"] if d["name"] == "mixed-007")["devices"]
    assert next(d["tdisp_state"] for d in gpu if d["bdf"] == "0000:2a:00.0") == "error"


# ---------------------------------------------------------------------------------------------
# listing, inventory
# ---------------------------------------------------------------------------------------------

def test_list_json_sysfs_roots_exist(ro):
    hosts = ro.listing()["hosts"]
    assert [os.path.isdir(os.path.join(h["sysfs_root"], "bus/pci/devices")) for h in hosts] == [True]


def test_list_table_has_every_device(ro):
    out = sim("list", "--mount", ro.mount).stdout.splitlines()
    assert [ln.split()[1] for ln in out[1:]] == ["0000:00:03.0", "0000:0c:00.0", "0000:18:00.0"]


def test_inventory_host_variables(ro):
    inv = json.loads(sim("inventory", "--mount", ro.mount).stdout)
    hv = inv["_meta"]["hostvars"]["cvm-1"]
    assert (hv["ansible_connection"], hv["tdisp_sysfs_root"], os.path.isdir(hv["tdisp_state_dir"])) == (
        "local", str(ro.root("cvm-1")), True)
    assert hv["ansible_python_interpreter"] == sys.executable
    assert inv["canary"]["hosts"] == ["cvm-1"]


def test_inventory_evidence_endpoint_is_a_socket(ro):
    hv = json.loads(sim("inventory", "--mount", ro.mount).stdout)["_meta"]["hostvars"]["cvm-1"]
    assert stat.S_ISSOCK(os.stat(hv["tdisp_evidence_endpoint"][len("unix:"):]).st_mode)


def test_inventory_static_yaml(ro):
    import yaml
    inv = yaml.safe_load(sim("inventory", "--mount", ro.mount, "--static").stdout)
    assert inv["all"]["hosts"]["cvm-1"]["ansible_connection"] == "local"
    assert list(inv["all"]["children"]["canary"]["hosts"]) == ["cvm-1"]


# ---------------------------------------------------------------------------------------------
# start, status, stop
# ---------------------------------------------------------------------------------------------

def test_status_running_exit_0(ro):
    st = json.loads(sim("status", "--mount", ro.mount, "--json").stdout)
    assert (st["state"], st["scenario"], st["hosts"], st["devices"]) == ("running", "single-cvm", 1, 3)


def test_start_twice_exit_2(ro):
    p = sim("start", "--scenario", "single-cvm", "--mount", ro.mount, check=False)
    assert p.returncode == 2 and "already running" in p.stderr and "stop" in p.stderr


def test_start_on_non_empty_dir_exit_2(tmp_path):
    (tmp_path / "file").write_text("x")
    p = sim("start", "--scenario", "single-cvm", "--mount", str(tmp_path), check=False)
    assert (p.returncode, p.stderr.count("\n")) == (2, 1) and "not empty" in p.stderr


def test_start_bad_scenario_exit_2(tmp_path):
    p = sim("start", "--scenario", "no-such", "--mount", str(tmp_path / "m"), check=False)
    assert p.returncode == 2 and "not found" in p.stderr


def test_stop_after_sigkill_leaves_no_stale_mount(mounted):
    m = mounted("single-cvm")
    pid = int(Path(m.run_dir, "pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while os.path.exists("/proc/%d/cmdline" % pid) and Path("/proc/%d/stat" % pid).read_text().split(") ")[1][0] != "Z" \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    stale = sim("status", "--mount", m.mount, check=False)
    restart = sim("start", "--scenario", "single-cvm", "--mount", m.mount, check=False)
    sim("stop", "--mount", m.mount)
    assert (stale.returncode, restart.returncode, "stale" in restart.stderr) == (2, 2, True)
    assert (mount_type(m.mount), os.listdir(m.mount)) == (None, [])


def test_stop_unmounts_and_log_survives(mounted):
    m = mounted("single-cvm")
    m.fault("cvm-1", "0000:18:00.0", "generation")
    sim("stop", "--mount", m.mount)
    after = sim("status", "--mount", m.mount, check=False)
    assert (mount_type(m.mount), after.returncode) == (None, 1)
    assert [e["event"] for e in m.log()][-1] == "daemon_stop"


def test_missing_dev_fuse_one_line_exit_2(tmp_path, monkeypatch, capsys):
    real = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: False if p == "/dev/fuse" else real(p))
    rc = cli.main(["start", "--scenario", "single-cvm", "--mount", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert (rc, err.count("\n")) == (2, 1) and "/dev/fuse is missing" in err


def test_missing_fusermount3_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    rc = cli.main(["start", "--scenario", "single-cvm", "--mount", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert (rc, err.count("\n")) == (2, 1) and "install the fuse3 package" in err
