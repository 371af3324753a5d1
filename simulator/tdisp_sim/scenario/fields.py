"""Scenario field checks: the key sets of each section and one-line errors naming the field."""

from __future__ import annotations

import re
from typing import Any, Iterable, Optional


from .. import kernel as k


TOP_KEYS = {"name", "description", "kernel", "devsec_modules", "trust_abi", "accept_repeat", "modules_autoprobe", "secure_streams", "hosts",
            "groups", "tsms", "drivers", "templates", "devices", "overrides", "triggers", "evidence"}
DEVICE_KEYS = {"template", "bdf", "bdfs", "vendor", "device", "class", "subsystem_vendor", "subsystem_device",
               "revision", "tee", "pf0", "doe", "sriov", "preferred_driver", "driver", "driver_override", "state",
               "lock_tsm", "accepted", "trust", "trust_policy", "module_trust", "profile", "pki", "generation",
               "untrusted"}
SRIOV_KEYS = {"count", "first_vf", "stride", "vf_device", "tee", "driver", "profile", "pki"}
TSM_KEYS = {"id", "mode", "faux", "streams"}
DRIVER_KEYS = {"name", "modular", "override_only", "trust", "loaded"}
OVERRIDE_KEYS = {"hosts", "index", "kernel", "trust_abi", "accept_repeat", "modules_autoprobe", "secure_streams", "tsms",
                 "drivers", "remove_devices", "devices", "add_devices"}
TRIGGER_KEYS = {"host", "bdf", "on", "fault", "args", "times"}
STATES = {"unlocked": k.UNLOCKED, "locked": k.LOCKED, "run": k.RUN, "error": k.ERROR}
_HEX_ID = re.compile(r"^0x[0-9a-f]{4}$")
_HEX_CLASS = re.compile(r"^0x[0-9a-f]{6}$")
_HEX_REV = re.compile(r"^0x[0-9a-f]{2}$")
_UNSET = object()


class ScenarioError(ValueError):
    """A scenario that cannot be loaded; the message is one line naming the field."""


class _Ctx:
    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, where: str, what: str) -> ScenarioError:
        return ScenarioError("scenario %s: %s: %s" % (self.name, where, what))


# ---------------------------------------------------------------------------------------------
# finding and reading
# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# field checks
# ---------------------------------------------------------------------------------------------

def _mapping(ctx: _Ctx, where: str, value: Any, keys: set) -> dict:
    if not isinstance(value, dict):
        raise ctx.fail(where, "must be a mapping, not %s" % type(value).__name__)
    unknown = sorted(set(value) - keys)
    if unknown:
        raise ctx.fail("%s.%s" % (where, unknown[0]), "unknown field (known: %s)" % ", ".join(sorted(keys)))
    return value


def _list(ctx: _Ctx, where: str, value: Any) -> list:
    if not isinstance(value, list):
        raise ctx.fail(where, "must be a list, not %s" % type(value).__name__)
    return value


def _bool(ctx: _Ctx, where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ctx.fail(where, "must be true or false, not %r" % (value,))
    return value


def _int(ctx: _Ctx, where: str, value: Any, lo: int = 0, hi: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        rng = "%d..%d" % (lo, hi) if hi is not None else ">= %d" % lo
        raise ctx.fail(where, "must be an integer %s, not %r" % (rng, value))
    return value


def _choice(ctx: _Ctx, where: str, value: Any, choices: Iterable[str]) -> str:
    choices = list(choices)
    if value not in choices:
        raise ctx.fail(where, "%r is not one of %s" % (value, ", ".join(choices)))
    return value


def _hex(ctx: _Ctx, where: str, value: Any, pattern: re.Pattern, example: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ctx.fail(where, "write ids as quoted hex strings like %s (YAML reads 0x.. as a number)" % example)
    if not isinstance(value, str) or not pattern.match(value.lower()):
        raise ctx.fail(where, "%r is not a hex id like %s" % (value, example))
    return value.lower()


def _bdf(ctx: _Ctx, where: str, value: Any) -> str:
    if not isinstance(value, str) or not k.valid_bdf(value.lower()):
        raise ctx.fail(where, "%r is not a PCI device name like 0000:41:00.0" % (value,))
    return value.lower()


def _index_set(ctx: _Ctx, where: str, value: Any) -> set:
    """An index selector: 7, [1, 5], or "1-3,7"."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {value}
    if isinstance(value, list):
        return {_int(ctx, "%s[%d]" % (where, i), v) for i, v in enumerate(value)}
    if isinstance(value, str):
        out: set = set()
        for part in value.split(","):
            part = part.strip()
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not m:
                raise ctx.fail(where, "%r is not an index range like 1-3,7" % value)
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo:
                raise ctx.fail(where, "range %s runs backwards" % part)
            out.update(range(lo, hi + 1))
        return out
    raise ctx.fail(where, "must be an index, a list of indexes or a range string, not %r" % (value,))


def _globs(ctx: _Ctx, where: str, value: Any) -> list:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ctx.fail(where, "must be a host name glob or a list of globs")


# ---------------------------------------------------------------------------------------------
# hosts, groups
# ---------------------------------------------------------------------------------------------
