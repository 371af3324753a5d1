# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The ABI layer: the only code that knows sysfs paths and errno values (private; may change at any time).

* ``sysfs``: the sysfs root, name validation (BDF, TSM, driver), path resolution confined to the
  root, reads and ``echo``-style writes, and the translation of every ``OSError`` into one
  actionable ``TdispError`` line.
* ``trust``: the one table that maps the collection's trust levels onto each kernel trust ABI.
* ``device``: discovery of TSMs and PCI devices, and the device dict (``docs/internals.md``).
* ``ledger``: the small host-side record of what the collection did (drivers it unbound,
  trust levels it set, the evidence generation it accepted).
* ``plan``: per-device plans (ordered actions) and their execution, for ``tdisp_device`` and
  ``device_trust``.
* ``info``: the ``tdisp_device_info`` gatherer, including the optional evidence section.
"""
