"""Conformance of the simulator's kernel model to shared/docs/kernel-abi.md.

One test per row of §1b and §1c (several for rows with several errors), per transition of §3,
per check order of §9, plus the mainline host-side rows of §1a that the sample exercises and the
three trust ABIs. Each test names the row it checks and reads like tools/testing/devsec/devsec.sh:
one step, one expected outcome (the value read back, or the errno of the write).
"""

from __future__ import annotations

import errno

import pytest

from tdisp_sim import kernel, scenario
from tdisp_sim.faults import apply_fault

import simtest
from simtest import FN1, GPU, GPU2, PF0, PF0_B, VIRTIO, Sysfs, accepted, dpath, guest_scenario, locked

# fixtures (simtest.py explains why there is no conftest.py here)
sample = simtest.sample
guest = simtest.guest
make_guest = simtest.make_guest


# =============================================================================================
# §1a host side (mainline): the rows samples/devsec and devsec.sh exercise
# =============================================================================================

def test_1a_class_tsm_lists_tsmN_links(sample):
    """§1a /sys/class/tsm/tsmN/: class devices named tsm%d."""
    assert sample.ls("class/tsm") == ["tsm0", "tsm1"]
    assert sample.link("class/tsm/tsm0") == "../../devices/virtual/tsm/tsm0"


def test_1a_tsm_uevent_accepts_change_action(sample):
    """§1a tsmN/uevent: a standard uevent file (a known action is accepted)."""
    assert sample.write("class/tsm/tsm0/uevent", "change\n") == "ok"


def test_1a_tsm_uevent_rejects_unknown_action(sample):
    """§1a tsmN/uevent: kobject_synth_uevent() rejects an unknown action with EINVAL."""
    assert sample.write("class/tsm/tsm0/uevent", "bogus\n") == "EINVAL"


def test_1a_tsm_dir_absent_without_any_tsm(sample):
    """§1a <BDF>/tsm/ appears dynamically: with no TSM registered there is no tsm/ group."""
    apply_fault(sample.fleet, sample.name, "-", "tsm-remove", ["tsm0"])
    apply_fault(sample.fleet, sample.name, "-", "tsm-remove", ["tsm1"])
    assert not sample.exists(dpath(PF0, "tsm"))


def test_1a_tsm_dir_appears_when_tsm_registers(sample):
    """§1a <BDF>/tsm/ appears when the first TSM registers (KOBJ_CHANGE)."""
    apply_fault(sample.fleet, sample.name, "-", "tsm-remove", ["tsm0"])
    apply_fault(sample.fleet, sample.name, "-", "tsm-remove", ["tsm1"])
    apply_fault(sample.fleet, sample.name, "-", "tsm-restore", ["tsm0"])
    assert sample.exists(dpath(PF0, "tsm/connect"))
    assert sample.events("tsm_register")[-1]["uevent"] == "change"


def test_1a_connect_reads_empty_when_not_connected(sample):
    """§1a tsm/connect read: "\\n" when not connected."""
    assert sample.read(dpath(PF0, "tsm/connect")) == "\n"


def test_1a_connect_link_tsm(sample):
    """§1a tsm/connect write: a link TSM name connects; read back tsmN."""
    assert sample.write(dpath(PF0, "tsm/connect"), "tsm0") == "ok"
    assert sample.read(dpath(PF0, "tsm/connect")) == "tsm0\n"


def test_1a_connect_einval_not_tsm_name(sample):
    """§1a tsm/connect: EINVAL for a name that is not tsm<int>."""
    assert sample.write(dpath(PF0, "tsm/connect"), "link0") == "EINVAL"


def test_1a_connect_ebusy_already_connected(sample):
    """§1a tsm/connect: EBUSY when the device already has a TSM context (connected)."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    assert sample.write(dpath(PF0, "tsm/connect"), "tsm0") == "EBUSY"


def test_1a_connect_ebusy_locked(sample):
    """§1a tsm/connect: EBUSY when the device has a TSM context (locked by the devsec TSM)."""
    sample.write(dpath(PF0, "tsm/lock"), "tsm1")
    assert sample.write(dpath(PF0, "tsm/connect"), "tsm0") == "EBUSY"


def test_1a_connect_enxio_not_link_tsm(sample):
    """§1a tsm/connect: ENXIO for a TSM that is not a link TSM."""
    assert sample.write(dpath(PF0, "tsm/connect"), "tsm1") == "ENXIO"


def test_1a_connect_enxio_no_such_tsm(sample):
    """§1a tsm/connect: ENXIO for a TSM that does not exist."""
    assert sample.write(dpath(PF0, "tsm/connect"), "tsm7") == "ENXIO"


def test_1a_connect_enxio_probe_fails_without_doe():
    """§1a tsm/connect: ENXIO when the TSM's probe fails (no CMA DOE mailbox)."""
    data = scenario.read("devsec-fresh")
    data["devices"][0]["doe"] = False
    s = Sysfs(scenario.build(data), "sample-cvm")
    assert s.write(dpath(PF0, "tsm/connect"), "tsm0") == "ENXIO"


def test_1a_connect_only_on_pf0(sample):
    """§1a tsm/connect: visible only on PF0 (devsec.sh: no connect on the sub-function)."""
    assert not sample.exists(dpath(FN1, "tsm/connect"))


def test_1a_connect_ebusy_when_streams_exhausted():
    """§1a tsm/connect: any error of the TSM's connect(); samples/devsec has 4 stream ids: EBUSY."""
    data = scenario.read("devsec-fresh")
    data["tsms"][0]["streams"] = 1
    s = Sysfs(scenario.build(data), "sample-cvm")
    s.write(dpath(PF0, "tsm/connect"), "tsm0")
    assert s.write(dpath(PF0_B, "tsm/connect"), "tsm0") == "EBUSY"


def test_1a_disconnect_enxio_not_connected(sample):
    """§1a tsm/disconnect: ENXIO when not connected."""
    assert sample.write(dpath(PF0, "tsm/disconnect"), "tsm0") == "ENXIO"


def test_1a_disconnect_einval_name_mismatch(sample):
    """§1a tsm/disconnect: EINVAL when the name is not the connected TSM."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    assert sample.write(dpath(PF0, "tsm/disconnect"), "tsm1") == "EINVAL"


def test_1a_disconnect_takes_name_with_newline(sample):
    """§1a tsm/disconnect: the connected TSM's name, sysfs_streq (trailing newline allowed)."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    assert sample.write(dpath(PF0, "tsm/disconnect"), "tsm0\n") == "ok"
    assert sample.read(dpath(PF0, "tsm/connect")) == "\n"


def test_1a_disconnect_is_write_only(sample):
    """§1a tsm/disconnect (WO): opening it for reading is EACCES."""
    assert sample.open_errno(dpath(PF0, "tsm/disconnect"), read=True, write=False) == "EACCES"


