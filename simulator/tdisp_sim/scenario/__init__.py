"""Scenarios: YAML descriptions of a simulated fleet, turned into a ``kernel.Fleet``.

The format is documented field by field in docs/simulator.md ("Scenario format"). Every error is
a ``ScenarioError`` whose message is one line naming the scenario and the field, for example::

    scenario gpu-fleet: devices[2].state: 'runn' is not one of unlocked, locked, run, error

``load(name_or_path)`` finds a scenario (a path, or a name in ``tdisp_sim/scenarios/``),
``build(data)`` turns parsed YAML into a ``Fleet``. Modules: ``fields`` (key sets, one-line field
checks), ``hosts`` (each section turned into the model, and the triggers).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import yaml

from .. import kernel as k
from ..faults.triggers import attach
from .fields import (ScenarioError, TOP_KEYS, DEVICE_KEYS, OVERRIDE_KEYS, _Ctx, _mapping, _list,
                     _bool, _int, _choice)
from .hosts import (_hosts, _select, _groups, _tsms, _drivers, _expand_devices, _HostBuild,
                    _apply_override, _build_host, _triggers)

SCENARIO_DIR = Path(__file__).parent.with_name("scenarios")


# ---------------------------------------------------------------------------------------------
# finding and reading
# ---------------------------------------------------------------------------------------------

def available() -> list[str]:
    """Names of the scenarios shipped with the simulator."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yml"))


def resolve(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yml", ".yaml") or os.sep in name_or_path or p.exists():
        if not p.is_file():
            raise ScenarioError("scenario %s: no such file" % name_or_path)
        return p
    cand = SCENARIO_DIR / (name_or_path + ".yml")
    if not cand.is_file():
        raise ScenarioError("scenario %s: not found (shipped scenarios: %s; or give a path to a .yml file)"
                            % (name_or_path, ", ".join(available())))
    return cand


def read(name_or_path: str) -> dict:
    path = resolve(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = " line %d" % (mark.line + 1) if mark is not None else ""
        raise ScenarioError("scenario %s: not valid YAML%s: %s" % (path.stem, where,
                            str(getattr(e, "problem", e)).splitlines()[0])) from None
    if not isinstance(data, dict):
        raise ScenarioError("scenario %s: the file must be a mapping of fields" % path.stem)
    data.setdefault("name", path.stem)
    return data


def load(name_or_path: str, **kw: Any) -> k.Fleet:
    return build(read(name_or_path), **kw)


def build(data: dict, log_capacity: int = 200000) -> k.Fleet:
    """Parsed scenario YAML -> a Fleet (raises ScenarioError)."""
    name = str(data.get("name") or "unnamed")
    ctx = _Ctx(name)
    _mapping(ctx, "(top level)", data, TOP_KEYS)
    hosts = _hosts(ctx, data.get("hosts"))
    templates = data.get("templates") or {}
    if not isinstance(templates, dict):
        raise ctx.fail("templates", "must map a template name to device fields")
    for tname, tmpl in templates.items():
        _mapping(ctx, "templates.%s" % tname, tmpl, DEVICE_KEYS - {"template", "bdf", "bdfs"})
    evidence = data.get("evidence") or {}
    if not isinstance(evidence, dict):
        raise ctx.fail("evidence", "must be a mapping (profiles, pki, ...)")
    mod_ap = data.get("modules_autoprobe")
    mods = _list(ctx, "devsec_modules", data.get("devsec_modules") or [])
    top = {
        "kernel": _choice(ctx, "kernel", data.get("kernel", "oot"), k.KERNEL_PROFILES),
        "devsec_modules": [_choice(ctx, "devsec_modules[%d]" % i, m, k.SAMPLE_MODULES) for i, m in enumerate(mods)],
        "trust_abi": _choice(ctx, "trust_abi", data.get("trust_abi", "trust"), k.TRUST_ABIS),
        "accept_repeat": _choice(ctx, "accept_repeat", data.get("accept_repeat", "idempotent"), ("idempotent", "v2")),
        "modules_autoprobe": None if mod_ap is None else _bool(ctx, "modules_autoprobe", mod_ap),
        "secure_streams": _int(ctx, "secure_streams", data.get("secure_streams", k.DEFAULT_STREAMS), 0, 256),
        "tsms": _tsms(ctx, "tsms", data.get("tsms")),
        "drivers": _drivers(ctx, "drivers", data.get("drivers")),
        "devices": _expand_devices(ctx, "devices", data.get("devices"), templates),
    }
    builds = {n: _HostBuild(n, i, top) for n, i in hosts}
    for i, ov in enumerate(_list(ctx, "overrides", data.get("overrides") or [])):
        w = "overrides[%d]" % i
        _mapping(ctx, w, ov, OVERRIDE_KEYS)
        chosen = _select(ctx, w, ov, hosts)
        if not chosen:
            raise ctx.fail(w, "selects no host")
        for n in chosen:
            _apply_override(ctx, w, ov, builds[n], templates)
    fleet = k.Fleet(log_capacity=log_capacity)
    fleet.name = name
    fleet.description = str(data.get("description") or "")
    fleet.evidence_spec = evidence
    fleet.groups = _groups(ctx, data.get("groups"), hosts)
    for n, _ in hosts:
        _build_host(ctx, fleet, builds[n], evidence)
    fleet.triggers = _triggers(ctx, data.get("triggers"), hosts)
    if fleet.triggers:
        attach(fleet)
    # Boot-time binds are not part of the run's history: start the event log afresh.
    fleet.events.clear()
    fleet._seq = itertools.count(1)
    fleet.record(None, None, "scenario_start", scenario=name, hosts=len(fleet.hosts),
                 devices=sum(len(h.endpoints()) for h in fleet.hosts.values()))
    return fleet
