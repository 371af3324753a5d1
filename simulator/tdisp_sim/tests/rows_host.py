"""Conformance rows, host side: kernel-abi.md §1a (mainline, the rows samples/devsec and devsec.sh
exercise) and §1b (out of tree: pci_mode, the sample's faux devices). Row format: rows.py."""

from __future__ import annotations

from .rows import LAST, LN, LS, OPEN, RES, F, R, W, X
from .simtest import FN1, PF0, PF0_B, dpath

CONNECT = dpath(PF0, "tsm/connect")
DISCONNECT = dpath(PF0, "tsm/disconnect")
CONNECTED = (W(CONNECT, "tsm0"),)
DISCONNECTED = CONNECTED + (W(DISCONNECT, "tsm0"),)
NO_TSM = (F("-", "tsm-remove", "tsm0"), F("-", "tsm-remove", "tsm1"))
TSM0_BACK = NO_TSM + (F("-", "tsm-restore", "tsm0"),)
STREAMS = "devices/pci10000:00/available_secure_streams"
FAUX = "bus/faux/devices/devsec_link_tsm/"
FAUX_GUEST = "bus/faux/devices/devsec_tsm/"
BIND_PF0 = W("class/tsm/tsm0/device/tsm_bind", PF0)
BIND_FN1 = W("class/tsm/tsm0/device/tsm_bind", FN1)
CERTS = FAUX_GUEST + "certs"
TRANSCRIPT = FAUX_GUEST + "transcript"