def test_1a_dsm_empty_before_connect(sample):
    """§1a tsm/dsm: empty while no DSM is established (devsec.sh validate_disconnected)."""
    assert sample.read(dpath(PF0, "tsm/dsm")) == "\n"


def test_1a_dsm_absent_on_subfunction_before_connect(sample):
    """§1a tsm/dsm: a sub-function shows dsm only once it is managed by a DSM."""
    assert not sample.exists(dpath(FN1, "tsm/dsm"))


def test_1a_dsm_names_pf0_on_both_functions(sample):
    """§1a tsm/dsm: with PF0 connected, PF0 and its sub-function name PF0 (devsec.sh ide_test)."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    assert sample.read(dpath(PF0, "tsm/dsm")) == PF0 + "\n"
    assert sample.read(dpath(FN1, "tsm/dsm")) == PF0 + "\n"


def test_1a_dsm_is_read_only(sample):
    """§1a tsm/dsm (RO): a write is EACCES."""
    assert sample.write(dpath(PF0, "tsm/dsm"), "x") == "EACCES"


def test_1a_bound_shows_tsm_of_bound_tdi(sample):
    """§1a tsm/bound: the TSM name while the function is a bound TDI (bind via the sample)."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    assert sample.write("class/tsm/tsm0/device/tsm_bind", FN1) == "ok"
    assert sample.read(dpath(FN1, "tsm/bound")) == "tsm0\n"


def test_1a_disconnect_unbinds_all_tdis(sample):
    """§1a tsm/disconnect: also unbinds all TDIs and removes sub-function contexts."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    sample.write("class/tsm/tsm0/device/tsm_bind", PF0)
    sample.write("class/tsm/tsm0/device/tsm_bind", FN1)
    sample.write(dpath(PF0, "tsm/disconnect"), "tsm0")
    assert sample.read(dpath(PF0, "tsm/bound")) == "\n"
    assert not sample.exists(dpath(FN1, "tsm/bound"))


def test_1a_authenticated_aliases_connect(sample):
    """§1a <BDF>/authenticated: alias of tsm/connect while a link TSM is present."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    assert sample.read(dpath(PF0, "authenticated")) == "tsm0\n"


def test_1a_authenticated_absent_without_link_tsm(sample):
    """§1a <BDF>/authenticated: exclusive to the presence of a link TSM."""
    apply_fault(sample.fleet, sample.name, "-", "tsm-remove", ["tsm0"])
    assert not sample.exists(dpath(PF0, "authenticated"))


def test_1a_available_secure_streams_goes_down_on_connect(sample):
    """§1a pciDDDD:BB/available_secure_streams: 4 idle, 3 with one stream (devsec.sh ide_test)."""
    assert sample.read("devices/pci10000:00/available_secure_streams") == "4\n"
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    assert sample.read("devices/pci10000:00/available_secure_streams") == "3\n"


def test_1a_available_secure_streams_refilled_on_disconnect(sample):
    """§1a available_secure_streams goes back up on teardown."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    sample.write(dpath(PF0, "tsm/disconnect"), "tsm0")
    assert sample.read("devices/pci10000:00/available_secure_streams") == "4\n"


def test_1a_stream_link_points_to_endpoint(sample):
    """§1a pciDDDD:BB/streamH.R.E: points to the endpoint that uses the stream (stream0.0.0)."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    assert sample.resolve("devices/pci10000:00/stream0.0.0") == sample.resolve(dpath(PF0))


def test_1a_host_bridge_is_grandparent_of_endpoint(sample):
    """§1a host bridge: dirname(dirname(readlink -f $pci_dev)) as devsec.sh computes it."""
    assert sample.resolve(dpath(PF0)).rsplit("/", 2)[0] == "devices/pci10000:00"


# =============================================================================================
# §1b host side, out of tree
# =============================================================================================

def test_1b_pci_mode_link(sample):
    """§1b tsmN/pci_mode (RO): "link" for the host TSM."""
    assert sample.read("class/tsm/tsm0/pci_mode") == "link\n"


def test_1b_pci_mode_devsec(sample):
    """§1b tsmN/pci_mode (RO): "devsec" for the guest TSM."""
    assert sample.read("class/tsm/tsm1/pci_mode") == "devsec\n"


def test_1b_pci_mode_is_read_only(sample):
    """§1b tsmN/pci_mode (RO): opening it for writing is EACCES."""
    assert sample.open_errno("class/tsm/tsm1/pci_mode", read=False, write=True) == "EACCES"


def test_1b_tsm_host_bridge_link_present_with_stream(sample):
    """§1b tsmN/pciDDDD:BB: present while that host bridge has an IDE stream with this TSM."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    assert sample.resolve("class/tsm/tsm0/pci10000:00/stream0.0.0") == sample.resolve(dpath(PF0))


def test_1b_tsm_host_bridge_link_absent_without_stream(sample):
    """§1b tsmN/pciDDDD:BB: absent once the stream is gone."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    sample.write(dpath(PF0, "tsm/disconnect"), "tsm0")
    assert not sample.exists("class/tsm/tsm0/pci10000:00")


def test_1b_faux_tsm_bind_enodev_unknown_device(sample):
    """§1b devsec_link_tsm/tsm_bind: ENODEV for a name that is no PCI device."""
    assert sample.write("bus/faux/devices/devsec_link_tsm/tsm_bind", "0000:99:00.0") == "ENODEV"


def test_1b_faux_tsm_bind_enxio_not_connected(sample):
    """§1b devsec_link_tsm/tsm_bind: ENXIO for a device not connected to this sample TSM."""
    assert sample.write("bus/faux/devices/devsec_link_tsm/tsm_bind", PF0) == "ENXIO"


def test_1b_faux_tsm_unbind_clears_bound(sample):
    """§1b devsec_link_tsm/tsm_unbind: the TDI is unbound (bound reads empty)."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    sample.write("bus/faux/devices/devsec_link_tsm/tsm_bind", PF0)
    assert sample.write("bus/faux/devices/devsec_link_tsm/tsm_unbind", PF0) == "ok"
    assert sample.read(dpath(PF0, "tsm/bound")) == "\n"


def test_1b_faux_tsm_request_enxio_without_bound_tdi(sample):
    """§1b devsec_link_tsm/tsm_request: ENXIO unless the device is a bound TDI."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    assert sample.write("bus/faux/devices/devsec_link_tsm/tsm_request", PF0) == "ENXIO"


