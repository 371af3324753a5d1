# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""TSM and PCI device discovery, and the device dict (private; may change at any time).

The device dict is the one shape that ``tdisp_device_info`` returns and that ``tdisp_device``
and ``device_trust`` show as ``before``/``after`` (docs/internals.md). Reading never raises for
what the kernel (or a fault) put into a file: a missing attribute, garbage bytes, a lock value
that is not ``tsm<N>``, ``accept`` that is not 0/1 or a trust value out of range leave the field
null and put a one-line reason under ``unknown``.

Rules that the kernel material leaves open, decided here:

* ``tdisp_state`` from the guest attributes (kernel-abi.md section 3): ``tsm/lock`` empty ->
  unlocked; ``tsm/lock`` = tsmN and ``tsm/accept`` 0 -> locked; 1 -> run. A device with only
  host attributes is unlocked while ``tsm/bound`` is empty, else unknown (the host cannot tell
  LOCKED, RUN and ERROR apart). A device without a ``tsm/`` directory is unknown.
* A TSM without ``pci_mode`` (mainline kernels have no such file) is ``link`` when at least one
  device shows host attributes (``tsm/connect`` or ``tsm/bound``, which only a link TSM makes
  visible), else ``unknown`` with the reason.
* Trust ABI probe: the device's ``trust`` file -> ``trust``; its ``trust_policy`` file ->
  ``trust_policy``; else the module of the bound driver (or of ``driver_override``, or of the
  driver the collection's ledger says it unbound) has ``parameters/trust`` -> ``module_param``;
  a device with no such driver on a host where some module has the parameter -> ``module_param``
  with a null level; else ``none``.
* ``module_param`` on a device without a bound driver: ``trust_level`` is the level the module
  would give at the next bind, and ``unknown.trust_level`` says that no driver is bound.
"""

from __future__ import annotations

import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._abi import trust as _trust
from ansible_collections.coco.tdisp.plugins.module_utils._abi.names import (
    ACCEPT, CLASS_TSM, DRIVER_LINK, DRIVER_MODULE, DRIVER_OVERRIDE, GUEST_ATTRS, HOST_ATTRS, ID_ATTRS, MODULES,
    PCI_DEVICES, PCI_DRIVERS, TSM_DIR, TSM_MODES, TSM_PCI_MODE, UNKNOWN, is_bdf, is_id, is_name, is_tsm,
)
from ansible_collections.coco.tdisp.plugins.module_utils._abi.sysfs import PathEscape, Sysfs

FIELDS = ('bdf', 'vendor', 'device', 'class', 'subsystem_vendor', 'subsystem_device', 'driver', 'driver_override',
          'tsm_side', 'lock_holder', 'accepted', 'connected', 'bound', 'tdisp_state', 'trust_abi', 'trust_level',
          'trust_raw', 'unknown')


class Device:
    """One device as read in one phase: the public ``facts`` plus what the writers need."""

    __slots__ = ('bdf', 'dir', 'facts', 'module', 'module_driver', 'tsm_attrs', 'trust_file')

    def __init__(self, bdf: str) -> None:
        self.bdf = bdf
        self.dir: t.Optional[str] = None
        self.module: t.Optional[str] = None          # module whose parameters/trust applies
        self.module_driver: t.Optional[str] = None   # the driver that module belongs to
        self.tsm_attrs: t.FrozenSet[str] = frozenset()
        self.trust_file: t.Optional[str] = None        # 'trust', 'trust_policy', '' (neither), None (not read yet)
        self.facts: t.Dict[str, t.Any] = dict.fromkeys(FIELDS)
        self.facts['bdf'] = bdf
        self.facts['unknown'] = {}


class Reader:
    """Reads devices and TSMs of one sysfs root, caching host-wide lookups for one phase."""

    def __init__(self, sysfs: Sysfs, ledger_drivers: t.Optional[t.Mapping[str, str]] = None) -> None:
        self.sysfs = sysfs
        self.ledger_drivers = dict(ledger_drivers or {})
        self._module_of: t.Dict[str, t.Optional[str]] = {}
        self._param: t.Dict[str, t.Tuple[t.Optional[str], t.Optional[str], t.Optional[str]]] = {}
        self._any_param: t.Optional[bool] = None

    def new_phase(self) -> None:
        self.sysfs.invalidate()
        self._param.clear()

    # -- host-wide ------------------------------------------------------------------------------
    def list_bdfs(self) -> t.Tuple[t.List[str], t.List[str]]:
        """(valid PCI device names, names refused as not a BDF)."""
        try:
            names = self.sysfs.listdir(PCI_DEVICES)
        except OSError:
            return [], []
        good = sorted(n for n in names if is_bdf(n))
        bad = sorted(n for n in names if not is_bdf(n))
        return good, bad

    def any_host_attrs(self, devices: t.Optional[t.Iterable[t.Mapping[str, t.Any]]] = None) -> bool:
        """Whether some device shows host tsm/ attributes (connect or bound: only a link TSM makes them visible)."""
        if devices is not None:
            return any(d.get('tsm_side') in ('host', 'both') for d in devices)
        for bdf in self.list_bdfs()[0]:
            try:
                ddir = self.sysfs.device_dir(bdf)
                if ddir is None or self.sysfs.kind(ddir + '/' + TSM_DIR) != 'dir':
                    continue
                if set(self.sysfs.listdir(ddir + '/' + TSM_DIR)) & set(HOST_ATTRS):
                    return True
            except (OSError, PathEscape):
                continue
        return False

    def tsms(self, devices: t.Optional[t.Iterable[t.Mapping[str, t.Any]]] = None) -> t.List[t.Dict[str, t.Any]]:
        """Registered TSMs: ``{name, mode, unknown}`` (mode ``link``, ``devsec``, ``none`` or ``unknown``).

        ``devices`` (device dicts already read) answer whether host attributes exist, for a TSM
        without ``pci_mode``; without them the device directories are listed when needed."""
        try:
            names = self.sysfs.listdir(CLASS_TSM)
        except OSError:
            return []
        host_attrs: t.Optional[bool] = None
        out = []
        for name in sorted((n for n in names if is_tsm(n)), key=lambda n: int(n[3:])):
            entry: t.Dict[str, t.Any] = {'name': name, 'mode': 'unknown', 'unknown': {}}
            try:
                tdir = self.sysfs.resolve_dir(CLASS_TSM + '/' + name)
            except PathEscape as exc:
                entry['unknown']['mode'] = str(exc)
                out.append(entry)
                continue
            if tdir is None:
                entry['unknown']['mode'] = 'class/tsm/%s does not resolve to a directory' % name
                out.append(entry)
                continue
            raw, why = self.sysfs.read(tdir + '/' + TSM_PCI_MODE)
            if raw in TSM_MODES:
                entry['mode'] = raw
            elif why == 'missing':
                if host_attrs is None:
                    host_attrs = self.any_host_attrs(devices)
                if host_attrs:
                    entry['mode'] = 'link'
                else:
                    entry['unknown']['mode'] = 'no pci_mode file (mainline kernel?) and no device shows host tsm/ attributes'
            elif raw is not None:
                entry['unknown']['mode'] = 'pci_mode: unexpected value %r' % raw
            else:
                entry['unknown']['mode'] = 'pci_mode: %s' % why
            out.append(entry)
        return out

    def module_of(self, driver: str) -> t.Optional[str]:
        """The module of a PCI driver (bus/pci/drivers/<drv>/module), or None for a built-in driver."""
        if driver in self._module_of:
            return self._module_of[driver]
        mod = None
        if is_name(driver):
            mod = self.sysfs.link_name(PCI_DRIVERS + '/' + driver + '/' + DRIVER_MODULE)[0]
            if mod is None:
                # No module link: a module of the same name may still carry the parameter.
                try:
                    if self.sysfs.module_trust_path(driver) is not None:
                        mod = driver
                except PathEscape:
                    mod = None
        self._module_of[driver] = mod
        return mod

    def module_param(self, module: str) -> t.Tuple[t.Optional[str], t.Optional[str], t.Optional[str]]:
        """(path, raw value, reason) of ``module/<module>/parameters/trust``; path None when absent."""
        if module in self._param:
            return self._param[module]
        try:
            path = self.sysfs.module_trust_path(module)
        except PathEscape as exc:
            res: t.Tuple[t.Optional[str], t.Optional[str], t.Optional[str]] = (None, None, str(exc))
            self._param[module] = res
            return res
        if path is None:
            res = (None, None, None)
        else:
            raw, why = self.sysfs.read(path)
            res = (path, raw, why)
        self._param[module] = res
        return res

    def any_module_param(self) -> bool:
        """Whether some module on this host exposes parameters/trust (design A kernels)."""
        if self._any_param is None:
            found = False
            try:
                names = self.sysfs.listdir(MODULES)
            except OSError:
                names = []
            for name in sorted(names):
                if not is_name(name):
                    continue
                try:
                    if self.sysfs.module_trust_path(name) is not None:
                        found = True
                        break
                except PathEscape:
                    continue
            self._any_param = found
        return self._any_param

    # -- one device -----------------------------------------------------------------------------
    def read(self, bdf: str, only_tsm: bool = False) -> t.Optional[Device]:
        """The device, or None when no such PCI device exists (or, with ``only_tsm``, when it has
        no ``tsm/`` directory). Raises PathEscape for a planted symlink.

        Attributes are read directly (a missing one is ENOENT), without listing the device
        directory: each attribute costs one open, which matters on a FUSE-served tree."""
        dev = Device(bdf)
        f = dev.facts
        unknown = f['unknown']
        ddir = self.sysfs.device_dir(bdf)
        if ddir is None:
            return None
        dev.dir = ddir
        tsm_kind = self._tsm_kind(dev)
        if only_tsm and tsm_kind is None:
            return None

        for attr in ID_ATTRS:
            raw, why = self.sysfs.read(ddir + '/' + attr)
            if raw is not None and is_id(attr, raw):
                f[attr] = raw
            else:
                unknown[attr] = why or 'unexpected value %r' % raw

        self._read_driver(dev)
        raw, why = self.sysfs.read(ddir + '/' + DRIVER_OVERRIDE)
        if raw is None:
            if why != 'missing':
                unknown['driver_override'] = why
        elif raw in ('(null)', ''):
            f['driver_override'] = None
        elif is_name(raw):
            f['driver_override'] = raw
        else:
            unknown['driver_override'] = 'unexpected value %r' % raw

        self._read_tsm(dev, tsm_kind)
        self._read_trust(dev)
        return dev

    def _tsm_kind(self, dev: Device) -> t.Optional[str]:
        """The kind of the device's ``tsm`` entry, None when there is none."""
        try:
            return self.sysfs.kind(dev.dir + '/' + TSM_DIR)
        except OSError:
            return None

    def refresh(self, dev: Device) -> t.Optional[Device]:
        """The device read again after writes: the state fields (driver, lock, accept, connect, bound,
        the TDISP state, trust) are read afresh; the identity fields (ids, class, driver_override),
        which no write of the collection changes, and the directory listings are taken from ``dev``.
        None when the device went away."""
        if dev.dir is None:
            return None
        new = Device(dev.bdf)
        new.dir, new.trust_file, new.tsm_attrs = dev.dir, dev.trust_file, dev.tsm_attrs
        f = new.facts
        keep = ID_ATTRS + (DRIVER_OVERRIDE,)
        for attr in keep:
            f[attr] = dev.facts[attr]
            if attr in dev.facts['unknown']:
                f['unknown'][attr] = dev.facts['unknown'][attr]
        self._read_driver(new)
        self._read_tsm_values(new, set(new.tsm_attrs), dev.facts['unknown'].get('tsm_side'))
        self._read_trust(new)
        return new

    def _read_driver(self, dev: Device) -> None:
        name, why = self.sysfs.link_name(dev.dir + '/' + DRIVER_LINK)  # (None, None) when there is no link
        dev.facts['driver'] = name
        if why:
            dev.facts['unknown']['driver'] = why

    def _read_tsm(self, dev: Device, kind: t.Optional[str]) -> None:
        f = dev.facts
        unknown = f['unknown']
        tnames: t.Set[str] = set()
        if kind is not None:
            if kind != 'dir':
                unknown['tsm_side'] = 'tsm is a %s, not a directory (refused)' % kind
            else:
                try:
                    tnames = set(self.sysfs.listdir(dev.dir + '/' + TSM_DIR))
                except OSError as exc:
                    unknown['tsm_side'] = 'tsm/ unreadable (%s)' % exc.strerror
        dev.tsm_attrs = frozenset(tnames)
        self._read_tsm_values(dev, tnames, unknown.get('tsm_side'))

    def _read_tsm_values(self, dev: Device, tnames: t.Set[str], side_why: t.Optional[str]) -> None:
        f = dev.facts
        unknown = f['unknown']
        if side_why:
            unknown['tsm_side'] = side_why
        guest = bool(tnames & set(GUEST_ATTRS))
        host = bool(tnames & set(HOST_ATTRS))
        f['tsm_side'] = 'both' if guest and host else 'guest' if guest else 'host' if host else 'none'

        def holder(attr: str) -> t.Tuple[t.Optional[str], t.Optional[str]]:
            raw, why = self.sysfs.read(dev.dir + '/' + TSM_DIR + '/' + attr)
            if raw is None:
                return None, why
            if raw == '':
                return None, None
            if is_tsm(raw):
                return raw, None
            return None, 'unexpected value %r (not tsm<N>)' % raw

        lock_why = accept_why = None
        if 'lock' in tnames:
            f['lock_holder'], lock_why = holder('lock')
            if lock_why:
                unknown['lock_holder'] = lock_why
        if 'accept' in tnames:
            raw, why = self.sysfs.read(dev.dir + '/' + ACCEPT)
            if raw in ('0', '1'):
                f['accepted'] = raw == '1'
            else:
                accept_why = why or 'unexpected value %r (not 0 or 1)' % raw
                unknown['accepted'] = accept_why
        elif 'lock' in tnames:
            accept_why = 'missing'
            unknown['accepted'] = accept_why
        if 'connect' in tnames:
            f['connected'], why = holder('connect')
            if why:
                unknown['connected'] = why
        bound_why = None
        if 'bound' in tnames:
            f['bound'], bound_why = holder('bound')
            if bound_why:
                unknown['bound'] = bound_why

        state, reason = UNKNOWN, None
        if guest:
            if 'lock' not in tnames:
                reason = 'tsm/lock missing'
            elif lock_why:
                reason = 'tsm/lock ' + lock_why
            elif f['lock_holder'] is None:
                if f['accepted']:
                    reason = 'tsm/accept reads 1 but tsm/lock is empty'
                else:
                    state = 'unlocked'
            elif accept_why:
                reason = 'tsm/accept ' + accept_why
            else:
                state = 'run' if f['accepted'] else 'locked'
        elif host:
            if 'bound' not in tnames:
                reason = 'host side without tsm/bound: the TDI state is not visible'
            elif bound_why:
                reason = 'tsm/bound ' + bound_why
            elif f['bound'] is None:
                state = 'unlocked'
            else:
                reason = 'host side: bound to %s (LOCKED, RUN or ERROR cannot be told apart from sysfs)' % f['bound']
        elif not side_why:
            # No tsm/ interface at all (a paravirtual device, or no TSM registered): the kernel holds
            # no TDISP context for it, which is what unlocked means (kernel-abi.md section 3).
            state = 'unlocked'
        else:
            reason = side_why
        f['tdisp_state'] = state
        if reason:
            unknown['tdisp_state'] = reason

    def _read_trust(self, dev: Device) -> None:
        f = dev.facts
        unknown = f['unknown']
        files = (dev.trust_file,) if dev.trust_file is not None else tuple(_trust.DEVICE_FILES)
        for name in files:
            if not name:
                break
            raw, why = self.sysfs.read(dev.dir + '/' + name)
            if raw is None and why == 'missing' and dev.trust_file is None:
                continue
            dev.trust_file = name
            abi = _trust.DEVICE_FILES[name]
            f['trust_abi'] = abi
            f['trust_raw'] = raw
            if raw is None:
                unknown['trust_level'] = '%s %s' % (abi, why)
                return
            level, why = _trust.level_from_raw(abi, raw, f['tdisp_state'])
            f['trust_level'] = level
            if why:
                unknown['trust_level'] = why
            return
        dev.trust_file = ''
        driver = f['driver'] or f['driver_override'] or self.ledger_drivers.get(dev.bdf)
        if driver:
            module = self.module_of(driver)
            if module is not None:
                path, raw, why = self.module_param(module)
                if path is not None or why:
                    dev.module, dev.module_driver = module, driver
                    f['trust_abi'] = _trust.MODULE_ABI.name
                    f['trust_raw'] = raw
                    if raw is None:
                        unknown['trust_level'] = 'module %s trust %s' % (module, why)
                        return
                    level, why = _trust.level_from_raw(_trust.MODULE_ABI.name, raw, f['tdisp_state'])
                    f['trust_level'] = level
                    if why:
                        unknown['trust_level'] = why
                    elif not f['driver']:
                        unknown['trust_level'] = 'no driver bound: module %s trust=%s applies at the next bind' % (module, raw)
                    return
            if self.any_module_param():
                f['trust_abi'] = _trust.NONE
                unknown['trust_abi'] = 'driver %s has no trust= module parameter (built in?): its trust follows the kernel configuration' % driver
                return
        elif self.any_module_param():
            f['trust_abi'] = _trust.MODULE_ABI.name
            unknown['trust_level'] = 'no driver bound or overridden: the trust= of the module that binds next applies'
            return
        f['trust_abi'] = _trust.NONE


def public(dev: t.Optional[Device]) -> t.Optional[t.Dict[str, t.Any]]:
    if dev is None:
        return None
    out = dict(dev.facts)
    out['unknown'] = dict(dev.facts['unknown'])
    return out
