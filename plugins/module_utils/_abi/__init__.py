# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the kernel defines, and nothing else (private; may change at any time).

* ``names``: relative sysfs paths, attribute names, the TDISP states, name formats (BDF, TSM,
  driver) and the id print format the kernel uses.
* ``sysfs``: the confined reader/writer of one sysfs root (path resolution below the root,
  ``O_NOFOLLOW`` reads, ``echo``-style writes that raise the kernel's ``OSError``).
* ``errnos``: the errno table of every write (kernel-abi.md sections 1c and 9) and ``explain()``.
* ``trust``: the trust table, the collection's levels on every kernel trust ABI, with the columns
  the planners read (unbind needed, applies at bind, reset on leaving RUN, per module).
* ``device``: discovery of TSMs and PCI devices, and the device dict (docs/internals.md).

The domain (plans, actions, the ledger, the info gatherer) is ``_tdisp``; nothing here imports it.
"""
