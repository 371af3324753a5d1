"""The driver core and the trust ABIs: matching, bind/unbind/autoprobe with the trust gates at
bind time, driver_override, modules_autoprobe, and the three trust stores (abi §1c, §4).
"""

from __future__ import annotations

import errno
from typing import Optional

from .parse import c_string, err, kstrtobool, kstrtouint, sysfs_streq
from .state import DEVICE_DEFAULT_TRUST, MODULE_TRUST_ORDER, MODULE_TRUST_WORDS, PAGE_SIZE, RUN, TRUST_POLICY_WORDS, Device, Driver, HostState


class DriverCore(HostState):
    """Driver core and trust handlers of a host (a part of ``Host``)."""

    def driver_matches(self, d: Device, drv: Driver) -> bool:
        """pci_bus_match(): driver_override wins; otherwise the id table (the scenario's preferred
        driver); an override_only id table matches only through driver_override. An unloaded
        driver matches nothing."""
        if not drv.loaded:
            return False
        if d.driver_override is not None:
            return d.driver_override == drv.name
        return not drv.override_only and d.preferred_driver == drv.name

    def loaded_driver(self, name: Optional[str]) -> Optional[Driver]:
        drv = self.drivers.get(name) if name else None
        return drv if drv is not None and drv.loaded else None

    def bind_driver(self, d: Device, name: str, how: str) -> None:
        """Driver attach through bind/unbind, autoprobe or a fault; the same kernel rules apply."""
        drv = self.loaded_driver(name)
        if drv is None:
            raise err(errno.ENODEV, "no driver %s" % name)
        if d.driver is not None:
            # __driver_probe_device(): if (dev->driver) return -EBUSY
            raise err(errno.EBUSY, "%s already bound to %s" % (d.bdf, d.driver))
        if not self.driver_matches(d, drv):
            if d.driver_override is not None:
                raise err(errno.ENODEV, "driver_override %s does not match %s" % (d.driver_override, name))
            raise err(errno.ENODEV, "%s does not match %s" % (name, d.bdf))
        # The driver matched: from now on the device "can match" (design B: trust_policy is
        # writable only before this, and stays read-only after unbind).
        d.can_match = True
        if self.trust_abi == "module_param" and d.kind == "endpoint":
            self._module_trust_gate(d, drv, how)
        elif self.trust_abi == "trust_policy" and d.kind == "endpoint":
            d.active_trust = self._trust_prepare(d, drv.name, how)
        d.driver = name
        self.log(d.bdf, "bind", driver=name, how=how)

    def _module_trust_gate(self, d: Device, drv: Driver, how: str) -> None:
        """Design A device_trust_bind() [V S12]: the driver's policy, when set, becomes the
        device's trust (even when the bind is then refused); the bind is refused at NONE or below.
        AUTO does not block the bind (it only means pci_dma_configure() does not enable TDISP DMA).
        The errno of a refused bind is not in the sources: ENODEV, as when a probe declines [I]."""
        # driver_trust(): a built-in driver has the Kconfig default (AUTO [I: the
        # CONFIG_BUILTIN_DEVICE_TRUST_* choice is unknown]); a module never given trust= has
        # module_driver_trust_init()'s DEVICE_DEFAULT_TRUST.
        word = DEVICE_DEFAULT_TRUST if not drv.modular or drv.trust_param is None else c_string(drv.trust_param)
        # unknown words are UNSET (no policy): device_trust_parse() compares with sysfs_streq().
        word = next((w for w in MODULE_TRUST_WORDS if sysfs_streq(word, w)), "unset")
        if word != "unset":
            d.effective_module_trust = word
        if MODULE_TRUST_ORDER[d.effective_module_trust] <= MODULE_TRUST_ORDER["none"]:
            self.log(d.bdf, "bind_refused", driver=drv.name, trust=d.effective_module_trust, how=how)
            raise err(errno.ENODEV, "driver %s trust=none: bind refused" % drv.name)

    def _trust_prepare(self, d: Device, name: str, how: str) -> str:
        """Design B device_trust_prepare() [V S13], before dma_configure and probe: ``disabled``
        fails -EPERM; an explicit policy the bus resolves to another level fails -EINVAL. The PCI
        resolution [I: PCI trust_resolve not read]: a device behind an external-facing port
        (``untrusted``) resolves to ADVERSARY, any other to FULL unless ``adversary`` is asked."""
        policy = d.trust_policy
        if policy == "disabled":
            self.log(d.bdf, "bind_refused", driver=name, trust_policy=policy, how=how)
            raise err(errno.EPERM, "trust_policy disabled: bind refused")
        level = "adversary" if d.untrusted or policy == "adversary" else "full"
        if policy != "default" and level != policy:
            self.log(d.bdf, "bind_refused", driver=name, trust_policy=policy, level=level, how=how)
            raise err(errno.EINVAL, "trust_policy %s: the bus resolves %s" % (policy, level))
        return level

    def unbind_driver(self, d: Device, how: str) -> None:
        if d.driver is None:
            raise err(errno.ENODEV, "%s not bound" % d.bdf)
        name = d.driver
        d.driver = None
        d.active_trust = "disabled"  # design B: back to DISABLED after remove and dma_cleanup
        self.log(d.bdf, "unbind", driver=name, how=how)

    def autoprobe(self, d: Device, how: str) -> bool:
        """device_attach(): bind the matching driver if any; failures are swallowed (logged)."""
        if d.driver is not None:
            return False
        name = d.driver_override if d.driver_override is not None else d.preferred_driver
        drv = self.loaded_driver(name)
        if drv is None or not self.driver_matches(d, drv):
            return False
        try:
            self.bind_driver(d, drv.name, how)
        except OSError:
            return False
        return True


    # -- store handlers: driver core --------------------------------------------------------------
    def store_bind(self, drv: Driver, buf: str) -> None:
        """bind_store(): ENODEV unless the named device exists and the driver matches it; then
        the probe's result (EBUSY when already bound, the trust gates)."""
        d = self.find_device(buf)
        if d is None:
            raise err(errno.ENODEV, "bind: no device %r" % buf)
        if not self.driver_matches(d, drv):
            raise err(errno.ENODEV, "bind: %s does not match %s" % (drv.name, d.bdf))
        self.bind_driver(d, drv.name, "sysfs")

    def store_unbind(self, drv: Driver, buf: str) -> None:
        d = self.find_device(buf)
        if d is None or d.driver != drv.name:
            raise err(errno.ENODEV, "unbind: %r is not bound to %s" % (buf, drv.name))
        self.unbind_driver(d, "sysfs")

    def store_drivers_probe(self, buf: str) -> None:
        """bus/pci/drivers_probe: ENODEV for an unknown device; otherwise device_attach(), whose
        probe failures are not reported to the writer."""
        d = self.find_device(buf)
        if d is None:
            raise err(errno.ENODEV, "drivers_probe: no device %r" % buf)
        self.autoprobe(d, "drivers_probe")

    def store_driver_override(self, d: Device, buf: str) -> None:
        """driver_set_override(): EINVAL from PAGE_SIZE-1 bytes; the string ends at the first NUL
        or newline; an empty string (or one starting with a newline) clears the override."""
        if len(buf) >= PAGE_SIZE - 1:
            raise err(errno.EINVAL, "driver_override too long")
        text = c_string(buf)
        nl = text.find("\n")
        if nl >= 0:
            text = text[:nl]
        before = d.driver_override
        d.driver_override = text or None
        self.log(d.bdf, "driver_override", before=before, after=d.driver_override)

    def store_modules_autoprobe(self, buf: str) -> None:
        value = kstrtobool(buf)
        before = self.modules_autoprobe
        self.modules_autoprobe = value
        self.log(None, "modules_autoprobe", before=before, after=value)

    # -- store handlers: trust ---------------------------------------------------------------------
    def store_trust(self, d: Device, buf: str) -> None:
        """The seed thread's integer trust file (abi §4; DESIGN fact 6)."""
        level = kstrtouint(buf)
        if level > 3:
            raise err(errno.EINVAL, "trust: %d out of range 0..3" % level)
        in_run = d.tdisp == RUN
        if level == 3 and not in_run:
            raise err(errno.EINVAL, "trust: level 3 needs TDISP RUN (device is %s)" % d.tdisp)
        if level < 3 and in_run:
            raise err(errno.EINVAL, "trust: level %d without private memory while in RUN" % level)
        before = d.trust
        d.trust = level
        self.log(d.bdf, "trust", before=before, after=level)

    def store_trust_policy(self, d: Device, buf: str) -> None:
        """Design B (Documentation/ABI/testing/sysfs-devices-trust, September 2026): one of four
        words (sysfs_streq); "can be changed only before the device is probed": EBUSY once a
        driver has matched it (dev_can_match), and still after unbind [V S13; after unbind: I].
        The file reads the requested policy; the active level has no readback."""
        word = next((w for w in TRUST_POLICY_WORDS if sysfs_streq(buf, w)), None)
        if word is None:
            raise err(errno.EINVAL, "trust_policy: unknown word %r" % buf)
        if d.can_match or d.driver is not None:
            raise err(errno.EBUSY, "trust_policy: %s has been probed" % d.bdf)
        before = d.trust_policy
        d.trust_policy = word
        self.log(d.bdf, "trust_policy", before=before, after=word)

    def store_module_trust(self, drv: Driver, buf: str) -> None:
        """Design A: a module parameter (charp, at most 1024 bytes); takes effect at the next
        bind. The stored string keeps what was written minus one trailing newline [I]."""
        text = c_string(buf)
        if len(text) > 1024:
            raise err(errno.ENOSPC, "trust: parameter longer than 1024 bytes")
        before = drv.trust_param
        drv.trust_param = text[:-1] if text.endswith("\n") else text
        self.log(None, "module_trust", driver=drv.name, before=before, after=drv.trust_param)
