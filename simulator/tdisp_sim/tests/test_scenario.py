"""Scenarios: the shipped ones load with the topology their description promises, and mistakes
in a scenario fail with one line that names the field."""

from __future__ import annotations

import copy

import pytest

from tdisp_sim import kernel, scenario
from tdisp_sim.views.sysfs_tree import SysfsView

from .simtest import guest_scenario


def load(name: str) -> kernel.Fleet:
    return scenario.load(name)


@pytest.mark.parametrize("name", scenario.available())
def test_shipped_scenario_loads(name):
    """Every shipped scenario builds, and its event log starts with scenario_start."""
    fleet = load(name)
    assert fleet.name == name and fleet.events[0]["event"] == "scenario_start"


def test_devsec_sample_topology():
    """devsec-sample mirrors samples/devsec: tsm0 link + tsm1 devsec, 8086:ffff at the four BDFs."""
    h = load("devsec-sample").hosts["sample-cvm"]
    assert [(t.name, t.mode, t.faux) for t in h.tsms.values()] == [
        ("tsm0", "link", "devsec_link_tsm"), ("tsm1", "devsec", "devsec_tsm")]
    assert sorted((d.bdf, d.vendor, d.device, d.tee) for d in h.endpoints()) == [
        (b, "0x8086", "0xffff", True) for b in ("10000:01:00.0", "10000:01:00.1", "10001:03:00.0", "10001:03:00.1")]
    assert h.drivers["devsec_pci"].override_only


def test_devsec_sample_first_endpoint_starts_in_run():
    """devsec-sample: 10000:01:00.0 starts locked by tsm1 and accepted, so `fault error` works."""
    d = load("devsec-sample").hosts["sample-cvm"].devices["10000:01:00.0"]
    assert (d.tdisp, d.lock_tsm, d.accepted) == (kernel.RUN, 1, True)


def test_gpu_fleet_hosts_and_gpus():
    """gpu-fleet: 24 hosts, each with 8 H100-like GPUs (class 0x030200) on nvidia."""
    fleet = load("gpu-fleet")
    assert len(fleet.hosts) == 24
    for h in fleet.hosts.values():
        pfs = [d for d in h.endpoints() if d.device == "0x2330" and d.physfn is None]
        assert len(pfs) == 8 and {(d.klass, d.driver) for d in pfs} == {("0x030200", "nvidia")}


def test_gpu_fleet_sriov_vfs_linked():
    """gpu-fleet: one GPU per host has SR-IOV VFs, linked both ways (physfn, virtfnN)."""
    fleet = load("gpu-fleet")
    v = SysfsView(fleet)
    assert v.lookup("gpu-001", "bus/pci/devices/0000:18:00.0/virtfn1")[0].endswith("/0000:18:00.5")
    assert v.lookup("gpu-001", "bus/pci/devices/0000:18:00.5/physfn")[0].endswith("/0000:18:00.0")


def test_gpu_fleet_nic_and_virtio():
    """gpu-fleet: a ConnectX-like NIC on mlx5_core with TDISP, virtio devices without tsm/."""
    h = load("gpu-fleet").hosts["gpu-007"]
    v = SysfsView(h.fleet)
    assert (h.devices["0000:0c:00.0"].device, h.devices["0000:0c:00.0"].driver) == ("0x1021", "mlx5_core")
    assert "tsm" not in v.listdir("gpu-007", "bus/pci/devices/0000:00:03.0")


def test_mixed_fleet_flavours():
    """mixed-fleet: one trust_policy host, one module_param host, some without trust ABI or TSM."""
    fleet = load("mixed-fleet")
    abis = [h.trust_abi for h in fleet.hosts.values()]
    assert (abis.count("trust_policy"), abis.count("module_param"), abis.count("none")) == (1, 1, 2)
    assert [n for n, h in fleet.hosts.items() if not h.tsms] == ["mixed-031", "mixed-032", "mixed-033"]


