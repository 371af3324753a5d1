"""The evidence provider of the simulator's netlink endpoint: scenario data -> real evidence objects.

``EvidenceProvider(fleet, pki_dir=None)`` is the ``provider`` callable of
``tdisp_sim.views.netlink.EvidenceServer``: ``provider(host, device, types, nonce)`` returns
``{type name: bytes}`` for the requested types, built with ``tdisp_sim.evidence.build`` from

* ``fleet.evidence_spec["profiles"][device.profile]``: what the device measures and reports, and
* ``fleet.evidence_spec["pki"][device.pki]["chain"]``: which test-PKI chain its slot holds
  (``valid`` or one of ``pki.VARIANTS``, e.g. ``expired``, ``wrong_root``).

Scenario profile keys (everything else is passed to ``build.DeviceProfile`` unchanged)::

    firmware_version: "96.00.5E.00.01"
    svn: 3
    measurements:                       # index, DMTF value type, and one of:
      - {index: 1, type: immutable_rom, value_seed: "h100/rom/1.0"}   # digest = H(seed) in the profile's
      - {index: 2, type: mutable_firmware, digest: "sha384:..."}     # measurement hash (default sha384)
    interface:                          # the TDISP interface report
      no_fw_update: true                # INTERFACE_INFO bits: no_fw_update, dma_without_pasid,
      dma_without_pasid: true           #   dma_with_pasid, ats, prs, xt_mode
      p2p: false                        # accepted and ignored: the report has no such field
      mmio_ranges: [{bar: 0, size: "0x1000000"}]   # or {first_page, pages, range_id, attributes}
      msix_message_control: 0           # also lnr_control, tph_control, device_specific_info (hex)

A device without a profile gets a generic one derived from its vendor and device ids; a device
without a PKI name gets the ``valid`` chain.

Caching: per (host, device, generation, profile, pki) the certificate chain, VCA and interface
report are built once; the measurements are signed per request when a nonce is given, and once per
generation otherwise (the TSM's own nonce at lock time, derived from host, device and generation:
deterministic, so the same generation always serves the same bytes).

The PKI: with ``pki_dir`` the CAs and device leaves are loaded from it (``TestPki.load``) and leaves
that are missing are issued and saved there, so a scenario serves the same chains across restarts;
without it everything lives in memory for the life of the process. A device's leaf is named
``<host>_<bdf>`` in the PKI.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..kernel import Device, Fleet, Host
from .build import HASH_SIZES, DeviceEvidence, DeviceProfile
from .pki import VALID, VARIANTS, TestPki

PAGE = 4096
INTERFACE_FLAGS = ("no_fw_update", "dma_without_pasid", "dma_with_pasid", "ats", "prs", "xt_mode")
INTERFACE_IGNORED = ("p2p",)
INTERFACE_FIELDS = ("msix_message_control", "lnr_control", "tph_control", "device_specific_info")
_SEED_HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512,
                "sha3_256": hashlib.sha3_256, "sha3_384": hashlib.sha3_384, "sha3_512": hashlib.sha3_512}


class ProviderError(ValueError):
    """Scenario evidence data the builder cannot use (the server answers EIO and logs this text)."""


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise ProviderError("%s: expected an integer, got %r" % (where, value))
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            pass
    raise ProviderError("%s: expected an integer or a 0x string, got %r" % (where, value))


def profile_from_scenario(name: str, spec: Mapping[str, Any]) -> DeviceProfile:
    """A scenario profile (see the module docstring) as a validated ``build.DeviceProfile``."""
    if not isinstance(spec, Mapping):
        raise ProviderError("evidence.profiles.%s: expected a mapping" % name)
    data: Dict[str, Any] = {k: v for k, v in spec.items() if k not in ("measurements", "interface")}
    hash_algo = data.get("measurement_hash_algo", "sha384")
    if hash_algo not in _SEED_HASHES:
        raise ProviderError("evidence.profiles.%s.measurement_hash_algo: %r is not one of %s" % (name, hash_algo, ", ".join(_SEED_HASHES)))
    blocks = []
    for i, m in enumerate(spec.get("measurements") or []):
        where = "evidence.profiles.%s.measurements[%d]" % (name, i)
        if not isinstance(m, Mapping) or "index" not in m or "type" not in m:
            raise ProviderError("%s: expected a mapping with index and type" % where)
        block = {k: v for k, v in m.items() if k != "value_seed"}
        if "value_seed" in m:
            seed = m["value_seed"]
            if not isinstance(seed, str):
                raise ProviderError("%s.value_seed: expected a string" % where)
            block["value"] = _SEED_HASHES[hash_algo](seed.encode("utf-8")).digest()[:HASH_SIZES[hash_algo]]
        elif "value" not in m and "digest" not in m:
            raise ProviderError("%s: needs value_seed, value or digest" % where)
        blocks.append(block)
    data["measurements"] = blocks
    interface = spec.get("interface") or {}
    if not isinstance(interface, Mapping):
        raise ProviderError("evidence.profiles.%s.interface: expected a mapping" % name)
    unknown = set(interface) - set(INTERFACE_FLAGS) - set(INTERFACE_IGNORED) - set(INTERFACE_FIELDS) - {"mmio_ranges"}
    if unknown:
        raise ProviderError("evidence.profiles.%s.interface: unknown keys %s" % (name, ", ".join(sorted(unknown))))
    if interface:
        data["interface_info"] = {flag: bool(interface.get(flag, False)) for flag in INTERFACE_FLAGS}
    for key in INTERFACE_FIELDS:
        if key in interface:
            data[key] = interface[key] if key == "device_specific_info" else _int(interface[key], "evidence.profiles.%s.interface.%s" % (name, key))
    ranges = []
    next_page = 0x100000  # the simulated guest MMIO window starts at 4 GiB
    for i, r in enumerate(interface.get("mmio_ranges") or []):
        where = "evidence.profiles.%s.interface.mmio_ranges[%d]" % (name, i)
        if not isinstance(r, Mapping):
            raise ProviderError("%s: expected a mapping" % where)
        if "first_page" in r:
            ranges.append(dict(r))
            continue
        size = _int(r.get("size"), where + ".size")
        if size <= 0 or size % PAGE:
            raise ProviderError("%s.size: %#x is not a positive multiple of 4 KiB" % (where, size))
        pages = size // PAGE
        first = (next_page + pages - 1) // pages * pages if pages & (pages - 1) == 0 else next_page  # naturally aligned BARs
        ranges.append({"first_page": first, "pages": pages, "range_id": _int(r.get("bar", i), where + ".bar"),
                       "attributes": r.get("attributes", 0)})
        next_page = first + pages
    if ranges or "mmio_ranges" in interface:
        data["mmio_ranges"] = ranges
    try:
        profile = DeviceProfile.from_dict(data)
        profile.validate()
    except (ValueError, KeyError, TypeError) as exc:
        raise ProviderError("evidence.profiles.%s: %s" % (name, exc)) from None
    return profile


def generic_profile(device: Device) -> DeviceProfile:
    """What a device without a profile reports: one ROM and one firmware measurement seeded by its ids."""
    ids = "%s:%s" % (device.vendor, device.device)
    return profile_from_scenario("(generic %s)" % ids, {
        "firmware_version": "0.0.0",
        "svn": 0,
        "measurements": [{"index": 1, "type": "immutable_rom", "value_seed": "generic/rom/" + ids},
                         {"index": 2, "type": "mutable_firmware", "value_seed": "generic/fw/" + ids}],
        "interface": {"no_fw_update": True, "dma_without_pasid": True, "mmio_ranges": [{"bar": 0, "size": "0x100000"}]},
    })


class EvidenceProvider:
    """``provider(host, device, types, nonce)`` for ``EvidenceServer`` (see the module docstring)."""

    def __init__(self, fleet: Fleet, pki_dir: Optional[str] = None) -> None:
        self.fleet = fleet
        self.pki_dir = Path(pki_dir) if pki_dir else None
        self._pki: Optional[TestPki] = None
        self._profiles: Dict[str, DeviceProfile] = {}
        self._evidence: Dict[Tuple[str, str], Tuple[Tuple[Any, ...], DeviceEvidence, Dict[str, bytes]]] = {}
        self._lock = threading.Lock()

    # -- inputs ---------------------------------------------------------------------------------------------------
    @property
    def spec(self) -> Mapping[str, Any]:
        return getattr(self.fleet, "evidence_spec", None) or {}

    @property
    def pki(self) -> TestPki:
        """The scenario's test PKI (loaded from, or created in, ``pki_dir``)."""
        if self._pki is None:
            if self.pki_dir is not None and (self.pki_dir / "ca" / "root.cert.pem").exists():
                self._pki = TestPki.load(self.pki_dir)
            else:
                self._pki = TestPki.generate()
                if self.pki_dir is not None:
                    self._pki.save(self.pki_dir)
        return self._pki

    def trust_anchor_pem(self) -> bytes:
        """The root CA certificate (PEM) that valid chains lead to: what a reference manifest trusts."""
        from cryptography.hazmat.primitives import serialization
        return self.pki.trust_anchor.public_bytes(serialization.Encoding.PEM)

    def _profile(self, device: Device) -> DeviceProfile:
        name = device.profile
        if name is None:
            key = "\0generic:%s:%s" % (device.vendor, device.device)
            if key not in self._profiles:
                self._profiles[key] = generic_profile(device)
            return self._profiles[key]
        profiles = self.spec.get("profiles") or {}
        if name not in profiles:
            raise ProviderError("device %s names evidence profile %r, which evidence.profiles does not define" % (device.bdf, name))
        # rebuilt when the scenario's spec object changes (a reload), cached otherwise
        key = "%s\0%d" % (name, id(profiles[name]))
        if key not in self._profiles:
            self._profiles[key] = profile_from_scenario(name, profiles[name])
        return self._profiles[key]

    def _variant(self, device: Device) -> str:
        name = device.pki
        if name is None:
            return VALID
        table = self.spec.get("pki") or {}
        entry = table.get(name) if isinstance(table, Mapping) else None
        if entry is None and isinstance(table, (list, tuple)) and name in table:
            entry = {"chain": name}
        if entry is None:
            raise ProviderError("device %s names PKI variant %r, which evidence.pki does not define" % (device.bdf, name))
        chain = entry.get("chain", name) if isinstance(entry, Mapping) else entry
        if chain != VALID and chain not in VARIANTS:
            raise ProviderError("evidence.pki.%s.chain: %r is not one of %s" % (name, chain, ", ".join((VALID,) + VARIANTS)))
        return chain

    def _leaf_name(self, host: Host, device: Device) -> str:
        return "%s_%s" % (host.name, device.bdf)

    def _chain(self, host: Host, device: Device, variant: str):
        pki = self.pki
        leaf = self._leaf_name(host, device)
        if variant not in pki.leaves.get(leaf, {}):
            pki.add_device(leaf, () if variant == VALID else (variant,))
            if self.pki_dir is not None:
                for name, identity in pki.leaves[leaf].items():
                    stem = self.pki_dir / "devices" / leaf / name
                    if not Path(str(stem) + ".cert.pem").exists():
                        identity.save(stem)
        return pki.leaf(leaf, variant).key, pki.chain(leaf, variant)

    @staticmethod
    def lock_nonce(host: Host, device: Device) -> bytes:
        """The nonce the TSM used when it gathered evidence for this generation (no caller nonce)."""
        return hashlib.sha256(("coco.tdisp simulator lock nonce\0%s\0%s\0%d" % (host.name, device.bdf, device.generation)).encode()).digest()

    # -- the provider -------------------------------------------------------------------------------------------------
    def __call__(self, host: Host, device: Device, types: List[str], nonce: Optional[bytes]) -> Dict[str, bytes]:
        with self._lock:
            profile = self._profile(device)
            variant = self._variant(device)
            key = (host.name, device.bdf)
            state = (device.generation, id(profile), variant)
            cached = self._evidence.get(key)
            if cached is None or cached[0] != state:
                leaf_key, chain = self._chain(host, device, variant)
                evidence = DeviceEvidence(profile, leaf_key, chain)
                fixed = {"vca": evidence.vca, "report": evidence.report, "cert%d" % profile.slot_id: evidence.cert_chain,
                         "measurements": evidence.measurements(self.lock_nonce(host, device))}
                cached = (state, evidence, fixed)
                self._evidence[key] = cached
            _state, evidence, fixed = cached
            out = {}
            for name in types:
                if name == "measurements" and nonce is not None:
                    # the builder takes SPDM's 32-byte nonce; a longer pci-tsm nonce is hashed down to one
                    out[name] = evidence.measurements(nonce if len(nonce) <= 32 else hashlib.sha256(nonce).digest())
                else:
                    out[name] = fixed.get(name, b"")   # empty certificate slots
            return out