def test_1b_faux_tsm_request_on_bound_tdi(sample):
    """§1b devsec_link_tsm/tsm_request: a guest request to a bound TDI succeeds."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    sample.write("bus/faux/devices/devsec_link_tsm/tsm_bind", PF0)
    assert sample.write("bus/faux/devices/devsec_link_tsm/tsm_request", PF0) == "ok"


def test_1b_faux_devsec_tsm_has_no_tdi_attributes(sample):
    """§1b tsm_bind/tsm_unbind/tsm_request exist on devsec_link_tsm only."""
    assert sample.ls("bus/faux/devices/devsec_tsm") == ["certs", "transcript", "uevent"]


def test_1b_faux_certs_write_reads_back(sample):
    """§1b {devsec_link_tsm,devsec_tsm}/certs (bin RW): a blob written reads back."""
    assert sample.write("bus/faux/devices/devsec_tsm/certs", b"\x30\x82chain") == "ok"
    assert sample.read("bus/faux/devices/devsec_link_tsm/certs") == "\x30\x82chain"


def test_1b_faux_transcript_written_at_offset(sample):
    """§1b transcript (bin RW): writes land at their offset."""
    sample.write("bus/faux/devices/devsec_tsm/transcript", b"abcd")
    sample.write("bus/faux/devices/devsec_tsm/transcript", b"XY", offset=2)
    assert sample.read("bus/faux/devices/devsec_tsm/transcript") == "abXY"


def test_1b_faux_certs_one_byte_write_resets(sample):
    """§1b certs: a 1-byte write resets the blob."""
    sample.write("bus/faux/devices/devsec_tsm/certs", b"abcd")
    sample.write("bus/faux/devices/devsec_tsm/certs", b"\n")
    assert sample.read("bus/faux/devices/devsec_tsm/certs") == ""


def test_1b_faux_certs_efbig_over_16mib(sample):
    """§1b certs: EFBIG past 16 MiB."""
    assert sample.write("bus/faux/devices/devsec_tsm/certs", b"x", offset=16 * 1024 * 1024) == "EFBIG"


def test_1b_faux_certs_ebusy_while_connected(sample):
    """§1b certs: EBUSY while any sample device is connected or locked."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    assert sample.write("bus/faux/devices/devsec_tsm/certs", b"abcd") == "EBUSY"


def test_1b_faux_transcript_ebusy_while_locked(sample):
    """§1b transcript: EBUSY while any sample device is locked."""
    sample.write(dpath(PF0_B, "tsm/lock"), "tsm1")
    assert sample.write("bus/faux/devices/devsec_link_tsm/transcript", b"abcd") == "EBUSY"


# =============================================================================================
# §1c guest side: tsm/lock
# =============================================================================================

def test_1c_lock_reads_empty_when_unlocked(guest):
    """§1c tsm/lock read: empty ("\\n") when not locked."""
    assert guest.read(dpath(GPU2, "tsm/lock")) == "\n"


def test_1c_lock_devsec_tsm(guest):
    """§1c tsm/lock write: a devsec TSM name locks; read back the TSM that locked it."""
    assert guest.write(dpath(GPU2, "tsm/lock"), "tsm1\n") == "ok"
    assert guest.read(dpath(GPU2, "tsm/lock")) == "tsm1\n"


@pytest.mark.parametrize("value", ["1", "tsm", "TSM1", "tsmx", " tsm1", "tsm+1"])
def test_1c_lock_einval_bad_name(guest, value):
    """§1c tsm/lock: EINVAL when sscanf("tsm%d") does not match (no leading space, no '+')."""
    assert guest.write(dpath(GPU2, "tsm/lock"), value) == "EINVAL"


def test_1c_lock_ebusy_already_locked(guest):
    """§1c tsm/lock: EBUSY when the device already has a TSM context (locked)."""
    locked(guest)
    assert guest.write(dpath(GPU2, "tsm/lock"), "tsm1") == "EBUSY"