def test_mixed_fleet_planted_problems():
    """mixed-fleet: tampered firmware, wrong root, a GPU missing, a trigger on accept."""
    fleet = load("mixed-fleet")
    assert fleet.hosts["mixed-005"].devices["0000:18:00.0"].profile == "tampered"
    assert fleet.hosts["mixed-006"].devices["0000:0c:00.0"].pki == "wrong-root"
    assert "0000:2a:00.0" not in fleet.hosts["mixed-008"].devices
    t = fleet.triggers[0]
    assert (t.host, t.bdf, t.on, t.fault) == ("mixed-007", "0000:2a:00.0", "accept", "error")


def test_mixed_fleet_device_kinds():
    """mixed-fleet: NVMe 144d:a80a class 0x010802 on nvme among GPUs, NICs and virtio."""
    d = load("mixed-fleet").hosts["mixed-001"].devices["0000:5e:00.0"]
    assert (d.vendor, d.device, d.klass, d.driver) == ("0x144d", "0xa80a", "0x010802", "nvme")


def test_fleet_1000_size():
    """fleet-1000: 1000 hosts with 8 devices each."""
    fleet = load("fleet-1000")
    assert (len(fleet.hosts), {len(h.endpoints()) for h in fleet.hosts.values()}) == (1000, {8})


def test_evidence_section_kept_raw():
    """The evidence section stays plain data on the fleet; devices carry profile and PKI names."""
    fleet = load("gpu-fleet")
    assert fleet.evidence_spec["profiles"]["h100-96.00"]["svn"] == 3
    assert fleet.hosts["gpu-001"].devices["0000:2a:00.0"].profile == "h100-96.00"


def test_groups_for_inventory():
    """groups select hosts by index range or glob."""
    fleet = load("gpu-fleet")
    assert (fleet.groups["canary"], len(fleet.groups["gpu"])) == (["gpu-001", "gpu-002"], 24)


def test_root_ports_never_take_root_bus_names():
    """Root ports are allocated after the root-bus devices, so a virtio device at 00:03.0 keeps it."""
    h = load("fleet-1000").hosts["node-0001"]
    assert h.devices["0000:00:03.0"].kind == "endpoint"


def test_trigger_key_on_read_despite_yaml_1_1():
    """An unquoted `on:` key (YAML 1.1 reads it as true) is the trigger's event."""
    data = scenario.read("mixed-fleet")
    assert True in data["triggers"][0] and scenario.build(data).triggers[0].on == "accept"


# ---------------------------------------------------------------------------------------------
# one-line errors that name the field
# ---------------------------------------------------------------------------------------------

def broken(change) -> str:
    data = guest_scenario()
    change(data)
    with pytest.raises(scenario.ScenarioError) as e:
        scenario.build(data)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_error_unknown_top_level_field():
    assert broken(lambda d: d.update(hostz=1)).startswith("scenario guest-test: (top level).hostz: unknown field")


def test_error_bad_state():
    msg = broken(lambda d: d["devices"][1].update(state="runn"))
    assert "devices[1].state (host cvm): 'runn' is not one of unlocked, locked, run, error" in msg


def test_error_unquoted_hex_id():
    assert "devices[2].vendor: write ids as quoted hex strings" in broken(lambda d: d["devices"][2].update(vendor=0x1af4))


def test_error_trust_3_needs_run():
    assert "devices[1].trust (host cvm): 3 needs state run" in broken(lambda d: d["devices"][1].update(trust=3))


def test_error_unknown_template():
    assert "devices[0].template: unknown template 'gpx'" in broken(lambda d: d["devices"][0].update(template="gpx"))


def test_error_unknown_profile():
    def change(d):
        d["evidence"] = {"profiles": {"a": {}}}
        d["devices"][0]["profile"] = "b"
    assert ".profile: unknown evidence profile 'b' (evidence.profiles: a)" in broken(change)


def test_error_unknown_pki_variant():
    def change(d):
        d["evidence"] = {"pki": {"valid": {}}}
        d["devices"][0]["pki"] = "wrong-root"
    assert ".pki: unknown PKI variant 'wrong-root'" in broken(change)


def test_error_driver_not_declared():
    assert "driver 'mlx5_core' is not in drivers" in broken(lambda d: d["devices"][1].update(preferred_driver="mlx5_core"))


