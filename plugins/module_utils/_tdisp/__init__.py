# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The domain of the target-side modules (private; may change at any time).

Built on ``_abi`` (what the kernel defines) and ``_evidence`` (the evidence family):

* ``options``: the defaults and the shared argument spec (``sysfs_root``, ``state_dir``,
  ``evidence_endpoint``), the trust device spec, and ``Options``.
* ``actions``: one class per action kind (unbind, bind, attribute write, module-parameter
  write, generation check), each with run, predict, read-back, ledger record and dict form.
* ``engine``: ``Engine`` (one host, one module call) and ``Outcome`` (one device's result).
* ``converge``: the one converge driver (plan every device, refuse, predict or execute,
  settle, re-read, result) and the policy-version record.
* ``plan_state`` / ``plan_trust``: the planners of ``tdisp_device`` and ``device_trust``.
* ``ledger``: the host-side record of what the collection did.
* ``info``: the ``tdisp_device_info`` gatherer; ``evidence``: the evidence client factory.
* ``module``: the glue of the modules (``run``, ``finish``).
"""
