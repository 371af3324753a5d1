"""Scenario sections turned into the model: hosts and groups, TSMs, drivers, devices (templates,
SR-IOV, overrides), their boot state, and triggers."""

from __future__ import annotations

import copy
import fnmatch
import re
from typing import Any

from .. import kernel as k
from ..faults import FAULTS
from ..faults.triggers import TRIGGER_EVENTS, Trigger
from .fields import (DEVICE_KEYS, SRIOV_KEYS, TSM_KEYS, DRIVER_KEYS, TRIGGER_KEYS, STATES, _HEX_ID,
                     _HEX_CLASS, _HEX_REV, _UNSET, _Ctx, _mapping, _list, _bool, _int, _choice,
                     _hex, _bdf, _index_set, _globs)


def _hosts(ctx: _Ctx, spec: Any) -> list[tuple[str, int]]:
    """[(name, index)] in scenario order."""
    if spec is None:
        raise ctx.fail("hosts", "missing (give count and pattern, or names)")
    if isinstance(spec, list):
        spec = {"names": spec}
    _mapping(ctx, "hosts", spec, {"count", "pattern", "start", "names"})
    if "names" in spec:
        if "count" in spec or "pattern" in spec:
            raise ctx.fail("hosts", "give either names or count and pattern, not both")
        names = _list(ctx, "hosts.names", spec["names"])
        out = []
        for i, n in enumerate(names):
            if not isinstance(n, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", n):
                raise ctx.fail("hosts.names[%d]" % i, "%r is not a host name (letters, digits, . _ -)" % (n,))
            out.append((n, i + 1))
    else:
        count = _int(ctx, "hosts.count", spec.get("count"), 1, 100000)
        pattern = spec.get("pattern", "host-{index:04d}")
        start = _int(ctx, "hosts.start", spec.get("start", 1))
        if not isinstance(pattern, str) or "{index" not in pattern:
            raise ctx.fail("hosts.pattern", "must contain {index} (e.g. gpu-{index:03d})")
        out = []
        for i in range(start, start + count):
            try:
                n = pattern.format(index=i)
            except (KeyError, ValueError, IndexError) as e:
                raise ctx.fail("hosts.pattern", "cannot format %r: %s" % (pattern, e)) from None
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", n):
                raise ctx.fail("hosts.pattern", "makes %r, not a host name (letters, digits, . _ -)" % n)
            out.append((n, i))
    seen = set()
    for n, _ in out:
        if n in seen:
            raise ctx.fail("hosts", "host name %s repeats" % n)
        seen.add(n)
    return out


def _select(ctx: _Ctx, where: str, sel: dict, hosts: list[tuple[str, int]]) -> list[str]:
    """Hosts chosen by ``hosts`` (globs) and/or ``index`` (both must match when both are given)."""
    globs = _globs(ctx, where + ".hosts", sel["hosts"]) if "hosts" in sel else None
    idx = _index_set(ctx, where + ".index", sel["index"]) if "index" in sel else None
    if globs is None and idx is None:
        raise ctx.fail(where, "select hosts with hosts (name globs) or index")
    out = []
    for name, i in hosts:
        if globs is not None and not any(fnmatch.fnmatchcase(name, g) for g in globs):
            continue
        if idx is not None and i not in idx:
            continue
        out.append(name)
    return out


def _groups(ctx: _Ctx, spec: Any, hosts: list[tuple[str, int]]) -> dict[str, list]:
    if spec is None:
        return {}
    spec = _mapping(ctx, "groups", spec, set(spec) if isinstance(spec, dict) else set())
    out = {}
    for gname, sel in spec.items():
        where = "groups.%s" % gname
        if not isinstance(gname, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", gname):
            raise ctx.fail(where, "group names are letters, digits and _ (Ansible rules)")
        if gname in ("all", "ungrouped"):
            raise ctx.fail(where, "%s is Ansible's own group" % gname)
        if isinstance(sel, (str, list)):
            sel = {"hosts": sel}
        _mapping(ctx, where, sel, {"hosts", "index"})
        members = _select(ctx, where, sel, hosts)
        if not members:
            raise ctx.fail(where, "selects no host")
        out[gname] = members
    return out


# ---------------------------------------------------------------------------------------------
# TSMs, drivers, devices
# ---------------------------------------------------------------------------------------------

def _tsms(ctx: _Ctx, where: str, spec: Any) -> list[dict]:
    out = []
    seen = set()
    for i, t in enumerate(_list(ctx, where, spec if spec is not None else [])):
        w = "%s[%d]" % (where, i)
        _mapping(ctx, w, t, TSM_KEYS)
        tid = _int(ctx, w + ".id", t.get("id"), 0, 2 ** 31 - 1)
        if tid in seen:
            raise ctx.fail(w + ".id", "tsm%d repeats" % tid)
        seen.add(tid)
        mode = _choice(ctx, w + ".mode", t.get("mode"), ("link", "devsec", "none"))
        faux = t.get("faux")
        if faux is not None and (not isinstance(faux, str) or not re.fullmatch(r"[A-Za-z0-9_]+", faux)):
            raise ctx.fail(w + ".faux", "must be a faux device name like devsec_link_tsm")
        streams = _int(ctx, w + ".streams", t.get("streams", k.DEFAULT_STREAMS), 0, 256)
        out.append({"id": tid, "mode": mode, "faux": faux, "streams": streams})
    return out


def _drivers(ctx: _Ctx, where: str, spec: Any) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for i, d in enumerate(_list(ctx, where, spec if spec is not None else [])):
        w = "%s[%d]" % (where, i)
        if isinstance(d, str):
            d = {"name": d}
        _mapping(ctx, w, d, DRIVER_KEYS)
        name = d.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ctx.fail(w + ".name", "must be a driver name like nvidia")
        if name == k.ROOT_PORT_DRIVER:
            raise ctx.fail(w + ".name", "%s is the simulator's own root port driver" % name)
        trust = d.get("trust", k.DEVICE_DEFAULT_TRUST)
        if trust is not None and not isinstance(trust, str):
            raise ctx.fail(w + ".trust", "must be a string (none, adversary, auto, tcb, or any text)")
        out[name] = {"name": name, "modular": _bool(ctx, w + ".modular", d.get("modular", True)),
                     "override_only": _bool(ctx, w + ".override_only", d.get("override_only", False)),
                     "loaded": _bool(ctx, w + ".loaded", d.get("loaded", True)),
                     "trust": trust}
    return out


def _vf_bdfs(ctx: _Ctx, where: str, first: str, count: int, stride: int) -> list[str]:
    dom, bus, dev, fn = k.bdf_parts(first)
    rid = bus << 8 | dev << 3 | fn
    out = []
    for i in range(count):
        r = rid + i * stride
        if r > 0xFFFF:
            raise ctx.fail(where, "VF %d runs past bus ff" % i)
        out.append("%s:%02x:%02x.%d" % (dom, r >> 8, (r >> 3) & 0x1F, r & 7))
    return out


def _expand_devices(ctx: _Ctx, where: str, spec: Any, templates: dict) -> list[tuple[str, dict]]:
    """Device entries -> [(where, fields)] with templates applied and bdfs lists expanded."""
    out = []
    for i, entry in enumerate(_list(ctx, where, spec if spec is not None else [])):
        w = "%s[%d]" % (where, i)
        _mapping(ctx, w, entry, DEVICE_KEYS)
        fields: dict = {}
        if "template" in entry:
            tname = entry["template"]
            if tname not in templates:
                raise ctx.fail(w + ".template", "unknown template %r (templates: %s)"
                               % (tname, ", ".join(sorted(templates)) or "none"))
            fields.update(copy.deepcopy(templates[tname]))
        fields.update({key: copy.deepcopy(v) for key, v in entry.items() if key != "template"})
        if "bdfs" in fields:
            if "bdf" in fields:
                raise ctx.fail(w, "give bdf or bdfs, not both")
            bdfs = _list(ctx, w + ".bdfs", fields.pop("bdfs"))
            for j, b in enumerate(bdfs):
                f = dict(fields)
                f["bdf"] = _bdf(ctx, "%s.bdfs[%d]" % (w, j), b)
                out.append(("%s(%s)" % (w, f["bdf"]), f))
        else:
            if "bdf" not in fields:
                raise ctx.fail(w + ".bdf", "missing")
            fields["bdf"] = _bdf(ctx, w + ".bdf", fields["bdf"])
            out.append((w, fields))
    return out


class _HostBuild:
    """Everything one host needs, before the kernel objects are made."""

    def __init__(self, name: str, index: int, top: dict) -> None:
        self.name = name
        self.index = index
        self.trust_abi = top["trust_abi"]
        self.kernel = top["kernel"]
        self.devsec_modules = top["devsec_modules"]
        self.accept_repeat = top["accept_repeat"]
        self.modules_autoprobe = top["modules_autoprobe"]
        self.secure_streams = top["secure_streams"]
        self.tsms = top["tsms"]
        self.drivers = top["drivers"]
        self.devices: list[tuple[str, dict]] = top["devices"]
        self.copied = False

    def own(self) -> None:
        """Copy shared lists before an override changes them (hosts share the defaults)."""
        if not self.copied:
            self.tsms = list(self.tsms)
            self.drivers = dict(self.drivers)
            self.devices = list(self.devices)
            self.copied = True


def _apply_override(ctx: _Ctx, where: str, ov: dict, hb: _HostBuild, templates: dict) -> None:
    hb.own()
    if "kernel" in ov:
        hb.kernel = _choice(ctx, where + ".kernel", ov["kernel"], k.KERNEL_PROFILES)
    if "trust_abi" in ov:
        hb.trust_abi = _choice(ctx, where + ".trust_abi", ov["trust_abi"], k.TRUST_ABIS)
    if "accept_repeat" in ov:
        hb.accept_repeat = _choice(ctx, where + ".accept_repeat", ov["accept_repeat"], ("idempotent", "v2"))
    if "modules_autoprobe" in ov:
        v = ov["modules_autoprobe"]
        hb.modules_autoprobe = None if v is None else _bool(ctx, where + ".modules_autoprobe", v)
    if "secure_streams" in ov:
        hb.secure_streams = _int(ctx, where + ".secure_streams", ov["secure_streams"], 0, 256)
    if "tsms" in ov:
        hb.tsms = _tsms(ctx, where + ".tsms", ov["tsms"])
    if "drivers" in ov:
        hb.drivers.update(_drivers(ctx, where + ".drivers", ov["drivers"]))
    if "remove_devices" in ov:
        gone = {_bdf(ctx, "%s.remove_devices[%d]" % (where, i), b)
                for i, b in enumerate(_list(ctx, where + ".remove_devices", ov["remove_devices"]))}
        have = {f["bdf"] for _, f in hb.devices}
        missing = sorted(gone - have)
        if missing:
            raise ctx.fail(where + ".remove_devices", "host %s has no device %s" % (hb.name, missing[0]))
        hb.devices = [(w, f) for w, f in hb.devices if f["bdf"] not in gone]
    if "devices" in ov:
        patches = ov["devices"]
        if not isinstance(patches, dict):
            raise ctx.fail(where + ".devices", "must map a BDF to the fields to change")
        for bdf, patch in patches.items():
            w = "%s.devices[%s]" % (where, bdf)
            bdf = _bdf(ctx, w, bdf)
            _mapping(ctx, w, patch, DEVICE_KEYS - {"template", "bdf", "bdfs"})
            for j, (_, f) in enumerate(hb.devices):
                if f["bdf"] == bdf:
                    nf = dict(f)
                    nf.update(copy.deepcopy(patch))
                    hb.devices[j] = (w, nf)
                    break
            else:
                raise ctx.fail(w, "host %s has no device %s" % (hb.name, bdf))
    if "add_devices" in ov:
        hb.devices.extend(_expand_devices(ctx, where + ".add_devices", ov["add_devices"], templates))


# ---------------------------------------------------------------------------------------------
# building the fleet
# ---------------------------------------------------------------------------------------------

def _device_objects(ctx: _Ctx, hb: _HostBuild, evidence: dict) -> list[tuple[str, k.Device, dict]]:
    """Device fields -> kernel Devices (with VFs), checked; returns (where, device, fields)."""
    profiles = evidence.get("profiles") if isinstance(evidence.get("profiles"), dict) else None
    pki = evidence.get("pki")
    pki_names = set(pki) if isinstance(pki, (dict, list)) else None
    out = []
    for w, f in hb.devices:
        for req in ("vendor", "device", "class"):
            if req not in f:
                raise ctx.fail("%s.%s" % (w, req), "missing")
        dev = k.Device(
            bdf=f["bdf"],
            vendor=_hex(ctx, w + ".vendor", f["vendor"], _HEX_ID, "'0x10de'"),
            device=_hex(ctx, w + ".device", f["device"], _HEX_ID, "'0x2330'"),
            klass=_hex(ctx, w + ".class", f["class"], _HEX_CLASS, "'0x030200'"),
            subsystem_vendor=_hex(ctx, w + ".subsystem_vendor", f.get("subsystem_vendor", f["vendor"]), _HEX_ID, "'0x10de'"),
            subsystem_device=_hex(ctx, w + ".subsystem_device", f.get("subsystem_device", "0x0000"), _HEX_ID, "'0x16c1'"),
            revision=_hex(ctx, w + ".revision", f.get("revision", "0x00"), _HEX_REV, "'0xa1'"),
            tee=_bool(ctx, w + ".tee", f.get("tee", False)),
            doe=_bool(ctx, w + ".doe", f.get("doe", True)),
            untrusted=_bool(ctx, w + ".untrusted", f.get("untrusted", False)),
        )
        dev.pf0 = _bool(ctx, w + ".pf0", f.get("pf0", dev.function == 0 and dev.tee))
        for key in ("profile", "pki"):
            v = f.get(key)
            if v is not None and not isinstance(v, str):
                raise ctx.fail("%s.%s" % (w, key), "must be a name")
        dev.profile = f.get("profile")
        dev.pki = f.get("pki")
        if dev.profile is not None and profiles is not None and dev.profile not in profiles:
            raise ctx.fail(w + ".profile", "unknown evidence profile %r (evidence.profiles: %s)"
                           % (dev.profile, ", ".join(sorted(profiles))))
        if dev.pki is not None and pki_names is not None and dev.pki not in pki_names:
            raise ctx.fail(w + ".pki", "unknown PKI variant %r (evidence.pki: %s)" % (dev.pki, ", ".join(sorted(pki_names))))
        dev.generation = _int(ctx, w + ".generation", f.get("generation", 1), 1)
        out.append((w, dev, f))
        if "sriov" in f:
            sw = w + ".sriov"
            s = _mapping(ctx, sw, f["sriov"], SRIOV_KEYS)
            count = _int(ctx, sw + ".count", s.get("count"), 1, 256)
            first = _bdf(ctx, sw + ".first_vf", s.get("first_vf"))
            stride = _int(ctx, sw + ".stride", s.get("stride", 1), 1, 256)
            for vbdf in _vf_bdfs(ctx, sw, first, count, stride):
                vf = k.Device(bdf=vbdf, vendor=dev.vendor,
                              device=_hex(ctx, sw + ".vf_device", s.get("vf_device", dev.device), _HEX_ID, "'0x2331'"),
                              klass=dev.klass, subsystem_vendor=dev.subsystem_vendor,
                              subsystem_device=dev.subsystem_device, revision=dev.revision,
                              tee=_bool(ctx, sw + ".tee", s.get("tee", dev.tee)), pf0=False, physfn=dev.bdf,
                              doe=False)
                vf.profile = s.get("profile", dev.profile)
                vf.pki = s.get("pki", dev.pki)
                dev.vfs.append(vbdf)
                # sriov.driver is the VFs' matching driver; they are autoprobed at boot like PFs.
                vfields = {"bdf": vbdf, "preferred_driver": s.get("driver")}
                out.append(("%s(vf %s)" % (sw, vbdf), vf, vfields))
    return out


def _build_host(ctx: _Ctx, fleet: k.Fleet, hb: _HostBuild, evidence: dict) -> k.Host:
    h = fleet.add_host(hb.name, trust_abi=hb.trust_abi, accept_repeat=hb.accept_repeat,
                       modules_autoprobe=hb.modules_autoprobe, secure_streams=hb.secure_streams,
                       kernel=hb.kernel)
    for t in hb.tsms:
        h.tsms[t["id"]] = k.Tsm(t["id"], t["mode"], faux=t["faux"], streams=t["streams"])
    for d in hb.drivers.values():
        h.drivers[d["name"]] = k.Driver(d["name"], modular=d["modular"], trust_param=d["trust"],
                                        override_only=d["override_only"], loaded=d["loaded"])
    # samples/devsec modules loaded at boot, in this order (kernel.modules makes their TSMs and devices)
    for m in hb.devsec_modules:
        h.modprobe(m)
    devsec = sorted(t.id for t in h.tsms.values() if t.mode == "devsec")
    objs = _device_objects(ctx, hb, evidence)
    # Root-bus devices first, so that the root ports made for the others never take their names.
    for w, dev, f in sorted(objs, key=lambda o: k.bdf_parts(o[1].bdf)[1] != 0):
        try:
            h.add_device(dev)
        except ValueError:
            raise ctx.fail(w + ".bdf", "device %s repeats on host %s" % (dev.bdf, h.name)) from None
    for w, dev, f in objs:
        def F(name: str, w: str = w) -> str:
            return "%s.%s (host %s)" % (w, name, h.name)
        pref = f.get("preferred_driver", _UNSET)
        drv_spec = f.get("driver", _UNSET)
        if pref is _UNSET:
            pref = drv_spec if isinstance(drv_spec, str) else None
        if pref is not None and pref not in h.drivers:
            raise ctx.fail(F("preferred_driver"), "driver %r is not in drivers (%s)" % (pref, ", ".join(sorted(h.drivers)) or "none"))
        dev.preferred_driver = pref
        ov = f.get("driver_override")
        if ov is not None and not isinstance(ov, str):
            raise ctx.fail(F("driver_override"), "must be a driver name or null")
        dev.driver_override = ov
        # TDISP state
        state = _choice(ctx, F("state"), f.get("state", "unlocked"), STATES)
        if state != "unlocked":
            if not dev.tee:
                raise ctx.fail(F("state"), "%s needs a TEE-capable device (tee: true)" % state)
            if not devsec:
                raise ctx.fail(F("state"), "%s needs a devsec TSM on host %s" % (state, h.name))
            lock = _int(ctx, F("lock_tsm"), f.get("lock_tsm", devsec[0]))
            if lock not in devsec:
                raise ctx.fail(F("lock_tsm"), "tsm%d is not a devsec TSM of host %s" % (lock, h.name))
            dev.lock_tsm = lock
            dev.tdisp = STATES[state]
            dev.accepted = state == "run" or (state == "error" and _bool(ctx, F("accepted"), f.get("accepted", True)))
            dev.encrypted_mmio_resources = 1 if dev.accepted else 0
        elif "lock_tsm" in f or "accepted" in f:
            raise ctx.fail(F("lock_tsm"), "only for state locked, run or error")
        # trust values
        if "trust" in f:
            t = _int(ctx, F("trust"), f["trust"], 0, 3)
            if h.trust_abi == "trust":
                if t == 3 and dev.tdisp != k.RUN:
                    raise ctx.fail(F("trust"), "3 needs state run (the kernel refuses it otherwise)")
                if dev.tdisp == k.ERROR and t != 0:
                    raise ctx.fail(F("trust"), "a device in state error has trust 0 (the kernel reset it)")
            dev.trust = t
        if "trust_policy" in f:
            dev.trust_policy = _choice(ctx, F("trust_policy"), f["trust_policy"], k.TRUST_POLICY_WORDS)
        if "module_trust" in f:
            dev.effective_module_trust = _choice(ctx, F("module_trust"), f["module_trust"], k.MODULE_TRUST_WORDS)
        # driver bound at boot: explicit names must bind; omitted means autoprobe (may not bind)
        if drv_spec is _UNSET:
            if dev.preferred_driver is not None or dev.driver_override is not None:
                h.autoprobe(dev, "boot")
        elif drv_spec is not None:
            if drv_spec not in h.drivers:
                raise ctx.fail(F("driver"), "driver %r is not in drivers (%s)" % (drv_spec, ", ".join(sorted(h.drivers)) or "none"))
            try:
                h.bind_driver(dev, drv_spec, "boot")
            except OSError as e:
                raise ctx.fail(F("driver"), "the kernel refuses to bind %s: %s" % (drv_spec, e.strerror)) from None
    return h


def _triggers(ctx: _Ctx, spec: Any, hosts: list[tuple[str, int]]) -> list[Trigger]:
    out = []
    names = [n for n, _ in hosts]
    for i, t in enumerate(_list(ctx, "triggers", spec if spec is not None else [])):
        w = "triggers[%d]" % i
        if isinstance(t, dict) and True in t and "on" not in t:
            t = dict(t)
            t["on"] = t.pop(True)  # YAML 1.1 reads an unquoted key "on" as true
        _mapping(ctx, w, t, TRIGGER_KEYS)
        host = t.get("host")
        if not isinstance(host, str):
            raise ctx.fail(w + ".host", "missing (a host name or glob)")
        if not any(fnmatch.fnmatchcase(n, host) for n in names):
            raise ctx.fail(w + ".host", "%r matches no host" % host)
        bdf = t.get("bdf")
        if bdf is not None and not isinstance(bdf, str):
            raise ctx.fail(w + ".bdf", "must be a device name or glob")
        on = _choice(ctx, w + ".on", t.get("on"), TRIGGER_EVENTS)
        fault = _choice(ctx, w + ".fault", t.get("fault"), FAULTS)
        if FAULTS[fault][0] and bdf is None:
            raise ctx.fail(w + ".bdf", "fault %s needs a device" % fault)
        args = t.get("args", [])
        if not isinstance(args, list):
            args = [args]
        times = _int(ctx, w + ".times", t.get("times", 1))
        out.append(Trigger(host=host, bdf=bdf.lower() if bdf else None, on=on, fault=fault,
                             args=[str(a) for a in args], times=times))
    return out