def test_error_duplicate_device():
    assert "device 0000:18:00.0 repeats on host cvm" in broken(lambda d: d["devices"][1].update(bdf="0000:18:00.0"))


def test_error_pattern_without_index():
    assert "hosts.pattern: must contain {index}" in broken(lambda d: d.update(hosts={"count": 2, "pattern": "h"}))


def test_error_override_selects_no_host():
    assert "overrides[0]: selects no host" in broken(lambda d: d.update(overrides=[{"hosts": "nope*", "trust_abi": "none"}]))


def test_error_state_without_devsec_tsm():
    def change(d):
        d["devices"][1]["state"] = "locked"
        d["overrides"] = [{"index": 1, "tsms": []}]
    assert "locked needs a devsec TSM on host cvm" in broken(change)


def test_error_trigger_unknown_fault():
    msg = broken(lambda d: d.update(triggers=[{"host": "cvm", "bdf": "x", "on": "accept", "fault": "explode"}]))
    assert "triggers[0].fault: 'explode' is not one of error" in msg


def test_error_trigger_device_fault_needs_bdf():
    msg = broken(lambda d: d.update(triggers=[{"host": "cvm", "on": "accept", "fault": "error"}]))
    assert "triggers[0].bdf: fault error needs a device" in msg


def test_error_group_selects_no_host():
    assert "groups.canary: selects no host" in broken(lambda d: d.update(groups={"canary": {"index": "5-6"}}))


def test_error_explicit_driver_refused_by_kernel():
    def change(d):
        d["trust_abi"] = "trust_policy"      # design B: disabled makes the bind fail EPERM
        d["devices"][1]["trust_policy"] = "disabled"
        d["devices"][1]["driver"] = "nvidia"
    assert "devices[1].driver (host cvm): the kernel refuses to bind nvidia" in broken(change)


def test_error_yaml_syntax_names_line(tmp_path):
    p = tmp_path / "bad.yml"
    p.write_text("name: bad\nhosts: [a\n")
    with pytest.raises(scenario.ScenarioError) as e:
        scenario.read(str(p))
    assert str(e.value).startswith("scenario bad: not valid YAML line ")


def test_error_unknown_scenario_lists_shipped():
    with pytest.raises(scenario.ScenarioError) as e:
        scenario.resolve("no-such-fleet")
    assert "shipped scenarios: devsec-fresh, devsec-sample" in str(e.value)


# ---------------------------------------------------------------------------------------------
# overrides, templates, expansion
# ---------------------------------------------------------------------------------------------

def test_override_by_glob_and_index_together():
    data = guest_scenario(hosts={"count": 4, "pattern": "h{index}"},
                          overrides=[{"hosts": "h*", "index": "2-3", "trust_abi": "none"}])
    fleet = scenario.build(data)
    assert [h.trust_abi for h in fleet.hosts.values()] == ["trust", "none", "none", "trust"]


def test_override_patches_one_device_only_on_chosen_host():
    data = guest_scenario(hosts={"count": 2, "pattern": "h{index}"},
                          overrides=[{"index": 2, "devices": {"0000:2a:00.0": {"profile": "x"}}}])
    fleet = scenario.build(data)
    assert (fleet.hosts["h1"].devices["0000:2a:00.0"].profile, fleet.hosts["h2"].devices["0000:2a:00.0"].profile) == (None, "x")


def test_override_add_devices():
    data = guest_scenario(overrides=[{"index": 1, "add_devices": [
        {"bdf": "0000:5e:00.0", "vendor": "0x144d", "device": "0xa80a", "class": "0x010802"}]}])
    assert "0000:5e:00.0" in scenario.build(data).hosts["cvm"].devices


def test_sriov_vf_names_follow_stride():
    data = guest_scenario()
    data["devices"][0] = dict(data["devices"][0], sriov={"count": 3, "first_vf": "0000:18:00.6", "stride": 1})
    h = scenario.build(copy.deepcopy(data)).hosts["cvm"]
    assert h.devices["0000:18:00.0"].vfs == ["0000:18:00.6", "0000:18:00.7", "0000:18:01.0"]
