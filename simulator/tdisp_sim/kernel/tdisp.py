"""The TDISP state machine's store handlers: guest lock/unlock/accept (abi §1c), host
connect/disconnect (abi §1a), the samples/devsec faux devices (abi §1b), and the transitions
they share (unlock, ERROR, trust reset). Checks run in the kernel's order (abi §9).
"""

from __future__ import annotations

import errno

from .parse import err, kstrtobool, sscanf_tsm, sysfs_streq
from .state import ERROR, EVIDENCE_MAX_SIZE, LOCKED, RUN, UNLOCKED, Device, Tsm, HostState


class TdispMachine(HostState):
    """TDISP and TSM-context handlers of a host (a part of ``Host``)."""

    # -- transitions used by several handlers -------------------------------------------------
    def _reset_trust(self, d: Device, why: str) -> None:
        """Leaving the locked/accepted state (unlock, ERROR, TSM teardown, hot-remove). The seed
        thread's integer trust file resets to 0 (abi §4 "falls out of RUN"; abi §9 "unlock ...
        trust back to 0 where that ABI exists"); the other ABIs keep their value (design B says
        trust is independent of RUN; design A's trust is per driver module)."""
        if self.trust_abi == "trust" and d.trust != 0:
            self.log(d.bdf, "trust_reset", before=d.trust, after=0, reason=why)
            d.trust = 0

    def _unlock(self, d: Device, why: str) -> None:
        before = d.tdisp
        d.lock_tsm = None
        d.accepted = False
        d.tdisp = UNLOCKED
        d.validated_generation = None
        d.encrypted_mmio_resources = 0
        self.log(d.bdf, "tdisp", before=before, after=UNLOCKED, reason=why)
        self._reset_trust(d, why)

    def enter_error(self, d: Device, why: str) -> None:
        """A TDISP ERROR (lost SPDM session, IDE link loss, config change). Invisible through
        accept, exactly as in the kernel (abi §7.1): only trust reset and generation show it."""
        if d.tdisp not in (LOCKED, RUN):
            raise err(errno.EINVAL, "%s is %s, not LOCKED or RUN" % (d.bdf, d.tdisp))
        before = d.tdisp
        d.tdisp = ERROR
        d.generation += 1
        self.log(d.bdf, "tdisp", before=before, after=ERROR, reason=why, generation=d.generation)
        self._reset_trust(d, "TDISP ERROR")


    def _unlock_all_of(self, tsm: Tsm, why: str) -> None:
        for d in self.present_devices():
            if d.lock_tsm == tsm.id:
                self._unlock(d, why)
            if d.connect_tsm == tsm.id:
                self._disconnect(d, why)


    # -- store handlers: guest side (abi §1c, order per abi §9) ------------------------------------
    def store_lock(self, d: Device, buf: str) -> None:
        tsm_id = sscanf_tsm(buf)
        if tsm_id is None:
            raise err(errno.EINVAL, "lock: %r is not tsm<N>" % buf)
        if d.has_context:
            raise err(errno.EBUSY, "lock: %s already has a TSM context" % d.bdf)
        tsm = self.tsms.get(tsm_id)
        if tsm is None or not tsm.present or tsm.mode != "devsec":
            raise err(errno.ENXIO, "lock: tsm%d is not a devsec TSM" % tsm_id)
        if d.driver is not None:
            raise err(errno.EBUSY, "lock: driver %s is bound" % d.driver)
        d.lock_tsm = tsm_id
        d.accepted = False
        d.tdisp = LOCKED
        d.generation += 1  # the TSM gathers fresh evidence for the new TDISP session
        self.log(d.bdf, "tdisp", before=UNLOCKED, after=LOCKED, tsm=tsm.name, generation=d.generation)

    def store_unlock(self, d: Device, buf: str) -> None:
        holder = d.lock_tsm
        if holder is None or not sysfs_streq(buf, "tsm%d" % holder):
            raise err(errno.EINVAL, "unlock: %r is not the lock holder" % buf)
        if d.driver is not None:
            raise err(errno.EBUSY, "unlock: driver %s is bound" % d.driver)
        self._unlock(d, "unlock")

    def store_accept(self, d: Device, buf: str) -> None:
        if not kstrtobool(buf):
            raise err(errno.EINVAL, "accept: there is no 'unaccept' verb")
        if d.lock_tsm is None:
            raise err(errno.EINVAL, "accept: %s is not locked" % d.bdf)
        if d.driver is not None:
            raise err(errno.EBUSY, "accept: driver %s is bound" % d.driver)
        if d.accepted:
            if self.accept_repeat == "idempotent":
                self.log(d.bdf, "accept_noop", state=d.tdisp)
                return
            # v2 (abi §7.4): accept runs again and duplicates the encrypted MMIO resources.
            d.encrypted_mmio_resources += 1
            self.log(d.bdf, "accept_repeated", duplicates=d.encrypted_mmio_resources, state=d.tdisp)
            return
        # The evidence generation recorded by netlink 'validate' must still hold (abi §4, Dan,
        # msg 74); the errno of a stale generation is not in the sources: EAGAIN [I].
        if d.validated_generation is not None and d.validated_generation != d.generation:
            raise err(errno.EAGAIN, "accept: evidence generation %d changed since validate (%d)"
                      % (d.generation, d.validated_generation))
        if d.tdisp != LOCKED:
            # The TSM's run step fails: START_INTERFACE is rejected unless CONFIG_LOCKED. The TSM
            # op's errno is not in the sources: EIO [I].
            raise err(errno.EIO, "accept: TSM run failed, interface is %s" % d.tdisp)
        d.accepted = True
        d.tdisp = RUN
        d.encrypted_mmio_resources = 1
        self.log(d.bdf, "tdisp", before=LOCKED, after=RUN, generation=d.generation)

    # -- store handlers: host side (abi §1a) ------------------------------------------------------
    def _dependents(self, d: Device) -> list[Device]:
        """pci_tsm_walk_fns(): the other functions of the slot and the VFs of each of them."""
        slot = d.bdf.rsplit(".", 1)[0]
        out = []
        for o in self.present_devices():
            if o is d or o.kind != "endpoint":
                continue
            if o.bdf.rsplit(".", 1)[0] == slot and o.physfn is None:
                out.append(o)
            elif o.physfn is not None and o.physfn.rsplit(".", 1)[0] == slot:
                out.append(o)
        return out

    def store_connect(self, d: Device, buf: str) -> None:
        tsm_id = sscanf_tsm(buf)
        if tsm_id is None:
            raise err(errno.EINVAL, "connect: %r is not tsm<N>" % buf)
        if d.has_context:
            raise err(errno.EBUSY, "connect: %s already has a TSM context" % d.bdf)
        tsm = self.tsms.get(tsm_id)
        if tsm is None or not tsm.present or tsm.mode != "link":
            raise err(errno.ENXIO, "connect: tsm%d is not a link TSM" % tsm_id)
        if not d.doe:
            raise err(errno.ENXIO, "connect: TSM probe failed (no CMA DOE mailbox)")
        # The TSM driver's connect(): samples/devsec allocates a stream id from its pool of 4
        # (EBUSY when exhausted) and an IDE stream at the host bridge (ENOMEM when none is left).
        used_ids = {o.stream[3] for o in self.devices.values() if o.stream is not None and o.connect_tsm == tsm_id}
        free_ids = [i for i in range(tsm.streams) if i not in used_ids]
        if not free_ids:
            raise err(errno.EBUSY, "connect: %s has no free stream id" % tsm.name)
        bridge = d.host_bridge
        in_bridge = self.streams_in_use(bridge)
        if len(in_bridge) >= self.secure_streams:
            raise err(errno.ENOMEM, "connect: no IDE stream left at %s" % bridge)
        hb_slot = min(set(range(self.secure_streams)) - {o.stream[0] for o in in_bridge})
        rp_slot = min(set(range(self.secure_streams)) - {o.stream[1] for o in in_bridge if o.rp == d.rp})
        d.stream = (hb_slot, rp_slot, 0, free_ids[0])
        d.connect_tsm = tsm_id
        d.generation += 1
        if d.tee:
            for o in self._dependents(d):
                if not o.has_context:
                    o.link_dsm = d.bdf
        self.log(d.bdf, "connect", tsm=tsm.name, generation=d.generation,
                 stream="stream%d.%d.%d" % d.stream[:3])

    def _disconnect(self, d: Device, why: str) -> None:
        name = "tsm%d" % d.connect_tsm
        d.connect_tsm = None
        d.bound_tsm = None
        d.stream = None
        for o in self.devices.values():
            if o.link_dsm == d.bdf:
                o.link_dsm = None
                o.bound_tsm = None
        self.log(d.bdf, "disconnect", tsm=name, reason=why)

    def store_disconnect(self, d: Device, buf: str) -> None:
        if d.connect_tsm is None:
            raise err(errno.ENXIO, "disconnect: %s is not connected" % d.bdf)
        if not sysfs_streq(buf, "tsm%d" % d.connect_tsm):
            raise err(errno.EINVAL, "disconnect: %r is not tsm%d" % (buf, d.connect_tsm))
        self._disconnect(d, "disconnect")

    # -- store handlers: samples/devsec faux devices (abi §1b) --------------------------------------
    def _sample_tdi_target(self, tsm: Tsm, buf: str) -> Device:
        d = self.find_device(buf)
        if d is None:
            raise err(errno.ENODEV, "no PCI device %r" % buf)
        dsm = self._dsm_of(d)
        if dsm is None or dsm.connect_tsm != tsm.id:
            raise err(errno.ENXIO, "%s is not connected to %s" % (d.bdf, tsm.name))
        return d

    def store_tsm_bind(self, tsm: Tsm, buf: str) -> None:
        d = self._sample_tdi_target(tsm, buf)
        if d.bound_tsm is None:
            d.bound_tsm = tsm.id
            self.log(d.bdf, "tdi_bind", tsm=tsm.name)

    def store_tsm_unbind(self, tsm: Tsm, buf: str) -> None:
        d = self._sample_tdi_target(tsm, buf)
        if d.bound_tsm is not None:
            d.bound_tsm = None
            self.log(d.bdf, "tdi_unbind", tsm=tsm.name)

    def store_tsm_request(self, tsm: Tsm, buf: str) -> None:
        d = self._sample_tdi_target(tsm, buf)
        if d.bound_tsm is None:
            raise err(errno.ENXIO, "tsm_request: %s is not a bound TDI" % d.bdf)
        self.log(d.bdf, "tdi_request", tsm=tsm.name)

    def write_sample_evidence(self, which: str, data: bytes, offset: int) -> int:
        """samples/devsec common.c evidence_write(): EFBIG past 16 MiB, EBUSY while busy, a
        1-byte write (at offset 0) resets the blob."""
        if offset + len(data) > EVIDENCE_MAX_SIZE:
            raise err(errno.EFBIG, "%s: %d bytes at %d exceed 16 MiB" % (which, len(data), offset))
        if self.sample_busy():
            raise err(errno.EBUSY, "%s: a sample device is connected or locked" % which)
        blob = self.sample_evidence[which]
        if offset + len(data) > len(blob):
            blob.extend(b"\0" * (offset + len(data) - len(blob)))
        if offset + len(data) == 1:
            blob.clear()
            self.log(None, "sample_evidence", blob=which, size=0)
            return 1
        blob[offset:offset + len(data)] = data
        self.log(None, "sample_evidence", blob=which, size=len(blob))
        return len(data)