def test_1c_lock_ebusy_link_connected_function(sample):
    """§1c tsm/lock: EBUSY when the function has a link context (connected as a DSM's function)."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    assert sample.write(dpath(FN1, "tsm/lock"), "tsm1") == "EBUSY"


def test_1c_lock_enxio_link_tsm(guest):
    """§1c tsm/lock: ENXIO for a TSM that is not a devsec TSM."""
    assert guest.write(dpath(GPU2, "tsm/lock"), "tsm0") == "ENXIO"


def test_1c_lock_enxio_no_such_tsm(guest):
    """§1c tsm/lock: ENXIO when the TSM is not found."""
    assert guest.write(dpath(GPU2, "tsm/lock"), "tsm9") == "ENXIO"


def test_1c_lock_ebusy_driver_bound(guest):
    """§1c tsm/lock: EBUSY while a driver is bound."""
    assert guest.write(dpath(GPU, "tsm/lock"), "tsm1") == "EBUSY"


def test_1c_lock_absent_without_tee(guest):
    """§1c lock/unlock/accept: visible only on devices with PCI_EXP_DEVCAP_TEE."""
    assert not guest.exists(dpath(VIRTIO, "tsm/lock"))


def test_1c_lock_absent_without_devsec_tsm(guest):
    """§1c lock/unlock/accept: visible only while >= 1 devsec TSM is registered."""
    apply_fault(guest.fleet, guest.name, "-", "tsm-remove", ["tsm1"])
    assert not guest.exists(dpath(GPU2, "tsm/lock"))


# =============================================================================================
# §1c tsm/unlock
# =============================================================================================

def test_1c_unlock_is_write_only(guest):
    """§1c tsm/unlock (WO): opening it for reading is EACCES."""
    assert guest.open_errno(dpath(GPU2, "tsm/unlock"), read=True, write=False) == "EACCES"


def test_1c_unlock_lock_holder(guest):
    """§1c tsm/unlock: the name used for lock unlocks; lock reads empty again."""
    locked(guest)
    assert guest.write(dpath(GPU2, "tsm/unlock"), "tsm1\n") == "ok"
    assert guest.read(dpath(GPU2, "tsm/lock")) == "\n"


def test_1c_unlock_einval_not_locked(guest):
    """§1c tsm/unlock: EINVAL when not locked."""
    assert guest.write(dpath(GPU2, "tsm/unlock"), "tsm1") == "EINVAL"


def test_1c_unlock_einval_name_mismatch(guest):
    """§1c tsm/unlock: EINVAL when the name is not the lock holder."""
    locked(guest)
    assert guest.write(dpath(GPU2, "tsm/unlock"), "tsm0") == "EINVAL"


def test_1c_unlock_ebusy_driver_bound(guest):
    """§1c tsm/unlock: EBUSY while a driver is bound."""
    locked(guest)
    guest.write("bus/pci/drivers/nvidia/bind", GPU2)
    assert guest.write(dpath(GPU2, "tsm/unlock"), "tsm1") == "EBUSY"


def test_1c_unlock_clears_acceptance(guest):
    """§1c tsm/unlock: clears acceptance (accept reads 0)."""
    accepted(guest)
    guest.write(dpath(GPU2, "tsm/unlock"), "tsm1")
    assert guest.read(dpath(GPU2, "tsm/accept")) == "0\n"


# =============================================================================================
# §1c tsm/accept
# =============================================================================================

def test_1c_accept_reads_0_when_not_accepted(guest):
    """§1c tsm/accept read: 0."""
    assert guest.read(dpath(GPU2, "tsm/accept")) == "0\n"


@pytest.mark.parametrize("value", ["1", "1\n", "y", "Y", "yes", "t", "T", "on", "oN"])
def test_1c_accept_kstrtobool_true(guest, value):
    """§1c tsm/accept write: any kstrtobool true string accepts; read back 1."""
    locked(guest)
    assert guest.write(dpath(GPU2, "tsm/accept"), value) == "ok"
    assert guest.read(dpath(GPU2, "tsm/accept")) == "1\n"


@pytest.mark.parametrize("value", ["0", "n", "N", "f", "off", "false"])
def test_1c_accept_einval_false_value(guest, value):
    """§1c tsm/accept: EINVAL for a false value ("there is no 'unaccept' verb")."""
    locked(guest)
    assert guest.write(dpath(GPU2, "tsm/accept"), value) == "EINVAL"


@pytest.mark.parametrize("value", ["2", "x", "o", " 1", "\n"])
def test_1c_accept_einval_not_bool(guest, value):
    """§1c tsm/accept: EINVAL for a string that is not a kstrtobool value."""
    locked(guest)
    assert guest.write(dpath(GPU2, "tsm/accept"), value) == "EINVAL"


def test_1c_accept_einval_not_locked(guest):
    """§1c tsm/accept: EINVAL when the device is not locked."""
    assert guest.write(dpath(GPU2, "tsm/accept"), "1") == "EINVAL"


def test_1c_accept_ebusy_driver_bound(guest):
    """§1c tsm/accept: EBUSY while a driver is bound."""
    locked(guest)
    guest.write("bus/pci/drivers/nvidia/bind", GPU2)
    assert guest.write(dpath(GPU2, "tsm/accept"), "1") == "EBUSY"


def test_1c_accept_repeated_idempotent(guest):
    """§1c tsm/accept repeated (phase2): success with no action."""
    accepted(guest)
    gen = guest.dev(GPU2).generation
    assert guest.write(dpath(GPU2, "tsm/accept"), "1") == "ok"
    assert (guest.dev(GPU2).encrypted_mmio_resources, guest.dev(GPU2).generation) == (1, gen)


def test_1c_accept_repeated_v2_duplicates_resources(make_guest):
    """§1c tsm/accept repeated (v2, accept_repeat: v2): not rejected; encrypted MMIO duplicated."""
    s = accepted(make_guest(accept_repeat="v2"))
    assert s.write(dpath(GPU2, "tsm/accept"), "1") == "ok"
    assert s.events("accept_repeated")[-1]["duplicates"] == 2


def test_1c_accept_idempotent_logs_noop(guest):
    """§1c tsm/accept repeated (phase2): the model records that nothing happened."""
    accepted(guest)
    guest.write(dpath(GPU2, "tsm/accept"), "1")
    assert guest.events()[-2]["event"] == "accept_noop"


# =============================================================================================
# §1c modules_autoprobe and module options
# =============================================================================================

def test_1c_modules_autoprobe_absent_on_phase2_hosts(guest):
    """§1c /sys/module/module/parameters/modules_autoprobe: v2 only; absent by default."""
    assert not guest.exists("module/module/parameters/modules_autoprobe")


def test_1c_modules_autoprobe_reads_value(make_guest):
    """§1c modules_autoprobe (RW): reads 1/0."""
    s = make_guest(modules_autoprobe=True)
    assert s.read("module/module/parameters/modules_autoprobe") == "1\n"


def test_1c_modules_autoprobe_einval_not_bool(make_guest):
    """§1c modules_autoprobe: a bool; EINVAL otherwise."""
    s = make_guest(modules_autoprobe=True)
    assert s.write("module/module/parameters/modules_autoprobe", "maybe") == "EINVAL"


def test_1c_modules_autoprobe_off_stops_probe_on_hot_add(make_guest):
    """§1c modules_autoprobe=0: a hot-added device is not probed."""
    s = make_guest(modules_autoprobe=True)
    s.write("module/module/parameters/modules_autoprobe", "0")
    apply_fault(s.fleet, s.name, GPU, "remove", [])
    apply_fault(s.fleet, s.name, GPU, "add", [])
    assert not s.exists(dpath(GPU, "driver"))


def test_1c_module_option_autoprobe_has_no_sysfs_file(make_guest):
    """§1c module option autoprobe=<bool>: a modprobe option only, no sysfs file."""
    s = make_guest(trust_abi="module_param")
    assert s.ls("module/nvidia/parameters") == ["trust"]


def test_1c_module_trust_reads_default_auto(make_guest):
    """§1c module option trust=: modelled as /sys/module/<drv>/parameters/trust; default auto."""
    s = make_guest(trust_abi="module_param")
    assert s.read("module/nvidia/parameters/trust") == "auto\n"


def test_1c_module_trust_none_refuses_bind(make_guest):
    """§1c module trust=none: the driver does not attach (bind refused) [errno inferred: ENODEV]."""
    s = locked(make_guest(trust_abi="module_param"))
    s.write("module/nvidia/parameters/trust", "none")
    assert s.write("bus/pci/drivers/nvidia/bind", GPU2) == "ENODEV"


def test_1c_module_trust_takes_effect_at_next_bind(make_guest):
    """§1c module trust=: a bound device keeps the trust it got at bind."""
    s = make_guest(trust_abi="module_param")
    s.write("module/virtio-pci/parameters/trust", "none")  # built-in: no module directory
    s.write("module/nvidia/parameters/trust", "none")
    assert s.dev(VIRTIO).driver == "virtio-pci"
    assert s.dev(VIRTIO).effective_module_trust == "auto"


def test_1c_module_trust_tcb_binds_locked_device(make_guest):
    """§1c module trust=tcb: a locked TEE device binds and gets trust tcb."""
    s = accepted(make_guest(trust_abi="module_param"))
    s.write("module/nvidia/parameters/trust", "tcb")
    assert s.write("bus/pci/drivers/nvidia/bind", GPU2) == "ok"
    assert s.dev(GPU2).effective_module_trust == "tcb"


def test_1c_module_trust_auto_ebusy_for_unlocked_tee_device(make_guest):
    """§1c/§2 module trust=auto: a manual bind of an unlocked TEE device fails with EBUSY (devsec.sh)."""
    s = make_guest(trust_abi="module_param")
    assert s.write("bus/pci/drivers/nvidia/bind", GPU2) == "EBUSY"


def test_1c_module_trust_unknown_word_is_unset(make_guest):
    """§1c module trust=: an unknown string is UNSET (no policy): the device keeps its trust."""
    s = locked(make_guest(trust_abi="module_param"))
    s.write("module/nvidia/parameters/trust", "none")
    s.write("bus/pci/drivers/nvidia/bind", GPU2)
    s.write("module/nvidia/parameters/trust", "bogus")
    assert s.write("bus/pci/drivers/nvidia/bind", GPU2) == "ENODEV"


def test_1c_module_trust_absent_on_other_flavours(guest):
    """§1c module trust=: the parameter file exists only with the module_param trust ABI."""
    assert not guest.exists("module/nvidia/parameters/trust")


# =============================================================================================
# §1c trust_policy (design B)
# =============================================================================================

def test_1c_trust_policy_reads_default(make_guest):
    """§1c trust_policy read: default."""
    s = make_guest(trust_abi="trust_policy")
    assert s.read(dpath(GPU2, "trust_policy")) == "default\n"


@pytest.mark.parametrize("word", ["default", "disabled", "adversary", "full", "full\n"])
def test_1c_trust_policy_accepts_words(make_guest, word):
    """§1c trust_policy write: one of the four words (sysfs_streq) while unbound."""
    s = make_guest(trust_abi="trust_policy")
    assert s.write(dpath(GPU2, "trust_policy"), word) == "ok"
    assert s.read(dpath(GPU2, "trust_policy")) == word.strip() + "\n"


def test_1c_trust_policy_einval_unknown_word(make_guest):
    """§1c trust_policy: EINVAL for an unknown word."""
    s = make_guest(trust_abi="trust_policy")
    assert s.write(dpath(GPU2, "trust_policy"), "tcb") == "EINVAL"


def test_1c_trust_policy_ebusy_while_bound(make_guest):
    """§1c trust_policy: EBUSY once the device can match or probe (a driver is bound)."""
    s = make_guest(trust_abi="trust_policy")
    assert s.write(dpath(GPU, "trust_policy"), "full") == "EBUSY"


def test_1c_trust_policy_disabled_refuses_bind(make_guest):
    """§1c trust_policy disabled: resolved before probe, the bind is refused [errno inferred: ENODEV]."""
    s = make_guest(trust_abi="trust_policy")
    s.write(dpath(GPU2, "trust_policy"), "disabled")
    assert s.write("bus/pci/drivers/nvidia/bind", GPU2) == "ENODEV"


def test_1c_trust_policy_independent_of_run(make_guest):
    """§1c/§4 design B: trust is independent of TDISP; unlock keeps the word."""
    s = accepted(make_guest(trust_abi="trust_policy"))
    s.write(dpath(GPU2, "trust_policy"), "full")
    s.write(dpath(GPU2, "tsm/unlock"), "tsm1")
    assert s.read(dpath(GPU2, "trust_policy")) == "full\n"


# =============================================================================================
# §1c trust (integer, seed-thread proposal)
# =============================================================================================

def test_1c_trust_reads_level(guest):
    """§1c trust: an integer level 0..3; the scenario starts GPU2 at 0."""
    assert guest.read(dpath(GPU2, "trust")) == "0\n"


def test_1c_trust_3_einval_unless_run(guest):
    """§1c/§4 trust: raising to 3 fails with EINVAL unless the device is in RUN."""
    locked(guest)
    assert guest.write(dpath(GPU2, "trust"), "3") == "EINVAL"


def test_1c_trust_3_in_run(guest):
    """§1c/§4 trust: 3 is accepted in RUN (userspace's acknowledgement)."""
    accepted(guest)
    assert guest.write(dpath(GPU2, "trust"), "3") == "ok"
    assert guest.read(dpath(GPU2, "trust")) == "3\n"


def test_1c_trust_below_3_einval_in_run(guest):
    """§1c/§4 trust: a level below 3 fails with EINVAL while the device is in RUN."""
    accepted(guest)
    assert guest.write(dpath(GPU2, "trust"), "2") == "EINVAL"


def test_1c_trust_below_3_outside_run(guest):
    """§1c trust: levels 0..2 are accepted outside RUN."""
    assert guest.write(dpath(GPU2, "trust"), "2\n") == "ok"


def test_1c_trust_einval_out_of_range(guest):
    """§1c trust: EINVAL for a level above 3."""
    assert guest.write(dpath(GPU2, "trust"), "4") == "EINVAL"


def test_1c_trust_einval_not_a_number(guest):
    """§1c trust: EINVAL for text kstrtouint() does not take."""
    assert guest.write(dpath(GPU2, "trust"), "tcb") == "EINVAL"


def test_1c_trust_erange_overflow(guest):
    """§1c trust: kstrtouint() returns ERANGE above UINT_MAX."""
    assert guest.write(dpath(GPU2, "trust"), "4294967296") == "ERANGE"


def test_1c_trust_resets_on_unlock(guest):
    """§1c/§9 trust: unlock resets it to 0."""
    accepted(guest)
    guest.write(dpath(GPU2, "trust"), "3")
    guest.write(dpath(GPU2, "tsm/unlock"), "tsm1")
    assert guest.read(dpath(GPU2, "trust")) == "0\n"


def test_1c_trust_resets_on_unlock_from_locked(guest):
    """§9 unlock: "trust back to 0 where that ABI exists", also from LOCKED."""
    guest.write(dpath(GPU2, "trust"), "2")
    locked(guest)
    guest.write(dpath(GPU2, "tsm/unlock"), "tsm1")
    assert guest.read(dpath(GPU2, "trust")) == "0\n"


def test_1c_trust_resets_on_error(guest):
    """§1c/§4 trust: falling out of RUN into ERROR resets it to 0."""
    accepted(guest)
    guest.write(dpath(GPU2, "trust"), "3")
    apply_fault(guest.fleet, guest.name, GPU2, "error", [])
    assert guest.read(dpath(GPU2, "trust")) == "0\n"


def test_1c_trust_absent_on_other_flavours(make_guest):
    """§1c trust: the file exists only with the integer trust ABI."""
    s = make_guest(trust_abi="none")
    assert not s.exists(dpath(GPU2, "trust")) and not s.exists(dpath(GPU2, "trust_policy"))


# =============================================================================================
# §3 TDISP state machine
# =============================================================================================

def test_3_unlocked_to_locked_by_lock(guest):
    """§3 CONFIG_UNLOCKED --LOCK_INTERFACE_REQUEST--> CONFIG_LOCKED (tsm/lock)."""
    locked(guest)
    assert guest.dev(GPU2).tdisp == kernel.LOCKED


def test_3_locked_to_run_by_accept(guest):
    """§3 CONFIG_LOCKED --START_INTERFACE_REQUEST--> RUN (tsm/accept)."""
    accepted(guest)
    assert guest.dev(GPU2).tdisp == kernel.RUN


def test_3_start_refused_when_generation_changed_since_validate(guest):
    """§3 START is rejected on a nonce mismatch; Linux pins the validated evidence generation:
    accept fails once the generation moved [errno inferred: EAGAIN]."""
    locked(guest)
    guest.dev(GPU2).validated_generation = guest.dev(GPU2).generation
    apply_fault(guest.fleet, guest.name, GPU2, "generation", [])
    assert guest.write(dpath(GPU2, "tsm/accept"), "1") == "EAGAIN"


def test_3_locked_to_unlocked_by_unlock(guest):
    """§3 CONFIG_LOCKED --STOP_INTERFACE_REQUEST--> CONFIG_UNLOCKED (tsm/unlock)."""
    locked(guest)
    guest.write(dpath(GPU2, "tsm/unlock"), "tsm1")
    assert guest.dev(GPU2).tdisp == kernel.UNLOCKED


def test_3_run_to_unlocked_by_unlock(guest):
    """§3 RUN --STOP_INTERFACE_REQUEST--> CONFIG_UNLOCKED (tsm/unlock)."""
    accepted(guest)
    guest.write(dpath(GPU2, "tsm/unlock"), "tsm1")
    assert guest.dev(GPU2).tdisp == kernel.UNLOCKED


def test_3_locked_to_error(guest):
    """§3 CONFIG_LOCKED --security event--> ERROR (fault error)."""
    locked(guest)
    apply_fault(guest.fleet, guest.name, GPU2, "error", [])
    assert guest.dev(GPU2).tdisp == kernel.ERROR


def test_3_run_to_error(guest):
    """§3 RUN --security event--> ERROR (fault error)."""
    accepted(guest)
    apply_fault(guest.fleet, guest.name, GPU2, "error", [])
    assert guest.dev(GPU2).tdisp == kernel.ERROR


def test_3_error_to_unlocked_by_unlock(guest):
    """§3 ERROR --STOP_INTERFACE_REQUEST--> CONFIG_UNLOCKED (tsm/unlock)."""
    accepted(guest)
    apply_fault(guest.fleet, guest.name, GPU2, "error", [])
    guest.write(dpath(GPU2, "tsm/unlock"), "tsm1")
    assert guest.dev(GPU2).tdisp == kernel.UNLOCKED


def test_3_unlocked_cannot_enter_error(guest):
    """§3 ERROR is entered only from CONFIG_LOCKED or RUN: the fault is refused (EINVAL)."""
    with pytest.raises(OSError) as e:
        apply_fault(guest.fleet, guest.name, GPU2, "error", [])
    assert e.value.errno == errno.EINVAL


def test_3_run_cannot_go_back_to_locked(guest):
    """§3 "from RUN the only other states are ERROR or UNLOCKED": lock on a RUN device is EBUSY."""
    accepted(guest)
    assert guest.write(dpath(GPU2, "tsm/lock"), "tsm1") == "EBUSY"


def test_3_start_rejected_unless_locked(guest):
    """§3 START_INTERFACE is rejected unless CONFIG_LOCKED: accept in ERROR fails [errno inferred: EIO]."""
    locked(guest)
    apply_fault(guest.fleet, guest.name, GPU2, "error", [])
    assert guest.write(dpath(GPU2, "tsm/accept"), "1") == "EIO"


def test_3_error_invisible_through_accept(guest):
    """§3/§7.1 ERROR after RUN is not reflected: accept stays 1 and lock keeps its holder."""
    accepted(guest)
    apply_fault(guest.fleet, guest.name, GPU2, "error", [])
    assert (guest.read(dpath(GPU2, "tsm/accept")), guest.read(dpath(GPU2, "tsm/lock"))) == ("1\n", "tsm1\n")


def test_3_error_shows_in_generation(guest):
    """§3/§7.1 ERROR is revealed by the evidence generation."""
    accepted(guest)
    gen = guest.dev(GPU2).generation
    apply_fault(guest.fleet, guest.name, GPU2, "error", [])
    assert guest.dev(GPU2).generation == gen + 1


def test_3_linux_view_unlocked(guest):
    """§3 Linux view: guest tsm/lock empty == UNLOCKED."""
    assert (guest.read(dpath(GPU2, "tsm/lock")), guest.dev(GPU2).tdisp) == ("\n", kernel.UNLOCKED)


def test_3_linux_view_locked(guest):
    """§3 Linux view: tsm/lock = tsmN and accept = 0 == LOCKED."""
    locked(guest)
    assert (guest.read(dpath(GPU2, "tsm/accept")), guest.dev(GPU2).tdisp) == ("0\n", kernel.LOCKED)


def test_3_linux_view_host_bound_hides_state(sample):
    """§3 Linux view (host): tsm/bound = tsmN for a bound TDI, whatever its TDISP state."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    sample.write("bus/faux/devices/devsec_link_tsm/tsm_bind", PF0)
    assert sample.read(dpath(PF0, "tsm/bound")) == "tsm0\n"


def test_3_lock_bumps_generation(guest):
    """§3 LOCK: the TSM gathers fresh evidence for the new session (generation moves)."""
    gen = guest.dev(GPU2).generation
    locked(guest)
    assert guest.dev(GPU2).generation == gen + 1


# =============================================================================================
# §9 order of the kernel's checks (which errno wins)
# =============================================================================================

def test_9_lock_bad_name_before_context(guest):
    """§9 lock: name not tsm%d (EINVAL) is checked before an existing context (EBUSY)."""
    locked(guest)
    assert guest.write(dpath(GPU2, "tsm/lock"), "bogus") == "EINVAL"


def test_9_lock_context_before_tsm_mode(guest):
    """§9 lock: an existing context (EBUSY) is checked before the TSM's mode (ENXIO)."""
    locked(guest)
    assert guest.write(dpath(GPU2, "tsm/lock"), "tsm0") == "EBUSY"


def test_9_lock_tsm_mode_before_driver(guest):
    """§9 lock: a TSM that is not devsec (ENXIO) is checked before a bound driver (EBUSY)."""
    assert guest.write(dpath(GPU, "tsm/lock"), "tsm0") == "ENXIO"


def test_9_lock_bad_name_before_driver(guest):
    """§9 lock: a bad name (EINVAL) wins over a bound driver (EBUSY)."""
    assert guest.write(dpath(GPU, "tsm/lock"), "1") == "EINVAL"


def test_9_unlock_not_locked_before_driver(guest):
    """§9 unlock: not locked (EINVAL) is checked before a bound driver (EBUSY)."""
    assert guest.write(dpath(GPU, "tsm/unlock"), "tsm1") == "EINVAL"


def test_9_unlock_name_mismatch_before_driver(guest):
    """§9 unlock: a name other than the lock holder (EINVAL) is checked before the driver (EBUSY)."""
    locked(guest)
    guest.write("bus/pci/drivers/nvidia/bind", GPU2)
    assert guest.write(dpath(GPU2, "tsm/unlock"), "tsm0") == "EINVAL"


def test_9_accept_false_value_before_driver(guest):
    """§9 accept: a false value (EINVAL) is checked before a bound driver (EBUSY)."""
    locked(guest)
    guest.write("bus/pci/drivers/nvidia/bind", GPU2)
    assert guest.write(dpath(GPU2, "tsm/accept"), "0") == "EINVAL"


def test_9_accept_not_locked_before_driver(guest):
    """§9 accept: not locked (EINVAL) is checked before a bound driver (EBUSY)."""
    assert guest.write(dpath(GPU, "tsm/accept"), "1") == "EINVAL"


def test_9_accept_driver_before_already_accepted(guest):
    """§9 accept: a bound driver (EBUSY) is checked before the already-accepted no-op."""
    accepted(guest)
    guest.write("bus/pci/drivers/nvidia/bind", GPU2)
    assert guest.write(dpath(GPU2, "tsm/accept"), "1") == "EBUSY"


def test_9_accept_already_accepted_before_run_step(guest):
    """§9 accept: already accepted is a success with no action, even in ERROR (the run step is
    not reached)."""
    accepted(guest)
    apply_fault(guest.fleet, guest.name, GPU2, "error", [])
    assert guest.write(dpath(GPU2, "tsm/accept"), "1") == "ok"


def test_9_accept_run_step_error_last(guest):
    """§9 accept: the TSM's run step failing (ERROR) comes last."""
    locked(guest)
    apply_fault(guest.fleet, guest.name, GPU2, "error", [])
    assert guest.write(dpath(GPU2, "tsm/accept"), "y") == "EIO"


def test_9_connect_bad_name_before_context(sample):
    """§9 connect: name not tsm%d (EINVAL) before an existing context (EBUSY)."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    assert sample.write(dpath(PF0, "tsm/connect"), "x") == "EINVAL"


def test_9_connect_context_before_tsm_mode(sample):
    """§9 connect: an existing context (EBUSY) before a TSM that is not link (ENXIO)."""
    sample.write(dpath(PF0, "tsm/lock"), "tsm1")
    assert sample.write(dpath(PF0, "tsm/connect"), "tsm1") == "EBUSY"


def test_9_connect_tsm_mode_before_probe():
    """§9 connect: a TSM that is not link (ENXIO) before the probe (also ENXIO, no state change)."""
    data = scenario.read("devsec-fresh")
    data["devices"][0]["doe"] = False
    s = Sysfs(scenario.build(data), "sample-cvm")
    assert s.write(dpath(PF0, "tsm/connect"), "tsm1") == "ENXIO"
    assert s.events("write")[-1]["result"] == "ENXIO"


def test_9_connect_gives_dependents_link_context(sample):
    """§9 connect: then dependent functions get a link context (lock on them is EBUSY)."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    assert sample.dev(FN1).link_dsm == PF0


def test_9_disconnect_not_connected_before_name(sample):
    """§9 disconnect: not connected (ENXIO) is checked before the name (EINVAL)."""
    assert sample.write(dpath(PF0, "tsm/disconnect"), "bogus") == "ENXIO"


def test_9_disconnect_clears_dependents(sample):
    """§9 disconnect: then dependents are cleared."""
    sample.write(dpath(PF0, "tsm/connect"), "tsm0")
    sample.write(dpath(PF0, "tsm/disconnect"), "tsm0")
    assert sample.write(dpath(FN1, "tsm/lock"), "tsm1") == "ok"


@pytest.mark.parametrize("value, outcome", [("tsm1xyz", "ok"), ("tsm 1", "ok"), ("tsm01", "ok"),
                                            (" tsm1", "EINVAL"), ("tsm+1", "EINVAL"), ("tsm-1", "ENXIO")])
def test_9_sscanf_tsm(guest, value, outcome):
    """§9 sscanf("tsm%d") accepts trailing text and space before the number, not leading space."""
    assert guest.write(dpath(GPU2, "tsm/lock"), value) == outcome


@pytest.mark.parametrize("value, outcome", [("tsm1", "ok"), ("tsm1\n", "ok"), ("tsm1\n\n", "EINVAL"),
                                            ("tsm1 ", "EINVAL"), ("tsm1x", "EINVAL")])
def test_9_sysfs_streq_unlock(guest, value, outcome):
    """§9 sysfs_streq tolerates one trailing newline (unlock), nothing else."""
    locked(guest)
    assert guest.write(dpath(GPU2, "tsm/unlock"), value) == outcome


@pytest.mark.parametrize("value", ["Yes", "true", "1abc", "onward"])
def test_9_kstrtobool_first_characters(guest, value):
    """§9 kstrtobool looks only at the first (one or two) characters."""
    locked(guest)
    assert guest.write(dpath(GPU2, "tsm/accept"), value) == "ok"


def test_9_accept_read_first_skips_ebusy(guest):
    """§9 consequence: with the driver rebound after accept, a re-run that reads accept first
    sees 1 and writes nothing; writing anyway is EBUSY."""
    accepted(guest)
    guest.write("bus/pci/drivers/nvidia/bind", GPU2)
    assert guest.read(dpath(GPU2, "tsm/accept")) == "1\n"


# =============================================================================================
# driver core and sysfs file semantics the collection relies on (abi §2 flows)
# =============================================================================================

def test_driver_link_follows_bind(guest):
    """§2 flow: echo <BDF> > drivers/<drv>/bind binds; <BDF>/driver links to the driver."""
    assert guest.write("bus/pci/drivers/nvidia/bind", GPU2 + "\n") == "ok"
    assert guest.resolve(dpath(GPU2, "driver")) == "bus/pci/drivers/nvidia"


def test_driver_link_gone_after_unbind(guest):
    """§2 flow: echo <BDF> > drivers/<drv>/unbind unbinds; <BDF>/driver goes away."""
    assert guest.write("bus/pci/drivers/nvidia/unbind", GPU) == "ok"
    assert not guest.exists(dpath(GPU, "driver"))


def test_bind_ebusy_already_bound(guest):
    """driver core: binding a bound device is EBUSY."""
    assert guest.write("bus/pci/drivers/nvidia/bind", GPU) == "EBUSY"


def test_bind_enodev_unknown_device(guest):
    """driver core bind_store(): ENODEV for an unknown device."""
    assert guest.write("bus/pci/drivers/nvidia/bind", "0000:77:00.0") == "ENODEV"


def test_bind_enodev_driver_does_not_match(guest):
    """driver core bind_store(): ENODEV when the driver's id table does not match."""
    assert guest.write("bus/pci/drivers/virtio-pci/bind", GPU2) == "ENODEV"


def test_unbind_enodev_not_bound_to_driver(guest):
    """driver core unbind_store(): ENODEV unless bound to that driver."""
    assert guest.write("bus/pci/drivers/nvidia/unbind", GPU2) == "ENODEV"


def test_driver_override_reads_null(guest):
    """driver_override reads "(null)" when unset, as the kernel prints it."""
    assert guest.read(dpath(GPU2, "driver_override")) == "(null)\n"


def test_driver_override_only_driver_binds(sample):
    """samples/devsec devsec_pci is override_only: bind is ENODEV until driver_override names it."""
    assert sample.write("bus/pci/drivers/devsec_pci/bind", PF0) == "ENODEV"


def test_driver_override_newline_clears(guest):
    """driver_set_override(): a string starting with a newline clears the override."""
    guest.write(dpath(GPU2, "driver_override"), "nvidia\n")
    guest.write(dpath(GPU2, "driver_override"), "\n")
    assert guest.read(dpath(GPU2, "driver_override")) == "(null)\n"


def test_drivers_probe_binds_override(guest):
    """bus/pci/drivers_probe: probes the device with its matching driver."""
    guest.write(dpath(GPU2, "driver_override"), "nvidia")
    assert guest.write("bus/pci/drivers_probe", GPU2) == "ok"
    assert guest.dev(GPU2).driver == "nvidia"


def test_zero_length_write_never_reaches_store(guest):
    """sysfs_kf_write(): a zero-length write returns 0 without calling store()."""
    before = guest.seq()
    assert guest.view.write(guest.name, dpath(GPU2, "tsm/lock"), b"") == 0
    assert guest.seq() == before


def test_write_is_cut_at_page_size(guest):
    """kernfs: one write(2) stores at most PAGE_SIZE bytes and returns that count."""
    assert guest.view.write(guest.name, "class/tsm/tsm1/uevent", b"change" + b" " * 5000) == 4096


def test_driver_override_einval_from_page_size(guest):
    """driver_set_override(): EINVAL for PAGE_SIZE - 1 bytes or more."""
    assert guest.write(dpath(GPU2, "driver_override"), "x" * 4095) == "EINVAL"


def test_read_only_attribute_write_eacces(guest):
    """kernfs: an attribute without store() cannot be opened for writing (EACCES)."""
    assert guest.open_errno(dpath(GPU2, "vendor"), read=False, write=True) == "EACCES"


def test_ids_read_as_hex(guest):
    """PCI ids read as sysfs prints them: 0x%04x, class 0x%06x."""
    assert (guest.read(dpath(GPU2, "vendor")), guest.read(dpath(GPU2, "class"))) == ("0x10de\n", "0x030200\n")


# =============================================================================================
# faults seen through the model
# =============================================================================================

def test_fault_garbage_read(guest):
    """fault garbage: the attribute reads the given bytes until cleared."""
    apply_fault(guest.fleet, guest.name, GPU2, "garbage", ["tsm/accept", "ff00fe"])
    assert guest.view.read(guest.name, dpath(GPU2, "tsm/accept")) == b"\xff\x00\xfe"


def test_fault_garbage_clear(guest):
    """fault garbage clear: the attribute reads its value again."""
    apply_fault(guest.fleet, guest.name, GPU2, "garbage", ["tsm/accept"])
    apply_fault(guest.fleet, guest.name, GPU2, "garbage", ["tsm/accept", "clear"])
    assert guest.read(dpath(GPU2, "tsm/accept")) == "0\n"


def test_fault_write_errno_then_normal(guest):
    """fault write-errno ATTR EINTR 1: the next write fails with EINTR, the one after runs."""
    apply_fault(guest.fleet, guest.name, GPU2, "write-errno", ["tsm/lock", "EINTR", "1"])
    assert [guest.write(dpath(GPU2, "tsm/lock"), "tsm1") for attempt in range(2)] == ["EINTR", "ok"]


def test_fault_write_errno_does_not_store(guest):
    """fault write-errno: the failed write changes nothing."""
    apply_fault(guest.fleet, guest.name, GPU2, "write-errno", ["tsm/lock", "EAGAIN", "all"])
    guest.write(dpath(GPU2, "tsm/lock"), "tsm1")
    assert guest.read(dpath(GPU2, "tsm/lock")) == "\n"


def test_fault_rebind_binds_preferred_driver(guest):
    """fault rebind: the driver binds on its own (what the collection's EBUSY handling meets)."""
    locked(guest)
    apply_fault(guest.fleet, guest.name, GPU2, "rebind", [])
    assert guest.write(dpath(GPU2, "tsm/accept"), "1") == "EBUSY"


def test_fault_tsm_remove_unlocks_devices(guest):
    """fault tsm-remove: the TSM's contexts are torn down (the device is unlocked)."""
    accepted(guest)
    apply_fault(guest.fleet, guest.name, "-", "tsm-remove", ["tsm1"])
    assert guest.dev(GPU2).tdisp == kernel.UNLOCKED


def test_fault_tsm_restore_brings_tsm_back(guest):
    """fault tsm-restore: the class device and the tsm/ attributes return."""
    apply_fault(guest.fleet, guest.name, "-", "tsm-remove", ["tsm1"])
    apply_fault(guest.fleet, guest.name, "-", "tsm-restore", ["tsm1"])
    assert guest.read(dpath(GPU2, "tsm/lock")) == "\n"


def test_fault_remove_hides_device(guest):
    """fault remove: the device leaves bus/pci/devices."""
    apply_fault(guest.fleet, guest.name, GPU, "remove", [])
    assert GPU not in guest.ls("bus/pci/devices")


def test_fault_add_reprobes_device(guest):
    """fault add: the device returns and is probed like at boot."""
    apply_fault(guest.fleet, guest.name, GPU, "remove", [])
    apply_fault(guest.fleet, guest.name, GPU, "add", [])
    assert guest.dev(GPU).driver == "nvidia"


def test_fault_is_logged(guest):
    """Every fault is logged with a timestamp."""
    apply_fault(guest.fleet, guest.name, GPU2, "generation", ["2"])
    e = guest.events("fault")[-1]
    assert (e["fault"], e["args"], e["bdf"], isinstance(e["ts"], float)) == ("generation", ["2"], GPU2, True)


def test_transition_is_logged(guest):
    """Every state transition is logged with its before and after state."""
    locked(guest)
    e = guest.events("tdisp")[-1]
    assert (e["before"], e["after"], e["tsm"]) == (kernel.UNLOCKED, kernel.LOCKED, "tsm1")


def test_trigger_error_right_after_accept():
    """scenario triggers: {on: accept, fault: error} drops the device out of RUN at once."""
    data = guest_scenario(triggers=[{"host": "cvm", "bdf": GPU2, "on": "accept", "fault": "error"}])
    s = accepted(Sysfs(scenario.build(data), "cvm"))
    assert s.dev(GPU2).tdisp == kernel.ERROR


def test_trigger_fires_once_by_default():
    """scenario triggers: times defaults to 1."""
    data = guest_scenario(triggers=[{"host": "cvm", "bdf": GPU2, "on": "accept", "fault": "error"}])
    s = accepted(Sysfs(scenario.build(data), "cvm"))
    s.write(dpath(GPU2, "tsm/unlock"), "tsm1")
    accepted(s)
    assert s.dev(GPU2).tdisp == kernel.RUN