ROWS = [
    # §1a /sys/class/tsm/tsmN/: class devices named tsm%d
    ("1a-class-tsm-lists-tsmN", "sample", (), LS("class/tsm"), ["tsm0", "tsm1"]),
    ("1a-class-tsm-links-to-virtual", "sample", (), LN("class/tsm/tsm0"), "../../devices/virtual/tsm/tsm0"),
    # §1a tsmN/uevent: a standard uevent file; kobject_synth_uevent() rejects an unknown action
    ("1a-tsm-uevent-change", "sample", (), W("class/tsm/tsm0/uevent", "change\n"), "ok"),
    ("1a-tsm-uevent-unknown-action", "sample", (), W("class/tsm/tsm0/uevent", "bogus\n"), "EINVAL"),
    # §1a <BDF>/tsm/ appears dynamically: absent with no TSM, back when the first registers (KOBJ_CHANGE)
    ("1a-tsm-dir-absent-without-tsm", "sample", NO_TSM, X(dpath(PF0, "tsm")), False),
    ("1a-tsm-dir-appears-on-register", "sample", TSM0_BACK, X(CONNECT), True),
    ("1a-tsm-register-uevent-change", "sample", TSM0_BACK, LAST("tsm_register", "uevent"), "change"),
    # §1a tsm/connect: read "\n" when not connected; a link TSM name connects, reads back tsmN
    ("1a-connect-reads-empty", "sample", (), R(CONNECT), "\n"),
    ("1a-connect-link-tsm", "sample", (), W(CONNECT, "tsm0"), "ok"),
    ("1a-connect-reads-tsm", "sample", CONNECTED, R(CONNECT), "tsm0\n"),
    ("1a-connect-not-tsm-name", "sample", (), W(CONNECT, "link0"), "EINVAL"),
    ("1a-connect-already-connected", "sample", CONNECTED, W(CONNECT, "tsm0"), "EBUSY"),
    ("1a-connect-locked", "sample", (W(dpath(PF0, "tsm/lock"), "tsm1"),), W(CONNECT, "tsm0"), "EBUSY"),
    ("1a-connect-not-link-tsm", "sample", (), W(CONNECT, "tsm1"), "ENXIO"),
    ("1a-connect-no-such-tsm", "sample", (), W(CONNECT, "tsm7"), "ENXIO"),
    ("1a-connect-probe-fails-without-doe", "sample/no-doe", (), W(CONNECT, "tsm0"), "ENXIO"),
    ("1a-connect-only-on-pf0", "sample", (), X(dpath(FN1, "tsm/connect")), False),
    # any error of the TSM's connect(): samples/devsec has a pool of stream ids (here 1): EBUSY
    ("1a-connect-streams-exhausted", "sample/1-stream", CONNECTED, W(dpath(PF0_B, "tsm/connect"), "tsm0"), "EBUSY"),
    # §1a tsm/disconnect (WO): the connected TSM's name, sysfs_streq
    ("1a-disconnect-not-connected", "sample", (), W(DISCONNECT, "tsm0"), "ENXIO"),
    ("1a-disconnect-name-mismatch", "sample", CONNECTED, W(DISCONNECT, "tsm1"), "EINVAL"),
    ("1a-disconnect-name-with-newline", "sample", CONNECTED, W(DISCONNECT, "tsm0\n"), "ok"),
    ("1a-disconnect-connect-reads-empty", "sample", CONNECTED + (W(DISCONNECT, "tsm0\n"),), R(CONNECT), "\n"),
    ("1a-disconnect-write-only", "sample", (), OPEN(DISCONNECT, read=True), "EACCES"),
    # §1a tsm/dsm (RO): empty before connect (devsec.sh validate_disconnected); PF0 on both functions
    ("1a-dsm-empty-before-connect", "sample", (), R(dpath(PF0, "tsm/dsm")), "\n"),
    ("1a-dsm-absent-on-subfunction", "sample", (), X(dpath(FN1, "tsm/dsm")), False),
    ("1a-dsm-names-pf0-on-pf0", "sample", CONNECTED, R(dpath(PF0, "tsm/dsm")), PF0 + "\n"),
    ("1a-dsm-names-pf0-on-subfunction", "sample", CONNECTED, R(dpath(FN1, "tsm/dsm")), PF0 + "\n"),
    ("1a-dsm-read-only", "sample", (), W(dpath(PF0, "tsm/dsm"), "x"), "EACCES"),
    # §1a tsm/bound: the TSM while the function is a bound TDI; disconnect unbinds all TDIs
    ("1a-bound-tsm-bind", "sample", CONNECTED, BIND_FN1, "ok"),
    ("1a-bound-shows-tsm", "sample", CONNECTED + (BIND_FN1,), R(dpath(FN1, "tsm/bound")), "tsm0\n"),
    ("1a-disconnect-unbinds-pf0", "sample", CONNECTED + (BIND_PF0, BIND_FN1, W(DISCONNECT, "tsm0")),
     R(dpath(PF0, "tsm/bound")), "\n"),
    ("1a-disconnect-removes-subfunction-context", "sample", CONNECTED + (BIND_PF0, BIND_FN1, W(DISCONNECT, "tsm0")),
     X(dpath(FN1, "tsm/bound")), False),
    # §1a <BDF>/authenticated: alias of tsm/connect, exclusive to the presence of a link TSM
    ("1a-authenticated-aliases-connect", "sample", CONNECTED, R(dpath(PF0, "authenticated")), "tsm0\n"),
    ("1a-authenticated-absent-without-link-tsm", "sample", (F("-", "tsm-remove", "tsm0"),),
     X(dpath(PF0, "authenticated")), False),
    # §1a pciDDDD:BB/available_secure_streams and streamH.R.E (devsec.sh ide_test)
    ("1a-streams-4-idle", "sample", (), R(STREAMS), "4\n"),
    ("1a-streams-3-connected", "sample", CONNECTED, R(STREAMS), "3\n"),
    ("1a-streams-refilled-on-disconnect", "sample", DISCONNECTED, R(STREAMS), "4\n"),
    ("1a-stream-link-to-endpoint", "sample", CONNECTED, RES("devices/pci10000:00/stream0.0.0", same=dpath(PF0)), True),
    # §1a host bridge: dirname(dirname(readlink -f $pci_dev)) as devsec.sh computes it
    ("1a-host-bridge-grandparent", "sample", (), RES(dpath(PF0), up=2), "devices/pci10000:00"),

    # §1b tsmN/pci_mode (RO)
    ("1b-pci-mode-link", "sample", (), R("class/tsm/tsm0/pci_mode"), "link\n"),
    ("1b-pci-mode-devsec", "sample", (), R("class/tsm/tsm1/pci_mode"), "devsec\n"),
    ("1b-pci-mode-read-only", "sample", (), OPEN("class/tsm/tsm1/pci_mode", write=True), "EACCES"),
    # §1b tsmN/pciDDDD:BB: present while that host bridge has an IDE stream with this TSM
    ("1b-tsm-bridge-link-with-stream", "sample", CONNECTED,
     RES("class/tsm/tsm0/pci10000:00/stream0.0.0", same=dpath(PF0)), True),
    ("1b-tsm-bridge-link-gone-without-stream", "sample", DISCONNECTED, X("class/tsm/tsm0/pci10000:00"), False),
    # §1b devsec_link_tsm/tsm_bind, tsm_unbind, tsm_request
    ("1b-tsm-bind-unknown-device", "sample", (), W(FAUX + "tsm_bind", "0000:99:00.0"), "ENODEV"),
    ("1b-tsm-bind-not-connected", "sample", (), W(FAUX + "tsm_bind", PF0), "ENXIO"),
    ("1b-tsm-unbind", "sample", CONNECTED + (W(FAUX + "tsm_bind", PF0),), W(FAUX + "tsm_unbind", PF0), "ok"),
    ("1b-tsm-unbind-clears-bound", "sample", CONNECTED + (W(FAUX + "tsm_bind", PF0), W(FAUX + "tsm_unbind", PF0)),
     R(dpath(PF0, "tsm/bound")), "\n"),
    ("1b-tsm-request-without-bound-tdi", "sample", CONNECTED, W(FAUX + "tsm_request", PF0), "ENXIO"),
    ("1b-tsm-request-bound-tdi", "sample", CONNECTED + (W(FAUX + "tsm_bind", PF0),), W(FAUX + "tsm_request", PF0), "ok"),
    ("1b-devsec-tsm-has-no-tdi-attributes", "sample", (), LS("bus/faux/devices/devsec_tsm"), ["certs", "transcript", "uevent"]),
    # §1b certs/transcript (bin RW): read back, offsets, 1-byte reset, EFBIG past 16 MiB, EBUSY while in use
    ("1b-certs-write", "sample", (), W(CERTS, b"\x30\x82chain"), "ok"),
    ("1b-certs-shared-by-both-tsms", "sample", (W(CERTS, b"\x30\x82chain"),), R(FAUX + "certs"), "\x30\x82chain"),
    ("1b-transcript-at-offset", "sample", (W(TRANSCRIPT, b"abcd"), W(TRANSCRIPT, b"XY", offset=2)), R(TRANSCRIPT), "abXY"),
    ("1b-certs-one-byte-resets", "sample", (W(CERTS, b"abcd"), W(CERTS, b"\n")), R(CERTS), ""),
    ("1b-certs-over-16mib", "sample", (), W(CERTS, b"x", offset=16 * 1024 * 1024), "EFBIG"),
    ("1b-certs-busy-while-connected", "sample", CONNECTED, W(CERTS, b"abcd"), "EBUSY"),
    ("1b-transcript-busy-while-locked", "sample", (W(dpath(PF0_B, "tsm/lock"), "tsm1"),),
     W(FAUX + "transcript", b"abcd"), "EBUSY"),
]
