"""The simulator's evidence endpoint: the ``device-evidence`` generic netlink family, served per host.

Modules: ``wire`` (constants, families, encoding and decoding), ``requests`` (what the kernel
answers to each request, and the read dump), ``server`` (``EvidenceServer``: sockets, one
selector thread).

Each simulated host gets one ``AF_UNIX`` ``SOCK_SEQPACKET`` listening socket,
``<socket_dir>/<host>.sock``. A connection carries exactly the datagrams a
``socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC)`` socket would carry: the client writes netlink
requests, the server answers as the kernel would, one reply skb per datagram. The collection's
client selects it with the endpoint ``unix:<socket_dir>/<host>.sock``.

This file shares no code with the collection's client (``plugins/module_utils/_evidence/netlink.py``):
both follow ``shared/docs/kernel-abi.md`` sections 1d and 8 and the kernel sources cited there, so
tests of one against the other check two implementations of the wire format.

Behaviour, with the kernel code it follows (devsec-phase2 ``device-evidence`` netlink, kernel-abi.md §8):

* nlctrl ``CTRL_CMD_GETFAMILY`` answers for the configured family (``device-evidence``, or the older
  ``pci-tsm``) with its id and op list; any other name is ``ENOENT``.
* Before any attribute is looked at, an admin-perm op without CAP_NET_ADMIN is ``EPERM`` (genetlink
  checks ``GENL_ADMIN_PERM`` first; the ``eperm`` fault plays the missing capability).
* Attributes are validated strictly: unknown or out-of-op attributes, u32 attributes not 4 bytes
  long, a nonce over the family's maximum: ``EINVAL``.
* ``read`` (dump). Errors found before the dump starts are ``NLMSG_ERROR``: missing subsys or
  dev-name, names of 32 bytes or more, missing or zero type-mask, unknown type bits or flag bits:
  ``EINVAL``; subsys other than ``pci``: ``EOPNOTSUPP``; no such device: ``ENODEV``. Errors during the
  dump end it with ``NLMSG_DONE`` carrying the negative errno: a nonce when nonce refresh is off:
  ``EOPNOTSUPP``; no TSM context (not locked, not connected): ``ENXIO``; the generation changed
  since the dump started: ``EAGAIN``. Each object is a first message with ``type``, ``generation``,
  ``length``, then ``val`` chunks, one per message, sized to fill a ``chunk_size`` datagram; the last
  message and ``NLMSG_DONE`` share a datagram when there is room, as the kernel's dump skb does.
* ``validate`` (do; device-evidence only, when enabled): ``EPERM``, ``EINVAL`` (missing subsys,
  dev-name or generation), ``EOPNOTSUPP`` (subsys), ``ENODEV``, ``ENXIO`` (no TSM context), then
  ``EAGAIN`` when the generation is not the current one (an assumption: the kernel material does not
  say which errno); on success ``device.validated_generation`` is recorded and the reply is a
  ``validate`` message carrying the generation, then the acknowledgement when ``NLM_F_ACK`` is set.

Acknowledgements and errors are sent as a kernel sends them to a socket with ``NETLINK_CAP_ACK``
and ``NETLINK_EXT_ACK`` set (capped, with an ``NLMSGERR_ATTR_MSG`` text): an AF_UNIX peer cannot set
those options, so the server always behaves as if it had.

Faults (``host.evidence_faults``, the model's ``EvidenceFaults`` table; ``tdisp_sim.faults.evidence``
``set_fault``/``clear_fault`` arm and disarm them and log it; this server only reads them):

* ``generation_bump``: ``{bdf or "*": count}``: the next ``count`` dumps of the device (-1: every dump)
  bump the device's generation (``Host.fault_generation``) after their first message, so the dump
  ends with ``EAGAIN``. Dumps of a single message are not affected and do not use up the count.
* ``truncate``: ``{bdf or "*": type name or "*"}``: that object (``*``: every object) announces its
  full length but only the first half of its bytes (none of a 1-byte object) are sent.
* ``absent``: ``True``: the host's socket is closed and removed, open connections are dropped.
* ``eperm``: ``True``: ``read`` and ``validate`` fail with ``EPERM`` (no CAP_NET_ADMIN).

Scenario options, from ``fleet.evidence_spec["netlink"]`` (constructor arguments override them):
``family`` (``device-evidence`` | ``pci-tsm``), ``validate`` (bool, default true), ``chunk_size``
(bytes per reply datagram, default 4096, at least 256), ``nonce_refresh`` (bool; default true for
``device-evidence``, false for ``pci-tsm``, whose v2 code answered a nonce with ``EOPNOTSUPP``).
"""

from __future__ import annotations


from .requests import default_provider
from .server import EvidenceServer
from .wire import FAMILIES, MAX_OBJECT_SIZE, TYPES

__all__ = ["EvidenceServer", "FAMILIES", "MAX_OBJECT_SIZE", "TYPES", "default_provider"]
